//! Finding a dataset file on disk and reading it back verified.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::{DataError, Dataset, Fix, IdxError, IdxFile, IdxKind, idx};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The dataset file in `dataset_dir`, as `<name>.gz` or raw `<name>`, if present.
pub fn locate(dataset_dir: &Path, file: &IdxFile) -> Option<PathBuf> {
    [format!("{}.gz", file.name), file.name.to_string()]
        .into_iter()
        .map(|name| dataset_dir.join(name))
        .find(|path| path.is_file())
}

/// Bytes read from a file at a time.
const CHUNK: usize = 1 << 20;

/// Why the bytes of an IDX stream could not be read.
#[derive(Debug)]
pub(crate) enum StreamError {
    /// Reading (or, for gzip, decompressing) failed.
    Io {
        /// Whether the stream was gzip.
        gzipped: bool,
        /// What failed.
        source: io::Error,
    },
    /// The bytes are not the IDX file the header says.
    Idx(IdxError),
    /// Holding them would take more memory than there is.
    Memory {
        /// What the header promises.
        bytes: u64,
    },
}

/// An IDX stream opened: its header (shorter when the stream ends first),
/// the body after it, and whether it is gzip.
pub(crate) struct IdxStream<'r> {
    /// The header's bytes, decompressed.
    pub(crate) header: Vec<u8>,
    /// What follows the header, decompressed.
    pub(crate) body: Box<dyn Read + Send + 'r>,
    /// Whether the stream is gzip.
    pub(crate) gzipped: bool,
}

impl<'r> IdxStream<'r> {
    /// Opens `source` (gzip recognised by its magic number) and reads the
    /// header of an IDX file of `kind`.
    pub(crate) fn open(source: impl Read + Send + 'r, kind: IdxKind) -> Result<Self, StreamError> {
        let mut file = BufReader::with_capacity(CHUNK, source);
        let gzipped = file
            .fill_buf()
            .map_err(|source| StreamError::Io {
                gzipped: false,
                source,
            })?
            .starts_with(&GZIP_MAGIC);
        let mut body: Box<dyn Read + Send + 'r> = if gzipped {
            Box::new(GzDecoder::new(file))
        } else {
            Box::new(file)
        };
        let header_len = idx::header_len(kind);
        let mut header = Vec::with_capacity(header_len);
        (&mut body)
            .take(header_len as u64)
            .read_to_end(&mut header)
            .map_err(|source| StreamError::Io { gzipped, source })?;
        Ok(Self {
            header,
            body,
            gzipped,
        })
    }

    /// The length of the whole file its header promises; when `raw_len`, a
    /// file's size, is known, a raw stream of another length is refused.
    pub(crate) fn promised(&self, kind: IdxKind, raw_len: Option<u64>) -> Result<u64, StreamError> {
        let promised = idx::promised_len(&self.header, kind).map_err(StreamError::Idx)?;
        if let Some(len) = raw_len.filter(|&len| !self.gzipped && len != promised) {
            return Err(StreamError::Idx(IdxError::WrongLength {
                expected: usize::try_from(promised).unwrap_or(usize::MAX),
                found: usize::try_from(len).unwrap_or(usize::MAX),
            }));
        }
        Ok(promised)
    }
}

/// An IDX file's decompressed bytes: the header, and the body apart from it
/// (so dropping the header moves no pixel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdxBytes {
    /// The header (shorter when the file ends first).
    pub(crate) header: Vec<u8>,
    /// Everything after it.
    pub(crate) body: Vec<u8>,
}

