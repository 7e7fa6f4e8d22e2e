//! One `ae` at a time in a run directory.

use std::fs::{File, OpenOptions, TryLockError};

use ae_store::files;
use anyhow::Context;

use crate::experiment::Experiment;

/// Takes the run directory's lock for as long as the returned file lives,
/// waiting while another `ae` holds it. The operating system releases it
/// when the holder exits, even after `kill -9`.
pub(crate) fn lock_run_dir(exp: &Experiment) -> anyhow::Result<File> {
    let path = exp.run.path(files::LOCK);
    if path.symlink_metadata().is_ok() {
        ae_store::regular_file(&path).context("cannot use the run directory's lock")?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
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
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    Ok(file)
}
