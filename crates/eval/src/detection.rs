//! How well the scores find the anomalies the ground truth names: AUROC,
//! average precision, the confusion counts at the threshold, and the
//! threshold with the best F1. Pure functions; a higher score means "more
//! anomalous", and an image is flagged when its score is above the threshold.

use ae_store::{Confusion, Detection, OperatingPoint, RocCurve};

/// The ground truth has only one class, so ranking metrics are undefined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the ground truth has {anomalies} anomalies and {normal} normal images; AUROC and average precision need at least one of each (use more test images, or other data.normal_labels)"
)]
pub struct OneClass {
    /// Anomalies in the ground truth.
    pub anomalies: usize,
    /// Normal images in the ground truth.
    pub normal: usize,
}

/// Every metric of `scores` against `truth`, with the configured `threshold`.
pub fn evaluate(scores: &[f32], truth: &[bool], threshold: f64) -> Result<Detection, OneClass> {
    let ranked = Ranked::new(scores, truth)?;
    Ok(Detection {
        true_anomalies: ranked.positives,
        true_normal: ranked.negatives,
        auroc: ranked.auroc(),
        average_precision: ranked.average_precision(),
        at_threshold: confusion(scores, truth, threshold),
        best_f1: ranked.best_f1(scores, truth),
    })
}

/// Area under the ROC curve of `scores` against `truth`.
pub fn auroc(scores: &[f32], truth: &[bool]) -> Result<f64, OneClass> {
    Ranked::new(scores, truth).map(|r| r.auroc())
}

/// Average precision of `scores` against `truth`.
pub fn average_precision(scores: &[f32], truth: &[bool]) -> Result<f64, OneClass> {
    Ranked::new(scores, truth).map(|r| r.average_precision())
}

/// The operating points as the threshold falls through the distinct scores
/// (the ROC and precision-recall curves); empty when the ground truth has
/// only one class.
pub fn roc_curve(scores: &[f32], truth: &[bool]) -> RocCurve {
    Ranked::new(scores, truth).map_or_else(|_| RocCurve::default(), |r| r.curve())
}

/// The counts when images scoring above `threshold` are flagged.
pub fn confusion(scores: &[f32], truth: &[bool], threshold: f64) -> Confusion {
    let (mut tp, mut fp, mut tn, mut fn_) = (0, 0, 0, 0);
    for (&score, &anomaly) in scores.iter().zip(truth) {
        match (f64::from(score) > threshold, anomaly) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, false) => tn += 1,
            (false, true) => fn_ += 1,
        }
    }
    counts(threshold, tp, fp, tn, fn_)
}

fn counts(threshold: f64, tp: usize, fp: usize, tn: usize, fn_: usize) -> Confusion {
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Confusion {
        threshold,
        true_positives: tp,
        false_positives: fp,
        true_negatives: tn,
        false_negatives: fn_,
        precision: ratio(tp, tp + fp),
        recall: ratio(tp, tp + fn_),
        f1: ratio(2 * tp, 2 * tp + fp + fn_),
    }
}

/// The images in descending score order, grouped by equal score.
struct Ranked {
    /// (score, anomalies, normal images) per distinct score, highest first.
    groups: Vec<(f32, usize, usize)>,
    positives: usize,
    negatives: usize,
}

impl Ranked {
    fn new(scores: &[f32], truth: &[bool]) -> Result<Self, OneClass> {
        let positives = truth.iter().filter(|&&t| t).count();
        let negatives = truth.len() - positives;
        if positives == 0 || negatives == 0 {
            return Err(OneClass {
                anomalies: positives,
                normal: negatives,
            });
        }
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let mut groups: Vec<(f32, usize, usize)> = Vec::new();
        for i in order {
            let (pos, neg) = if truth[i] { (1, 0) } else { (0, 1) };
            match groups.last_mut() {
                Some(last) if last.0 == scores[i] => {
                    last.1 += pos;
                    last.2 += neg;
                }
                _ => groups.push((scores[i], pos, neg)),
            }
        }
        Ok(Self {
            groups,
            positives,
            negatives,
        })
    }

    /// Pairs (anomaly, normal) ordered correctly, ties counting one half,
    /// over all pairs.
    fn auroc(&self) -> f64 {
        let mut normal_below = self.negatives as f64;
        let mut correct = 0.0;
        for &(_, pos, neg) in &self.groups {
            normal_below -= neg as f64;
            correct += pos as f64 * (normal_below + 0.5 * neg as f64);
        }
        correct / (self.positives as f64 * self.negatives as f64)
    }

    /// Σ (recallₖ − recallₖ₋₁) · precisionₖ over the distinct scores.
    fn average_precision(&self) -> f64 {
        let (mut tp, mut fp, mut ap, mut previous_recall) = (0usize, 0usize, 0.0, 0.0);
        for &(_, pos, neg) in &self.groups {
            tp += pos;
            fp += neg;
            let recall = tp as f64 / self.positives as f64;
            ap += (recall - previous_recall) * tp as f64 / (tp + fp) as f64;
            previous_recall = recall;
        }
        ap
    }

    /// One operating point after each group of equal scores.
    fn curve(&self) -> RocCurve {
        let (mut tp, mut fp) = (0usize, 0usize);
        let points = self
            .groups
            .iter()
            .map(|&(score, pos, neg)| {
                tp += pos;
                fp += neg;
                OperatingPoint {
                    score: f64::from(score),
                    false_positive_rate: fp as f64 / self.negatives as f64,
                    true_positive_rate: tp as f64 / self.positives as f64,
                    precision: tp as f64 / (tp + fp) as f64,
                }
            })
            .collect();
        RocCurve { points }
    }

