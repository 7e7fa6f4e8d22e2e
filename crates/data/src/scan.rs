//! Images to score, from any file or folder the user names, read a batch
//! at a time: what `ae score` reads.
//!
//! [`scan`] opens one input (an image file, a folder of them, an `.npy`,
//! an `.npz`, an IDX images file, a CSV or Parquet table) and yields
//! [`Batch`]es of at most `batch` images, scaled to `[0, 1]`, each with
//! where it came from ([`Origin`]) and its label when the input has labels.
//! `.npy` and IDX files are streamed, so memory stays near one batch
//! whatever their size; image folders are listed first and decoded a batch
//! at a time on every core; `.npz` archives and tables are read whole (use
//! `.npy` for inputs larger than memory).
//!
//! An image of a folder (or an image file named on its own) that cannot be
//! decoded does not end the input: it comes as an [`Unreadable`] item, and
//! the caller decides. Anything else wrong ends it with a [`DataError`]
//! naming the file and, where it is one image, which.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::formats::{self, Bad, ImageSet, Pixels, npy};
use crate::source::{self, IdxStream, StreamError};
use crate::{DataError, Fix, Format, IdxError, IdxKind, SplitSource, idx, normalize};

/// Where a scored image came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An image file of its own (named, or in a folder).
    File(PathBuf),
    /// Image `index` (0-based) of a file that holds many.
    Row {
        /// The file.
        path: PathBuf,
        /// Which image.
        index: u64,
    },
}

impl Origin {
    /// The file.
    pub fn path(&self) -> &Path {
        match self {
            Origin::File(path) | Origin::Row { path, .. } => path,
        }
    }

    /// The image's index in its file, when the file holds many.
    pub fn index(&self) -> Option<u64> {
        match self {
            Origin::File(_) => None,
            Origin::Row { index, .. } => Some(*index),
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Row { path, index } => write!(f, "{}[{index}]", path.display()),
        }
    }
}

/// Up to a batch of images from one input.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `[n, 784]`, row-major, in `[0, 1]`.
    pub images: Vec<f32>,
    /// Where each came from.
    pub origins: Vec<Origin>,
    /// Each one's label, when the input has labels.
    pub labels: Option<Vec<u8>>,
    /// The input's class names, indexed by label, when its classes have
    /// names (the folders of an image folder, a table's text labels).
    pub label_names: Option<Vec<String>>,
}

impl Batch {
    /// How many images.
    pub fn len(&self) -> usize {
        self.origins.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }
}

/// An image file that could not be decoded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: String,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

/// What an input yields: images, or one that could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// Images read.
    Batch(Batch),
    /// An image file that could not be decoded; the rest go on.
    Unreadable(Unreadable),
}

/// How inputs are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanOptions {
    /// The format of every input, when its name does not tell.
    pub format: Option<Format>,
    /// Resample images that are not 28×28 (Lanczos3), as `data.resize`.
    pub resize: bool,
    /// At most this many images per batch.
    pub batch: usize,
}

/// The items of one input, in order.
pub type Items = Box<dyn Iterator<Item = Result<Item, DataError>> + Send>;

/// Whether `path` names a single image file (by its extension).
pub fn is_image_file(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .is_some_and(|e| formats::IMAGE_EXTENSIONS.contains(&e.as_str()))
}

/// Opens the input at `path` and checks what can be checked before its
/// images are read (that it is there, a regular file or a folder, of a
/// format `ae` reads, with a header that makes sense).
pub fn scan(path: &Path, options: ScanOptions) -> Result<Items, DataError> {
    let batch = options.batch.max(1);
    let key = "INPUT";
    check_present(path)?;
    if path.is_file() && options.format.is_none() && is_image_file(path) {
        let item = image_file(path, options.resize);
        return Ok(Box::new(std::iter::once(Ok(item))));
    }
    let format = formats::detect(path, options.format, key).map_err(|e| match e {
        DataError::UnknownFormat { path, .. } => DataError::Unusable {
            path,
            problem: "cannot tell its format from its name; ae reads image files (.png, .jpg, .bmp) and folders of them, .npy, .npz, .csv, .parquet and IDX files (-ubyte, .gz): rename it, or give --format".into(),
        },
        other => other,
    })?;
    match format {
        Format::Npy => Ok(Box::new(npy_rows(path, batch)?)),
        Format::Idx => Ok(Box::new(idx_rows(path, batch)?)),
        Format::Folder => Ok(Box::new(FolderFiles::open(path, options.resize, batch)?)),
        Format::Npz | Format::Csv | Format::Parquet => {
            let source = SplitSource::Path(path.to_path_buf());
            let options = formats::ReadOptions {
                format: Some(format),
                resize: options.resize,
            };
            // An archive is scored on its test images.
            let set = formats::read(&source, key, "test", options)?;
            if set.count() == 0 {
                return Err(no_image(path));
            }
            Ok(Box::new(whole(set, batch)))
        }
    }
}

