//! The scores `ae score` writes to a Parquet file: one row per image of
//! the user's inputs.

use std::path::Path;

use ae_store::Score;
use polars::prelude::{Column, DataFrame, PolarsResult};

use crate::TableError;
use crate::frame::write_parquet;

/// The column names, in order; the score's is [`Score::column`].
pub fn image_score_columns(score: Score) -> [&'static str; 6] {
    [
        "file",
        "index",
        "label",
        "label_name",
        score.column(),
        "is_anomaly",
    ]
}

/// Scored images, a column per field. Files are held once each and rows
/// refer to them, so a million rows of one `.npy` cost no million paths.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageScores {
    /// How the images were scored, which names the score column.
    pub score: Score,
    /// Each distinct file, as shown.
    pub files: Vec<String>,
    /// Each row's file, an index into `files`.
    pub file: Vec<u32>,
    /// Each row's image index in its file, when the file holds many.
    pub index: Vec<Option<u64>>,
    /// Each row's label, when its input has labels.
    pub label: Vec<Option<u8>>,
    /// Each row's class name, when its input's classes have names.
    pub label_name: Vec<Option<String>>,
    /// Each row's score.
    pub values: Vec<f32>,
    /// Whether each row's score is above the threshold.
    pub is_anomaly: Vec<bool>,
}

impl ImageScores {
    /// No rows yet.
    pub fn new(score: Score) -> Self {
        Self {
            score,
            files: Vec::new(),
            file: Vec::new(),
            index: Vec::new(),
            label: Vec::new(),
            label_name: Vec::new(),
            values: Vec::new(),
            is_anomaly: Vec::new(),
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The rows as a DataFrame, columns as [`image_score_columns`] lists.
    pub fn frame(&self) -> PolarsResult<DataFrame> {
        let [file, index, label, label_name, score, is_anomaly] = image_score_columns(self.score);
        let files: Vec<&str> = self
            .file
            .iter()
            .map(|&f| self.files[f as usize].as_str())
            .collect();
        DataFrame::new(
            self.len(),
            vec![
                Column::new(file.into(), files),
                Column::new(index.into(), &self.index),
                Column::new(label.into(), &self.label),
                Column::new(label_name.into(), &self.label_name),
                Column::new(score.into(), &self.values),
                Column::new(is_anomaly.into(), &self.is_anomaly),
            ],
        )
    }

    /// Writes the rows to `path` as Parquet, atomically.
    pub fn write_parquet(&self, path: &Path) -> Result<(), TableError> {
        write_parquet(path, self.frame())
    }
}

/// Per-pixel error maps of scored images, for `ae score --explain-raw`:
/// one row per image with its file, index, score and its 784 squared
/// errors as a list column `squared_error` (row-major 28×28).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorMaps {
    /// How the images were scored, which names the score column.
    pub score: Score,
    /// Each row's file.
    pub file: Vec<String>,
    /// Each row's image index in its file, when the file holds many.
    pub index: Vec<Option<u64>>,
    /// Each row's score.
    pub values: Vec<f32>,
    /// The rows' squared errors, 784 per row.
    pub squared_errors: Vec<f32>,
}

impl ErrorMaps {
    /// The rows as a DataFrame.
    pub fn frame(&self) -> PolarsResult<DataFrame> {
        use polars::prelude::{DataType, NamedFrom, Series};
        let maps: Vec<Series> = self
            .squared_errors
            .chunks_exact(ae_store::IMAGE_PIXELS)
            .map(|map| Series::new("".into(), map))
            .collect();
        let n = self.values.len();
        let maps = if maps.is_empty() {
            Series::new_empty(
                "squared_error".into(),
                &DataType::List(Box::new(DataType::Float32)),
            )
        } else {
            Series::new("squared_error".into(), maps)
        };
        DataFrame::new(
            n,
            vec![
                Column::new("file".into(), &self.file),
                Column::new("index".into(), &self.index),
                Column::new(self.score.column().into(), &self.values),
                maps.into(),
            ],
        )
    }

    /// Writes the rows to `path` as Parquet, atomically.
    pub fn write_parquet(&self, path: &Path) -> Result<(), TableError> {
        write_parquet(path, self.frame())
    }
}
