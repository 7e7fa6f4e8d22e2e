use ae_store::Problem;
use serde::{Deserialize, Serialize};

use crate::LATENT_SIZES;

/// `[model]`: the autoencoder's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Width of the code layer: one of [`LATENT_SIZES`].
    pub latent: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self { latent: 32 }
    }
}

impl ModelConfig {
    /// Every invalid value, keys prefixed `model.`.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if !LATENT_SIZES.contains(&self.latent) {
            problems.push(Problem::new(
                "model.latent",
                self.latent,
                format!("must be one of {LATENT_SIZES:?} (the compiled sizes)"),
            ));
        }
        problems
    }
}
