//! A pair of dataset files read into memory and checked.

use std::path::PathBuf;

use crate::sources::{self, PairSource, Role};
use crate::{DataError, Fix, IdxKind, idx, located, read_idx, verify_checksum};

/// One split's two files, decompressed and checked for structure.
pub(crate) struct RawSplit {
    pub(crate) role: Role,
    pub(crate) published: Option<sources::Published>,
    pub(crate) images_path: PathBuf,
    images_bytes: Vec<u8>,
    pub(crate) labels_path: PathBuf,
    labels_bytes: Vec<u8>,
    /// What a user can do about a bad file of this pair.
    fix: Fix,
}

impl RawSplit {
    /// Decompresses both files and checks their structure and that they agree in count.
    pub(crate) fn read(pair: &PairSource) -> Result<Self, DataError> {
        let (images_path, labels_path) = (located(&pair.images), located(&pair.labels));
        let (images_len, labels_len) = match &pair.published {
            Some(p) => (Some(p.files.images.len), Some(p.files.labels.len)),
            None => (None, None),
        };
        let fix = pair.fix();
        let raw = Self {
            role: pair.role,
            published: pair.published.clone(),
            images_bytes: read_idx(images_path, IdxKind::Images, images_len, fix)?,
            labels_bytes: read_idx(labels_path, IdxKind::Labels, labels_len, fix)?,
            images_path: images_path.to_path_buf(),
            labels_path: labels_path.to_path_buf(),
            fix,
        };
        raw.parse()?;
        Ok(raw)
    }

    pub(crate) fn parse(&self) -> Result<(idx::IdxImages<'_>, &[u8]), DataError> {
        let images = idx::parse_images(&self.images_bytes).map_err(|source| DataError::Idx {
            path: self.images_path.clone(),
            fix: self.fix,
            source,
        })?;
        let labels = idx::parse_labels(&self.labels_bytes).map_err(|source| DataError::Idx {
            path: self.labels_path.clone(),
            fix: self.fix,
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

    /// Checks a published dataset's files against their published digests.
    pub(crate) fn verify(&self) -> Result<(), DataError> {
        let Some(published) = &self.published else {
            return Ok(());
        };
        let (dataset, split_files) = (published.dataset, &published.files);
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
