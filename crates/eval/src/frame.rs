//! `eval/scores.parquet`: one row per test image, as a polars DataFrame.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use crate::EvalError;

/// The column names, in order.
pub const COLUMNS: [&str; 4] = ["index", "label", "mse", "is_anomaly"];

/// The scores as a DataFrame: `index` u32, `label` u8, `mse` f32,
/// `is_anomaly` bool, sorted by index.
pub fn scores_frame(labels: &[u8], mse: &[f32], is_anomaly: &[bool]) -> PolarsResult<DataFrame> {
    let index: Vec<u32> = (0..mse.len() as u32).collect();
    DataFrame::new(
        mse.len(),
        vec![
            Column::new(COLUMNS[0].into(), index),
            Column::new(COLUMNS[1].into(), labels),
            Column::new(COLUMNS[2].into(), mse),
            Column::new(COLUMNS[3].into(), is_anomaly),
        ],
    )
}

/// Writes `frame` as Parquet to `path`, atomically.
pub fn write_parquet(path: &Path, frame: &mut DataFrame) -> Result<(), EvalError> {
    let mut result = Ok(());
    ae_store::write_atomic(path, |out| {
        ParquetWriter::new(out)
            .finish(frame)
            .map(drop)
            .map_err(|e| {
                let message = e.to_string();
                result = Err(e);
                std::io::Error::other(message)
            })
    })
    .map_err(|source| match std::mem::replace(&mut result, Ok(())) {
        Err(source) => EvalError::Polars {
            path: path.to_path_buf(),
            source,
        },
        Ok(()) => EvalError::Store(source),
    })
}

/// Reads a Parquet file written by [`write_parquet`].
pub fn read_parquet(path: &Path) -> Result<DataFrame, EvalError> {
    let file = File::open(path).map_err(|source| {
        EvalError::Store(ae_store::StoreError::Read {
            path: path.to_path_buf(),
            source,
        })
    })?;
    ParquetReader::new(file)
        .finish()
        .map_err(|source| EvalError::Polars {
            path: path.to_path_buf(),
            source,
        })
}
