//! The engine's GEMMs alone, for `ae bench --floor`: the five products of
//! a training step on one half batch, without the element-wise passes, the
//! gather or Adam, on this thread. Each core computes one half of every
//! batch, so on two cores this is an epoch's GEMM time.

use std::time::Instant;

use ae_model::{INPUT, ModelError, Params};

use ae_model::kernels::Isa;
use ae_model::kernels::skinny::{decode_product, product, transposed_product};

/// Seconds the five GEMMs of `steps` steps take on a half batch of `rows`
/// rows (the best of three runs), with the kernels training uses.
pub fn gemm_only_seconds(latent: usize, rows: usize, steps: usize) -> Result<f64, ModelError> {
    let isa = Isa::detect();
    let params = Params::glorot(latent, 0)?;
    let images: Vec<f32> = (0..rows * INPUT)
        .map(|i| (i % 251) as f32 / 251.0)
        .collect();
    let (w1t, w2, w2t) = (
        &params.encoder_weight,
        &params.decoder_weight,
        &params.decoder_weight,
    );
    let mut hidden = vec![0.0; rows * latent];
    let mut output = vec![0.0; rows * INPUT];
    let mut hidden_grad = vec![0.0; rows * latent];
    let mut grads = Params::zeros(latent)?;
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let clock = Instant::now();
        for _ in 0..steps {
            product(isa, latent, &images, INPUT, w1t, &mut hidden);
            decode_product(isa, &hidden, latent, w2t, &mut output);
            transposed_product(
                isa,
                latent,
                &output,
                INPUT,
                &hidden,
                &mut grads.decoder_weight,
            );
            product(isa, latent, &output, INPUT, w2, &mut hidden_grad);
            transposed_product(
                isa,
                latent,
                &images,
                INPUT,
                &hidden_grad,
                &mut grads.encoder_weight,
            );
        }
        best = best.min(clock.elapsed().as_secs_f64());
    }
    Ok(best)
}
