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
}

/// Whether a stage finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    /// It wrote all its outputs.
    Ok,
    /// It stopped with an error; its outputs, if any, are not to be trusted.
    Failed,
}

/// One file a stage read or wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRecord {
    /// Relative to the run directory for outputs; as located for inputs.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// sha256 of the bytes on disk, lowercase hex.
    pub sha256: String,
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
    pub const SCHEMA: u32 = 1;

    /// Reads `path`; a missing file is an empty manifest.
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
        serde_json::from_slice(&text).map_err(|source| StoreError::Manifest {
            path: path.to_path_buf(),
            source,
        })
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
        let bytes = fs::metadata(path)
            .map_err(|source| StoreError::Read {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        Ok(Self {
            path: shown_as.into(),
            bytes,
            sha256: crate::sha256_file(path)?,
        })
    }
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
                started_at: "2026-11-27T06:00:00Z".into(),
                seconds: 1.5,
                inputs: vec![],
                outputs: vec![FileRecord {
                    path: "data/train.safetensors".into(),
                    bytes: 3,
                    sha256: "ab".into(),
                }],
                error: None,
            },
        );
        manifest.save(&path).expect("save");
        assert_eq!(Manifest::load(&path).expect("load"), manifest);
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
