//! A content-addressed cache of stage outputs, shared by every run that
//! names the same cache folder (`runs/.cache/` unless told otherwise).
//!
//! - `blobs/<ab>/<sha256>`: each distinct file content once, read-only;
//! - `stages/<fingerprint>.json`: what the stage with that fingerprint wrote
//!   (a [`CacheEntry`]);
//! - `locks/<fingerprint>.lock`: held while a process computes or restores
//!   that fingerprint, so two processes never compute the same thing at once.
//!
//! Files enter and leave the cache as hard links (copies where the file
//! system refuses links), so a cached data split costs no extra disk. A
//! blob is trusted while its size and modification time are those recorded,
//! like every other digest in `ae`; stages replace files and never modify
//! them in place, and blobs are made read-only to keep it so.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::atomic::parent_dir;
use crate::manifest::stat;
use crate::{FileRecord, RunDir, StoreError, create_dir_all, write_atomic};

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
    /// Its outputs: paths relative to the run directory, digests, and the
    /// size and modification time of the blob holding each.
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
    /// wrote other files does not) and every blob it names is intact;
    /// `None` when there is none or it cannot be trusted.
    pub fn get(
        &self,
        fingerprint: &str,
        outputs: &[String],
    ) -> Result<Option<CacheEntry>, StoreError> {
        let path = self.entry_path(fingerprint);
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Read { path, source }),
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
            let blob = self.blob_path(&output.sha256);
            let intact = stat(&blob).is_ok_and(|(bytes, modified)| {
                bytes == output.bytes && modified == output.modified_ns
            });
            if !intact {
                tracing::warn!(
                    "the cached {} ({}) was changed or removed; computing it again",
                    output.path,
                    blob.display()
                );
                return Ok(None);
            }
        }
        Ok(Some(entry))
    }

    /// Puts `entry`'s outputs in place in `run` (each atomically) and
    /// returns their records as they now are there.
    pub fn restore(&self, entry: &CacheEntry, run: &RunDir) -> Result<Vec<FileRecord>, StoreError> {
        entry
            .outputs
            .iter()
            .map(|output| {
                let target = run.path(&output.path);
                place(&self.blob_path(&output.sha256), &target)?;
                let (bytes, modified_ns) = stat(&target)?;
                Ok(FileRecord {
                    name: None,
                    path: output.path.clone(),
                    bytes,
                    sha256: output.sha256.clone(),
                    modified_ns,
                })
            })
            .collect()
    }

    /// Records that the stage with `fingerprint` wrote `outputs` in `run`
    /// in `seconds`. Each output becomes a blob (or, when its content is
    /// already one, is replaced by a link to it); returns the outputs'
    /// records as they now are in `run`.
    pub fn put(
        &self,
        stage: &str,
        fingerprint: &str,
        seconds: f64,
        run: &RunDir,
        outputs: &[FileRecord],
    ) -> Result<Vec<FileRecord>, StoreError> {
        let mut in_run = Vec::with_capacity(outputs.len());
        let mut in_cache = Vec::with_capacity(outputs.len());
        for output in outputs {
            let file = run.path(&output.path);
            let blob = self.blob_path(&output.sha256);
            let blob_is_good = blob.exists()
                && FileRecord::of(&blob, "")
                    .is_ok_and(|b| b.bytes == output.bytes && b.sha256 == output.sha256);
            if blob_is_good {
                place(&blob, &file)?;
            } else {
                place(&file, &blob)?;
                make_read_only(&blob)?;
            }
            let (bytes, modified_ns) = stat(&blob)?;
            in_cache.push(FileRecord {
                bytes,
                modified_ns,
                ..output.clone()
            });
            let (bytes, modified_ns) = stat(&file)?;
            in_run.push(FileRecord {
                bytes,
                modified_ns,
                ..output.clone()
            });
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
        })?;
        Ok(in_run)
    }

    fn entry_path(&self, fingerprint: &str) -> PathBuf {
        self.root.join("stages").join(format!("{fingerprint}.json"))
    }

    fn blob_path(&self, sha256: &str) -> PathBuf {
        let shard = sha256.get(..2).unwrap_or("00");
        self.root.join("blobs").join(shard).join(sha256)
    }
}

