//! The config sections of the stages that are still to come: `[model]`,
//! `[train]`, `[eval]`, `[report]`.
//!
//! They are read and validated now so that every config in `configs/` is
//! complete and checked from the start; each moves into its stage's crate
//! when that stage lands (the design has each stage crate own its section).

use ae_store::Problem;
use serde::{Deserialize, Serialize};

/// `[model]`: the autoencoder's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Width of the code layer: one of [`ModelConfig::LATENT_SIZES`].
    pub latent: usize,
}

impl ModelConfig {
    /// The latent sizes compiled into the model (it is statically shaped).
    pub const LATENT_SIZES: [usize; 5] = [8, 16, 32, 64, 128];
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self { latent: 32 }
    }
}

/// `[train]`: Adam on the reconstruction MSE, Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Passes over the training split.
    pub epochs: u32,
    /// Images per step; the last, partial batch is used too.
    pub batch_size: usize,
    /// Reshuffle the training split every epoch (from the config's seed).
    pub shuffle: bool,
    /// Adam's step size.
    pub learning_rate: f64,
    /// Adam's first-moment decay.
    pub beta1: f64,
    /// Adam's second-moment decay.
    pub beta2: f64,
    /// Adam's denominator guard (Keras: 1e-7).
    pub epsilon: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 50,
            batch_size: 256,
            shuffle: true,
            learning_rate: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
        }
    }
}

/// How the anomaly threshold is derived from the reconstruction errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdRule {
    /// `k` × the mean MSE (the seed: k = 2).
    MeanMultiple,
    /// The `q`-th percentile of the MSE.
    Percentile,
    /// mean + `k` × standard deviation of the MSE.
    MeanStd,
    /// A fixed `value`.
    Value,
}

/// Which split's scores the threshold is computed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdSource {
    /// The test split's own scores, as the seed does.
    Test,
    /// The training split's scores, applied to the test split.
    Train,
}

/// `[eval]`: scoring and the anomaly threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// The threshold rule.
    pub rule: ThresholdRule,
    /// The multiple for `mean_multiple` and `mean_std`.
    pub k: f64,
    /// The percentile for `percentile`, in (0, 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<f64>,
    /// The threshold for `value`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Which split's scores set the threshold.
    pub source: ThresholdSource,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            rule: ThresholdRule::MeanMultiple,
            k: 2.0,
            q: None,
            value: None,
            source: ThresholdSource::Test,
        }
    }
}

/// Image format of the report's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FigureFormat {
    /// Raster images.
    Png,
    /// Vector images.
    Svg,
}

/// `[report]`: the figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// Test images shown in the originals-over-reconstructions figure.
    pub examples: usize,
    /// Highest-scoring images shown in the top-anomalies figure.
    pub top_anomalies: usize,
    /// Figure format.
    pub format: FigureFormat,
}

impl Default for ReportConfig {
    fn default() -> Self {
        Self {
            examples: 10,
            top_anomalies: 20,
            format: FigureFormat::Png,
        }
    }
}

impl ModelConfig {
    /// Every invalid value, keys prefixed `model.`.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if !Self::LATENT_SIZES.contains(&self.latent) {
            problems.push(Problem::new(
                "model.latent",
                self.latent,
                format!(
                    "must be one of {:?} (the compiled sizes)",
                    Self::LATENT_SIZES
                ),
            ));
        }
        problems
    }
}

impl TrainConfig {
    /// Every invalid value, keys prefixed `train.`.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if !(1..=100_000).contains(&self.epochs) {
            problems.push(Problem::new(
                "train.epochs",
                self.epochs,
                "must be between 1 and 100000",
            ));
        }
        if !(1..=60_000).contains(&self.batch_size) {
            problems.push(Problem::new(
                "train.batch_size",
                self.batch_size,
                "must be between 1 and 60000",
            ));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            problems.push(Problem::new(
                "train.learning_rate",
                self.learning_rate,
                "must be greater than 0 and at most 1",
            ));
        }
        for (key, beta) in [("train.beta1", self.beta1), ("train.beta2", self.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                problems.push(Problem::new(
                    key,
                    beta,
                    "must be at least 0 and less than 1",
                ));
            }
        }
        if !(self.epsilon > 0.0 && self.epsilon <= 1.0) {
            problems.push(Problem::new(
                "train.epsilon",
                self.epsilon,
                "must be greater than 0 and at most 1",
            ));
        }
        problems
    }
}

impl EvalConfig {
    /// Every invalid value, keys prefixed `eval.`; the rule's own parameter must be present.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if !(self.k.is_finite() && self.k > 0.0) {
            problems.push(Problem::new(
                "eval.k",
                self.k,
                "must be a finite number greater than 0",
            ));
        }
        match (self.rule, self.q) {
            (ThresholdRule::Percentile, None) => problems.push(Problem::new(
                "eval.q",
                "(missing)",
                "must be set when eval.rule = \"percentile\", e.g. q = 95.0",
            )),
            (_, Some(q)) if !(q > 0.0 && q < 100.0) => {
                problems.push(Problem::new(
                    "eval.q",
                    q,
                    "must be greater than 0 and less than 100",
                ));
            }
            _ => {}
        }
        match (self.rule, self.value) {
            (ThresholdRule::Value, None) => problems.push(Problem::new(
                "eval.value",
                "(missing)",
                "must be set when eval.rule = \"value\", e.g. value = 0.02",
            )),
            (_, Some(value)) if !(value.is_finite() && value >= 0.0) => {
                problems.push(Problem::new(
                    "eval.value",
                    value,
                    "must be a finite number at least 0",
                ));
            }
            _ => {}
        }
        problems
    }
}

impl ReportConfig {
    /// Every invalid value, keys prefixed `report.`.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if !(1..=50).contains(&self.examples) {
            problems.push(Problem::new(
                "report.examples",
                self.examples,
                "must be between 1 and 50",
            ));
        }
        if !(1..=100).contains(&self.top_anomalies) {
            problems.push(Problem::new(
                "report.top_anomalies",
                self.top_anomalies,
                "must be between 1 and 100",
            ));
        }
        problems
    }
}
