use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::StoreError;
use crate::hash::HashingFile;

/// Writes a file so that readers see either the old contents or the complete
/// new ones, never a prefix.
///
/// `write` fills a buffered temporary file in the target's directory (created
/// if missing); the temporary file is renamed over `path` only after `write`
/// and the flush succeed. On any error the temporary file is removed and the
/// existing `path`, if any, is untouched. The bytes are hashed as they are
/// written, so that [`crate::FileRecord::of`] need not read the file again
/// while its stamp is the one it had when written.
pub fn write_atomic<F>(path: &Path, write: F) -> Result<(), StoreError>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let dir = parent_dir(path);
    create_dir_all(dir)?;
    let write_err = |source| StoreError::Write {
        path: path.to_path_buf(),
        source,
    };
    let temp = temp_file_in(dir).map_err(write_err)?;
    let digest = {
        let mut out = BufWriter::with_capacity(1 << 20, HashingFile::new(temp.as_file()));
        write(&mut out).map_err(write_err)?;
        out.flush().map_err(write_err)?;
        out.into_inner()
            .map_err(|e| write_err(e.into_error()))?
            .finish()
    };
    temp.persist(path).map_err(|e| write_err(e.error))?;
    crate::manifest::remember_digest(path, digest);
    Ok(())
}

/// The start of every temporary file's name.
const TEMP_PREFIX: &str = ".ae-tmp-";

/// A temporary file in `dir`, deleted on drop unless persisted, named
/// `.ae-tmp-<pid>-<random>` so that one left behind by a process that died
/// can be told apart ([`remove_stale_temps`]). It gets the permissions of an
/// ordinary new file (0666 less the umask), not tempfile's private 0600, so
/// the renamed artifact is readable as any other output.
pub fn temp_file_in(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    let prefix = format!("{TEMP_PREFIX}{}-", std::process::id());
    builder.prefix(&prefix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

/// Removes the temporary files in `dir` (not below it) that an interrupted
/// write left: all of them when `exclusive` (the caller holds the lock that
/// every writer there takes), otherwise those whose process is gone (on
/// Linux; elsewhere only those of no known process). Returns how many bytes
/// were freed; files that cannot be removed are left, with a debug line.
pub fn remove_stale_temps(dir: &Path, exclusive: bool) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut freed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEMP_PREFIX)) else {
            continue;
        };
        let owner = rest
            .split('-')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok());
        let stale = exclusive
            || match owner {
                Some(pid) => pid != std::process::id() && !process_alive(pid),
                None => false,
            };
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if !(stale && is_file) {
            continue;
        }
        let bytes = entry.metadata().map_or(0, |m| m.len());
        match fs::remove_file(entry.path()) {
            Ok(()) => freed += bytes,
            Err(e) => tracing::debug!("cannot remove {}: {e}", entry.path().display()),
        }
    }
    freed
}

/// Whether a process with `pid` runs (Linux); elsewhere assumed to.
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Creates a directory and its parents, naming the directory on failure.
pub fn create_dir_all(dir: &Path) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(|source| StoreError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

/// The directory a file lives in; `.` for a bare file name.
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.txt");
        write_atomic(&path, |w| w.write_all(b"old")).expect("first write");

        let err = write_atomic(&path, |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("disk on fire"))
        })
        .expect_err("the closure failed");

        assert!(err.to_string().contains("out.txt"), "{err}");
        assert_eq!(fs::read(&path).expect("read"), b"old");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.txt")]);
    }

    #[test]
    fn stale_temporary_files_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = temp_file_in(dir.path()).expect("ours");
        // A process id that no process has (beyond Linux's pid_max).
        let dead = dir.path().join(".ae-tmp-4999999-abc");
        fs::write(&dead, vec![0u8; 1000]).expect("write");
        let legacy = dir.path().join(".ae-tmp-Xy12zz");
        fs::write(&legacy, b"x").expect("write");
        fs::write(dir.path().join("kept.safetensors"), b"x").expect("write");
        let freed = remove_stale_temps(dir.path(), false);
        assert_eq!((freed, dead.exists()), (1000, false));
        assert!(live.path().exists() && legacy.exists());
        // Under the folder's lock, every temporary file is stale.
        drop(live);
        assert_eq!(remove_stale_temps(dir.path(), true), 1);
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("kept.safetensors")]);
    }

    #[test]
    fn creates_missing_parent_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/c.txt");
        write_atomic(&path, |w| w.write_all(b"x")).expect("write");
        assert_eq!(fs::read(&path).expect("read"), b"x");
    }

    #[cfg(unix)]
    #[test]
    fn written_files_are_not_private_to_the_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        write_atomic(&path, |w| w.write_all(b"x")).expect("write");
        let mode = fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o644, 0o644, "mode {mode:o}");
    }
}
