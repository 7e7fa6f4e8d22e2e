use std::path::Path;

use std::collections::BTreeMap;

use ae_store::{Dtype, TensorFile, TensorOut, write_tensors_with_metadata};
use rand::distributions::{Distribution, Uniform};

use crate::{LATENT_SIZES, ModelError, RngStream, seeded_rng};

/// Pixels per image, the model's input and output width.
pub const INPUT: usize = ae_store::IMAGE_PIXELS;

const ENCODER_WEIGHT: &str = "encoder.weight";
const ENCODER_BIAS: &str = "encoder.bias";
const DECODER_WEIGHT: &str = "decoder.weight";
const DECODER_BIAS: &str = "decoder.bias";

/// The model's weights, row-major, in PyTorch's layout (`weight` is `[out, in]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    latent: usize,
    /// `[L, 784]`.
    pub encoder_weight: Vec<f32>,
    /// `[L]`.
    pub encoder_bias: Vec<f32>,
    /// `[784, L]`.
    pub decoder_weight: Vec<f32>,
    /// `[784]`.
    pub decoder_bias: Vec<f32>,
}

impl Params {
    /// All-zero weights for latent size `latent`.
    pub fn zeros(latent: usize) -> Result<Self, ModelError> {
        if !LATENT_SIZES.contains(&latent) {
            return Err(ModelError::UnsupportedLatent(latent));
        }
        Ok(Self {
            latent,
            encoder_weight: vec![0.0; latent * INPUT],
            encoder_bias: vec![0.0; latent],
            decoder_weight: vec![0.0; INPUT * latent],
            decoder_bias: vec![0.0; INPUT],
        })
    }

    /// Keras's initialisation: Glorot-uniform kernels, limit √(6 / (784 + L)),
    /// and zero biases, drawn from `seed`'s init stream.
    pub fn glorot(latent: usize, seed: u64) -> Result<Self, ModelError> {
        let mut params = Self::zeros(latent)?;
        let limit = (6.0 / (INPUT + latent) as f64).sqrt() as f32;
        let uniform = Uniform::new_inclusive(-limit, limit);
        let mut rng = seeded_rng(seed, RngStream::Init);
        for w in params
            .encoder_weight
            .iter_mut()
            .chain(params.decoder_weight.iter_mut())
        {
            *w = uniform.sample(&mut rng);
        }
        Ok(params)
    }

    /// The latent size.
    pub fn latent(&self) -> usize {
        self.latent
    }

    /// Total number of weights and biases.
    pub fn len(&self) -> usize {
        2 * self.latent * INPUT + self.latent + INPUT
    }

