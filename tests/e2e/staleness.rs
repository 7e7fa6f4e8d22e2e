//! Stale-only reruns, single stages, interrupted runs and concurrent runs,
//! on a small subset of the real MNIST.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Run, Sandbox, real_data};

/// The quick config, a little smaller still.
const SMALL: [&str; 5] = [
    "configs/quick.toml",
    "--set",
    "data.train_limit=2000",
    "--set",
    "data.test_limit=500",
];

fn pipeline(sandbox: &Sandbox, data: &Path, extra: &[&str]) -> Run {
    let args = [&["pipeline"][..], &SMALL, extra].concat();
    let run = sandbox.ae(&args, Some(data));
    run.assert_ok();
    run
}

/// The `verdict reason` a run printed for each stage, in order.
fn verdicts(run: &Run) -> Vec<(String, String)> {
    let stages = ["data", "train", "infer", "eval", "report"];
    run.stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let stage = words.next()?;
            if !stages.contains(&stage) {
                return None;
            }
            let verdict = words.next()?.to_string();
            Some((
                stage.to_string(),
                format!("{verdict} {}", words.collect::<Vec<_>>().join(" "))
                    .trim()
                    .to_string(),
            ))
        })
        .collect()
}

fn verdict_of<'a>(verdicts: &'a [(String, String)], stage: &str) -> &'a str {
    verdicts
        .iter()
        .find(|(s, _)| s == stage)
        .map(|(_, v)| v.as_str())
        .unwrap_or("(no line)")
}

fn mtime(path: &Path) -> std::time::SystemTime {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .expect("mtime")
}

#[test]
fn a_second_run_does_nothing() {
    let Some(data) = real_data("a_second_run_does_nothing") else {
        return;
    };
    let sandbox = Sandbox::new();
    let first = verdicts(&pipeline(&sandbox, &data, &[]));
    assert!(
        first.iter().all(|(_, v)| v.starts_with("ran never ran")),
        "{first:?}"
    );
    let model = sandbox.path().join("runs/quick/train/model.safetensors");
    let before = mtime(&model);

    let second = pipeline(&sandbox, &data, &[]);
    let second = verdicts(&second);
    assert_eq!(second.len(), 5, "{second:?}");
    assert!(second.iter().all(|(_, v)| v == "fresh"), "{second:?}");
    assert_eq!(mtime(&model), before, "nothing was rewritten");
}

#[test]
fn changing_epochs_reruns_train_and_what_follows_but_not_data() {
    let Some(data) = real_data("changing_epochs_reruns_train_and_what_follows_but_not_data") else {
        return;
    };
    let sandbox = Sandbox::new();
    pipeline(&sandbox, &data, &[]);
    let run = verdicts(&pipeline(&sandbox, &data, &["--set", "train.epochs=1"]));
    assert_eq!(verdict_of(&run, "data"), "fresh");
    assert!(
        verdict_of(&run, "train").starts_with("ran train.epochs 2 → 1"),
        "{run:?}"
    );
    assert!(
        verdict_of(&run, "infer").starts_with("ran input train/model.safetensors changed"),
        "{run:?}"
    );
    assert!(
        verdict_of(&run, "eval").starts_with("ran input infer/decoded.safetensors changed"),
        "{run:?}"
    );
    assert!(verdict_of(&run, "report").starts_with("ran "), "{run:?}");
}

#[test]
fn a_single_stage_reruns_alone_and_identical_outputs_do_not_cascade() {
    let Some(data) = real_data("a_single_stage_reruns_alone_and_identical_outputs_do_not_cascade")
    else {
        return;
    };
    let sandbox = Sandbox::new();
    pipeline(&sandbox, &data, &[]);
    let run = sandbox.ae(&[&["stage", "eval"][..], &SMALL].concat(), Some(&data));
    run.assert_ok();
    let run = verdicts(&run);
    assert_eq!(run.len(), 1, "exactly one stage: {run:?}");
    assert!(
        verdict_of(&run, "eval").starts_with("ran requested with `ae stage eval`"),
        "{run:?}"
    );
    // eval wrote the same bytes again, so the report is still fresh.
    let next = verdicts(&pipeline(&sandbox, &data, &[]));
    assert!(next.iter().all(|(_, v)| v == "fresh"), "{next:?}");
}

