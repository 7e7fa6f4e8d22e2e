//! Every kind of bad input gives a clear error and exit code 1, never a
//! panic, and leaves no partial artifact behind.

use std::fs;

use crate::support::{Sandbox, dead_mirror, gzip, idx_images, idx_labels};

/// Runs `ae pipeline` on a config whose text is `text`, expecting a config error.
fn config_error(text: &str, set: &[&str], needles: &[&str]) {
    let sandbox = Sandbox::new();
    let config = sandbox.write("bad.toml", text);
    let mut args = vec!["pipeline", config.as_str()];
    for s in set {
        args.extend(["--set", s]);
    }
    sandbox.ae(&args, None).assert_error(needles);
    assert!(
        !sandbox.path().join("runs").exists(),
        "a bad config writes nothing"
    );
}

const HEADER: &str = "schema = 1\nname = \"bad\"\n";

#[test]
fn a_missing_config_file() {
    let sandbox = Sandbox::new();
    sandbox
        .ae(&["pipeline", "configs/nope.toml"], None)
        .assert_error(&["cannot read config file configs/nope.toml", "No such file"]);
}

#[test]
fn a_toml_syntax_error_gives_the_line() {
    config_error(
        &format!("{HEADER}[train\nepochs = 2\n"),
        &[],
        &["bad.toml:3:", "invalid TOML"],
    );
}

#[test]
fn an_unknown_key() {
    config_error(
        &format!("{HEADER}[train]\nepoch = 2\n"),
        &[],
        &[
            "bad.toml:4:",
            "unknown key `train.epoch`",
            "expected one of `epochs`",
        ],
    );
}

#[test]
fn a_wrong_type() {
    config_error(
        &format!("{HEADER}[train]\nepochs = \"ten\"\n"),
        &[],
        &["bad.toml:4:", "train.epochs: invalid type: string \"ten\""],
    );
}

#[test]
fn out_of_range_values_are_all_reported() {
    config_error(
        &format!("{HEADER}[train]\nbatch_size = 0\nlearning_rate = -0.001\n"),
        &[],
        &[
            "bad.toml has 2 invalid values",
            "train.batch_size = 0 must be between 1 and 60000",
            "train.learning_rate = -0.001 must be greater than 0 and at most 1",
        ],
    );
}

#[test]
fn out_of_range_overrides_say_they_came_from_set() {
    config_error(
        HEADER,
        &["train.batch_size=0"],
        &["train.batch_size = 0 must be between 1 and 60000 (from --set)"],
    );
}

#[test]
fn an_unknown_dataset() {
    config_error(
        &format!("{HEADER}[data]\ndataset = \"cifar\"\n"),
        &[],
        &[
            "bad.toml:4:",
            "data.dataset: unknown variant `cifar`",
            "`mnist`",
            "`fashion-mnist`",
        ],
    );
}

/// Runs the data stage on the synthetic dataset under `data/` and checks the
/// failure left the user's files as they were and wrote no split.
fn data_error(sandbox: &Sandbox, needles: &[&str]) {
    let before = snapshot(sandbox, "data");
    let data_dir = sandbox.path().join("data");
    sandbox
        .ae(&["stage", "data", "configs/quick.toml"], Some(&data_dir))
        .assert_error(needles);
    assert_eq!(
        snapshot(sandbox, "data"),
        before,
        "the user's data files are untouched"
    );
    assert_eq!(
        sandbox.files_under("runs/quick"),
        [".lock", "manifest.json", "run.log"],
        "no split, no temporary file, and no config.toml for a run that took no effect"
    );
    let manifest =
        fs::read_to_string(sandbox.path().join("runs/quick/manifest.json")).expect("manifest");
    assert!(manifest.contains("\"status\": \"failed\""), "{manifest}");
}

fn snapshot(sandbox: &Sandbox, dir: &str) -> Vec<(String, Vec<u8>)> {
    sandbox
        .files_under(dir)
        .into_iter()
        .map(|name| {
            let bytes = fs::read(sandbox.path().join(dir).join(&name)).expect("read");
            (name, bytes)
        })
        .collect()
}

