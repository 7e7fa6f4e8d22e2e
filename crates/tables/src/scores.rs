//! `eval/scores.parquet`: one row per test image, as the eval stage writes
//! it and the report reads it.

use std::fs::File;
use std::path::Path;

use ae_store::{Score, StoreError};
use polars::prelude::{Column, DataFrame, ParquetReader, PolarsResult, SerReader};

use crate::TableError;
use crate::frame::write_parquet;

/// The scores of a test split. Columns in the file, in order: `index` u32,
/// `label` u8 (when the images have labels), the score f32 (named `mse` or
/// `mae`, see [`Score::column`]), `is_anomaly` bool (flagged) and, with
/// ground truth, `is_outlier` bool (truly an anomaly).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoresTable {
    /// How the images were scored, which names the score column.
    pub score: Score,
    /// Each image's class, when they have classes.
    pub labels: Option<Vec<u8>>,
    /// Each image's score.
    pub values: Vec<f32>,
    /// Whether each image is above the threshold.
    pub is_anomaly: Vec<bool>,
    /// Whether each image is truly an anomaly, when the split says.
    pub is_outlier: Option<Vec<bool>>,
}

const INDEX: &str = "index";
const LABEL: &str = "label";
const IS_ANOMALY: &str = "is_anomaly";
const IS_OUTLIER: &str = "is_outlier";

impl ScoresTable {
    /// The file's column names, in order.
    pub fn columns(score: Score, labels: bool, ground_truth: bool) -> Vec<&'static str> {
        let mut names = vec![INDEX];
        if labels {
            names.push(LABEL);
        }
        names.extend([score.column(), IS_ANOMALY]);
        if ground_truth {
            names.push(IS_OUTLIER);
        }
        names
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The table as a DataFrame, one row per image in index order.
    pub fn frame(&self) -> PolarsResult<DataFrame> {
        let index: Vec<u32> = (0..self.values.len() as u32).collect();
        let mut columns = vec![Column::new(INDEX.into(), index)];
        if let Some(labels) = &self.labels {
            columns.push(Column::new(LABEL.into(), labels));
        }
        columns.extend([
            Column::new(self.score.column().into(), &self.values),
            Column::new(IS_ANOMALY.into(), &self.is_anomaly),
        ]);
        if let Some(truth) = &self.is_outlier {
            columns.push(Column::new(IS_OUTLIER.into(), truth));
        }
        DataFrame::new(self.values.len(), columns)
    }

    /// Writes the table to `path` as Parquet, atomically.
    pub fn write(&self, path: &Path) -> Result<(), TableError> {
        write_parquet(path, self.frame())
    }

    /// Reads a file written by [`ScoresTable::write`], checking its columns.
    pub fn read(path: &Path) -> Result<Self, TableError> {
        ae_store::regular_file(path)?;
        let file = File::open(path).map_err(|source| StoreError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let frame = ParquetReader::new(file)
            .finish()
            .map_err(|source| TableError::Polars {
                path: path.to_path_buf(),
                source,
            })?;
        let columns = Columns {
            path,
            frame: &frame,
        };
        let score = if frame.column(Score::Mae.column()).is_ok() {
            Score::Mae
        } else {
            Score::Mse
        };
        let is_outlier = match frame.column(IS_OUTLIER) {
            Ok(_) => Some(columns.bools(IS_OUTLIER)?),
            Err(_) => None,
        };
        let labels = match frame.column(LABEL) {
            Ok(_) => Some(columns.get(LABEL, |c| c.u8().map(|c| c.iter().collect()))?),
            Err(_) => None,
        };
        Ok(Self {
            score,
            labels,
            values: columns.get(score.column(), |c| c.f32().map(|c| c.iter().collect()))?,
            is_anomaly: columns.bools(IS_ANOMALY)?,
            is_outlier,
        })
    }
}

/// A decoded table's columns, each read with a check of its type and nulls.
struct Columns<'a> {
    path: &'a Path,
    frame: &'a DataFrame,
}

impl Columns<'_> {
    fn get<T>(
        &self,
        name: &str,
        values: impl Fn(&Column) -> PolarsResult<Vec<Option<T>>>,
    ) -> Result<Vec<T>, TableError> {
        let problem = |problem: String| TableError::Columns {
            path: self.path.to_path_buf(),
            problem,
        };
        let column = self
            .frame
            .column(name)
            .map_err(|_| problem(format!("column `{name}` is missing")))?;
        let values = values(column)
            .map_err(|e| problem(format!("column `{name}` has the wrong type: {e}")))?;
        values
            .into_iter()
            .collect::<Option<Vec<T>>>()
            .ok_or_else(|| problem(format!("column `{name}` has missing values")))
    }

    fn bools(&self, name: &str) -> Result<Vec<bool>, TableError> {
        self.get(name, |c| c.bool().map(|c| c.iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FrameFormat, write_frame};

    #[test]
    fn tables_round_trip_with_and_without_ground_truth() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("eval/scores.parquet");
        let mut table = ScoresTable {
            score: Score::Mae,
            labels: Some(vec![3, 1, 4]),
            values: vec![0.5, 0.25, 1.5],
            is_anomaly: vec![false, false, true],
            is_outlier: None,
        };
        table.write(&path).expect("write");
        assert_eq!(ScoresTable::read(&path).expect("read"), table);
        table.score = Score::Mse;
        table.is_outlier = Some(vec![true, false, true]);
        table.write(&path).expect("write");
        assert_eq!(ScoresTable::read(&path).expect("read"), table);
        let frame = table.frame().expect("frame");
        let names: Vec<&str> = frame.columns().iter().map(|c| c.name().as_str()).collect();
        assert_eq!(names, ScoresTable::columns(Score::Mse, true, true));
        table.labels = None;
        table.write(&path).expect("write");
        assert_eq!(ScoresTable::read(&path).expect("read"), table);
    }

    #[test]
    fn a_file_with_other_columns_names_the_column() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("scores.parquet");
        let mut frame = DataFrame::new(
            2,
            vec![
                Column::new("label".into(), [1u8, 2]),
                Column::new("mse".into(), [0.5f64, 0.25]),
            ],
        )
        .expect("frame");
        write_frame(&path, &mut frame, FrameFormat::Parquet).expect("write");
        let err = ScoresTable::read(&path)
            .expect_err("f64 scores")
            .to_string();
        assert!(
            err.contains("scores.parquet") && err.contains("column `mse` has the wrong type"),
            "{err}"
        );
        std::fs::write(&path, b"not parquet").expect("write");
        let err = ScoresTable::read(&path).expect_err("junk").to_string();
        assert!(err.contains("scores.parquet"), "{err}");
    }
}
