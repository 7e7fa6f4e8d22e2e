//! The `infer` stage: the seed's `encoder.predict` and `decoder.predict`.
//!
//! Reads [`files::MODEL`] and [`files::TEST_SPLIT`]; writes
//! [`files::ENCODED`] (`latent` f32 `[N, L]`) and [`files::DECODED`]
//! (`images` f32 `[N, 784]`). Images go through the encoder and then the
//! decoder in batches of [`BATCH`], into two preallocated outputs. When the
//! anomaly threshold is to come from the training split, it also writes that
//! split's reconstructions, [`files::TRAIN_DECODED`].

use ae_model::{Codec, INPUT, ModelConfig, ModelError, Params};
use ae_store::{RunDir, StoreError, TensorOut, files, write_tensors};

/// Images per forward pass.
pub const BATCH: usize = 1000;

/// The files the infer stage reads, relative to the run directory.
pub fn inputs(also_train: bool) -> Vec<&'static str> {
    let mut inputs = vec![files::MODEL, files::TEST_SPLIT];
    if also_train {
        inputs.push(files::TRAIN_SPLIT);
    }
    inputs
}

/// The files the infer stage writes, relative to the run directory.
pub fn outputs(also_train: bool) -> Vec<&'static str> {
    let mut outputs = vec![files::ENCODED, files::DECODED];
    if also_train {
        outputs.push(files::TRAIN_DECODED);
    }
    outputs
}

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

/// What the infer stage wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InferArtifacts {
    /// The files written, relative to the run directory.
    pub outputs: Vec<&'static str>,
    /// Images encoded and decoded.
    pub images: usize,
}

/// The codes and reconstructions of a set of images.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconstruction {
    /// `[n, L]`, row-major.
    pub codes: Vec<f32>,
    /// `[n, 784]`, row-major.
    pub images: Vec<f32>,
}

/// Encodes then decodes `images` (`[n, 784]`) in batches.
pub fn reconstruct(codec: &Codec, images: &[f32]) -> Reconstruction {
    let n = images.len() / INPUT;
    let mut out = Reconstruction {
        codes: Vec::with_capacity(n * codec.latent()),
        images: Vec::with_capacity(n * INPUT),
    };
    for batch in images.chunks(BATCH * INPUT) {
        let codes = codec.encode(batch);
        out.images.extend_from_slice(&codec.decode(&codes));
        out.codes.extend_from_slice(&codes);
    }
    out
}

/// Runs the infer stage in `run`; `also_train` reconstructs the training split too.
pub fn run(
    model: &ModelConfig,
    run: &RunDir,
    also_train: bool,
) -> Result<InferArtifacts, InferError> {
    let params = Params::load(&run.path(files::MODEL), model.latent)?;
    let test = ae_store::read_split(&run.path(files::TEST_SPLIT))?;
    let codec = Codec::new(&params)?;
    let n = test.len();
    let out = reconstruct(&codec, &test.images);
    write_tensors(
        &run.path(files::ENCODED),
        &[TensorOut::f32(
            "latent",
            vec![n, params.latent()],
            &out.codes,
        )],
    )?;
    write_tensors(
        &run.path(files::DECODED),
        &[TensorOut::f32("images", vec![n, INPUT], &out.images)],
    )?;
    tracing::info!("encoded and decoded {n} test images");
    if also_train {
        let train = ae_store::read_split(&run.path(files::TRAIN_SPLIT))?;
        let out = reconstruct(&codec, &train.images);
        write_tensors(
            &run.path(files::TRAIN_DECODED),
            &[TensorOut::f32(
                "images",
                vec![train.len(), INPUT],
                &out.images,
            )],
        )?;
        tracing::info!("decoded {} training images for the threshold", train.len());
    }
    Ok(InferArtifacts {
        outputs: outputs(also_train),
        images: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batching_does_not_change_the_result() {
        let params = Params::glorot(16, 1).expect("init");
        let codec = Codec::new(&params).expect("codec");
        let n = BATCH + 7;
        let images: Vec<f32> = (0..n * INPUT)
            .map(|i| ((i * 31) % 256) as f32 / 255.0)
            .collect();
        let whole = reconstruct(&codec, &images);
        assert_eq!(whole.codes.len(), n * 16);
        assert_eq!(whole.images.len(), n * INPUT);
        // The last, partial batch on its own gives the same rows.
        let tail = &images[BATCH * INPUT..];
        let codes = codec.encode(tail);
        assert_eq!(&whole.codes[BATCH * 16..], codes.as_slice());
        assert_eq!(
            &whole.images[BATCH * INPUT..],
            codec.decode(&codes).as_slice()
        );
    }
}
