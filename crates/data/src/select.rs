//! Writing a split from selected images of one or more image sets.

use std::path::Path;

use ae_store::{SplitLabels, TensorOut};

use crate::DataError;
use crate::formats::ImageSet;

/// Some images of one set, in order, and which are anomalies.
pub(crate) struct Selection<'a> {
    set: &'a ImageSet,
    pub(crate) labels: Option<Vec<u8>>,
    indices: Vec<usize>,
    is_outlier: Vec<bool>,
}

impl<'a> Selection<'a> {
    /// Images `indices` of `set`; `is_outlier` decides from an image's label
    /// (`None` when the set has none).
    pub(crate) fn new(
        set: &'a ImageSet,
        indices: Vec<usize>,
        is_outlier: impl Fn(Option<u8>) -> bool,
    ) -> Self {
        let labels: Option<Vec<u8>> = set
            .labels
            .as_ref()
            .map(|labels| indices.iter().map(|&i| labels[i]).collect());
        let is_outlier = match &labels {
            Some(labels) => labels.iter().map(|&l| is_outlier(Some(l))).collect(),
            None => vec![is_outlier(None); indices.len()],
        };
        Self {
            set,
            labels,
            indices,
            is_outlier,
        }
    }

    /// How many images.
    pub(crate) fn len(&self) -> usize {
        self.indices.len()
    }
}

/// Writes the selections one after another as a split, scaling pixels to
/// [0, 1] as they are written, with the classes' `names` when they have
/// names; returns the image count. Labels are written when every
/// selection has them.
pub(crate) fn write_selections(
    path: &Path,
    selections: &[Selection<'_>],
    with_truth: bool,
    names: Option<&[String]>,
) -> Result<usize, DataError> {
    let labels: Option<Vec<u8>> =
        selections
            .iter()
            .map(|s| s.labels.as_deref())
            .try_fold(Vec::new(), |mut all, labels| {
                all.extend_from_slice(labels?);
                Some(all)
            });
    let is_outlier: Vec<bool> = selections
        .iter()
        .flat_map(|s| s.is_outlier.iter().copied())
        .collect();
    let n = is_outlier.len();
    let (name, shape) = ae_store::split_images_tensor(n);
    let images = TensorOut::f32_streamed(name, shape, move |out| {
        let mut chunk = Vec::with_capacity(64 * ae_store::IMAGE_PIXELS);
        for selection in selections {
            for batch in selection.indices.chunks(64) {
                chunk.clear();
                for &i in batch {
                    selection.set.pixels.push_scaled(i, &mut chunk);
                }
                ae_store::write_f32_le(out, &chunk)?;
            }
        }
        Ok(())
    });
    let known = SplitLabels {
        labels: labels.as_deref(),
        names: names.filter(|_| labels.is_some()),
        is_outlier: with_truth.then_some(&is_outlier[..]),
    };
    ae_store::write_split(path, images, known)?;
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
