//! The sweep's summary, from the points that have finished:
//! `summary.parquet` and `summary.csv` (one row per point), `summary.md`
//! (the same as a table, plus means ± std over seeds when `seed` is a grid
//! key), `val_loss.png` (every point's validation curve) and
//! `<metric>_by_<key>.png` for each grid key that varies.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ae_eval::Metrics;
use ae_report::{FigureFormat, SweepCurves, SweepMetric};
use ae_store::{Manifest, files};
use ae_train::History;
use anyhow::{Context, bail};
use polars::prelude::{Column, CsvWriter, DataFrame, ParquetWriter, PolarsResult, SerWriter};

use super::spec::value_label;
use super::{Point, Sweep, point_dir, points};
use crate::output;
use crate::pipeline::Workspace;

/// The summary files, in `runs/<sweep>/`.
pub const SUMMARY_PARQUET: &str = "summary.parquet";
/// The summary as CSV.
pub const SUMMARY_CSV: &str = "summary.csv";
/// The summary as Markdown tables.
pub const SUMMARY_MD: &str = "summary.md";
/// Every point's validation loss per epoch.
pub const VAL_LOSS_PLOT: &str = "val_loss.png";

/// One finished point's results.
#[derive(Debug, Clone)]
struct Row {
    point: String,
    /// One value per axis of the sweep.
    values: Vec<toml::Value>,
    loss: f64,
    val_loss: f64,
    best_val_loss: f64,
    best_epoch: u32,
    threshold: f64,
    anomalies: u32,
    images: u32,
    /// Seconds this point's stages took in its run directory (a stage
    /// restored from the cache counts its restoring).
    seconds: f64,
    /// Seconds its training took, wherever it was computed.
    train_seconds: f64,
    curve: Vec<(u32, f64)>,
    /// Ground-truth metrics, when the test split has ground truth.
    detection: Option<ae_eval::Detection>,
}

/// Reads every finished point and writes the summary; says which points
/// have not finished. Fails when none has.
pub fn collect_and_write(sweep: &Sweep, workspace: &Workspace, dir: &Path) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let mut unfinished = Vec::new();
    for point in &sweep.points {
        if points::finished(sweep, point, workspace)? {
            rows.push(read_row(point, &point_dir(workspace, point))?);
        } else {
            unfinished.push(point.name.as_str());
        }
    }
    if rows.is_empty() {
        bail!(
            "no point of sweep `{}` has finished in {}; run `ae sweep {}` first",
            sweep.name,
            dir.display(),
            sweep.file.display()
        );
    }
    let written = write(sweep, &rows, dir)?;
    let table = markdown(sweep, &rows);
    for line in table.lines() {
        output::line(line);
    }
    if !unfinished.is_empty() {
        output::line(format_args!(
            "{} of {} points have not finished and are not in the summary: {}",
            unfinished.len(),
            sweep.points.len(),
            unfinished.join(" ")
        ));
    }
    output::line(format_args!(
        "summary: {}",
        written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    ));
    Ok(())
}

fn read_row(point: &Point, run: &Path) -> anyhow::Result<Row> {
    let history = History::load(&run.join(files::HISTORY))?;
    let (Some(last), Some(best)) = (history.last(), history.best()) else {
        bail!("{} has no epochs", run.join(files::HISTORY).display());
    };
    let metrics_path = run.join(files::METRICS);
    let metrics: Metrics = serde_json::from_slice(
        &std::fs::read(&metrics_path)
            .with_context(|| format!("cannot read {}", metrics_path.display()))?,
    )
    .with_context(|| format!("{} is not a metrics file", metrics_path.display()))?;
    let manifest = Manifest::load(&run.join(files::MANIFEST))?;
    Ok(Row {
        point: point.name.clone(),
        values: point.values.clone(),
        loss: last.loss,
        val_loss: last.val_loss,
        best_val_loss: best.val_loss,
        best_epoch: best.epoch,
        threshold: metrics.threshold,
        anomalies: u32::try_from(metrics.anomalies).unwrap_or(u32::MAX),
        images: u32::try_from(metrics.images).unwrap_or(u32::MAX),
        seconds: manifest.stages.values().map(|s| s.seconds).sum(),
        train_seconds: history.epochs.iter().map(|e| e.seconds).sum(),
        curve: history
            .epochs
            .iter()
            .map(|e| (e.epoch, e.val_loss))
            .collect(),
        detection: metrics.detection,
    })
}

