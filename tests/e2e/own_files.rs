//! `data.dataset = "files"`: the user's own IDX files, read as they are.

use std::fs;

use crate::support::{
    SYNTH, SYNTH_TEST, SYNTH_TRAIN, Sandbox, gzip, idx_images_of, idx_labels_of, split_pixels,
    synthetic_digits,
};

/// Runs the data stage on the synthetic files with `set` applied, and
/// checks that it failed cleanly: the error names every `needle`, no split
/// was written, and the manifest records the failure.
fn data_error(sandbox: &Sandbox, set: &[&str], needles: &[&str]) {
    let before: Vec<Vec<u8>> = sandbox
        .files_under("data/own")
        .iter()
        .map(|f| fs::read(sandbox.path().join("data/own").join(f)).expect("read"))
        .collect();
    let args = [&["stage", "data", SYNTH][..], set].concat();
    sandbox.ae(&args, None).assert_error(needles);
    let after: Vec<Vec<u8>> = sandbox
        .files_under("data/own")
        .iter()
        .map(|f| fs::read(sandbox.path().join("data/own").join(f)).expect("read"))
        .collect();
    assert_eq!(after, before, "the user's files are untouched");
    assert_eq!(
        sandbox.files_under("runs/synth"),
        [".lock", "manifest.json", "run.log"],
        "no split, no temporary file, and no config.toml for a run that took no effect"
    );
    let manifest =
        fs::read_to_string(sandbox.path().join("runs/synth/manifest.json")).expect("manifest");
    assert!(manifest.contains("\"status\": \"failed\""), "{manifest}");
}

#[test]
fn own_files_become_the_splits_gzip_or_raw() {
    let sandbox = Sandbox::synthetic();
    // The test labels raw instead of gzip: both work.
    let (pixels, labels) = synthetic_digits(SYNTH_TEST, 2);
    fs::write(
        sandbox.path().join("data/own/t10k-labels-raw"),
        idx_labels_of(&labels),
    )
    .expect("write");
    let run = sandbox.ae(
        &[
            "stage",
            "data",
            SYNTH,
            "--set",
            "data.test.labels=data/own/t10k-labels-raw",
        ],
        None,
    );
    run.assert_ok();
    assert!(run.stderr.contains("your own images"), "{}", run.stderr);
    let root = sandbox.path().join("runs/synth");
    let test = fs::read(root.join("data/test.safetensors")).expect("test split");
    let images = split_pixels(&test);
    assert_eq!(images.len(), SYNTH_TEST * 784);
    for (scaled, raw) in images.iter().zip(&pixels) {
        assert_eq!(scaled.to_bits(), (f32::from(*raw) / 255.0).to_bits());
    }
    let tensors = safetensors::SafeTensors::deserialize(&test).expect("safetensors");
    assert_eq!(
        tensors.tensor("labels").expect("labels").data(),
        &labels[..]
    );

    // The manifest knows each input by its role, with where it was and its digest.
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(root.join("manifest.json")).expect("manifest"))
            .expect("json");
    let inputs = manifest["stages"]["data"]["inputs"]
        .as_array()
        .expect("inputs");
    let names: Vec<&str> = inputs
        .iter()
        .map(|i| i["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        ["train images", "train labels", "test images", "test labels"]
    );
    assert_eq!(inputs[3]["path"], "data/own/t10k-labels-raw");
    assert_eq!(
        inputs[0]["bytes"].as_u64(),
        Some(
            fs::metadata(sandbox.path().join("data/own/train-images-idx3-ubyte.gz"))
                .expect("stat")
                .len()
        )
    );
    let check = sandbox.ae(
        &[
            "status",
            SYNTH,
            "--set",
            "data.test.labels=data/own/t10k-labels-raw",
        ],
        None,
    );
    assert!(
        check.stdout.starts_with("data    fresh"),
        "{}",
        check.stdout
    );
}

#[test]
fn a_missing_own_file_names_its_key() {
    data_error(
        &Sandbox::synthetic(),
        &["--set", "data.train.labels=data/own/nope.gz"],
        &[
            "data.train.labels = data/own/nope.gz: no such file",
            "check the path",
        ],
    );
}

