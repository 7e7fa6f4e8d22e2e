//! Where the stages of `ae` meet: the stage contract, the run directory's
//! layout, and one reader and one writer for each file a stage writes and
//! another reads. Stage crates never depend on each other, only on this.
//!
//! Stage crates never spell an artifact's file name or a tensor name
//! themselves; they take the name from [`files`] and the format from the
//! reader and writer here. Everything they write goes through
//! [`write_atomic`], so a reader never sees a half-written file: data lands
//! in a temporary file in the same directory and is renamed into place only
//! when complete.
//!
//! - [`PipelineStage`]: what every stage crate implements (inputs, outputs,
//!   params, run), with [`Input`] and [`Env`].
//! - [`RunDir`] and [`files`]: the layout of `runs/<name>/`.
//! - [`Manifest`]: `manifest.json`, what each stage read and wrote, with sha256
//!   digests, start time, duration and status.
//! - [`Cache`]: stage outputs shared between runs by fingerprint, as hard links.
//! - [`sha256_file`], [`sha256_hex`]: content digests as lowercase hex.
//! - [`write_tensors`], [`TensorFile`]: safetensors files streamed to and from
//!   disk, with exact checks of names, dtypes and shapes on reading.
//! - [`Split`], [`write_split`], [`read_split`]: the `images` `[N, 784]` (u8
//!   pixels or f32 values) and `labels` u8 `[N]` files that the data stage
//!   writes; [`write_images`] and
//!   [`write_codes`] for infer's reconstructions and codes.
//! - [`History`]: `train/history.csv`; [`Metrics`]: `eval/metrics.json`;
//!   [`RocCurve`]: `eval/roc.csv`. (`eval/scores.parquet` is `ae-tables`'s,
//!   the one table that needs polars.)
//! - [`Problem`]: one invalid config value, as every stage's validation reports it.
//!
//! Every I/O error is a [`StoreError`] that names the path it concerns.

mod atomic;
mod cache;
mod csv;
mod detector;
mod error;
mod hash;
mod history;
mod layout;
mod manifest;
mod metrics;
mod number;
mod pixels;
mod problem;
mod read;
mod rng;
mod roc;
mod split;
mod stage;
mod tensors;

pub use atomic::{create_dir_all, remove_stale_temps, temp_file_in, write_atomic};
pub use cache::{Cache, CacheEntry};
pub use detector::{DETECTOR_FORMAT, DETECTOR_INPUT, DETECTOR_VERSION, DetectorInfo};
pub use error::StoreError;
pub use hash::{BackgroundSha256, sha256_file, sha256_hex};
pub use history::{EpochRecord, FitSummary, History};
pub use layout::{RunDir, files};
pub use manifest::{FileRecord, Manifest, StageRecord, StageStatus};
pub use metrics::{
    Confusion, Detection, LabelCounts, Metrics, Score, Summary, TOP_INDICES, ThresholdRule,
    ThresholdSource,
};
pub use number::readable;
pub use pixels::{CompactBuilder, IMAGE_PIXELS, IMAGE_SIDE, Pixels, PixelsRef, byte_value};
pub use problem::Problem;
pub use read::{limits, read_bounded, read_bounded_text, regular_file};
pub use rng::{RngStream, seeded_rng};
pub use roc::{OperatingPoint, RocCurve};
pub use split::{
    CompactSplit, ImageChunks, Split, SplitLabels, label_name, read_codes, read_images, read_split,
    read_split_compact, read_split_pixels, split_images_tensor, write_codes, write_images,
    write_images_streamed, write_split,
};
pub use stage::{Env, Input, PipelineStage, StageOutcome};
pub use tensors::{
    Dtype, TensorFile, TensorOut, write_f32_le, write_tensors, write_tensors_with_metadata,
};
