//! Every format the data stage reads (`.npy`, `.npz`, image folders, CSV,
//! Parquet), from files the test writes, against the IDX route; named
//! classes; the validation split; early stopping; bad inputs.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use polars::prelude::{Column, CsvWriter, DataFrame, ParquetWriter, SerWriter};
use safetensors::SafeTensors;

use crate::support::{
    SYNTH, SYNTH_TEST, SYNTH_TRAIN, Sandbox, real_data, split_pixels, synthetic_digits,
};
use ae_testkit::npy;

const PIXELS: usize = 784;

/// The synthetic splits (the same as [`Sandbox::synthetic`]'s IDX files).
pub(crate) fn splits() -> [(&'static str, Vec<u8>, Vec<u8>); 2] {
    let (train_pixels, train_labels) = synthetic_digits(SYNTH_TRAIN, 1);
    let (test_pixels, test_labels) = synthetic_digits(SYNTH_TEST, 2);
    [
        ("train", train_pixels, train_labels),
        ("test", test_pixels, test_labels),
    ]
}

/// A config like [`SYNTH`] whose `[data]` is `data`.
fn config(sandbox: &Sandbox, name: &str, data: &str) -> String {
    sandbox.write(
        &format!("configs/{name}.toml"),
        &format!("schema = 1\nname = \"{name}\"\n\n[data]\ndataset = \"files\"\n{data}\n[train]\nepochs = 2\n"),
    )
}

/// Runs the data stage of `config` and returns its splits' tensors:
/// (name, dtype, shape, bytes) in name order, and the header's metadata.
fn data_stage(sandbox: &Sandbox, config: &str, run: &str) -> Vec<SplitTensors> {
    sandbox.ae(&["stage", "data", config], None).assert_ok();
    ["train", "test"]
        .iter()
        .map(|split| {
            let path = sandbox
                .path()
                .join(format!("runs/{run}/data/{split}.safetensors"));
            split_tensors(&path)
        })
        .collect()
}

#[derive(PartialEq)]
struct SplitTensors {
    tensors: Vec<(String, String, Vec<usize>, Vec<u8>)>,
    names: Option<String>,
}

impl std::fmt::Debug for SplitTensors {
    /// Names, types, shapes and the data's sha256: never megabytes of bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use sha2::Digest;
        for (name, dtype, shape, data) in &self.tensors {
            let digest: String = sha2::Sha256::digest(data)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            writeln!(f, "{name} {dtype} {shape:?} sha256 {digest}")?;
        }
        write!(f, "label_names {:?}", self.names)
    }
}

impl SplitTensors {
    fn tensor(&self, name: &str) -> &[u8] {
        &self.tensors.iter().find(|t| t.0 == name).expect(name).3
    }

    /// The same split with its images (and labels) in `order`.
    fn reordered(&self, order: &[usize]) -> Vec<(String, String, Vec<usize>, Vec<u8>)> {
        self.tensors
            .iter()
            .map(|(name, dtype, shape, data)| {
                let row = data.len() / shape[0];
                let data = order
                    .iter()
                    .flat_map(|&i| data[i * row..(i + 1) * row].to_vec())
                    .collect();
                (name.clone(), dtype.clone(), shape.clone(), data)
            })
            .collect()
    }
}

fn split_tensors(path: &Path) -> SplitTensors {
    let bytes = fs::read(path).expect("split");
    let (_, metadata) = SafeTensors::read_metadata(&bytes).expect("header");
    let file = SafeTensors::deserialize(&bytes).expect("split");
    let mut tensors: Vec<_> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            (
                name,
                format!("{:?}", view.dtype()),
                view.shape().to_vec(),
                view.data().to_vec(),
            )
        })
        .collect();
    tensors.sort();
    SplitTensors {
        tensors,
        names: metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get("label_names").cloned()),
    }
}

fn write_png_folder(root: &Path, pixels: &[u8], labels: &[u8], class: impl Fn(u8) -> String) {
    for (i, (image, &label)) in pixels.chunks(PIXELS).zip(labels).enumerate() {
        let dir = root.join(class(label));
        fs::create_dir_all(&dir).expect("mkdir");
        image::GrayImage::from_raw(28, 28, image.to_vec())
            .expect("28x28")
            .save(dir.join(format!("{i:05}.png")))
            .expect("png");
    }
}

