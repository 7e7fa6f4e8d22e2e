//! The contents of `eval/metrics.json` ([`Metrics`], defined in `ae-store`):
//! the threshold and what it flags, overall and per label, and the lines
//! that say so.

use std::collections::BTreeSet;

use ae_store::{
    LabelCounts, Metrics, Score, Summary, TOP_INDICES, ThresholdRule, ThresholdSource, readable,
};

use crate::EvalConfig;
use crate::scores::summarize;

/// Metrics of test `scores` (with their `labels`, when they have labels,
/// the classes' `names`, and anomaly `flags`)
/// under `threshold`, which `cfg` computed on scores summarised by
/// `source_scores`. No detection metrics: the caller adds them with ground
/// truth.
///
/// # Panics
/// If there are no scores (a split has at least one image).
pub fn compute(
    cfg: &EvalConfig,
    threshold: f64,
    source_scores: Summary,
    scores: &[f32],
    labels: Option<&[u8]>,
    names: Option<&[String]>,
    flags: &[bool],
) -> Metrics {
    let anomalies = flags.iter().filter(|&&f| f).count();
    let mut per_label: Vec<LabelCounts> = Vec::new();
    let labels = labels.unwrap_or_default();
    for label in labels.iter().copied().collect::<BTreeSet<u8>>() {
        let in_label = labels.iter().zip(flags).filter(|&(&l, _)| l == label);
        let (images, anomalies) =
            in_label.fold((0, 0), |(n, a), (_, &f)| (n + 1, a + usize::from(f)));
        per_label.push(LabelCounts {
            label,
            name: names.map(|names| ae_store::label_name(Some(names), label)),
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
    order.truncate(TOP_INDICES);
    Metrics {
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
        scores: summarize(scores).expect("at least one test image"),
        anomalies,
        anomaly_rate: anomalies as f64 / scores.len() as f64,
        per_label,
        top_indices: order,
        detection: None,
    }
}

/// The seed's line, with the threshold beside it:
/// `Found 587 anomalies! (587 of 10000 test images, 5.87 %; threshold ...)`.
pub fn found_line(m: &Metrics) -> String {
    format!(
        "Found {} anomalies! ({} of {} test images, {:.2} %; threshold {})",
        m.anomalies,
        m.anomalies,
        m.images,
        100.0 * m.anomaly_rate,
        threshold_text(m.threshold, m.score, m.rule, m.parameter, m.source)
    )
}

/// `0.019273 = 2 × the mean MSE of the test split`: a threshold and how it
/// was set.
pub fn threshold_text(
    threshold: f64,
    score: Score,
    rule: ThresholdRule,
    parameter: f64,
    source: ThresholdSource,
) -> String {
    let score = score.name();
    let rule = match rule {
        ThresholdRule::MeanMultiple => format!("{parameter} × the mean {score}"),
        ThresholdRule::Percentile => format!("the {parameter}th percentile of the {score}"),
        ThresholdRule::MeanStd => format!("the mean {score} + {parameter} standard deviations"),
        ThresholdRule::Value => "a fixed value".to_string(),
    };
    format!(
        "{} = {rule} of the {} split",
        readable(threshold, 6),
        source.split_name()
    )
}

/// `AUROC 0.9123, average precision 0.8765; at the threshold ...`, when
/// there is ground truth.
pub fn detection_line(m: &Metrics) -> Option<String> {
    let d = m.detection.as_ref()?;
    let at = &d.at_threshold;
    Some(format!(
        "AUROC {:.4}, average precision {:.4} ({} true anomalies of {}); at the threshold: precision {:.3}, recall {:.3}, F1 {:.3} (best F1 {:.3} at {})",
        d.auroc,
        d.average_precision,
        d.true_anomalies,
        d.true_anomalies + d.true_normal,
        at.precision,
        at.recall,
        at.f1,
        d.best_f1.f1,
        readable(d.best_f1.threshold, 6)
    ))
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
        let summary = summarize(&scores).expect("summary");
        let m = compute(&cfg, 0.4, summary, &scores, Some(&labels), None, &flags);
        assert_eq!((m.images, m.anomalies), (5, 3));
        assert!((m.anomaly_rate - 0.6).abs() < 1e-12);
        assert_eq!(
            m.per_label,
            vec![
                LabelCounts {
                    label: 1,
                    name: None,
                    images: 2,
                    anomalies: 1,
                    anomaly_rate: 0.5
                },
                LabelCounts {
                    label: 2,
                    name: None,
                    images: 3,
                    anomalies: 2,
                    anomaly_rate: 2.0 / 3.0
                },
            ]
        );
        // Ties keep index order.
        assert_eq!(m.top_indices, vec![1, 3, 2, 4, 0]);
        assert_eq!(m.parameter, 2.0);
        assert!(
            found_line(&m).starts_with("Found 3 anomalies! (3 of 5 test images, 60.00 %; threshold 0.400000 = 2 × the mean MSE of the test split)"),
            "{}",
            found_line(&m)
        );
        assert_eq!(detection_line(&m), None);
        // Named classes carry their names; unlabelled images give no table.
        let names = ["bad".to_string(), "cut".to_string(), "good".to_string()];
        let m = compute(
            &cfg,
            0.4,
            summary,
            &scores,
            Some(&labels),
            Some(&names),
            &flags,
        );
        let shown: Vec<String> = m.per_label.iter().map(LabelCounts::shown).collect();
        assert_eq!(shown, ["cut", "good"]);
        let m = compute(&cfg, 0.4, summary, &scores, None, None, &flags);
        assert_eq!((m.per_label.len(), m.anomalies), (0, 3));
    }

    #[test]
    fn at_most_the_report_s_maximum_of_top_indices() {
        let scores: Vec<f32> = (0..250).map(|i| i as f32).collect();
        let labels = vec![0; 250];
        let flags = vec![false; 250];
        let summary = summarize(&scores).expect("summary");
        let m = compute(
            &EvalConfig::default(),
            1e9,
            summary,
            &scores,
            Some(&labels),
            None,
            &flags,
        );
        assert_eq!(m.top_indices.len(), TOP_INDICES);
        assert_eq!(m.top_indices[0], 249);
    }
}