#[test]
fn a_truncated_own_file_is_to_be_replaced_not_downloaded() {
    let sandbox = Sandbox::synthetic();
    let (pixels, _) = synthetic_digits(10, 3);
    let mut idx = idx_images_of(&pixels);
    idx.truncate(1000);
    fs::write(sandbox.path().join("data/own/short.gz"), gzip(&idx)).expect("write");
    data_error(
        &sandbox,
        &["--set", "data.test.images=data/own/short.gz"],
        &[
            "data/own/short.gz is not a usable IDX file; replace it with a good one",
            "truncated IDX file: the header promises 7856 bytes but the file has 1000",
        ],
    );
}

#[test]
fn images_and_labels_that_disagree_in_count() {
    let sandbox = Sandbox::synthetic();
    let (_, labels) = synthetic_digits(SYNTH_TEST + 1, 2);
    fs::write(
        sandbox.path().join("data/own/more-labels.gz"),
        gzip(&idx_labels_of(&labels)),
    )
    .expect("write");
    data_error(
        &sandbox,
        &["--set", "data.test.labels=data/own/more-labels.gz"],
        &[
            &format!("t10k-images-idx3-ubyte.gz holds {SYNTH_TEST} images but"),
            &format!("more-labels.gz holds {} labels", SYNTH_TEST + 1),
        ],
    );
}

#[test]
fn labels_beyond_9_are_classes_of_their_own() {
    // EMNIST letters are labelled 1–26: any byte is a class of the user's.
    let sandbox = Sandbox::synthetic();
    let (_, mut labels) = synthetic_digits(SYNTH_TEST, 2);
    labels[17] = 12;
    fs::write(
        sandbox.path().join("data/own/more-classes.gz"),
        gzip(&idx_labels_of(&labels)),
    )
    .expect("write");
    let set = ["--set", "data.test.labels=data/own/more-classes.gz"];
    sandbox
        .ae(&[&["stage", "data", SYNTH][..], &set].concat(), None)
        .assert_ok();
    let test = fs::read(sandbox.path().join("runs/synth/data/test.safetensors")).expect("split");
    let header_len = u64::from_le_bytes(test[..8].try_into().expect("8 bytes")) as usize;
    let labels_at = String::from_utf8_lossy(&test[8..8 + header_len]).into_owned();
    assert!(labels_at.contains("\"labels\""), "{labels_at}");
}

#[test]
fn a_limit_beyond_the_file_names_the_key_and_the_count() {
    data_error(
        &Sandbox::synthetic(),
        &["--set", &format!("data.train_limit={}", SYNTH_TRAIN + 1)],
        &[&format!(
            "data.train_limit = {}, but data/own/train-images-idx3-ubyte.gz holds only {SYNTH_TRAIN} images",
            SYNTH_TRAIN + 1
        )],
    );
}

#[test]
fn the_files_keys_go_with_the_files_dataset_only() {
    let sandbox = Sandbox::synthetic();
    sandbox
        .ae(
            &["stage", "data", SYNTH, "--set", "data.dataset=mnist"],
            None,
        )
        .assert_error(&[
            "data.train = { images = \"data/own/train-images-idx3-ubyte.gz\"",
            "is read only when data.dataset = \"files\"",
        ]);
    sandbox.write(
        "configs/half.toml",
        "schema = 1\nname = \"half\"\n[data]\ndataset = \"files\"\ntrain = { images = \"a\", labels = \"b\" }\n",
    );
    sandbox
        .ae(&["stage", "data", "configs/half.toml"], None)
        .assert_error(&["data.test = (missing) must name the split's images"]);
    assert!(
        !sandbox.path().join("runs/half").exists(),
        "nothing created"
    );
}