fn synthetic(replace: Option<(&str, Vec<u8>)>) -> Sandbox {
    let sandbox = Sandbox::new();
    crate::support::synthetic_mnist(&sandbox.path().join("data"), replace);
    sandbox
}

#[test]
fn a_checksum_mismatch() {
    // Well-formed IDX files that are not MNIST's.
    data_error(
        &synthetic(None),
        &[
            "checksum mismatch for",
            "mnist/train-images-idx3-ubyte.gz",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "delete it and run again",
        ],
    );
}

#[test]
fn a_corrupt_gzip_file() {
    let mut bytes = gzip(&idx_labels(4));
    let middle = bytes.len() / 2;
    bytes.truncate(middle);
    data_error(
        &synthetic(Some(("train-labels-idx1-ubyte", bytes))),
        &[
            "mnist/train-labels-idx1-ubyte.gz is not a valid gzip file",
            "delete it",
        ],
    );
}

#[test]
fn a_truncated_idx_file() {
    let mut content = idx_images(2);
    content.truncate(1000);
    data_error(
        &synthetic(Some(("t10k-images-idx3-ubyte", gzip(&content)))),
        &[
            "mnist/t10k-images-idx3-ubyte.gz is not a usable IDX file",
            "truncated IDX file: the header promises 1584 bytes but the file has 1000",
        ],
    );
}

#[test]
fn a_wrong_magic_number() {
    data_error(
        &synthetic(Some(("train-images-idx3-ubyte", gzip(&idx_labels(4))))),
        &[
            "mnist/train-images-idx3-ubyte.gz is not a usable IDX file",
            "wrong IDX magic number 2049 (expected 2051",
        ],
    );
}

#[test]
fn images_and_labels_that_disagree_in_count() {
    data_error(
        &synthetic(Some(("t10k-labels-idx1-ubyte", gzip(&idx_labels(3))))),
        &[
            "t10k-images-idx3-ubyte.gz holds 2 images but",
            "t10k-labels-idx1-ubyte.gz holds 3 labels",
        ],
    );
}

#[test]
fn every_mirror_unreachable_says_where_to_put_the_files() {
    let sandbox = Sandbox::new();
    let (first, second) = (dead_mirror(), dead_mirror());
    let mirrors = format!("data.mirrors=[{first:?}, {second:?}]");
    let data_dir = sandbox.path().join("empty");
    let run = sandbox.ae(
        &["stage", "data", "configs/quick.toml", "--set", &mirrors],
        Some(&data_dir),
    );
    run.assert_error(&[
        "could not download train-images-idx3-ubyte from any mirror",
        &format!("{first}train-images-idx3-ubyte.gz"),
        &format!("{second}train-images-idx3-ubyte.gz"),
        "download train-images-idx3-ubyte.gz by hand and put it in",
        "empty/mnist",
    ]);
    assert_eq!(
        sandbox.files_under("empty"),
        ["mnist/.ae-download.lock"],
        "nothing half-downloaded"
    );
    assert_eq!(
        sandbox.files_under("runs/quick"),
        [".lock", "manifest.json", "run.log"]
    );
}

#[test]
fn a_data_folder_that_cannot_be_created() {
    // Tests run as root in CI, where permission bits do not stop writes; a
    // regular file in the way of the folder fails for everyone.
    let sandbox = Sandbox::new();
    sandbox.write("blocker", "");
    let mirrors = format!("data.mirrors=[{:?}]", dead_mirror());
    let data_dir = sandbox.path().join("blocker/data");
    sandbox
        .ae(
            &["stage", "data", "configs/quick.toml", "--set", &mirrors],
            Some(&data_dir),
        )
        .assert_error(&[
            "cannot use the data folder",
            "blocker/data/mnist",
            "AE_DATA_DIR",
        ]);
}
