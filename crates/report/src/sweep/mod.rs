//! The summary of a sweep (`ae sweep`, not the report stage): from the
//! points that have finished, `summary.parquet` and `summary.csv` (one row
//! per point), `summary.md` (the same as a table, plus mean AUROC by each
//! varying key and means ± std over seeds when `seed` varies), `val_loss.png`
//! (every point's validation curve) and `<metric>_by_<key>.png` for each
//! varying key.
//!
//! The runner decides which points have finished and hands over their run
//! directories; every result is read here from the point's own files
//! (`manifest.json`, `train/history.csv`, `eval/metrics.json`) through their
//! one reader in `ae-store`. Every column is declared once, in its
//! `columns` module.

mod columns;
mod figures;
mod stats;

use std::path::{Path, PathBuf};

use ae_store::{History, Manifest, Metrics, RunDir, StoreError, files};
use ae_tables::{FrameFormat, write_frame};
use serde::Deserialize;

use crate::{FigureFormat, ReportError, render};

pub use figures::{SweepCurves, SweepMetric};

/// The summary's files, in the sweep's folder.
pub const SUMMARY_PARQUET: &str = "summary.parquet";
/// The summary as CSV.
pub const SUMMARY_CSV: &str = "summary.csv";
/// The summary as Markdown tables.
pub const SUMMARY_MD: &str = "summary.md";
/// Every point's validation loss per epoch.
pub const VAL_LOSS_PLOT: &str = "val_loss.png";

/// A value of a grid key, as the summary shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum GridValue {
    /// A whole number.
    Int(i64),
    /// A number.
    Float(f64),
    /// A flag.
    Bool(bool),
    /// Anything else, as its label.
    Text(String),
}

impl GridValue {
    /// As a table cell shows it.
    pub fn label(&self) -> String {
        match self {
            GridValue::Int(i) => i.to_string(),
            GridValue::Float(f) => format!("{f:?}"),
            GridValue::Bool(b) => b.to_string(),
            GridValue::Text(t) => t.clone(),
        }
    }
}

/// One key of the grid that takes more than one value.
#[derive(Debug, Clone, PartialEq)]
pub struct VaryingKey {
    /// The dotted config key.
    pub key: String,
    /// Its values, in the sweep file's order.
    pub values: Vec<GridValue>,
}

/// The summary column that the per-key figures show (`metric` in a sweep file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The last epoch's validation loss.
    #[default]
    ValLoss,
    /// The lowest validation loss of any epoch.
    BestValLoss,
    /// The anomaly threshold.
    Threshold,
    /// How many test images were flagged.
    Anomalies,
    /// Area under the ROC curve (needs ground truth).
    Auroc,
    /// Average precision (needs ground truth).
    AveragePrecision,
}

impl Metric {
    /// The summary column it is.
    pub fn column(self) -> &'static str {
        match self {
            Metric::ValLoss => "val_loss",
            Metric::BestValLoss => "best_val_loss",
            Metric::Threshold => "threshold",
            Metric::Anomalies => "anomalies",
            Metric::Auroc => "auroc",
            Metric::AveragePrecision => "average_precision",
        }
    }
}

/// What the summary is of.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The sweep's name.
    pub name: String,
    /// The sweep file, as the user named it.
    pub file: PathBuf,
    /// Its base experiment config.
    pub base: PathBuf,
    /// How many points the grid has, finished or not.
    pub points: usize,
    /// The keys that vary, in the file's order.
    pub varying: Vec<VaryingKey>,
    /// What the per-key figures show.
    pub metric: Metric,
}

/// A finished point: where it ran, and its value of each varying key.
#[derive(Debug, Clone)]
pub struct FinishedPoint {
    /// Its name, `latent=16,seed=0`.
    pub name: String,
    /// One value per varying key, in [`Sweep::varying`]'s order.
    pub values: Vec<GridValue>,
    /// Its run directory.
    pub run: RunDir,
}

/// One finished point's results, as read from its files.
#[derive(Debug, Clone)]
pub struct PointResults {
    /// The point.
    pub point: FinishedPoint,
    /// `train/history.csv`.
    pub history: History,
    /// `eval/metrics.json`.
    pub metrics: Metrics,
    /// Seconds its stages took in its run directory (`manifest.json`; a
    /// stage restored from the cache counts its restoring).
    pub seconds: f64,
}

