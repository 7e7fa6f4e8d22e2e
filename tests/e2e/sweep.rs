//! `ae sweep`: grids, the shared stage cache, shards and `--collect`, on
//! synthetic images given as the user's own IDX files.

use std::fs;
use std::path::Path;

use crate::support::{Run, Sandbox};

/// A 2 × 2 grid over the synthetic experiment, a little smaller still.
pub(crate) const GRID: &str = r#"
name = "grid"
base = "../configs/synth.toml"

[set]
data.train_limit = 1500
data.test_limit = 400

[grid]
model.latent = [16, 32]
seed = [0, 1]
"#;

pub(crate) const POINTS: [&str; 4] = [
    "latent=16,seed=0",
    "latent=16,seed=1",
    "latent=32,seed=0",
    "latent=32,seed=1",
];

fn sweep(sandbox: &Sandbox, args: &[&str]) -> Run {
    let run = sandbox.ae(&[&["sweep", "sweeps/grid.toml"][..], args].concat(), None);
    run.assert_ok();
    run
}

/// The records of `stage` in each point's manifest: (point, restored).
fn stage_records(runs: &Path, stage: &str) -> Vec<(String, bool)> {
    POINTS
        .iter()
        .map(|point| {
            let text = fs::read_to_string(runs.join("grid").join(point).join("manifest.json"))
                .expect("manifest");
            let manifest: serde_json::Value = serde_json::from_str(&text).expect("json");
            let record = &manifest["stages"][stage];
            assert_eq!(record["status"], "ok", "{point} {stage}");
            (
                point.to_string(),
                record["restored"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// The summary CSV's rows without the columns that measure time.
pub(crate) fn results(csv: &str) -> Vec<Vec<String>> {
    // Point names hold commas, so the writer quotes them.
    let cells = |line: &str| -> Vec<String> {
        match line.strip_prefix('"').and_then(|l| l.split_once("\",")) {
            Some((point, rest)) => std::iter::once(point)
                .chain(rest.split(','))
                .map(String::from)
                .collect(),
            None => line.split(',').map(String::from).collect(),
        }
    };
    let rows: Vec<Vec<String>> = csv.lines().map(cells).collect();
    let timed: Vec<usize> = rows[0]
        .iter()
        .enumerate()
        .filter(|(_, h)| h.contains("seconds"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(timed.len(), 2, "{:?}", rows[0]);
    rows.into_iter()
        .map(|row| {
            row.into_iter()
                .enumerate()
                .filter(|(i, _)| !timed.contains(i))
                .map(|(_, c)| c)
                .collect()
        })
        .collect()
}

#[test]
fn a_two_by_two_sweep_summarises_four_points_and_computes_the_data_once() {
    let sandbox = Sandbox::synthetic();
    sandbox.write("sweeps/grid.toml", GRID);
    let dry = sweep(&sandbox, &["--dry-run"]);
    for point in POINTS {
        assert!(
            dry.stdout
                .lines()
                .any(|l| l.contains(point) && l.ends_with("to run")),
            "{}",
            dry.stdout
        );
    }
    assert!(!sandbox.path().join("runs/grid/summary.csv").exists());

    let run = sweep(&sandbox, &[]);
    let runs = sandbox.path().join("runs");
    // The data stage ran for one point and was restored for the other three;
    // every point trained its own model.
    let data_records = stage_records(&runs, "data");
    assert_eq!(
        data_records
            .iter()
            .filter(|(_, restored)| !restored)
            .count(),
        1,
        "{data_records:?}"
    );
    assert!(stage_records(&runs, "train").iter().all(|(_, r)| !r));
    assert_eq!(run.stdout.matches("ran data").count(), 1, "{}", run.stdout);
    assert_eq!(
        run.stdout.matches("restored data").count(),
        3,
        "{}",
        run.stdout
    );

    // Four rows, each the point's own final val_loss.
    let csv = fs::read_to_string(runs.join("grid/summary.csv")).expect("summary.csv");
    let rows = results(&csv);
    assert_eq!(
        rows[0][..4],
        ["point", "model.latent", "seed", "val_loss"].map(String::from)
    );
    assert_eq!(rows.len(), 5, "{csv}");
    for (row, point) in rows[1..].iter().zip(POINTS) {
        assert_eq!(row[0], point);
        let history = fs::read_to_string(runs.join("grid").join(point).join("train/history.csv"))
            .expect("history");
        let last = history.lines().last().expect("an epoch");
        let val_loss: f64 = last
            .split(',')
            .nth(2)
            .expect("val_loss")
            .parse()
            .expect("f64");
        let summarised: f64 = row[3].parse().expect("f64");
        assert_eq!(summarised, val_loss, "{point}");
    }
    let frame = crate::support::read_parquet(&runs.join("grid/summary.parquet"));
    assert_eq!(frame.height(), 4);
    let md = fs::read_to_string(runs.join("grid/summary.md")).expect("summary.md");
    assert!(md.contains("Mean ± standard deviation over seeds"), "{md}");
    for figure in [
        "val_loss.png",
        "val_loss_by_model.latent.png",
        "val_loss_by_seed.png",
    ] {
        let file = fs::File::open(runs.join("grid").join(figure)).expect(figure);
        let info = png::Decoder::new(std::io::BufReader::new(file))
            .read_info()
            .expect("a PNG");
        assert!(info.info().width > 500, "{figure}");
    }

    // Everything is done: the dry run says so, and a rerun runs nothing.
    let dry = sweep(&sandbox, &["--dry-run"]);
    assert_eq!(dry.stdout.matches("finished").count(), 4, "{}", dry.stdout);
    let again = sweep(&sandbox, &[]);
    assert_eq!(
        again
            .stdout
            .matches(": fresh data, train, infer, eval, report")
            .count(),
        4,
        "{}",
        again.stdout
    );
}

#[test]
fn shards_and_collect_give_the_unsharded_summary() {
    let sandbox = Sandbox::synthetic();
    sandbox.write("sweeps/grid.toml", GRID);
    // Separate runs folders, so nothing is shared through the cache.
    sweep(&sandbox, &["--runs-dir", "whole", "--jobs", "2"]);
    let whole = fs::read_to_string(sandbox.path().join("whole/grid/summary.csv")).expect("csv");

    let first = sweep(&sandbox, &["--runs-dir", "split", "--shard", "1/2"]);
    assert!(first.stdout.contains("--collect"), "{}", first.stdout);
    assert!(!sandbox.path().join("split/grid/summary.csv").exists());
    let partial = sweep(&sandbox, &["--runs-dir", "split", "--collect"]);
    assert!(
        partial.stdout.contains("2 of 4 points have not finished"),
        "{}",
        partial.stdout
    );
    let csv = fs::read_to_string(sandbox.path().join("split/grid/summary.csv")).expect("csv");
    assert_eq!(results(&csv).len(), 3, "{csv}");

    sweep(&sandbox, &["--runs-dir", "split", "--shard", "2/2"]);
    sweep(&sandbox, &["--runs-dir", "split", "--collect"]);
    let merged = fs::read_to_string(sandbox.path().join("split/grid/summary.csv")).expect("csv");
    assert_eq!(results(&merged), results(&whole));
}

#[test]
fn an_invalid_point_stops_the_sweep_before_anything_runs() {
    let sandbox = Sandbox::synthetic();
    sandbox.write(
        "sweeps/grid.toml",
        &GRID.replace("model.latent = [16, 32]", "model.latent = [16, 33]"),
    );
    // No dataset is needed: nothing runs.
    let run = sandbox.ae(&["sweep", "sweeps/grid.toml"], None);
    run.assert_error(&["sweeps/grid.toml", "2 of 4 points are invalid"]);
    for point in ["point 3 (latent=33,seed=0)", "point 4 (latent=33,seed=1)"] {
        assert!(
            run.stderr.lines().any(|l| l.contains(point)
                && l.contains("model.latent = 33 must be one of [8, 16, 32, 64, 128]")),
            "{}",
            run.stderr
        );
    }
    assert!(!sandbox.path().join("runs").exists(), "nothing was created");

    sandbox.write(
        "sweeps/typo.toml",
        &GRID.replace("seed = [0, 1]", "sed = [0, 1]"),
    );
    sandbox
        .ae(&["sweep", "sweeps/typo.toml"], None)
        .assert_error(&["sweeps/typo.toml", "4 of 4 points are invalid"]);
    sandbox.write(
        "sweeps/scalar.toml",
        &GRID.replace("seed = [0, 1]", "seed = 3"),
    );
    sandbox
        .ae(&["sweep", "sweeps/scalar.toml"], None)
        .assert_error(&["grid key `seed` must be a list of values"]);
    // A sweep may not take over an experiment's run directory.
    fs::create_dir_all(sandbox.path().join("runs/grid")).expect("mkdir");
    fs::write(sandbox.path().join("runs/grid/manifest.json"), "{}").expect("manifest");
    let fixed = GRID.replace("data.test_limit = 400", "data.test_limit = 399");
    sandbox.write("sweeps/taken.toml", &fixed);
    sandbox
        .ae(&["sweep", "sweeps/taken.toml"], None)
        .assert_error(&["runs/grid is the run directory of an experiment named `grid`"]);
    let bad_shard = sandbox.ae(&["sweep", "sweeps/grid.toml", "--shard", "3/2"], None);
    assert_eq!(bad_shard.code, Some(2), "{}", bad_shard.stderr);
    assert!(
        bad_shard.stderr.contains("expected I/N"),
        "{}",
        bad_shard.stderr
    );
}

#[test]
fn a_failed_point_is_named_and_the_others_are_summarised() {
    let sandbox = Sandbox::synthetic();
    // The second point's test labels are not there.
    let sweep = r#"
name = "labels"
base = "../configs/synth.toml"

[grid]
data.test.labels = ["data/own/t10k-labels-idx1-ubyte.gz", "data/own/missing.gz"]
"#;
    sandbox.write("sweeps/labels.toml", sweep);
    let run = sandbox.ae(&["sweep", "sweeps/labels.toml"], None);
    run.assert_error(&[
        "1 of 2 points failed: labels=data_own_missing.gz",
        "run.log",
    ]);
    assert!(
        run.stdout.contains(
            "labels=data_own_missing.gz: FAILED: stage `data` failed: data.test.labels = data/own/missing.gz: no such file"
        ),
        "{}",
        run.stdout
    );
    let csv = fs::read_to_string(sandbox.path().join("runs/labels/summary.csv"))
        .expect("a summary of the point that finished");
    let rows = results(&csv);
    assert_eq!(rows.len(), 2, "{csv}");
    assert_eq!(
        rows[1][..2],
        [
            "labels=data_own_t10k-labels-idx1-ubyte.gz",
            "data/own/t10k-labels-idx1-ubyte.gz"
        ]
        .map(String::from)
    );
}

/// A grid beyond 10,000 points needs `--allow-large`, and expanding one
/// stays fast.
#[test]
fn a_large_grid_needs_allow_large_and_expands_fast() {
    let sandbox = Sandbox::synthetic();
    let seeds: Vec<String> = (0..20_000).map(|s| s.to_string()).collect();
    sandbox.write(
        "sweeps/large.toml",
        &format!(
            "name = \"large\"\nbase = \"../configs/synth.toml\"\n[grid]\nseed = [{}]\n",
            seeds.join(", ")
        ),
    );
    sandbox
        .ae(&["sweep", "sweeps/large.toml", "--dry-run"], None)
        .assert_error(&[
            "sweeps/large.toml: the grid has 20000 points, more than 10000; pass --allow-large",
        ]);
    let clock = std::time::Instant::now();
    let listed = sandbox.ae(
        &["sweep", "sweeps/large.toml", "--dry-run", "--allow-large"],
        None,
    );
    listed.assert_ok();
    assert_eq!(listed.stdout.matches(" to run").count(), 20_000);
    assert!(
        clock.elapsed() < std::time::Duration::from_secs(30),
        "{:?} to list 20000 points",
        clock.elapsed()
    );
}

/// A point's folder name that no file system takes, and two values that
/// would share a folder, are refused before anything runs.
#[test]
fn point_folders_are_checked_before_anything_runs() {
    let sandbox = Sandbox::synthetic();
    let long = "x".repeat(300);
    sandbox.write(
        "sweeps/long.toml",
        &format!(
            "name = \"long\"\nbase = \"../configs/synth.toml\"\n[grid]\ndata.train.images = [\"{long}\", \"short\"]\n"
        ),
    );
    sandbox
        .ae(&["sweep", "sweeps/long.toml"], None)
        .assert_error(&["1 of 2 points are invalid"]);
    let run = sandbox.ae(&["sweep", "sweeps/long.toml"], None);
    assert!(
        run.stderr
            .contains("its folder name would be 307 bytes, more than 255: shorten the values of `data.train.images`"),
        "{}",
        run.stderr
    );
    sandbox.write(
        "sweeps/clash.toml",
        "name = \"clash\"\nbase = \"../configs/synth.toml\"\n[grid]\ndata.train.images = [\"a/b.gz\", \"a_b.gz\"]\n",
    );
    sandbox.ae(&["sweep", "sweeps/clash.toml"], None).assert_error(&[
        "grid key `data.train.images` has the values \"a/b.gz\" and \"a_b.gz\", which give one folder name, `images=a_b.gz`",
    ]);
    assert!(!sandbox.path().join("runs").exists(), "nothing was created");
}