/// An input must be there and be a regular file or a folder: never a pipe
/// or a device, which could block or never end.
fn check_present(path: &Path) -> Result<(), DataError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DataError::Unusable {
            path: path.to_path_buf(),
            problem: "no such file or folder".into(),
        }),
        Ok(meta) if meta.is_dir() => Ok(()),
        _ => Ok(ae_store::regular_file(path).map(drop)?),
    }
}

/// A file that holds no image: nothing to score is a mistake worth naming.
fn no_image(path: &Path) -> DataError {
    DataError::Unusable {
        path: path.to_path_buf(),
        problem: "holds no image".into(),
    }
}

/// One image file, decoded; a file that cannot be is [`Item::Unreadable`].
fn image_file(path: &Path, resize: bool) -> Item {
    let mut pixels = vec![0u8; ae_store::IMAGE_PIXELS];
    match formats::decode(path, resize, &mut pixels) {
        Ok(()) => Item::Batch(Batch {
            images: normalize(&pixels),
            origins: vec![Origin::File(path.to_path_buf())],
            labels: None,
            label_names: None,
        }),
        Err(bad) => Item::Unreadable(unreadable(bad)),
    }
}

fn unreadable(bad: Bad) -> Unreadable {
    Unreadable {
        path: bad.path,
        problem: bad.problem,
    }
}

/// The batches of a set read whole.
fn whole(set: ImageSet, batch: usize) -> impl Iterator<Item = Result<Item, DataError>> + Send {
    let n = set.count();
    (0..n).step_by(batch).map(move |start| {
        let end = (start + batch).min(n);
        let mut images = Vec::with_capacity((end - start) * ae_store::IMAGE_PIXELS);
        for i in start..end {
            set.pixels.push_scaled(i, &mut images);
        }
        Ok(Item::Batch(Batch {
            images,
            origins: (start..end)
                .map(|i| Origin::Row {
                    path: set.origin.clone(),
                    index: i as u64,
                })
                .collect(),
            labels: set.labels.as_ref().map(|l| l[start..end].to_vec()),
            label_names: set.names.clone(),
        }))
    })
}

/// Rows of a file that holds many images, `origin` the first's index.
fn rows(path: &Path, first: usize, images: Vec<f32>) -> Batch {
    let n = images.len() / ae_store::IMAGE_PIXELS;
    Batch {
        images,
        origins: (first..first + n)
            .map(|i| Origin::Row {
                path: path.to_path_buf(),
                index: i as u64,
            })
            .collect(),
        labels: None,
        label_names: None,
    }
}

/// A file that holds many images, read in order.
trait RowReader: Send {
    /// Images `first..first + n` of the file's `count`, scaled.
    fn read(&mut self, first: usize, n: usize, count: usize) -> Result<Vec<f32>, DataError>;
}

/// The images of a file that holds many, a batch at a time; the first
/// error ends it.
struct Rows<R> {
    reader: R,
    path: PathBuf,
    next: usize,
    count: usize,
    batch: usize,
}

impl<R: RowReader> Iterator for Rows<R> {
    type Item = Result<Item, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.count {
            return None;
        }
        let first = self.next;
        let n = (self.count - first).min(self.batch);
        match self.reader.read(first, n, self.count) {
            Ok(images) => {
                self.next = first + n;
                Some(Ok(Item::Batch(rows(&self.path, first, images))))
            }
            Err(err) => {
                // Nothing after a bad image is read.
                self.count = 0;
                Some(Err(err))
            }
        }
    }
}

/// The body of an `.npy` file.
struct NpyReader {
    path: PathBuf,
    header: npy::Header,
    body: BufReader<File>,
}

fn npy_rows(path: &Path, batch: usize) -> Result<Rows<NpyReader>, DataError> {
    let (header, body) = formats::open_npy(path)?;
    let count = npy::image_count(&header).map_err(|p| Bad::new(path, p))?;
    if count == 0 {
        return Err(no_image(path));
    }
    Ok(Rows {
        reader: NpyReader {
            path: path.to_path_buf(),
            header,
            body,
        },
        path: path.to_path_buf(),
        next: 0,
        count,
        batch,
    })
}

impl RowReader for NpyReader {
    fn read(&mut self, first: usize, n: usize, _count: usize) -> Result<Vec<f32>, DataError> {
        match npy::read_image_rows(&self.header, &mut self.body, first, n) {
            Ok(Pixels::U8(bytes)) => Ok(normalize(&bytes)),
            Ok(Pixels::F32(values)) => Ok(values),
            Err(problem) => Err(Bad::new(&self.path, problem).into()),
        }
    }
}

