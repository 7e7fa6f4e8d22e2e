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

use ae_store::{RunDir, Split, files};

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

    let mut lens = [0usize; 2];
    for (i, (split_files, limit, output)) in splits.iter().enumerate() {
        let split = load_split(
            cfg.dataset,
            split_files,
            (&sources[2 * i], &sources[2 * i + 1]),
            *limit,
        )?;
        let path = run.path(output);
        ae_store::write_split(&path, &split)?;
        tracing::info!("wrote {} ({} images)", path.display(), split.len());
        lens[i] = split.len();
    }

    Ok(DataArtifacts {
        sources,
        outputs: splits.iter().map(|(_, _, output)| *output).collect(),
        train_len: lens[0],
        test_len: lens[1],
    })
}

/// Reads one split's images and labels files, checks them, and keeps the
/// first `limit` images.
pub fn load_split(
    dataset: Dataset,
    split_files: &SplitFiles,
    (images_path, labels_path): (&Path, &Path),
    limit: Option<usize>,
) -> Result<Split, DataError> {
    let images_bytes = read_decompressed(images_path, split_files.images.len)?;
    let labels_bytes = read_decompressed(labels_path, split_files.labels.len)?;
    let images = idx::parse_images(&images_bytes).map_err(|source| DataError::Idx {
        path: images_path.to_path_buf(),
        source,
    })?;
    let labels = idx::parse_labels(&labels_bytes).map_err(|source| DataError::Idx {
        path: labels_path.to_path_buf(),
        source,
    })?;
    if images.count != labels.len() {
        return Err(DataError::CountMismatch {
            images: images_path.to_path_buf(),
            n_images: images.count,
            labels: labels_path.to_path_buf(),
            n_labels: labels.len(),
        });
    }
    verify_checksum(images_path, dataset, &split_files.images, &images_bytes)?;
    verify_checksum(labels_path, dataset, &split_files.labels, &labels_bytes)?;

    let n = limit.map_or(images.count, |limit| limit.min(images.count));
    Ok(Split {
        images: normalize(&images.pixels[..n * ae_store::IMAGE_PIXELS]),
        labels: labels[..n].to_vec(),
    })
}