fn table(pixels: &[u8], labels: Option<&[u8]>) -> DataFrame {
    let n = pixels.len() / PIXELS;
    let mut columns = Vec::new();
    if let Some(labels) = labels {
        columns.push(Column::new(
            "label".into(),
            labels.iter().map(|&l| i64::from(l)).collect::<Vec<_>>(),
        ));
    }
    for j in 0..PIXELS {
        let values: Vec<i64> = (0..n).map(|i| i64::from(pixels[i * PIXELS + j])).collect();
        columns.push(Column::new(format!("pixel{j}").into(), values));
    }
    DataFrame::new(n, columns).expect("frame")
}

/// Writes `<split>.csv` and `<split>.parquet` in the Kaggle layout under `root`.
pub(crate) fn write_tables(root: &Path, split: &str, pixels: &[u8], labels: &[u8]) {
    let mut frame = table(pixels, Some(labels));
    CsvWriter::new(fs::File::create(root.join(format!("{split}.csv"))).expect("csv"))
        .finish(&mut frame)
        .expect("csv");
    ParquetWriter::new(fs::File::create(root.join(format!("{split}.parquet"))).expect("parquet"))
        .finish(&mut frame)
        .expect("parquet");
}

/// Every format gives the same split tensors as the IDX route, pixel for
/// pixel (folders add their class names).
#[test]
fn every_format_reads_the_same_images_as_idx() {
    let sandbox = Sandbox::synthetic();
    let reference = data_stage(&sandbox, SYNTH, "synth");
    let root = sandbox.path().join("data");
    let [train, test] = splits();

    // .npy pairs: uint8 [N, 28, 28] images and int64 labels.
    for (split, pixels, labels) in [&train, &test] {
        let n = labels.len();
        fs::write(
            root.join(format!("{split}-images.npy")),
            npy("|u1", &[n, 28, 28], pixels),
        )
        .expect("npy");
        let body: Vec<u8> = labels
            .iter()
            .flat_map(|&l| i64::from(l).to_le_bytes())
            .collect();
        fs::write(
            root.join(format!("{split}-labels.npy")),
            npy("<i8", &[n], &body),
        )
        .expect("npy");
    }
    let npy_config = config(
        &sandbox,
        "npy",
        "train = { images = \"data/train-images.npy\", labels = \"data/train-labels.npy\" }\ntest = { images = \"data/test-images.npy\", labels = \"data/test-labels.npy\" }\n",
    );
    assert_eq!(data_stage(&sandbox, &npy_config, "npy"), reference, "npy");

    // .npz in the MedMNIST layout, deflated; labels [N, 1] uint8.
    let file = fs::File::create(root.join("digits.npz")).expect("npz");
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (split, pixels, labels) in [&train, &test] {
        let n = labels.len();
        zip.start_file(format!("{split}_images.npy"), options)
            .expect("member");
        zip.write_all(&npy("|u1", &[n, 28, 28], pixels))
            .expect("write");
        zip.start_file(format!("{split}_labels.npy"), options)
            .expect("member");
        zip.write_all(&npy("|u1", &[n, 1], labels)).expect("write");
    }
    zip.finish().expect("zip");
    let npz_config = config(
        &sandbox,
        "npz",
        "train = \"data/digits.npz\"\ntest = \"data/digits.npz\"\n",
    );
    assert_eq!(data_stage(&sandbox, &npz_config, "npz"), reference, "npz");

    // CSV and Parquet in the Kaggle layout.
    for (split, pixels, labels) in [&train, &test] {
        write_tables(&root, split, pixels, labels);
    }
    let csv_config = config(
        &sandbox,
        "csv",
        "train = \"data/train.csv\"\ntest = \"data/test.csv\"\n",
    );
    assert_eq!(data_stage(&sandbox, &csv_config, "csv"), reference, "csv");
    let parquet_config = config(
        &sandbox,
        "parquet",
        "train = \"data/train.parquet\"\ntest = \"data/test.parquet\"\n",
    );
    assert_eq!(
        data_stage(&sandbox, &parquet_config, "parquet"),
        reference,
        "parquet"
    );

    // Image folders, one folder per class: the same images class by class
    // (the ImageFolder order), plus the names.
    for (split, pixels, labels) in [&train, &test] {
        write_png_folder(&root.join(format!("png/{split}")), pixels, labels, |l| {
            l.to_string()
        });
    }
    let folder_config = config(
        &sandbox,
        "folder",
        "train = \"data/png/train\"\ntest = \"data/png/test\"\n",
    );
    let folders = data_stage(&sandbox, &folder_config, "folder");
    for (split, reference) in folders.iter().zip(&reference) {
        let labels = reference.tensor("labels");
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.sort_by_key(|&i| labels[i]);
        assert!(
            split.tensors == reference.reordered(&order),
            "folders: {split:?}"
        );
        assert_eq!(
            split.names.as_deref(),
            Some(r#"["0","1","2","3","4","5","6","7","8","9"]"#)
        );
    }
}

/// JPEG is lossy: a folder of grayscale JPEGs at quality 100 reads back
/// within a few grey levels of the images written.
#[test]
fn jpeg_folders_read_back_within_a_few_grey_levels() {
    let sandbox = Sandbox::new();
    let root = sandbox.path().join("data/jpeg");
    fs::create_dir_all(&root).expect("mkdir");
    let [_, test] = splits();
    let n = 50;
    for (i, image) in test.1.chunks(PIXELS).take(n).enumerate() {
        let file = fs::File::create(root.join(format!("{i:03}.jpg"))).expect("jpg");
        image::codecs::jpeg::JpegEncoder::new_with_quality(file, 100)
            .encode(image, 28, 28, image::ColorType::L8)
            .expect("jpeg");
    }
    fs::write(
        sandbox.path().join("data/ok.npy"),
        npy("|u1", &[n, 784], &test.1[..n * PIXELS]),
    )
    .expect("npy");
    let config = config(
        &sandbox,
        "jpeg",
        "train = \"data/jpeg\"\ntest = \"data/ok.npy\"\n",
    );
    sandbox.ae(&["stage", "data", &config], None).assert_ok();
    let values = split_pixels(
        &fs::read(sandbox.path().join("runs/jpeg/data/train.safetensors")).expect("split"),
    );
    assert_eq!(values.len(), n * PIXELS);
    let worst = values
        .iter()
        .zip(&test.1)
        .map(|(&v, &p)| (v * 255.0 - f32::from(p)).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 8.0, "a pixel off by {worst} grey levels");
}

/// Named classes (an anomaly-detection layout: the training folder holds
/// only `good` images without labels, the test folder `good/` and
/// `scratch/`), a validation split held out of training, a threshold set on
/// it, and early stopping, through the whole pipeline.
#[test]
fn a_folder_of_named_classes_runs_with_validation_and_early_stopping() {
    let sandbox = Sandbox::new();
    let root = sandbox.path().join("data/parts");
    let [train, test] = splits();
    // Training: flat, only digits 0–4 ("good"); test: good = 0–4, scratch = 5–9.
    let good: Vec<usize> = (0..SYNTH_TRAIN).filter(|&i| train.2[i] < 5).collect();
    for &i in &good {
        let dir = root.join("train");
        fs::create_dir_all(&dir).expect("mkdir");
        image::GrayImage::from_raw(28, 28, train.1[i * PIXELS..(i + 1) * PIXELS].to_vec())
            .expect("28x28")
            .save(dir.join(format!("{i:05}.png")))
            .expect("png");
    }
    write_png_folder(&root.join("test"), &test.1, &test.2, |l| {
        if l < 5 { "good" } else { "scratch" }.to_string()
    });
    let name = "parts";
    let config = config(
        &sandbox,
        name,
        "train = \"data/parts/train\"\ntest = \"data/parts/test\"\nvalidation = 0.1\nnormal_labels = [\"good\"]\n",
    );
    let run = sandbox.ae(
        &[
            "pipeline",
            &config,
            "--set",
            "train.epochs=30",
            "--set",
            "train.validate_on=\"validation\"",
            "--set",
            "train.early_stopping={ patience = 2, min_delta = 0.001 }",
            "--set",
            "eval.source=\"validation\"",
        ],
        None,
    );
    run.assert_ok();
    let dir = sandbox.path().join(format!("runs/{name}"));
    let validation = split_tensors(&dir.join("data/validation.safetensors"));
    let training = split_tensors(&dir.join("data/train.safetensors"));
    let count = |s: &SplitTensors| {
        s.tensors
            .iter()
            .find(|t| t.0 == "images")
            .expect("images")
            .2[0]
    };
    assert_eq!(count(&validation) + count(&training), good.len());
    assert_eq!(
        count(&validation),
        (good.len() as f64 * 0.1).round() as usize
    );
    // Unlabelled training images: no labels tensor.
    assert!(training.tensors.iter().all(|t| t.0 != "labels"));
    let fit: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("train/fit.json")).expect("fit"))
            .expect("json");
    assert_eq!(fit["validated_on"], "validation");
    let history = fs::read_to_string(dir.join("train/history.csv")).expect("history");
    let epochs = history.lines().count() - 1;
    assert_eq!(fit["epochs_run"], epochs as u64, "{fit}");
    let metrics = fs::read_to_string(dir.join("eval/metrics.json")).expect("metrics");
    assert!(metrics.contains("\"name\": \"scratch\""), "{metrics}");
    assert!(metrics.contains("\"source\": \"validation\""), "{metrics}");
    assert!(run.stdout.contains("AUROC"), "{}", run.stdout);
    let page = fs::read_to_string(dir.join("report/index.html")).expect("report");
    assert!(page.contains("<td>scratch</td>"), "per-label table by name");
    // The same config holds out the same images.
    let again = sandbox.path().join("again");
    fs::create_dir_all(&again).expect("mkdir");
    let run = sandbox.ae(&["stage", "data", &config, "--runs-dir", "again"], None);
    run.assert_ok();
    assert_eq!(
        split_tensors(&again.join(format!("{name}/data/validation.safetensors"))),
        validation
    );
}