#[test]
fn a_changed_file_is_detected_and_explained() {
    let Some(data) = real_data("a_changed_file_is_detected_and_explained") else {
        return;
    };
    let sandbox = Sandbox::new();
    pipeline(&sandbox, &data, &[]);
    // Someone edits the training history and deletes the scores.
    let history = sandbox.path().join("runs/quick/train/history.csv");
    fs::write(&history, "epoch,loss,val_loss,seconds\n1,9,9,9\n").expect("edit");
    fs::remove_file(sandbox.path().join("runs/quick/eval/scores.parquet")).expect("delete");

    let status = sandbox.ae(&[&["status"][..], &SMALL].concat(), Some(&data));
    status.assert_ok();
    let status = verdicts(&status);
    assert_eq!(verdict_of(&status, "data"), "fresh");
    assert_eq!(
        verdict_of(&status, "train"),
        "stale output train/history.csv changed since it was written"
    );
    assert_eq!(
        verdict_of(&status, "eval"),
        "stale output eval/scores.parquet missing"
    );

    let run = verdicts(&pipeline(&sandbox, &data, &[]));
    assert!(
        verdict_of(&run, "train").starts_with("ran output train/history.csv changed"),
        "{run:?}"
    );
    // Training again gives the same model, so infer stays fresh.
    assert_eq!(verdict_of(&run, "infer"), "fresh");
    // The deleted scores were computed before: the cache still has them.
    assert_eq!(
        verdict_of(&run, "eval"),
        "restored output eval/scores.parquet missing (from the cache)"
    );
    assert!(
        sandbox
            .path()
            .join("runs/quick/eval/scores.parquet")
            .is_file()
    );
    assert_eq!(
        fs::read_to_string(&history)
            .expect("history")
            .lines()
            .count(),
        3,
        "history rewritten"
    );
}

#[test]
fn force_from_and_dry_run() {
    let Some(data) = real_data("force_from_and_dry_run") else {
        return;
    };
    let sandbox = Sandbox::new();
    pipeline(&sandbox, &data, &[]);
    let dry = sandbox.ae(
        &[&["pipeline"][..], &SMALL, &["--dry-run", "--from", "eval"]].concat(),
        Some(&data),
    );
    dry.assert_ok();
    let dry = verdicts(&dry);
    assert_eq!(verdict_of(&dry, "infer"), "fresh");
    assert_eq!(verdict_of(&dry, "eval"), "would run --from eval");
    assert_eq!(verdict_of(&dry, "report"), "would run --from eval");
    let forced = verdicts(&pipeline(&sandbox, &data, &["--force"]));
    assert!(
        forced.iter().all(|(_, v)| v.starts_with("ran --force")),
        "{forced:?}"
    );
}

fn spawn_pipeline(sandbox: &Sandbox, data: &Path, extra: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_ae"))
        .args([&["pipeline"][..], &SMALL, extra].concat())
        .current_dir(sandbox.path())
        .env("AE_DATA_DIR", data)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ae")
}

