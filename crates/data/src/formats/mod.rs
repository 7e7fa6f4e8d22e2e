//! The user's own images, in every format `ae` reads, each read into an
//! [`ImageSet`]: pixels as the format stores them (bytes 0–255 or floats in
//! `[0, 1]`), labels when there are any, and class names when the classes
//! have names (the folders of an image folder, or the text labels of a
//! table).
//!
//! One module per format: [`idx`](crate::idx) (parsing; read here),
//! [`npy`], [`npz`], [`folder`] and [`table`] (CSV and Parquet). Each
//! reads straight into its output, so memory stays near the size of the
//! images read.

mod folder;
pub(crate) mod npy;
mod npz;
mod table;

use std::path::{Path, PathBuf};

use crate::source::read_idx_parts;
use crate::{DataError, FilePair, Fix, Format, IdxKind, SplitSource, idx};

pub(crate) use folder::{IMAGE_EXTENSIONS, decode, decode_each, image_files};

/// The pixels of N images, row-major, as their format stores them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Pixels {
    /// Bytes 0–255, scaled by 1/255 when written.
    U8(Vec<u8>),
    /// Floats already in `[0, 1]`.
    F32(Vec<f32>),
}

impl Pixels {
    /// How many images.
    pub(crate) fn count(&self) -> usize {
        match self {
            Pixels::U8(p) => p.len() / ae_store::IMAGE_PIXELS,
            Pixels::F32(p) => p.len() / ae_store::IMAGE_PIXELS,
        }
    }

    /// Appends image `index`, scaled to `[0, 1]`, to `out`.
    pub(crate) fn push_scaled(&self, index: usize, out: &mut Vec<f32>) {
        let range = index * ae_store::IMAGE_PIXELS..(index + 1) * ae_store::IMAGE_PIXELS;
        match self {
            Pixels::U8(p) => out.extend_from_slice(&crate::normalize(&p[range])),
            Pixels::F32(p) => out.extend_from_slice(&p[range]),
        }
    }
}

/// Images read from one source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ImageSet {
    /// Their pixels.
    pub(crate) pixels: Pixels,
    /// One label per image, when they have labels.
    pub(crate) labels: Option<Vec<u8>>,
    /// The classes' names, indexed by label, when they have names.
    pub(crate) names: Option<Vec<String>>,
    /// Where they came from, for messages.
    pub(crate) origin: PathBuf,
}

impl ImageSet {
    /// How many images.
    pub(crate) fn count(&self) -> usize {
        self.pixels.count()
    }
}

/// A file (or an image in a folder) that cannot be used, and why.
#[derive(Debug)]
pub(crate) struct Bad {
    pub(crate) path: PathBuf,
    pub(crate) problem: String,
}

impl Bad {
    pub(crate) fn new(path: &Path, problem: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
}

impl From<Bad> for DataError {
    fn from(bad: Bad) -> Self {
        DataError::Unusable {
            path: bad.path,
            problem: bad.problem,
        }
    }
}

/// How a split's images are read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadOptions {
    /// `data.format`, when set.
    pub(crate) format: Option<Format>,
    /// `data.resize`: resample images that are not 28×28.
    pub(crate) resize: bool,
}

/// The format of `path` (a file or folder given under `key`): `explicit`
/// when set, else a folder, else by the file's name.
pub(crate) fn detect(
    path: &Path,
    explicit: Option<Format>,
    key: &str,
) -> Result<Format, DataError> {
    if let Some(format) = explicit {
        return Ok(format);
    }
    if path.is_dir() {
        return Ok(Format::Folder);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let ext = name.rsplit_once('.').map(|(_, ext)| ext).unwrap_or("");
    match ext {
        "npy" => Ok(Format::Npy),
        "npz" => Ok(Format::Npz),
        "csv" => Ok(Format::Csv),
        "parquet" | "pq" => Ok(Format::Parquet),
        _ if name.contains("-ubyte") || name.contains("idx") || ext == "gz" => Ok(Format::Idx),
        _ => Err(DataError::UnknownFormat {
            key: key.to_string(),
            path: path.to_path_buf(),
        }),
    }
}

/// Reads the images `source` names (given under `key`); from an `.npz`
/// archive, the arrays `<npz_prefix>_images` and `<npz_prefix>_labels`.
pub(crate) fn read(
    source: &SplitSource,
    key: &str,
    npz_prefix: &str,
    options: ReadOptions,
) -> Result<ImageSet, DataError> {
    // A folder can only be a source of its own, never one of a pair.
    let folder_allowed = matches!(source, SplitSource::Path(_));
    for (key, path) in source.paths(key) {
        check_present(&key, path, folder_allowed)?;
    }
    match source {
        SplitSource::Pair(pair) => read_pair(pair, key, options),
        SplitSource::Path(path) => match detect(path, options.format, key)? {
            Format::Folder => folder::read(path, options.resize),
            Format::Npz => Ok(npz::read(path, npz_prefix)?),
            Format::Npy => Ok(ImageSet {
                pixels: npy_file(path, npy::read_images)?,
                labels: None,
                names: None,
                origin: path.clone(),
            }),
            Format::Idx => Ok(ImageSet {
                pixels: Pixels::U8(idx_images(path)?),
                labels: None,
                names: None,
                origin: path.clone(),
            }),
            format @ (Format::Csv | Format::Parquet) => {
                Ok(table::read(path, format == Format::Csv)?)
            }
        },
    }
}

/// A file or folder the user named must be there and be a regular file or
/// a folder: never a pipe or a device, which could block or never end.
fn check_present(key: &str, path: &Path, folder_allowed: bool) -> Result<(), DataError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DataError::Missing {
            key: key.to_string(),
            path: path.to_path_buf(),
        }),
        Ok(meta) if meta.is_dir() && folder_allowed => Ok(()),
        _ => match ae_store::regular_file(path) {
            Ok(_) => Ok(()),
            Err(source) => Err(DataError::OwnFile {
                key: key.to_string(),
                source,
            }),
        },
    }
}

