//! The image tensors of a run, each file with one reader and one writer
//! here, so no other crate spells a tensor name:
//! - the data stage's splits: `images` `[N, 784]`, either u8 (pixel `p`
//!   stands for `p / 255`, what every 8-bit source gives; a quarter of the
//!   bytes of f32) or f32 in `[0, 1]` (sources of floats), `labels`
//!   u8 `[N]` when the images have labels and, when the experiment knows
//!   which images are anomalies (`data.normal_labels`, `data.outliers`),
//!   `is_outlier` u8 `[N]` (0 or 1); classes with names (folders of images)
//!   keep them in the header's `__metadata__` as `label_names`, a JSON list
//!   indexed by label;
//! - reconstructions (`infer/decoded.safetensors`): `images` f32 `[N, 784]`;
//! - codes (`infer/encoded.safetensors`): `latent` f32 `[N, L]`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::StoreError;
use crate::pixels::{IMAGE_PIXELS, Pixels};
use crate::tensors::{Dtype, TensorFile, TensorOut, write_tensors, write_tensors_with_metadata};

const IMAGES: &str = "images";
const LABELS: &str = "labels";
const IS_OUTLIER: &str = "is_outlier";
const LATENT: &str = "latent";
const LABEL_NAMES: &str = "label_names";

/// One split of a dataset in memory: images flattened row-major and scaled to
/// `[0, 1]`, with what is known of each.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Split {
    /// `len() * IMAGE_PIXELS` values, image after image.
    pub images: Vec<f32>,
    /// One class label per image, when the images have labels.
    pub labels: Option<Vec<u8>>,
    /// The classes' names, indexed by label, when they have names.
    pub label_names: Option<Vec<String>>,
    /// The ground truth, when known: whether each image is an anomaly.
    pub is_outlier: Option<Vec<bool>>,
}

impl Split {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.len() / IMAGE_PIXELS
    }

    /// True when the split holds no image.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// The pixels of image `index`.
    pub fn image(&self, index: usize) -> &[f32] {
        &self.images[index * IMAGE_PIXELS..(index + 1) * IMAGE_PIXELS]
    }

    /// The label of image `index`, by name where the classes have names.
    pub fn label_of(&self, index: usize) -> Option<String> {
        label_of(self.labels.as_deref(), self.label_names.as_deref(), index)
    }
}

/// The label of image `index` of a split with `labels` and `names`.
fn label_of(labels: Option<&[u8]>, names: Option<&[String]>, index: usize) -> Option<String> {
    let label = *labels?.get(index)?;
    Some(label_name(names, label))
}

/// How `label` is shown: its name in `names` (indexed by label), or the number.
pub fn label_name(names: Option<&[String]>, label: u8) -> String {
    names
        .and_then(|names| names.get(usize::from(label)))
        .cloned()
        .unwrap_or_else(|| label.to_string())
}

/// What a split says of its images besides their pixels, each `[N]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SplitLabels<'a> {
    /// One class label per image, when the images have labels.
    pub labels: Option<&'a [u8]>,
    /// The classes' names, indexed by label.
    pub names: Option<&'a [String]>,
    /// Whether each image is an anomaly, when known.
    pub is_outlier: Option<&'a [bool]>,
}

/// Writes a split to `path`, atomically: `images` as the `[N, 784]` tensor
/// that it (a stream of tensor output, u8 pixels or f32 values) produces,
/// then what `known` holds.
pub fn write_split(
    path: &Path,
    images: TensorOut<'_>,
    known: SplitLabels<'_>,
) -> Result<(), StoreError> {
    let flags: Option<Vec<u8>> = known
        .is_outlier
        .map(|f| f.iter().map(|&b| u8::from(b)).collect());
    let mut tensors = vec![images];
    if let Some(labels) = known.labels {
        tensors.push(TensorOut::u8(LABELS, vec![labels.len()], labels));
    }
    if let Some(flags) = &flags {
        tensors.push(TensorOut::u8(IS_OUTLIER, vec![flags.len()], flags));
    }
    let mut metadata = BTreeMap::new();
    if let Some(names) = known.names {
        let names = serde_json::to_string(names).map_err(|e| StoreError::Tensors {
            path: path.to_path_buf(),
            source: safetensors::SafeTensorError::JsonError(e),
        })?;
        metadata.insert(LABEL_NAMES.to_string(), names);
    }
    write_tensors_with_metadata(path, metadata, &tensors)
}

