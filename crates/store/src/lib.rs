//! Shared plumbing for every `ae` stage: where files live, how they are written
//! and how their contents are identified.
//!
//! Stage crates never spell an artifact's file name themselves; they take it
//! from [`files`] and resolve it against a [`RunDir`]. Everything they write
//! goes through [`write_atomic`] or [`write_split`], so a reader never sees a
//! half-written file: data lands in a temporary file in the same directory and
//! is renamed into place only when complete.
//!
//! - [`RunDir`] and [`files`]: the layout of `runs/<name>/`.
//! - [`Manifest`]: `manifest.json`, what each stage read and wrote, with sha256
//!   digests, start time, duration and status.
//! - [`Cache`]: stage outputs shared between runs by fingerprint, as hard links.
//! - [`sha256_file`], [`sha256_hex`]: content digests as lowercase hex.
//! - [`write_tensors`], [`TensorFile`]: safetensors files streamed to and from
//!   disk, with exact checks of names, dtypes and shapes on reading.
//! - [`Split`], [`write_split`], [`read_split`]: the `images` f32 `[N, 784]` and
//!   `labels` u8 `[N]` files that the data stage writes.
//! - [`Problem`]: one invalid config value, as every stage's validation reports it.
//!
//! Every I/O error is a [`StoreError`] that names the path it concerns.

mod atomic;
mod cache;
mod error;
mod hash;
mod layout;
mod manifest;
mod problem;
mod split;
mod tensors;

pub use atomic::{create_dir_all, temp_file_in, write_atomic};
pub use cache::{Cache, CacheEntry};
pub use error::StoreError;
pub use hash::{sha256_file, sha256_hex};
pub use layout::{RunDir, files};
pub use manifest::{FileRecord, Manifest, StageRecord, StageStatus};
pub use problem::Problem;
pub use split::{
    IMAGE_PIXELS, IMAGE_SIDE, Split, read_images, read_split, split_images_tensor, write_split,
};
pub use tensors::{Dtype, TensorFile, TensorOut, write_f32_le, write_tensors};