impl PointResults {
    /// Reads the point's results from its run directory.
    pub fn read(point: FinishedPoint) -> Result<Self, ReportError> {
        let history_path = point.run.path(files::HISTORY);
        let history = History::load(&history_path)?;
        if history.epochs.is_empty() {
            return Err(StoreError::Format {
                path: history_path,
                message: "it has no epochs".to_string(),
            }
            .into());
        }
        let metrics = Metrics::load(&point.run.path(files::METRICS))?;
        let manifest = Manifest::load(&point.run.path(files::MANIFEST))?;
        Ok(Self {
            seconds: manifest.stages.values().map(|s| s.seconds).sum(),
            point,
            history,
            metrics,
        })
    }
}

/// Writes the summary of `results` into `dir`; returns the files written.
pub fn write(
    sweep: &Sweep,
    results: &[PointResults],
    dir: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    let rows: Vec<columns::Row<'_>> = results.iter().map(columns::Row::of).collect();
    let mut frame =
        columns::frame(sweep, &rows).map_err(|source| ae_tables::TableError::Polars {
            path: dir.join(SUMMARY_PARQUET),
            source,
        })?;
    let parquet = dir.join(SUMMARY_PARQUET);
    write_frame(&parquet, &mut frame, FrameFormat::Parquet)?;
    let csv = dir.join(SUMMARY_CSV);
    write_frame(&csv, &mut frame, FrameFormat::Csv)?;
    let md = dir.join(SUMMARY_MD);
    let text = format!(
        "# Sweep `{}`\n\n{} of {} points of `{}` ({}).\n\n{}",
        sweep.name,
        results.len(),
        sweep.points,
        sweep.base.display(),
        sweep.file.display(),
        markdown(sweep, results)
    );
    ae_store::write_atomic(&md, |out| out.write_all(text.as_bytes()))?;
    let mut written = vec![parquet, csv, md];
    written.extend(plots(sweep, &rows, dir)?);
    Ok(written)
}

/// The results table, the mean AUROC by key and the means over seeds, as
/// Markdown (what `summary.md` holds and `ae sweep` prints).
pub fn markdown(sweep: &Sweep, results: &[PointResults]) -> String {
    let rows: Vec<columns::Row<'_>> = results.iter().map(columns::Row::of).collect();
    let mut text = columns::markdown_table(sweep, &rows);
    if let Some(means) = stats::mean_detection(sweep, &rows) {
        text.push('\n');
        text.push_str(&means);
    }
    if let Some(seeds) = stats::over_seeds(sweep, &rows) {
        text.push('\n');
        text.push_str(&seeds);
    }
    text
}

/// `val_loss.png` and one plot of the metric against each varying key.
fn plots(
    sweep: &Sweep,
    rows: &[columns::Row<'_>],
    dir: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    let curves: Vec<(String, Vec<(u32, f64)>)> = rows
        .iter()
        .map(|r| {
            let curve = r.history.epochs.iter().map(|e| (e.epoch, e.val_loss));
            (r.point.name.clone(), curve.collect())
        })
        .collect();
    let path = dir.join(VAL_LOSS_PLOT);
    render(&SweepCurves { curves: &curves }, &path, FigureFormat::Png)?;
    let mut written = vec![path];
    let metric = columns::by_name(sweep.metric.column());
    for (k, key) in sweep.varying.iter().enumerate() {
        // The key's values in the file's order; each row at its value's place.
        let categories: Vec<String> = key.values.iter().map(GridValue::label).collect();
        let points: Vec<(usize, f64)> = rows
            .iter()
            .filter_map(|r| {
                let at = key.values.iter().position(|v| *v == r.point.values[k])?;
                Some((at, metric.number(r).unwrap_or(f64::NAN)))
            })
            .collect();
        let file = format!(
            "{}_by_{}.png",
            sweep.metric.column(),
            key.key.replace(
                |c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '_',
                "_"
            )
        );
        let path = dir.join(file);
        let figure = SweepMetric {
            parameter: &key.key,
            metric: sweep.metric.column(),
            categories: &categories,
            points: &points,
        };
        render(&figure, &path, FigureFormat::Png)?;
        written.push(path);
    }
    Ok(written)
}
