//! Ground truth: the one-class protocol (on synthetic images given as the
//! user's own IDX files), out-of-distribution outliers (on the real
//! datasets), and the detection metrics they make possible.

use std::fs;
use std::io::Read;
use std::path::Path;

use safetensors::SafeTensors;

use crate::support::{
    SYNTH, SYNTH_TEST, SYNTH_TRAIN, Sandbox, bool_column, f32_column, read_parquet, real_data,
    split_pixels, synthetic_digits,
};

/// The tensors of a split file: (labels, is_outlier), checking their shapes.
fn split(path: &Path) -> (Vec<u8>, Option<Vec<u8>>, Vec<f32>) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let tensors = SafeTensors::deserialize(&bytes).expect("a safetensors file");
    let labels = tensors.tensor("labels").expect("labels").data().to_vec();
    let truth = tensors.tensor("is_outlier").ok().map(|t| {
        assert_eq!(t.shape(), [labels.len()]);
        t.data().to_vec()
    });
    (labels, truth, split_pixels(&bytes))
}

/// The raw bytes of a gzip IDX file under the data root.
fn idx(data: &Path, file: &str) -> Vec<u8> {
    let gz = fs::File::open(data.join(file)).expect("dataset file");
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut bytes)
        .expect("gzip");
    bytes
}

#[test]
fn one_class_training_keeps_exactly_the_normal_labels() {
    let sandbox = Sandbox::synthetic();
    let args = [
        "stage",
        "data",
        SYNTH,
        "--set",
        "data.normal_labels=[3, 8]",
        "--set",
        "data.test_limit=200",
    ];
    sandbox.ae(&args, None).assert_ok();
    let run = sandbox.path().join("runs/synth");
    let (train, train_truth, train_images) = split(&run.join("data/train.safetensors"));
    // Image i has label i % 10: a tenth of the images are threes, a tenth eights.
    assert_eq!(train.len(), SYNTH_TRAIN / 5);
    assert!(train.iter().all(|&l| l == 3 || l == 8));
    assert_eq!(train_truth, None, "the training split has no ground truth");
    // They are the dataset's own images, in order: the first is training image 3.
    let (pixels, _) = synthetic_digits(SYNTH_TRAIN, 1);
    let third: Vec<f32> = pixels[3 * 784..4 * 784]
        .iter()
        .map(|&p| f32::from(p) / 255.0)
        .collect();
    assert_eq!(train_images[..784], third[..]);

    let (test, truth, _) = split(&run.join("data/test.safetensors"));
    assert_eq!(test.len(), 200, "every test image is kept");
    let truth = truth.expect("the test split has ground truth");
    for (label, outlier) in test.iter().zip(&truth) {
        assert_eq!(*outlier == 1, *label != 3 && *label != 8, "label {label}");
    }
}

#[test]
fn fashion_outliers_join_the_test_split_and_are_scored() {
    let Some(data) = real_data("fashion_outliers_join_the_test_split_and_are_scored") else {
        return;
    };
    let sandbox = Sandbox::new();
    let args = [
        "pipeline",
        "configs/ood-fashion.toml",
        "--set",
        "data.train_limit=3000",
        "--set",
        "data.test_limit=600",
        "--set",
        "data.outliers.count=400",
        "--set",
        "train.epochs=3",
    ];
    let run = sandbox.ae(&args, Some(&data));
    run.assert_ok();
    assert!(run.stdout.contains("AUROC "), "{}", run.stdout);
    let dir = sandbox.path().join("runs/ood-fashion");
    let (labels, truth, images) = split(&dir.join("data/test.safetensors"));
    assert_eq!(labels.len(), 1000);
    let truth = truth.expect("ground truth");
    assert!(
        truth[..600].iter().all(|&t| t == 0),
        "MNIST images are normal"
    );
    assert!(
        truth[600..].iter().all(|&t| t == 1),
        "Fashion-MNIST images are anomalies"
    );
    // The appended images are Fashion-MNIST's first test images, with their
    // classes as labels 10–19.
    let fashion_labels = idx(&data, "fashion-mnist/t10k-labels-idx1-ubyte.gz");
    let shifted: Vec<u8> = fashion_labels[8..408].iter().map(|l| l + 10).collect();
    assert_eq!(labels[600..], shifted[..]);
    let fashion = idx(&data, "fashion-mnist/t10k-images-idx3-ubyte.gz");
    let first: Vec<f32> = fashion[16..16 + 784]
        .iter()
        .map(|&p| f32::from(p) / 255.0)
        .collect();
    assert_eq!(images[600 * 784..601 * 784], first[..]);

    let metrics: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("eval/metrics.json")).expect("metrics.json"))
            .expect("json");
    let detection = &metrics["detection"];
    assert_eq!(detection["true_anomalies"], 400);
    assert_eq!(detection["true_normal"], 600);
    let auroc = detection["auroc"].as_f64().expect("auroc");
    assert!((0.5..=1.0).contains(&auroc), "{auroc}");
    let at = &detection["at_threshold"];
    let flagged = at["true_positives"].as_u64().expect("a count")
        + at["false_positives"].as_u64().expect("a count");
    assert_eq!(flagged, metrics["anomalies"].as_u64().expect("a count"));
    // The scores table carries the ground truth beside the flags.
    let frame = read_parquet(&dir.join("eval/scores.parquet"));
    let outliers = bool_column(&frame, "is_outlier");
    assert_eq!(outliers.iter().filter(|&&o| o).count(), 400);
    for figure in ["roc.png", "precision_recall.png", "score_distributions.png"] {
        assert!(dir.join("report").join(figure).is_file(), "{figure}");
    }
    let page = fs::read_to_string(dir.join("report/index.html")).expect("page");
    assert!(page.contains("AUROC, average precision"), "{page}");
    // Per-label counts keep digits and clothing apart.
    let per_label = metrics["per_label"].as_array().expect("per_label");
    let images = |range: std::ops::Range<u64>| -> u64 {
        per_label
            .iter()
            .filter(|l| range.contains(&l["label"].as_u64().expect("label")))
            .map(|l| l["images"].as_u64().expect("images"))
            .sum()
    };
    assert_eq!((images(0..10), images(10..20)), (600, 400));
}

