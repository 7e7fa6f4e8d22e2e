//! `eval/scores.parquet`: one row per test image, as a polars DataFrame.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use crate::EvalError;

/// The column names, in order; the last only with ground truth.
pub const COLUMNS: [&str; 5] = ["index", "label", "mse", "is_anomaly", "is_outlier"];

/// The scores as a DataFrame: `index` u32, `label` u8, `mse` f32,
/// `is_anomaly` bool (flagged) and, with ground truth, `is_outlier` bool
/// (truly an anomaly); sorted by index.
pub fn scores_frame(
    labels: &[u8],
    mse: &[f32],
    is_anomaly: &[bool],
    is_outlier: Option<&[bool]>,
) -> PolarsResult<DataFrame> {
    let index: Vec<u32> = (0..mse.len() as u32).collect();
    let mut columns = vec![
        Column::new(COLUMNS[0].into(), index),
        Column::new(COLUMNS[1].into(), labels),
        Column::new(COLUMNS[2].into(), mse),
        Column::new(COLUMNS[3].into(), is_anomaly),
    ];
    if let Some(truth) = is_outlier {
        columns.push(Column::new(COLUMNS[4].into(), truth));
    }
    DataFrame::new(mse.len(), columns)
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
