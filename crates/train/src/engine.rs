//! What a training engine does, and the Adam settings both engines share.

use ae_model::Params;
use ae_store::PixelsRef;

use crate::TrainConfig;

/// One implementation of the training step.
pub trait TrainEngine {
    /// One epoch: an Adam step on each run of `batch_size` indices of `order`
    /// (the last may be shorter) into `images` (`[N, 784]`, row-major), as
    /// inputs and targets. Returns the mean of the batch losses, each the
    /// batch's mean squared error before its step.
    fn train_epoch(&mut self, images: PixelsRef<'_>, order: &[usize], batch_size: usize) -> f64;

    /// The sum of squared reconstruction errors over `images`, for `val_loss`.
    fn squared_error_sum(&mut self, images: PixelsRef<'_>) -> f64;

    /// The current weights.
    fn params(&self) -> Params;
}

/// Adam's hyperparameters, as Keras defines them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamSettings {
    /// Step size.
    pub learning_rate: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to √v (not to the bias-corrected √v̂).
    pub epsilon: f64,
}

impl From<&TrainConfig> for AdamSettings {
    fn from(cfg: &TrainConfig) -> Self {
        Self {
            learning_rate: cfg.learning_rate,
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            epsilon: cfg.epsilon,
        }
    }
}

impl AdamSettings {
    /// Keras's step `t` (1-based) as `(α_t, ε)`: the update is
    /// `p -= α_t · m / (√v + ε)` with `α_t = lr · √(1 − β2ᵗ) / (1 − β1ᵗ)`.
    pub fn step_size(&self, t: u64) -> f64 {
        let t = t as i32;
        self.learning_rate * (1.0 - self.beta2.powi(t)).sqrt() / (1.0 - self.beta1.powi(t))
    }

    /// The ε that makes the textbook form `lr · m̂ / (√v̂ + ε')` (dfdx's)
    /// equal Keras's form at step `t`: `ε' = ε / √(1 − β2ᵗ)`.
    pub fn bias_corrected_epsilon(&self, t: u64) -> f64 {
        self.epsilon / (1.0 - self.beta2.powi(t as i32)).sqrt()
    }
}
