//! End-to-end tests: they run the real `ae` binary in a temporary folder.
//!
//! Everything runs on small synthetic IDX files given as the user's own
//! dataset (`data.dataset = "files"`), so a plain `cargo test` exercises the
//! whole pipeline. The few tests that need the real datasets (parity with
//! Keras, the published checksums and downloads, out-of-distribution
//! detection) read them from `AE_DATA_DIR` (CI sets it to `../shared/data`);
//! where it is unset they say so and skip. No test touches the internet.

mod bad_input;
mod cli;
mod data_stage;
mod formats;
mod ground_truth;
mod hostile;
mod integrity;
mod own_files;
mod report;
mod score;
mod slurm;
mod staleness;
mod support;
mod sweep;
mod train_infer;