#[test]
fn a_run_killed_mid_training_is_redone_from_the_interrupted_stage() {
    let Some(data) = real_data("a_run_killed_mid_training_is_redone_from_the_interrupted_stage")
    else {
        return;
    };
    let sandbox = Sandbox::new();
    let long = ["--set", "train.epochs=400"];
    let mut child = spawn_pipeline(&sandbox, &data, &long);
    let manifest = sandbox.path().join("runs/quick/manifest.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = fs::read_to_string(&manifest).unwrap_or_default();
        if text.contains("\"running\"") && text.contains("\"train\"") {
            break;
        }
        assert!(Instant::now() < deadline, "training never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("kill -9"); // SIGKILL: no cleanup runs
    child.wait().expect("reaped");
    assert!(
        !sandbox
            .path()
            .join("runs/quick/train/model.safetensors")
            .exists(),
        "no model from a killed run"
    );

    let status = sandbox.ae(&[&["status"][..], &SMALL, &long].concat(), Some(&data));
    assert_eq!(
        verdict_of(&verdicts(&status), "train"),
        "stale interrupted last time"
    );
    let run = verdicts(&pipeline(&sandbox, &data, &["--set", "train.epochs=3"]));
    assert_eq!(verdict_of(&run, "data"), "fresh", "{run:?}");
    assert!(verdict_of(&run, "train").starts_with("ran "), "{run:?}");
    assert!(verdict_of(&run, "report").starts_with("ran "), "{run:?}");
    let next = verdicts(&pipeline(&sandbox, &data, &["--set", "train.epochs=3"]));
    assert!(next.iter().all(|(_, v)| v == "fresh"), "{next:?}");
    // No temporary file survived anywhere in the run.
    let leftovers: Vec<String> = sandbox
        .files_under("runs/quick")
        .into_iter()
        .filter(|f| f.contains(".ae-tmp-"))
        .collect();
    assert_eq!(leftovers, Vec::<String>::new());
}

#[test]
fn two_concurrent_runs_on_one_directory_take_turns() {
    let Some(data) = real_data("two_concurrent_runs_on_one_directory_take_turns") else {
        return;
    };
    let sandbox = Sandbox::new();
    let first = spawn_pipeline(&sandbox, &data, &[]);
    let second = spawn_pipeline(&sandbox, &data, &[]);
    let outputs = [
        first.wait_with_output().expect("first"),
        second.wait_with_output().expect("second"),
    ];
    let mut ran = 0;
    let mut fresh = 0;
    for output in &outputs {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        ran += stdout.lines().filter(|l| l.contains(" ran ")).count();
        fresh += stdout
            .lines()
            .filter(|l| l.trim_end().ends_with("fresh"))
            .count();
    }
    // One process ran all five stages; the other waited for the lock and found them fresh.
    assert_eq!((ran, fresh), (5, 5));
    let status = sandbox.ae(&[&["status"][..], &SMALL].concat(), Some(&data));
    assert!(verdicts(&status).iter().all(|(_, v)| v == "fresh"));
}

#[test]
fn a_single_stage_with_upstream_runs_what_it_needs_first() {
    let Some(data) = real_data("a_single_stage_with_upstream_runs_what_it_needs_first") else {
        return;
    };
    let sandbox = Sandbox::new();
    let alone = sandbox.ae(&[&["stage", "eval"][..], &SMALL].concat(), Some(&data));
    alone.assert_error(&["stage `eval` needs", "run `ae stage data"]);
    let run = sandbox.ae(
        &[&["stage", "eval", "--with-upstream"][..], &SMALL].concat(),
        Some(&data),
    );
    run.assert_ok();
    let run = verdicts(&run);
    let stages: Vec<&str> = run.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        stages,
        ["data", "train", "infer", "eval"],
        "report is not upstream of eval"
    );
    assert!(
        verdict_of(&run, "infer").starts_with("ran never ran"),
        "{run:?}"
    );
    assert!(
        verdict_of(&run, "eval").starts_with("ran requested with `ae stage eval`"),
        "{run:?}"
    );
}

#[test]
fn a_stage_computed_before_is_restored_from_the_cache() {
    let Some(data) = real_data("a_stage_computed_before_is_restored_from_the_cache") else {
        return;
    };
    let sandbox = Sandbox::new();
    pipeline(&sandbox, &data, &[]);
    let model = sandbox.path().join("runs/quick/train/model.safetensors");
    let first_model = fs::read(&model).expect("model");
    pipeline(&sandbox, &data, &["--set", "train.epochs=1"]);
    assert_ne!(fs::read(&model).expect("model"), first_model);

    // Back to two epochs: computed before, so restored, byte for byte.
    let back = verdicts(&pipeline(&sandbox, &data, &[]));
    assert_eq!(
        verdict_of(&back, "train"),
        "restored train.epochs 1 → 2 (from the cache)"
    );
    for stage in ["infer", "eval", "report"] {
        assert!(
            verdict_of(&back, stage).starts_with("restored "),
            "{back:?}"
        );
    }
    assert_eq!(fs::read(&model).expect("model"), first_model);
    let status = sandbox.ae(&[&["status"][..], &SMALL].concat(), Some(&data));
    assert!(verdicts(&status).iter().all(|(_, v)| v == "fresh"));

    // --no-cache computes, and so does a stage the user asks for by name.
    let computed = verdicts(&pipeline(
        &sandbox,
        &data,
        &["--no-cache", "--set", "train.epochs=1"],
    ));
    assert!(
        verdict_of(&computed, "train").starts_with("ran "),
        "{computed:?}"
    );
    let again = sandbox.ae(&[&["stage", "train"][..], &SMALL].concat(), Some(&data));
    again.assert_ok();
    assert!(
        verdict_of(&verdicts(&again), "train").starts_with("ran requested"),
        "{}",
        again.stdout
    );
    assert_eq!(fs::read(&model).expect("model"), first_model);
}
