//! The `[train]` section of an experiment config.

use ae_store::Problem;
use serde::{Deserialize, Serialize};

/// How the training step is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// A hand-fused step for this fixed topology on its own kernels,
    /// verified against `dfdx` by the tests. The fastest; the default.
    Fused,
    /// dfdx's autodiff: the reference.
    Dfdx,
}

impl Engine {
    /// The name used in configs.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Fused => "fused",
            Engine::Dfdx => "dfdx",
        }
    }
}

/// The split whose loss is measured after every epoch (`val_loss`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidateOn {
    /// The test split, as the Keras exercise does (`validation_data`).
    #[default]
    Test,
    /// The held-out validation split of `data.validation`.
    Validation,
}

impl ValidateOn {
    /// The config value.
    pub fn name(self) -> &'static str {
        match self {
            ValidateOn::Test => "test",
            ValidateOn::Validation => "validation",
        }
    }
}

/// `train.early_stopping = { patience = N, min_delta = x }`: stop when the
/// validation loss has not fallen by more than `min_delta` below its best
/// for `patience` epochs in a row, and keep the best epoch's weights.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    /// Epochs without improvement before training stops.
    pub patience: u32,
    /// The least fall in validation loss that counts as an improvement.
    #[serde(default)]
    pub min_delta: f64,
}

/// `[train]`: Adam on the reconstruction MSE, with Keras's defaults.
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
    /// Adam's denominator guard, added to √v as Keras does (Keras: 1e-7).
    pub epsilon: f64,
    /// Which implementation computes the steps.
    pub engine: Engine,
    /// The split `val_loss` is measured on after every epoch.
    pub validate_on: ValidateOn,
    /// Stop when the validation loss stops improving (validation split only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
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
            engine: Engine::Fused,
            validate_on: ValidateOn::Test,
            early_stopping: None,
        }
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
        if let Some(stopping) = &self.early_stopping {
            if self.validate_on == ValidateOn::Test {
                problems.push(Problem::new(
                    "train.early_stopping",
                    format!("{{ patience = {} }}", stopping.patience),
                    "would choose the epoch on the test split, tuning the model on test data: set train.validate_on = \"validation\" (with data.validation)",
                ));
            }
            if stopping.patience == 0 || stopping.patience > 100_000 {
                problems.push(Problem::new(
                    "train.early_stopping.patience",
                    stopping.patience,
                    "must be between 1 and 100000",
                ));
            }
            if !(stopping.min_delta.is_finite() && stopping.min_delta >= 0.0) {
                problems.push(Problem::new(
                    "train.early_stopping.min_delta",
                    stopping.min_delta,
                    "must be a finite number at least 0",
                ));
            }
        }
        problems
    }
}
