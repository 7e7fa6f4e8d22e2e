//! The `[data]` section of an experiment config.

use std::fmt;
use std::path::PathBuf;

use ae_store::Problem;
use serde::{Deserialize, Serialize};

use crate::Dataset;

/// `data.dataset`: a published dataset, or the user's own files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetChoice {
    /// MNIST, found under the data root or downloaded, checked against its
    /// published digests.
    Mnist,
    /// Fashion-MNIST, likewise.
    FashionMnist,
    /// The IDX files that `data.train` and `data.test` name, read as they
    /// are (no published digest; their content is in the fingerprint).
    Files,
}

impl DatasetChoice {
    /// The published dataset chosen, if one is.
    pub fn published(self) -> Option<Dataset> {
        match self {
            DatasetChoice::Mnist => Some(Dataset::Mnist),
            DatasetChoice::FashionMnist => Some(Dataset::FashionMnist),
            DatasetChoice::Files => None,
        }
    }

    /// The name used in configs.
    pub fn name(self) -> &'static str {
        match self.published() {
            Some(dataset) => dataset.name(),
            None => "files",
        }
    }
}

impl From<Dataset> for DatasetChoice {
    fn from(dataset: Dataset) -> Self {
        match dataset {
            Dataset::Mnist => DatasetChoice::Mnist,
            Dataset::FashionMnist => DatasetChoice::FashionMnist,
        }
    }
}

impl fmt::Display for DatasetChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `{ images = "...", labels = "..." }`: one split of the user's own data
/// as a pair of IDX files (`idx3-ubyte` images of 28×28, `idx1-ubyte`
/// labels 0–9), gzip or raw. Paths are relative to the current directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdxPair {
    /// The images file.
    pub images: PathBuf,
    /// The labels file.
    pub labels: PathBuf,
}

/// `[data]`: which dataset, where its files live, how much of it to use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// `mnist`, `fashion-mnist`, or `files` (the user's own, see `train`
    /// and `test`).
    pub dataset: DatasetChoice,
    /// The data root; files live in `<dir>/<dataset>/`. `AE_DATA_DIR` overrides it.
    pub dir: PathBuf,
    /// With `dataset = "files"`: the training split's files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train: Option<IdxPair>,
    /// With `dataset = "files"`: the test split's files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<IdxPair>,
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
    /// Seconds the download of one file from one mirror may take in all,
    /// however steadily bytes arrive; then the next mirror is tried.
    pub download_timeout_secs: u64,
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
            dataset: DatasetChoice::Mnist,
            dir: PathBuf::from("data"),
            train: None,
            test: None,
            train_limit: None,
            test_limit: None,
            mirrors: None,
            connect_timeout_secs: 10,
            read_timeout_secs: 30,
            download_timeout_secs: 600,
            normal_labels: None,
            outliers: None,
        }
    }
}

impl DataConfig {
    /// The mirrors to try, in order, for a missing file of the published
    /// dataset `dataset`: `data.mirrors` for the main dataset when set,
    /// otherwise the dataset's public mirrors.
    pub fn mirrors_for(&self, dataset: Dataset) -> Vec<String> {
        match &self.mirrors {
            Some(mirrors) if self.dataset.published() == Some(dataset) => mirrors.clone(),
            _ => dataset
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
        problems.extend(self.validate_files());
        let published = self.dataset.published();
        let limits = [
            (
                "data.train_limit",
                self.train_limit,
                published.map(Dataset::train_len),
            ),
            (
                "data.test_limit",
                self.test_limit,
                published.map(Dataset::test_len),
            ),
        ];
        for (key, limit, available) in limits {
            match (limit, available) {
                (Some(0), None) => problems.push(Problem::new(key, 0, "must be at least 1")),
                (Some(limit), Some(available)) if limit == 0 || limit > available => {
                    problems.push(Problem::new(
                        key,
                        limit,
                        format!(
                            "must be between 1 and {available} (the split's size for {})",
                            self.dataset
                        ),
                    ));
                }
                _ => {}
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
            if Some(outliers.dataset) == self.dataset.published() {
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
        for (key, secs, most) in [
            ("data.connect_timeout_secs", self.connect_timeout_secs, 3600),
            ("data.read_timeout_secs", self.read_timeout_secs, 3600),
            (
                "data.download_timeout_secs",
                self.download_timeout_secs,
                86_400,
            ),
        ] {
            if !(1..=most).contains(&secs) {
                problems.push(Problem::new(
                    key,
                    secs,
                    format!("must be between 1 and {most} seconds"),
                ));
            }
        }
        problems
    }

    /// `data.train` and `data.test` are set exactly when `dataset = "files"`.
    fn validate_files(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let files = self.dataset == DatasetChoice::Files;
        for (key, split) in [("data.train", &self.train), ("data.test", &self.test)] {
            match split {
                None if files => problems.push(Problem::new(
                    key,
                    "(missing)",
                    "must name the split's IDX files when data.dataset = \"files\", e.g. { images = \"my/train-images-idx3-ubyte.gz\", labels = \"my/train-labels-idx1-ubyte.gz\" }",
                )),
                Some(pair) if !files => problems.push(Problem::new(
                    key,
                    format!("{{ images = {:?}, labels = {:?} }}", pair.images, pair.labels),
                    format!(
                        "is read only when data.dataset = \"files\" (it is \"{}\"): remove it, or set data.dataset = \"files\"",
                        self.dataset
                    ),
                )),
                Some(pair) => {
                    for (part, path) in [("images", &pair.images), ("labels", &pair.labels)] {
                        if path.as_os_str().is_empty() {
                            problems.push(Problem::new(
                                format!("{key}.{part}"),
                                "\"\"",
                                "must name a file",
                            ));
                        }
                    }
                }
                None => {}
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
    fn own_files_need_both_splits_and_only_with_the_files_dataset() {
        let pair = |stem: &str| IdxPair {
            images: format!("{stem}-images.gz").into(),
            labels: format!("{stem}-labels.gz").into(),
        };
        let files = DataConfig {
            dataset: DatasetChoice::Files,
            train: Some(pair("train")),
            test: Some(pair("test")),
            // Any size is fine until the files are read.
            train_limit: Some(100_000),
            ..DataConfig::default()
        };
        assert_eq!(files.validate(), vec![]);
        let keys = |cfg: &DataConfig| -> Vec<String> {
            cfg.validate().into_iter().map(|p| p.key).collect()
        };
        let missing = DataConfig {
            test: None,
            train_limit: Some(0),
            ..files.clone()
        };
        assert_eq!(keys(&missing), ["data.test", "data.train_limit"]);
        let stray = DataConfig {
            dataset: DatasetChoice::Mnist,
            ..files.clone()
        };
        assert_eq!(
            keys(&stray),
            ["data.train", "data.test", "data.train_limit"]
        );
        let empty = DataConfig {
            train: Some(IdxPair {
                images: PathBuf::new(),
                labels: "l.gz".into(),
            }),
            ..files
        };
        assert_eq!(keys(&empty), ["data.train.images"]);
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
