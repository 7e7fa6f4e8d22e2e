//! A published dataset's pair of files read into memory and checked.

use std::path::PathBuf;

use crate::formats::{ImageSet, Pixels};
use crate::sources::{self, PairSource};
use crate::{DataError, Fix, IdxKind, idx, located, read_idx, verify_checksum};

/// One split's two files, decompressed and checked for structure.
pub(crate) struct RawSplit {
    pub(crate) published: sources::Published,
    pub(crate) images_path: PathBuf,
    images_bytes: Vec<u8>,
    pub(crate) labels_path: PathBuf,
    labels_bytes: Vec<u8>,
}

impl RawSplit {
    /// Decompresses both files and checks their structure and that they agree in count.
    pub(crate) fn read(pair: &PairSource) -> Result<Self, DataError> {
        let (images_path, labels_path) = (located(&pair.images), located(&pair.labels));
        let published = &pair.published;
        let raw = Self {
            published: published.clone(),
            images_bytes: read_idx(
                images_path,
                IdxKind::Images,
                Some(published.files.images.len),
                Fix::Redownload,
            )?,
            labels_bytes: read_idx(
                labels_path,
                IdxKind::Labels,
                Some(published.files.labels.len),
                Fix::Redownload,
            )?,
            images_path: images_path.to_path_buf(),
            labels_path: labels_path.to_path_buf(),
        };
        raw.check()?;
        Ok(raw)
    }

    fn check(&self) -> Result<(), DataError> {
        let idx_error = |path: &PathBuf| {
            let path = path.clone();
            move |source| DataError::Idx {
                path,
                fix: Fix::Redownload,
                source,
            }
        };
        let images = idx::parse_images(&self.images_bytes).map_err(idx_error(&self.images_path))?;
        let labels = idx::parse_labels(&self.labels_bytes).map_err(idx_error(&self.labels_path))?;
        if images.count != labels.len() {
            return Err(DataError::CountMismatch {
                images: self.images_path.clone(),
                n_images: images.count,
                labels: self.labels_path.clone(),
                n_labels: labels.len(),
            });
        }
        Ok(())
    }

    /// Checks the files against their published digests.
    pub(crate) fn verify(&self) -> Result<(), DataError> {
        let (dataset, split_files) = (self.published.dataset, &self.published.files);
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

    /// The images and labels, without the files' headers (no copy).
    pub(crate) fn into_set(mut self) -> ImageSet {
        self.images_bytes.drain(..idx::header_len(IdxKind::Images));
        self.labels_bytes.drain(..idx::header_len(IdxKind::Labels));
        ImageSet {
            pixels: Pixels::U8(self.images_bytes),
            labels: Some(self.labels_bytes),
            names: None,
            origin: self.images_path,
        }
    }
}
