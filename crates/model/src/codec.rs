//! Encode and decode on the CPU kernels, whatever the latent size.

use crate::kernels::skinny::{decode_output, product};
use crate::kernels::sparse::{PixelMasks, masked_product, refill_masks};
use crate::kernels::{Isa, transpose};
use crate::{INPUT, ModelError, Params};

/// A trained autoencoder ready to encode images and decode codes, whatever
/// its latent size, on the kernels that train it (the widest path this CPU
/// has). Each image's code and reconstruction are the same bits alone or
/// in any batch.
#[derive(Debug, Clone)]
pub struct Codec {
    isa: Isa,
    latent: usize,
    /// W1ᵀ, `[784, L]`.
    encoder_weight_t: Vec<f32>,
    /// b1, `[L]`.
    encoder_bias: Vec<f32>,
    /// W2ᵀ, `[L, 784]`.
    decoder_weight_t: Vec<f32>,
    /// b2, `[784]`.
    decoder_bias: Vec<f32>,
}

impl Codec {
    /// A codec with `params`' weights.
    pub fn new(params: &Params) -> Result<Self, ModelError> {
        let latent = params.latent();
        if !crate::LATENT_SIZES.contains(&latent) {
            return Err(ModelError::UnsupportedLatent(latent));
        }
        let mut encoder_weight_t = vec![0.0; INPUT * latent];
        transpose(&params.encoder_weight, latent, INPUT, &mut encoder_weight_t);
        let mut decoder_weight_t = vec![0.0; INPUT * latent];
        transpose(&params.decoder_weight, INPUT, latent, &mut decoder_weight_t);
        Ok(Self {
            isa: Isa::detect(),
            latent,
            encoder_weight_t,
            encoder_bias: params.encoder_bias.clone(),
            decoder_weight_t,
            decoder_bias: params.decoder_bias.clone(),
        })
    }

    /// The same codec computing on `isa`'s path (tests hold every path to
    /// the same results).
    pub fn on(self, isa: Isa) -> Self {
        Self { isa, ..self }
    }

    /// The latent size.
    pub fn latent(&self) -> usize {
        self.latent
    }

    /// Codes of a batch of images: `[n, 784]` → `[n, L]`, row-major;
    /// relu(X W1ᵀ + b1).
    ///
    /// # Panics
    /// If `images.len()` is not a multiple of 784.
    pub fn encode(&self, images: &[f32]) -> Vec<f32> {
        assert_eq!(images.len() % INPUT, 0, "images come in rows of {INPUT}");
        let l = self.latent;
        let mut codes = vec![0.0; images.len() / INPUT * l];
        let mut masks = PixelMasks::new();
        refill_masks(self.isa, &mut masks, images);
        if masks.worth_it() {
            masked_product(
                self.isa,
                l,
                images,
                &masks,
                &self.encoder_weight_t,
                &mut codes,
            );
        } else {
            product(
                self.isa,
                l,
                images,
                INPUT,
                &self.encoder_weight_t,
                &mut codes,
            );
        }
        for row in codes.chunks_exact_mut(l) {
            for (h, b) in row.iter_mut().zip(&self.encoder_bias) {
                *h = (*h + b).max(0.0);
            }
        }
        codes
    }

    /// Reconstructions from a batch of codes: `[n, L]` → `[n, 784]`,
    /// row-major; sigmoid(H W2ᵀ + b2).
    ///
    /// # Panics
    /// If `codes.len()` is not a multiple of the latent size.
    pub fn decode(&self, codes: &[f32]) -> Vec<f32> {
        let mut images = Vec::new();
        self.decode_into(codes, &mut images);
        images
    }

    /// [`Codec::decode`] into `images`, replacing what it held (its memory
    /// reused from batch to batch).
    ///
    /// # Panics
    /// If `codes.len()` is not a multiple of the latent size.
    pub fn decode_into(&self, codes: &[f32], images: &mut Vec<f32>) {
        assert_eq!(
            codes.len() % self.latent,
            0,
            "codes come in rows of {}",
            self.latent
        );
        images.resize(codes.len() / self.latent * INPUT, 0.0);
        decode_output(
            self.isa,
            codes,
            self.latent,
            &self.decoder_weight_t,
            &self.decoder_bias,
            images,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The forward pass computed naively in f64.
    fn reference(params: &Params, image: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let l = params.latent();
        let code: Vec<f64> = (0..l)
            .map(|j| {
                let z: f64 = params.encoder_bias[j] as f64
                    + (0..INPUT)
                        .map(|i| params.encoder_weight[j * INPUT + i] as f64 * image[i] as f64)
                        .sum::<f64>();
                z.max(0.0)
            })
            .collect();
        let out = (0..INPUT)
            .map(|i| {
                let z = params.decoder_bias[i] as f64
                    + (0..l)
                        .map(|j| params.decoder_weight[i * l + j] as f64 * code[j])
                        .sum::<f64>();
                1.0 / (1.0 + (-z).exp())
            })
            .collect();
        (code, out)
    }

    #[test]
    fn encode_then_decode_matches_a_naive_forward_pass() {
        let mut params = Params::glorot(8, 3).expect("init");
        params
            .encoder_bias
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = 0.01 * i as f32);
        params.decoder_bias[5] = 0.7;
        let images: Vec<f32> = (0..3 * INPUT)
            .map(|i| ((i * 37) % 256) as f32 / 255.0)
            .collect();
        for isa in Isa::every_available() {
            let codec = Codec::new(&params).expect("codec").on(isa);
            let codes = codec.encode(&images);
            let decoded = codec.decode(&codes);
            assert_eq!((codes.len(), decoded.len()), (3 * 8, 3 * INPUT));
            for n in 0..3 {
                let (code, out) = reference(&params, &images[n * INPUT..(n + 1) * INPUT]);
                for j in 0..8 {
                    assert!(
                        (codes[n * 8 + j] as f64 - code[j]).abs() < 1e-5,
                        "code {n},{j}"
                    );
                }
                for i in 0..INPUT {
                    assert!(
                        (decoded[n * INPUT + i] as f64 - out[i]).abs() < 1e-5,
                        "pixel {n},{i}"
                    );
                }
            }
        }
    }
}
