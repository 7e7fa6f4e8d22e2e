//! Every column of the sweep summary, declared once: its name in
//! `summary.parquet` and `summary.csv`, its type, how it is read off a
//! point's results, and whether and how `summary.md` shows it.

use std::fmt::Write as _;

use ae_store::Detection;
use ae_tables::polars::prelude::{Column, DataFrame, PolarsResult};

use super::{GridValue, PointResults, Sweep};

/// One finished point, with the figures every column reads.
pub(super) struct Row<'a> {
    pub(super) point: &'a super::FinishedPoint,
    pub(super) history: &'a ae_store::History,
    val_loss: f64,
    loss: f64,
    best_val_loss: f64,
    best_epoch: u32,
    seconds: f64,
    train_seconds: f64,
    threshold: f64,
    anomalies: usize,
    images: usize,
    pub(super) detection: Option<&'a Detection>,
}

impl<'a> Row<'a> {
    pub(super) fn of(results: &'a PointResults) -> Self {
        let history = &results.history;
        let last = history.last().expect("a finished point has epochs");
        let best = history.best().expect("a finished point has epochs");
        Self {
            point: &results.point,
            history,
            val_loss: last.val_loss,
            loss: last.loss,
            best_val_loss: best.val_loss,
            best_epoch: best.epoch,
            seconds: results.seconds,
            train_seconds: history.epochs.iter().map(|e| e.seconds).sum(),
            threshold: results.metrics.threshold,
            anomalies: results.metrics.anomalies,
            images: results.metrics.images,
            detection: results.metrics.detection.as_ref(),
        }
    }
}

/// How a column's values are stored in the tables.
#[derive(Clone, Copy)]
enum Kind {
    /// f64.
    Number,
    /// u32 (counts and epochs).
    Count,
}

/// A cell of `summary.md`'s results table: its header and how a row shows it.
type MarkdownCell = (&'static str, fn(&Row<'_>) -> String);

