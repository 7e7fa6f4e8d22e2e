//! The staleness decision as a table: a finished record, one edit to it or
//! to the world, and the decision that must follow.

use ae_store::{FileRecord, StageRecord, StageStatus};
use serde_json::{Value, json};

use super::*;

const VERSION: &str = "ae 9.9.9";

fn file(path: &str, sha256: &str) -> FileRecord {
    FileRecord {
        bytes: 1,
        modified_ns: Some(1),
        ..FileRecord::absent(path, sha256)
    }
}

fn external(name: &str, path: &str, sha256: &str) -> FileRecord {
    FileRecord {
        name: Some(name.into()),
        ..file(path, sha256)
    }
}

/// What a finished stage recorded and what is on disk now, equal unless a
/// case edits them.
struct World {
    record: Option<StageRecord>,
    version: String,
    params: Value,
    inputs: Option<Vec<FileRecord>>,
    outputs: Vec<(String, Option<String>)>,
    forced: Option<String>,
    holder: Option<u32>,
}

fn world() -> World {
    let params = json!({"train": {"epochs": 50, "engine": "fused"}, "seed": 0});
    let inputs = vec![
        file("data/train.safetensors", "aa"),
        external("train images", "/data/mnist/train-images.gz", "bb"),
    ];
    let outputs = vec![
        file("train/model.safetensors", "cc"),
        file("train/history.csv", "dd"),
    ];
    World {
        record: Some(StageRecord {
            status: StageStatus::Ok,
            fingerprint: "f".into(),
            config: params.clone(),
            version: VERSION.into(),
            started_at: "2026-12-01T00:00:00Z".into(),
            seconds: 1.0,
            inputs: inputs.clone(),
            outputs: outputs.clone(),
            error: None,
            restored: false,
        }),
        version: VERSION.into(),
        params,
        inputs: Some(inputs),
        outputs: outputs
            .into_iter()
            .map(|o| (o.path, Some(o.sha256)))
            .collect(),
        forced: None,
        holder: None,
    }
}

/// Applies `edit` to a fresh world and checks the decision: `fresh`, or the
/// reason to run.
#[track_caller]
fn check(edit: impl FnOnce(&mut World), expected: &str) {
    let mut w = world();
    edit(&mut w);
    let now = Now {
        version: &w.version,
        params: &w.params,
        inputs: w.inputs.as_deref(),
        outputs: &w.outputs,
        holder: w.holder,
    };
    let decision = decide(w.record.as_ref(), &now, w.forced.as_deref());
    let shown = match decision {
        Decision::Fresh => "fresh".to_string(),
        Decision::Run(reason) => reason,
    };
    assert_eq!(shown, expected);
}

fn record(w: &mut World) -> &mut StageRecord {
    w.record.as_mut().expect("the world has a record")
}

#[test]
fn nothing_changed_is_fresh() {
    check(|_| {}, "fresh");
}

#[test]
fn a_forced_stage_runs_whatever_its_state() {
    check(|w| w.forced = Some("--force".into()), "--force");
}

#[test]
fn a_stage_that_never_finished_runs() {
    check(|w| w.record = None, "never ran");
    check(
        |w| record(w).status = StageStatus::Running,
        "interrupted last time",
    );
    check(
        |w| record(w).status = StageStatus::Failed,
        "failed last time",
    );
    // While another process holds the run directory, running means running.
    check(
        |w| {
            record(w).status = StageStatus::Running;
            w.holder = Some(4242);
        },
        "running (pid 4242)",
    );
}

#[test]
fn another_ae_version_reruns_everything() {
    check(|w| w.version = "ae 10.0.0".into(), "ae 9.9.9 → ae 10.0.0");
}

