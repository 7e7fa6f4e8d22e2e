//! The image tensors of a run, each file with one reader and one writer
//! here, so no other crate spells a tensor name:
//! - the data stage's splits: `images` f32 `[N, 784]` in `[0, 1]`, `labels`
//!   u8 `[N]` and, when the experiment knows which images are anomalies
//!   (`data.normal_labels`, `data.outliers`), `is_outlier` u8 `[N]` (0 or 1);
//! - reconstructions (`infer/decoded.safetensors`): `images` f32 `[N, 784]`;
//! - codes (`infer/encoded.safetensors`): `latent` f32 `[N, L]`.

use std::path::Path;

use crate::StoreError;
use crate::tensors::{Dtype, TensorFile, TensorOut, write_tensors};

/// Side length of an MNIST image.
pub const IMAGE_SIDE: usize = 28;
/// Pixels in one flattened image: 28 × 28.
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;

const IMAGES: &str = "images";
const LABELS: &str = "labels";
const IS_OUTLIER: &str = "is_outlier";
const LATENT: &str = "latent";

/// One split of a dataset in memory: images flattened row-major and scaled to
/// `[0, 1]`, with one label per image.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// `len() * IMAGE_PIXELS` values, image after image.
    pub images: Vec<f32>,
    /// One class label per image.
    pub labels: Vec<u8>,
    /// The ground truth, when known: whether each image is an anomaly.
    pub is_outlier: Option<Vec<bool>>,
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

/// Writes a split to `path`, atomically: `labels` and `is_outlier` (when
/// known) as given, and `images` as the `[N, 784]` f32 tensor that `images`
/// (a stream of tensor output) produces.
pub fn write_split(
    path: &Path,
    images: TensorOut<'_>,
    labels: &[u8],
    is_outlier: Option<&[bool]>,
) -> Result<(), StoreError> {
    let flags: Option<Vec<u8>> = is_outlier.map(|f| f.iter().map(|&b| u8::from(b)).collect());
    let mut tensors = vec![images, TensorOut::u8(LABELS, vec![labels.len()], labels)];
    if let Some(flags) = &flags {
        tensors.push(TensorOut::u8(IS_OUTLIER, vec![flags.len()], flags));
    }
    write_tensors(path, &tensors)
}

/// The tensor name and shape of a split's images, for [`write_split`].
pub fn split_images_tensor(n: usize) -> (&'static str, Vec<usize>) {
    (IMAGES, vec![n, IMAGE_PIXELS])
}

/// Reads a split written by [`write_split`], checking that it holds exactly
/// `images` f32 `[N, 784]`, `labels` u8 `[N]` and optionally `is_outlier` u8 `[N]`.
pub fn read_split(path: &Path) -> Result<Split, StoreError> {
    let mut file = TensorFile::open(path)?;
    let n = file
        .shape(LABELS)
        .and_then(|s| s.first().copied())
        .unwrap_or(0);
    let has_truth = file.shape(IS_OUTLIER).is_some();
    let (images_shape, one_per_image) = ([n, IMAGE_PIXELS], [n]);
    let mut expected: Vec<(&str, Dtype, &[usize])> = vec![
        (IMAGES, Dtype::F32, &images_shape),
        (LABELS, Dtype::U8, &one_per_image),
    ];
    if has_truth {
        expected.push((IS_OUTLIER, Dtype::U8, &one_per_image));
    }
    file.expect_exactly(&expected)?;
    let is_outlier = if has_truth {
        let flags = file.read_u8(IS_OUTLIER)?;
        if let Some(bad) = flags.iter().find(|&&f| f > 1) {
            return Err(StoreError::Layout {
                path: path.to_path_buf(),
                problems: vec![format!(
                    "`is_outlier` holds {bad}; only 0 and 1 are allowed"
                )],
            });
        }
        Some(flags.into_iter().map(|f| f == 1).collect())
    } else {
        None
    };
    Ok(Split {
        images: file.read_f32(IMAGES)?,
        labels: file.read_u8(LABELS)?,
        is_outlier,
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

/// Writes images (`[N, 784]`, row-major; reconstructions) to `path`, atomically.
///
/// # Panics
/// If `images` is not a whole number of images (a caller bug).
pub fn write_images(path: &Path, images: &[f32]) -> Result<(), StoreError> {
    assert_eq!(images.len() % IMAGE_PIXELS, 0, "images come in rows of 784");
    let (name, shape) = split_images_tensor(images.len() / IMAGE_PIXELS);
    write_tensors(path, &[TensorOut::f32(name, shape, images)])
}

/// Writes codes (`[N, latent]`, row-major) to `path`, atomically.
///
/// # Panics
/// If `codes` is not a whole number of rows of `latent` (a caller bug).
pub fn write_codes(path: &Path, latent: usize, codes: &[f32]) -> Result<(), StoreError> {
    assert_eq!(codes.len() % latent, 0, "codes come in rows of {latent}");
    let shape = vec![codes.len() / latent, latent];
    write_tensors(path, &[TensorOut::f32(LATENT, shape, codes)])
}

/// Reads a file written by [`write_codes`]: the latent size and the codes.
pub fn read_codes(path: &Path) -> Result<(usize, Vec<f32>), StoreError> {
    let mut file = TensorFile::open(path)?;
    let shape = file
        .shape(LATENT)
        .map(<[usize]>::to_vec)
        .unwrap_or_default();
    let [n, latent] = shape[..] else {
        return Err(StoreError::Layout {
            path: path.to_path_buf(),
            problems: vec![format!(
                "`{LATENT}` must be an [N, L] tensor, found shape {shape:?}"
            )],
        });
    };
    file.expect_exactly(&[(LATENT, Dtype::F32, &[n, latent])])?;
    Ok((latent, file.read_f32(LATENT)?))
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
        write_split(
            &path,
            TensorOut::f32(name, shape.clone(), &images),
            &labels,
            None,
        )
        .expect("write");
        let plain = Split {
            images: images.clone(),
            labels: labels.clone(),
            is_outlier: None,
        };
        assert_eq!(read_split(&path).expect("read"), plain);
        let truth = [false, true];
        write_split(
            &path,
            TensorOut::f32(name, shape, &images),
            &labels,
            Some(&truth),
        )
        .expect("write");
        let with_truth = Split {
            is_outlier: Some(truth.to_vec()),
            ..plain
        };
        assert_eq!(read_split(&path).expect("read"), with_truth);
    }

    #[test]
    fn reconstructions_and_codes_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let images: Vec<f32> = (0..2 * IMAGE_PIXELS).map(|i| i as f32).collect();
        let path = dir.path().join("decoded.safetensors");
        write_images(&path, &images).expect("write");
        assert_eq!(read_images(&path).expect("read"), images);
        let codes = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let path = dir.path().join("encoded.safetensors");
        write_codes(&path, 3, &codes).expect("write");
        assert_eq!(read_codes(&path).expect("read"), (3, codes.to_vec()));
        let err = read_codes(&dir.path().join("decoded.safetensors")).expect_err("not codes");
        assert!(err.to_string().contains("`latent` must be"), "{err}");
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
