//! A content-addressed cache of stage outputs, shared by every run that
//! names the same cache folder (`runs/.cache/` unless told otherwise).
//!
//! - `blobs/<ab>/<sha256>`: each distinct file content once, read-only;
//! - `stages/<fingerprint>.json`: what the stage with that fingerprint wrote
//!   (a [`CacheEntry`]);
//! - `locks/<fingerprint>.lock`: held while a process computes or restores
//!   that fingerprint, so two processes never compute the same thing at once.
//!
//! The integrity model: the cache owns its blobs, and a run directory owns
//! its files; no file is both. A file enters the cache as a copy of what
//! the stage recorded: its stamp unchanged since the stage hashed it (or,
//! where it changed or stamps cannot vouch, the copy's sha256 checked
//! against the recorded digest), and leaves it as a copy whose sha256 is
//! checked against the entry; a blob that fails the
//! check is removed and reported, never restored. So an edit to a run's
//! file, or bit rot in a blob, can neither reach another run nor be recorded
//! under a digest it does not have.

use std::fs::{self, File};
use std::io::{self, Seek};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic::parent_dir;
use crate::manifest::stat;
use crate::{FileRecord, RunDir, StoreError, create_dir_all, temp_file_in, write_atomic};

/// The cache folder.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// `stages/<fingerprint>.json`: the outputs of one computed stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheEntry {
    /// The stage's name.
    pub stage: String,
    /// Its fingerprint (see [`crate::StageRecord::fingerprint`]).
    pub fingerprint: String,
    /// Seconds the stage took to compute.
    pub seconds: f64,
    /// Its outputs: paths relative to the run directory, digests and sizes.
    pub outputs: Vec<FileRecord>,
}

impl Cache {
    /// The cache in `root` (created when first written).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The cache folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the lock of `fingerprint`, waiting while another process holds
    /// it; released when the file is dropped (or the process dies).
    pub fn lock(&self, fingerprint: &str) -> Result<File, StoreError> {
        let path = self.root.join("locks").join(format!("{fingerprint}.lock"));
        create_dir_all(parent_dir(&path))?;
        if path.symlink_metadata().is_ok() {
            crate::regular_file(&path)?;
        }
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| StoreError::Write {
                path: path.clone(),
                source,
            })?;
        file.lock()
            .map_err(|source| StoreError::Write { path, source })?;
        Ok(file)
    }

    /// The entry of `fingerprint` when it holds exactly `outputs` (paths
    /// relative to the run directory; an entry from a build of `ae` that
    /// wrote other files does not) and every blob it names is there with its
    /// recorded size; `None` when there is none or it cannot be used. The
    /// blobs' contents are checked when they are restored.
    pub fn get(
        &self,
        fingerprint: &str,
        outputs: &[String],
    ) -> Result<Option<CacheEntry>, StoreError> {
        let path = self.entry_path(fingerprint);
        let text = match crate::read_bounded(&path, crate::limits::CACHE_ENTRY) {
            Ok(text) => text,
            Err(StoreError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let Ok(entry) = serde_json::from_slice::<CacheEntry>(&text) else {
            tracing::warn!("ignoring the unreadable cache entry {}", path.display());
            return Ok(None);
        };
        let mut cached: Vec<&str> = entry.outputs.iter().map(|o| o.path.as_str()).collect();
        let mut wanted: Vec<&str> = outputs.iter().map(String::as_str).collect();
        cached.sort_unstable();
        wanted.sort_unstable();
        if cached != wanted {
            tracing::debug!(
                "the cache entry {} holds other files than this stage writes",
                path.display()
            );
            return Ok(None);
        }
        for output in &entry.outputs {
            let blob = self.blob_path(&output.sha256)?;
            if !stat(&blob).is_ok_and(|stamp| stamp.bytes == output.bytes) {
                tracing::warn!(
                    "the cached {} ({}) is missing or changed; computing it again",
                    output.path,
                    blob.display()
                );
                return Ok(None);
            }
        }
        Ok(Some(entry))
    }

    /// Copies `entry`'s outputs into `run`, each checked against its digest
    /// as it is copied and renamed into place only then; returns their
    /// records there. A blob that fails the check is removed from the cache,
    /// with the entry, and the restore fails with [`StoreError::CorruptBlob`].
    pub fn restore(&self, entry: &CacheEntry, run: &RunDir) -> Result<Vec<FileRecord>, StoreError> {
        entry
            .outputs
            .iter()
            .map(|output| {
                let blob = self.blob_path(&output.sha256)?;
                let target = run.path(&output.path);
                if let Err(err) = copy_verified(&blob, &target, &output.sha256) {
                    if matches!(err, StoreError::CorruptBlob { .. }) {
                        self.forget(&blob, &entry.fingerprint);
                    }
                    return Err(err);
                }
                FileRecord::known(&target, output.path.clone(), output.sha256.clone())
            })
            .collect()
    }

    /// Records that the stage with `fingerprint` wrote `outputs` (their
    /// records as the stage just hashed them) in `run` in `seconds`. Each
    /// output is copied into the cache and checked against its digest on
    /// the way; a blob already there with that digest is kept if its content
    /// still has it, and replaced otherwise.
    pub fn put(
        &self,
        stage: &str,
        fingerprint: &str,
        seconds: f64,
        run: &RunDir,
        outputs: &[FileRecord],
    ) -> Result<(), StoreError> {
        let mut in_cache = Vec::with_capacity(outputs.len());
        for output in outputs {
            let blob = self.blob_path(&output.sha256)?;
            let kept = blob.symlink_metadata().is_ok()
                && crate::sha256_file(&blob).is_ok_and(|digest| digest == output.sha256);
            if !kept {
                if blob.symlink_metadata().is_ok() {
                    tracing::warn!("replacing the damaged cached file {}", blob.display());
                    remove_read_only(&blob)?;
                }
                let file = run.path(&output.path);
                copy_in(&file, &blob, output).map_err(|err| match err {
                    // The run's file no longer has the digest the stage
                    // recorded: it was changed after the stage wrote it.
                    StoreError::CorruptBlob {
                        expected, found, ..
                    } => StoreError::Changed {
                        path: file,
                        expected,
                        found,
                    },
                    other => other,
                })?;
                make_read_only(&blob)?;
            }
            in_cache.push(FileRecord::known(
                &blob,
                output.path.clone(),
                output.sha256.clone(),
            )?);
        }
        let entry = CacheEntry {
            stage: stage.to_string(),
            fingerprint: fingerprint.to_string(),
            seconds,
            outputs: in_cache,
        };
        write_atomic(&self.entry_path(fingerprint), |out| {
            serde_json::to_writer_pretty(&mut *out, &entry).map_err(io::Error::other)?;
            out.write_all(b"\n")
        })
    }

    /// Removes a damaged blob and the entry that named it, so that nothing
    /// restores it again (failures to remove are only logged).
    fn forget(&self, blob: &Path, fingerprint: &str) {
        for path in [blob.to_path_buf(), self.entry_path(fingerprint)] {
            if let Err(e) = remove_read_only(&path) {
                tracing::warn!("cannot remove {}: {e}", path.display());
            }
        }
    }

    fn entry_path(&self, fingerprint: &str) -> PathBuf {
        self.root.join("stages").join(format!("{fingerprint}.json"))
    }

    /// Where the blob of content `sha256` lives; a digest that is not 64 hex
    /// digits (a hand-edited entry) names no file.
    fn blob_path(&self, sha256: &str) -> Result<PathBuf, StoreError> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::Format {
                path: self.root.join("stages"),
                message: format!("a cache entry names the digest {sha256:?}"),
            });
        }
        Ok(self.root.join("blobs").join(&sha256[..2]).join(sha256))
    }
}

