//! Stale-only reruns, single stages, the stage cache, interrupted runs and
//! concurrent runs, on synthetic images given as the user's own IDX files.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Run, SYNTH, Sandbox};

const SMALL: [&str; 1] = [SYNTH];

fn pipeline(sandbox: &Sandbox, extra: &[&str]) -> Run {
    let args = [&["pipeline"][..], &SMALL, extra].concat();
    let run = sandbox.ae(&args, None);
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
    let sandbox = Sandbox::synthetic();
    let first = verdicts(&pipeline(&sandbox, &[]));
    assert!(
        first.iter().all(|(_, v)| v.starts_with("ran never ran")),
        "{first:?}"
    );
    let model = sandbox.path().join("runs/synth/train/model.safetensors");
    let before = mtime(&model);

    let second = pipeline(&sandbox, &[]);
    let second = verdicts(&second);
    assert_eq!(second.len(), 5, "{second:?}");
    assert!(second.iter().all(|(_, v)| v == "fresh"), "{second:?}");
    assert_eq!(mtime(&model), before, "nothing was rewritten");
}

#[test]
fn changing_epochs_reruns_train_and_what_follows_but_not_data() {
    let sandbox = Sandbox::synthetic();
    pipeline(&sandbox, &[]);
    let run = verdicts(&pipeline(&sandbox, &["--set", "train.epochs=1"]));
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
    let sandbox = Sandbox::synthetic();
    pipeline(&sandbox, &[]);
    let run = sandbox.ae(&[&["stage", "eval"][..], &SMALL].concat(), None);
    run.assert_ok();
    let run = verdicts(&run);
    assert_eq!(run.len(), 1, "exactly one stage: {run:?}");
    assert!(
        verdict_of(&run, "eval").starts_with("ran requested with `ae stage eval`"),
        "{run:?}"
    );
    // eval wrote the same bytes again, so the report is still fresh.
    let next = verdicts(&pipeline(&sandbox, &[]));
    assert!(next.iter().all(|(_, v)| v == "fresh"), "{next:?}");
}

#[test]
fn a_changed_file_is_detected_and_explained() {
    let sandbox = Sandbox::synthetic();
    pipeline(&sandbox, &[]);
    // Someone edits the training history and deletes the scores.
    let history = sandbox.path().join("runs/synth/train/history.csv");
    fs::write(&history, "epoch,loss,val_loss,seconds\n1,9,9,9\n").expect("edit");
    fs::remove_file(sandbox.path().join("runs/synth/eval/scores.parquet")).expect("delete");

    let status = sandbox.ae(&[&["status"][..], &SMALL].concat(), None);
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

    let before = fs::read(&history).expect("history");
    let run = verdicts(&pipeline(&sandbox, &[]));
    // The cache holds its own copy of what training wrote, so the edit is
    // undone from there, checked against its digest, not recomputed.
    assert_eq!(
        verdict_of(&run, "train"),
        "restored output train/history.csv changed since it was written (from the cache)"
    );
    assert_ne!(fs::read(&history).expect("history"), before);
    // The same bytes as before the edit, so what follows stays fresh.
    assert_eq!(verdict_of(&run, "infer"), "fresh");
    assert_eq!(verdict_of(&run, "report"), "fresh");
    // The deleted scores were computed before: the cache still has them.
    assert_eq!(
        verdict_of(&run, "eval"),
        "restored output eval/scores.parquet missing (from the cache)"
    );
    assert!(
        sandbox
            .path()
            .join("runs/synth/eval/scores.parquet")
            .is_file()
    );
    assert_eq!(
        fs::read_to_string(&history)
            .expect("history")
            .lines()
            .count(),
        3,
        "history restored"
    );
}

#[test]
fn force_from_and_dry_run() {
    let sandbox = Sandbox::synthetic();
    pipeline(&sandbox, &[]);
    let dry = sandbox.ae(
        &[&["pipeline"][..], &SMALL, &["--dry-run", "--from", "eval"]].concat(),
        None,
    );
    dry.assert_ok();
    let dry = verdicts(&dry);
    assert_eq!(verdict_of(&dry, "infer"), "fresh");
    assert_eq!(verdict_of(&dry, "eval"), "would run --from eval");
    assert_eq!(verdict_of(&dry, "report"), "would run --from eval");
    let forced = verdicts(&pipeline(&sandbox, &["--force"]));
    assert!(
        forced.iter().all(|(_, v)| v.starts_with("ran --force")),
        "{forced:?}"
    );
}

