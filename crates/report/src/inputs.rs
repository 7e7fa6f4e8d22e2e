//! What the report reads: the other stages' files, each through its one
//! reader (`ae-store`, `ae-tables`).

use std::path::PathBuf;

use ae_store::{FitSummary, History, Metrics, RocCurve, RunDir, Split, files};
use ae_tables::ScoresTable;

use crate::ReportError;

/// Everything the figures and the page show.
pub struct ReportInputs {
    /// The test split.
    pub test: Split,
    /// Its reconstructions, `[N, 784]`.
    pub decoded: Vec<f32>,
    /// `eval/scores.parquet`.
    pub scores: ScoresTable,
    /// `eval/metrics.json`.
    pub metrics: Metrics,
    /// `train/history.csv`.
    pub history: History,
    /// `train/fit.json`.
    pub fit: FitSummary,
    /// `eval/roc.csv`, when the test split has ground truth.
    pub roc: Option<RocCurve>,
    /// The resolved config the report was made with, shown on the page.
    pub config_text: String,
}

impl ReportInputs {
    /// The files the report reads, relative to the run directory; with
    /// `ground_truth`, the operating points too.
    pub fn files(ground_truth: bool) -> Vec<&'static str> {
        let mut inputs = vec![
            files::TEST_SPLIT,
            files::DECODED,
            files::SCORES,
            files::METRICS,
            files::HISTORY,
            files::FIT,
        ];
        if ground_truth {
            inputs.push(files::ROC);
        }
        inputs
    }

    /// The score's name as text shows it: `MSE` or `MAE`.
    pub fn score_name(&self) -> String {
        self.metrics.score.name().to_string()
    }

    /// Reads every input from `run`, checking that they describe the same
    /// images; `config_text` is the resolved config to show.
    pub fn read(run: &RunDir, ground_truth: bool, config_text: &str) -> Result<Self, ReportError> {
        let test = ae_store::read_split(&run.path(files::TEST_SPLIT))?;
        let decoded = ae_store::read_images(&run.path(files::DECODED))?;
        let scores = ScoresTable::read(&run.path(files::SCORES))?;
        let metrics = Metrics::load(&run.path(files::METRICS))?;
        let history = History::load(&run.path(files::HISTORY))?;
        let fit = FitSummary::load(&run.path(files::FIT))?;
        let roc = if ground_truth {
            Some(RocCurve::load(&run.path(files::ROC))?)
        } else {
            None
        };
        let n = test.len();
        let disagree = |path: PathBuf, what: String| ReportError::Disagree {
            path,
            problem: format!("{what}, but the test split has {n} images; rerun infer and eval"),
        };
        if decoded.len() != test.images.len() {
            return Err(disagree(
                run.path(files::DECODED),
                format!(
                    "it holds {} reconstructions",
                    decoded.len() / ae_store::IMAGE_PIXELS
                ),
            ));
        }
        if scores.len() != n || metrics.images != n {
            return Err(disagree(
                run.path(files::SCORES),
                format!(
                    "it scores {} images (metrics.json: {})",
                    scores.len(),
                    metrics.images
                ),
            ));
        }
        if let Some(&index) = metrics.top_indices.iter().find(|&&i| i as usize >= n) {
            return Err(disagree(
                run.path(files::METRICS),
                format!("its top_indices name image {index}"),
            ));
        }
        Ok(Self {
            test,
            decoded,
            scores,
            metrics,
            history,
            fit,
            roc,
            config_text: config_text.to_string(),
        })
    }
}
