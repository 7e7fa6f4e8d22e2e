//! `ae score`: a trained run's detector on new images in every format,
//! mixed; its rows against the eval stage's; bad images, bad inputs, bad
//! detectors; exit statuses and outputs.

use std::fs;
use std::path::Path;

use polars::prelude::DataFrame;

use crate::formats::{splits, write_tables};
use crate::support::{
    SYNTH, SYNTH_TEST, Sandbox, bool_column, f32_column, f32s, read_parquet, real_data,
    split_pixels,
};
use ae_testkit::npy;

const PIXELS: usize = 784;
const TEST_IDX: &str = "data/own/t10k-images-idx3-ubyte.gz";
const DETECTOR: &str = "runs/synth/eval/detector.safetensors";

/// A synthetic sandbox whose `synth` experiment has run.
fn trained() -> Sandbox {
    let sandbox = Sandbox::synthetic();
    sandbox.ae(&["pipeline", SYNTH], None).assert_ok();
    sandbox
}

/// `ae score DETECTOR inputs... --out out.parquet`, which must succeed: its rows.
fn score(sandbox: &Sandbox, inputs: &[&str], extra: &[&str]) -> DataFrame {
    let _ = fs::remove_file(sandbox.path().join("out.parquet"));
    let mut args = vec!["score", DETECTOR];
    args.extend(inputs);
    args.extend(["--out", "out.parquet"]);
    args.extend(extra);
    sandbox.ae_within(&args).assert_ok();
    read_parquet(&sandbox.path().join("out.parquet"))
}

