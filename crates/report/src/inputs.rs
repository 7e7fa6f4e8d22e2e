//! What the report reads: the stages' files, each parsed into what the figures need.

use std::fs::{self, File};
use std::path::Path;

use ae_store::{RunDir, Split, StoreError, files};
use polars::prelude::*;
use serde::Deserialize;

use crate::ReportError;

/// Everything the figures and the page show.
pub struct ReportInputs {
    /// The test split.
    pub test: Split,
    /// Its reconstructions, `[N, 784]`.
    pub decoded: Vec<f32>,
    /// Per test image, from `eval/scores.parquet`.
    pub scores: Scores,
    /// `eval/metrics.json`.
    pub metrics: MetricsView,
    /// `train/history.csv`: (epoch, loss, val_loss).
    pub history: Vec<(u32, f64, f64)>,
    /// The resolved `config.toml`, shown on the page.
    pub config_text: String,
}

/// The columns of `eval/scores.parquet`.
pub struct Scores {
    /// Score (reconstruction MSE unless `eval.score` says otherwise) per test image.
    pub values: Vec<f32>,
    /// Whether each is an anomaly.
    pub is_anomaly: Vec<bool>,
}

/// The fields of `eval/metrics.json` that the report shows.
#[derive(Debug, Deserialize)]
pub struct MetricsView {
    /// Threshold rule name.
    pub rule: String,
    /// Its parameter.
    pub parameter: f64,
    /// `test` or `train`.
    pub source: String,
    /// The threshold.
    pub threshold: f64,
    /// Test images.
    pub images: usize,
    /// How images were scored: `mse` or `mae`.
    pub score: String,
    /// Summary of the test scores.
    pub scores: SummaryView,
    /// Test images above the threshold.
    pub anomalies: usize,
    /// Their share.
    pub anomaly_rate: f64,
    /// Counts per label.
    pub per_label: Vec<LabelView>,
    /// Highest scores first.
    pub top_indices: Vec<u32>,
    /// Ground-truth metrics, when there is ground truth.
    #[serde(default)]
    pub detection: Option<DetectionView>,
}

/// The ground-truth metrics of `metrics.json` that the report shows.
#[derive(Debug, Deserialize)]
pub struct DetectionView {
    /// True anomalies in the test split.
    pub true_anomalies: usize,
    /// True normal images.
    pub true_normal: usize,
    /// Area under the ROC curve.
    pub auroc: f64,
    /// Average precision.
    pub average_precision: f64,
    /// At the configured threshold.
    pub at_threshold: ConfusionView,
    /// At the threshold with the best F1.
    pub best_f1: ConfusionView,
}

/// Counts and rates at one threshold.
#[derive(Debug, Deserialize)]
pub struct ConfusionView {
    /// The threshold.
    pub threshold: f64,
    /// Anomalies flagged.
    pub true_positives: usize,
    /// Normal images flagged.
    pub false_positives: usize,
    /// Normal images not flagged.
    pub true_negatives: usize,
    /// Anomalies not flagged.
    pub false_negatives: usize,
    /// tp / (tp + fp).
    pub precision: f64,
    /// tp / (tp + fn).
    pub recall: f64,
    /// F1.
    pub f1: f64,
}

/// Mean, median, std and max of the scores.
#[derive(Debug, Deserialize)]
pub struct SummaryView {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub median: f64,
    /// Population standard deviation.
    pub std: f64,
    /// Maximum.
    pub max: f64,
}

/// Counts for one label.
#[derive(Debug, Deserialize)]
pub struct LabelView {
    /// The class.
    pub label: u8,
    /// Test images with it.
    pub images: usize,
    /// Anomalies among them.
    pub anomalies: usize,
    /// Their share.
    pub anomaly_rate: f64,
}

/// The files the report stage reads, relative to the run directory.
pub const INPUTS: [&str; 6] = [
    files::TEST_SPLIT,
    files::DECODED,
    files::SCORES,
    files::METRICS,
    files::HISTORY,
    files::CONFIG,
];

impl ReportInputs {
    /// The score's name as text shows it: `MSE` or `MAE`.
    pub fn score_name(&self) -> String {
        self.metrics.score.to_uppercase()
    }

    /// Reads every input from `run`.
    pub fn read(run: &RunDir) -> Result<Self, ReportError> {
        let test = ae_store::read_split(&run.path(files::TEST_SPLIT))?;
        let decoded = ae_store::read_images(&run.path(files::DECODED))?;
        let metrics_path = run.path(files::METRICS);
        let metrics: MetricsView =
            serde_json::from_str(&read_text(&metrics_path)?).map_err(|e| ReportError::Input {
                path: metrics_path.clone(),
                message: e.to_string(),
            })?;
        let scores = read_scores(&run.path(files::SCORES), &metrics.score)?;
        let history = read_history(&run.path(files::HISTORY))?;
        let config_text = read_text(&run.path(files::CONFIG))?;
        if decoded.len() != test.images.len() || scores.values.len() != test.len() {
            return Err(ReportError::Input {
                path: run.path(files::SCORES),
                message: format!(
                    "the test split has {} images but the reconstructions {} and the scores {}; rerun infer and eval",
                    test.len(),
                    decoded.len() / ae_store::IMAGE_PIXELS,
                    scores.values.len()
                ),
            });
        }
        Ok(Self {
            test,
            decoded,
            scores,
            metrics,
            history,
            config_text,
        })
    }
}

fn read_text(path: &Path) -> Result<String, ReportError> {
    fs::read_to_string(path).map_err(|source| {
        ReportError::Store(StoreError::Read {
            path: path.to_path_buf(),
            source,
        })
    })
}

fn read_scores(path: &Path, column: &str) -> Result<Scores, ReportError> {
    let input_err = |message: String| ReportError::Input {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(|source| {
        ReportError::Store(StoreError::Read {
            path: path.to_path_buf(),
            source,
        })
    })?;
    let frame = ParquetReader::new(file)
        .finish()
        .map_err(|e| input_err(e.to_string()))?;
    let values = frame
        .column(column)
        .and_then(|c| c.f32().map(|c| c.into_no_null_iter().collect()))
        .map_err(|e| input_err(e.to_string()))?;
    let is_anomaly = frame
        .column("is_anomaly")
        .and_then(|c| c.bool().map(|c| c.iter().collect::<Option<Vec<bool>>>()))
        .map_err(|e| input_err(e.to_string()))?
        .ok_or_else(|| input_err("`is_anomaly` has missing values".to_string()))?;
    Ok(Scores { values, is_anomaly })
}

fn read_history(path: &Path) -> Result<Vec<(u32, f64, f64)>, ReportError> {
    let text = read_text(path)?;
    let bad = |line: &str| ReportError::Input {
        path: path.to_path_buf(),
        message: format!("not an `epoch,loss,val_loss,seconds` row: {line:?}"),
    };
    text.lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            match fields.as_slice() {
                [epoch, loss, val_loss, _] => Ok((
                    epoch.parse().map_err(|_| bad(line))?,
                    loss.parse().map_err(|_| bad(line))?,
                    val_loss.parse().map_err(|_| bad(line))?,
                )),
                _ => Err(bad(line)),
            }
        })
        .collect()
}
