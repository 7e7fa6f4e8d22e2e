use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::{StoreError, write_atomic};

/// `manifest.json`: for each stage that has run in this directory, what it
/// read and wrote and how it went. Rewritten atomically after every stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The manifest format version, [`Manifest::SCHEMA`].
    pub schema: u32,
    /// One record per stage name (`data`, `train`, ...), the latest run of each.
    pub stages: BTreeMap<String, StageRecord>,
}

/// How the latest run of one stage went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageRecord {
    /// Whether it finished.
    pub status: StageStatus,
    /// sha256 of the stage name, its config section, its inputs' digests and
    /// the pipeline version: equal fingerprints mean equal outputs.
    pub fingerprint: String,
    /// The config section it ran with (canonical JSON), to say what changed.
    pub config: serde_json::Value,
    /// The pipeline version that ran it.
    pub version: String,
    /// When it started, RFC 3339 in UTC.
    pub started_at: String,
    /// Wall-clock seconds it took.
    pub seconds: f64,
    /// The files it read, with their digests.
    pub inputs: Vec<FileRecord>,
    /// The files it wrote, with their digests; empty when it failed.
    pub outputs: Vec<FileRecord>,
    /// The error chain, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether the outputs were restored from the cache rather than computed here.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restored: bool,
}

/// Whether a stage finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    /// It wrote all its outputs.
    Ok,
    /// It stopped with an error; its outputs, if any, are not to be trusted.
    Failed,
    /// It started and has not finished: running now, or killed. Its outputs
    /// are not to be trusted.
    Running,
}

/// One file a stage read or wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRecord {
    /// What the stage knows an input from outside the run directory by
    /// (its role, see [`crate::Input::name`]); `None` for a run file, which
    /// is known by its path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Relative to the run directory for run files; as located for others.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// sha256 of the bytes on disk, lowercase hex.
    pub sha256: String,
    /// Modification time in nanoseconds since the Unix epoch when hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_ns: Option<u64>,
    /// Status-change time (ctime) in nanoseconds when hashed: every write
    /// to the file changes it, and no tool can set it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_ns: Option<u64>,
    /// The file's inode number when hashed: a replaced file has another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
}

/// What the file system says of a file without reading it: a file whose
/// stamp is the one recorded with its digest has not been written since
/// (an edit that keeps size and modification time still changes its ctime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) bytes: u64,
    pub(crate) modified_ns: Option<u64>,
    pub(crate) changed_ns: Option<u64>,
    pub(crate) inode: Option<u64>,
}

impl Stamp {
    /// Whether the stamp says enough to vouch for a recorded digest: a
    /// modification time, and on Unix a ctime and an inode.
    fn vouches(&self) -> bool {
        self.modified_ns.is_some()
            && (!cfg!(unix) || (self.changed_ns.is_some() && self.inode.is_some()))
    }
}

impl Default for Manifest {
    fn default() -> Self {
        Self {
            schema: Self::SCHEMA,
            stages: BTreeMap::new(),
        }
    }
}

impl Manifest {
    /// The format version this code writes and reads.
    pub const SCHEMA: u32 = 3;

    /// Reads `path`; a missing file is an empty manifest (every stage then
    /// counts as never run). A schema-2 manifest (`ae` 0.2) is read as it
    /// is: its records lack only the ctime and inode that this version adds.
    /// One of schema 1 is empty, with a warning; a newer one is an error
    /// (this `ae` would not understand, and must not overwrite, it).
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        let text = match crate::read_bounded(path, crate::limits::MANIFEST) {
            Ok(text) => text,
            Err(StoreError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(Self::default());
            }
            Err(e) => return Err(e),
        };
        #[derive(Deserialize)]
        struct SchemaOnly {
            schema: u32,
        }
        let invalid = |source| StoreError::Manifest {
            path: path.to_path_buf(),
            source,
        };
        let version: SchemaOnly = serde_json::from_slice(&text).map_err(invalid)?;
        match version.schema {
            2 | Self::SCHEMA => {
                let mut manifest: Self = serde_json::from_slice(&text).map_err(invalid)?;
                manifest.schema = Self::SCHEMA;
                Ok(manifest)
            }
            newer if newer > Self::SCHEMA => Err(StoreError::NewerManifest {
                path: path.to_path_buf(),
                schema: newer,
                supported: Self::SCHEMA,
            }),
            older => {
                tracing::warn!(
                    "{} is from an older ae (manifest schema {older}); every stage will run again",
                    path.display()
                );
                Ok(Self::default())
            }
        }
    }

    /// Writes the manifest to `path` atomically, pretty-printed.
    pub fn save(&self, path: &Path) -> Result<(), StoreError> {
        write_atomic(path, |out| {
            serde_json::to_writer_pretty(&mut *out, self).map_err(io::Error::other)?;
            out.write_all(b"\n")
        })
    }
}

