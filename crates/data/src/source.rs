//! Finding a dataset file on disk and reading it back verified.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::{DataError, Dataset, Fix, IdxFile};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The dataset file in `dataset_dir`, as `<name>.gz` or raw `<name>`, if present.
pub fn locate(dataset_dir: &Path, file: &IdxFile) -> Option<PathBuf> {
    [format!("{}.gz", file.name), file.name.to_string()]
        .into_iter()
        .map(|name| dataset_dir.join(name))
        .find(|path| path.is_file())
}

/// The decompressed bytes of the file at `path`: gzip is recognised by its
/// magic number, anything else is taken as raw IDX. `expected_len` (0 when
/// unknown) sizes the buffer; `fix` says what to do about a corrupt file.
pub fn read_decompressed(path: &Path, expected_len: u64, fix: Fix) -> Result<Vec<u8>, DataError> {
    let bytes = fs::read(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if !bytes.starts_with(&GZIP_MAGIC) {
        return Ok(bytes);
    }
    gunzip(&bytes, expected_len).map_err(|source| DataError::CorruptGzip {
        path: path.to_path_buf(),
        fix,
        source,
    })
}

/// Decompresses a whole gzip member.
pub(crate) fn gunzip(bytes: &[u8], expected_len: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(usize::try_from(expected_len).unwrap_or(0));
    GzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

/// Checks that decompressed `bytes` are the published content of `file`.
pub fn verify_checksum(
    path: &Path,
    dataset: Dataset,
    file: &IdxFile,
    bytes: &[u8],
) -> Result<(), DataError> {
    let found = ae_store::sha256_hex(bytes);
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
    use ae_testkit::gzip;

    use super::*;
    use crate::IdxKind;

    const FILE: IdxFile = IdxFile {
        name: "t10k-labels-idx1-ubyte",
        kind: IdxKind::Labels,
        len: 3,
        sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    };

    #[test]
    fn prefers_gzip_then_raw_and_reads_both() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(locate(dir.path(), &FILE), None);

        let raw = dir.path().join(FILE.name);
        fs::write(&raw, b"abc").expect("write");
        assert_eq!(locate(dir.path(), &FILE), Some(raw.clone()));
        assert_eq!(
            read_decompressed(&raw, 3, Fix::Redownload).expect("raw"),
            b"abc"
        );

        let gz = dir.path().join(format!("{}.gz", FILE.name));
        fs::write(&gz, gzip(b"abc")).expect("write");
        assert_eq!(locate(dir.path(), &FILE), Some(gz.clone()));
        assert_eq!(
            read_decompressed(&gz, 3, Fix::Redownload).expect("gz"),
            b"abc"
        );
    }

    #[test]
    fn a_truncated_gzip_is_a_corrupt_gzip_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gz = dir.path().join("x.gz");
        let bytes = gzip(&[7u8; 5000]);
        fs::write(&gz, &bytes[..bytes.len() / 2]).expect("write");
        let err = read_decompressed(&gz, 5000, Fix::Redownload).expect_err("truncated");
        assert!(matches!(err, DataError::CorruptGzip { .. }), "{err}");
        assert!(err.to_string().contains("x.gz"), "{err}");
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