#[test]
fn changed_params_are_named_by_key() {
    check(
        |w| w.params["train"]["epochs"] = json!(20),
        "train.epochs 50 → 20",
    );
    check(
        |w| w.params["eval"] = json!({"q": 95.0, "value": null}),
        "eval.q unset → 95.0",
    );
    // An unset key written as null is the same as an absent one.
    check(|w| w.params["train"]["q"] = Value::Null, "fresh");
    // Params are compared before files: the first reason is the config's.
    check(
        |w| {
            w.params["seed"] = json!(3);
            w.outputs[0].1 = None;
        },
        "seed 0 → 3",
    );
}

#[test]
fn inputs_count_by_content_under_their_key() {
    check(|w| w.inputs = None, "a dataset file is missing");
    check(
        |w| w.inputs.as_mut().expect("inputs")[0].sha256 = "ab".into(),
        "input data/train.safetensors changed",
    );
    check(
        |w| {
            w.inputs
                .as_mut()
                .expect("inputs")
                .push(file("infer/train_decoded.safetensors", "ee"))
        },
        "new input infer/train_decoded.safetensors",
    );
    // A dataset file found somewhere else with the same content.
    check(
        |w| w.inputs.as_mut().expect("inputs")[1].path = "/elsewhere/x.gz".into(),
        "fresh",
    );
    check(
        |w| w.inputs.as_mut().expect("inputs")[1].sha256 = "bc".into(),
        "input train images changed",
    );
    check(
        |w| w.inputs.as_mut().expect("inputs")[0].sha256 = MISSING.into(),
        "input data/train.safetensors missing",
    );
}

#[test]
fn outputs_must_be_on_disk_as_written() {
    check(
        |w| w.outputs[0].1 = None,
        "output train/model.safetensors missing",
    );
    check(
        |w| w.outputs[1].1 = Some("de".into()),
        "output train/history.csv changed since it was written",
    );
    // An output the stage writes now but did not write then.
    check(
        |w| w.outputs.push(("eval/roc.csv".into(), Some("ff".into()))),
        "output eval/roc.csv missing",
    );
}

#[test]
fn describes_changed_added_and_removed_keys() {
    let old = json!({"train": {"epochs": 50, "engine": "fused"}, "seed": 0});
    let new = json!({"train": {"epochs": 20, "engine": "fused"}, "seed": 0});
    assert_eq!(describe_changes(&old, &new), "train.epochs 50 → 20");
    let new = json!({"train": {"epochs": 20, "engine": "dfdx"}, "seed": 3, "eval": {"q": 95.0}});
    assert_eq!(
        describe_changes(&old, &new),
        "eval.q unset → 95.0, seed 0 → 3, train.engine fused → dfdx and 1 more"
    );
}

#[test]
fn long_or_multi_line_values_are_only_said_to_change() {
    let old = json!({"resolved_config": "name = \"a\"\nseed = 0\n", "name": "a"});
    let new = json!({"resolved_config": "name = \"a\"\nseed = 1\n", "name": "a"});
    assert_eq!(describe_changes(&old, &new), "resolved_config changed");
}

#[test]
fn fingerprints_change_with_params_inputs_stage_and_version() {
    let input = |sha: &str| [file("data/train.safetensors", sha)];
    let params = json!({"epochs": 5});
    let a = fingerprint("train", &params, &input("aa"), VERSION);
    assert_eq!(a, fingerprint("train", &params, &input("aa"), VERSION));
    assert_ne!(
        a,
        fingerprint("train", &json!({"epochs": 6}), &input("aa"), VERSION)
    );
    assert_ne!(a, fingerprint("train", &params, &input("ab"), VERSION));
    assert_ne!(a, fingerprint("infer", &params, &input("aa"), VERSION));
    assert_ne!(a, fingerprint("train", &params, &input("aa"), "ae 0"));
    // An outside file counts by its key and content, not where it was found.
    let here = [external("train images", "/a/x.gz", "bb")];
    let there = [external("train images", "/b/y", "bb")];
    assert_eq!(
        fingerprint("data", &params, &here, VERSION),
        fingerprint("data", &params, &there, VERSION)
    );
}
