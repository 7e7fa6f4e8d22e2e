//! Reading files whose size the reader bounds: only regular files are
//! opened (a named pipe or a device in their place is named, never waited
//! on or read forever), and no file is read past what its format allows.

use std::fs;
use std::io::Read;
use std::path::Path;

use crate::StoreError;

/// Upper bounds on the small files of a run, in bytes: far above anything
/// `ae` writes, far below what would exhaust memory.
pub mod limits {
    /// A config or sweep file.
    pub const CONFIG: u64 = 1 << 20;
    /// `manifest.json`.
    pub const MANIFEST: u64 = 64 << 20;
    /// A cache entry.
    pub const CACHE_ENTRY: u64 = 16 << 20;
    /// `eval/metrics.json`.
    pub const METRICS: u64 = 16 << 20;
    /// `train/history.csv`.
    pub const HISTORY: u64 = 64 << 20;
    /// `eval/roc.csv`: a row per distinct test score.
    pub const ROC: u64 = 1 << 30;
}

/// The metadata of `path` (links followed) when it is a regular file; a
/// folder, named pipe, socket or device there is an error saying which,
/// found without opening it.
pub fn regular_file(path: &Path) -> Result<fs::Metadata, StoreError> {
    let meta = fs::metadata(path).map_err(|source| StoreError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_file() {
        return Ok(meta);
    }
    let kind = if meta.is_dir() {
        "folder"
    } else {
        not_a_file_kind(&meta.file_type())
    };
    Err(StoreError::NotAFile {
        path: path.to_path_buf(),
        kind,
    })
}

#[cfg(unix)]
fn not_a_file_kind(file_type: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        "named pipe"
    } else if file_type.is_socket() {
        "socket"
    } else {
        "device"
    }
}

#[cfg(not(unix))]
fn not_a_file_kind(_: &fs::FileType) -> &'static str {
    "special file"
}

/// The bytes of the regular file at `path`, at most `limit` of them: a
/// larger file is an error that says so, found before reading.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, StoreError> {
    let meta = regular_file(path)?;
    let too_large = |bytes| StoreError::TooLarge {
        path: path.to_path_buf(),
        bytes,
        limit,
    };
    if meta.len() > limit {
        return Err(too_large(meta.len()));
    }
    let read_err = |source| StoreError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The file may have grown since it was measured: never past the limit.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// [`read_bounded`] as UTF-8 text.
pub fn read_bounded_text(path: &Path, limit: u64) -> Result<String, StoreError> {
    String::from_utf8(read_bounded(path, limit)?).map_err(|e| StoreError::Format {
        path: path.to_path_buf(),
        message: format!("it is not UTF-8 text ({e})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_over_its_limit_is_refused_before_reading() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        fs::write(&path, b"0123456789").expect("write");
        assert_eq!(read_bounded(&path, 10).expect("within"), b"0123456789");
        let err = read_bounded(&path, 9).expect_err("over").to_string();
        assert!(
            err.contains("10 bytes") && err.contains("at most 9"),
            "{err}"
        );
        fs::write(&path, [0xff, 0xfe]).expect("write");
        assert!(read_bounded_text(&path, 9).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn only_regular_files_pass_and_a_pipe_is_not_opened() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        fs::write(&file, b"x").expect("write");
        assert!(regular_file(&file).is_ok());
        let err = regular_file(dir.path()).expect_err("a folder");
        assert!(
            err.to_string()
                .contains("is not a regular file but a folder"),
            "{err}"
        );
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        // Opening it would block until a writer came; these return at once.
        let err = crate::sha256_file(&fifo).expect_err("a pipe");
        assert!(err.to_string().contains("named pipe"), "{err}");
        assert!(read_bounded(&fifo, 10).is_err());
        let err = read_bounded(Path::new("/dev/zero"), 10).expect_err("a device");
        assert!(err.to_string().contains("device"), "{err}");
    }
}