/// Images and optional labels in two files, IDX or `.npy` by the images
/// file's name (or `data.format`).
fn read_pair(pair: &FilePair, key: &str, options: ReadOptions) -> Result<ImageSet, DataError> {
    let format = detect(&pair.images, options.format, &format!("{key}.images"))?;
    let (pixels, labels) = match format {
        Format::Npy => (
            npy_file(&pair.images, npy::read_images)?,
            match &pair.labels {
                Some(path) => Some(npy_file(path, npy::read_labels)?),
                None => None,
            },
        ),
        Format::Idx => (
            Pixels::U8(idx_images(&pair.images)?),
            match &pair.labels {
                Some(path) => Some(idx_labels(path)?),
                None => None,
            },
        ),
        other => {
            return Err(DataError::PairFormat {
                key: format!("{key}.images"),
                path: pair.images.clone(),
                format: other,
            });
        }
    };
    if let (Some(labels), Some(labels_path)) = (&labels, &pair.labels)
        && labels.len() != pixels.count()
    {
        return Err(DataError::CountMismatch {
            images: pair.images.clone(),
            n_images: pixels.count(),
            labels: labels_path.clone(),
            n_labels: labels.len(),
        });
    }
    Ok(ImageSet {
        pixels,
        labels,
        names: None,
        origin: pair.images.clone(),
    })
}

/// The pixels of an IDX images file of the user's.
fn idx_images(path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = read_idx_parts(path, IdxKind::Images, None, Fix::Replace, |_| {})?;
    idx::parse_images_parts(&bytes.header, &bytes.body).map_err(|source| DataError::Idx {
        path: path.to_path_buf(),
        fix: Fix::Replace,
        source,
    })?;
    Ok(bytes.body)
}

/// The labels of an IDX labels file of the user's: any byte is a class.
fn idx_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = read_idx_parts(path, IdxKind::Labels, None, Fix::Replace, |_| {})?;
    idx::parse_any_labels_parts(&bytes.header, &bytes.body).map_err(|source| DataError::Idx {
        path: path.to_path_buf(),
        fix: Fix::Replace,
        source,
    })?;
    Ok(bytes.body)
}

/// Reads an `.npy` file with `read` (its images or its labels), checking
/// that the file holds exactly what its header promises.
fn npy_file<T>(
    path: &Path,
    read: impl FnOnce(&npy::Header, &mut dyn std::io::Read) -> Result<T, String>,
) -> Result<T, DataError> {
    let (header, mut reader) = open_npy(path)?;
    read(&header, &mut reader).map_err(|problem| Bad::new(path, problem).into())
}

/// Opens an `.npy` file: its header, checked against the file's length,
/// and a reader at the start of its body.
pub(crate) fn open_npy(
    path: &Path,
) -> Result<(npy::Header, std::io::BufReader<std::fs::File>), DataError> {
    let bad = |problem: String| DataError::from(Bad::new(path, problem));
    let file = std::fs::File::open(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let len = file
        .metadata()
        .map_err(|source| DataError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let header = npy::read_header(&mut reader).map_err(bad)?;
    let expected = header.file_len().map_err(bad)?;
    if len != expected {
        return Err(bad(format!(
            "{} .npy file: its header promises {expected} bytes but the file has {len}",
            if len < expected {
                "truncated"
            } else {
                "oversized"
            }
        )));
    }
    Ok((header, reader))
}
