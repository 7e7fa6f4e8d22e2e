//! `eval/roc.csv`: the detector's operating points as the threshold falls
//! through the distinct test scores, written by the eval stage when the test
//! split has ground truth and drawn by the report (ROC and precision-recall).

use std::path::Path;

use crate::StoreError;

/// One operating point: every test image scoring `score` or more is flagged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OperatingPoint {
    /// The lowest score flagged at this point.
    pub score: f64,
    /// Normal images flagged, as a share of the normal images.
    pub false_positive_rate: f64,
    /// Anomalies flagged, as a share of the anomalies (the recall).
    pub true_positive_rate: f64,
    /// Anomalies among the flagged images.
    pub precision: f64,
}

/// Every operating point, highest score first. Empty when the ground truth
/// has only one class (the curves are then undefined).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RocCurve {
    /// In order of falling score.
    pub points: Vec<OperatingPoint>,
}

impl RocCurve {
    /// The CSV header.
    pub const HEADER: &'static str = "score,false_positive_rate,true_positive_rate,precision";

    /// Writes the points to `path` as CSV, atomically, every digit kept.
    pub fn save(&self, path: &Path) -> Result<(), StoreError> {
        crate::write_atomic(path, |out| {
            writeln!(out, "{}", Self::HEADER)?;
            for p in &self.points {
                writeln!(
                    out,
                    "{:?},{:?},{:?},{:?}",
                    p.score, p.false_positive_rate, p.true_positive_rate, p.precision
                )?;
            }
            Ok(())
        })
    }

    /// Reads a file written by [`RocCurve::save`].
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        let points = crate::csv::read_rows(path, crate::limits::ROC, Self::HEADER, |fields| {
            let [score, fpr, tpr, precision] = fields else {
                return None;
            };
            Some(OperatingPoint {
                score: score.parse().ok()?,
                false_positive_rate: fpr.parse().ok()?,
                true_positive_rate: tpr.parse().ok()?,
                precision: precision.parse().ok()?,
            })
        })?;
        Ok(Self { points })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_round_trip_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("roc.csv");
        let curve = RocCurve {
            points: vec![
                OperatingPoint {
                    score: 0.1 + 0.2,
                    false_positive_rate: 0.0,
                    true_positive_rate: 1.0 / 3.0,
                    precision: 1.0,
                },
                OperatingPoint {
                    score: 1e-9,
                    false_positive_rate: 1.0,
                    true_positive_rate: 1.0,
                    precision: 0.5,
                },
            ],
        };
        curve.save(&path).expect("save");
        assert_eq!(RocCurve::load(&path).expect("load"), curve);
        RocCurve::default().save(&path).expect("save empty");
        assert_eq!(RocCurve::load(&path).expect("load"), RocCurve::default());
    }
}