fn strings(frame: &DataFrame, name: &str) -> Vec<Option<String>> {
    frame
        .column(name)
        .expect(name)
        .str()
        .expect("a string column")
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

fn u64s(frame: &DataFrame, name: &str) -> Vec<Option<u64>> {
    frame
        .column(name)
        .expect(name)
        .u64()
        .expect("a u64 column")
        .iter()
        .collect()
}

fn u8s(frame: &DataFrame, name: &str) -> Vec<Option<u8>> {
    frame
        .column(name)
        .expect(name)
        .u8()
        .expect("a u8 column")
        .iter()
        .collect()
}

/// The summary line: `Found N anomalies! (N of M images ...`.
fn found(stderr: &str) -> (usize, usize) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("Found "))
        .unwrap_or_else(|| panic!("no summary line in:\n{stderr}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let n: usize = words[1].parse().expect("count");
    assert_eq!(words[3].trim_start_matches('('), words[1], "{line}");
    (n, words[5].parse().expect("images"))
}

#[test]
fn scores_of_the_test_split_equal_the_eval_stage_s_exactly() {
    let sandbox = trained();
    let eval = read_parquet(&sandbox.path().join("runs/synth/eval/scores.parquet"));
    let rows = score(&sandbox, &[TEST_IDX], &[]);
    assert_eq!(rows.height(), SYNTH_TEST);
    assert_eq!(f32_column(&rows, "mse"), f32_column(&eval, "mse"));
    assert_eq!(
        bool_column(&rows, "is_anomaly"),
        bool_column(&eval, "is_anomaly")
    );
    assert_eq!(
        u64s(&rows, "index"),
        (0..SYNTH_TEST as u64).map(Some).collect::<Vec<_>>()
    );
    assert!(
        strings(&rows, "file")
            .iter()
            .all(|f| f.as_deref() == Some(TEST_IDX))
    );
    // An IDX file has no labels.
    assert!(u8s(&rows, "label").iter().all(Option::is_none));

    // The same detector named by its run directory and by its config.
    for detector in ["runs/synth", SYNTH] {
        let run = sandbox.ae_within(&["score", detector, TEST_IDX, "--out", "again.parquet"]);
        run.assert_ok();
        let flagged = bool_column(&eval, "is_anomaly")
            .iter()
            .filter(|&&f| f)
            .count();
        assert_eq!(found(&run.stderr), (flagged, SYNTH_TEST), "{}", run.stderr);
        assert!(
            run.stderr.contains("2 × the mean MSE of the test split"),
            "{}",
            run.stderr
        );
        let again = read_parquet(&sandbox.path().join("again.parquet"));
        assert_eq!(f32_column(&again, "mse"), f32_column(&eval, "mse"));
    }
}

/// Writes `pixels` (28×28 each) as PNG files `dir/<name>`.
fn pngs(dir: &Path, images: &[(String, &[u8])]) {
    for (name, pixels) in images {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        image::GrayImage::from_raw(28, 28, pixels.to_vec())
            .expect("28x28")
            .save(&path)
            .expect("png");
    }
}

#[test]
fn every_format_and_a_mix_of_them_score_alike() {
    let sandbox = trained();
    let reference = f32_column(&score(&sandbox, &[TEST_IDX], &[]), "mse");
    let [_, (_, pixels, labels)] = splits();
    let n = labels.len();
    let root = sandbox.path().join("in");
    fs::create_dir_all(&root).expect("mkdir");
    fs::write(root.join("u8.npy"), npy("|u1", &[n, 28, 28], &pixels)).expect("npy");
    let floats: Vec<u8> = pixels
        .iter()
        .flat_map(|&p| (f32::from(p) / 255.0).to_le_bytes())
        .collect();
    fs::write(root.join("f32.npy"), npy("<f4", &[n, 784], &floats)).expect("npy");
    let file = fs::File::create(root.join("test.npz")).expect("npz");
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file("test_images.npy", options).expect("member");
    std::io::Write::write_all(&mut zip, &npy("|u1", &[n, 28, 28], &pixels)).expect("write");
    zip.start_file("test_labels.npy", options).expect("member");
    std::io::Write::write_all(&mut zip, &npy("|u1", &[n, 1], &labels)).expect("write");
    zip.finish().expect("zip");
    write_tables(&root, "test", &pixels, &labels);

    // Every file holding the whole split gives the IDX file's scores, row for row.
    for (input, labelled) in [
        ("in/u8.npy", false),
        ("in/f32.npy", false),
        ("in/test.npz", true),
        ("in/test.csv", true),
        ("in/test.parquet", true),
    ] {
        let rows = score(&sandbox, &[input], &[]);
        assert_eq!(f32_column(&rows, "mse"), reference, "{input}");
        let expected: Vec<Option<u8>> = labels.iter().map(|&l| labelled.then_some(l)).collect();
        assert_eq!(u8s(&rows, "label"), expected, "{input}");
    }

    // Image folders, by class and flat, and a single file: the first 40 images.
    let image = |i: usize| &pixels[i * PIXELS..(i + 1) * PIXELS];
    let classes = ["cat", "dog"];
    pngs(
        &root.join("classes"),
        &(0..40)
            .map(|i| (format!("{}/{i:02}.png", classes[i % 2]), image(i)))
            .collect::<Vec<_>>(),
    );
    pngs(
        &root.join("flat"),
        &(0..40)
            .map(|i| (format!("{i:02}.png"), image(i)))
            .collect::<Vec<_>>(),
    );
    pngs(&root, &[("one.png".to_string(), image(7))]);
    let rows = score(&sandbox, &["in/classes"], &[]);
    let files = strings(&rows, "file");
    let names = strings(&rows, "label_name");
    let mse = f32_column(&rows, "mse");
    assert_eq!(rows.height(), 40);
    for r in 0..40 {
        let file = files[r].as_deref().expect("file");
        let i: usize = file[file.len() - 6..file.len() - 4].parse().expect("index");
        assert_eq!(names[r].as_deref(), Some(classes[i % 2]), "{file}");
        assert_eq!(mse[r], reference[i], "{file}");
    }

    // A mix: one file, a flat folder, an .npy, in the order given.
    let rows = score(&sandbox, &["in/one.png", "in/flat", "in/u8.npy"], &[]);
    assert_eq!(rows.height(), 1 + 40 + n);
    let mse = f32_column(&rows, "mse");
    let expected: Vec<f32> = [7]
        .into_iter()
        .chain(0..40)
        .chain(0..n)
        .map(|i| reference[i])
        .collect();
    assert_eq!(mse, expected);
    let files = strings(&rows, "file");
    assert_eq!(files[0].as_deref(), Some("in/one.png"));
    assert_eq!(files[1].as_deref(), Some("in/flat/00.png"));
    assert_eq!(files[41].as_deref(), Some("in/u8.npy"));
    let index = u64s(&rows, "index");
    assert_eq!((index[0], index[41], index[42]), (None, Some(0), Some(1)));

    // The same rows as CSV, to a file and on a pipe.
    sandbox
        .ae_within(&[
            "score",
            DETECTOR,
            "in/one.png",
            "in/flat",
            "--out",
            "out.csv",
        ])
        .assert_ok();
    let csv = fs::read_to_string(sandbox.path().join("out.csv")).expect("csv");
    let piped = sandbox.ae_within(&["score", DETECTOR, "in/one.png", "in/flat"]);
    piped.assert_ok();
    assert_eq!(piped.stdout, csv);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "file,index,label,label_name,mse,is_anomaly");
    assert_eq!(lines.len(), 1 + 41);
    let first: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(first[..4], ["in/one.png", "", "", ""]);
    assert_eq!(first[4].parse::<f32>().expect("score"), reference[7]);
}

