//! `eval/metrics.json`: what the eval stage found, as the report and sweep
//! summaries read it back. The eval stage computes these values; this module
//! only defines the file and reads and writes it.

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::StoreError;

/// How many of the highest-scoring test images `metrics.json` lists: as many
/// as the report's top-anomalies figure can show.
pub const TOP_INDICES: usize = 100;

/// How an image's reconstruction error is measured over its 784 pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Score {
    /// Mean squared error, as the seed.
    #[default]
    Mse,
    /// Mean absolute error: the robust variant, less driven by a few badly
    /// reconstructed pixels.
    Mae,
}

impl Score {
    /// `MSE` or `MAE`, as text shows it.
    pub fn name(self) -> &'static str {
        match self {
            Score::Mse => "MSE",
            Score::Mae => "MAE",
        }
    }

    /// `mse` or `mae`: the config value, and the scores table's column.
    pub fn column(self) -> &'static str {
        match self {
            Score::Mse => "mse",
            Score::Mae => "mae",
        }
    }
}

/// How the anomaly threshold is derived from the scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdRule {
    /// `k` × the mean score (the seed: k = 2 × the mean MSE).
    MeanMultiple,
    /// The `q`-th percentile of the scores.
    Percentile,
    /// mean + `k` × standard deviation of the scores.
    MeanStd,
    /// A fixed `value`.
    Value,
}

impl ThresholdRule {
    /// The config value: `mean_multiple`, `percentile`, `mean_std`, `value`.
    pub fn name(self) -> &'static str {
        match self {
            ThresholdRule::MeanMultiple => "mean_multiple",
            ThresholdRule::Percentile => "percentile",
            ThresholdRule::MeanStd => "mean_std",
            ThresholdRule::Value => "value",
        }
    }
}

/// Which split's scores the threshold is computed on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdSource {
    /// The test split's own scores, as the seed does.
    #[default]
    Test,
    /// The training split's scores, applied to the test split.
    Train,
    /// The held-out validation split's scores (`data.validation`: normal
    /// images the model was not fitted to), applied to the test split.
    Validation,
}

impl LabelCounts {
    /// How the class is shown: its name, or its number.
    pub fn shown(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.label.to_string())
    }
}

impl ThresholdSource {
    /// The config value: `test`, `train` or `validation`.
    pub fn name(self) -> &'static str {
        match self {
            ThresholdSource::Test => "test",
            ThresholdSource::Train => "train",
            ThresholdSource::Validation => "validation",
        }
    }

    /// `test`, `training` or `validation`, as a sentence names the split.
    pub fn split_name(self) -> &'static str {
        match self {
            ThresholdSource::Test => "test",
            ThresholdSource::Train => "training",
            ThresholdSource::Validation => "validation",
        }
    }

    /// The split whose scores set the threshold, and its reconstructions:
    /// files of [`crate::files`]; `None` for the test split, which is
    /// always reconstructed.
    pub fn extra_split(self) -> Option<(&'static str, &'static str)> {
        use crate::files;
        match self {
            ThresholdSource::Test => None,
            ThresholdSource::Train => Some((files::TRAIN_SPLIT, files::TRAIN_DECODED)),
            ThresholdSource::Validation => {
                Some((files::VALIDATION_SPLIT, files::VALIDATION_DECODED))
            }
        }
    }
}

/// Mean, median, population standard deviation and maximum of some scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// Arithmetic mean.
    pub mean: f64,
    /// The middle value (the mean of the middle two for an even count).
    pub median: f64,
    /// Population standard deviation (ddof = 0, NumPy's default).
    pub std: f64,
    /// The largest score.
    pub max: f64,
}

/// Everything `eval/metrics.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// How each image was scored: `mse` or `mae`.
    pub score: Score,
    /// The threshold rule.
    pub rule: ThresholdRule,
    /// The rule's parameter: `k` for `mean_multiple` and `mean_std`, `q` for
    /// `percentile`, the value itself for `value`.
    pub parameter: f64,
    /// Which split's scores set the threshold.
    pub source: ThresholdSource,
    /// The threshold: an image is an anomaly when its score is above it.
    pub threshold: f64,
    /// Summary of the scores the threshold was computed on (the training
    /// split's when `source = "train"`; otherwise the same as `scores`).
    pub source_scores: Summary,
    /// Test images scored.
    pub images: usize,
    /// Summary of the test images' scores.
    pub scores: Summary,
    /// Test images above the threshold.
    pub anomalies: usize,
    /// `anomalies / images`.
    pub anomaly_rate: f64,
    /// The same counts for each label.
    pub per_label: Vec<LabelCounts>,
    /// Indices into the test split of the highest scores, highest first
    /// (ties by index), at most [`TOP_INDICES`] of them.
    pub top_indices: Vec<u32>,
    /// How well the scores find the true anomalies, when the test split
    /// has ground truth with both classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<Detection>,
}