/// Runs the data stage of a config `name` with `[data]` `section` and
/// checks that it fails cleanly within a minute, naming every `needle`, and
/// writes nothing.
fn refused(sandbox: &Sandbox, name: &str, section: &str, needles: &[&str]) {
    let config = config(sandbox, name, section);
    sandbox
        .ae_within(&["stage", "data", &config])
        .assert_error(needles);
    assert_eq!(
        sandbox.files_under(&format!("runs/{name}")),
        [".lock", "manifest.json", "run.log"],
        "{section}: nothing written"
    );
}

/// Bad inputs of every format: a clear error naming the file (and the
/// image), nothing written.
#[test]
fn bad_files_of_every_format_are_named() {
    let sandbox = Sandbox::new();
    let root = sandbox.path().join("data");
    fs::create_dir_all(root.join("empty")).expect("mkdir");
    let [train, _] = splits();
    fs::write(
        root.join("ok.npy"),
        npy("|u1", &[10, 784], &train.1[..10 * PIXELS]),
    )
    .expect("npy");
    fs::write(
        root.join("short.npy"),
        npy("|u1", &[10, 784], &train.1[..9 * PIXELS]),
    )
    .expect("npy");
    fs::write(root.join("wide.npy"), npy("|u1", &[2, 30, 30], &[0; 1800])).expect("npy");
    let nan: Vec<u8> = [0.5f32, f32::NAN]
        .repeat(784)
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    fs::write(root.join("nan.npy"), npy("<f4", &[2, 784], &nan)).expect("npy");
    let labels: Vec<u8> = [1i64, 2, 3].iter().flat_map(|v| v.to_le_bytes()).collect();
    fs::write(root.join("three-labels.npy"), npy("<i8", &[3], &labels)).expect("npy");
    write_png_folder(&root.join("big"), &[0; PIXELS], &[0], |_| "a".into());
    image::GrayImage::new(32, 30)
        .save(root.join("big/a/odd.png"))
        .expect("png");
    let mut frame = table(&train.1[..3 * PIXELS], Some(&[1, 2, 3]));
    frame = frame.drop("pixel7").expect("drop");
    CsvWriter::new(fs::File::create(root.join("narrow.csv")).expect("csv"))
        .finish(&mut frame)
        .expect("csv");
    let mut bright = table(&train.1[..3 * PIXELS], None);
    bright
        .replace("pixel3", Column::new("pixel3".into(), [0i64, 300, 0]))
        .expect("replace");
    ParquetWriter::new(fs::File::create(root.join("bright.parquet")).expect("parquet"))
        .finish(&mut bright)
        .expect("parquet");
    fs::write(root.join("junk.npz"), b"not a zip").expect("junk");
    fs::write(root.join("mystery.bin"), b"?").expect("bin");
    fs::write(root.join("nothing.npy"), b"").expect("empty");
    fs::write(root.join("nothing.csv"), b"").expect("empty");

    let cases: [(&str, &[&str]); 12] = [
        ("\"data/nothing.npy\"", &["nothing.npy", "truncated"]),
        ("\"data/nothing.csv\"", &["nothing.csv", "is empty"]),
        ("\"data/short.npy\"", &["short.npy", "truncated .npy file"]),
        ("\"data/wide.npy\"", &["wide.npy", "shape [2, 30, 30]"]),
        (
            "\"data/nan.npy\"",
            &["nan.npy", "image 0 holds the value NaN"],
        ),
        (
            "{ images = \"data/ok.npy\", labels = \"data/three-labels.npy\" }",
            &["ok.npy holds 10 images", "three-labels.npy holds 3 labels"],
        ),
        (
            "\"data/big\"",
            &["odd.png", "is 32×30, not 28×28", "data.resize = true"],
        ),
        ("\"data/empty\"", &["empty", "holds no image"]),
        (
            "\"data/narrow.csv\"",
            &["narrow.csv", "783 columns besides `label`"],
        ),
        (
            "\"data/bright.parquet\"",
            &["bright.parquet", "image 1 holds 300 in column `pixel3`"],
        ),
        ("\"data/junk.npz\"", &["junk.npz", "not a readable .npz"]),
        (
            "\"data/mystery.bin\"",
            &["data.train = data/mystery.bin", "set data.format"],
        ),
    ];
    for (i, (train, needles)) in cases.iter().enumerate() {
        let section = format!("train = {train}\ntest = \"data/ok.npy\"\n");
        refused(&sandbox, &format!("bad{i}"), &section, needles);
    }
    // With data.resize the odd image is resampled and the folder reads.
    let config = config(
        &sandbox,
        "resized",
        "train = \"data/big\"\ntest = \"data/ok.npy\"\nresize = true\n",
    );
    sandbox.ae(&["stage", "data", &config], None).assert_ok();
    // Early stopping on the test split is refused before anything runs.
    let run = sandbox.ae(
        &[
            "stage",
            "data",
            &config,
            "--set",
            "train.early_stopping={ patience = 3 }",
        ],
        None,
    );
    run.assert_error(&["train.early_stopping", "tuning the model on test data"]);
}

