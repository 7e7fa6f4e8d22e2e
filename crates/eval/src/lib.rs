//! The `eval` stage: how badly each test image is reconstructed, and which
//! ones are anomalies.
//!
//! Reads [`files::TEST_SPLIT`] and [`files::DECODED`] (and, when the
//! threshold comes from the training split, [`files::TRAIN_SPLIT`] and
//! [`files::TRAIN_DECODED`]); writes [`files::SCORES`], a Parquet table with
//! one row per test image (see [`columns`]), and [`files::METRICS`] (see
//! [`Metrics`]).
//!
//! The seed's recipe by default: per-image MSE over the 784 pixels, the
//! threshold 2 × the mean MSE of the test split, an anomaly strictly above
//! it. Other scores in [`Score`], other rules in [`ThresholdRule`]; with
//! ground truth in the test split, [`detection`] measures how well the
//! scores find the true anomalies. The maths lives in [`scores`] and
//! [`detection`], which do no I/O.

mod config;
pub mod detection;
mod frame;
mod metrics;
pub mod scores;

use std::path::PathBuf;

use ae_store::{RunDir, StoreError, files};

pub use config::{EvalConfig, Score, ThresholdRule, ThresholdSource};
pub use detection::{Confusion, Detection, OneClass};
pub use frame::{columns, read_parquet, scores_frame, write_parquet};
pub use metrics::{LabelCounts, Metrics, TOP};
pub use polars;
pub use scores::Summary;

/// Why evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// An input could not be read or an output written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// polars could not build, write or read the scores table.
    #[error("cannot write or read the scores table {}", path.display())]
    Polars {
        /// The Parquet file.
        path: PathBuf,
        /// What polars reported.
        #[source]
        source: polars::error::PolarsError,
    },
    /// The reconstructions do not match the split.
    #[error(
        "{} holds {reconstructions} images but {} holds {originals}; rerun the infer stage",
        reconstructions_path.display(),
        originals_path.display()
    )]
    CountMismatch {
        /// The split file.
        originals_path: PathBuf,
        /// Images in it.
        originals: usize,
        /// The reconstructions file.
        reconstructions_path: PathBuf,
        /// Images in it.
        reconstructions: usize,
    },
}

/// What the eval stage wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalArtifacts {
    /// The files written, relative to the run directory.
    pub outputs: Vec<&'static str>,
    /// What `metrics.json` holds.
    pub metrics: Metrics,
}

/// The files the eval stage reads for `cfg`, relative to the run directory.
pub fn inputs(cfg: &EvalConfig) -> Vec<&'static str> {
    let mut inputs = vec![files::TEST_SPLIT, files::DECODED];
    if cfg.source == ThresholdSource::Train {
        inputs.extend([files::TRAIN_SPLIT, files::TRAIN_DECODED]);
    }
    inputs
}

/// Runs the eval stage in `run`.
pub fn run(cfg: &EvalConfig, run: &RunDir) -> Result<EvalArtifacts, EvalError> {
    let test = ae_store::read_split(&run.path(files::TEST_SPLIT))?;
    let scores = score_split(
        cfg.score,
        run,
        files::TEST_SPLIT,
        &test.images,
        files::DECODED,
    )?;
    let source_scores = match cfg.source {
        ThresholdSource::Test => scores.clone(),
        ThresholdSource::Train => {
            let train = ae_store::read_split(&run.path(files::TRAIN_SPLIT))?;
            score_split(
                cfg.score,
                run,
                files::TRAIN_SPLIT,
                &train.images,
                files::TRAIN_DECODED,
            )?
        }
    };
    let threshold = scores::threshold(cfg, &source_scores);
    let flags = scores::flag(&scores, threshold);
    let source_summary = Summary::of(&source_scores).expect("a split has images");
    let mut metrics = Metrics::new(
        cfg,
        threshold,
        source_summary,
        &scores,
        &test.labels,
        &flags,
    );
    if let Some(truth) = &test.is_outlier {
        match detection::evaluate(&scores, truth, threshold) {
            Ok(detection) => metrics.detection = Some(detection),
            Err(one_class) => tracing::warn!("no detection metrics: {one_class}"),
        }
    }

    let scores_path = run.path(files::SCORES);
    let mut frame = scores_frame(
        &test.labels,
        cfg.score,
        &scores,
        &flags,
        test.is_outlier.as_deref(),
    )
    .map_err(|source| EvalError::Polars {
        path: scores_path.clone(),
        source,
    })?;
    write_parquet(&scores_path, &mut frame)?;
    let json = serde_json::to_vec_pretty(&metrics).expect("metrics serialize to JSON");
    ae_store::write_atomic(&run.path(files::METRICS), |out| {
        out.write_all(&json)?;
        out.write_all(b"\n")
    })?;
    Ok(EvalArtifacts {
        outputs: vec![files::SCORES, files::METRICS],
        metrics,
    })
}

/// Per-image scores of a split's images against their reconstructions file.
fn score_split(
    score: Score,
    run: &RunDir,
    split: &str,
    images: &[f32],
    reconstructions: &str,
) -> Result<Vec<f32>, EvalError> {
    let decoded_path = run.path(reconstructions);
    let decoded = ae_store::read_images(&decoded_path)?;
    if decoded.len() != images.len() {
        return Err(EvalError::CountMismatch {
            originals_path: run.path(split),
            originals: images.len() / ae_store::IMAGE_PIXELS,
            reconstructions_path: decoded_path,
            reconstructions: decoded.len() / ae_store::IMAGE_PIXELS,
        });
    }
    Ok(scores::per_image(score, images, &decoded))
}