/// Anomaly counts for one label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelCounts {
    /// The class.
    pub label: u8,
    /// The class's name, when the classes have names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Test images with this label.
    pub images: usize,
    /// How many of them are anomalies.
    pub anomalies: usize,
    /// `anomalies / images`.
    pub anomaly_rate: f64,
}

/// Every ground-truth metric of one scored test split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detection {
    /// Test images that are anomalies by the ground truth.
    pub true_anomalies: usize,
    /// Test images that are normal by the ground truth.
    pub true_normal: usize,
    /// Area under the ROC curve: the chance that a random anomaly scores
    /// above a random normal image, ties counting one half.
    pub auroc: f64,
    /// Average precision (the area under the precision-recall curve as a
    /// step function, as scikit-learn computes it).
    pub average_precision: f64,
    /// What the configured threshold flags.
    pub at_threshold: Confusion,
    /// The threshold that would have given the best F1 (chosen on the test
    /// labels, so it is an upper bound, not a result).
    pub best_f1: Confusion,
}

/// Counts and rates of one threshold. Precision is 0 when nothing is flagged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confusion {
    /// An image is flagged when its score is above this.
    pub threshold: f64,
    /// Anomalies flagged.
    pub true_positives: usize,
    /// Normal images flagged.
    pub false_positives: usize,
    /// Normal images not flagged.
    pub true_negatives: usize,
    /// Anomalies not flagged.
    pub false_negatives: usize,
    /// `tp / (tp + fp)`.
    pub precision: f64,
    /// `tp / (tp + fn)`.
    pub recall: f64,
    /// `2 tp / (2 tp + fp + fn)`.
    pub f1: f64,
}

impl Confusion {
    /// `fp / (fp + tn)`, 0 when there are no normal images.
    pub fn false_positive_rate(&self) -> f64 {
        let normal = self.false_positives + self.true_negatives;
        if normal == 0 {
            0.0
        } else {
            self.false_positives as f64 / normal as f64
        }
    }
}

/// Writes `value` to `path` as pretty-printed JSON and a newline, atomically.
pub(crate) fn save_json(path: &Path, value: &impl Serialize) -> Result<(), StoreError> {
    crate::write_atomic(path, |out| {
        serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::other)?;
        out.write_all(b"\n")
    })
}

/// Reads a JSON file of at most [`crate::limits::METRICS`] bytes.
pub(crate) fn load_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StoreError> {
    let bytes = crate::read_bounded(path, crate::limits::METRICS)?;
    serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
        path: path.to_path_buf(),
        source,
    })
}

impl Metrics {
    /// Writes the metrics to `path` as pretty-printed JSON, atomically.
    pub fn save(&self, path: &Path) -> Result<(), StoreError> {
        save_json(path, self)
    }

    /// Reads a file written by [`Metrics::save`].
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        load_json(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confusion(threshold: f64) -> Confusion {
        Confusion {
            threshold,
            true_positives: 3,
            false_positives: 1,
            true_negatives: 5,
            false_negatives: 2,
            precision: 0.75,
            recall: 0.6,
            f1: 6.0 / 9.0,
        }
    }

    #[test]
    fn metrics_round_trip_and_a_foreign_file_names_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("eval/metrics.json");
        let summary = Summary {
            mean: 0.5,
            median: 0.25,
            std: 0.125,
            max: 2.0,
        };
        let metrics = Metrics {
            score: Score::Mae,
            rule: ThresholdRule::Percentile,
            parameter: 95.0,
            source: ThresholdSource::Train,
            threshold: 1.5,
            source_scores: summary,
            images: 4,
            scores: summary,
            anomalies: 1,
            anomaly_rate: 0.25,
            per_label: vec![LabelCounts {
                label: 7,
                name: None,
                images: 4,
                anomalies: 1,
                anomaly_rate: 0.25,
            }],
            top_indices: vec![2, 0, 1, 3],
            detection: Some(Detection {
                true_anomalies: 5,
                true_normal: 6,
                auroc: 0.9,
                average_precision: 0.8,
                at_threshold: confusion(1.5),
                best_f1: confusion(1.25),
            }),
        };
        metrics.save(&path).expect("save");
        assert_eq!(Metrics::load(&path).expect("load"), metrics);
        assert!((confusion(0.0).false_positive_rate() - 1.0 / 6.0).abs() < 1e-12);

        std::fs::write(&path, br#"{"score": "mse"}"#).expect("write");
        let err = Metrics::load(&path).expect_err("incomplete");
        assert!(err.to_string().contains("metrics.json"), "{err}");
    }
}
