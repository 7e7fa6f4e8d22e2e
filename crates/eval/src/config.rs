//! The `[eval]` section of an experiment config.

use ae_store::{Problem, Score, ThresholdRule, ThresholdSource};
use serde::{Deserialize, Serialize};

/// `[eval]`: scoring and the anomaly threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// How each image is scored.
    pub score: Score,
    /// The threshold rule.
    pub rule: ThresholdRule,
    /// The multiple for `mean_multiple` and `mean_std`.
    pub k: f64,
    /// The percentile for `percentile`, in (0, 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<f64>,
    /// The threshold for `value`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Which split's scores set the threshold.
    pub source: ThresholdSource,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            score: Score::Mse,
            rule: ThresholdRule::MeanMultiple,
            k: 2.0,
            q: None,
            value: None,
            source: ThresholdSource::Test,
        }
    }
}

impl EvalConfig {
    /// Every invalid value, keys prefixed `eval.`; the rule's own parameter must be present.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if !(self.k.is_finite() && self.k > 0.0) {
            problems.push(Problem::new(
                "eval.k",
                self.k,
                "must be a finite number greater than 0",
            ));
        }
        match (self.rule, self.q) {
            (ThresholdRule::Percentile, None) => problems.push(Problem::new(
                "eval.q",
                "(missing)",
                "must be set when eval.rule = \"percentile\", e.g. q = 95.0",
            )),
            (_, Some(q)) if !(q > 0.0 && q < 100.0) => {
                problems.push(Problem::new(
                    "eval.q",
                    q,
                    "must be greater than 0 and less than 100",
                ));
            }
            _ => {}
        }
        match (self.rule, self.value) {
            (ThresholdRule::Value, None) => problems.push(Problem::new(
                "eval.value",
                "(missing)",
                "must be set when eval.rule = \"value\", e.g. value = 0.02",
            )),
            (_, Some(value)) if !(value.is_finite() && value >= 0.0) => {
                problems.push(Problem::new(
                    "eval.value",
                    value,
                    "must be a finite number at least 0",
                ));
            }
            _ => {}
        }
        problems
    }
}