/// The example config a user copies runs as shipped, on files at its paths.
#[test]
fn the_shipped_own_idx_config_runs() {
    let sandbox = Sandbox::synthetic();
    let run = sandbox.ae(
        &[
            "pipeline",
            "configs/own-idx.toml",
            "--set",
            "train.epochs=1",
        ],
        None,
    );
    run.assert_ok();
    assert!(run.stdout.contains("Found "), "{}", run.stdout);
    assert!(
        sandbox
            .path()
            .join("runs/own-idx/report/index.html")
            .is_file()
    );
}

#[test]
fn a_folder_in_place_of_an_own_file_names_its_key() {
    let sandbox = Sandbox::synthetic();
    fs::create_dir_all(sandbox.path().join("data/own/folder")).expect("mkdir");
    data_error(
        &sandbox,
        &["--set", "data.train.images=data/own/folder"],
        &[
            "data.train.images cannot be used",
            "data/own/folder is not a regular file but a folder",
        ],
    );
}

/// Regression: a named pipe where a file should be is neither opened nor
/// waited on (opening it would block until a writer came).
#[cfg(unix)]
#[test]
fn a_named_pipe_in_place_of_an_own_file_does_not_hang() {
    let sandbox = Sandbox::synthetic();
    crate::support::mkfifo(&sandbox.path().join("data/own/pipe"));
    let set = ["--set", "data.test.images=data/own/pipe"];
    let status = sandbox.ae_within(&[&["status", SYNTH][..], &set].concat());
    status.assert_ok();
    assert!(
        status.stdout.starts_with("data    stale     never ran"),
        "{}",
        status.stdout
    );
    sandbox
        .ae_within(&[&["pipeline", SYNTH][..], &set].concat())
        .assert_error(&[
            "data.test.images cannot be used",
            "is not a regular file but a named pipe",
        ]);
}

#[test]
fn an_empty_split_is_an_error_not_a_model_trained_on_nothing() {
    let sandbox = Sandbox::synthetic();
    fs::write(
        sandbox.path().join("data/own/none-images.gz"),
        gzip(&idx_images_of(&[])),
    )
    .expect("write");
    fs::write(
        sandbox.path().join("data/own/none-labels.gz"),
        gzip(&idx_labels_of(&[])),
    )
    .expect("write");
    data_error(
        &sandbox,
        &[
            "--set",
            "data.test.images=data/own/none-images.gz",
            "--set",
            "data.test.labels=data/own/none-labels.gz",
        ],
        &["the test split would hold no image: data/own/none-images.gz holds no image"],
    );
    // A one-class label that no training image has.
    let (pixels, _) = synthetic_digits(30, 4);
    fs::write(
        sandbox.path().join("data/own/sevens.gz"),
        gzip(&idx_labels_of(&[7; 30])),
    )
    .expect("write");
    fs::write(
        sandbox.path().join("data/own/thirty.gz"),
        gzip(&idx_images_of(&pixels)),
    )
    .expect("write");
    data_error(
        &sandbox,
        &[
            "--set",
            "data.train.images=data/own/thirty.gz",
            "--set",
            "data.train.labels=data/own/sevens.gz",
            "--set",
            "data.normal_labels=[3]",
        ],
        &["no image of data/own/thirty.gz has a label in data.normal_labels = [3]"],
    );
}

/// Regression: a 2 MB gzip whose header promised a few images but that
/// inflated to gigabytes was read to the end before the size check.
#[test]
fn a_gzip_that_inflates_past_its_header_is_cut_off() {
    let sandbox = Sandbox::synthetic();
    let (pixels, _) = synthetic_digits(SYNTH_TEST, 2);
    let mut bomb = idx_images_of(&pixels);
    bomb.extend(std::iter::repeat_n(0u8, 300_000_000));
    fs::write(sandbox.path().join("data/own/bomb.gz"), gzip(&bomb)).expect("write");
    let clock = std::time::Instant::now();
    data_error(
        &sandbox,
        &["--set", "data.test.images=data/own/bomb.gz"],
        &[
            "data/own/bomb.gz is not a usable IDX file",
            &format!(
                "oversized IDX file: it holds more than the {} bytes its header promises",
                16 + SYNTH_TEST * 784
            ),
        ],
    );
    assert!(
        clock.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        clock.elapsed()
    );
}