/// The tensor name and shape of a split's images, for [`write_split`].
pub fn split_images_tensor(n: usize) -> (&'static str, Vec<usize>) {
    (IMAGES, vec![n, IMAGE_PIXELS])
}

/// Reads a split written by [`write_split`], checking that it holds exactly
/// `images` u8 or f32 `[N, 784]` and optionally `labels` u8 `[N]`,
/// `is_outlier` u8 `[N]` and `label_names`; u8 pixels become `p / 255`
/// ([`crate::byte_value`]).
pub fn read_split(path: &Path) -> Result<Split, StoreError> {
    let CompactSplit {
        pixels,
        labels,
        label_names,
        is_outlier,
    } = read_split_compact(path)?;
    let mut images = Vec::with_capacity(pixels.view().len());
    pixels.view().extend_all(&mut images);
    Ok(Split {
        images,
        labels,
        label_names,
        is_outlier,
    })
}

/// A split as [`read_split`] reads it, its images held as compactly as they
/// are exact ([`Pixels`]: one byte per pixel for the 8-bit splits).
#[derive(Debug, Clone, PartialEq)]
pub struct CompactSplit {
    /// The images.
    pub pixels: Pixels,
    /// As [`Split::labels`].
    pub labels: Option<Vec<u8>>,
    /// As [`Split::label_names`].
    pub label_names: Option<Vec<String>>,
    /// As [`Split::is_outlier`].
    pub is_outlier: Option<Vec<bool>>,
}

impl CompactSplit {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.pixels.images()
    }

    /// True when the split holds no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Image `index` as floats.
    ///
    /// # Panics
    /// If `index` is past the images (a caller bug).
    pub fn image(&self, index: usize) -> Vec<f32> {
        let mut values = Vec::with_capacity(IMAGE_PIXELS);
        self.pixels.view().extend_image(index, &mut values);
        values
    }

    /// The label of image `index`, by name where the classes have names.
    pub fn label_of(&self, index: usize) -> Option<String> {
        label_of(self.labels.as_deref(), self.label_names.as_deref(), index)
    }
}

