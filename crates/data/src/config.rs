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