/// The rows as a DataFrame: `point`, each varying key (typed as its values
/// are), then the results.
fn frame(sweep: &Sweep, rows: &[Row]) -> PolarsResult<DataFrame> {
    let mut columns = vec![Column::new(
        "point".into(),
        rows.iter().map(|r| r.point.as_str()).collect::<Vec<_>>(),
    )];
    for (i, axis) in sweep.varying() {
        let values: Vec<&toml::Value> = rows.iter().map(|r| &r.values[i]).collect();
        columns.push(parameter_column(&axis.key, &values));
    }
    let f64s = |f: fn(&Row) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
    let u32s = |f: fn(&Row) -> u32| rows.iter().map(f).collect::<Vec<u32>>();
    columns.extend([
        Column::new("val_loss".into(), f64s(|r| r.val_loss)),
        Column::new("best_val_loss".into(), f64s(|r| r.best_val_loss)),
        Column::new("best_epoch".into(), u32s(|r| r.best_epoch)),
        Column::new("loss".into(), f64s(|r| r.loss)),
        Column::new("threshold".into(), f64s(|r| r.threshold)),
        Column::new("anomalies".into(), u32s(|r| r.anomalies)),
        Column::new("images".into(), u32s(|r| r.images)),
        Column::new("seconds".into(), f64s(|r| r.seconds)),
        Column::new("train_seconds".into(), f64s(|r| r.train_seconds)),
    ]);
    if rows.iter().any(|r| r.detection.is_some()) {
        let detection = |f: fn(&ae_eval::Detection) -> f64| {
            rows.iter()
                .map(|r| r.detection.as_ref().map(f))
                .collect::<Vec<Option<f64>>>()
        };
        columns.extend([
            Column::new("auroc".into(), detection(|d| d.auroc)),
            Column::new(
                "average_precision".into(),
                detection(|d| d.average_precision),
            ),
            Column::new("precision".into(), detection(|d| d.at_threshold.precision)),
            Column::new("recall".into(), detection(|d| d.at_threshold.recall)),
            Column::new("f1".into(), detection(|d| d.at_threshold.f1)),
            Column::new("best_f1".into(), detection(|d| d.best_f1.f1)),
        ]);
    }
    DataFrame::new(rows.len(), columns)
}

/// Integers, floats (integers among them widened), booleans, or else text.
fn parameter_column(name: &str, values: &[&toml::Value]) -> Column {
    use toml::Value as V;
    if let Some(ints) = values
        .iter()
        .map(|v| v.as_integer())
        .collect::<Option<Vec<i64>>>()
    {
        return Column::new(name.into(), ints);
    }
    let as_float = |v: &&toml::Value| match v {
        V::Float(f) => Some(*f),
        V::Integer(i) => Some(*i as f64),
        _ => None,
    };
    if let Some(floats) = values.iter().map(as_float).collect::<Option<Vec<f64>>>() {
        return Column::new(name.into(), floats);
    }
    if let Some(bools) = values
        .iter()
        .map(|v| v.as_bool())
        .collect::<Option<Vec<bool>>>()
    {
        return Column::new(name.into(), bools);
    }
    Column::new(
        name.into(),
        values.iter().map(|v| value_label(v)).collect::<Vec<_>>(),
    )
}

fn write(sweep: &Sweep, rows: &[Row], dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut df = frame(sweep, rows).context("cannot build the summary table")?;
    let parquet = dir.join(SUMMARY_PARQUET);
    write_with(&parquet, |out| {
        ParquetWriter::new(out).finish(&mut df).map(drop)
    })?;
    let csv = dir.join(SUMMARY_CSV);
    write_with(&csv, |out| CsvWriter::new(out).finish(&mut df))?;
    let md = dir.join(SUMMARY_MD);
    let text = format!(
        "# Sweep `{}`\n\n{} of {} points of `{}` ({}).\n\n{}",
        sweep.name,
        rows.len(),
        sweep.points.len(),
        sweep.base.display(),
        sweep.file.display(),
        markdown(sweep, rows)
    );
    ae_store::write_atomic(&md, |out| out.write_all(text.as_bytes()))?;
    let mut written = vec![parquet, csv, md];
    written.extend(plots(sweep, rows, dir)?);
    Ok(written)
}