impl FileRecord {
    /// Hashes the file at `path` and records it under the name `shown_as`.
    ///
    /// A file this process just wrote ([`crate::write_atomic`]) was hashed
    /// as it was written: while it still has the stamp it had then, that
    /// digest is used instead of reading it again.
    pub fn of(path: &Path, shown_as: impl Into<String>) -> Result<Self, StoreError> {
        let stamp = stat(path)?;
        let sha256 = match recalled_digest(path, &stamp) {
            Some(digest) => digest,
            None => crate::sha256_file(path)?,
        };
        Ok(Self::stamped(shown_as.into(), sha256, stamp))
    }

    /// A record of `path` whose content has the digest `sha256` (known from
    /// reading it), stamped as the file is now.
    pub fn known(
        path: &Path,
        shown_as: impl Into<String>,
        sha256: String,
    ) -> Result<Self, StoreError> {
        Ok(Self::stamped(shown_as.into(), sha256, stat(path)?))
    }

    /// The record of a file that is not there (or not a regular file), with
    /// `digest` standing for its content.
    pub fn absent(shown_as: impl Into<String>, digest: &str) -> Self {
        Self {
            name: None,
            path: shown_as.into(),
            bytes: 0,
            sha256: digest.to_string(),
            modified_ns: None,
            changed_ns: None,
            inode: None,
        }
    }

    fn stamped(path: String, sha256: String, stamp: Stamp) -> Self {
        Self {
            name: None,
            path,
            bytes: stamp.bytes,
            sha256,
            modified_ns: stamp.modified_ns,
            changed_ns: stamp.changed_ns,
            inode: stamp.inode,
        }
    }

    fn stamp(&self) -> Stamp {
        Stamp {
            bytes: self.bytes,
            modified_ns: self.modified_ns,
            changed_ns: self.changed_ns,
            inode: self.inode,
        }
    }

    /// Whether a file with `stamp` is the file this records, unchanged:
    /// the same size, modification time, ctime and inode, on a file system
    /// that keeps them all.
    pub(crate) fn vouched_by(&self, stamp: &Stamp) -> bool {
        *stamp == self.stamp() && stamp.vouches()
    }

    /// The record of `path` now: `self` again when the file still has the
    /// recorded size, modification time, ctime and inode (not re-read), a
    /// fresh hash otherwise, or always with `verify`; `None` when the file is
    /// missing.
    pub fn refresh(&self, path: &Path, verify: bool) -> Result<Option<Self>, StoreError> {
        if path.symlink_metadata().is_err() {
            return Ok(None);
        }
        let stamp = stat(path)?;
        if !verify && self.vouched_by(&stamp) {
            return Ok(Some(self.clone()));
        }
        Ok(Some(Self {
            name: self.name.clone(),
            ..Self::of(path, self.path.clone())?
        }))
    }

    /// What the stage knows the file by: its role, or else its path.
    pub fn key(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.path)
    }
}

/// The digests of the files this process wrote, with their stamps then.
static WRITTEN: Mutex<BTreeMap<PathBuf, (Stamp, String)>> = Mutex::new(BTreeMap::new());

/// At most this many digests are remembered; past it the oldest are forgotten
/// (and those files hashed again if asked for).
const REMEMBERED: usize = 4096;

/// Remembers that the file just written at `path` has `digest`, with the
/// stamp it has now; nothing when its stamp cannot vouch for it.
pub(crate) fn remember_digest(path: &Path, digest: String) {
    let Ok(stamp) = stat(path) else {
        return;
    };
    if !stamp.vouches() {
        return;
    }
    let mut written = WRITTEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if written.len() >= REMEMBERED {
        written.clear();
    }
    written.insert(path.to_path_buf(), (stamp, digest));
}

/// The digest remembered for `path`, if the file still has the stamp it
/// had when it was written.
fn recalled_digest(path: &Path, stamp: &Stamp) -> Option<String> {
    let written = WRITTEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (then, digest) = written.get(path)?;
    (then == stamp && stamp.vouches()).then(|| digest.clone())
}