fn spawn_pipeline(sandbox: &Sandbox, extra: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_ae"))
        .args([&["pipeline"][..], &SMALL, extra].concat())
        .current_dir(sandbox.path())
        .env_remove("AE_DATA_DIR")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ae")
}

#[test]
fn a_run_killed_mid_training_is_redone_from_the_interrupted_stage() {
    let sandbox = Sandbox::synthetic();
    let long = ["--set", "train.epochs=400"];
    let mut child = spawn_pipeline(&sandbox, &long);
    let manifest = sandbox.path().join("runs/synth/manifest.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = fs::read_to_string(&manifest).unwrap_or_default();
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if parsed["stages"]["train"]["status"] == "running" {
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
            .join("runs/synth/train/model.safetensors")
            .exists(),
        "no model from a killed run"
    );

    let status = sandbox.ae(&[&["status"][..], &SMALL, &long].concat(), None);
    assert_eq!(
        verdict_of(&verdicts(&status), "train"),
        "stale interrupted last time"
    );
    let run = verdicts(&pipeline(&sandbox, &["--set", "train.epochs=3"]));
    assert_eq!(verdict_of(&run, "data"), "fresh", "{run:?}");
    assert!(verdict_of(&run, "train").starts_with("ran "), "{run:?}");
    assert!(verdict_of(&run, "report").starts_with("ran "), "{run:?}");
    let next = verdicts(&pipeline(&sandbox, &["--set", "train.epochs=3"]));
    assert!(next.iter().all(|(_, v)| v == "fresh"), "{next:?}");
    // No temporary file survived anywhere in the run.
    let leftovers: Vec<String> = sandbox
        .files_under("runs/synth")
        .into_iter()
        .filter(|f| f.contains(".ae-tmp-"))
        .collect();
    assert_eq!(leftovers, Vec::<String>::new());
}

#[test]
fn two_concurrent_runs_on_one_directory_take_turns() {
    let sandbox = Sandbox::synthetic();
    let first = spawn_pipeline(&sandbox, &[]);
    let second = spawn_pipeline(&sandbox, &[]);
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
    let status = sandbox.ae(&[&["status"][..], &SMALL].concat(), None);
    assert!(verdicts(&status).iter().all(|(_, v)| v == "fresh"));
}

#[test]
fn a_single_stage_with_upstream_runs_what_it_needs_first() {
    let sandbox = Sandbox::synthetic();
    let alone = sandbox.ae(&[&["stage", "eval"][..], &SMALL].concat(), None);
    alone.assert_error(&["stage `eval` needs", "run `ae stage data"]);
    let run = sandbox.ae(
        &[&["stage", "eval", "--with-upstream"][..], &SMALL].concat(),
        None,
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
    let sandbox = Sandbox::synthetic();
    pipeline(&sandbox, &[]);
    let model = sandbox.path().join("runs/synth/train/model.safetensors");
    let first_model = fs::read(&model).expect("model");
    pipeline(&sandbox, &["--set", "train.epochs=1"]);
    assert_ne!(fs::read(&model).expect("model"), first_model);

    // Back to two epochs: computed before, so restored, byte for byte.
    let back = verdicts(&pipeline(&sandbox, &[]));
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
    let status = sandbox.ae(&[&["status"][..], &SMALL].concat(), None);
    assert!(verdicts(&status).iter().all(|(_, v)| v == "fresh"));

    // --no-cache computes, and so does a stage the user asks for by name.
    let computed = verdicts(&pipeline(
        &sandbox,
        &["--no-cache", "--set", "train.epochs=1"],
    ));
    assert!(
        verdict_of(&computed, "train").starts_with("ran "),
        "{computed:?}"
    );
    let again = sandbox.ae(&[&["stage", "train"][..], &SMALL].concat(), None);
    again.assert_ok();
    assert!(
        verdict_of(&verdicts(&again), "train").starts_with("ran requested"),
        "{}",
        again.stdout
    );
    assert_eq!(fs::read(&model).expect("model"), first_model);
}

#[test]
fn own_files_count_by_content_not_by_where_they_are() {
    let sandbox = Sandbox::synthetic();
    pipeline(&sandbox, &[]);
    // The same bytes somewhere else: nothing to compute again (the report's
    // page shows the resolved config, so it is redrawn with the new paths).
    let own = sandbox.path().join("data/own");
    fs::rename(&own, sandbox.path().join("data/moved")).expect("move");
    let moved = [
        "--set",
        "data.train.images=data/moved/train-images-idx3-ubyte.gz",
        "--set",
        "data.train.labels=data/moved/train-labels-idx1-ubyte.gz",
        "--set",
        "data.test.images=data/moved/t10k-images-idx3-ubyte.gz",
        "--set",
        "data.test.labels=data/moved/t10k-labels-idx1-ubyte.gz",
    ];
    let run = verdicts(&pipeline(&sandbox, &moved));
    for stage in ["data", "train", "infer", "eval"] {
        assert_eq!(verdict_of(&run, stage), "fresh", "{run:?}");
    }
    assert!(
        verdict_of(&run, "report").starts_with("ran resolved_config changed"),
        "{run:?}"
    );

    // Other test labels at the same path: the data stage and what follows rerun.
    let (_, mut labels) = crate::support::synthetic_digits(crate::support::SYNTH_TEST, 2);
    labels.rotate_left(1);
    fs::write(
        sandbox.path().join("data/moved/t10k-labels-idx1-ubyte.gz"),
        crate::support::gzip(&crate::support::idx_labels_of(&labels)),
    )
    .expect("write");
    let run = verdicts(&pipeline(&sandbox, &moved));
    assert!(
        verdict_of(&run, "data").starts_with("ran input test labels changed"),
        "{run:?}"
    );
    // Training validates on the test split, so it reruns too.
    assert!(
        verdict_of(&run, "train").starts_with("ran input data/test.safetensors changed"),
        "{run:?}"
    );
}

#[test]
fn a_cache_that_cannot_be_used_costs_only_the_sharing() {
    let sandbox = Sandbox::synthetic();
    // A file where the cache's folder should be: it cannot be created.
    sandbox.write("blocker", "");
    let run = pipeline(&sandbox, &["--cache-dir", "blocker/cache"]);
    let stages = verdicts(&run);
    assert!(
        stages.iter().all(|(_, v)| v.starts_with("ran never ran")),
        "{stages:?}"
    );
    assert!(
        run.stderr.contains("cannot use the cache"),
        "{}",
        run.stderr
    );
    let again = verdicts(&pipeline(&sandbox, &["--cache-dir", "blocker/cache"]));
    assert!(again.iter().all(|(_, v)| v == "fresh"), "{again:?}");
}

/// Regression: interrupted writes left their temporary files behind for
/// good (five Ctrl-Cs during the data stage left 333 MB).
#[test]
fn what_interrupted_writes_left_is_removed_by_the_next_run() {
    let sandbox = Sandbox::synthetic();
    pipeline(&sandbox, &[]);
    let run = sandbox.path().join("runs/synth");
    let leftovers = [
        // A process id no process has (beyond Linux's pid_max), and the
        // pid-less names of ae 0.2.
        run.join("train/.ae-tmp-4999999-AbC123"),
        run.join("data/.ae-tmp-Xy12zz"),
        run.join(".ae-tmp-4999999-q"),
    ];
    for leftover in &leftovers {
        fs::write(leftover, vec![0u8; 4096]).expect("write");
    }
    let again = pipeline(&sandbox, &[]);
    assert!(verdicts(&again).iter().all(|(_, v)| v == "fresh"));
    for leftover in &leftovers {
        assert!(!leftover.exists(), "{} is still there", leftover.display());
    }
    let log = fs::read_to_string(run.join("run.log")).expect("log");
    assert!(
        log.contains("removed 12288 bytes that interrupted writes left"),
        "{log}"
    );
}

/// Regression: a sweep killed by a signal to its own pid (as supervisors and
/// Python's `terminate()` do) left its `ae pipeline` children running.
#[cfg(unix)]
#[test]
fn a_killed_sweep_takes_its_points_with_it() {
    let sandbox = Sandbox::synthetic();
    sandbox.write(
        "sweeps/long.toml",
        "name = \"long\"\nbase = \"../configs/synth.toml\"\n[set]\ntrain.epochs = 100000\n[grid]\nseed = [0, 1]\n",
    );
    let mut sweep = Command::new(env!("CARGO_BIN_EXE_ae"))
        .args(["sweep", "sweeps/long.toml"])
        .current_dir(sandbox.path())
        .env_remove("AE_DATA_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ae sweep");
    let point = sandbox.path().join("runs/long/seed=0");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = fs::read_to_string(point.join("manifest.json")).unwrap_or_default();
        if text.contains("\"running\"") && text.contains("\"train\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the point never started training"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    sweep.kill().expect("SIGKILL to the sweep alone");
    sweep.wait().expect("reaped");
    // The point's process held its run directory's lock; the lock is free
    // once it has ended.
    let lock = fs::File::options()
        .write(true)
        .open(point.join(".lock"))
        .expect("the lock file");
    let deadline = Instant::now() + Duration::from_secs(10);
    while lock.try_lock().is_err() {
        assert!(
            Instant::now() < deadline,
            "the point's ae pipeline outlived its sweep"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Regression: after a re-run with a new config was interrupted,
/// `config.toml` described the interrupted attempt while the model was the
/// previous run's, and `ae stage infer` then ran on that model with no word;
/// `ae status` said `interrupted last time` of a stage running right then.
#[test]
fn a_run_directory_never_contradicts_itself() {
    let sandbox = Sandbox::synthetic();
    pipeline(&sandbox, &[]);
    let config = sandbox.path().join("runs/synth/config.toml");
    let agreed = fs::read_to_string(&config).expect("config.toml");
    assert!(agreed.contains("epochs = 2"), "{agreed}");

    let long = ["--set", "train.epochs=100000"];
    let mut child = spawn_pipeline(&sandbox, &long);
    let manifest = sandbox.path().join("runs/synth/manifest.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = fs::read_to_string(&manifest).unwrap_or_default();
        if text.contains("\"running\"") {
            break;
        }
        assert!(Instant::now() < deadline, "training never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    // While it trains, status names the process.
    let status = sandbox.ae(&[&["status"][..], &SMALL, &long].concat(), None);
    status.assert_ok();
    let train = verdict_of(&verdicts(&status), "train").to_string();
    assert!(
        train.starts_with(&format!("stale running (pid {})", child.id())),
        "{train}"
    );
    child.kill().expect("kill -9");
    child.wait().expect("reaped");

    // The attempt took no effect: config.toml still describes the model.
    assert_eq!(fs::read_to_string(&config).expect("config.toml"), agreed);
    let status = sandbox.ae(&[&["status"][..], &SMALL, &long].concat(), None);
    assert_eq!(
        verdict_of(&verdicts(&status), "train"),
        "stale interrupted last time"
    );
    // One stage alone does not run on what an interrupted stage left.
    sandbox
        .ae(&[&["stage", "infer"][..], &SMALL, &long].concat(), None)
        .assert_error(&[
            "stage `infer` reads what stage `train` wrote, which cannot be trusted: it was interrupted last time",
            "--allow-stale-inputs",
        ]);
    let forced = sandbox.ae(
        &[
            &["stage", "infer", "--allow-stale-inputs"][..],
            &SMALL,
            &long,
        ]
        .concat(),
        None,
    );
    forced.assert_ok();
    assert!(
        forced.stderr.contains("--allow-stale-inputs"),
        "{}",
        forced.stderr
    );
    // Still not a directory the new config describes.
    assert_eq!(fs::read_to_string(&config).expect("config.toml"), agreed);
}

/// One stage alone does not run on an output that changed after its stage
/// wrote it; one that is only stale (its config changed) is named.
#[test]
fn a_single_stage_checks_the_outputs_it_reads() {
    let sandbox = Sandbox::synthetic();
    pipeline(&sandbox, &[]);
    let history = sandbox.path().join("runs/synth/train/history.csv");
    let mut text = fs::read_to_string(&history).expect("history");
    text.push_str("3,0.1,0.1,0.1\n");
    fs::write(&history, text).expect("edit");
    sandbox
        .ae(&[&["stage", "report"][..], &SMALL].concat(), None)
        .assert_error(&[
            "stage `report` reads what stage `train` wrote, which cannot be trusted: it output train/history.csv changed since it was written",
        ]);
    pipeline(&sandbox, &[]);
    let stale = sandbox.ae(
        &[&["stage", "eval"][..], &SMALL, &["--set", "train.epochs=1"]].concat(),
        None,
    );
    stale.assert_ok();
    assert!(
        stale.stderr.contains(
            "stage `train` is stale (train.epochs 2 → 1): `eval` reads its outputs as they are"
        ),
        "{}",
        stale.stderr
    );
}