/// Reads a split written by [`write_split`] (checked as [`read_split`]
/// checks it) without widening 8-bit images to floats.
pub fn read_split_compact(path: &Path) -> Result<CompactSplit, StoreError> {
    let (mut file, layout) = open_split(path)?;
    let label_names = match file.metadata(LABEL_NAMES) {
        None => None,
        Some(text) => {
            Some(
                serde_json::from_str::<Vec<String>>(text).map_err(|e| StoreError::Layout {
                    path: path.to_path_buf(),
                    problems: vec![format!("`{LABEL_NAMES}` is not a JSON list of names: {e}")],
                })?,
            )
        }
    };
    let is_outlier = if layout.has_truth {
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
    let labels = if layout.has_labels {
        Some(file.read_u8(LABELS)?)
    } else {
        None
    };
    let pixels = read_pixels(&mut file, &layout)?;
    Ok(CompactSplit {
        pixels,
        labels,
        label_names,
        is_outlier,
    })
}

/// The images of an open split, as compactly as they are exact.
fn read_pixels(file: &mut TensorFile, layout: &SplitLayout) -> Result<Pixels, StoreError> {
    match layout.pixels {
        Dtype::U8 => Ok(Pixels::Bytes(file.read_u8(IMAGES)?)),
        _ => file.read_f32_compact(IMAGES),
    }
}

/// Reads only the images of a split written by [`write_split`] (checked as
/// [`read_split`] checks it), held as compactly as they are exact: one byte
/// per pixel when every value is `p / 255` (see [`Pixels`]), as u8 splits
/// are and as f32 splits of 8-bit images are.
pub fn read_split_pixels(path: &Path) -> Result<Pixels, StoreError> {
    let (mut file, layout) = open_split(path)?;
    read_pixels(&mut file, &layout)
}

/// What [`open_split`] found in a split.
struct SplitLayout {
    /// `U8` or `F32`: how the images are stored.
    pixels: Dtype,
    has_labels: bool,
    has_truth: bool,
}

/// Opens a split and checks that it holds exactly `images` u8 or f32
/// `[N, 784]` and optionally `labels` u8 `[N]` and `is_outlier` u8 `[N]`.
fn open_split(path: &Path) -> Result<(TensorFile, SplitLayout), StoreError> {
    let file = TensorFile::open(path)?;
    let n = file
        .shape(IMAGES)
        .and_then(|s| s.first().copied())
        .unwrap_or(0);
    let layout = SplitLayout {
        // Anything but u8 is checked against f32, so the error names it.
        pixels: match file.dtype(IMAGES) {
            Some(Dtype::U8) => Dtype::U8,
            _ => Dtype::F32,
        },
        has_labels: file.shape(LABELS).is_some(),
        has_truth: file.shape(IS_OUTLIER).is_some(),
    };
    let (images_shape, one_per_image) = ([n, IMAGE_PIXELS], [n]);
    let mut expected: Vec<(&str, Dtype, &[usize])> = vec![(IMAGES, layout.pixels, &images_shape)];
    if layout.has_labels {
        expected.push((LABELS, Dtype::U8, &one_per_image));
    }
    if layout.has_truth {
        expected.push((IS_OUTLIER, Dtype::U8, &one_per_image));
    }
    file.expect_exactly(&expected)?;
    Ok((file, layout))
}

/// Reads a file holding exactly `images` f32 `[N, 784]` (a split's images
/// or their reconstructions).
pub fn read_images(path: &Path) -> Result<Vec<f32>, StoreError> {
    let (mut file, _) = open_images(path)?;
    file.read_f32(IMAGES)
}

/// Opens a file holding exactly `images` f32 `[N, 784]`, and N.
fn open_images(path: &Path) -> Result<(TensorFile, usize), StoreError> {
    let file = TensorFile::open(path)?;
    let n = file
        .shape(IMAGES)
        .and_then(|s| s.first().copied())
        .unwrap_or(0);
    file.expect_exactly(&[(IMAGES, Dtype::F32, &[n, IMAGE_PIXELS])])?;
    Ok((file, n))
}

/// A file holding exactly `images` f32 `[N, 784]` (as [`read_images`]
/// reads), opened and checked, to read a chunk of images at a time so that
/// they are never all in memory.
#[derive(Debug)]
pub struct ImageChunks {
    file: TensorFile,
    images: usize,
}

impl ImageChunks {
    /// Opens `path` and checks that it holds exactly `images` f32 `[N, 784]`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let (file, images) = open_images(path)?;
        Ok(Self { file, images })
    }

    /// N, the number of images.
    pub fn images(&self) -> usize {
        self.images
    }

    /// Hands the images to `f` in order, `chunk` at a time (the last chunk
    /// may hold fewer), with the index of each chunk's first image.
    pub fn for_each(
        mut self,
        chunk: usize,
        mut f: impl FnMut(usize, &[f32]),
    ) -> Result<(), StoreError> {
        let mut first = 0;
        self.file
            .for_each_f32_chunk(IMAGES, chunk.max(1) * IMAGE_PIXELS, |values| {
                f(first, values);
                first += values.len() / IMAGE_PIXELS;
            })
    }
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

/// Writes `n` images (`[n, 784]`; reconstructions) to `path`, atomically,
/// as `write` produces them: exactly `n × 784` little-endian f32s (e.g. a
/// batch at a time, so that they are never all in memory).
pub fn write_images_streamed(
    path: &Path,
    n: usize,
    write: impl Fn(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    let (name, shape) = split_images_tensor(n);
    write_tensors(path, &[TensorOut::streamed(name, Dtype::F32, shape, write)])
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
    use crate::pixels::byte_value;

    #[test]
    fn round_trips_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data/train.safetensors");
        let images: Vec<f32> = (0..2 * IMAGE_PIXELS)
            .map(|i| (i % 256) as f32 / 255.0)
            .collect();
        let labels = vec![3, 7];
        let (name, shape) = split_images_tensor(2);
        let write = |known: SplitLabels<'_>| {
            write_split(&path, TensorOut::f32(name, shape.clone(), &images), known).expect("write");
            read_split(&path).expect("read")
        };
        let unlabelled = Split {
            images: images.clone(),
            ..Split::default()
        };
        assert_eq!(write(SplitLabels::default()), unlabelled);
        let plain = Split {
            labels: Some(labels.clone()),
            ..unlabelled
        };
        let known = SplitLabels {
            labels: Some(&labels),
            ..SplitLabels::default()
        };
        assert_eq!(write(known), plain);
        let truth = [false, true];
        let with_truth = Split {
            is_outlier: Some(truth.to_vec()),
            ..plain.clone()
        };
        let known = SplitLabels {
            is_outlier: Some(&truth),
            ..known
        };
        assert_eq!(write(known), with_truth);
        let names: Vec<String> = (0..8).map(|i| format!("class {i}")).collect();
        let named = write(SplitLabels {
            names: Some(&names),
            ..known
        });
        assert_eq!(named.label_names.as_ref(), Some(&names));
        assert_eq!(named.label_of(1).as_deref(), Some("class 7"));
        assert_eq!(plain.label_of(1).as_deref(), Some("7"));
    }

    #[test]
    fn a_u8_split_reads_as_the_floats_it_stands_for_and_as_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data/test.safetensors");
        let bytes: Vec<u8> = (0..3 * IMAGE_PIXELS).map(|i| (i * 7 % 256) as u8).collect();
        let (name, shape) = split_images_tensor(3);
        let labels = [1, 2, 3];
        let images = TensorOut::streamed(name, Dtype::U8, shape, |out| out.write_all(&bytes));
        let known = SplitLabels {
            labels: Some(&labels),
            ..SplitLabels::default()
        };
        write_split(&path, images, known).expect("write");
        let split = read_split(&path).expect("read");
        let floats: Vec<f32> = bytes.iter().map(|&p| byte_value(p)).collect();
        assert_eq!(split.images, floats);
        assert_eq!(split.labels.as_deref(), Some(&labels[..]));
        assert_eq!(
            read_split_pixels(&path).expect("pixels"),
            Pixels::Bytes(bytes.clone())
        );

        // The same images as f32 come back as the same bytes for training.
        let (name, shape) = split_images_tensor(3);
        write_split(&path, TensorOut::f32(name, shape, &floats), known).expect("write f32");
        assert_eq!(read_split(&path).expect("read f32").images, floats);
        assert!(matches!(read_split_pixels(&path), Ok(Pixels::Bytes(_))));
        let compact = read_split_compact(&path).expect("compact");
        assert_eq!(compact.pixels, Pixels::Bytes(bytes));
        assert_eq!(compact.labels.as_deref(), Some(&labels[..]));
    }

    #[test]
    fn images_of_another_type_are_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.safetensors");
        let halves = vec![0u8; 2 * IMAGE_PIXELS];
        let view = safetensors::tensor::TensorView::new(Dtype::F16, vec![1, IMAGE_PIXELS], &halves)
            .expect("view");
        safetensors::serialize_to_file([("images", view)], None, &path).expect("write");
        let err = read_split(&path).expect_err("f16 images").to_string();
        assert!(err.contains("`images` is F16, expected F32"), "{err}");
        let err = read_split_pixels(&path)
            .expect_err("f16 images")
            .to_string();
        assert!(err.contains("`images` is F16, expected F32"), "{err}");
    }

    #[test]
    fn reconstructions_and_codes_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let images: Vec<f32> = (0..2 * IMAGE_PIXELS).map(|i| i as f32).collect();
        let path = dir.path().join("decoded.safetensors");
        write_images(&path, &images).expect("write");
        assert_eq!(read_images(&path).expect("read"), images);
        // In chunks that do not divide the images: all of them, in order,
        // each chunk with the index of its first image.
        for chunk in [1, 2, 5] {
            let chunks = ImageChunks::open(&path).expect("open");
            assert_eq!(chunks.images(), 2);
            let (mut seen, mut firsts) = (Vec::new(), Vec::new());
            chunks
                .for_each(chunk, |first, values| {
                    firsts.push(first);
                    seen.extend_from_slice(values);
                })
                .expect("chunks");
            assert_eq!(seen, images, "chunk {chunk}");
            assert_eq!(firsts, if chunk == 1 { vec![0, 1] } else { vec![0] });
        }
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
        assert!(
            err.contains("`images` has shape [1, 2], expected [1, 784]"),
            "{err}"
        );
    }
}
