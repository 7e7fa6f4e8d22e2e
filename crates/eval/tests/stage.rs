//! The eval stage on a small synthetic run directory.

use ae_eval::polars::prelude::*;
use ae_eval::{EvalConfig, Metrics, ThresholdRule, ThresholdSource, read_parquet};
use ae_store::{
    IMAGE_PIXELS, RunDir, TensorOut, files, split_images_tensor, write_split, write_tensors,
};

/// Writes a split of `n` images whose image i has every pixel 0.5, and
/// reconstructions whose image i is off by `errors[i]` on every pixel (so
/// its MSE is `errors[i]²`).
fn write_split_and_reconstructions(
    run: &RunDir,
    split: &str,
    decoded: &str,
    errors: &[f32],
    labels: &[u8],
) {
    let n = errors.len();
    let images = vec![0.5f32; n * IMAGE_PIXELS];
    let (name, shape) = split_images_tensor(n);
    write_split(
        &run.path(split),
        TensorOut::f32(name, shape, &images),
        labels,
        None,
    )
    .expect("split");
    let recon: Vec<f32> = errors
        .iter()
        .flat_map(|&e| std::iter::repeat_n(0.5 + e, IMAGE_PIXELS))
        .collect();
    write_tensors(
        &run.path(decoded),
        &[TensorOut::f32("images", vec![n, IMAGE_PIXELS], &recon)],
    )
    .expect("decoded");
}

/// The values of f32 column `name`.
fn f32_column(frame: &ae_eval::polars::prelude::DataFrame, name: &str) -> Vec<f32> {
    frame
        .column(name)
        .unwrap_or_else(|_| panic!("no column {name}"))
        .f32()
        .expect("f32")
        .into_no_null_iter()
        .collect()
}

#[test]
fn writes_scores_and_metrics_that_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = RunDir::new(dir.path());
    // MSE = e²: 0.01, 0.04, 0.01, 0.16, 0.0 → mean 0.044, threshold 0.088: only image 3.
    let errors = [0.1, 0.2, 0.1, 0.4, 0.0];
    let labels = [3, 1, 3, 7, 1];
    write_split_and_reconstructions(&run, files::TEST_SPLIT, files::DECODED, &errors, &labels);

    let artifacts = ae_eval::run(&EvalConfig::default(), &run).expect("eval");
    let m = &artifacts.metrics;
    assert!((m.threshold - 0.088).abs() < 1e-6, "{}", m.threshold);
    assert_eq!((m.images, m.anomalies), (5, 1));
    assert_eq!(m.top_indices, vec![3, 1, 0, 2, 4]);

    let frame = read_parquet(&run.path(files::SCORES)).expect("parquet");
    assert_eq!(frame.height(), 5);
    let dtypes: Vec<(String, DataType)> = frame
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.dtype().clone()))
        .collect();
    assert_eq!(
        dtypes,
        [
            ("index".to_string(), DataType::UInt32),
            ("label".to_string(), DataType::UInt8),
            ("mse".to_string(), DataType::Float32),
            ("is_anomaly".to_string(), DataType::Boolean),
        ]
    );
    let index: Vec<u32> = frame
        .column("index")
        .expect("index")
        .u32()
        .expect("u32")
        .into_no_null_iter()
        .collect();
    assert_eq!(index, [0, 1, 2, 3, 4]);
    let label: Vec<u8> = frame
        .column("label")
        .expect("label")
        .u8()
        .expect("u8")
        .into_no_null_iter()
        .collect();
    assert_eq!(label, labels);
    let mse = f32_column(&frame, "mse");
    let flags: Vec<bool> = frame
        .column("is_anomaly")
        .expect("flag")
        .bool()
        .expect("bool")
        .iter()
        .map(|f| f.expect("no nulls"))
        .collect();
    for (i, (&s, &f)) in mse.iter().zip(&flags).enumerate() {
        assert!((s - errors[i] * errors[i]).abs() < 1e-6, "row {i}: {s}");
        assert_eq!(f, f64::from(s) > m.threshold, "row {i}");
    }

    // metrics.json holds exactly what `run` returned.
    let json = std::fs::read_to_string(run.path(files::METRICS)).expect("metrics.json");
    let written: Metrics = serde_json::from_str(&json).expect("parses");
    assert_eq!(&written, m);
    let value: serde_json::Value = serde_json::from_str(&json).expect("json");
    for key in [
        "rule",
        "parameter",
        "source",
        "threshold",
        "score",
        "scores",
        "anomalies",
        "anomaly_rate",
        "per_label",
        "top_indices",
    ] {
        assert!(value.get(key).is_some(), "metrics.json lacks {key}");
    }
    assert_eq!(value["rule"], "mean_multiple");
    assert_eq!(value["per_label"][2]["label"], 7);
    assert_eq!(value["per_label"][2]["anomalies"], 1);
}

