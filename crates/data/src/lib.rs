//! The `data` stage: MNIST-style datasets from IDX files to safetensors splits.
//!
//! Reads `<root>/<dataset>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`;
//! any file that is missing is downloaded from the configured mirrors (see
//! [`Downloader`]). Every file is checked for structure (magic number,
//! dimensions, exact length; images and labels agree in count) and then
//! against the sha256 of the published content. Pixels are scaled to `[0, 1]`
//! and flattened to 784 values, and the run directory receives
//! [`ae_store::files::TRAIN_SPLIT`] and [`ae_store::files::TEST_SPLIT`].
//!
//! Entry point: [`run`]. The pure parts, [`idx`] parsing and [`normalize`],
//! do no I/O. This is the only crate that touches the network.

mod catalog;
mod config;
mod download;
mod error;
pub mod idx;
mod source;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ae_store::{RunDir, TensorOut, files};

pub use catalog::{Dataset, IdxFile, IdxKind, SplitFiles};
pub use config::DataConfig;
pub use download::Downloader;
pub use error::{DataError, MirrorError, MirrorFailure};
pub use idx::{IdxError, normalize};
pub use source::{locate, read_decompressed, verify_checksum};

/// What the data stage read and wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataArtifacts {
    /// The four IDX files used, as located under the data root.
    pub sources: Vec<PathBuf>,
    /// The files written, relative to the run directory.
    pub outputs: Vec<&'static str>,
    /// Images in the training split written.
    pub train_len: usize,
    /// Images in the test split written.
    pub test_len: usize,
}

/// Runs the data stage: makes sure the dataset's files are under `data_root`
/// (downloading what is missing), verifies and parses them, and writes both
/// splits into `run`.
pub fn run(cfg: &DataConfig, data_root: &Path, run: &RunDir) -> Result<DataArtifacts, DataError> {
    let dataset_dir = data_root.join(cfg.dataset.name());
    let splits = [
        (
            cfg.dataset.train_files(),
            cfg.train_limit,
            files::TRAIN_SPLIT,
        ),
        (cfg.dataset.test_files(), cfg.test_limit, files::TEST_SPLIT),
    ];

    // Find or fetch all four files before the slow work, so a missing file
    // is reported (or downloaded) first.
    let downloader = Downloader::new(
        cfg.mirrors(),
        Duration::from_secs(cfg.connect_timeout_secs),
        Duration::from_secs(cfg.read_timeout_secs),
    );
    let mut sources = Vec::with_capacity(4);
    for (split_files, _, _) in &splits {
        for file in [&split_files.images, &split_files.labels] {
            let path = match locate(&dataset_dir, file) {
                Some(path) => path,
                None => downloader.fetch(file, &dataset_dir)?,
            };
            tracing::debug!(path = %path.display(), "using {}", file.name);
            sources.push(path);
        }
    }

    // Structure first, for all four files (the most specific message wins),
    // then the published checksums, then normalising and writing.
    let raw_splits = splits
        .iter()
        .enumerate()
        .map(|(i, (split_files, _, _))| {
            RawSplit::read(split_files, &sources[2 * i], &sources[2 * i + 1])
        })
        .collect::<Result<Vec<_>, _>>()?;
    for ((split_files, _, _), raw) in splits.iter().zip(&raw_splits) {
        raw.verify(cfg.dataset, split_files)?;
    }
    let mut lens = [0usize; 2];
    for (i, ((_, limit, output), raw)) in splits.iter().zip(&raw_splits).enumerate() {
        let path = run.path(output);
        lens[i] = raw.write(*limit, &path)?;
        tracing::info!("wrote {} ({} images)", path.display(), lens[i]);
    }

    Ok(DataArtifacts {
        sources,
        outputs: splits.iter().map(|(_, _, output)| *output).collect(),
        train_len: lens[0],
        test_len: lens[1],
    })
}

/// One split's two files, decompressed and checked for structure.
struct RawSplit {
    images_path: PathBuf,
    images_bytes: Vec<u8>,
    labels_path: PathBuf,
    labels_bytes: Vec<u8>,
}

impl RawSplit {
    /// Decompresses both files and checks their structure and that they agree in count.
    fn read(
        split_files: &SplitFiles,
        images_path: &Path,
        labels_path: &Path,
    ) -> Result<Self, DataError> {
        let raw = Self {
            images_bytes: read_decompressed(images_path, split_files.images.len)?,
            labels_bytes: read_decompressed(labels_path, split_files.labels.len)?,
            images_path: images_path.to_path_buf(),
            labels_path: labels_path.to_path_buf(),
        };
        raw.parse()?;
        Ok(raw)
    }

    fn parse(&self) -> Result<(idx::IdxImages<'_>, &[u8]), DataError> {
        let images = idx::parse_images(&self.images_bytes).map_err(|source| DataError::Idx {
            path: self.images_path.clone(),
            source,
        })?;
        let labels = idx::parse_labels(&self.labels_bytes).map_err(|source| DataError::Idx {
            path: self.labels_path.clone(),
            source,
        })?;
        if images.count != labels.len() {
            return Err(DataError::CountMismatch {
                images: self.images_path.clone(),
                n_images: images.count,
                labels: self.labels_path.clone(),
                n_labels: labels.len(),
            });
        }
        Ok((images, labels))
    }

    /// Checks both files against the published digests.
    fn verify(&self, dataset: Dataset, split_files: &SplitFiles) -> Result<(), DataError> {
        verify_checksum(
            &self.images_path,
            dataset,
            &split_files.images,
            &self.images_bytes,
        )?;
        verify_checksum(
            &self.labels_path,
            dataset,
            &split_files.labels,
            &self.labels_bytes,
        )
    }

    /// Writes the first `limit` images (all when `None`), scaled to [0, 1]
    /// chunk by chunk as they are written, and their labels; returns how many.
    fn write(&self, limit: Option<usize>, path: &Path) -> Result<usize, DataError> {
        let (images, labels) = self.parse()?;
        let n = limit.map_or(images.count, |limit| limit.min(images.count));
        let pixels = &images.pixels[..n * ae_store::IMAGE_PIXELS];
        let (name, shape) = ae_store::split_images_tensor(n);
        let images = TensorOut::f32_streamed(name, shape, move |out| {
            for chunk in pixels.chunks(1 << 16) {
                ae_store::write_f32_le(out, &normalize(chunk))?;
            }
            Ok(())
        });
        ae_store::write_split(path, images, &labels[..n])?;
        Ok(n)
    }
}
