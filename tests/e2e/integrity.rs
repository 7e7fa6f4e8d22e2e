//! What `ae` trusts on disk, and what it checks: in-place edits that keep a
//! file's size and modification time, damaged cache blobs, digests typed
//! into a manifest, and `--verify`.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::support::{Run, SYNTH, Sandbox};

fn pipeline(sandbox: &Sandbox, extra: &[&str]) -> Run {
    let run = sandbox.ae(&[&["pipeline", SYNTH][..], extra].concat(), None);
    run.assert_ok();
    run
}

/// The line `ae` printed for `stage`, without the stage's name.
fn verdict(run: &Run, stage: &str) -> String {
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix(stage).filter(|rest| rest.starts_with(' ')))
        .map(|rest| rest.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| format!("(no line for {stage} in {})", run.stdout))
}

/// Flips one byte of `path` in place and sets its modification time back,
/// as bit rot, `rsync --inplace -t` or a careless editor would leave it.
fn flip_a_byte_keeping_size_and_time(path: &Path) {
    let meta = fs::metadata(path).expect("stat");
    let mtime = meta.modified().expect("mtime");
    let mut permissions = meta.permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    fs::set_permissions(path, permissions).expect("chmod");
    let mut bytes = fs::read(path).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::thread::sleep(Duration::from_millis(20));
    fs::write(path, &bytes).expect("write");
    let file = fs::File::options().write(true).open(path).expect("open");
    file.set_modified(mtime).expect("set the time back");
}

/// Regression: an in-place edit that kept size and modification time left
/// every stage fresh and was restored into other runs.
#[test]
fn an_edit_that_keeps_size_and_time_makes_its_stage_stale() {
    let sandbox = Sandbox::synthetic();
    pipeline(&sandbox, &[]);
    let model = sandbox.path().join("runs/synth/train/model.safetensors");
    let good = fs::read(&model).expect("model");
    flip_a_byte_keeping_size_and_time(&model);
    let status = sandbox.ae(&["status", SYNTH], None);
    status.assert_ok();
    assert_eq!(
        verdict(&status, "train"),
        "stale output train/model.safetensors changed since it was written"
    );
    // The cache kept its own copy, checked on the way out.
    let run = pipeline(&sandbox, &[]);
    assert!(
        verdict(&run, "train").starts_with("restored "),
        "{}",
        run.stdout
    );
    assert_eq!(fs::read(&model).expect("model"), good);
    assert_eq!(verdict(&run, "infer"), "fresh");
}

/// Regression: a damaged blob was restored into another run, whose
/// manifest then recorded the original digest for other content.
#[test]
fn a_damaged_cache_blob_is_never_restored() {
    let sandbox = Sandbox::synthetic();
    pipeline(&sandbox, &[]);
    let model = fs::read(sandbox.path().join("runs/synth/train/model.safetensors")).expect("model");
    let digest = ae_store::sha256_hex(&model);
    let blob = sandbox
        .path()
        .join("runs/.cache/blobs")
        .join(&digest[..2])
        .join(&digest);
    flip_a_byte_keeping_size_and_time(&blob);
    // Another run of the same experiment would restore the model.
    let run = pipeline(&sandbox, &["--set", "name=again"]);
    assert_eq!(
        verdict(&run, "train").split(" (").next(),
        Some("ran never ran")
    );
    assert!(
        run.stderr
            .contains("holds other content than the cache recorded")
            && run.stderr.contains("computing the stage instead"),
        "{}",
        run.stderr
    );
    let restored =
        fs::read(sandbox.path().join("runs/again/train/model.safetensors")).expect("model");
    assert_eq!(restored, model, "computed again, byte for byte");
    assert_eq!(
        fs::read(&blob).expect("blob"),
        model,
        "and the blob repaired"
    );
}

/// Regression: a digest typed into a manifest was copied into the next
/// stage's inputs; `--verify` reads every file instead of trusting stamps.
#[test]
fn digests_in_a_manifest_are_checked_before_they_are_passed_on() {
    let sandbox = Sandbox::synthetic();
    pipeline(&sandbox, &[]);
    let manifest_path = sandbox.path().join("runs/synth/manifest.json");
    let split = sandbox.path().join("runs/synth/data/train.safetensors");
    let real = ae_store::sha256_hex(&fs::read(&split).expect("split"));
    let typed = "0".repeat(64);
    let text = fs::read_to_string(&manifest_path).expect("manifest");
    fs::write(&manifest_path, text.replace(&real, &typed)).expect("edit");

    // The stamps still match, so a plain status trusts the record...
    let status = sandbox.ae(&["status", SYNTH], None);
    assert_eq!(verdict(&status, "data"), "fresh", "{}", status.stdout);
    // ...and --verify reads the file and sees the difference.
    let verified = sandbox.ae(&["status", SYNTH, "--verify"], None);
    verified.assert_ok();
    assert_eq!(
        verdict(&verified, "data"),
        "stale output data/train.safetensors changed since it was written"
    );
    // A stage that runs reads its inputs itself: the typed digest goes nowhere.
    pipeline(&sandbox, &["--set", "train.epochs=1"]);
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&manifest_path).expect("manifest")).expect("json");
    let inputs = manifest["stages"]["train"]["inputs"]
        .as_array()
        .expect("inputs");
    let recorded = inputs
        .iter()
        .find(|i| i["path"] == "data/train.safetensors")
        .expect("the split");
    assert_eq!(recorded["sha256"].as_str(), Some(real.as_str()));
}
