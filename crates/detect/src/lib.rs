//! A trained detector used on new images: what `ae score` does.
//!
//! Reads a one-file detector (`eval/detector.safetensors`, see
//! [`ae_store::DetectorInfo`]: the model's weights and, in its metadata,
//! the score and the threshold) and any inputs the data crate reads
//! ([`ae_data::scan`]: image files and folders, `.npy`/`.npz`, IDX,
//! CSV/Parquet), a batch at a time; scores each image as the eval stage
//! does (the same reconstruction and score functions, so the run's own test
//! split scores exactly as in `eval/scores.parquet`) and flags it above the
//! threshold. Writes the rows to an [`Output`]: a Parquet or CSV file
//! (atomically), CSV on a pipe, or a table on a terminal.
//!
//! With `--explain`, [`Explainer`] draws an error map (original,
//! reconstruction, squared error) for each flagged image.
//!
//! [`export_onnx`] writes the detector as a standard ONNX model, threshold
//! included.
//!
//! Memory stays near a few batches whatever the inputs' size, plus each
//! row's score kept for a Parquet file: images are read on one thread
//! while the other cores reconstruct the batch before.

mod detector;
mod explain;
mod export;
mod guard;
mod output;
mod score;

use std::path::PathBuf;

pub use detector::{Detector, Scorer, locate};
pub use explain::{ERROR_MAPS, ExplainOptions, Explainer};
pub use export::{IR_VERSION, OPSET, export_onnx, onnx_model};
pub use guard::{Planned, check_outputs};
pub use output::{Output, Table};
pub use score::{Progress, ScoreOptions, Scored, Tally, score_inputs};

/// Why scoring failed.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// There is no detector where one was looked for.
    #[error(
        "{} holds no detector ({} is missing); run the experiment's pipeline (ae pipeline CONFIG) to write it",
        dir.display(),
        path.display()
    )]
    NoDetector {
        /// The run directory given.
        dir: PathBuf,
        /// The file looked for.
        path: PathBuf,
    },
    /// The detector's weights hold NaN or infinite values.
    #[error(
        "{} holds weights that are not finite numbers (NaN or infinite): it cannot score; rerun the experiment's train and eval stages",
        .0.display()
    )]
    NonFinite(PathBuf),
    /// An output would overwrite one of the inputs or the detector.
    #[error("{what} {} is also {role}; write it elsewhere, so that nothing you have is lost", path.display())]
    Overwrite {
        /// `--out`, `--explain` or `--onnx`.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// What else it is: `an input`, `the detector`, ...
        role: String,
    },
    /// The detector file is not one this `ae` reads.
    #[error(transparent)]
    Store(#[from] ae_store::StoreError),
    /// The detector's weights could not be read.
    #[error(transparent)]
    Model(#[from] ae_model::ModelError),
    /// An input could not be read.
    #[error(transparent)]
    Data(#[from] ae_data::DataError),
    /// An image could not be decoded, and `--strict` was given.
    #[error("{0} (--strict: stopping at the first image that cannot be read)")]
    Strict(ae_data::scan::Unreadable),
    /// An error map could not be drawn or written.
    #[error(transparent)]
    Report(#[from] ae_report::ReportError),
    /// The scores could not be written as Parquet.
    #[error(transparent)]
    Table(#[from] ae_tables::TableError),
    /// The scores could not be written to standard output.
    #[error("cannot write the scores to standard output")]
    Stdout(#[source] std::io::Error),
    /// The ONNX model could not be encoded.
    #[error("cannot encode the ONNX model: {0}")]
    Onnx(String),
    /// `--threshold` is not a finite number.
    #[error("--threshold {0} is not a finite number")]
    Threshold(f64),
}
