//! The pure core: per-image errors, their summary, and threshold rules.
//! No I/O here; every function is checked against hand-computed values.

use ae_store::{IMAGE_PIXELS, Score, Summary, ThresholdRule};

use crate::EvalConfig;

/// Each image's score under `score` (see [`per_image_mse`], [`per_image_mae`]).
pub fn per_image(score: Score, originals: &[f32], reconstructions: &[f32]) -> Vec<f32> {
    match score {
        Score::Mse => per_image_mse(originals, reconstructions),
        Score::Mae => per_image_mae(originals, reconstructions),
    }
}

/// Each image's mean squared reconstruction error over its 784 pixels, as the
/// seed's `np.mean(np.power(x_test - decoded_imgs, 2), axis=1)`; accumulated
/// in f64 and stored as f32.
///
/// # Panics
/// If the two do not have the same whole number of images (a caller bug;
/// `run` checks the files first).
pub fn per_image_mse(originals: &[f32], reconstructions: &[f32]) -> Vec<f32> {
    per_image_mean(originals, reconstructions, |d| d * d)
}

/// Each image's mean absolute reconstruction error over its 784 pixels,
/// `np.mean(np.abs(x_test - decoded_imgs), axis=1)`.
///
/// # Panics
/// As [`per_image_mse`].
pub fn per_image_mae(originals: &[f32], reconstructions: &[f32]) -> Vec<f32> {
    per_image_mean(originals, reconstructions, f64::abs)
}

fn per_image_mean(
    originals: &[f32],
    reconstructions: &[f32],
    error: impl Fn(f64) -> f64,
) -> Vec<f32> {
    assert_eq!(
        originals.len(),
        reconstructions.len(),
        "originals and reconstructions differ in size"
    );
    assert_eq!(
        originals.len() % IMAGE_PIXELS,
        0,
        "images come in rows of 784"
    );
    originals
        .chunks_exact(IMAGE_PIXELS)
        .zip(reconstructions.chunks_exact(IMAGE_PIXELS))
        .map(|(x, y)| {
            let sum: f64 = x
                .iter()
                .zip(y)
                .map(|(&a, &b)| error(f64::from(a - b)))
                .sum();
            (sum / IMAGE_PIXELS as f64) as f32
        })
        .collect()
}

/// Mean, median, population standard deviation and maximum of `scores`;
/// `None` when there are none.
pub fn summarize(scores: &[f32]) -> Option<Summary> {
    if scores.is_empty() {
        return None;
    }
    let n = scores.len() as f64;
    let mean = scores.iter().map(|&s| f64::from(s)).sum::<f64>() / n;
    let var = scores
        .iter()
        .map(|&s| (f64::from(s) - mean).powi(2))
        .sum::<f64>()
        / n;
    Some(Summary {
        mean,
        median: percentile(scores, 50.0),
        std: var.sqrt(),
        max: scores
            .iter()
            .fold(f64::NEG_INFINITY, |m, &s| m.max(f64::from(s))),
    })
}

/// The `q`-th percentile (0–100) with linear interpolation between the two
/// nearest ranks, NumPy's default method.
///
/// # Panics
/// If `scores` is empty.
pub fn percentile(scores: &[f32], q: f64) -> f64 {
    assert!(!scores.is_empty(), "the percentile of no scores");
    let mut sorted: Vec<f64> = scores.iter().map(|&s| f64::from(s)).collect();
    sorted.sort_by(f64::total_cmp);
    let rank = q / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

/// The anomaly threshold that `cfg`'s rule gives on `scores`.
///
/// # Panics
/// If `scores` is empty, or the rule's parameter is missing (validation
/// rejects both configs before this runs).
pub fn threshold(cfg: &EvalConfig, scores: &[f32]) -> f64 {
    let summary = summarize(scores).expect("scores to threshold");
    match cfg.rule {
        ThresholdRule::MeanMultiple => cfg.k * summary.mean,
        ThresholdRule::Percentile => {
            percentile(scores, cfg.q.expect("validated: percentile has q"))
        }
        ThresholdRule::MeanStd => summary.mean + cfg.k * summary.std,
        ThresholdRule::Value => cfg.value.expect("validated: value has value"),
    }
}

/// Whether each score is an anomaly: strictly above the threshold, as the
/// seed's `mse > error_threshold`.
pub fn flag(scores: &[f32], threshold: f64) -> Vec<bool> {
    scores.iter().map(|&s| f64::from(s) > threshold).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(rule: ThresholdRule) -> EvalConfig {
        EvalConfig {
            rule,
            ..EvalConfig::default()
        }
    }

    #[test]
    fn mse_is_the_mean_over_pixels_of_each_image() {
        let mut originals = vec![0.0f32; 2 * IMAGE_PIXELS];
        let mut recon = vec![0.0f32; 2 * IMAGE_PIXELS];
        // Image 0: one pixel off by 1 → 1/784. Image 1: every pixel off by 0.5 → 0.25.
        originals[3] = 1.0;
        for p in &mut recon[IMAGE_PIXELS..] {
            *p = 0.5;
        }
        assert_eq!(per_image_mse(&originals, &recon), vec![1.0 / 784.0, 0.25]);
        assert_eq!(per_image_mae(&originals, &recon), vec![1.0 / 784.0, 0.5]);
        assert_eq!(
            per_image(Score::Mae, &originals, &recon),
            per_image_mae(&originals, &recon)
        );
    }

    #[test]
    fn summary_by_hand() {
        // mean 2.5, median 2.5, population variance 1.25, max 4.
        let s = summarize(&[4.0, 1.0, 3.0, 2.0]).expect("summary");
        assert_eq!((s.mean, s.median, s.max), (2.5, 2.5, 4.0));
        assert!((s.std - 1.25f64.sqrt()).abs() < 1e-12);
        assert_eq!(summarize(&[]), None);
        assert_eq!(
            summarize(&[7.0]).map(|s| (s.median, s.std)),
            Some((7.0, 0.0))
        );
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        let scores = [10.0, 20.0, 30.0, 40.0, 50.0];
        // np.percentile([10,20,30,40,50], q): 0→10, 25→20, 90→46, 100→50, 12.5→15.
        for (q, expected) in [
            (0.0, 10.0),
            (25.0, 20.0),
            (90.0, 46.0),
            (100.0, 50.0),
            (12.5, 15.0),
        ] {
            assert!((percentile(&scores, q) - expected).abs() < 1e-9, "q = {q}");
        }
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
    }

    #[test]
    fn every_rule_by_hand() {
        let scores = [1.0, 2.0, 3.0, 4.0, 10.0]; // mean 4, population std √10
        let mean_multiple = EvalConfig {
            k: 2.0,
            ..cfg(ThresholdRule::MeanMultiple)
        };
        assert_eq!(threshold(&mean_multiple, &scores), 8.0);
        let mean_std = EvalConfig {
            k: 1.5,
            ..cfg(ThresholdRule::MeanStd)
        };
        assert!((threshold(&mean_std, &scores) - (4.0 + 1.5 * 10f64.sqrt())).abs() < 1e-12);
        let pct = EvalConfig {
            q: Some(75.0),
            ..cfg(ThresholdRule::Percentile)
        };
        assert_eq!(threshold(&pct, &scores), 4.0);
        let value = EvalConfig {
            value: Some(2.5),
            ..cfg(ThresholdRule::Value)
        };
        assert_eq!(threshold(&value, &scores), 2.5);
    }

    #[test]
    fn flags_strictly_above_the_threshold() {
        assert_eq!(flag(&[1.0, 2.0, 3.0], 2.0), vec![false, false, true]);
    }
}
