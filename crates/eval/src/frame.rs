//! `eval/scores.parquet`: one row per test image, as a polars DataFrame.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use crate::{EvalError, Score};

/// The scores table's columns, in order: `index`, `label`, the score
/// (`mse` or `mae`), `is_anomaly` and, with ground truth, `is_outlier`.
pub fn columns(score: Score, ground_truth: bool) -> Vec<&'static str> {
    let mut names = vec!["index", "label", score.column(), "is_anomaly"];
    if ground_truth {
        names.push("is_outlier");
    }
    names
}

/// The scores as a DataFrame: `index` u32, `label` u8, the score f32 (named
/// by `score`), `is_anomaly` bool (flagged) and, with ground truth,
/// `is_outlier` bool (truly an anomaly); sorted by index.
pub fn scores_frame(
    labels: &[u8],
    score: Score,
    values: &[f32],
    is_anomaly: &[bool],
    is_outlier: Option<&[bool]>,
) -> PolarsResult<DataFrame> {
    let names = columns(score, is_outlier.is_some());
    let index: Vec<u32> = (0..values.len() as u32).collect();
    let mut columns = vec![
        Column::new(names[0].into(), index),
        Column::new(names[1].into(), labels),
        Column::new(names[2].into(), values),
        Column::new(names[3].into(), is_anomaly),
    ];
    if let Some(truth) = is_outlier {
        columns.push(Column::new(names[4].into(), truth));
    }
    DataFrame::new(values.len(), columns)
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
