//! End-to-end tests: they run the real `ae` binary in a temporary folder.
//!
//! Tests on the real datasets read them from `AE_DATA_DIR` (CI sets it to
//! `../shared/data`); where it is unset they say so and skip. Everything else
//! uses small synthetic IDX files and always runs. No test touches the internet.

mod bad_input;
mod cli;
mod data_stage;
mod ground_truth;
mod report;
mod staleness;
mod support;
mod sweep;
mod train_infer;
