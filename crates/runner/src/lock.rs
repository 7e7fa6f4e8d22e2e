//! One `ae` at a time in a run directory: the holder of the lock file
//! writes its process id into it, for `ae status` to name.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::Path;

use ae_store::files;
use anyhow::Context;

use crate::experiment::Experiment;

/// Takes the run directory's lock for as long as the returned file lives,
/// waiting while another `ae` holds it. The operating system releases it
/// when the holder exits, even after `kill -9`.
pub(crate) fn lock_run_dir(exp: &Experiment) -> anyhow::Result<File> {
    let path = exp.run.path(files::LOCK);
    let file = open_lock_file(&path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            tracing::warn!(
                "another ae process is working in {}; waiting for it to finish",
                exp.run.root().display()
            );
            file.lock()
                .with_context(|| format!("cannot lock {}", path.display()))?;
        }
        // A file system without locks (Lustre mounted without `flock`, some
        // FUSE file systems): the run goes on, as it would without `flock`.
        Err(TryLockError::Error(e)) if locks_unsupported(&e) => {
            tracing::warn!(
                "the file system of {} does not support locks ({e}); running without the run directory's lock: do not start a second ae on this run while this one runs",
                path.display()
            );
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    let mut holder = &file;
    holder
        .set_len(0)
        .and_then(|()| write!(holder, "{}", std::process::id()))
        .with_context(|| format!("cannot write to the lock file {}", path.display()))?;
    Ok(file)
}

/// Opens (creating it) the lock file at `path`, which must be a regular
/// file if it exists: never a link to one elsewhere, nor a pipe.
pub(crate) fn open_lock_file(path: &Path) -> anyhow::Result<File> {
    if path.symlink_metadata().is_ok() {
        ae_store::regular_file(path).context("cannot use the lock file")?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))
}

/// The process id of another process that holds the run directory's lock
/// now (0 when it did not say); `None` when none does.
pub(crate) fn holder(exp: &Experiment) -> Option<u32> {
    let path = exp.run.path(files::LOCK);
    ae_store::regular_file(&path).ok()?;
    let mut file = File::open(&path).ok()?;
    match file.try_lock_shared() {
        Ok(()) => None,
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = (&mut file).take(32).read_to_string(&mut text);
            Some(text.trim().parse().unwrap_or(0))
        }
        Err(TryLockError::Error(_)) => None,
    }
}

/// Whether `flock` failed because the file system does not offer locks
/// (`ENOSYS`, `EOPNOTSUPP`, or `ENOLCK` from an NFS mount without a lock
/// manager), rather than for a reason worth stopping for.
pub(crate) fn locks_unsupported(err: &std::io::Error) -> bool {
    /// `ENOLCK` on Linux.
    const NO_LOCKS: i32 = 37;
    err.kind() == std::io::ErrorKind::Unsupported
        || (cfg!(target_os = "linux") && err.raw_os_error() == Some(NO_LOCKS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_file_system_without_locks_is_tolerated() {
        assert!(locks_unsupported(&std::io::Error::from(
            std::io::ErrorKind::Unsupported
        )));
        #[cfg(target_os = "linux")]
        assert!(locks_unsupported(&std::io::Error::from_raw_os_error(37)));
        assert!(!locks_unsupported(&std::io::Error::from(
            std::io::ErrorKind::PermissionDenied
        )));
        assert!(!locks_unsupported(&std::io::Error::from_raw_os_error(5)));
    }
}