#[test]
fn a_threshold_from_the_training_split_applies_to_the_test_split() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = RunDir::new(dir.path());
    write_split_and_reconstructions(
        &run,
        files::TEST_SPLIT,
        files::DECODED,
        &[0.1, 0.3, 0.5],
        &[0, 1, 2],
    );
    // Training MSEs 0.01 and 0.09: the 50th percentile is 0.05.
    write_split_and_reconstructions(
        &run,
        files::TRAIN_SPLIT,
        files::TRAIN_DECODED,
        &[0.1, 0.3],
        &[0, 1],
    );
    let cfg = EvalConfig {
        rule: ThresholdRule::Percentile,
        q: Some(50.0),
        source: ThresholdSource::Train,
        ..EvalConfig::default()
    };
    let m = ae_eval::run(&cfg, &run).expect("eval").metrics;
    assert!((m.threshold - 0.05).abs() < 1e-6, "{}", m.threshold);
    assert_eq!(m.anomalies, 2, "test MSEs 0.09 and 0.25 are above 0.05");
    assert!((m.source_scores.mean - 0.05).abs() < 1e-6);
}

#[test]
fn reconstructions_of_another_size_are_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = RunDir::new(dir.path());
    write_split_and_reconstructions(
        &run,
        files::TEST_SPLIT,
        files::DECODED,
        &[0.1, 0.2],
        &[0, 1],
    );
    let recon = vec![0.0f32; 3 * IMAGE_PIXELS];
    write_tensors(
        &run.path(files::DECODED),
        &[TensorOut::f32("images", vec![3, IMAGE_PIXELS], &recon)],
    )
    .expect("decoded");
    let err = ae_eval::run(&EvalConfig::default(), &run)
        .expect_err("mismatch")
        .to_string();
    assert!(
        err.contains("holds 3 images but") && err.contains("holds 2"),
        "{err}"
    );
    assert!(err.contains("rerun the infer stage"), "{err}");
}

#[test]
fn the_mae_score_names_its_column_and_sets_the_threshold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = RunDir::new(dir.path());
    // MAE = |e|: 0.1, 0.2, 0.1, 0.4, 0.0 → mean 0.16, threshold 0.32: only image 3.
    let errors = [0.1, 0.2, 0.1, 0.4, 0.0];
    write_split_and_reconstructions(&run, files::TEST_SPLIT, files::DECODED, &errors, &[0; 5]);
    let cfg = EvalConfig {
        score: ae_eval::Score::Mae,
        ..EvalConfig::default()
    };
    let m = ae_eval::run(&cfg, &run).expect("eval").metrics;
    assert!((m.threshold - 0.32).abs() < 1e-6, "{}", m.threshold);
    assert_eq!(m.anomalies, 1);
    assert!(
        m.found_line().contains("2 × the mean MAE"),
        "{}",
        m.found_line()
    );
    let frame = read_parquet(&run.path(files::SCORES)).expect("parquet");
    let names: Vec<String> = frame
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    assert_eq!(names, ae_eval::columns(ae_eval::Score::Mae, false));
    let mae = f32_column(&frame, "mae");
    for (got, e) in mae.iter().zip(errors) {
        assert!((got - e).abs() < 1e-6, "{got} vs {e}");
    }
}