impl IdxBytes {
    /// The whole file, header and body, in one buffer.
    pub(crate) fn contiguous(self) -> Vec<u8> {
        let mut bytes = self.header;
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// The decompressed bytes of an IDX stream of `kind` (gzip recognised by
/// its magic number), as header and body, read no further than they may
/// be: the length its header promises (at most `published_len`, a
/// published file's length, when known), plus one byte to tell that it
/// holds more. When `raw_len`, a file's size, is known, a raw stream of
/// another length than promised is refused before its body is read. Memory
/// is taken as the bytes arrive, so a header that lies costs nothing. Every
/// byte read is handed, in order, to `seen` as it arrives (to hash it
/// meanwhile).
pub(crate) fn read_idx_stream_parts(
    source: impl Read + Send,
    kind: IdxKind,
    published_len: Option<u64>,
    raw_len: Option<u64>,
    mut seen: impl FnMut(&[u8]),
) -> Result<IdxBytes, StreamError> {
    let stream = IdxStream::open(source, kind)?;
    seen(&stream.header);
    let header_len = idx::header_len(kind);
    if stream.header.len() < header_len {
        // Too short for a header: the parser says so.
        return Ok(IdxBytes {
            header: stream.header,
            body: Vec::new(),
        });
    }
    let promised = stream.promised(kind, raw_len)?;
    let gzipped = stream.gzipped;
    let bound = published_len.map_or(promised, |len| len.min(promised));
    let body_bound = bound.saturating_sub(header_len as u64);
    let mut body = stream.body.take(body_bound + 1);
    // A published file's length is the catalog's, not claimed (at most
    // MNIST's 47 MB): it is taken at once, plus the byte that tells it holds
    // more, as zeroed pages the system hands out without writing them. Any
    // other file's memory is taken a chunk at a time as its bytes arrive, so
    // a header that lies costs nothing. Either way the bytes decompress
    // straight into it, not through a chunk and a copy.
    let mut bytes = match published_len {
        Some(_) => vec![0u8; usize::try_from(body_bound + 1).unwrap_or(usize::MAX)],
        None => Vec::new(),
    };
    let mut filled = 0;
    loop {
        if filled == bytes.len() {
            bytes
                .try_reserve(CHUNK)
                .map_err(|_| StreamError::Memory { bytes: promised })?;
            bytes.resize(filled + CHUNK, 0);
        }
        let n = match body.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(StreamError::Io { gzipped, source }),
        };
        seen(&bytes[filled..filled + n]);
        filled += n;
    }
    bytes.truncate(filled);
    if filled as u64 > body_bound {
        return Err(StreamError::Idx(IdxError::Oversized { expected: bound }));
    }
    Ok(IdxBytes {
        header: stream.header,
        body: bytes,
    })
}

/// The error of a user's or a dataset's file at `path` that could not be
/// read as IDX; `fix` says what to do about a bad one.
pub(crate) fn stream_error(path: &Path, fix: Fix, err: StreamError) -> DataError {
    let path = path.to_path_buf();
    match err {
        StreamError::Io {
            gzipped: true,
            source,
        } => DataError::CorruptGzip { path, fix, source },
        StreamError::Io { source, .. } => DataError::Read { path, source },
        StreamError::Idx(source) => DataError::Idx { path, fix, source },
        StreamError::Memory { bytes } => DataError::Memory { path, bytes },
    }
}

/// The decompressed bytes of the IDX file of `kind` at `path` (gzip
/// recognised by its magic number), read no further than they may be: the
/// length its header promises (at most `published_len`, a published file's
/// length, when known), plus one byte to tell that it holds more. A raw
/// file's size is checked against the promise before its body is read, and
/// memory is taken as the bytes arrive, so a header that lies costs
/// nothing. Errors name the file, and `fix` says what to do about a bad one.
/// What is read is checked in full by [`crate::idx`]'s parsers.
pub fn read_idx(
    path: &Path,
    kind: IdxKind,
    published_len: Option<u64>,
    fix: Fix,
) -> Result<Vec<u8>, DataError> {
    read_idx_parts(path, kind, published_len, fix, |_| {}).map(IdxBytes::contiguous)
}

/// [`read_idx`] as header and body, handing every byte read to `seen`.
pub(crate) fn read_idx_parts(
    path: &Path,
    kind: IdxKind,
    published_len: Option<u64>,
    fix: Fix,
    seen: impl FnMut(&[u8]),
) -> Result<IdxBytes, DataError> {
    let meta = ae_store::regular_file(path)?;
    let file = File::open(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    read_idx_stream_parts(file, kind, published_len, Some(meta.len()), seen)
        .map_err(|e| stream_error(path, fix, e))
}

/// [`read_idx_parts`] for a published file, whose decompressed bytes are
/// hashed on another thread as they arrive: the bytes and their sha256, for
/// [`check_digest`].
pub(crate) fn read_idx_hashed(
    path: &Path,
    kind: IdxKind,
    published_len: u64,
    fix: Fix,
) -> Result<(IdxBytes, String), DataError> {
    let mut hasher = ae_store::BackgroundSha256::start();
    let read = read_idx_parts(path, kind, Some(published_len), fix, |b| hasher.update(b));
    let digest = hasher.finish();
    Ok((read?, digest))
}

/// Checks that decompressed `bytes` are the published content of `file`.
pub fn verify_checksum(
    path: &Path,
    dataset: Dataset,
    file: &IdxFile,
    bytes: &[u8],
) -> Result<(), DataError> {
    check_digest(path, dataset, file, ae_store::sha256_hex(bytes))
}

/// Checks that `found`, the sha256 of the decompressed bytes at `path`, is
/// that of the published content of `file`.
pub(crate) fn check_digest(
    path: &Path,
    dataset: Dataset,
    file: &IdxFile,
    found: String,
) -> Result<(), DataError> {
    if found == file.sha256 {
        Ok(())
    } else {
        Err(DataError::Checksum {
            path: path.to_path_buf(),
            dataset,
            name: file.name,
            expected: file.sha256,
            found,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use ae_testkit::gzip;

    use super::*;

    const FILE: IdxFile = IdxFile {
        name: "t10k-labels-idx1-ubyte",
        kind: IdxKind::Labels,
        len: 3,
        sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    };

    fn labels(values: &[u8]) -> Vec<u8> {
        ae_testkit::idx_labels_of(values)
    }

    #[test]
    fn prefers_gzip_then_raw_and_reads_both() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(locate(dir.path(), &FILE), None);
        let content = labels(&[1, 2, 3]);

        let raw = dir.path().join(FILE.name);
        fs::write(&raw, &content).expect("write");
        assert_eq!(locate(dir.path(), &FILE), Some(raw.clone()));
        let read = |path: &Path| read_idx(path, IdxKind::Labels, None, Fix::Redownload);
        assert_eq!(read(&raw).expect("raw"), content);

        let gz = dir.path().join(format!("{}.gz", FILE.name));
        fs::write(&gz, gzip(&content)).expect("write");
        assert_eq!(locate(dir.path(), &FILE), Some(gz.clone()));
        assert_eq!(read(&gz).expect("gz"), content);
    }

    #[test]
    fn a_truncated_gzip_is_a_corrupt_gzip_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gz = dir.path().join("x.gz");
        let bytes = gzip(&labels(&[7u8; 5000]));
        fs::write(&gz, &bytes[..bytes.len() / 2]).expect("write");
        let err = read_idx(&gz, IdxKind::Labels, None, Fix::Redownload).expect_err("truncated");
        assert!(matches!(err, DataError::CorruptGzip { .. }), "{err}");
        assert!(err.to_string().contains("x.gz"), "{err}");
    }

    /// Regression: a small gzip whose header promised a few images but that
    /// inflated to far more was read to the end (2 GB of memory for 2 MB).
    #[test]
    fn a_stream_that_holds_more_than_promised_is_read_one_byte_past_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gz = dir.path().join("bomb.gz");
        let mut content = labels(&[1, 2, 3]);
        content.extend(std::iter::repeat_n(0u8, 50_000_000));
        fs::write(&gz, gzip(&content)).expect("write");
        assert!(
            fs::metadata(&gz).expect("stat").len() < 1_000_000,
            "a small file"
        );
        let err = read_idx(&gz, IdxKind::Labels, None, Fix::Replace).expect_err("oversized");
        assert!(
            err.to_string().contains("bomb.gz is not a usable IDX file"),
            "{err}"
        );
        let chain = format!("{:?}", err);
        assert!(chain.contains("Oversized { expected: 11 }"), "{chain}");
        // A published file's known length bounds the read as well.
        let ok = gzip(&labels(&[1, 2, 3]));
        fs::write(&gz, ok).expect("write");
        let err = read_idx(&gz, IdxKind::Labels, Some(10), Fix::Redownload).expect_err("longer");
        assert!(
            format!("{err:?}").contains("Oversized { expected: 10 }"),
            "{err:?}"
        );
    }

    /// Regression: a sparse raw file whose size disagreed with its header was
    /// read in full (25 s for 8 GiB) before the length check.
    #[test]
    fn a_raw_file_of_another_size_than_promised_is_not_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let raw = dir.path().join("sparse");
        let file = fs::File::create(&raw).expect("create");
        let mut header = labels(&[1, 2, 3]);
        header.truncate(8);
        use std::io::Write;
        (&file).write_all(&header).expect("header");
        file.set_len(8 << 30).expect("8 GiB, sparse");
        let clock = std::time::Instant::now();
        let err = read_idx(&raw, IdxKind::Labels, None, Fix::Replace).expect_err("size");
        assert!(
            clock.elapsed() < std::time::Duration::from_secs(2),
            "not read"
        );
        assert!(
            err.to_string().contains("sparse is not a usable IDX file"),
            "{err}"
        );
    }

    #[test]
    fn a_header_of_another_kind_or_shape_reads_nothing_more() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("images");
        let mut header = Vec::new();
        for word in [2051u32, u32::MAX, 280, 280] {
            header.extend(word.to_be_bytes());
        }
        fs::write(&path, &header).expect("write");
        let err = read_idx(&path, IdxKind::Images, None, Fix::Replace).expect_err("shape");
        assert!(format!("{err:?}").contains("WrongImageSize"), "{err:?}");
        let err = read_idx(&path, IdxKind::Labels, None, Fix::Replace).expect_err("kind");
        assert!(format!("{err:?}").contains("WrongMagic"), "{err:?}");
    }

    #[test]
    fn checksum_compares_decompressed_content() {
        let path = Path::new("somewhere");
        verify_checksum(path, Dataset::Mnist, &FILE, b"abc").expect("the digest of abc");
        let err = verify_checksum(path, Dataset::Mnist, &FILE, b"abd").expect_err("differs");
        assert!(
            err.to_string().contains("checksum mismatch for somewhere"),
            "{err}"
        );
    }
}
