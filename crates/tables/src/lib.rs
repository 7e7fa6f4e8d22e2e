//! The tables of `ae` that need a DataFrame library: `eval/scores.parquet`
//! ([`ScoresTable`], its one reader and writer), the scores `ae score` writes
//! ([`ImageScores`]) and atomic Parquet and CSV
//! writing of any [`DataFrame`] ([`write_frame`], for the sweep summary).
//!
//! Apart from `ae-store` because of polars: the crates that never touch a
//! table (model, train, infer) neither build nor link it.

mod frame;
mod image_scores;
mod scores;

use std::path::PathBuf;

pub use frame::{FrameFormat, write_frame};
pub use image_scores::{ErrorMaps, ImageScores, image_score_columns};
pub use polars;
pub use polars::prelude::{Column, DataFrame};
pub use scores::ScoresTable;

/// Why a table could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The file could not be opened, created or renamed into place.
    #[error(transparent)]
    Store(#[from] ae_store::StoreError),
    /// polars could not build, encode or decode the table.
    #[error("cannot write or read the table {}", path.display())]
    Polars {
        /// The file.
        path: PathBuf,
        /// What polars reported.
        #[source]
        source: polars::error::PolarsError,
    },
    /// The file decoded, but its columns are not the ones its writer writes.
    #[error("{} does not hold the expected columns: {problem}; rerun the stage that writes it", path.display())]
    Columns {
        /// The file.
        path: PathBuf,
        /// The missing, mistyped or incomplete column.
        problem: String,
    },
}