/// Copies the run's file `from`, recorded as `record`, into the cache as
/// `to`. When the file's stamp (size, modification time, ctime, inode) is
/// the recorded one before and after the copy, the copy holds the bytes the
/// stage hashed moments ago (every write changes the ctime: the trust the
/// manifest gives a stamp), and hashing them again would cost as much as
/// the first time; otherwise, or where the file system's stamps cannot
/// vouch, the copy is hashed, as [`copy_verified`] does.
fn copy_in(from: &Path, to: &Path, record: &FileRecord) -> Result<(), StoreError> {
    let vouched = |path: &Path| stat(path).is_ok_and(|stamp| record.vouched_by(&stamp));
    let unchanged_before = vouched(from);
    let temp = copy_to_temp(from, to)?;
    if !(unchanged_before && vouched(from)) {
        check_copy(&temp, from, to, &record.sha256)?;
    }
    persist(temp, to)
}

/// Copies `from` to `to` through a temporary file beside `to`, then reads
/// the copy to hash it; `to` appears, complete, only when its sha256 is
/// `expected` ([`StoreError::CorruptBlob`] otherwise, naming `from`).
fn copy_verified(from: &Path, to: &Path, expected: &str) -> Result<(), StoreError> {
    let temp = copy_to_temp(from, to)?;
    check_copy(&temp, from, to, expected)?;
    persist(temp, to)
}

/// A copy of the regular file `from` in a temporary file beside `to` (a
/// copy in the kernel, which file systems that share extents, such as
/// btrfs and XFS, make without using disk).
fn copy_to_temp(from: &Path, to: &Path) -> Result<tempfile::NamedTempFile, StoreError> {
    let write_err = |source| StoreError::Write {
        path: to.to_path_buf(),
        source,
    };
    crate::regular_file(from)?;
    let mut source = File::open(from).map_err(|source| StoreError::Read {
        path: from.to_path_buf(),
        source,
    })?;
    let dir = parent_dir(to);
    create_dir_all(dir)?;
    crate::remove_stale_temps(dir, false);
    let mut temp = temp_file_in(dir).map_err(write_err)?;
    io::copy(&mut source, temp.as_file_mut()).map_err(write_err)?;
    Ok(temp)
}

