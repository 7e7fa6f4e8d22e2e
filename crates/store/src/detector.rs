//! What `eval/detector.safetensors` says besides its weights: the
//! safetensors `__metadata__` of a one-file detector, every value a string
//! (the format allows nothing else), and everything scoring needs.
//!
//! The tensors are the model's four (see `ae_model::Params`); this module
//! reads and writes only the metadata, so that any safetensors reader (such
//! as Python's `safe_open(path, "np").metadata()`) sees the same keys.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{Score, StoreError, Summary, ThresholdRule, ThresholdSource};

/// The value of the `format` key.
pub const DETECTOR_FORMAT: &str = "ae-detector";
/// The detector format version this `ae` writes and reads.
pub const DETECTOR_VERSION: u32 = 1;
/// The input convention: what an image must be before it is scored.
pub const DETECTOR_INPUT: &str = "28x28 grayscale, pixel/255, row-major [N, 784]";

/// Everything a detector file says besides its weights.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorInfo {
    /// The code layer's width.
    pub latent: usize,
    /// How an image is scored.
    pub score: Score,
    /// The rule that set the threshold.
    pub rule: ThresholdRule,
    /// The rule's parameter (`k`, `q` or the value itself).
    pub parameter: f64,
    /// The split whose scores set it.
    pub source: ThresholdSource,
    /// An image is an anomaly when its score is above this.
    pub threshold: f64,
    /// The scores the threshold was set from.
    pub source_scores: Summary,
    /// sha256 of the `train/model.safetensors` whose weights it holds: which
    /// training run made it (the manifest's record of that file).
    pub model_sha256: String,
    /// The `ae` version that wrote it.
    pub ae_version: String,
}

const KEYS: [&str; 15] = [
    "format",
    "format_version",
    "latent",
    "input",
    "score",
    "threshold_rule",
    "threshold_parameter",
    "threshold_source",
    "threshold",
    "source_mean",
    "source_median",
    "source_std",
    "source_max",
    "model_sha256",
    "ae_version",
];