    /// Never: a model has weights.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes `train/model.safetensors`-style file at `path`, atomically.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        self.save_with_metadata(path, BTreeMap::new())
    }

    /// Writes the weights with `metadata` as the safetensors `__metadata__`
    /// (a one-file detector), atomically.
    pub fn save_with_metadata(
        &self,
        path: &Path,
        metadata: BTreeMap<String, String>,
    ) -> Result<(), ModelError> {
        let l = self.latent;
        write_tensors_with_metadata(
            path,
            metadata,
            &[
                TensorOut::f32(ENCODER_WEIGHT, vec![l, INPUT], &self.encoder_weight),
                TensorOut::f32(ENCODER_BIAS, vec![l], &self.encoder_bias),
                TensorOut::f32(DECODER_WEIGHT, vec![INPUT, l], &self.decoder_weight),
                TensorOut::f32(DECODER_BIAS, vec![INPUT], &self.decoder_bias),
            ],
        )?;
        Ok(())
    }

    /// Reads a model of latent size `latent` from `path`. Any missing, extra,
    /// misshaped or non-f32 tensor is an error listing every difference.
    pub fn load(path: &Path, latent: usize) -> Result<Self, ModelError> {
        Self::read(TensorFile::open(path)?, latent)
    }

    /// Reads the weights of a file whose metadata says its latent size (a
    /// detector): `read` makes what it needs of the metadata, and says the
    /// latent size, before the weights are read.
    pub fn load_with_metadata<T>(
        path: &Path,
        read: impl FnOnce(&BTreeMap<String, String>) -> Result<(usize, T), ModelError>,
    ) -> Result<(Self, T), ModelError> {
        let file = TensorFile::open(path)?;
        let (latent, made) = read(&file.metadata_map())?;
        Ok((Self::read(file, latent)?, made))
    }

    fn read(mut file: TensorFile, latent: usize) -> Result<Self, ModelError> {
        if !LATENT_SIZES.contains(&latent) {
            return Err(ModelError::UnsupportedLatent(latent));
        }
        file.expect_exactly(&[
            (ENCODER_WEIGHT, Dtype::F32, &[latent, INPUT]),
            (ENCODER_BIAS, Dtype::F32, &[latent]),
            (DECODER_WEIGHT, Dtype::F32, &[INPUT, latent]),
            (DECODER_BIAS, Dtype::F32, &[INPUT]),
        ])?;
        Ok(Self {
            latent,
            encoder_weight: file.read_f32(ENCODER_WEIGHT)?,
            encoder_bias: file.read_f32(ENCODER_BIAS)?,
            decoder_weight: file.read_f32(DECODER_WEIGHT)?,
            decoder_bias: file.read_f32(DECODER_BIAS)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use ae_store::write_tensors;
    use safetensors::SafeTensors;

    use super::*;

    #[test]
    fn golden_names_shapes_and_dtypes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.safetensors");
        Params::glorot(32, 0)
            .expect("init")
            .save(&path)
            .expect("save");
        let bytes = std::fs::read(&path).expect("read");
        let file = SafeTensors::deserialize(&bytes).expect("safetensors");
        let mut layout: Vec<(String, Vec<usize>, String)> = file
            .tensors()
            .into_iter()
            .map(|(name, view)| (name, view.shape().to_vec(), format!("{:?}", view.dtype())))
            .collect();
        layout.sort();
        let expected = [
            ("decoder.bias", vec![784], "F32"),
            ("decoder.weight", vec![784, 32], "F32"),
            ("encoder.bias", vec![32], "F32"),
            ("encoder.weight", vec![32, 784], "F32"),
        ]
        .map(|(n, s, d)| (n.to_string(), s, d.to_string()));
        assert_eq!(layout, expected);
    }

    #[test]
    fn save_load_round_trip_is_exact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.safetensors");
        let mut params = Params::glorot(16, 7).expect("init");
        params.encoder_bias[3] = 0.125;
        params.decoder_bias[700] = -3.5;
        params.save(&path).expect("save");
        assert_eq!(Params::load(&path, 16).expect("load"), params);
    }

    #[test]
    fn glorot_is_seeded_bounded_and_zero_biased() {
        let a = Params::glorot(32, 0).expect("init");
        assert_eq!(a, Params::glorot(32, 0).expect("init"));
        assert_ne!(a, Params::glorot(32, 1).expect("init"));
        let limit = (6.0f32 / 816.0).sqrt();
        let weights: Vec<f32> = a
            .encoder_weight
            .iter()
            .chain(&a.decoder_weight)
            .copied()
            .collect();
        assert!(weights.iter().all(|w| w.abs() <= limit));
        // Uniform on [-limit, limit]: mean about 0, variance limit² / 3.
        let n = weights.len() as f32;
        let mean = weights.iter().sum::<f32>() / n;
        let var = weights.iter().map(|w| (w - mean).powi(2)).sum::<f32>() / n;
        assert!(mean.abs() < 0.002, "mean {mean}");
        assert!(
            (var / (limit * limit / 3.0) - 1.0).abs() < 0.02,
            "variance {var}"
        );
        assert!(
            a.encoder_bias
                .iter()
                .chain(&a.decoder_bias)
                .all(|&b| b == 0.0)
        );
    }

    #[test]
    fn loading_rejects_other_layouts_listing_each_difference() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.safetensors");
        Params::glorot(16, 0)
            .expect("init")
            .save(&path)
            .expect("save");
        let err = Params::load(&path, 32)
            .expect_err("wrong latent")
            .to_string();
        assert!(
            err.contains("`encoder.weight` has shape [16, 784], expected [32, 784]"),
            "{err}"
        );
        assert!(
            !err.contains("`decoder.bias`"),
            "decoder.bias matches: {err}"
        );

        let zeros = vec![0f32; 784];
        let labels = vec![0u8; 16];
        write_tensors(
            &path,
            &[
                TensorOut::f32("encoder.weight", vec![16, 784], &vec![0.0; 16 * 784]),
                TensorOut::u8("encoder.bias", vec![16], &labels),
                TensorOut::f32("decoder.bias", vec![784], &zeros),
                TensorOut::f32("extra", vec![784], &zeros),
            ],
        )
        .expect("write");
        let err = Params::load(&path, 16).expect_err("bad file").to_string();
        for needle in [
            "unexpected tensor `extra`",
            "`encoder.bias` is U8, expected F32",
            "tensor `decoder.weight` is missing",
        ] {
            assert!(err.contains(needle), "{needle}: {err}");
        }

        let err = Params::load(&dir.path().join("nope.safetensors"), 16)
            .expect_err("missing")
            .to_string();
        assert!(err.contains("nope.safetensors"), "{err}");
        assert!(matches!(
            Params::load(&path, 33),
            Err(ModelError::UnsupportedLatent(33))
        ));
    }
}