/// Writes a file through a polars writer, atomically.
fn write_with(
    path: &Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> PolarsResult<()>,
) -> anyhow::Result<()> {
    ae_store::write_atomic(path, |out| write(out).map_err(std::io::Error::other))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The results table, and the means over seeds when `seed` varies.
fn markdown(sweep: &Sweep, rows: &[Row]) -> String {
    let varying = sweep.varying();
    let mut header: Vec<String> = varying.iter().map(|(_, a)| a.key.clone()).collect();
    header.extend(
        [
            "val_loss",
            "best val_loss (epoch)",
            "threshold",
            "anomalies",
            "seconds",
        ]
        .map(String::from),
    );
    let with_truth = rows.iter().any(|r| r.detection.is_some());
    if with_truth {
        header.extend(["AUROC", "AP", "F1"].map(String::from));
    }
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut cells: Vec<String> = varying
                .iter()
                .map(|(i, _)| value_label(&r.values[*i]))
                .collect();
            cells.extend([
                format!("{:.6}", r.val_loss),
                format!("{:.6} ({})", r.best_val_loss, r.best_epoch),
                format!("{:.6}", r.threshold),
                r.anomalies.to_string(),
                format!("{:.1}", r.seconds),
            ]);
            if with_truth {
                let shown = |f: fn(&ae_eval::Detection) -> f64| {
                    r.detection
                        .as_ref()
                        .map_or("–".to_string(), |d| format!("{:.4}", f(d)))
                };
                cells.extend([
                    shown(|d| d.auroc),
                    shown(|d| d.average_precision),
                    shown(|d| d.at_threshold.f1),
                ]);
            }
            cells
        })
        .collect();
    let mut text = table(&header, &body);
    if let Some(means) = mean_detection(sweep, rows) {
        text.push('\n');
        text.push_str(&means);
    }
    if let Some(seeds) = over_seeds(sweep, rows) {
        text.push('\n');
        text.push_str(&seeds);
    }
    text
}

