//! CSV and Parquet tables in the Kaggle digit-recognizer layout: one row
//! per image, an optional `label` column (numbers, or class names), and 784
//! pixel columns 0–255 in row-major order. Read with polars; pixel columns
//! are read a group at a time and written into one byte per pixel, so
//! memory stays near the images' own size.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use polars::prelude::{
    Column, CsvReadOptions, DataFrame, DataType, ParquetReader, PolarsError, Schema, SerReader,
};

use super::{Bad, ImageSet, Pixels};
use crate::DataError;

/// The name of the labels column.
pub(crate) const LABEL: &str = "label";
/// Pixel columns read from a Parquet file at a time.
const GROUP: usize = 112;
/// The most bytes a CSV header line may take.
const MAX_HEADER_LINE: u64 = 1 << 20;

/// Reads the table at `path`, CSV when `csv`, else Parquet.
pub(crate) fn read(path: &Path, csv: bool) -> Result<ImageSet, DataError> {
    let polars = |source: PolarsError| DataError::Table {
        path: path.to_path_buf(),
        source,
    };
    let columns = if csv {
        csv_header(path)?
    } else {
        parquet_reader(path)?
            .schema()
            .map_err(polars)?
            .iter_names()
            .map(|n| n.to_string())
            .collect()
    };
    let has_label = columns.iter().any(|c| c == LABEL);
    let pixel_columns: Vec<String> = columns.iter().filter(|c| *c != LABEL).cloned().collect();
    if pixel_columns.len() != ae_store::IMAGE_PIXELS {
        return Err(Bad::new(
            path,
            format!(
                "has {} columns besides `{LABEL}`; a table of images has 784 pixel columns (0–255, row-major), and optionally a `{LABEL}` column",
                pixel_columns.len()
            ),
        )
        .into());
    }
    let mut set = ImageSet {
        pixels: Pixels::U8(Vec::new()),
        labels: None,
        names: None,
        origin: path.to_path_buf(),
    };
    let mut pixels = Vec::new();
    if csv {
        let mut overwrite = Schema::default();
        for name in &pixel_columns {
            overwrite.insert(name.as_str().into(), DataType::Int32);
        }
        let frame = CsvReadOptions::default()
            .with_has_header(true)
            .with_schema_overwrite(Some(Arc::new(overwrite)))
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish())
            .map_err(polars)?;
        let n = frame.height();
        pixels = allocate(path, n)?;
        for (j, name) in pixel_columns.iter().enumerate() {
            let column = frame.column(name).map_err(polars)?;
            copy_pixels(path, column, j, &mut pixels)?;
        }
        if has_label {
            read_labels(path, frame.column(LABEL).map_err(polars)?, &mut set)?;
        }
    } else {
        let mut n = None;
        for (g, group) in pixel_columns.chunks(GROUP).enumerate() {
            let frame = parquet_columns(path, group)?;
            if n.is_none() {
                n = Some(frame.height());
                pixels = allocate(path, frame.height())?;
            }
            for (k, name) in group.iter().enumerate() {
                let column = frame.column(name).map_err(polars)?;
                copy_pixels(path, column, g * GROUP + k, &mut pixels)?;
            }
        }
        if has_label {
            let frame = parquet_columns(path, &[LABEL.to_string()])?;
            read_labels(path, frame.column(LABEL).map_err(polars)?, &mut set)?;
        }
    }
    set.pixels = Pixels::U8(pixels);
    Ok(set)
}

fn allocate(path: &Path, n: usize) -> Result<Vec<u8>, DataError> {
    let total = n * ae_store::IMAGE_PIXELS;
    let mut pixels = Vec::new();
    pixels.try_reserve_exact(total).map_err(|_| {
        Bad::new(
            path,
            format!("holding its {n} images takes more memory than there is"),
        )
    })?;
    pixels.resize(total, 0);
    Ok(pixels)
}