    /// The cut between distinct scores with the highest F1 (the highest
    /// threshold among equals), as a threshold halfway between them.
    fn best_f1(&self, scores: &[f32], truth: &[bool]) -> Confusion {
        let (mut tp, mut fp) = (0usize, 0usize);
        let mut best = (f64::NEG_INFINITY, 0usize);
        for (k, &(_, pos, neg)) in self.groups.iter().enumerate() {
            tp += pos;
            fp += neg;
            let f1 = 2.0 * tp as f64 / (tp + self.positives + fp) as f64;
            if f1 > best.0 {
                best = (f1, k);
            }
        }
        let lowest_flagged = f64::from(self.groups[best.1].0);
        let threshold = match self.groups.get(best.1 + 1) {
            Some(next) => (lowest_flagged + f64::from(next.0)) / 2.0,
            None => lowest_flagged - (lowest_flagged.abs() * 1e-6).max(1e-12),
        };
        confusion(scores, truth, threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: bool = true;
    const F: bool = false;

    #[test]
    fn matches_hand_computed_values() {
        // scikit-learn's documented example: roc_auc 0.75, AP 0.8333.
        let scores = [0.1, 0.4, 0.35, 0.8];
        let truth = [F, F, T, T];
        assert!((auroc(&scores, &truth).expect("defined") - 0.75).abs() < 1e-12);
        let ap = average_precision(&scores, &truth).expect("defined");
        assert!((ap - (0.5 * 1.0 + 0.5 * 2.0 / 3.0)).abs() < 1e-12, "{ap}");
    }

    #[test]
    fn ties_count_one_half() {
        // Pairs: (2,1) 1, (2,2) ½, (3,1) 1, (3,2) 1 → 3.5 / 4.
        let scores = [1.0, 2.0, 2.0, 3.0];
        let truth = [F, T, F, T];
        assert!((auroc(&scores, &truth).expect("defined") - 0.875).abs() < 1e-12);
        // Cut after 3: P 1, R ½; after the tied 2s: P ⅔, R 1.
        let ap = average_precision(&scores, &truth).expect("defined");
        assert!((ap - (0.5 + 0.5 * 2.0 / 3.0)).abs() < 1e-12, "{ap}");
        // All tied: no better than chance, whatever the order.
        let flat = [0.5; 4];
        assert!((auroc(&flat, &truth).expect("defined") - 0.5).abs() < 1e-12);
        assert!((average_precision(&flat, &truth).expect("defined") - 0.5).abs() < 1e-12);
    }

    #[test]
    fn perfect_and_reversed_rankings() {
        let scores = [0.1, 0.2, 0.3, 0.4];
        assert_eq!(auroc(&scores, &[F, F, T, T]).expect("defined"), 1.0);
        assert_eq!(
            average_precision(&scores, &[F, F, T, T]).expect("defined"),
            1.0
        );
        assert_eq!(auroc(&scores, &[T, T, F, F]).expect("defined"), 0.0);
    }

    #[test]
    fn the_curve_steps_through_tied_groups() {
        let curve = roc_curve(&[1.0, 2.0, 2.0, 3.0], &[F, T, F, T]);
        let points: Vec<(f64, f64, f64, f64)> = curve
            .points
            .iter()
            .map(|p| {
                (
                    p.score,
                    p.false_positive_rate,
                    p.true_positive_rate,
                    p.precision,
                )
            })
            .collect();
        assert_eq!(
            points,
            vec![
                (3.0, 0.0, 0.5, 1.0),
                (2.0, 0.5, 1.0, 2.0 / 3.0),
                (1.0, 1.0, 1.0, 0.5)
            ]
        );
        assert_eq!(roc_curve(&[1.0], &[T]), RocCurve::default());
    }

    #[test]
    fn one_class_is_an_error_not_a_panic() {
        let err = auroc(&[0.1, 0.2], &[F, F]).expect_err("one class");
        assert_eq!(
            err,
            OneClass {
                anomalies: 0,
                normal: 2
            }
        );
        assert!(err.to_string().contains("0 anomalies and 2 normal images"));
        assert!(evaluate(&[0.1], &[T], 0.0).is_err());
        assert!(auroc(&[], &[]).is_err());
    }

    #[test]
    fn confusion_and_the_best_f1_threshold() {
        let scores = [1.0, 2.0, 2.0, 3.0];
        let truth = [F, T, F, T];
        let at = confusion(&scores, &truth, 2.5);
        assert_eq!(
            (
                at.true_positives,
                at.false_positives,
                at.true_negatives,
                at.false_negatives
            ),
            (1, 0, 2, 1)
        );
        assert_eq!((at.precision, at.recall), (1.0, 0.5));
        assert!((at.f1 - 2.0 / 3.0).abs() < 1e-12);
        // Flagging 3 and both 2s: tp 2, fp 1, fn 0 → F1 0.8, the best; the
        // threshold sits between 2 and 1.
        let detection = evaluate(&scores, &truth, 2.5).expect("defined");
        assert_eq!(detection.best_f1.threshold, 1.5);
        assert!((detection.best_f1.f1 - 0.8).abs() < 1e-12);
        assert_eq!((detection.true_anomalies, detection.true_normal), (2, 2));
        // Nothing flagged: precision 0 by convention, not NaN.
        let none = confusion(&scores, &truth, 10.0);
        assert_eq!((none.precision, none.recall, none.f1), (0.0, 0.0, 0.0));
    }
}
