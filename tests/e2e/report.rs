//! Evaluation and the report, on synthetic images given as the user's own
//! IDX files.

use std::fs::{self, File};
use std::path::Path;

use crate::support::{
    SYNTH, SYNTH_TEST, SYNTH_TRAIN, Sandbox, bool_column, f32_column, f32s, read_parquet,
    split_pixels,
};

const FIGURES: [&str; 6] = [
    "reconstructions",
    "loss",
    "mse_hist",
    "top_anomalies",
    "top_error_maps",
    "anomaly_rate_by_label",
];

/// Decodes a PNG; returns its size and how many distinct colours it uses.
fn png_stats(path: &Path) -> (u32, u32, usize) {
    let decoder =
        png::Decoder::new(File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG pixels");
    let pixels = &buf[..info.buffer_size()];
    let mut colours: Vec<&[u8]> = pixels.chunks_exact(3).collect();
    colours.sort_unstable();
    colours.dedup();
    (info.width, info.height, colours.len())
}

#[test]
fn the_quick_pipeline_scores_flags_and_reports() {
    let sandbox = Sandbox::synthetic();
    let run = sandbox.ae(&["pipeline", SYNTH], None);
    run.assert_ok();
    let root = sandbox.path().join("runs/synth");

    // The seed's line, with the threshold, and where the report is.
    let found = run
        .stdout
        .lines()
        .find(|l| l.starts_with("Found "))
        .expect("a Found line");
    assert!(
        found.contains("anomalies! (") && found.contains("threshold"),
        "{found}"
    );
    assert!(
        run.stdout.contains("report: runs/synth/report/index.html"),
        "{}",
        run.stdout
    );

    // metrics.json and scores.parquet agree.
    let metrics: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(root.join("eval/metrics.json")).expect("metrics"))
            .expect("json");
    let threshold = metrics["threshold"].as_f64().expect("threshold");
    let mean = metrics["scores"]["mean"].as_f64().expect("mean");
    assert!(
        (threshold - 2.0 * mean).abs() < 1e-9,
        "the seed's rule: 2 × mean"
    );
    let anomalies = metrics["anomalies"].as_u64().expect("count") as usize;
    assert!(
        found.starts_with(&format!("Found {anomalies} anomalies!")),
        "{found}"
    );
    // As many of the highest as the report can show: the report's top-N.
    assert_eq!(metrics["top_indices"].as_array().expect("top").len(), 100);
    assert_eq!(metrics["per_label"].as_array().expect("labels").len(), 10);

    let frame = read_parquet(&root.join("eval/scores.parquet"));
    assert_eq!(frame.height(), SYNTH_TEST);
    let mse = f32_column(&frame, "mse");
    let flags = bool_column(&frame, "is_anomaly");
    assert_eq!(flags.iter().filter(|&&f| f).count(), anomalies);
    assert!(
        mse.iter()
            .zip(&flags)
            .all(|(&s, &f)| f == (f64::from(s) > threshold))
    );
    // The mean of the per-image scores is the final val_loss (both are the test MSE).
    let history = fs::read_to_string(root.join("train/history.csv")).expect("history");
    let val_loss: f64 = history
        .lines()
        .last()
        .and_then(|l| l.split(',').nth(2))
        .and_then(|v| v.parse().ok())
        .expect("val_loss");
    assert!(
        (mean - val_loss).abs() < 1e-6 * val_loss,
        "mean MSE {mean} vs val_loss {val_loss}"
    );

    // Every figure is a real picture of the expected size.
    let expected_sizes = [
        (1100, 266),
        (960, 540),
        (960, 540),
        (820, 454),
        (848, 1580),
        (960, 540),
    ];
    for (stem, (w, h)) in FIGURES.iter().zip(expected_sizes) {
        let (width, height, colours) = png_stats(&root.join(format!("report/{stem}.png")));
        assert_eq!((width, height), (w, h), "{stem}.png size");
        assert!(colours > 16, "{stem}.png looks blank: {colours} colours");
    }
    let page = fs::read_to_string(root.join("report/index.html")).expect("index.html");
    for stem in FIGURES {
        assert!(
            page.contains(&format!("<img src=\"{stem}.png\"")),
            "{stem} on the page"
        );
    }
    assert!(page.contains(&format!("Found {anomalies} anomalies!")));
    assert!(
        page.contains("name = &quot;synth&quot;"),
        "the resolved config is on the page"
    );
}

#[test]
fn the_report_can_be_svg_and_rerun_alone() {
    let sandbox = Sandbox::synthetic();
    let quick = [
        SYNTH,
        "--set",
        "train.epochs=1",
        "--set",
        "data.train_limit=1000",
    ];
    sandbox
        .ae(&[&["pipeline"][..], &quick].concat(), None)
        .assert_ok();
    let run = sandbox.ae(
        &[
            &["stage", "report"][..],
            &quick,
            &["--set", "report.format=svg"],
        ]
        .concat(),
        None,
    );
    run.assert_ok();
    let root = sandbox.path().join("runs/synth/report");
    for stem in FIGURES {
        let svg = fs::read_to_string(root.join(format!("{stem}.svg"))).expect("svg");
        assert!(
            svg.starts_with("<svg") && svg.contains("<text"),
            "{stem}.svg has text"
        );
    }
    let page = fs::read_to_string(root.join("index.html")).expect("index.html");
    assert!(page.contains("<img src=\"loss.svg\""));
}