/// Checks that the copy `temp` of `from` (bound for `to`) has the sha256
/// `expected`.
fn check_copy(
    temp: &tempfile::NamedTempFile,
    from: &Path,
    to: &Path,
    expected: &str,
) -> Result<(), StoreError> {
    let write_err = |source| StoreError::Write {
        path: to.to_path_buf(),
        source,
    };
    let mut copy = temp.as_file();
    copy.seek(io::SeekFrom::Start(0)).map_err(write_err)?;
    let found = crate::hash::sha256_reader(copy).map_err(write_err)?;
    if found == expected {
        Ok(())
    } else {
        Err(StoreError::CorruptBlob {
            path: from.to_path_buf(),
            expected: expected.to_string(),
            found,
        })
    }
}

/// Renames the finished copy `temp` to `to`.
fn persist(temp: tempfile::NamedTempFile, to: &Path) -> Result<(), StoreError> {
    temp.persist(to).map_err(|e| StoreError::Write {
        path: to.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

fn make_read_only(path: &Path) -> Result<(), StoreError> {
    let read = |source| StoreError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut permissions = fs::metadata(path).map_err(read)?.permissions();
    permissions.set_readonly(true);
    fs::set_permissions(path, permissions).map_err(|source| StoreError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Removes a file the cache made read-only (unlinking needs only the
/// folder's permission); a missing file is fine.
fn remove_read_only(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::Write {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage_output(run: &RunDir, name: &str, bytes: &[u8]) -> FileRecord {
        write_atomic(&run.path(name), |w| w.write_all(bytes)).expect("write");
        FileRecord::of(&run.path(name), name).expect("hash")
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .collect();
        names.sort();
        names
    }

    /// Writes over a read-only file, as root or a careless tool can.
    fn edit_in_place(path: &Path, bytes: &[u8]) {
        let mut permissions = fs::metadata(path).expect("stat").permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        permissions.set_readonly(false);
        fs::set_permissions(path, permissions).expect("chmod");
        fs::write(path, bytes).expect("edit");
    }

    #[test]
    fn a_stored_stage_is_restored_into_another_run_as_its_own_copy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(dir.path().join("cache"));
        let first = RunDir::new(dir.path().join("a"));
        let outputs = vec![
            stage_output(&first, "train/model.safetensors", b"weights"),
            stage_output(&first, "train/history.csv", b"epoch\n1\n"),
        ];
        let names = [
            "train/model.safetensors".to_string(),
            "train/history.csv".to_string(),
        ];
        assert_eq!(cache.get("fp", &names).expect("get"), None);
        cache
            .put("train", "fp", 2.5, &first, &outputs)
            .expect("put");

        let entry = cache.get("fp", &names).expect("get").expect("stored");
        assert_eq!((entry.stage.as_str(), entry.seconds), ("train", 2.5));
        // An entry with other files than the stage now writes is not used.
        assert_eq!(cache.get("fp", &names[..1]).expect("get"), None);
        let second = RunDir::new(dir.path().join("b"));
        let restored = cache.restore(&entry, &second).expect("restore");
        let model = second.path("train/model.safetensors");
        assert_eq!(fs::read(&model).expect("read"), b"weights");
        assert_eq!(restored[1].path, "train/history.csv");
        assert_eq!(restored[1].sha256, outputs[1].sha256);
        // The run's file is its own: not the blob, and writable like any output.
        let blob = cache.blob_path(&outputs[0].sha256).expect("blob");
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let inode = |p: &Path| fs::metadata(p).expect("stat").ino();
            assert_ne!(inode(&model), inode(&blob));
        }
        assert!(!fs::metadata(&model).expect("stat").permissions().readonly());
        assert!(fs::metadata(&blob).expect("stat").permissions().readonly());
        // Restoring onto what is already there leaves no temporary file.
        cache.restore(&entry, &second).expect("restore again");
        assert_eq!(names_in(&second.path("train")).len(), 2);
    }

    #[test]
    fn an_edit_to_a_run_file_never_reaches_the_cache_or_another_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(dir.path().join("cache"));
        let run = RunDir::new(dir.path().join("a"));
        let outputs = vec![stage_output(&run, "eval/metrics.json", b"{}")];
        cache.put("eval", "fp", 0.1, &run, &outputs).expect("put");
        edit_in_place(&run.path("eval/metrics.json"), b"{\"x\": 1}");
        let names = ["eval/metrics.json".to_string()];
        let entry = cache.get("fp", &names).expect("get").expect("intact");
        let other = RunDir::new(dir.path().join("b"));
        cache.restore(&entry, &other).expect("restore");
        assert_eq!(
            fs::read(other.path("eval/metrics.json")).expect("read"),
            b"{}"
        );
        // Storing the edited file under the digest recorded before the edit
        // (in a cache that lacks that content) is refused: the stage did not
        // write what is there now.
        let fresh_cache = Cache::new(dir.path().join("other-cache"));
        let err = fresh_cache
            .put("eval", "fp", 0.1, &run, &outputs)
            .expect_err("changed");
        assert!(matches!(err, StoreError::Changed { .. }), "{err}");
    }

    /// An edit of the same size with the modification time set back is
    /// still seen (the ctime moved), so the copy is hashed and refused.
    #[cfg(unix)]
    #[test]
    fn an_edit_that_keeps_size_and_mtime_is_still_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = RunDir::new(dir.path().join("a"));
        let outputs = vec![stage_output(&run, "train/model.safetensors", b"weights")];
        let path = run.path("train/model.safetensors");
        let modified = fs::metadata(&path)
            .expect("stat")
            .modified()
            .expect("mtime");
        std::thread::sleep(std::time::Duration::from_millis(20));
        edit_in_place(&path, b"weighTs");
        File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(modified))
            .expect("set the mtime back");
        let cache = Cache::new(dir.path().join("cache"));
        let err = cache
            .put("train", "fp", 1.0, &run, &outputs)
            .expect_err("changed");
        assert!(matches!(err, StoreError::Changed { .. }), "{err}");
        // Unchanged, the same file enters without being hashed again, and
        // leaves as the bytes the stage wrote.
        edit_in_place(&path, b"weights");
        let outputs = vec![FileRecord::of(&path, "train/model.safetensors").expect("record")];
        cache.put("train", "fp", 1.0, &run, &outputs).expect("put");
        let names = ["train/model.safetensors".to_string()];
        let entry = cache.get("fp", &names).expect("get").expect("intact");
        let other = RunDir::new(dir.path().join("b"));
        cache.restore(&entry, &other).expect("restore");
        assert_eq!(
            fs::read(other.path("train/model.safetensors")).expect("read"),
            b"weights"
        );
    }

    #[test]
    fn a_damaged_blob_is_removed_never_restored_and_repaired_by_the_next_put() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(dir.path().join("cache"));
        let run = RunDir::new(dir.path().join("a"));
        let outputs = vec![stage_output(&run, "train/model.safetensors", b"weights")];
        cache.put("train", "fp", 1.0, &run, &outputs).expect("put");
        // Bit rot that keeps the size: only the digest can tell.
        let blob = cache.blob_path(&outputs[0].sha256).expect("blob");
        edit_in_place(&blob, b"weighTs");
        let names = ["train/model.safetensors".to_string()];
        let entry = cache.get("fp", &names).expect("get").expect("same size");
        let other = RunDir::new(dir.path().join("b"));
        let err = cache.restore(&entry, &other).expect_err("corrupt");
        assert!(matches!(err, StoreError::CorruptBlob { .. }), "{err}");
        assert!(
            !other.path("train/model.safetensors").exists(),
            "nothing restored"
        );
        assert!(
            names_in(&other.path("train")).is_empty(),
            "no temporary file"
        );
        assert!(!blob.exists(), "the damaged blob is gone");
        assert_eq!(cache.get("fp", &names).expect("get"), None, "and its entry");
        cache
            .put("train", "fp", 1.0, &run, &outputs)
            .expect("put again");
        let entry = cache.get("fp", &names).expect("get").expect("repaired");
        cache.restore(&entry, &other).expect("restore");
        assert_eq!(
            fs::read(other.path("train/model.safetensors")).expect("read"),
            b"weights"
        );
    }

    #[test]
    fn a_put_over_a_damaged_blob_replaces_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(dir.path().join("cache"));
        let run = RunDir::new(dir.path().join("a"));
        let outputs = vec![stage_output(&run, "x", b"good")];
        cache.put("s", "fp", 0.0, &run, &outputs).expect("put");
        let blob = cache.blob_path(&outputs[0].sha256).expect("blob");
        edit_in_place(&blob, b"gooD");
        cache
            .put("s", "fp", 0.0, &run, &outputs)
            .expect("put again");
        assert_eq!(fs::read(&blob).expect("read"), b"good");
        assert!(fs::metadata(blob).expect("stat").permissions().readonly());
    }

    #[test]
    fn a_hand_edited_digest_names_no_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(dir.path().join("cache"));
        for bad in ["", "../../etc/passwd", &"g".repeat(64)] {
            assert!(cache.blob_path(bad).is_err(), "{bad}");
        }
    }
}
