//! The `[data]` section of an experiment config.

use std::path::PathBuf;

use ae_store::Problem;
use serde::{Deserialize, Serialize};

use crate::Dataset;

/// `[data]`: which dataset, where its files live, how much of it to use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// `mnist` or `fashion-mnist`.
    pub dataset: Dataset,
    /// The data root; files live in `<dir>/<dataset>/`. `AE_DATA_DIR` overrides it.
    pub dir: PathBuf,
    /// Use only the first N training images (all when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    /// Use only the first N test images (all when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_limit: Option<usize>,
    /// Base URLs tried in order for a missing file (the dataset's public
    /// mirrors when absent); each must serve `<file>.gz`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirrors: Option<Vec<String>>,
    /// Seconds to wait for a mirror to accept the connection.
    pub connect_timeout_secs: u64,
    /// Seconds a download may stall without receiving a byte.
    pub read_timeout_secs: u64,
    /// Train only on images with these labels (the one-class protocol); the
    /// test split keeps every image and marks those with other labels as
    /// anomalies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normal_labels: Option<Vec<u8>>,
    /// Test images of another dataset appended to the test split, marked as
    /// anomalies (out-of-distribution detection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outliers: Option<Outliers>,
}

/// `data.outliers = { dataset = "fashion-mnist", count = 10000 }`: the first
/// `count` test images of `dataset` join the test split as anomalies, with
/// labels 10–19 for its classes 0–9. Its files are found under
/// `<dir>/<dataset>/` or downloaded from its public mirrors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outliers {
    /// Where the anomalies come from.
    pub dataset: Dataset,
    /// How many of its test images.
    pub count: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: Dataset::Mnist,
            dir: PathBuf::from("data"),
            train_limit: None,
            test_limit: None,
            mirrors: None,
            connect_timeout_secs: 10,
            read_timeout_secs: 30,
            normal_labels: None,
            outliers: None,
        }
    }
}

impl DataConfig {
    /// The mirrors to try, in order.
    pub fn mirrors(&self) -> Vec<String> {
        match &self.mirrors {
            Some(mirrors) => mirrors.clone(),
            None => self
                .dataset
                .default_mirrors()
                .iter()
                .map(|m| m.to_string())
                .collect(),
        }
    }

    /// Whether the test split says which images are anomalies.
    pub fn has_ground_truth(&self) -> bool {
        self.normal_labels.is_some() || self.outliers.is_some()
    }

    /// Whether a test image of the main dataset with `label` is an anomaly.
    pub fn is_outlier_label(&self, label: u8) -> bool {
        self.normal_labels
            .as_ref()
            .is_some_and(|normal| !normal.contains(&label))
    }

    /// Every invalid value in this section, with keys prefixed `data.`.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.dir.as_os_str().is_empty() {
            problems.push(Problem::new("data.dir", "\"\"", "must name a folder"));
        }
        let limits = [
            (
                "data.train_limit",
                self.train_limit,
                self.dataset.train_len(),
            ),
            ("data.test_limit", self.test_limit, self.dataset.test_len()),
        ];
        for (key, limit, available) in limits {
            if let Some(limit) = limit.filter(|&n| n == 0 || n > available) {
                problems.push(Problem::new(
                    key,
                    limit,
                    format!(
                        "must be between 1 and {available} (the split's size for {})",
                        self.dataset
                    ),
                ));
            }
        }
        if let Some(mirrors) = &self.mirrors {
            if mirrors.is_empty() {
                problems.push(Problem::new(
                    "data.mirrors",
                    "[]",
                    "must list at least one URL (leave it out for the default mirrors)",
                ));
            }
            for mirror in mirrors {
                if !(mirror.starts_with("http://") || mirror.starts_with("https://")) {
                    problems.push(Problem::new(
                        "data.mirrors",
                        format!("{mirror:?}"),
                        "must hold http:// or https:// URLs",
                    ));
                }
            }
        }
        if let Some(labels) = &self.normal_labels {
            let shown = format!("{labels:?}");
            let mut sorted = labels.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if labels.is_empty() || labels.iter().any(|&l| l > 9) || sorted.len() != labels.len() {
                problems.push(Problem::new(
                    "data.normal_labels",
                    shown,
                    "must list distinct labels from 0 to 9, e.g. [3]",
                ));
            } else if sorted.len() == 10 && self.outliers.is_none() {
                problems.push(Problem::new(
                    "data.normal_labels",
                    shown,
                    "leaves no test image to count as an anomaly: list fewer labels, or add data.outliers",
                ));
            }
        }
        if let Some(outliers) = &self.outliers {
            if outliers.dataset == self.dataset {
                problems.push(Problem::new(
                    "data.outliers.dataset",
                    format!("{:?}", outliers.dataset.name()),
                    format!("must differ from data.dataset ({})", self.dataset),
                ));
            }
            let available = outliers.dataset.test_len();
            if outliers.count == 0 || outliers.count > available {
                problems.push(Problem::new(
                    "data.outliers.count",
                    outliers.count,
                    format!(
                        "must be between 1 and {available} (the test split's size for {})",
                        outliers.dataset
                    ),
                ));
            }
        }
        for (key, secs) in [
            ("data.connect_timeout_secs", self.connect_timeout_secs),
            ("data.read_timeout_secs", self.read_timeout_secs),
        ] {
            if !(1..=3600).contains(&secs) {
                problems.push(Problem::new(
                    key,
                    secs,
                    "must be between 1 and 3600 seconds",
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(DataConfig::default().validate(), vec![]);
    }

    #[test]
    fn ground_truth_settings_are_checked() {
        let one_class = DataConfig {
            normal_labels: Some(vec![3]),
            ..DataConfig::default()
        };
        assert_eq!(one_class.validate(), vec![]);
        assert!(one_class.has_ground_truth());
        assert!(one_class.is_outlier_label(4) && !one_class.is_outlier_label(3));
        assert!(!DataConfig::default().is_outlier_label(4));
        for bad in [vec![], vec![10], vec![3, 3], (0..10).collect()] {
            let cfg = DataConfig {
                normal_labels: Some(bad.clone()),
                ..DataConfig::default()
            };
            let keys: Vec<_> = cfg.validate().into_iter().map(|p| p.key).collect();
            assert_eq!(keys, ["data.normal_labels"], "{bad:?}");
        }
        let cfg = DataConfig {
            outliers: Some(Outliers {
                dataset: Dataset::Mnist,
                count: 10_001,
            }),
            ..DataConfig::default()
        };
        let keys: Vec<_> = cfg.validate().into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["data.outliers.dataset", "data.outliers.count"]);
    }

    #[test]
    fn reports_every_problem() {
        let cfg = DataConfig {
            train_limit: Some(0),
            test_limit: Some(10_001),
            mirrors: Some(vec!["ftp://x".into()]),
            read_timeout_secs: 0,
            ..DataConfig::default()
        };
        let keys: Vec<_> = cfg.validate().into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "data.train_limit",
                "data.test_limit",
                "data.mirrors",
                "data.read_timeout_secs"
            ]
        );
    }
}
