use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

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
    /// Modification time in nanoseconds since the Unix epoch when hashed; a
    /// file with the same size and time is not hashed again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_ns: Option<u64>,
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
    pub const SCHEMA: u32 = 2;

    /// Reads `path`; a missing file, or one of another schema, is an empty
    /// manifest (every stage then counts as never run).
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        let text = match fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(StoreError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
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
        if version.schema != Self::SCHEMA {
            return Ok(Self::default());
        }
        serde_json::from_slice(&text).map_err(invalid)
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
    pub fn of(path: &Path, shown_as: impl Into<String>) -> Result<Self, StoreError> {
        let (bytes, modified_ns) = stat(path)?;
        Ok(Self {
            name: None,
            path: shown_as.into(),
            bytes,
            sha256: crate::sha256_file(path)?,
            modified_ns,
        })
    }

    /// The record of `path` now: `self` again when the file still has the
    /// recorded size and modification time (not re-read), a fresh hash
    /// otherwise; `None` when the file is missing.
    pub fn refresh(&self, path: &Path) -> Result<Option<Self>, StoreError> {
        if !path.exists() {
            return Ok(None);
        }
        let (bytes, modified_ns) = stat(path)?;
        if bytes == self.bytes && modified_ns.is_some() && modified_ns == self.modified_ns {
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

/// Size and modification time (ns since the epoch, when the platform has
/// it) of the regular file at `path`.
pub(crate) fn stat(path: &Path) -> Result<(u64, Option<u64>), StoreError> {
    let meta = crate::regular_file(path)?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_nanos()).ok());
    Ok((meta.len(), modified))
}

#[cfg(test)]
mod tests {
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
                    name: None,
                    path: "data/train.safetensors".into(),
                    bytes: 3,
                    sha256: "ab".into(),
                    modified_ns: Some(7),
                }],
                error: None,
                restored: false,
            },
        );
        manifest.save(&path).expect("save");
        assert_eq!(Manifest::load(&path).expect("load"), manifest);
    }

    #[test]
    fn a_manifest_of_another_schema_counts_as_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("manifest.json");
        fs::write(&path, r#"{"schema": 1, "stages": {"data": {}}}"#).expect("write");
        assert_eq!(
            Manifest::load(&path).expect("old schema"),
            Manifest::default()
        );
    }

    #[test]
    fn refresh_reuses_the_hash_until_the_file_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        fs::write(&path, b"one").expect("write");
        let record = FileRecord::of(&path, "f").expect("hash");
        // A forged digest is kept while size and time match: no re-read.
        let forged = FileRecord {
            sha256: "forged".into(),
            ..record.clone()
        };
        assert_eq!(forged.refresh(&path).expect("stat"), Some(forged.clone()));
        // Different content (and size) is hashed again.
        fs::write(&path, b"three").expect("write");
        let fresh = forged.refresh(&path).expect("stat").expect("exists");
        assert_eq!(fresh.sha256, crate::sha256_hex(b"three"));
        fs::remove_file(&path).expect("remove");
        assert_eq!(record.refresh(&path).expect("stat"), None);
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