impl DetectorInfo {
    /// The metadata as written: every key of the format, each a string
    /// (numbers with every digit an f64 needs to round-trip).
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let values = [
            DETECTOR_FORMAT.to_string(),
            DETECTOR_VERSION.to_string(),
            self.latent.to_string(),
            DETECTOR_INPUT.to_string(),
            self.score.column().to_string(),
            self.rule.name().to_string(),
            format!("{:?}", self.parameter),
            self.source.name().to_string(),
            format!("{:?}", self.threshold),
            format!("{:?}", self.source_scores.mean),
            format!("{:?}", self.source_scores.median),
            format!("{:?}", self.source_scores.std),
            format!("{:?}", self.source_scores.max),
            self.model_sha256.clone(),
            self.ae_version.clone(),
        ];
        KEYS.iter().map(|k| k.to_string()).zip(values).collect()
    }

    /// Reads the metadata of the detector file at `path`: every key must be
    /// there, of the right form, and the format one this `ae` reads. Errors
    /// list every problem.
    pub fn from_metadata(
        path: &Path,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Self, StoreError> {
        if !metadata.contains_key("format") {
            return Err(StoreError::Detector {
                path: path.to_path_buf(),
                problems: vec![
                    "its metadata has no `format` key, so it is not an ae detector (a run's detector is runs/NAME/eval/detector.safetensors)".into(),
                ],
            });
        }
        let mut problems = Vec::new();
        let get = |key: &str, problems: &mut Vec<String>| -> String {
            match metadata.get(key) {
                Some(value) => value.clone(),
                None => {
                    problems.push(format!("metadata key `{key}` is missing"));
                    String::new()
                }
            }
        };
        let format = get("format", &mut problems);
        if !format.is_empty() && format != DETECTOR_FORMAT {
            problems.push(format!(
                "`format` is {format:?}, not {DETECTOR_FORMAT:?}: not an ae detector"
            ));
        }
        let version = get("format_version", &mut problems);
        if !version.is_empty() && version != DETECTOR_VERSION.to_string() {
            problems.push(format!(
                "`format_version` is {version:?}; this ae reads version {DETECTOR_VERSION}: use the ae that wrote it, or rerun the experiment's eval stage"
            ));
        }
        let input = get("input", &mut problems);
        if !input.is_empty() && input != DETECTOR_INPUT {
            problems.push(format!("`input` is {input:?}, not {DETECTOR_INPUT:?}"));
        }
        let number = |key: &str, problems: &mut Vec<String>| -> f64 {
            let text = get(key, problems);
            match text.parse::<f64>() {
                Ok(v) if v.is_finite() => v,
                _ if text.is_empty() => f64::NAN,
                _ => {
                    problems.push(format!("`{key}` is {text:?}, not a finite number"));
                    f64::NAN
                }
            }
        };
        let parameter = number("threshold_parameter", &mut problems);
        let threshold = number("threshold", &mut problems);
        let source_scores = Summary {
            mean: number("source_mean", &mut problems),
            median: number("source_median", &mut problems),
            std: number("source_std", &mut problems),
            max: number("source_max", &mut problems),
        };
        let latent_text = get("latent", &mut problems);
        let latent = latent_text.parse::<usize>().unwrap_or_else(|_| {
            if !latent_text.is_empty() {
                problems.push(format!("`latent` is {latent_text:?}, not a size"));
            }
            0
        });
        let named = |key: &str, value: String, known: &[&str], problems: &mut Vec<String>| {
            if !value.is_empty() && !known.contains(&value.as_str()) {
                problems.push(format!("`{key}` is {value:?}, not one of {known:?}"));
            }
            value
        };
        let score = named(
            "score",
            get("score", &mut problems),
            &["mse", "mae"],
            &mut problems,
        );
        let rule = named(
            "threshold_rule",
            get("threshold_rule", &mut problems),
            &["mean_multiple", "percentile", "mean_std", "value"],
            &mut problems,
        );
        let source = named(
            "threshold_source",
            get("threshold_source", &mut problems),
            &["test", "train", "validation"],
            &mut problems,
        );
        let model_sha256 = get("model_sha256", &mut problems);
        let ae_version = get("ae_version", &mut problems);
        if !problems.is_empty() {
            return Err(StoreError::Detector {
                path: path.to_path_buf(),
                problems,
            });
        }
        fn typed<T: serde::de::DeserializeOwned>(
            path: &Path,
            value: String,
        ) -> Result<T, StoreError> {
            serde_json::from_value(serde_json::Value::String(value)).map_err(|e| {
                StoreError::Detector {
                    path: path.to_path_buf(),
                    problems: vec![e.to_string()],
                }
            })
        }
        Ok(Self {
            latent,
            score: typed(path, score)?,
            rule: typed(path, rule)?,
            parameter,
            source: typed(path, source)?,
            threshold,
            source_scores,
            model_sha256,
            ae_version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> DetectorInfo {
        DetectorInfo {
            latent: 32,
            score: Score::Mse,
            rule: ThresholdRule::Percentile,
            parameter: 95.0,
            source: ThresholdSource::Validation,
            threshold: 0.019272872548992747,
            source_scores: Summary {
                mean: 0.01,
                median: 0.009,
                std: 0.004,
                max: 0.1,
            },
            model_sha256: "ab".repeat(32),
            ae_version: "0.3.0".into(),
        }
    }

    #[test]
    fn metadata_round_trips_exactly() {
        let path = Path::new("detector.safetensors");
        let metadata = info().to_metadata();
        assert_eq!(metadata.len(), KEYS.len());
        assert_eq!(metadata["threshold"], "0.019272872548992747");
        assert_eq!(
            DetectorInfo::from_metadata(path, &metadata).expect("read"),
            info()
        );
    }

    #[test]
    fn a_missing_or_altered_key_or_another_version_is_named() {
        let path = Path::new("detector.safetensors");
        let mut metadata = info().to_metadata();
        metadata.remove("threshold");
        metadata.insert("score".into(), "rmse".into());
        metadata.insert("format_version".into(), "2".into());
        let err = DetectorInfo::from_metadata(path, &metadata)
            .expect_err("bad")
            .to_string();
        for needle in [
            "detector.safetensors",
            "metadata key `threshold` is missing",
            "`score` is \"rmse\"",
            "`format_version` is \"2\"",
        ] {
            assert!(err.contains(needle), "{needle:?} not in {err}");
        }
    }
}
