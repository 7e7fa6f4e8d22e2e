//! The `infer` stage: the seed's `encoder.predict` and `decoder.predict`.
//!
//! Reads [`files::MODEL`] and [`files::TEST_SPLIT`]; writes
//! [`files::ENCODED`] (the codes, `[N, L]`) and [`files::DECODED`] (the
//! reconstructions, `[N, 784]`). Images go through the encoder and then the
//! decoder in batches of [`BATCH`], into two preallocated outputs. When the
//! anomaly threshold is to come from the training or the validation split,
//! it also writes that split's reconstructions ([`files::TRAIN_DECODED`],
//! [`files::VALIDATION_DECODED`]).

use ae_model::{Codec, INPUT, ModelConfig, ModelError, Params};
use ae_store::{
    Env, Input, PipelineStage, PixelsRef, RunDir, StoreError, ThresholdSource, files, write_codes,
    write_images_streamed,
};
use serde_json::json;

/// Images per forward pass.
pub const BATCH: usize = 1000;

/// Why inference failed.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The model could not be loaded.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// An input could not be read or an output written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The infer stage, for the runner.
#[derive(Debug, Clone, Copy)]
pub struct InferStage;

/// What the infer stage reads of the experiment config.
#[derive(Debug, Clone, PartialEq)]
pub struct StageConfig {
    /// `[model]`: the latent size the model file must have.
    pub model: ModelConfig,
    /// `eval.source`: with `train` or `validation`, that split is
    /// reconstructed too.
    pub threshold_source: ThresholdSource,
}

impl PipelineStage for InferStage {
    const NAME: &'static str = "infer";
    type Config = StageConfig;
    type Outcome = ();
    type Error = InferError;

    fn inputs(cfg: &StageConfig, _env: &Env) -> Vec<Input> {
        let mut inputs = vec![files::MODEL, files::TEST_SPLIT];
        if let Some((split, _)) = cfg.threshold_source.extra_split() {
            inputs.push(split);
        }
        Input::run_files(inputs)
    }

    fn outputs(cfg: &StageConfig) -> Vec<String> {
        let mut outputs = vec![files::ENCODED, files::DECODED];
        if let Some((_, decoded)) = cfg.threshold_source.extra_split() {
            outputs.push(decoded);
        }
        outputs.into_iter().map(String::from).collect()
    }

    fn params(cfg: &StageConfig) -> serde_json::Value {
        let StageConfig {
            model: ModelConfig { latent },
            threshold_source,
        } = cfg;
        json!({"model": {"latent": latent}, "eval": {"source": threshold_source}})
    }

    fn run(cfg: &StageConfig, _env: &Env, run: &RunDir) -> Result<(), InferError> {
        let params = Params::load(&run.path(files::MODEL), cfg.model.latent)?;
        let codec = Codec::new(&params)?;
        let test = ae_store::read_split_compact(&run.path(files::TEST_SPLIT))?;
        let codes = encode(&codec, test.pixels.view());
        write_codes(&run.path(files::ENCODED), params.latent(), &codes)?;
        write_decoded(&run.path(files::DECODED), &codec, &codes)?;
        tracing::info!("encoded and decoded {} test images", test.len());
        if let Some((split, decoded)) = cfg.threshold_source.extra_split() {
            let images = ae_store::read_split_compact(&run.path(split))?;
            let codes = encode(&codec, images.pixels.view());
            write_decoded(&run.path(decoded), &codec, &codes)?;
            tracing::info!(
                "decoded {} {} images for the threshold",
                images.len(),
                cfg.threshold_source.split_name()
            );
        }
        Ok(())
    }
}

/// The codes of `images`, in batches of [`BATCH`] (8-bit images widened a
/// batch at a time).
fn encode(codec: &Codec, images: PixelsRef<'_>) -> Vec<f32> {
    let mut codes = Vec::with_capacity(images.images() * codec.latent());
    images.for_each_chunk(BATCH, &mut Vec::new(), |batch| {
        codes.extend_from_slice(&codec.encode(batch));
    });
    codes
}

/// Decodes `codes` into a reconstructions file at `path`, a batch at a
/// time as the file is written (the reconstructions are never all in
/// memory).
fn write_decoded(path: &std::path::Path, codec: &Codec, codes: &[f32]) -> Result<(), StoreError> {
    let latent = codec.latent();
    write_images_streamed(path, codes.len() / latent, |out| {
        let mut images = Vec::with_capacity(BATCH * INPUT);
        for batch in codes.chunks(BATCH * latent) {
            codec.decode_into(batch, &mut images);
            ae_store::write_f32_le(out, &images)?;
        }
        Ok(())
    })
}

/// The codes and reconstructions of a set of images.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconstruction {
    /// `[n, L]`, row-major.
    pub codes: Vec<f32>,
    /// `[n, 784]`, row-major.
    pub images: Vec<f32>,
}

/// Encodes then decodes `images` (`[n, 784]`). The kernels compute each image on its own, so an image is
/// reconstructed to the same bits whatever batch it comes in, whether the
/// test split's ten thousandth or the one file `ae score` is given.
pub fn reconstruct(codec: &Codec, images: &[f32]) -> Reconstruction {
    let codes = encode(codec, PixelsRef::Floats(images));
    Reconstruction {
        images: codec.decode(&codes),
        codes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_gets_the_same_bits_in_any_batch_at_any_position() {
        let params = Params::glorot(16, 1).expect("init");
        let codec = Codec::new(&params).expect("codec");
        let n = BATCH + 7;
        let images: Vec<f32> = (0..n * INPUT)
            .map(|i| ((i * 31 + i / 97) % 256) as f32 / 255.0)
            .collect();
        let whole = reconstruct(&codec, &images);
        assert_eq!(whole.codes.len(), n * 16);
        assert_eq!(whole.images.len(), n * INPUT);
        let row = |v: &[f32], i: usize, width: usize| v[i * width..(i + 1) * width].to_vec();
        // Alone, or among a few others: the bits it got in the whole set.
        for (start, len) in [
            (0, 1),
            (5, 1),
            (BATCH - 1, 1),
            (BATCH + 3, 1),
            (17, 40),
            (BATCH, 7),
        ] {
            let part = reconstruct(&codec, &images[start * INPUT..(start + len) * INPUT]);
            for i in 0..len {
                assert_eq!(
                    row(&part.codes, i, 16),
                    row(&whole.codes, start + i, 16),
                    "code {}",
                    start + i
                );
                assert_eq!(
                    row(&part.images, i, INPUT),
                    row(&whole.images, start + i, INPUT),
                    "image {}",
                    start + i
                );
            }
        }
    }
}