/// The real MNIST files under `data`, as (split, pixels, labels).
fn real_mnist(data: &Path) -> [(&'static str, Vec<u8>, Vec<u8>); 2] {
    let read = |name: &str, header: usize| {
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(fs::File::open(data.join("mnist").join(name)).expect(name))
            .read_to_end(&mut bytes)
            .expect(name);
        bytes.split_off(header)
    };
    [
        (
            "train",
            read("train-images-idx3-ubyte.gz", 16),
            read("train-labels-idx1-ubyte.gz", 8),
        ),
        (
            "test",
            read("t10k-images-idx3-ubyte.gz", 16),
            read("t10k-labels-idx1-ubyte.gz", 8),
        ),
    ]
}

/// Real MNIST written in every format (`.npy`, `.npz`, CSV, Parquet and a
/// flat folder of PNGs, 70,000 files) trains the same model, byte for byte,
/// as `dataset = "mnist"` (one epoch each). With `AE_FORMATS_DIR` set, the
/// files are written there and kept, for `ae stage data` benchmarks.
#[test]
fn real_mnist_in_every_format_trains_the_same_model() {
    let Some(data) = real_data("real_mnist_in_every_format_trains_the_same_model") else {
        return;
    };
    let sandbox = Sandbox::new();
    let root = match std::env::var_os("AE_FORMATS_DIR") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => sandbox.path().join("formats"),
    };
    fs::create_dir_all(&root).expect("mkdir");
    let splits = real_mnist(&data);
    let file = fs::File::create(root.join("mnist.npz")).expect("npz");
    let mut zip = zip::ZipWriter::new(file);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (split, pixels, labels) in &splits {
        let n = labels.len();
        fs::write(
            root.join(format!("{split}-images.npy")),
            npy("|u1", &[n, 28, 28], pixels),
        )
        .expect("npy");
        fs::write(
            root.join(format!("{split}-labels.npy")),
            npy("|u1", &[n], labels),
        )
        .expect("npy");
        zip.start_file(format!("{split}_images.npy"), stored)
            .expect("member");
        zip.write_all(&npy("|u1", &[n, 28, 28], pixels))
            .expect("write");
        zip.start_file(format!("{split}_labels.npy"), stored)
            .expect("member");
        zip.write_all(&npy("|u1", &[n], labels)).expect("write");
        write_tables(&root, split, pixels, labels);
        // A flat folder keeps MNIST's order (class folders would sort by class).
        let dir = root.join(format!("png/{split}"));
        fs::create_dir_all(&dir).expect("mkdir");
        for (i, image) in pixels.chunks(PIXELS).enumerate() {
            image::GrayImage::from_raw(28, 28, image.to_vec())
                .expect("28x28")
                .save(dir.join(format!("{i:05}.png")))
                .expect("png");
        }
    }
    zip.finish().expect("zip");

    let model = |name: &str, data_section: Option<String>| {
        let config = match data_section {
            Some(section) => sandbox.write(
                &format!("configs/{name}.toml"),
                &format!("schema = 1\nname = \"{name}\"\n\n[data]\ndataset = \"files\"\n{section}\n[train]\nepochs = 1\n"),
            ),
            None => sandbox.write(
                &format!("configs/{name}.toml"),
                &format!("schema = 1\nname = \"{name}\"\n\n[train]\nepochs = 1\n"),
            ),
        };
        sandbox
            .ae(&["stage", "train", &config, "--with-upstream"], Some(&data))
            .assert_ok();
        fs::read(
            sandbox
                .path()
                .join(format!("runs/{name}/train/model.safetensors")),
        )
        .expect("model")
    };
    let reference = model("mnist", None);
    let at = |file: &str| root.join(file).display().to_string();
    let sources = [
        (
            "npy",
            format!(
                "train = {{ images = {:?}, labels = {:?} }}\ntest = {{ images = {:?}, labels = {:?} }}\n",
                at("train-images.npy"),
                at("train-labels.npy"),
                at("test-images.npy"),
                at("test-labels.npy")
            ),
        ),
        (
            "npz",
            format!(
                "train = {:?}\ntest = {:?}\n",
                at("mnist.npz"),
                at("mnist.npz")
            ),
        ),
        (
            "csv",
            format!(
                "train = {:?}\ntest = {:?}\n",
                at("train.csv"),
                at("test.csv")
            ),
        ),
        (
            "parquet",
            format!(
                "train = {:?}\ntest = {:?}\n",
                at("train.parquet"),
                at("test.parquet")
            ),
        ),
        (
            "png",
            format!(
                "train = {:?}\ntest = {:?}\n",
                at("png/train"),
                at("png/test")
            ),
        ),
    ];
    for (name, section) in sources {
        assert!(
            model(name, Some(section)) == reference,
            "{name}: another model than dataset = \"mnist\""
        );
    }
}

