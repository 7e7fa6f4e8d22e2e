//! Writing a DataFrame to a file atomically, as Parquet or CSV.

use std::path::Path;

use polars::prelude::{CsvWriter, DataFrame, ParquetWriter, PolarsResult, SerWriter};

use crate::TableError;

/// The file format of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFormat {
    /// Apache Parquet, columns typed.
    Parquet,
    /// Comma-separated text with a header row.
    Csv,
}

/// Writes `frame` to `path` in `format`; the file appears only when complete.
pub fn write_frame(
    path: &Path,
    frame: &mut DataFrame,
    format: FrameFormat,
) -> Result<(), TableError> {
    // The closure can only return an io::Error, so polars' own error is
    // kept aside and returned as itself.
    let mut polars_error = None;
    let written = ae_store::write_atomic(path, |out| {
        let result = match format {
            FrameFormat::Parquet => ParquetWriter::new(out).finish(frame).map(drop),
            FrameFormat::Csv => CsvWriter::new(out).finish(frame),
        };
        result.map_err(|e| {
            let io = std::io::Error::other(e.to_string());
            polars_error = Some(e);
            io
        })
    });
    match (written, polars_error) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(source)) => Err(TableError::Polars {
            path: path.to_path_buf(),
            source,
        }),
        (Err(store), None) => Err(TableError::Store(store)),
    }
}

/// Writes the frame that `built` holds to `path` as Parquet, atomically; a
/// frame that could not be built is an error naming the file.
pub(crate) fn write_parquet(path: &Path, built: PolarsResult<DataFrame>) -> Result<(), TableError> {
    let mut frame = built.map_err(|source| TableError::Polars {
        path: path.to_path_buf(),
        source,
    })?;
    write_frame(path, &mut frame, FrameFormat::Parquet)
}
