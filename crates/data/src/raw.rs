//! A published dataset's pair of files read into memory and checked.

use std::path::PathBuf;

use crate::formats::{ImageSet, Pixels};
use crate::source::{IdxBytes, check_digest, read_idx_hashed};
use crate::sources::{self, PairSource};
use crate::{DataError, Fix, IdxKind, idx, located};

/// One split's two files, decompressed and checked for structure.
pub(crate) struct RawSplit {
    pub(crate) published: sources::Published,
    pub(crate) images_path: PathBuf,
    images_bytes: IdxBytes,
    /// The sha256 of `images_bytes`, computed as they were read.
    images_digest: String,
    pub(crate) labels_path: PathBuf,
    labels_bytes: IdxBytes,
    labels_digest: String,
}

impl RawSplit {
    /// Decompresses both files and checks their structure and that they agree in count.
    pub(crate) fn read(pair: &PairSource) -> Result<Self, DataError> {
        let (images_path, labels_path) = (located(&pair.images), located(&pair.labels));
        let published = &pair.published;
        let (images_bytes, images_digest) = read_idx_hashed(
            images_path,
            IdxKind::Images,
            published.files.images.len,
            Fix::Redownload,
        )?;
        let (labels_bytes, labels_digest) = read_idx_hashed(
            labels_path,
            IdxKind::Labels,
            published.files.labels.len,
            Fix::Redownload,
        )?;
        let raw = Self {
            published: published.clone(),
            images_bytes,
            images_digest,
            labels_bytes,
            labels_digest,
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
        let (images, labels) = (&self.images_bytes, &self.labels_bytes);
        let images = idx::parse_images_parts(&images.header, &images.body)
            .map_err(idx_error(&self.images_path))?;
        let labels = idx::parse_labels_parts(&labels.header, &labels.body)
            .map_err(idx_error(&self.labels_path))?;
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
        check_digest(
            &self.images_path,
            dataset,
            &split_files.images,
            self.images_digest.clone(),
        )?;
        check_digest(
            &self.labels_path,
            dataset,
            &split_files.labels,
            self.labels_digest.clone(),
        )
    }

    /// The images and labels, without the files' headers (no copy).
    pub(crate) fn into_set(self) -> ImageSet {
        ImageSet {
            pixels: Pixels::U8(self.images_bytes.body),
            labels: Some(self.labels_bytes.body),
            names: None,
            origin: self.images_path,
        }
    }
}
