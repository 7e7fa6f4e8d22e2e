//! The eval stage on a small synthetic run directory, through its contract.

use ae_eval::{EvalConfig, EvalStage, StageConfig, ThresholdRule, ThresholdSource};
use ae_store::{
    Env, IMAGE_PIXELS, Metrics, PipelineStage, RocCurve, RunDir, SplitLabels, TensorOut, files,
    split_images_tensor, write_images, write_split,
};
use ae_tables::ScoresTable;
use ae_tables::polars::prelude::DataType;

/// Writes a split of `n` images whose image i has every pixel 0.5, and
/// reconstructions whose image i is off by `errors[i]` on every pixel (so
/// its MSE is `errors[i]²`).
fn write_split_and_reconstructions(
    run: &RunDir,
    split: &str,
    decoded: &str,
    errors: &[f32],
    labels: &[u8],
    truth: Option<&[bool]>,
) {
    let n = errors.len();
    let images = vec![0.5f32; n * IMAGE_PIXELS];
    let (name, shape) = split_images_tensor(n);
    write_split(
        &run.path(split),
        TensorOut::f32(name, shape, &images),
        SplitLabels {
            labels: Some(labels),
            names: None,
            is_outlier: truth,
        },
    )
    .expect("split");
    let recon: Vec<f32> = errors
        .iter()
        .flat_map(|&e| std::iter::repeat_n(0.5 + e, IMAGE_PIXELS))
        .collect();
    write_images(&run.path(decoded), &recon).expect("decoded");
    if !run.path(files::MODEL).exists() {
        ae_model::Params::glorot(LATENT, 1)
            .expect("init")
            .save(&run.path(files::MODEL))
            .expect("model");
    }
}

/// The latent size of the model the tests' detectors hold.
const LATENT: usize = 8;

fn env() -> Env {
    Env {
        data_root: "unused".into(),
        threads: None,
    }
}

fn eval(eval: EvalConfig, run: &RunDir) -> Result<Metrics, ae_eval::EvalError> {
    let cfg = StageConfig {
        eval,
        ground_truth: false,
        latent: LATENT,
    };
    EvalStage::run(&cfg, &env(), run).map(|outcome| outcome.metrics)
}

#[test]
fn writes_scores_and_metrics_that_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = RunDir::new(dir.path());
    // MSE = e²: 0.01, 0.04, 0.01, 0.16, 0.0 → mean 0.044, threshold 0.088: only image 3.
    let errors = [0.1, 0.2, 0.1, 0.4, 0.0];
    let labels = [3, 1, 3, 7, 1];
    write_split_and_reconstructions(
        &run,
        files::TEST_SPLIT,
        files::DECODED,
        &errors,
        &labels,
        None,
    );

    let m = eval(EvalConfig::default(), &run).expect("eval");
    assert!((m.threshold - 0.088).abs() < 1e-6, "{}", m.threshold);
    assert_eq!((m.images, m.anomalies), (5, 1));
    assert_eq!(m.top_indices, vec![3, 1, 0, 2, 4]);

    let frame = ScoresTable::read(&run.path(files::SCORES))
        .expect("scores")
        .frame()
        .expect("frame");
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
    let table = ScoresTable::read(&run.path(files::SCORES)).expect("scores");
    assert_eq!(table.labels, Some(labels.to_vec()));
    for (i, (&s, &f)) in table.values.iter().zip(&table.is_anomaly).enumerate() {
        assert!((s - errors[i] * errors[i]).abs() < 1e-6, "row {i}: {s}");
        assert_eq!(f, f64::from(s) > m.threshold, "row {i}");
    }

    // metrics.json holds exactly what the stage returned.
    assert_eq!(Metrics::load(&run.path(files::METRICS)).expect("load"), m);

    // The detector holds the trained weights and, in its metadata, the
    // threshold and the scores it was set from, as any safetensors reader sees.
    let detector = run.path(files::DETECTOR);
    let bytes = std::fs::read(&detector).expect("detector");
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).expect("safetensors");
    let metadata: std::collections::BTreeMap<String, String> = header
        .metadata()
        .clone()
        .expect("metadata")
        .into_iter()
        .collect();
    assert_eq!(metadata["format"], "ae-detector");
    assert_eq!(
        metadata["threshold"].parse::<f64>().expect("number"),
        m.threshold
    );
    let info = ae_store::DetectorInfo::from_metadata(&detector, &metadata).expect("info");
    assert_eq!(info.source_scores, m.source_scores);
    assert_eq!(
        info.model_sha256,
        ae_store::sha256_file(&run.path(files::MODEL)).expect("hash")
    );
    let (params, _) =
        ae_model::Params::load_with_metadata(&detector, |_| Ok((LATENT, ()))).expect("weights");
    assert_eq!(
        params,
        ae_model::Params::load(&run.path(files::MODEL), LATENT).expect("model")
    );
    let json = std::fs::read_to_string(run.path(files::METRICS)).expect("metrics.json");
    let value: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(value["rule"], "mean_multiple");
    assert_eq!(value["per_label"][2]["label"], 7);
    assert_eq!(value["per_label"][2]["anomalies"], 1);
    assert!(
        !run.path(files::ROC).exists(),
        "no curve without ground truth"
    );
}

