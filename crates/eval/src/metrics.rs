//! `eval/metrics.json`: the threshold and what it flags, overall and per label.

use serde::{Deserialize, Serialize};

use crate::detection::Detection;
use crate::scores::Summary;
use crate::{EvalConfig, Score, ThresholdRule, ThresholdSource};

/// How many of the highest-scoring images `metrics.json` lists.
pub const TOP: usize = 20;

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
    /// split's when `source = "train"`; otherwise the same as `mse`).
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
    /// Indices into the test split of the highest scores, highest first.
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
    /// Test images with this label.
    pub images: usize,
    /// How many of them are anomalies.
    pub anomalies: usize,
    /// `anomalies / images`.
    pub anomaly_rate: f64,
}

impl Metrics {
    /// Metrics of test `scores` (with their `labels` and anomaly `flags`)
    /// under `threshold`, which `cfg` computed on scores summarised by `source_scores`.
    pub fn new(
        cfg: &EvalConfig,
        threshold: f64,
        source_scores: Summary,
        scores: &[f32],
        labels: &[u8],
        flags: &[bool],
    ) -> Self {
        let anomalies = flags.iter().filter(|&&f| f).count();
        let mut per_label: Vec<LabelCounts> = Vec::new();
        for label in labels
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<u8>>()
        {
            let in_label = labels.iter().zip(flags).filter(|&(&l, _)| l == label);
            let (images, anomalies) =
                in_label.fold((0, 0), |(n, a), (_, &f)| (n + 1, a + usize::from(f)));
            per_label.push(LabelCounts {
                label,
                images,
                anomalies,
                anomaly_rate: anomalies as f64 / images as f64,
            });
        }
        let mut order: Vec<u32> = (0..scores.len() as u32).collect();
        order.sort_by(|&a, &b| {
            scores[b as usize]
                .total_cmp(&scores[a as usize])
                .then(a.cmp(&b))
        });
        order.truncate(TOP);
        Self {
            score: cfg.score,
            rule: cfg.rule,
            parameter: match cfg.rule {
                ThresholdRule::MeanMultiple | ThresholdRule::MeanStd => cfg.k,
                ThresholdRule::Percentile => cfg.q.unwrap_or(f64::NAN),
                ThresholdRule::Value => cfg.value.unwrap_or(f64::NAN),
            },
            source: cfg.source,
            threshold,
            source_scores,
            images: scores.len(),
            scores: Summary::of(scores).expect("at least one test image"),
            anomalies,
            anomaly_rate: anomalies as f64 / scores.len() as f64,
            per_label,
            top_indices: order,
            detection: None,
        }
    }

    /// `AUROC 0.9123, average precision 0.8765; at the threshold ...`, when
    /// there is ground truth.
    pub fn detection_line(&self) -> Option<String> {
        let d = self.detection.as_ref()?;
        let at = &d.at_threshold;
        Some(format!(
            "AUROC {:.4}, average precision {:.4} ({} true anomalies of {}); at the threshold: precision {:.3}, recall {:.3}, F1 {:.3} (best F1 {:.3} at {:.6})",
            d.auroc,
            d.average_precision,
            d.true_anomalies,
            d.true_anomalies + d.true_normal,
            at.precision,
            at.recall,
            at.f1,
            d.best_f1.f1,
            d.best_f1.threshold
        ))
    }

    /// The seed's line, with the threshold beside it.
    pub fn found_line(&self) -> String {
        let score = self.score.name();
        let rule = match self.rule {
            ThresholdRule::MeanMultiple => format!("{} × the mean {score}", self.parameter),
            ThresholdRule::Percentile => {
                format!("the {}th percentile of the {score}", self.parameter)
            }
            ThresholdRule::MeanStd => {
                format!("the mean {score} + {} standard deviations", self.parameter)
            }
            ThresholdRule::Value => "a fixed value".to_string(),
        };
        let source = match self.source {
            ThresholdSource::Test => "test",
            ThresholdSource::Train => "training",
        };
        format!(
            "Found {} anomalies! ({} of {} test images, {:.2} %; threshold {:.6} = {rule} of the {source} split)",
            self.anomalies,
            self.anomalies,
            self.images,
            100.0 * self.anomaly_rate,
            self.threshold
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_label_and_lists_the_top_scores() {
        let scores = [0.1, 0.9, 0.5, 0.9, 0.2];
        let labels = [1, 1, 2, 2, 2];
        let flags = crate::scores::flag(&scores, 0.4);
        let cfg = EvalConfig::default();
        let summary = Summary::of(&scores).expect("summary");
        let m = Metrics::new(&cfg, 0.4, summary, &scores, &labels, &flags);
        assert_eq!((m.images, m.anomalies), (5, 3));
        assert!((m.anomaly_rate - 0.6).abs() < 1e-12);
        assert_eq!(
            m.per_label,
            vec![
                LabelCounts {
                    label: 1,
                    images: 2,
                    anomalies: 1,
                    anomaly_rate: 0.5
                },
                LabelCounts {
                    label: 2,
                    images: 3,
                    anomalies: 2,
                    anomaly_rate: 2.0 / 3.0
                },
            ]
        );
        // Ties keep index order.
        assert_eq!(m.top_indices, vec![1, 3, 2, 4, 0]);
        assert_eq!(m.parameter, 2.0);
        assert!(m.found_line().starts_with("Found 3 anomalies! (3 of 5 test images, 60.00 %; threshold 0.400000 = 2 × the mean MSE of the test split)"), "{}", m.found_line());
    }
}