#[test]
fn a_bad_image_is_named_and_the_rest_are_scored() {
    let sandbox = trained();
    let [_, (_, pixels, _)] = splits();
    let dir = sandbox.path().join("batch");
    pngs(
        &dir,
        &(0..3)
            .map(|i| (format!("ok{i}.png"), &pixels[i * PIXELS..(i + 1) * PIXELS]))
            .collect::<Vec<_>>(),
    );
    fs::write(dir.join("broken.png"), b"\x89PNG\r\n\x1a\n truncated").expect("write");
    image::GrayImage::from_pixel(30, 30, image::Luma([9]))
        .save(dir.join("big.png"))
        .expect("png");

    let run = sandbox.ae_within(&["score", DETECTOR, "batch", "--out", "out.parquet"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    for needle in [
        "batch/broken.png",
        "batch/big.png: is 30×30, not 28×28",
        "2 image files could not be read",
    ] {
        assert!(
            run.stderr.contains(needle),
            "{needle:?} in:\n{}",
            run.stderr
        );
    }
    assert_eq!(found(&run.stderr).1, 3);
    assert_eq!(
        read_parquet(&sandbox.path().join("out.parquet")).height(),
        3
    );

    // --resize takes the 30×30 one; the broken one is still named.
    let run = sandbox.ae_within(&[
        "score",
        DETECTOR,
        "batch",
        "--out",
        "out.parquet",
        "--resize",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(
        read_parquet(&sandbox.path().join("out.parquet")).height(),
        4
    );

    // --strict stops at the first, and writes nothing.
    fs::remove_file(sandbox.path().join("out.parquet")).expect("rm");
    sandbox
        .ae_within(&[
            "score",
            DETECTOR,
            "batch",
            "--out",
            "out.parquet",
            "--strict",
        ])
        .assert_error(&["batch/big.png", "--strict"]);
    assert!(!sandbox.path().join("out.parquet").exists());
}

#[test]
fn bad_inputs_are_refused_naming_the_file() {
    let sandbox = trained();
    let root = sandbox.path().join("bad");
    fs::create_dir_all(root.join("empty")).expect("mkdir");
    let mut floats: Vec<u8> = (0..5 * PIXELS).flat_map(|_| 0.5f32.to_le_bytes()).collect();
    floats[(3 * PIXELS + 10) * 4..(3 * PIXELS + 11) * 4].copy_from_slice(&f32::NAN.to_le_bytes());
    fs::write(root.join("nan.npy"), npy("<f4", &[5, 784], &floats)).expect("npy");
    fs::write(
        root.join("short.npy"),
        npy("|u1", &[5, 784], &[0; 4 * PIXELS]),
    )
    .expect("npy");
    fs::write(
        root.join("wide.npy"),
        npy("|u1", &[2, 32, 32], &[0; 2 * 1024]),
    )
    .expect("npy");
    fs::write(root.join("notes.txt"), "hello").expect("write");
    #[cfg(unix)]
    crate::support::mkfifo(&root.join("pipe.npy"));
    let cases: &[(&[&str], &[&str])] = &[
        (&["bad/nan.npy"], &["bad/nan.npy", "image 3", "NaN"]),
        (&["bad/short.npy"], &["bad/short.npy", "truncated"]),
        (&["bad/wide.npy"], &["bad/wide.npy", "[2, 32, 32]"]),
        (&["bad/empty"], &["bad/empty", "holds no image"]),
        (&["bad/nope.png"], &["bad/nope.png", "no such file"]),
        (&["bad/notes.txt"], &["bad/notes.txt", "--format"]),
        #[cfg(unix)]
        (&["bad/pipe.npy"], &["bad/pipe.npy"]),
        // Good images first, then a bad file: still nothing written.
        (&[TEST_IDX, "bad/nan.npy"], &["bad/nan.npy"]),
    ];
    for (inputs, needles) in cases {
        let mut args = vec!["score", DETECTOR];
        args.extend(inputs.iter());
        args.extend(["--out", "out.parquet"]);
        sandbox.ae_within(&args).assert_error(needles);
        assert!(!sandbox.path().join("out.parquet").exists(), "{inputs:?}");
    }
    sandbox
        .ae_within(&["score", DETECTOR, TEST_IDX, "--out", "out.txt"])
        .assert_error(&["out.txt", ".parquet or .csv"]);
    // An empty array.
    fs::write(root.join("none.npy"), npy("|u1", &[0, 28, 28], &[])).expect("npy");
    sandbox
        .ae_within(&["score", DETECTOR, "bad/none.npy"])
        .assert_error(&["bad/none.npy", "holds no image"]);
    // Outputs that would overwrite what the user has are refused up front.
    fs::write(root.join("mine.csv"), "label\n").expect("write");
    sandbox
        .ae_within(&["score", DETECTOR, "bad/mine.csv", "--out", "bad/./mine.csv"])
        .assert_error(&["--out bad/./mine.csv is also an input"]);
    assert_eq!(
        fs::read_to_string(root.join("mine.csv")).expect("kept"),
        "label\n"
    );
    let before = fs::read(sandbox.path().join(DETECTOR)).expect("detector");
    sandbox
        .ae_within(&["score", DETECTOR, TEST_IDX, "--out", DETECTOR])
        .assert_error(&["--out runs/synth/eval/detector.safetensors"]);
    assert_eq!(
        fs::read(sandbox.path().join(DETECTOR)).expect("detector"),
        before
    );
    sandbox
        .ae_within(&["score", DETECTOR, "bad", "--explain", "bad/why"])
        .assert_error(&["--explain bad/why", "inside the input folder"]);
    assert!(!root.join("why").exists());
    sandbox
        .ae_within(&["export", DETECTOR, "--onnx", DETECTOR])
        .assert_error(&["is also the detector"]);
    // Usage errors are clap's, with its exit status 2.
    let run = sandbox.ae_within(&["score", DETECTOR, TEST_IDX, "--format", "tiff"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("unknown format \"tiff\""),
        "{}",
        run.stderr
    );
    assert_eq!(sandbox.ae_within(&["score", DETECTOR]).code, Some(2));
}

/// Rewrites the safetensors header of `path` into `to` with `edit` applied
/// to its `__metadata__`.
fn edit_metadata(
    path: &Path,
    to: &Path,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) {
    let bytes = fs::read(path).expect("detector");
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).expect("header");
    edit(header["__metadata__"].as_object_mut().expect("metadata"));
    let mut text = serde_json::to_string(&header).expect("json");
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text.as_bytes());
    out.extend(&bytes[8 + len..]);
    fs::write(to, out).expect("write");
}

#[test]
fn detectors_that_are_not_whole_are_refused() {
    let sandbox = trained();
    let detector = sandbox.path().join(DETECTOR);
    let edited = sandbox.path().join("edited.safetensors");
    // Unchanged, the rewrite scores: the edits below are what is refused.
    edit_metadata(&detector, &edited, |_| {});
    sandbox
        .ae_within(&[
            "score",
            "edited.safetensors",
            TEST_IDX,
            "--out",
            "out.parquet",
        ])
        .assert_ok();
    type Edit = fn(&mut serde_json::Map<String, serde_json::Value>);
    let cases: [(Edit, &[&str]); 5] = [
        (
            |m| {
                m.remove("threshold");
            },
            &["`threshold` is missing"],
        ),
        (
            |m| {
                m.insert("threshold".into(), "abc".into());
            },
            &["`threshold` is \"abc\""],
        ),
        (
            |m| {
                m.insert("format_version".into(), "2".into());
            },
            &["`format_version` is \"2\"", "reads version 1"],
        ),
        (
            |m| {
                m.insert("latent".into(), "7".into());
            },
            &["latent size 7"],
        ),
        (|m| m.clear(), &["no `format` key", "not an ae detector"]),
    ];
    for (edit, needles) in cases {
        edit_metadata(&detector, &edited, edit);
        let run = sandbox.ae_within(&["score", "edited.safetensors", TEST_IDX]);
        run.assert_error(needles);
        run.assert_error(&["edited.safetensors"]);
    }
    // Weights that are NaN, metadata intact.
    let mut bytes = fs::read(&detector).expect("detector");
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).expect("header");
    let start = header["decoder.bias"]["data_offsets"][0]
        .as_u64()
        .expect("offset") as usize;
    bytes[8 + len + start..8 + len + start + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    fs::write(&edited, bytes).expect("write");
    sandbox
        .ae_within(&["score", "edited.safetensors", TEST_IDX])
        .assert_error(&["edited.safetensors", "not finite numbers"]);
    // A model without the detector's metadata, a run that has none, a path
    // that is not there.
    sandbox
        .ae_within(&["score", "runs/synth/train/model.safetensors", TEST_IDX])
        .assert_error(&["model.safetensors", "not an ae detector"]);
    fs::create_dir_all(sandbox.path().join("runs/empty")).expect("mkdir");
    sandbox
        .ae_within(&["score", "runs/empty", TEST_IDX])
        .assert_error(&["runs/empty", "holds no detector", "ae pipeline"]);
    sandbox
        .ae_within(&["score", "runs/nothing", TEST_IDX])
        .assert_error(&["runs/nothing", "no such file"]);
    // The same checks stand before an export, which writes nothing then.
    sandbox
        .ae_within(&["export", "edited.safetensors", "--onnx", "d.onnx"])
        .assert_error(&["edited.safetensors", "not finite numbers"]);
    sandbox
        .ae_within(&["export", "runs/empty", "--onnx", "d.onnx"])
        .assert_error(&["holds no detector"]);
    assert!(!sandbox.path().join("d.onnx").exists());
    sandbox
        .ae_within(&["export", DETECTOR, "--onnx", "runs"])
        .assert_error(&["cannot write runs"]);
}

#[test]
fn exit_statuses_say_what_was_found() {
    let sandbox = trained();
    let run = sandbox.ae_within(&["score", DETECTOR, TEST_IDX, "--fail-on-anomaly"]);
    let (flagged, images) = found(&run.stderr);
    assert!(flagged > 0, "the synthetic test split has anomalies");
    assert_eq!(images, SYNTH_TEST);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 1 + SYNTH_TEST);

    let run = sandbox.ae_within(&[
        "score",
        DETECTOR,
        TEST_IDX,
        "--fail-on-anomaly",
        "--threshold",
        "1e9",
    ]);
    run.assert_ok();
    assert_eq!(found(&run.stderr), (0, SYNTH_TEST));
    assert!(run.stderr.contains("from --threshold"), "{}", run.stderr);

    let run = sandbox.ae_within(&["score", DETECTOR, TEST_IDX, "--threshold", "-1"]);
    run.assert_ok();
    assert_eq!(found(&run.stderr), (SYNTH_TEST, SYNTH_TEST));
    sandbox
        .ae_within(&["score", DETECTOR, TEST_IDX, "--threshold", "NaN"])
        .assert_error(&["--threshold NaN"]);
}

/// The list column `name` as one Vec per row.
fn lists(frame: &DataFrame, name: &str) -> Vec<Vec<f32>> {
    frame
        .column(name)
        .expect(name)
        .list()
        .expect("a list column")
        .amortized_iter()
        .map(|row| {
            row.expect("no missing rows")
                .as_ref()
                .f32()
                .expect("f32 items")
                .into_no_null_iter()
                .collect()
        })
        .collect()
}

#[test]
fn explain_draws_the_flagged_images_and_their_errors() {
    let sandbox = trained();
    let rows = score(
        &sandbox,
        &[TEST_IDX],
        &["--explain", "why", "--top", "3", "--explain-raw"],
    );
    let mse = f32_column(&rows, "mse");
    let flags = bool_column(&rows, "is_anomaly");
    let mut flagged: Vec<(f32, usize)> = mse
        .iter()
        .zip(&flags)
        .enumerate()
        .filter(|(_, (_, f))| **f)
        .map(|(i, (s, _))| (*s, i))
        .collect();
    assert!(flagged.len() > 3, "the synthetic test split has anomalies");
    flagged.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));

    // The three highest, by rank, each a real picture.
    let names: Vec<String> = (0..3)
        .map(|r| format!("{:06}-t10k-images-idx3-ubyte-{}.png", r + 1, flagged[r].1))
        .collect();
    let mut expected = names.clone();
    expected.push("error_maps.parquet".into());
    expected.sort();
    assert_eq!(sandbox.files_under("why"), expected);
    for name in &names {
        let image = image::open(sandbox.path().join("why").join(name)).expect("png");
        assert!(
            image.width() > 3 * 28 * 4 && image.height() > 28 * 4,
            "{name}"
        );
    }
    // The raw maps: their mean is the score.
    let raw = read_parquet(&sandbox.path().join("why/error_maps.parquet"));
    let scores = f32_column(&raw, "mse");
    assert_eq!(scores, flagged[..3].iter().map(|f| f.0).collect::<Vec<_>>());
    assert_eq!(
        u64s(&raw, "index"),
        flagged[..3]
            .iter()
            .map(|f| Some(f.1 as u64))
            .collect::<Vec<_>>()
    );
    for (map, score) in lists(&raw, "squared_error").iter().zip(&scores) {
        assert_eq!(map.len(), PIXELS);
        let mean = map.iter().map(|&e| f64::from(e)).sum::<f64>() / PIXELS as f64;
        assert!((mean - f64::from(*score)).abs() < 1e-6, "{mean} vs {score}");
    }

    // Without --top: one map per flagged image.
    sandbox
        .ae_within(&["score", DETECTOR, TEST_IDX, "--explain", "all"])
        .assert_ok();
    assert_eq!(sandbox.files_under("all").len(), flagged.len());
    // A file where the folder should be.
    fs::write(sandbox.path().join("afile"), "mine").expect("write");
    sandbox
        .ae_within(&["score", DETECTOR, TEST_IDX, "--explain", "afile"])
        .assert_error(&["afile"]);
    assert_eq!(
        fs::read_to_string(sandbox.path().join("afile")).expect("kept"),
        "mine"
    );
    // --top and --explain-raw need --explain.
    assert_eq!(
        sandbox
            .ae_within(&["score", DETECTOR, TEST_IDX, "--top", "3"])
            .code,
        Some(2)
    );
}

