//! The `eval` stage: how badly each test image is reconstructed, and which
//! ones are anomalies.
//!
//! Reads [`files::TEST_SPLIT`], [`files::DECODED`] and [`files::MODEL`]
//! (and, when the threshold comes from the training or validation split,
//! that split and its reconstructions); writes [`files::SCORES`], a Parquet
//! table with one row per test image ([`ae_tables::ScoresTable`]),
//! [`files::METRICS`] ([`Metrics`]), [`files::DETECTOR`] (the model's weights
//! with the threshold and what scoring needs, [`ae_store::DetectorInfo`]:
//! a one-file detector) and, when the test split has ground truth,
//! [`files::ROC`] (the operating points the report draws).
//!
//! The seed's recipe by default: per-image MSE over the 784 pixels, the
//! threshold 2 × the mean MSE of the test split, an anomaly strictly above
//! it. Other scores in [`Score`], other rules in [`ThresholdRule`]; with
//! ground truth in the test split, [`detection`] measures how well the
//! scores find the true anomalies. The maths lives in [`scores`],
//! [`metrics`] and [`detection`], which do no I/O.

mod config;
pub mod detection;
pub mod metrics;
pub mod scores;

use std::path::PathBuf;

use ae_store::{
    Env, Input, Metrics, PipelineStage, PixelsRef, RunDir, StageOutcome, StoreError, files,
};
use ae_tables::{ScoresTable, TableError};
use serde_json::json;

pub use ae_store::{Score, ThresholdRule, ThresholdSource};
pub use config::EvalConfig;
pub use detection::OneClass;

/// Why evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// An input could not be read or an output written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The model could not be read, or the detector written.
    #[error(transparent)]
    Model(#[from] ae_model::ModelError),
    /// The scores table could not be written.
    #[error(transparent)]
    Table(#[from] TableError),
    /// Some scores are NaN or infinite: the reconstructions (or the images)
    /// hold values that are not finite numbers.
    #[error(
        "{count} of {images} images scored against {} are not finite numbers (the first: image {first}); the model's weights are probably NaN or infinite: rerun the train stage",
        path.display()
    )]
    NonFinite {
        /// The reconstructions file.
        path: PathBuf,
        /// How many images.
        count: usize,
        /// Of how many.
        images: usize,
        /// The index of the first.
        first: usize,
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

/// The eval stage, for the runner.
#[derive(Debug, Clone, Copy)]
pub struct EvalStage;

/// What the eval stage reads of the experiment config.
#[derive(Debug, Clone, PartialEq)]
pub struct StageConfig {
    /// `[eval]`.
    pub eval: EvalConfig,
    /// Whether the test split says which images are anomalies (the data
    /// config decides): then the stage also writes [`files::ROC`].
    pub ground_truth: bool,
    /// The model's latent size, to read its weights into the detector.
    pub latent: usize,
}

/// What the eval stage found.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOutcome {
    /// What `metrics.json` holds.
    pub metrics: Metrics,
}

impl StageOutcome for EvalOutcome {
    fn result_lines(&self) -> Vec<String> {
        let found = metrics::found_line(&self.metrics);
        std::iter::once(found)
            .chain(metrics::detection_line(&self.metrics))
            .collect()
    }
}

impl PipelineStage for EvalStage {
    const NAME: &'static str = "eval";
    type Config = StageConfig;
    type Outcome = EvalOutcome;
    type Error = EvalError;

    fn inputs(cfg: &StageConfig, _env: &Env) -> Vec<Input> {
        let mut inputs = vec![files::TEST_SPLIT, files::DECODED, files::MODEL];
        if let Some((split, decoded)) = cfg.eval.source.extra_split() {
            inputs.extend([split, decoded]);
        }
        Input::run_files(inputs)
    }

    fn outputs(cfg: &StageConfig) -> Vec<String> {
        let mut outputs = vec![files::SCORES, files::METRICS, files::DETECTOR];
        if cfg.ground_truth {
            outputs.push(files::ROC);
        }
        outputs.into_iter().map(String::from).collect()
    }

    fn params(cfg: &StageConfig) -> serde_json::Value {
        let StageConfig {
            eval:
                EvalConfig {
                    score,
                    rule,
                    k,
                    q,
                    value,
                    source,
                },
            // Out: it follows from the data config, whose effect on the test
            // split (its `is_outlier` tensor) is in the input's digest.
            ground_truth: _,
            // Out: the model file, an input, has it in its shapes and digest.
            latent: _,
        } = cfg;
        json!({"eval": {
            "score": score, "rule": rule, "k": k, "q": q, "value": value, "source": source,
        }})
    }