#[test]
fn a_test_split_without_anomalies_gets_no_detection_metrics_and_says_why() {
    let sandbox = Sandbox::synthetic();
    // The first test image is a 0: with only 0 normal, the one image is normal.
    let args = [
        "pipeline",
        SYNTH,
        "--set",
        "data.normal_labels=[0]",
        "--set",
        "data.test_limit=1",
        "--set",
        "train.epochs=1",
    ];
    let run = sandbox.ae(&args, None);
    run.assert_ok();
    assert!(
        run.stderr
            .contains("no detection metrics: the ground truth has 0 anomalies and 1 normal images"),
        "{}",
        run.stderr
    );
    let dir = sandbox.path().join("runs/synth");
    let metrics = fs::read_to_string(dir.join("eval/metrics.json")).expect("metrics");
    assert!(!metrics.contains("auroc"), "{metrics}");
    // The curves are undefined: the operating points file has its header only.
    let roc = fs::read_to_string(dir.join("eval/roc.csv")).expect("roc.csv");
    assert_eq!(roc.lines().count(), 1, "{roc}");
    assert!(dir.join("report/roc.png").is_file());
}

#[test]
fn one_class_metrics_and_curves_agree_with_the_scores() {
    let sandbox = Sandbox::synthetic();
    let run = sandbox.ae(
        &["pipeline", SYNTH, "--set", "data.normal_labels=[2]"],
        None,
    );
    run.assert_ok();
    assert!(run.stdout.contains("AUROC "), "{}", run.stdout);
    let dir = sandbox.path().join("runs/synth");
    let frame = read_parquet(&dir.join("eval/scores.parquet"));
    let mse = f32_column(&frame, "mse");
    let truth = bool_column(&frame, "is_outlier");
    assert_eq!(mse.len(), SYNTH_TEST);
    // AUROC by counting pairs, independently of eval's ranking.
    let (mut correct, mut pairs) = (0.0, 0.0);
    for (a, &ta) in mse.iter().zip(&truth) {
        for (b, &tb) in mse.iter().zip(&truth) {
            if ta && !tb {
                pairs += 1.0;
                correct += if a > b {
                    1.0
                } else if a == b {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    let metrics: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("eval/metrics.json")).expect("metrics"))
            .expect("json");
    let auroc = metrics["detection"]["auroc"].as_f64().expect("auroc");
    assert!(
        (auroc - correct / pairs).abs() < 1e-12,
        "{auroc} vs {}",
        correct / pairs
    );
    // The curve's last point flags everything; its points fall in score.
    let roc = fs::read_to_string(dir.join("eval/roc.csv")).expect("roc.csv");
    let points: Vec<Vec<f64>> = roc
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().expect("a number")).collect())
        .collect();
    assert!(points.windows(2).all(|w| w[0][0] > w[1][0]));
    assert_eq!(points.last().map(|p| (p[1], p[2])), Some((1.0, 1.0)));
    for figure in ["roc.png", "precision_recall.png", "score_distributions.png"] {
        assert!(dir.join("report").join(figure).is_file(), "{figure}");
    }
}