/// The stamp of the regular file at `path` (times in ns since the epoch,
/// where the platform has them).
pub(crate) fn stat(path: &Path) -> Result<Stamp, StoreError> {
    let meta = crate::regular_file(path)?;
    let modified_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_nanos()).ok());
    #[cfg(unix)]
    let (changed_ns, inode) = {
        use std::os::unix::fs::MetadataExt;
        let changed = u64::try_from(meta.ctime())
            .ok()
            .and_then(|s| s.checked_mul(1_000_000_000))
            .and_then(|ns| ns.checked_add(u64::try_from(meta.ctime_nsec()).ok()?));
        (changed, Some(meta.ino()))
    };
    #[cfg(not(unix))]
    let (changed_ns, inode) = (None, None);
    Ok(Stamp {
        bytes: meta.len(),
        modified_ns,
        changed_ns,
        inode,
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn round_trips_and_missing_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("manifest.json");
        assert_eq!(
            Manifest::load(&path).expect("missing is fine"),
            Manifest::default()
        );

        let mut manifest = Manifest::default();
        manifest.stages.insert(
            "data".into(),
            StageRecord {
                status: StageStatus::Ok,
                fingerprint: "f".into(),
                config: serde_json::json!({"epochs": 5}),
                version: "v".into(),
                started_at: "2026-11-27T06:00:00Z".into(),
                seconds: 1.5,
                inputs: vec![],
                outputs: vec![FileRecord {
                    modified_ns: Some(7),
                    changed_ns: Some(8),
                    inode: Some(9),
                    ..FileRecord::absent("data/train.safetensors", "ab")
                }],
                error: None,
                restored: false,
            },
        );
        manifest.save(&path).expect("save");
        assert_eq!(Manifest::load(&path).expect("load"), manifest);
    }

    #[test]
    fn older_manifests_are_read_or_explained_and_newer_ones_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("manifest.json");
        // ae 0.1: every stage will run again.
        fs::write(&path, r#"{"schema": 1, "stages": {"data": {}}}"#).expect("write");
        assert_eq!(
            Manifest::load(&path).expect("old schema"),
            Manifest::default()
        );
        // ae 0.2: read as it is; its records lack ctime and inode.
        let v2 = r#"{"schema": 2, "stages": {"data": {"status": "ok", "fingerprint": "f",
            "config": {}, "version": "ae 0.2.0", "started_at": "t", "seconds": 1.0,
            "inputs": [], "outputs": [{"path": "data/train.safetensors", "bytes": 3,
            "sha256": "ab", "modified_ns": 7}]}}}"#;
        fs::write(&path, v2).expect("write");
        let manifest = Manifest::load(&path).expect("schema 2");
        assert_eq!(manifest.schema, Manifest::SCHEMA);
        let record = &manifest.stages["data"];
        assert_eq!(
            (record.version.as_str(), record.outputs[0].changed_ns),
            ("ae 0.2.0", None)
        );
        // A newer ae's: refused, not overwritten.
        fs::write(&path, r#"{"schema": 99, "stages": {}}"#).expect("write");
        let err = Manifest::load(&path).expect_err("newer").to_string();
        assert!(
            err.contains("written by a newer ae (manifest schema 99"),
            "{err}"
        );
    }

    #[test]
    fn refresh_reuses_the_hash_until_the_file_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        fs::write(&path, b"one").expect("write");
        let record = FileRecord::of(&path, "f").expect("hash");
        // A forged digest is kept while the stamp matches: no re-read.
        let forged = FileRecord {
            sha256: "forged".into(),
            ..record.clone()
        };
        assert_eq!(
            forged.refresh(&path, false).expect("stat"),
            Some(forged.clone())
        );
        // --verify reads it.
        let verified = forged.refresh(&path, true).expect("stat").expect("exists");
        assert_eq!(verified.sha256, record.sha256);
        // Different content (and size) is hashed again.
        fs::write(&path, b"three").expect("write");
        let fresh = forged.refresh(&path, false).expect("stat").expect("exists");
        assert_eq!(fresh.sha256, crate::sha256_hex(b"three"));
        fs::remove_file(&path).expect("remove");
        assert_eq!(record.refresh(&path, false).expect("stat"), None);
    }

    /// Regression: an edit in place that keeps size and modification time
    /// (`rsync --inplace -t`, an editor, bit-flipping by hand) was trusted.
    #[cfg(unix)]
    #[test]
    fn an_edit_that_keeps_size_and_time_is_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.safetensors");
        fs::write(&path, b"weights").expect("write");
        let record = FileRecord::of(&path, "model").expect("hash");
        let mtime = fs::metadata(&path)
            .expect("stat")
            .modified()
            .expect("mtime");
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&path, b"weighTs").expect("edit");
        let file = fs::File::options().write(true).open(&path).expect("open");
        file.set_modified(mtime).expect("set the old time back");
        drop(file);
        let now = record.refresh(&path, false).expect("stat").expect("exists");
        assert_eq!(now.modified_ns, record.modified_ns, "the same mtime");
        assert_eq!(
            now.sha256,
            crate::sha256_hex(b"weighTs"),
            "and still re-read"
        );
    }

    #[test]
    fn a_corrupt_manifest_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("manifest.json");
        fs::write(&path, "{ not json").expect("write");
        let err = Manifest::load(&path).expect_err("corrupt");
        assert!(err.to_string().contains("manifest.json"), "{err}");
    }
}