/// The body of an IDX images file (gzip or raw).
struct IdxReader {
    path: PathBuf,
    body: Box<dyn Read + Send + 'static>,
    gzipped: bool,
}

fn idx_rows(path: &Path, batch: usize) -> Result<Rows<IdxReader>, DataError> {
    let meta = ae_store::regular_file(path)?;
    let file = File::open(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let kind = IdxKind::Images;
    let stream_error = |e| source::stream_error(path, Fix::Replace, e);
    let stream = IdxStream::open(file, kind).map_err(stream_error)?;
    let promised = stream
        .promised(kind, Some(meta.len()))
        .map_err(stream_error)?;
    let header_len = idx::header_len(kind) as u64;
    let count = usize::try_from((promised - header_len) / ae_store::IMAGE_PIXELS as u64)
        .unwrap_or(usize::MAX);
    if count == 0 {
        return Err(no_image(path));
    }
    Ok(Rows {
        reader: IdxReader {
            path: path.to_path_buf(),
            body: stream.body,
            gzipped: stream.gzipped,
        },
        path: path.to_path_buf(),
        next: 0,
        count,
        batch,
    })
}

impl RowReader for IdxReader {
    fn read(&mut self, first: usize, n: usize, count: usize) -> Result<Vec<f32>, DataError> {
        let mut pixels = vec![0u8; n * ae_store::IMAGE_PIXELS];
        self.body.read_exact(&mut pixels).map_err(|source| {
            if source.kind() == std::io::ErrorKind::UnexpectedEof {
                DataError::Unusable {
                    path: self.path.clone(),
                    problem: format!(
                        "truncated: its header promises {count} images but it ends within image {}",
                        first + n - 1
                    ),
                }
            } else {
                io_error(&self.path, self.gzipped, source)
            }
        })?;
        if first + n == count {
            // The last batch: nothing may follow it.
            let extra = self
                .body
                .read(&mut [0u8; 1])
                .map_err(|source| io_error(&self.path, self.gzipped, source))?;
            if extra > 0 {
                return Err(DataError::Idx {
                    path: self.path.clone(),
                    fix: Fix::Replace,
                    source: IdxError::Oversized {
                        expected: ae_store::IMAGE_PIXELS as u64 * count as u64
                            + idx::header_len(IdxKind::Images) as u64,
                    },
                });
            }
        }
        Ok(normalize(&pixels))
    }
}

fn io_error(path: &Path, gzipped: bool, source: std::io::Error) -> DataError {
    source::stream_error(path, Fix::Replace, StreamError::Io { gzipped, source })
}

/// The images of a folder, listed first, decoded a batch at a time; each
/// image that cannot be decoded is an item of its own.
struct FolderFiles {
    files: std::vec::IntoIter<PathBuf>,
    labels: Option<std::vec::IntoIter<u8>>,
    names: Option<Vec<String>>,
    resize: bool,
    batch: usize,
    /// Items decoded and not yet yielded.
    pending: std::collections::VecDeque<Item>,
}

impl FolderFiles {
    fn open(root: &Path, resize: bool, batch: usize) -> Result<Self, DataError> {
        let listing = formats::image_files(root)?;
        if listing.skipped > 0 {
            tracing::warn!(
                "{}: skipped {} files whose names do not end in an image extension ({})",
                root.display(),
                listing.skipped,
                formats::IMAGE_EXTENSIONS.join(", ")
            );
        }
        let (names, labels) = match listing.classes {
            Some((names, labels)) => (Some(names), Some(labels.into_iter())),
            None => (None, None),
        };
        Ok(Self {
            files: listing.files.into_iter(),
            labels,
            names,
            resize,
            batch,
            pending: Default::default(),
        })
    }

    /// Decodes the next batch of files into `pending`.
    fn decode_next(&mut self) {
        let files: Vec<PathBuf> = self.files.by_ref().take(self.batch).collect();
        let labels: Option<Vec<u8>> = self
            .labels
            .as_mut()
            .map(|l| l.by_ref().take(files.len()).collect());
        let mut pixels = vec![0u8; files.len() * ae_store::IMAGE_PIXELS];
        let outcomes = formats::decode_each(&files, self.resize, &mut pixels);
        let mut batch = Batch {
            images: Vec::with_capacity(pixels.len()),
            origins: Vec::with_capacity(files.len()),
            labels: labels.as_ref().map(|_| Vec::with_capacity(files.len())),
            label_names: self.names.clone(),
        };
        for (i, (path, outcome)) in files.into_iter().zip(outcomes).enumerate() {
            match outcome {
                Ok(()) => {
                    let range = i * ae_store::IMAGE_PIXELS..(i + 1) * ae_store::IMAGE_PIXELS;
                    batch.images.extend(normalize(&pixels[range]));
                    batch.origins.push(Origin::File(path));
                    if let (Some(out), Some(labels)) = (&mut batch.labels, &labels) {
                        out.push(labels[i]);
                    }
                }
                Err(bad) => self.pending.push_back(Item::Unreadable(unreadable(bad))),
            }
        }
        if !batch.is_empty() {
            self.pending.push_front(Item::Batch(batch));
        }
    }
}

impl Iterator for FolderFiles {
    type Item = Result<Item, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pending.is_empty() {
            self.decode_next();
        }
        self.pending.pop_front().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(batch: usize) -> ScanOptions {
        ScanOptions {
            format: None,
            resize: false,
            batch,
        }
    }

    fn collect(path: &Path, batch: usize) -> (Vec<Batch>, Vec<Unreadable>) {
        let mut batches = Vec::new();
        let mut bad = Vec::new();
        for item in scan(path, options(batch)).expect("opens") {
            match item.expect("reads") {
                Item::Batch(b) => batches.push(b),
                Item::Unreadable(u) => bad.push(u),
            }
        }
        (batches, bad)
    }

    fn pixels(n: usize) -> Vec<u8> {
        (0..n * ae_store::IMAGE_PIXELS)
            .map(|i| (i * 7 % 256) as u8)
            .collect()
    }

    #[test]
    fn npy_and_idx_stream_in_batches_with_every_image_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = pixels(7);
        let npy_path = dir.path().join("x.npy");
        std::fs::write(&npy_path, ae_testkit::npy("|u1", &[7, 28, 28], &data)).expect("write");
        let idx_path = dir.path().join("x-idx3-ubyte");
        std::fs::write(&idx_path, ae_testkit::idx_images_of(&data)).expect("write");
        for path in [&npy_path, &idx_path] {
            let (batches, bad) = collect(path, 3);
            assert!(bad.is_empty());
            assert_eq!(
                batches.iter().map(Batch::len).collect::<Vec<_>>(),
                [3, 3, 1]
            );
            let images: Vec<f32> = batches.iter().flat_map(|b| b.images.clone()).collect();
            assert_eq!(images, normalize(&data), "{}", path.display());
            let indices: Vec<Option<u64>> = batches
                .iter()
                .flat_map(|b| b.origins.iter().map(Origin::index))
                .collect();
            assert_eq!(indices, (0..7).map(Some).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_truncated_or_oversized_idx_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes = ae_testkit::idx_images_of(&pixels(3));
        // Gzipped, so the length is only known at the end of the stream.
        for (name, body) in [
            ("short.gz", &bytes[..bytes.len() - 10]),
            ("long.gz", &[bytes.as_slice(), &[0u8; 5]].concat()[..]),
        ] {
            let path = dir.path().join(name);
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, body).expect("gzip");
            std::fs::write(&path, gz.finish().expect("gzip")).expect("write");
            let err = scan(&path, options(2))
                .expect("opens")
                .find_map(Result::err)
                .expect("an error");
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn a_bad_image_in_a_folder_is_an_item_and_the_rest_go_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (i, name) in ["a.png", "b.png", "c.png"].iter().enumerate() {
            let path = dir.path().join(name);
            if i == 1 {
                std::fs::write(&path, b"not a png").expect("write");
            } else {
                image::GrayImage::from_pixel(28, 28, image::Luma([i as u8 * 100]))
                    .save(&path)
                    .expect("png");
            }
        }
        let (batches, bad) = collect(dir.path(), 10);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].len(), 2);
        assert_eq!(
            batches[0].origins[1],
            Origin::File(dir.path().join("c.png"))
        );
        assert_eq!(batches[0].images[ae_store::IMAGE_PIXELS], 200.0 / 255.0);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].path, dir.path().join("b.png"));
    }

    #[test]
    fn a_pipe_a_missing_path_or_an_unknown_name_is_refused_before_reading() {
        let dir = tempfile::tempdir().expect("tempdir");
        #[cfg(unix)]
        {
            let fifo = dir.path().join("pipe.npy");
            let made = std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .expect("mkfifo runs");
            assert!(made.success());
            let err = scan(&fifo, options(1)).err().expect("refused");
            assert!(err.to_string().contains("pipe.npy"), "{err}");
        }
        let err = scan(&dir.path().join("nope.npy"), options(1))
            .err()
            .expect("refused");
        assert!(err.to_string().contains("nope.npy"), "{err}");
        let odd = dir.path().join("x.weird");
        std::fs::write(&odd, b"?").expect("write");
        let err = scan(&odd, options(1)).err().expect("refused");
        assert!(err.to_string().contains("--format"), "{err}");
    }
}