/// Makes `to` the same file as `from`: a hard link, or a copy where the
/// file system cannot link, renamed into place so `to` is never partial.
fn place(from: &Path, to: &Path) -> Result<(), StoreError> {
    let dir = parent_dir(to);
    create_dir_all(dir)?;
    let temp = unused_name(dir);
    let write_err = |source| StoreError::Write {
        path: to.to_path_buf(),
        source,
    };
    if fs::hard_link(from, &temp).is_err()
        && let Err(e) = fs::copy(from, &temp)
    {
        let _ = fs::remove_file(&temp);
        return Err(write_err(e));
    }
    let renamed = fs::rename(&temp, to);
    // Renaming a link onto another link of the same file does nothing and
    // leaves the temporary name behind.
    let _ = fs::remove_file(&temp);
    renamed.map_err(write_err)
}

/// A name in `dir` that no file has, for a link about to be renamed.
fn unused_name(dir: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let candidate = dir.join(format!(".ae-tmp-link-{}-{n}", std::process::id()));
        if !candidate.exists() {
            return candidate;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stage_output(run: &RunDir, name: &str, bytes: &[u8]) -> FileRecord {
        write_atomic(&run.path(name), |w| w.write_all(bytes)).expect("write");
        FileRecord::of(&run.path(name), name).expect("hash")
    }

    #[test]
    fn a_stored_stage_is_restored_into_another_run() {
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
        let recorded = cache
            .put("train", "fp", 2.5, &first, &outputs)
            .expect("put");
        assert_eq!(recorded.len(), 2);
        assert_eq!(recorded[0].sha256, outputs[0].sha256);

        let entry = cache.get("fp", &names).expect("get").expect("stored");
        assert_eq!((entry.stage.as_str(), entry.seconds), ("train", 2.5));
        // An entry with other files than the stage now writes is not used.
        assert_eq!(cache.get("fp", &names[..1]).expect("get"), None);
        let second = RunDir::new(dir.path().join("b"));
        let restored = cache.restore(&entry, &second).expect("restore");
        assert_eq!(
            fs::read(second.path("train/model.safetensors")).expect("read"),
            b"weights"
        );
        assert_eq!(restored[1].path, "train/history.csv");
        assert_eq!(restored[1].sha256, outputs[1].sha256);
        // Restoring onto what is already there leaves no temporary file.
        cache.restore(&entry, &second).expect("restore again");
        let names: Vec<_> = fs::read_dir(second.path("train"))
            .expect("list")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn a_blob_changed_in_place_is_not_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(dir.path().join("cache"));
        let run = RunDir::new(dir.path().join("a"));
        let outputs = vec![stage_output(&run, "eval/metrics.json", b"{}")];
        cache.put("eval", "fp", 0.1, &run, &outputs).expect("put");
        let names = ["eval/metrics.json".to_string()];
        assert!(cache.get("fp", &names).expect("get").is_some());
        // Someone with the rights to do so edits the run's file in place,
        // which is the blob too.
        let path = run.path("eval/metrics.json");
        let mut permissions = fs::metadata(&path).expect("stat").permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        permissions.set_readonly(false);
        fs::set_permissions(&path, permissions).expect("chmod");
        fs::write(&path, b"{\"x\": 1}").expect("edit");
        assert_eq!(cache.get("fp", &names).expect("get"), None);
        // Storing the good content again repairs the blob.
        let good = stage_output(&run, "eval/metrics.json", b"{}");
        cache.put("eval", "fp", 0.1, &run, &[good]).expect("put");
        let entry = cache.get("fp", &names).expect("get").expect("repaired");
        let other = RunDir::new(dir.path().join("b"));
        cache.restore(&entry, &other).expect("restore");
        assert_eq!(
            fs::read(other.path("eval/metrics.json")).expect("read"),
            b"{}"
        );
    }

    #[test]
    fn blobs_are_read_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(dir.path().join("cache"));
        let run = RunDir::new(dir.path().join("a"));
        let outputs = vec![stage_output(&run, "x", b"x")];
        cache.put("s", "fp", 0.0, &run, &outputs).expect("put");
        let blob = cache.blob_path(&outputs[0].sha256);
        assert!(fs::metadata(blob).expect("stat").permissions().readonly());
    }
}
