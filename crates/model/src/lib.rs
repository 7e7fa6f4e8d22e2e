//! The autoencoder: 784 → L (ReLU) → 784 (sigmoid), L one of [`LATENT_SIZES`].
//!
//! Two views of the same weights:
//! - [`Params`]: plain row-major `Vec<f32>`s in PyTorch's layout (`weight` is
//!   `[out, in]`), Keras's Glorot-uniform initialisation from a seed, and the
//!   safetensors file `train/model.safetensors` with tensors `encoder.weight`
//!   `[L, 784]`, `encoder.bias` `[L]`, `decoder.weight` `[784, L]`,
//!   `decoder.bias` `[784]`. Loading rejects any other layout, listing every
//!   difference.
//! - [`Autoencoder`]: the statically shaped dfdx module, built from and turned
//!   back into [`Params`], with separate `encode` and `decode` as the seed's
//!   encoder and decoder models. [`with_latent!`] turns a runtime latent size
//!   into the compile-time one.
//! - [`Codec`]: encode and decode for inference, on [`kernels`], the
//!   runtime-dispatched SIMD kernels that the fused training engine also
//!   runs on (the only `unsafe` of the workspace: calling the paths compiled
//!   for AVX-512 and AVX2 on CPUs that have them).
//!
//! With `ae-train`, the only crates that depend on dfdx.

mod codec;
mod config;
mod error;
pub mod kernels;
mod net;
mod params;

pub use ae_store::{RngStream, seeded_rng};
pub use codec::Codec;
pub use config::ModelConfig;
pub use error::ModelError;
pub use net::{Autoencoder, Codes, Images};
pub use params::{INPUT, Params};

/// The latent sizes compiled into the model.
pub const LATENT_SIZES: [usize; 5] = [8, 16, 32, 64, 128];

/// Re-exported for `with_latent!` and the engines: the dfdx device type.
pub use dfdx::tensor::Cpu;

/// Runs `$body` with `$L` bound to the latent size `$latent` as a `const
/// usize`, giving `Ok(body)`, or `Err(ModelError::UnsupportedLatent)` for a
/// size that is not compiled in.
#[macro_export]
macro_rules! with_latent {
    ($latent:expr, |$L:ident| $body:expr) => {
        match $latent {
            8 => {
                const $L: usize = 8;
                Ok($body)
            }
            16 => {
                const $L: usize = 16;
                Ok($body)
            }
            32 => {
                const $L: usize = 32;
                Ok($body)
            }
            64 => {
                const $L: usize = 64;
                Ok($body)
            }
            128 => {
                const $L: usize = 128;
                Ok($body)
            }
            other => Err($crate::ModelError::UnsupportedLatent(other)),
        }
    };
}
