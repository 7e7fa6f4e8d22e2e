use std::borrow::Cow;
use std::fs;

use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView, View};

use crate::StoreError;

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

/// Writes `split` to `path` as safetensors: `images` f32 `[N, 784]`, `labels` u8 `[N]`.
///
/// The file appears atomically, through [`crate::write_atomic`].
///
/// # Panics
/// If `split.images.len() != split.len() * IMAGE_PIXELS`, a bug in the caller.
pub fn write_split(path: &Path, split: &Split) -> Result<(), StoreError> {
    assert_eq!(
        split.images.len(),
        split.len() * IMAGE_PIXELS,
        "a split's images and labels disagree"
    );
    let n = split.len();
    let tensors = [
        (
            IMAGES,
            Tensor::new(
                Dtype::F32,
                vec![n, IMAGE_PIXELS],
                f32_le_bytes(&split.images),
            ),
        ),
        (
            LABELS,
            Tensor::new(Dtype::U8, vec![n], Cow::Borrowed(&split.labels)),
        ),
    ];
    let bytes = safetensors::serialize(tensors, None).map_err(|source| StoreError::Tensors {
        path: path.to_path_buf(),
        source,
    })?;
    crate::write_atomic(path, |out| out.write_all(&bytes))
}

/// Reads a split written by [`write_split`], checking that it holds exactly
/// `images` f32 `[N, 784]` and `labels` u8 `[N]`.
pub fn read_split(path: &Path) -> Result<Split, StoreError> {
    let bytes = fs::read(path).map_err(|source| StoreError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(|source| StoreError::Tensors {
        path: path.to_path_buf(),
        source,
    })?;

    let mut problems = Vec::new();
    for name in tensors.names() {
        if name != IMAGES && name != LABELS {
            problems.push(format!("unexpected tensor `{name}`"));
        }
    }
    let images = expect_tensor(&tensors, IMAGES, Dtype::F32, &mut problems);
    let labels = expect_tensor(&tensors, LABELS, Dtype::U8, &mut problems);
    if let (Some(images), Some(labels)) = (&images, &labels) {
        let n = labels.shape().first().copied().unwrap_or(0);
        if labels.shape().len() != 1 {
            problems.push(format!(
                "`labels` has shape {:?}, expected [N]",
                labels.shape()
            ));
        }
        if images.shape() != [n, IMAGE_PIXELS] {
            problems.push(format!(
                "`images` has shape {:?}, expected [{n}, {IMAGE_PIXELS}]",
                images.shape()
            ));
        }
    }
    match (images, labels) {
        (Some(images), Some(labels)) if problems.is_empty() => Ok(Split {
            images: images
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            labels: labels.data().to_vec(),
        }),
        _ => Err(StoreError::Layout {
            path: path.to_path_buf(),
            problems,
        }),
    }
}

fn expect_tensor<'a>(
    tensors: &SafeTensors<'a>,
    name: &str,
    dtype: Dtype,
    problems: &mut Vec<String>,
) -> Option<TensorView<'a>> {
    match tensors.tensor(name) {
        Ok(view) if view.dtype() == dtype => Some(view),
        Ok(view) => {
            problems.push(format!(
                "`{name}` is {:?}, expected {dtype:?}",
                view.dtype()
            ));
            None
        }
        Err(_) => {
            problems.push(format!("tensor `{name}` is missing"));
            None
        }
    }
}

/// The little-endian bytes of `values`, without a copy on little-endian machines.
fn f32_le_bytes(values: &[f32]) -> Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        Cow::Borrowed(bytemuck::cast_slice(values))
    } else {
        Cow::Owned(values.iter().flat_map(|v| v.to_le_bytes()).collect())
    }
}

/// A tensor to serialize, borrowing its bytes.
struct Tensor<'a> {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Cow<'a, [u8]>,
}

impl<'a> Tensor<'a> {
    fn new(dtype: Dtype, shape: Vec<usize>, data: Cow<'a, [u8]>) -> Self {
        Self { dtype, shape, data }
    }
}

impl View for Tensor<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_split() -> Split {
        let images = (0..2 * IMAGE_PIXELS)
            .map(|i| (i % 256) as f32 / 255.0)
            .collect();
        Split {
            images,
            labels: vec![3, 7],
        }
    }

    #[test]
    fn round_trips_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data/train.safetensors");
        let split = tiny_split();
        write_split(&path, &split).expect("write");
        assert_eq!(read_split(&path).expect("read"), split);
    }

    #[test]
    fn rejects_wrong_names_shapes_and_dtypes_listing_each() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.safetensors");
        let pixels = vec![0u8; 4 * 10];
        let tensors = [
            (
                "images",
                Tensor::new(Dtype::F32, vec![1, 10], Cow::Borrowed(&pixels)),
            ),
            (
                "extra",
                Tensor::new(Dtype::U8, vec![1], Cow::Borrowed(&pixels[..1])),
            ),
        ];
        safetensors::serialize_to_file(tensors, None, &path).expect("write");
        let err = read_split(&path).expect_err("bad layout").to_string();
        assert!(err.contains("unexpected tensor `extra`"), "{err}");
        assert!(err.contains("tensor `labels` is missing"), "{err}");
    }

    #[test]
    fn rejects_a_file_that_is_not_safetensors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("junk.safetensors");
        fs::write(&path, b"hello").expect("write");
        let err = read_split(&path).expect_err("junk");
        assert!(matches!(err, StoreError::Tensors { .. }), "{err}");
    }
}
