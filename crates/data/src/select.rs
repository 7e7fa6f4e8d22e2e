//! Writing a split from selected images of parsed IDX pairs.

use std::path::Path;

use ae_store::TensorOut;

use crate::{DataError, normalize};

/// Some images of one parsed IDX pair, in order, and which are anomalies.
pub(crate) struct Selection<'a> {
    pixels: &'a [u8],
    pub(crate) labels: Vec<u8>,
    indices: Vec<usize>,
    is_outlier: Vec<bool>,
}

impl<'a> Selection<'a> {
    pub(crate) fn new(
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
pub(crate) fn write_selections(
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
