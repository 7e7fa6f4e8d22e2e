//! Statistics over a sweep's points: the mean AUROC by each varying key, and
//! means ± standard deviation over seeds.

use std::fmt::Write as _;

use super::columns::{Row, present, table};
use super::{GridValue, Sweep};

/// Mean ± sample standard deviation over the `seed` key, one row per
/// combination of the other varying keys; `None` unless `seed` varies.
pub(super) fn over_seeds(sweep: &Sweep, rows: &[Row<'_>]) -> Option<String> {
    let seed = sweep.varying.iter().position(|k| k.key == "seed")?;
    let others: Vec<usize> = (0..sweep.varying.len()).filter(|&k| k != seed).collect();
    let mut groups: Vec<(Vec<&GridValue>, Vec<&Row<'_>>)> = Vec::new();
    for row in rows {
        let key: Vec<&GridValue> = others.iter().map(|&k| &row.point.values[k]).collect();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(row),
            None => groups.push((key, vec![row])),
        }
    }
    let columns: Vec<_> = present(rows)
        .filter_map(|c| Some((c, c.over_seeds()?)))
        .collect();
    let mut header: Vec<String> = others
        .iter()
        .map(|&k| sweep.varying[k].key.clone())
        .collect();
    header.push("seeds".to_string());
    header.extend(columns.iter().map(|(_, (h, _))| h.to_string()));
    let body: Vec<Vec<String>> = groups
        .into_iter()
        .map(|(key, members)| {
            let mut cells: Vec<String> = key.iter().map(|v| v.label()).collect();
            cells.push(members.len().to_string());
            for (column, (_, digits)) in &columns {
                let values: Vec<f64> = members
                    .iter()
                    .map(|r| column.number(r).unwrap_or(f64::NAN))
                    .collect();
                cells.push(mean_std(&values, *digits));
            }
            cells
        })
        .collect();
    Some(format!(
        "Mean ± standard deviation over seeds:\n\n{}",
        table(&header, &body)
    ))
}

/// The mean AUROC and AP over the points that have them: overall when one
/// key varies, else for each value of each varying key (the mean over the
/// other keys), so `eval.score = mse` and `mae` are compared over all digits.
pub(super) fn mean_detection(sweep: &Sweep, rows: &[Row<'_>]) -> Option<String> {
    let with: Vec<&Row<'_>> = rows.iter().filter(|r| r.detection.is_some()).collect();
    if with.len() < 2 {
        return None;
    }
    let means = |members: &[&Row<'_>]| {
        let n = members.len() as f64;
        let sum = |f: fn(&ae_store::Detection) -> f64| {
            members
                .iter()
                .filter_map(|r| r.detection.map(f))
                .sum::<f64>()
        };
        (sum(|d| d.auroc) / n, sum(|d| d.average_precision) / n)
    };
    if sweep.varying.len() < 2 {
        let (auroc, ap) = means(&with);
        return Some(format!(
            "Mean over the {} points: AUROC {auroc:.4}, average precision {ap:.4}.\n",
            with.len()
        ));
    }
    let mut text = String::new();
    for (k, key) in sweep.varying.iter().enumerate() {
        let parts: Vec<String> = key
            .values
            .iter()
            .filter_map(|value| {
                let members: Vec<&Row<'_>> = with
                    .iter()
                    .copied()
                    .filter(|r| r.point.values[k] == *value)
                    .collect();
                (!members.is_empty()).then(|| {
                    let (auroc, ap) = means(&members);
                    format!("{} {auroc:.4} (AP {ap:.4})", value.label())
                })
            })
            .collect();
        let _ = writeln!(text, "Mean AUROC by {}: {}.", key.key, parts.join(", "));
    }
    Some(text)
}

/// `0.009660 ± 0.000055`; the deviation is the sample's (n − 1).
pub(super) fn mean_std(values: &[f64], digits: usize) -> String {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return format!("{mean:.digits$}");
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    format!("{mean:.digits$} ± {:.digits$}", var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_deviation() {
        assert_eq!(mean_std(&[1.0, 2.0, 3.0], 2), "2.00 ± 1.00");
        assert_eq!(mean_std(&[0.5], 3), "0.500");
    }
}
