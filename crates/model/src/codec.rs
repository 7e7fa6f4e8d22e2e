//! Encode and decode without naming the latent size at compile time.

use dfdx::tensor::Cpu;

use crate::net::batch_tensor;
use crate::{Autoencoder, INPUT, ModelError, Params};

/// A trained autoencoder ready to encode images and decode codes, whatever
/// its latent size.
pub struct Codec {
    inner: Box<dyn CodecImpl + Send>,
    latent: usize,
}

trait CodecImpl {
    fn encode(&self, images: &[f32]) -> Vec<f32>;
    fn decode(&self, codes: &[f32]) -> Vec<f32>;
}

struct Fixed<const L: usize> {
    dev: Cpu,
    model: Autoencoder<L>,
}

impl<const L: usize> CodecImpl for Fixed<L> {
    fn encode(&self, images: &[f32]) -> Vec<f32> {
        self.model
            .encode(batch_tensor::<INPUT>(&self.dev, images))
            .as_vec()
    }
    fn decode(&self, codes: &[f32]) -> Vec<f32> {
        self.model
            .decode(batch_tensor::<L>(&self.dev, codes))
            .as_vec()
    }
}

impl Codec {
    /// A codec with `params`' weights.
    pub fn new(params: &Params) -> Result<Self, ModelError> {
        let dev = Cpu::default();
        let inner: Box<dyn CodecImpl + Send> = crate::with_latent!(params.latent(), |L| {
            Box::new(Fixed::<L> {
                model: Autoencoder::<L>::from_params(&dev, params)?,
                dev,
            }) as Box<dyn CodecImpl + Send>
        })?;
        Ok(Self {
            inner,
            latent: params.latent(),
        })
    }

    /// The latent size.
    pub fn latent(&self) -> usize {
        self.latent
    }

    /// Codes of a batch of images: `[n, 784]` → `[n, L]`, row-major.
    ///
    /// # Panics
    /// If `images.len()` is not a multiple of 784.
    pub fn encode(&self, images: &[f32]) -> Vec<f32> {
        assert_eq!(images.len() % INPUT, 0, "images come in rows of {INPUT}");
        self.inner.encode(images)
    }

    /// Reconstructions from a batch of codes: `[n, L]` → `[n, 784]`, row-major.
    ///
    /// # Panics
    /// If `codes.len()` is not a multiple of the latent size.
    pub fn decode(&self, codes: &[f32]) -> Vec<f32> {
        assert_eq!(
            codes.len() % self.latent,
            0,
            "codes come in rows of {}",
            self.latent
        );
        self.inner.decode(codes)
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
        let codec = Codec::new(&params).expect("codec");
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