/// Mean ± sample standard deviation over the `seed` axis, one row per
/// combination of the other varying keys; `None` unless `seed` varies.
fn over_seeds(sweep: &Sweep, rows: &[Row]) -> Option<String> {
    let varying = sweep.varying();
    let (seed_axis, _) = *varying.iter().find(|(_, a)| a.key == "seed")?;
    let others: Vec<usize> = varying
        .iter()
        .map(|(i, _)| *i)
        .filter(|i| *i != seed_axis)
        .collect();
    let mut groups: Vec<(Vec<String>, Vec<&Row>)> = Vec::new();
    for row in rows {
        let key: Vec<String> = others
            .iter()
            .map(|i| value_label(&row.values[*i]))
            .collect();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(row),
            None => groups.push((key, vec![row])),
        }
    }
    let mut header: Vec<String> = others.iter().map(|i| sweep.axes[*i].key.clone()).collect();
    header.extend(
        [
            "seeds",
            "val_loss",
            "best val_loss",
            "threshold",
            "anomalies",
        ]
        .map(String::from),
    );
    let with_truth = rows.iter().any(|r| r.detection.is_some());
    if with_truth {
        header.push("AUROC".to_string());
    }
    let body: Vec<Vec<String>> = groups
        .into_iter()
        .map(|(mut cells, members)| {
            let stat = |f: &dyn Fn(&Row) -> f64, digits: usize| {
                let values: Vec<f64> = members.iter().map(|r| f(r)).collect();
                mean_std(&values, digits)
            };
            cells.extend([
                members.len().to_string(),
                stat(&|r| r.val_loss, 6),
                stat(&|r| r.best_val_loss, 6),
                stat(&|r| r.threshold, 6),
                stat(&|r| f64::from(r.anomalies), 1),
            ]);
            if with_truth {
                cells.push(stat(
                    &|r| r.detection.as_ref().map_or(f64::NAN, |d| d.auroc),
                    4,
                ));
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
fn mean_detection(sweep: &Sweep, rows: &[Row]) -> Option<String> {
    let with: Vec<&Row> = rows.iter().filter(|r| r.detection.is_some()).collect();
    if with.len() < 2 {
        return None;
    }
    let means = |members: &[&Row]| {
        let n = members.len() as f64;
        let sum = |f: fn(&ae_eval::Detection) -> f64| {
            members
                .iter()
                .filter_map(|r| r.detection.as_ref().map(f))
                .sum::<f64>()
        };
        (sum(|d| d.auroc) / n, sum(|d| d.average_precision) / n)
    };
    let varying = sweep.varying();
    if varying.len() < 2 {
        let (auroc, ap) = means(&with);
        return Some(format!(
            "Mean over the {} points: AUROC {auroc:.4}, average precision {ap:.4}.\n",
            with.len()
        ));
    }
    let mut text = String::new();
    for (i, axis) in varying {
        let parts: Vec<String> = axis
            .values
            .iter()
            .filter_map(|value| {
                let members: Vec<&Row> = with
                    .iter()
                    .copied()
                    .filter(|r| r.values[i] == *value)
                    .collect();
                (!members.is_empty()).then(|| {
                    let (auroc, ap) = means(&members);
                    format!("{} {auroc:.4} (AP {ap:.4})", value_label(value))
                })
            })
            .collect();
        let _ = writeln!(text, "Mean AUROC by {}: {}.", axis.key, parts.join(", "));
    }
    Some(text)
}

/// `0.009660 ± 0.000055`; the deviation is the sample's (n − 1).
fn mean_std(values: &[f64], digits: usize) -> String {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return format!("{mean:.digits$}");
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    format!("{mean:.digits$} ± {:.digits$}", var.sqrt())
}

/// A Markdown table with aligned columns.
fn table(header: &[String], body: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            body.iter()
                .map(|row| row[c].chars().count())
                .chain([header[c].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut text = line(header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    let _ = writeln!(text, "|-{}-|", rule.join("-|-"));
    for row in body {
        text.push_str(&line(row));
    }
    text
}

/// `val_loss.png` and one plot of the metric against each varying key.
fn plots(sweep: &Sweep, rows: &[Row], dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let curves: Vec<(String, Vec<(u32, f64)>)> = rows
        .iter()
        .map(|r| (r.point.clone(), r.curve.clone()))
        .collect();
    let path = dir.join(VAL_LOSS_PLOT);
    ae_report::render(&SweepCurves { curves: &curves }, &path, FigureFormat::Png)?;
    let mut written = vec![path];
    let metric = sweep.metric;
    for (i, axis) in sweep.varying() {
        // The axis's values in the file's order; each row at its value's place.
        let categories: Vec<String> = axis.values.iter().map(value_label).collect();
        let points: Vec<(usize, f64)> = rows
            .iter()
            .filter_map(|r| {
                let at = axis.values.iter().position(|v| *v == r.values[i])?;
                Some((at, metric_of(metric, r)))
            })
            .collect();
        let file = format!(
            "{}_by_{}.png",
            metric.column(),
            axis.key.replace(
                |c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '_',
                "_"
            )
        );
        let path = dir.join(file);
        let figure = SweepMetric {
            parameter: &axis.key,
            metric: metric.column(),
            categories: &categories,
            points: &points,
        };
        ae_report::render(&figure, &path, FigureFormat::Png)?;
        written.push(path);
    }
    Ok(written)
}

fn metric_of(metric: super::Metric, row: &Row) -> f64 {
    match metric {
        super::Metric::ValLoss => row.val_loss,
        super::Metric::BestValLoss => row.best_val_loss,
        super::Metric::Threshold => row.threshold,
        super::Metric::Anomalies => f64::from(row.anomalies),
        super::Metric::Auroc => row.detection.as_ref().map_or(f64::NAN, |d| d.auroc),
        super::Metric::AveragePrecision => row
            .detection
            .as_ref()
            .map_or(f64::NAN, |d| d.average_precision),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_deviation() {
        assert_eq!(mean_std(&[1.0, 2.0, 3.0], 2), "2.00 ± 1.00");
        assert_eq!(mean_std(&[0.5], 3), "0.500");
    }

    #[test]
    fn tables_align_their_columns() {
        let header = vec!["a".to_string(), "long header".to_string()];
        let body = vec![vec!["12345".to_string(), "x".to_string()]];
        assert_eq!(
            table(&header, &body),
            "| a     | long header |\n|-------|-------------|\n| 12345 | x           |\n"
        );
    }
}
