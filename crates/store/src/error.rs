use std::io;
use std::path::PathBuf;

/// A failure to read or write one of the run's files. Every variant names the path.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file or directory could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// What was being read.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// A path where a file was expected holds something else, which is
    /// neither read nor waited on (opening a named pipe would block).
    #[error("{} is not a regular file but a {kind}; put a file there", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// `folder`, `named pipe`, `socket` or `device`.
        kind: &'static str,
    },
    /// A file of the cache does not hold the content its entry records.
    #[error(
        "{} holds other content than the cache recorded (sha256 {found}, not {expected}); it was removed from the cache",
        path.display()
    )]
    CorruptBlob {
        /// The blob.
        path: PathBuf,
        /// The digest recorded.
        expected: String,
        /// The digest of what is there.
        found: String,
    },
    /// A run's file changed after the stage that wrote it recorded its digest.
    #[error(
        "{} changed after it was written (sha256 {found}, not {expected}); something else writes to it",
        path.display()
    )]
    Changed {
        /// The file.
        path: PathBuf,
        /// The digest recorded when it was written.
        expected: String,
        /// The digest of what is there now.
        found: String,
    },
    /// A file is larger than its format allows.
    #[error("{} is {bytes} bytes, more than such a file may be (at most {limit}); it is not one `ae` wrote", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// The most allowed.
        limit: u64,
    },
    /// The file or directory could not be created or written.
    #[error("cannot write {}", path.display())]
    Write {
        /// What was being written.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// A safetensors file could not be encoded or decoded.
    #[error("{} is not a readable safetensors file", path.display())]
    Tensors {
        /// The file.
        path: PathBuf,
        /// What the safetensors decoder or encoder reported.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// A safetensors file decoded, but its tensors are not the ones expected.
    #[error(
        "{} does not hold the expected tensors: {}; rerun the stage that writes it",
        path.display(),
        problems.join("; ")
    )]
    Layout {
        /// The file.
        path: PathBuf,
        /// Each missing, extra, misshaped or mistyped tensor.
        problems: Vec<String>,
    },
    /// A detector file whose metadata is missing keys, altered, or of a
    /// format version this `ae` does not read.
    #[error(
        "{} is not a detector this ae can use: {}; rerun the experiment's eval stage to write a new one",
        path.display(),
        problems.join("; ")
    )]
    Detector {
        /// The file.
        path: PathBuf,
        /// Each missing or altered key.
        problems: Vec<String>,
    },
    /// A text file (CSV, JSON) that does not hold what its writer writes.
    #[error("{} is not valid: {message}; rerun the stage that writes it", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the offending text.
        message: String,
    },
    /// A JSON file (`eval/metrics.json`) that does not hold what its writer writes.
    #[error("{} is not valid: rerun the stage that writes it", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// What the JSON decoder reported.
        #[source]
        source: serde_json::Error,
    },
    /// `manifest.json` was written by a newer `ae`.
    #[error(
        "{} was written by a newer ae (manifest schema {schema}; this ae reads up to {supported}): run that ae here, or another run directory with this one",
        path.display()
    )]
    NewerManifest {
        /// The file.
        path: PathBuf,
        /// Its schema.
        schema: u32,
        /// The newest this `ae` reads.
        supported: u32,
    },
    /// `manifest.json` exists but is not a manifest this version understands.
    #[error("{} is not a valid manifest; delete it to rerun every stage", path.display())]
    Manifest {
        /// The file.
        path: PathBuf,
        /// What the JSON decoder reported.
        #[source]
        source: serde_json::Error,
    },
}
