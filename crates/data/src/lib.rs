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
pub use config::{DataConfig, Outliers};
pub use download::Downloader;
pub use error::{DataError, MirrorError, MirrorFailure};
pub use idx::{IdxError, normalize};
pub use source::{locate, read_decompressed, verify_checksum};

/// Added to the labels of `data.outliers` images in the test split: class
/// 3 of the outlier dataset is label 13, apart from the main dataset's 3.
pub const OUTLIER_LABEL_OFFSET: u8 = 10;

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
/// splits into `run`. With `data.normal_labels` the training split keeps
/// only those labels; with `data.normal_labels` or `data.outliers` the test
/// split carries the ground truth (`is_outlier`). Outlier images keep their
/// own classes, shifted by [`OUTLIER_LABEL_OFFSET`].
pub fn run(cfg: &DataConfig, data_root: &Path, run: &RunDir) -> Result<DataArtifacts, DataError> {
    // The main dataset's training and test files, then the outliers' test files.
    let mut wanted = vec![
        (cfg.dataset, cfg.dataset.train_files(), cfg.mirrors()),
        (cfg.dataset, cfg.dataset.test_files(), cfg.mirrors()),
    ];
    if let Some(outliers) = &cfg.outliers {
        let mirrors = outliers
            .dataset
            .default_mirrors()
            .iter()
            .map(|m| m.to_string())
            .collect();
        wanted.push((outliers.dataset, outliers.dataset.test_files(), mirrors));
    }

    // Find or fetch every file before the slow work, so a missing file
    // is reported (or downloaded) first.
    let mut sources = Vec::with_capacity(2 * wanted.len());
    for (dataset, split_files, mirrors) in &wanted {
        let downloader = Downloader::new(
            mirrors.clone(),
            Duration::from_secs(cfg.connect_timeout_secs),
            Duration::from_secs(cfg.read_timeout_secs),
        );
        let dataset_dir = data_root.join(dataset.name());
        for file in [&split_files.images, &split_files.labels] {
            let path = match locate(&dataset_dir, file) {
                Some(path) => path,
                None => downloader.fetch(file, &dataset_dir)?,
            };
            tracing::debug!(path = %path.display(), "using {}", file.name);
            sources.push(path);
        }
    }

    // Structure first, for every file (the most specific message wins),
    // then the published checksums, then normalising and writing.
    let raw = wanted
        .iter()
        .enumerate()
        .map(|(i, (_, split_files, _))| {
            RawSplit::read(split_files, &sources[2 * i], &sources[2 * i + 1])
        })
        .collect::<Result<Vec<_>, _>>()?;
    for ((dataset, split_files, _), raw) in wanted.iter().zip(&raw) {
        raw.verify(*dataset, split_files)?;
    }

    let (train_images, train_labels) = raw[0].parse()?;
    let normal: Vec<usize> = (0..train_images.count)
        .filter(|&i| !cfg.is_outlier_label(train_labels[i]))
        .take(cfg.train_limit.unwrap_or(usize::MAX))
        .collect();
    let train = Selection::new(train_images.pixels, train_labels, normal, |_| false);
    let train_len = write_selections(&run.path(files::TRAIN_SPLIT), &[train], false)?;

    let (test_images, test_labels) = raw[1].parse()?;
    let first = (0..test_images.count.min(cfg.test_limit.unwrap_or(usize::MAX))).collect();
    let mut test = vec![Selection::new(
        test_images.pixels,
        test_labels,
        first,
        |l| cfg.is_outlier_label(l),
    )];
    let parsed_outliers;
    if let (Some(outliers), Some(raw)) = (&cfg.outliers, raw.get(2)) {
        parsed_outliers = raw.parse()?;
        let (images, labels) = &parsed_outliers;
        let first = (0..outliers.count.min(images.count)).collect();
        let mut outliers = Selection::new(images.pixels, labels, first, |_| true);
        // Their classes become 10–19, so no table mixes them with the digits.
        for label in &mut outliers.labels {
            *label += OUTLIER_LABEL_OFFSET;
        }
        test.push(outliers);
    }
    let test_len = write_selections(&run.path(files::TEST_SPLIT), &test, cfg.has_ground_truth())?;

    Ok(DataArtifacts {
        sources,
        outputs: vec![files::TRAIN_SPLIT, files::TEST_SPLIT],
        train_len,
        test_len,
    })
}

/// Some images of one parsed IDX pair, in order, and which are anomalies.
struct Selection<'a> {
    pixels: &'a [u8],
    labels: Vec<u8>,
    indices: Vec<usize>,
    is_outlier: Vec<bool>,
}

impl<'a> Selection<'a> {
    fn new(
        pixels: &'a [u8],
        labels: &[u8],
        indices: Vec<usize>,
        is_outlier: impl Fn(u8) -> bool,
    ) -> Self {
        let labels: Vec<u8> = indices.iter().map(|&i| labels[i]).collect();
        let is_outlier = labels.iter().map(|&l| is_outlier(l)).collect();
        Self {
            pixels,
            labels,
            indices,
            is_outlier,
        }
    }
}

/// Writes the selections one after another as a split, scaling pixels to
/// [0, 1] image by image as they are written; returns the image count.
fn write_selections(
    path: &Path,
    selections: &[Selection<'_>],
    with_truth: bool,
) -> Result<usize, DataError> {
    let labels: Vec<u8> = selections
        .iter()
        .flat_map(|s| s.labels.iter().copied())
        .collect();
    let is_outlier: Vec<bool> = selections
        .iter()
        .flat_map(|s| s.is_outlier.iter().copied())
        .collect();
    let n = labels.len();
    let (name, shape) = ae_store::split_images_tensor(n);
    let images = TensorOut::f32_streamed(name, shape, move |out| {
        const PIXELS: usize = ae_store::IMAGE_PIXELS;
        for selection in selections {
            for batch in selection.indices.chunks(64) {
                let mut chunk = Vec::with_capacity(batch.len() * PIXELS);
                for &i in batch {
                    chunk.extend_from_slice(&selection.pixels[i * PIXELS..(i + 1) * PIXELS]);
                }
                ae_store::write_f32_le(out, &normalize(&chunk))?;
            }
        }
        Ok(())
    });
    ae_store::write_split(path, images, &labels, with_truth.then_some(&is_outlier[..]))?;
    tracing::info!(
        "wrote {} ({n} images{})",
        path.display(),
        if with_truth {
            format!(
                ", {} of them anomalies",
                is_outlier.iter().filter(|&&o| o).count()
            )
        } else {
            String::new()
        }
    );
    Ok(n)
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
}
