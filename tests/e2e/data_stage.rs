//! The data stage: on the real MNIST as a new user runs it, and on the
//! user's own IDX files.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use safetensors::SafeTensors;
use safetensors::tensor::Dtype;
use sha2::{Digest, Sha256};

use crate::support::{LocalMirror, MNIST_FILES, SYNTH, Sandbox, dead_mirror, gzip, real_data};

const TRAIN_LABEL_COUNTS: [usize; 10] =
    [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];
const TEST_LABEL_COUNTS: [usize; 10] = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];

/// Checks one split file: exactly `images` u8 [n, 784] (8-bit pixels, as
/// MNIST's are, kept as bytes) spanning 0 to 255, and `labels` u8 [n];
/// returns the labels.
fn check_split(path: &Path, n: usize) -> Vec<u8> {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let tensors = SafeTensors::deserialize(&bytes).expect("a safetensors file");
    let mut names = tensors.names();
    names.sort();
    assert_eq!(names, ["images", "labels"]);

    let images = tensors.tensor("images").expect("images");
    assert_eq!(images.dtype(), Dtype::U8);
    assert_eq!(images.shape(), [n, 784]);
    let (min, max) = images
        .data()
        .iter()
        .fold((u8::MAX, u8::MIN), |(lo, hi), &p| (lo.min(p), hi.max(p)));
    assert_eq!((min, max), (0, 255), "MNIST's pixels span 0 to 255");

    let labels = tensors.tensor("labels").expect("labels");
    assert_eq!(labels.dtype(), Dtype::U8);
    assert_eq!(labels.shape(), [n]);
    labels.data().to_vec()
}

fn label_counts(labels: &[u8]) -> [usize; 10] {
    let mut counts = [0; 10];
    for &label in labels {
        counts[usize::from(label)] += 1;
    }
    counts
}

fn sha256(path: &Path) -> String {
    Sha256::digest(fs::read(path).expect("read"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn the_data_stage_writes_both_real_mnist_splits() {
    let Some(data) = real_data("the_data_stage_writes_both_real_mnist_splits") else {
        return;
    };
    let sandbox = Sandbox::new();
    let run = sandbox.ae(&["stage", "data", "configs/default.toml"], Some(&data));
    run.assert_ok();
    assert!(run.stdout.contains("runs/default"), "{}", run.stdout);

    let root = sandbox.path().join("runs/default");
    let train = check_split(&root.join("data/train.safetensors"), 60_000);
    let test = check_split(&root.join("data/test.safetensors"), 10_000);
    // Read as the pipeline reads them: the values p / 255, exactly [0, 1].
    for split in ["train", "test"] {
        let pixels = ae_store::read_split(&root.join(format!("data/{split}.safetensors")))
            .expect("split")
            .images;
        let max = pixels.iter().copied().fold(0.0f32, f32::max);
        let min = pixels.iter().copied().fold(1.0f32, f32::min);
        assert_eq!(
            (min, max),
            (0.0, 1.0),
            "{split}: pixels span exactly [0, 1]"
        );
    }
    assert_eq!(label_counts(&train), TRAIN_LABEL_COUNTS);
    assert_eq!(label_counts(&test), TEST_LABEL_COUNTS);

    // The manifest records the stage with the digests of what it read and wrote.
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(root.join("manifest.json")).expect("manifest"))
            .expect("json");
    let stage = &manifest["stages"]["data"];
    assert_eq!(stage["status"], "ok");
    assert!(stage["seconds"].as_f64().expect("seconds") > 0.0);
    assert_eq!(stage["inputs"].as_array().expect("inputs").len(), 4);
    let outputs = stage["outputs"].as_array().expect("outputs");
    assert_eq!(outputs.len(), 2);
    for output in outputs {
        let path = root.join(output["path"].as_str().expect("path"));
        assert_eq!(
            output["sha256"].as_str(),
            Some(sha256(&path).as_str()),
            "{}",
            path.display()
        );
    }
    for input in stage["inputs"].as_array().expect("inputs") {
        let path = Path::new(input["path"].as_str().expect("path"));
        assert_eq!(
            input["sha256"].as_str(),
            Some(sha256(path).as_str()),
            "{}",
            path.display()
        );
    }

    // The resolved config and the log are there too, and no temporary file.
    let config = fs::read_to_string(root.join("config.toml")).expect("config.toml");
    assert!(config.contains("epochs = 50"), "{config}");
    let log = fs::read_to_string(root.join("run.log")).expect("run.log");
    assert!(log.contains("wrote"), "{log}");
    assert_eq!(
        sandbox.files_under("runs/default"),
        [
            ".lock",
            "config.toml",
            "data/test.safetensors",
            "data/train.safetensors",
            "manifest.json",
            "run.log"
        ]
    );
}

#[test]
fn limits_keep_the_first_images_of_each_split() {
    let sandbox = Sandbox::synthetic();
    let args = [
        "pipeline",
        SYNTH,
        "--set",
        "data.train_limit=600",
        "--set",
        "data.test_limit=50",
    ];
    sandbox.ae(&args, None).assert_ok();
    let root = sandbox.path().join("runs/synth");
    let train = check_split(&root.join("data/train.safetensors"), 600);
    let test = check_split(&root.join("data/test.safetensors"), 50);
    // Image i of the synthetic files has label i % 10.
    assert_eq!(train[..12], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
    assert_eq!(label_counts(&test), [5; 10]);
}

#[test]
fn missing_files_are_downloaded_from_the_first_good_mirror() {
    let Some(data) = real_data("missing_files_are_downloaded_from_the_first_good_mirror") else {
        return;
    };
    let real: HashMap<String, Vec<u8>> = MNIST_FILES
        .iter()
        .map(|name| {
            let file = format!("{name}.gz");
            let bytes = fs::read(data.join("mnist").join(&file)).expect("real file");
            (file, bytes)
        })
        .collect();
    // The second mirror serves well-formed gzip of the wrong content.
    let wrong: HashMap<String, Vec<u8>> = real
        .keys()
        .map(|file| (file.clone(), gzip(b"not mnist")))
        .collect();
    let corrupt = LocalMirror::serve("/mnist/", wrong);
    let good = LocalMirror::serve("/mnist/", real.clone());
    let mirrors = format!(
        "data.mirrors=[{:?}, {:?}, {:?}]",
        dead_mirror(),
        corrupt.url,
        good.url
    );

    let sandbox = Sandbox::new();
    let empty_root = sandbox.path().join("downloads");
    sandbox
        .ae(
            &["stage", "data", "configs/quick.toml", "--set", &mirrors],
            Some(&empty_root),
        )
        .assert_ok();

    let mut expected: Vec<String> = real.keys().map(|f| format!("mnist/{f}")).collect();
    // The lock that downloads into one folder take turns on stays.
    expected.push("mnist/.ae-download.lock".to_string());
    expected.sort();
    assert_eq!(
        sandbox.files_under("downloads"),
        expected,
        "exactly the four files, no temporaries"
    );
    for (file, bytes) in &real {
        assert_eq!(
            &fs::read(empty_root.join("mnist").join(file)).expect("downloaded"),
            bytes,
            "{file}"
        );
    }
    check_split(
        &sandbox.path().join("runs/quick/data/test.safetensors"),
        1000,
    );
}