    fn run(cfg: &StageConfig, _env: &Env, run: &RunDir) -> Result<EvalOutcome, EvalError> {
        let metrics = evaluate(cfg, run)?;
        Ok(EvalOutcome { metrics })
    }
}

/// Scores the test split, sets the threshold and writes every output.
fn evaluate(cfg: &StageConfig, run: &RunDir) -> Result<Metrics, EvalError> {
    let eval = &cfg.eval;
    let test = ae_store::read_split_compact(&run.path(files::TEST_SPLIT))?;
    let scores = score_split(
        eval.score,
        run,
        files::TEST_SPLIT,
        test.pixels.view(),
        files::DECODED,
    )?;
    let source_scores = match eval.source.extra_split() {
        None => scores.clone(),
        Some((split, decoded)) => {
            let images = ae_store::read_split_compact(&run.path(split))?;
            score_split(eval.score, run, split, images.pixels.view(), decoded)?
        }
    };
    let threshold = scores::threshold(eval, &source_scores);
    let flags = scores::flag(&scores, threshold);
    let source_summary = scores::summarize(&source_scores).expect("a split has images");
    let mut metrics = metrics::compute(
        eval,
        threshold,
        source_summary,
        &scores,
        test.labels.as_deref(),
        test.label_names.as_deref(),
        &flags,
    );
    if let Some(truth) = &test.is_outlier {
        match detection::evaluate(&scores, truth, threshold) {
            Ok(detection) => metrics.detection = Some(detection),
            Err(one_class) => tracing::warn!("no detection metrics: {one_class}"),
        }
    }
    if cfg.ground_truth {
        let curve = match &test.is_outlier {
            Some(truth) => detection::roc_curve(&scores, truth),
            None => ae_store::RocCurve::default(),
        };
        curve.save(&run.path(files::ROC))?;
    }
    let table = ScoresTable {
        score: eval.score,
        labels: test.labels,
        values: scores,
        is_anomaly: flags,
        is_outlier: test.is_outlier,
    };
    table.write(&run.path(files::SCORES))?;
    metrics.save(&run.path(files::METRICS))?;
    write_detector(run, cfg.latent, &metrics)?;
    Ok(metrics)
}

/// Writes the one-file detector: the trained weights, and in their
/// metadata the score, the threshold and the scores it was set from.
fn write_detector(run: &RunDir, latent: usize, metrics: &Metrics) -> Result<(), EvalError> {
    let model = run.path(files::MODEL);
    let params = ae_model::Params::load(&model, latent)?;
    let info = ae_store::DetectorInfo {
        latent,
        score: metrics.score,
        rule: metrics.rule,
        parameter: metrics.parameter,
        source: metrics.source,
        threshold: metrics.threshold,
        source_scores: metrics.source_scores,
        model_sha256: ae_store::sha256_file(&model)?,
        ae_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    params.save_with_metadata(&run.path(files::DETECTOR), info.to_metadata())?;
    Ok(())
}

/// Per-image scores of a split's images against their reconstructions
/// file, read a chunk of images at a time (neither is ever all in memory as
/// floats).
fn score_split(
    score: Score,
    run: &RunDir,
    split: &str,
    images: PixelsRef<'_>,
    reconstructions: &str,
) -> Result<Vec<f32>, EvalError> {
    const CHUNK_IMAGES: usize = 1000;
    let decoded_path = run.path(reconstructions);
    let decoded = ae_store::ImageChunks::open(&decoded_path)?;
    if decoded.images() != images.images() {
        return Err(EvalError::CountMismatch {
            originals_path: run.path(split),
            originals: images.images(),
            reconstructions_path: decoded_path,
            reconstructions: decoded.images(),
        });
    }
    let mut scores = Vec::with_capacity(images.images());
    let mut originals = Vec::with_capacity(CHUNK_IMAGES * ae_store::IMAGE_PIXELS);
    decoded.for_each(CHUNK_IMAGES, |first, reconstructions| {
        originals.clear();
        for image in first..first + reconstructions.len() / ae_store::IMAGE_PIXELS {
            images.extend_image(image, &mut originals);
        }
        scores.extend(scores::per_image(score, &originals, reconstructions));
    })?;
    let mut bad = scores.iter().enumerate().filter(|(_, s)| !s.is_finite());
    if let Some((first, _)) = bad.next() {
        return Err(EvalError::NonFinite {
            path: decoded_path,
            count: 1 + bad.count(),
            images: scores.len(),
            first,
        });
    }
    Ok(scores)
}