/// Regression tests for hostile inputs to the new readers: nothing hangs,
/// nothing allocates what a header merely claims, and each error names the
/// file.
#[test]
fn hostile_images_archives_and_pipes_are_refused_without_hanging() {
    let sandbox = Sandbox::new();
    let root = sandbox.path().join("data");
    let [train, _] = splits();
    fs::create_dir_all(&root).expect("mkdir");
    fs::write(
        root.join("ok.npy"),
        npy("|u1", &[10, 784], &train.1[..10 * PIXELS]),
    )
    .expect("npy");

    // A named pipe with an image's name in a folder: refused unopened.
    write_png_folder(&root.join("piped"), &train.1[..PIXELS], &[0], |_| {
        "a".into()
    });
    crate::support::mkfifo(&root.join("piped/a/blocked.png"));
    // An archive member whose header claims 100 million images.
    let file = fs::File::create(root.join("claims.npz")).expect("npz");
    let mut zip = zip::ZipWriter::new(file);
    zip.start_file("train_images.npy", zip::write::SimpleFileOptions::default())
        .expect("member");
    zip.write_all(&npy("|u1", &[100_000_000, 784], &[0; 784]))
        .expect("write");
    zip.finish().expect("zip");
    // A PNG whose header claims 100,000 × 100,000 pixels, even with resizing.
    let mut huge = Vec::new();
    image::GrayImage::new(1, 1)
        .write_to(
            &mut std::io::Cursor::new(&mut huge),
            image::ImageFormat::Png,
        )
        .expect("png");
    huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    // With a valid checksum, so that it is the size that is refused.
    let mut crc = flate2::Crc::new();
    crc.update(&huge[12..29]);
    huge[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    write_png_folder(&root.join("huge"), &train.1[..PIXELS], &[0], |_| "a".into());
    fs::write(root.join("huge/a/claims.png"), &huge).expect("png");

    let cases: [(&str, &[&str]); 3] = [
        (
            "train = \"data/piped\"",
            &["blocked.png", "not a regular file"],
        ),
        (
            "train = \"data/claims.npz\"",
            &["claims.npz", "train_images", "header promises"],
        ),
        (
            "train = \"data/huge\"\nresize = true",
            &["claims.png", "is not an image ae can decode"],
        ),
    ];
    for (i, (train, needles)) in cases.iter().enumerate() {
        let section = format!("{train}\ntest = \"data/ok.npy\"\n");
        refused(&sandbox, &format!("hostile{i}"), &section, needles);
    }
}