#[test]
fn with_ground_truth_the_curve_is_written_and_the_outputs_are_as_declared() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = RunDir::new(dir.path());
    let errors = [0.1, 0.2, 0.3, 0.4];
    let truth = [false, true, false, true];
    write_split_and_reconstructions(
        &run,
        files::TEST_SPLIT,
        files::DECODED,
        &errors,
        &[0; 4],
        Some(&truth),
    );
    let cfg = StageConfig {
        eval: EvalConfig::default(),
        ground_truth: true,
        latent: LATENT,
    };
    let outcome = EvalStage::run(&cfg, &env(), &run).expect("eval");
    let detection = outcome.metrics.detection.expect("both classes");
    // Pairs (anomaly above normal): 0.2>0.1, 0.4>0.1, 0.4>0.3 of four.
    assert!((detection.auroc - 0.75).abs() < 1e-12);
    let curve = RocCurve::load(&run.path(files::ROC)).expect("curve");
    assert_eq!(curve.points.len(), 4);
    assert_eq!(curve.points[0].true_positive_rate, 0.5);
    let table = ScoresTable::read(&run.path(files::SCORES)).expect("scores");
    assert_eq!(table.is_outlier.as_deref(), Some(&truth[..]));
    for output in EvalStage::outputs(&cfg) {
        assert!(run.path(&output).is_file(), "{output}");
    }
    let lines = ae_store::StageOutcome::result_lines(&ae_eval::EvalOutcome {
        metrics: Metrics::load(&run.path(files::METRICS)).expect("metrics"),
    });
    assert!(lines[0].starts_with("Found "), "{lines:?}");
    assert!(lines[1].starts_with("AUROC 0.7500"), "{lines:?}");
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
        None,
    );
    // Training MSEs 0.01 and 0.09: the 50th percentile is 0.05.
    write_split_and_reconstructions(
        &run,
        files::TRAIN_SPLIT,
        files::TRAIN_DECODED,
        &[0.1, 0.3],
        &[0, 1],
        None,
    );
    let cfg = EvalConfig {
        rule: ThresholdRule::Percentile,
        q: Some(50.0),
        source: ThresholdSource::Train,
        ..EvalConfig::default()
    };
    let m = eval(cfg, &run).expect("eval");
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
        None,
    );
    write_images(&run.path(files::DECODED), &vec![0.0f32; 3 * IMAGE_PIXELS]).expect("decoded");
    let err = eval(EvalConfig::default(), &run)
        .expect_err("mismatch")
        .to_string();
    assert!(
        err.contains("holds 3 images but") && err.contains("holds 2"),
        "{err}"
    );
    assert!(err.contains("rerun the infer stage"), "{err}");
    assert!(!run.path(files::SCORES).exists(), "nothing written");
}

#[test]
fn the_mae_score_names_its_column_and_sets_the_threshold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = RunDir::new(dir.path());
    // MAE = |e|: 0.1, 0.2, 0.1, 0.4, 0.0 → mean 0.16, threshold 0.32: only image 3.
    let errors = [0.1, 0.2, 0.1, 0.4, 0.0];
    write_split_and_reconstructions(
        &run,
        files::TEST_SPLIT,
        files::DECODED,
        &errors,
        &[0; 5],
        None,
    );
    let cfg = EvalConfig {
        score: ae_eval::Score::Mae,
        ..EvalConfig::default()
    };
    let m = eval(cfg, &run).expect("eval");
    assert!((m.threshold - 0.32).abs() < 1e-6, "{}", m.threshold);
    assert_eq!(m.anomalies, 1);
    let found = ae_eval::metrics::found_line(&m);
    assert!(found.contains("2 × the mean MAE"), "{found}");
    let table = ScoresTable::read(&run.path(files::SCORES)).expect("scores");
    assert_eq!(table.score, ae_eval::Score::Mae);
    let names: Vec<String> = table
        .frame()
        .expect("frame")
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    assert_eq!(
        names,
        ScoresTable::columns(ae_eval::Score::Mae, true, false)
    );
    for (got, e) in table.values.iter().zip(errors) {
        assert!((got - e).abs() < 1e-6, "{got} vs {e}");
    }
}

/// Regression: NaN reconstructions gave `Found 0 anomalies! … threshold NaN`
/// and exit 0.
#[test]
fn scores_that_are_not_finite_stop_eval_with_the_count_and_first_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = RunDir::new(dir.path());
    write_split_and_reconstructions(
        &run,
        files::TEST_SPLIT,
        files::DECODED,
        &[0.1, 0.2, 0.3, 0.4],
        &[0; 4],
        None,
    );
    let mut recon = vec![0.5f32; 4 * IMAGE_PIXELS];
    recon[2 * IMAGE_PIXELS + 7] = f32::NAN;
    recon[3 * IMAGE_PIXELS] = f32::INFINITY;
    write_images(&run.path(files::DECODED), &recon).expect("decoded");
    let err = eval(EvalConfig::default(), &run)
        .expect_err("not finite")
        .to_string();
    assert!(
        err.contains("2 of 4 images") && err.contains("(the first: image 2)"),
        "{err}"
    );
    assert!(!run.path(files::METRICS).exists(), "nothing written");
}
