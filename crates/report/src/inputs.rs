//! What the report reads: the other stages' files, each through its one
//! reader (`ae-store`, `ae-tables`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use ae_store::{CompactSplit, FitSummary, History, Metrics, RocCurve, RunDir, files};
use ae_tables::ScoresTable;

use crate::ReportError;

/// Everything the figures and the page show.
pub struct ReportInputs {
    /// The test split (its images as compactly as they are exact).
    pub test: CompactSplit,
    /// The pixels of the test images the figures show (the first
    /// `examples` and every one in `metrics.top_indices`), by index.
    pub originals: BTreeMap<usize, Vec<f32>>,
    /// Their reconstructions, by index: only these are read from
    /// `infer/decoded.safetensors`, a chunk at a time.
    pub reconstructions: BTreeMap<usize, Vec<f32>>,
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
    pub fn read(
        run: &RunDir,
        ground_truth: bool,
        config_text: &str,
        examples: usize,
    ) -> Result<Self, ReportError> {
        let test = ae_store::read_split_compact(&run.path(files::TEST_SPLIT))?;
        let decoded = ae_store::ImageChunks::open(&run.path(files::DECODED))?;
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
        if decoded.images() != n {
            return Err(disagree(
                run.path(files::DECODED),
                format!("it holds {} reconstructions", decoded.images()),
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
        let shown: Vec<usize> = (0..examples.min(n))
            .chain(metrics.top_indices.iter().map(|&i| i as usize))
            .collect();
        let originals = shown.iter().map(|&i| (i, test.image(i))).collect();
        let mut reconstructions = BTreeMap::new();
        decoded.for_each(1000, |first, chunk| {
            let rows = first..first + chunk.len() / ae_store::IMAGE_PIXELS;
            for &i in shown.iter().filter(|i| rows.contains(i)) {
                let at = (i - first) * ae_store::IMAGE_PIXELS;
                reconstructions.insert(i, chunk[at..at + ae_store::IMAGE_PIXELS].to_vec());
            }
        })?;
        Ok(Self {
            test,
            originals,
            reconstructions,
            scores,
            metrics,
            history,
            fit,
            roc,
            config_text: config_text.to_string(),
        })
    }
}