/// The column names of a CSV file's header line.
fn csv_header(path: &Path) -> Result<Vec<String>, DataError> {
    let file = File::open(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut line = String::new();
    BufReader::new(file.take(MAX_HEADER_LINE))
        .read_line(&mut line)
        .map_err(|e| Bad::new(path, format!("its header line cannot be read as text: {e}")))?;
    if line.trim().is_empty() {
        return Err(Bad::new(
            path,
            "is empty: a table of images has a header line, then one row per image",
        )
        .into());
    }
    Ok(line
        .trim_end_matches(['\n', '\r'])
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_string())
        .collect())
}

fn parquet_reader(path: &Path) -> Result<ParquetReader<File>, DataError> {
    let file = File::open(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(ParquetReader::new(file))
}

fn parquet_columns(path: &Path, names: &[String]) -> Result<DataFrame, DataError> {
    parquet_reader(path)?
        .with_columns(Some(names.to_vec()))
        .finish()
        .map_err(|source| DataError::Table {
            path: path.to_path_buf(),
            source,
        })
}

/// Writes pixel column `j` into `pixels` (`[n, 784]`), checking each value.
fn copy_pixels(path: &Path, column: &Column, j: usize, pixels: &mut [u8]) -> Result<(), DataError> {
    let name = column.name().to_string();
    if !column.dtype().is_integer() {
        return Err(Bad::new(
            path,
            format!(
                "its column `{name}` holds {}; pixel columns hold whole numbers 0–255",
                column.dtype()
            ),
        )
        .into());
    }
    let values = column
        .cast(&DataType::Int64)
        .map_err(|source| DataError::Table {
            path: path.to_path_buf(),
            source,
        })?;
    let values = values.i64().map_err(|source| DataError::Table {
        path: path.to_path_buf(),
        source,
    })?;
    for (row, value) in values.iter().enumerate() {
        match value {
            Some(v @ 0..=255) => pixels[row * ae_store::IMAGE_PIXELS + j] = v as u8,
            Some(v) => {
                return Err(Bad::new(
                    path,
                    format!("image {row} holds {v} in column `{name}`; pixels must be 0–255"),
                )
                .into());
            }
            None => {
                return Err(
                    Bad::new(path, format!("image {row} has no value in column `{name}`")).into(),
                );
            }
        }
    }
    Ok(())
}

/// Reads the `label` column: whole numbers 0–255, or class names (sorted,
/// they become labels 0, 1, …).
fn read_labels(path: &Path, column: &Column, set: &mut ImageSet) -> Result<(), DataError> {
    let polars = |source| DataError::Table {
        path: path.to_path_buf(),
        source,
    };
    if let Some((row, _)) = column
        .as_materialized_series()
        .iter()
        .enumerate()
        .find(|(_, v)| v.is_null())
    {
        return Err(Bad::new(path, format!("image {row} has no `{LABEL}`")).into());
    }
    if column.dtype().is_integer() {
        let values = column.cast(&DataType::Int64).map_err(polars)?;
        let mut labels = Vec::with_capacity(values.len());
        for (row, v) in values.i64().map_err(polars)?.iter().enumerate() {
            match v {
                Some(v @ 0..=255) => labels.push(v as u8),
                other => {
                    return Err(Bad::new(
                        path,
                        format!(
                            "image {row} has the label {other:?}; labels are 0–255 (or class names)"
                        ),
                    )
                    .into());
                }
            }
        }
        set.labels = Some(labels);
    } else if column.dtype() == &DataType::String {
        let values = column.str().map_err(polars)?;
        let mut names: Vec<String> = values.iter().flatten().map(str::to_string).collect();
        names.sort();
        names.dedup();
        if names.len() > 256 {
            return Err(Bad::new(
                path,
                format!(
                    "its `{LABEL}` column names {} classes; ae takes at most 256",
                    names.len()
                ),
            )
            .into());
        }
        let labels = values
            .iter()
            .map(|v| {
                names
                    .binary_search(&v.unwrap_or_default().to_string())
                    .map_or(0, |i| i as u8)
            })
            .collect();
        set.labels = Some(labels);
        set.names = Some(names);
    } else {
        return Err(Bad::new(
            path,
            format!(
                "its `{LABEL}` column holds {}; labels are whole numbers 0–255 or class names",
                column.dtype()
            ),
        )
        .into());
    }
    Ok(())
}