/// The Python that runs the ONNX test: `AE_PYTHON` (set by `.ci/run` to a
/// virtual environment with numpy, onnx and onnxruntime), else `python3`.
fn python() -> String {
    std::env::var("AE_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Little-endian f32s from a raw file.
fn raw_f32s(path: &Path) -> Vec<f32> {
    fs::read(path)
        .expect("raw floats")
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect()
}

/// Exports the run `run`'s detector and runs it in onnxruntime on the
/// run's own test split: reconstructions within 1e-5 of `ae`'s (pixels are
/// in [0, 1]; the two GEMMs sum in different orders in float32), scores
/// within 1e-5 relative, and the same flags except where a score is that
/// close to the threshold.
fn onnx_matches_ae(sandbox: &Sandbox, run: &str) {
    let root = sandbox.path().join("runs").join(run);
    sandbox
        .ae_within(&["export", &format!("runs/{run}"), "--onnx", "d.onnx"])
        .assert_ok();
    let split = fs::read(root.join("data/test.safetensors")).expect("split");
    let images = split_pixels(&split);
    let n = images.len() / PIXELS;
    let raw: Vec<u8> = images.iter().flat_map(|v| v.to_le_bytes()).collect();
    fs::write(sandbox.path().join("images.f32"), raw).expect("write");
    let out = sandbox.path().join("ort");
    fs::create_dir_all(&out).expect("mkdir");
    let script = crate::support::workspace_root().join("tests/e2e/onnx_run.py");
    let status = std::process::Command::new(python())
        .arg(&script)
        .args(["d.onnx", "images.f32", &n.to_string(), "ort"])
        .current_dir(sandbox.path())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {} (set AE_PYTHON): {e}", python()));
    assert!(status.success(), "onnxruntime failed on the exported model");

    let ours = f32s(
        &fs::read(root.join("infer/decoded.safetensors")).expect("decoded"),
        "images",
    );
    let theirs = raw_f32s(&out.join("reconstruction.f32"));
    assert_eq!(theirs.len(), ours.len());
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "reconstructions differ by up to {worst}");

    let eval = read_parquet(&root.join("eval/scores.parquet"));
    let scores = f32_column(&eval, "mse");
    let flags = bool_column(&eval, "is_anomaly");
    let onnx_scores = raw_f32s(&out.join("score.f32"));
    let onnx_flags: Vec<bool> = fs::read(out.join("is_anomaly.u8"))
        .expect("flags")
        .iter()
        .map(|&b| b == 1)
        .collect();
    let metadata: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("metadata.json")).expect("json")).expect("json");
    let threshold: f64 = metadata["metadata"]["threshold"]
        .as_str()
        .expect("threshold in metadata_props")
        .parse()
        .expect("a number");
    let detector_meta = safetensors::SafeTensors::read_metadata(
        &fs::read(root.join("eval/detector.safetensors")).expect("detector"),
    )
    .expect("header")
    .1;
    assert_eq!(
        metadata["metadata"]
            .as_object()
            .expect("props")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_string()))
            .collect::<std::collections::HashMap<_, _>>(),
        detector_meta.metadata().clone().expect("metadata"),
    );
    assert!(metadata["opset"][0].as_i64().expect("opset") >= 13);
    assert_eq!(
        metadata["outputs"],
        serde_json::json!(["reconstruction", "score", "is_anomaly"])
    );
    assert_eq!(onnx_scores.len(), n);
    let mut worst = 0.0f64;
    for i in 0..n {
        let (a, b) = (f64::from(scores[i]), f64::from(onnx_scores[i]));
        worst = worst.max((a - b).abs() / a);
        if (a - threshold).abs() > 1e-5 * threshold {
            assert_eq!(
                onnx_flags[i], flags[i],
                "image {i}: {a} vs {b}, threshold {threshold}"
            );
        }
    }
    assert!(worst < 1e-5, "scores differ by up to {worst} relative");
    assert!(flags.iter().any(|&f| f), "some images are flagged");
}

#[test]
fn the_onnx_export_runs_in_onnxruntime_as_ae_scores() {
    let sandbox = trained();
    onnx_matches_ae(&sandbox, "synth");
    // And on real MNIST test images.
    if let Some(data) =
        real_data("the_onnx_export_runs_in_onnxruntime_as_ae_scores (real MNIST part)")
    {
        let sandbox = Sandbox::new();
        sandbox
            .ae(&["pipeline", "configs/quick.toml"], Some(&data))
            .assert_ok();
        onnx_matches_ae(&sandbox, "quick");
    }
}
