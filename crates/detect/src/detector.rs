//! Opening a one-file detector and scoring images with it.

use std::path::{Path, PathBuf};

use ae_model::{Codec, ModelError, Params};
use ae_store::{DetectorInfo, files};

use crate::DetectError;

/// A detector ready to score: its weights and its metadata.
pub struct Detector {
    info: DetectorInfo,
    params: Params,
    path: PathBuf,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("info", &self.info)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The detector file that `path` names: the file itself, or a run
/// directory's `eval/detector.safetensors`.
pub fn locate(path: &Path) -> Result<PathBuf, DetectError> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let file = path.join(files::DETECTOR);
    if file.exists() {
        Ok(file)
    } else {
        Err(DetectError::NoDetector {
            dir: path.to_path_buf(),
            path: file,
        })
    }
}

impl Detector {
    /// Opens the detector file at `path` (see [`locate`]): its metadata must
    /// all be there and of this `ae`'s format version, and its weights of
    /// the latent size the metadata says.
    pub fn open(path: &Path) -> Result<Self, DetectError> {
        ae_store::regular_file(path)?;
        let (params, info) = Params::load_with_metadata(path, |metadata| {
            let info = DetectorInfo::from_metadata(path, metadata)?;
            Ok::<_, ModelError>((info.latent, info))
        })?;
        let tensors = [
            &params.encoder_weight,
            &params.encoder_bias,
            &params.decoder_weight,
            &params.decoder_bias,
        ];
        if !tensors.iter().all(|t| t.iter().all(|v| v.is_finite())) {
            return Err(DetectError::NonFinite(path.to_path_buf()));
        }
        // The weights make a codec: check now that they do.
        Codec::new(&params)?;
        Ok(Self {
            params,
            info,
            path: path.to_path_buf(),
        })
    }

    /// What its metadata says.
    pub fn info(&self) -> &DetectorInfo {
        &self.info
    }

    /// Its weights.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A scorer with this detector's weights: one per thread.
    pub fn scorer(&self) -> Result<Scorer<'_>, DetectError> {
        Ok(Scorer {
            codec: Codec::new(&self.params)?,
            detector: self,
        })
    }
}

/// Scores images with a detector's weights, as the infer and eval stages
/// do; not shared between threads.
pub struct Scorer<'a> {
    codec: Codec,
    detector: &'a Detector,
}

impl Scorer<'_> {
    /// The reconstructions of `images` (`[n, 784]`), as the infer stage
    /// makes them.
    pub fn reconstruct(&self, images: &[f32]) -> Vec<f32> {
        ae_infer::reconstruct(&self.codec, images).images
    }

    /// Each image's score against its reconstruction, as the eval stage
    /// scores.
    pub fn scores(&self, images: &[f32], reconstructions: &[f32]) -> Vec<f32> {
        ae_eval::scores::per_image(self.detector.info.score, images, reconstructions)
    }
}
