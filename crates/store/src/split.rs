//! The data stage's split files: `images` f32 `[N, 784]` in `[0, 1]` and `labels` u8 `[N]`.

use std::path::Path;

use crate::StoreError;
use crate::tensors::{Dtype, TensorFile, TensorOut, write_tensors};

/// Side length of an MNIST image.
pub const IMAGE_SIDE: usize = 28;
/// Pixels in one flattened image: 28 × 28.
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;

const IMAGES: &str = "images";
const LABELS: &str = "labels";

/// One split of a dataset in memory: images flattened row-major and scaled to
/// `[0, 1]`, with one label per image.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// `len() * IMAGE_PIXELS` values, image after image.
    pub images: Vec<f32>,
    /// One class label per image.
    pub labels: Vec<u8>,
}

impl Split {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the split holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `index`.
    pub fn image(&self, index: usize) -> &[f32] {
        &self.images[index * IMAGE_PIXELS..(index + 1) * IMAGE_PIXELS]
    }
}

/// Writes a split to `path`, atomically: `labels` as given, and `images` as
/// the `[N, 784]` f32 tensor that `images` (a stream of tensor output) produces.
pub fn write_split(path: &Path, images: TensorOut<'_>, labels: &[u8]) -> Result<(), StoreError> {
    write_tensors(
        path,
        &[images, TensorOut::u8(LABELS, vec![labels.len()], labels)],
    )
}

/// The tensor name and shape of a split's images, for [`write_split`].
pub fn split_images_tensor(n: usize) -> (&'static str, Vec<usize>) {
    (IMAGES, vec![n, IMAGE_PIXELS])
}

/// Reads a split written by [`write_split`], checking that it holds exactly
/// `images` f32 `[N, 784]` and `labels` u8 `[N]`.
pub fn read_split(path: &Path) -> Result<Split, StoreError> {
    let mut file = TensorFile::open(path)?;
    let n = file
        .shape(LABELS)
        .and_then(|s| s.first().copied())
        .unwrap_or(0);
    file.expect_exactly(&[
        (IMAGES, Dtype::F32, &[n, IMAGE_PIXELS]),
        (LABELS, Dtype::U8, &[n]),
    ])?;
    Ok(Split {
        images: file.read_f32(IMAGES)?,
        labels: file.read_u8(LABELS)?,
    })
}

/// Reads a file holding exactly `images` f32 `[N, 784]` (a split's images
/// or their reconstructions).
pub fn read_images(path: &Path) -> Result<Vec<f32>, StoreError> {
    let mut file = TensorFile::open(path)?;
    let n = file
        .shape(IMAGES)
        .and_then(|s| s.first().copied())
        .unwrap_or(0);
    file.expect_exactly(&[(IMAGES, Dtype::F32, &[n, IMAGE_PIXELS])])?;
    file.read_f32(IMAGES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data/train.safetensors");
        let images: Vec<f32> = (0..2 * IMAGE_PIXELS)
            .map(|i| (i % 256) as f32 / 255.0)
            .collect();
        let labels = vec![3, 7];
        let (name, shape) = split_images_tensor(2);
        write_split(&path, TensorOut::f32(name, shape, &images), &labels).expect("write");
        assert_eq!(read_split(&path).expect("read"), Split { images, labels });
    }

    #[test]
    fn rejects_a_file_with_other_tensors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.safetensors");
        write_tensors(&path, &[TensorOut::f32("images", vec![1, 2], &[0.0, 1.0])]).expect("write");
        let err = read_split(&path).expect_err("bad layout").to_string();
        assert!(err.contains("tensor `labels` is missing"), "{err}");
        assert!(
            err.contains("`images` has shape [1, 2], expected [0, 784]"),
            "{err}"
        );
    }
}