#[test]
fn eval_and_report_need_their_inputs() {
    let sandbox = Sandbox::synthetic();
    sandbox.ae(&["stage", "eval", SYNTH], None).assert_error(&[
        "stage `eval` needs runs/synth/data/test.safetensors",
        "run `ae stage data configs/synth.toml` first",
    ]);
    sandbox
        .ae(&["stage", "report", SYNTH], None)
        .assert_error(&["stage `report` needs", "first"]);
}

#[test]
fn a_threshold_from_the_training_split() {
    let sandbox = Sandbox::synthetic();
    let args = [
        "pipeline",
        SYNTH,
        "--set",
        "eval.source=train",
        "--set",
        "eval.rule=percentile",
        "--set",
        "eval.q=99",
    ];
    let run = sandbox.ae(&args, None);
    run.assert_ok();
    assert!(
        run.stdout
            .contains("the 99th percentile of the MSE of the training split"),
        "{}",
        run.stdout
    );
    let root = sandbox.path().join("runs/synth");

    // The 99th percentile (linear interpolation) of the training images' MSE.
    let originals =
        split_pixels(&fs::read(root.join("data/train.safetensors")).expect("train split"));
    let decoded = f32s(
        &fs::read(root.join("infer/train_decoded.safetensors")).expect("train reconstructions"),
        "images",
    );
    assert_eq!(originals.len(), SYNTH_TRAIN * 784);
    let mut mse: Vec<f64> = originals
        .chunks_exact(784)
        .zip(decoded.chunks_exact(784))
        .map(|(x, y)| {
            x.iter()
                .zip(y)
                .map(|(a, b)| f64::from(a - b).powi(2))
                .sum::<f64>()
                / 784.0
        })
        .map(|m| f64::from(m as f32))
        .collect();
    mse.sort_by(f64::total_cmp);
    let rank = 0.99 * (mse.len() - 1) as f64;
    let (lo, frac) = (rank.floor() as usize, rank - rank.floor());
    let expected = mse[lo] + (mse[lo + 1] - mse[lo]) * frac;

    let metrics: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(root.join("eval/metrics.json")).expect("metrics"))
            .expect("json");
    assert_eq!(metrics["source"], "train");
    let threshold = metrics["threshold"].as_f64().expect("threshold");
    assert!(
        (threshold - expected).abs() < 1e-9,
        "threshold {threshold}, expected {expected}"
    );
}

#[test]
fn the_mae_score_runs_through_eval_and_report() {
    let sandbox = Sandbox::synthetic();
    let args = ["pipeline", SYNTH, "--set", "eval.score=mae"];
    let run = sandbox.ae(&args, None);
    run.assert_ok();
    assert!(
        run.stdout.contains("= 2 × the mean MAE of the test split"),
        "{}",
        run.stdout
    );
    let root = sandbox.path().join("runs/synth");
    let metrics: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(root.join("eval/metrics.json")).expect("metrics"))
            .expect("json");
    assert_eq!(metrics["score"], "mae");
    // The MAE of each image, recomputed from the split and its reconstructions.
    let originals =
        split_pixels(&fs::read(root.join("data/test.safetensors")).expect("test split"));
    let decoded = f32s(
        &fs::read(root.join("infer/decoded.safetensors")).expect("decoded"),
        "images",
    );
    let mae: Vec<f64> = originals
        .chunks_exact(784)
        .zip(decoded.chunks_exact(784))
        .map(|(x, y)| {
            x.iter()
                .zip(y)
                .map(|(a, b)| f64::from((a - b).abs()))
                .sum::<f64>()
                / 784.0
        })
        .collect();
    let mean = mae.iter().sum::<f64>() / mae.len() as f64;
    let threshold = metrics["threshold"].as_f64().expect("threshold");
    assert!(
        (threshold - 2.0 * mean).abs() < 1e-6,
        "{threshold} vs 2 × {mean}"
    );
    let frame = read_parquet(&root.join("eval/scores.parquet"));
    assert!(frame.column("mae").is_ok() && frame.column("mse").is_err());
    let page = fs::read_to_string(root.join("report/index.html")).expect("page");
    assert!(page.contains("Test MAE"), "the report names the score");
}

/// Regression: a threshold of 1e308 printed as 309 digits.
#[test]
fn an_extreme_threshold_prints_readably_and_still_draws() {
    let sandbox = Sandbox::synthetic();
    for value in ["1e308", "1.7e308"] {
        let run = sandbox.ae(
            &[
                "pipeline",
                SYNTH,
                "--set",
                "eval.rule=value",
                "--set",
                &format!("eval.value={value}"),
            ],
            None,
        );
        run.assert_ok();
        let found = run
            .stdout
            .lines()
            .find(|l| l.starts_with("Found "))
            .expect("a Found line");
        assert!(found.contains("e308 = a fixed value"), "{found}");
        assert!(found.len() < 200, "{found}");
        let page =
            fs::read_to_string(sandbox.path().join("runs/synth/report/index.html")).expect("page");
        assert!(
            page.contains("e308 (value"),
            "the page says it readably too"
        );
    }
}