/// One result column of the summary.
pub(super) struct ResultColumn {
    /// The name in `summary.parquet` and `summary.csv`.
    pub(super) name: &'static str,
    kind: Kind,
    /// Only with ground truth (the detection metrics): absent from every
    /// table when no point has them.
    truth: bool,
    /// Its value for a point; `None` when the point has none (no ground truth).
    value: fn(&Row<'_>) -> Option<f64>,
    /// The header and cell of the results table in `summary.md`, if it is there.
    markdown: Option<MarkdownCell>,
    /// The header and digits of the means over seeds in `summary.md`, if it is there.
    over_seeds: Option<(&'static str, usize)>,
}

impl ResultColumn {
    /// The column's value for `row` as a number.
    pub(super) fn number(&self, row: &Row<'_>) -> Option<f64> {
        (self.value)(row)
    }

    /// The header and digits of its mean over seeds, if `summary.md` shows one.
    pub(super) fn over_seeds(&self) -> Option<(&'static str, usize)> {
        self.over_seeds
    }
}

/// The detection metric `f` of a row, when it has ground truth.
fn detection(row: &Row<'_>, f: fn(&Detection) -> f64) -> Option<f64> {
    row.detection.map(f)
}

/// `–` without ground truth, the value to four decimals with it.
fn detection_cell(value: Option<f64>) -> String {
    value.map_or("–".to_string(), |v| format!("{v:.4}"))
}

/// Every result column, in the tables' order (after `point` and the varying keys).
pub(super) const COLUMNS: &[ResultColumn] = &[
    ResultColumn {
        name: "val_loss",
        kind: Kind::Number,
        truth: false,
        value: |r| Some(r.val_loss),
        markdown: Some(("val_loss", |r| format!("{:.6}", r.val_loss))),
        over_seeds: Some(("val_loss", 6)),
    },
    ResultColumn {
        name: "best_val_loss",
        kind: Kind::Number,
        truth: false,
        value: |r| Some(r.best_val_loss),
        markdown: Some(("best val_loss (epoch)", |r| {
            format!("{:.6} ({})", r.best_val_loss, r.best_epoch)
        })),
        over_seeds: Some(("best val_loss", 6)),
    },
    ResultColumn {
        name: "best_epoch",
        kind: Kind::Count,
        truth: false,
        value: |r| Some(f64::from(r.best_epoch)),
        markdown: None,
        over_seeds: None,
    },
    ResultColumn {
        name: "loss",
        kind: Kind::Number,
        truth: false,
        value: |r| Some(r.loss),
        markdown: None,
        over_seeds: None,
    },
    ResultColumn {
        name: "threshold",
        kind: Kind::Number,
        truth: false,
        value: |r| Some(r.threshold),
        markdown: Some(("threshold", |r| ae_store::readable(r.threshold, 6))),
        over_seeds: Some(("threshold", 6)),
    },
    ResultColumn {
        name: "anomalies",
        kind: Kind::Count,
        truth: false,
        value: |r| Some(r.anomalies as f64),
        markdown: Some(("anomalies", |r| r.anomalies.to_string())),
        over_seeds: Some(("anomalies", 1)),
    },
    ResultColumn {
        name: "images",
        kind: Kind::Count,
        truth: false,
        value: |r| Some(r.images as f64),
        markdown: None,
        over_seeds: None,
    },
    ResultColumn {
        name: "seconds",
        kind: Kind::Number,
        truth: false,
        value: |r| Some(r.seconds),
        markdown: Some(("seconds", |r| format!("{:.1}", r.seconds))),
        over_seeds: None,
    },
    ResultColumn {
        name: "train_seconds",
        kind: Kind::Number,
        truth: false,
        value: |r| Some(r.train_seconds),
        markdown: None,
        over_seeds: None,
    },
    ResultColumn {
        name: "auroc",
        kind: Kind::Number,
        truth: true,
        value: |r| detection(r, |d| d.auroc),
        markdown: Some(("AUROC", |r| detection_cell(detection(r, |d| d.auroc)))),
        over_seeds: Some(("AUROC", 4)),
    },
    ResultColumn {
        name: "average_precision",
        kind: Kind::Number,
        truth: true,
        value: |r| detection(r, |d| d.average_precision),
        markdown: Some(("AP", |r| {
            detection_cell(detection(r, |d| d.average_precision))
        })),
        over_seeds: None,
    },
    ResultColumn {
        name: "precision",
        kind: Kind::Number,
        truth: true,
        value: |r| detection(r, |d| d.at_threshold.precision),
        markdown: None,
        over_seeds: None,
    },
    ResultColumn {
        name: "recall",
        kind: Kind::Number,
        truth: true,
        value: |r| detection(r, |d| d.at_threshold.recall),
        markdown: None,
        over_seeds: None,
    },
    ResultColumn {
        name: "f1",
        kind: Kind::Number,
        truth: true,
        value: |r| detection(r, |d| d.at_threshold.f1),
        markdown: Some(("F1", |r| {
            detection_cell(detection(r, |d| d.at_threshold.f1))
        })),
        over_seeds: None,
    },
    ResultColumn {
        name: "best_f1",
        kind: Kind::Number,
        truth: true,
        value: |r| detection(r, |d| d.best_f1.f1),
        markdown: None,
        over_seeds: None,
    },
];

/// The column named `name`.
///
/// # Panics
/// If there is none (a caller bug: every [`super::Metric`] names one).
pub(super) fn by_name(name: &str) -> &'static ResultColumn {
    COLUMNS
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no summary column `{name}`"))
}

/// The columns the tables of `rows` have: the detection metrics only when
/// some point has ground truth.
pub(super) fn present(rows: &[Row<'_>]) -> impl Iterator<Item = &'static ResultColumn> {
    let truth = rows.iter().any(|r| r.detection.is_some());
    COLUMNS.iter().filter(move |c| truth || !c.truth)
}

/// The rows as a DataFrame: `point`, each varying key (typed as its values
/// are), then every present result column.
pub(super) fn frame(sweep: &Sweep, rows: &[Row<'_>]) -> PolarsResult<DataFrame> {
    let names: Vec<&str> = rows.iter().map(|r| r.point.name.as_str()).collect();
    let mut columns = vec![Column::new("point".into(), names)];
    for (k, key) in sweep.varying.iter().enumerate() {
        let values: Vec<&GridValue> = rows.iter().map(|r| &r.point.values[k]).collect();
        columns.push(key_column(&key.key, &values));
    }
    for column in present(rows) {
        let values = rows.iter().map(|r| column.number(r));
        columns.push(match column.kind {
            Kind::Number if column.truth => {
                Column::new(column.name.into(), values.collect::<Vec<Option<f64>>>())
            }
            Kind::Number => Column::new(
                column.name.into(),
                values.map(|v| v.unwrap_or(f64::NAN)).collect::<Vec<f64>>(),
            ),
            Kind::Count => Column::new(
                column.name.into(),
                values
                    .map(|v| v.map_or(0, |v| v.min(f64::from(u32::MAX)) as u32))
                    .collect::<Vec<u32>>(),
            ),
        });
    }
    DataFrame::new(rows.len(), columns)
}

/// Integers, floats (integers among them widened), booleans, or else text.
fn key_column(name: &str, values: &[&GridValue]) -> Column {
    use GridValue as V;
    let ints: Option<Vec<i64>> = values
        .iter()
        .map(|v| match v {
            V::Int(i) => Some(*i),
            _ => None,
        })
        .collect();
    if let Some(ints) = ints {
        return Column::new(name.into(), ints);
    }
    let floats: Option<Vec<f64>> = values
        .iter()
        .map(|v| match v {
            V::Float(f) => Some(*f),
            V::Int(i) => Some(*i as f64),
            _ => None,
        })
        .collect();
    if let Some(floats) = floats {
        return Column::new(name.into(), floats);
    }
    let bools: Option<Vec<bool>> = values
        .iter()
        .map(|v| match v {
            V::Bool(b) => Some(*b),
            _ => None,
        })
        .collect();
    if let Some(bools) = bools {
        return Column::new(name.into(), bools);
    }
    Column::new(
        name.into(),
        values.iter().map(|v| v.label()).collect::<Vec<_>>(),
    )
}

/// The results table of `summary.md`: each varying key, then the columns
/// it shows.
pub(super) fn markdown_table(sweep: &Sweep, rows: &[Row<'_>]) -> String {
    let shown: Vec<MarkdownCell> = present(rows).filter_map(|c| c.markdown).collect();
    let mut header: Vec<String> = sweep.varying.iter().map(|k| k.key.clone()).collect();
    header.extend(shown.iter().map(|(h, _)| h.to_string()));
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut cells: Vec<String> = r.point.values.iter().map(GridValue::label).collect();
            cells.extend(shown.iter().map(|(_, cell)| cell(r)));
            cells
        })
        .collect();
    table(&header, &body)
}

/// A Markdown table with aligned columns.
pub(super) fn table(header: &[String], body: &[Vec<String>]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let header = vec!["a".to_string(), "long header".to_string()];
        let body = vec![vec!["12345".to_string(), "x".to_string()]];
        assert_eq!(
            table(&header, &body),
            "| a     | long header |\n|-------|-------------|\n| 12345 | x           |\n"
        );
    }

    #[test]
    fn every_metric_names_a_column_and_names_are_unique() {
        use super::super::Metric;
        for metric in [
            Metric::ValLoss,
            Metric::BestValLoss,
            Metric::Threshold,
            Metric::Anomalies,
            Metric::Auroc,
            Metric::AveragePrecision,
        ] {
            assert_eq!(by_name(metric.column()).name, metric.column());
        }
        let mut names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COLUMNS.len());
    }

    #[test]
    fn key_columns_take_the_values_type() {
        let dtype = |values: &[GridValue]| {
            let refs: Vec<&GridValue> = values.iter().collect();
            key_column("k", &refs).dtype().to_string()
        };
        assert_eq!(dtype(&[GridValue::Int(1), GridValue::Int(2)]), "i64");
        assert_eq!(dtype(&[GridValue::Int(1), GridValue::Float(0.5)]), "f64");
        assert_eq!(dtype(&[GridValue::Bool(true)]), "bool");
        assert_eq!(
            dtype(&[GridValue::Int(1), GridValue::Text("x".into())]),
            "str"
        );
    }
}
