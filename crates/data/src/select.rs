//! Writing a split from selected images of one or more image sets.

use std::path::Path;

use ae_store::{Dtype, IMAGE_PIXELS, SplitLabels, TensorOut};

use crate::DataError;
use crate::formats::{ImageSet, Pixels};

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

/// Writes the selections one after another as a split, with u8 pixels
/// when every selection's images are 8-bit, else f32 in [0, 1] (8-bit
/// pixels scaled as they are written); with the classes' `names` when they have
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
    let all_bytes = selections
        .iter()
        .all(|s| matches!(s.set.pixels, Pixels::U8(_)));
    let images = if all_bytes {
        // 8-bit sources stay 8-bit: pixel p stands for p / 255, and the
        // split is a quarter of the size of its floats.
        TensorOut::streamed(name, Dtype::U8, shape, move |out| {
            for selection in selections {
                let Pixels::U8(pixels) = &selection.set.pixels else {
                    unreachable!("every selection's set holds bytes");
                };
                for &i in &selection.indices {
                    out.write_all(&pixels[i * IMAGE_PIXELS..(i + 1) * IMAGE_PIXELS])?;
                }
            }
            Ok(())
        })
    } else {
        TensorOut::streamed(name, Dtype::F32, shape, move |out| {
            let mut chunk = Vec::with_capacity(64 * IMAGE_PIXELS);
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
        })
    };
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
