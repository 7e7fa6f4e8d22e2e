//! Running `ae` in a scratch folder, synthetic IDX files, a local HTTP mirror.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) use ae_testkit::{
    LocalMirror, MNIST_FILES, dead_mirror, gzip, idx_images, idx_images_of, idx_labels,
    idx_labels_of, synthetic_digits,
};

/// The config of [`Sandbox::synthetic`]: the quick config's shape (2 epochs)
/// on synthetic digit-like images, as a user's own IDX files.
pub(crate) const SYNTH: &str = "configs/synth.toml";

/// Images in the synthetic training split.
pub(crate) const SYNTH_TRAIN: usize = 6000;
/// Images in the synthetic test split.
pub(crate) const SYNTH_TEST: usize = 1000;

/// The workspace root, where `configs/` lives.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The real datasets, or `None` after saying why the caller skips.
pub(crate) fn real_data(test: &str) -> Option<PathBuf> {
    match std::env::var_os("AE_DATA_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            // Relative to the workspace root, as CI and the README give it.
            let dir = if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            };
            assert!(
                dir.join("mnist").is_dir(),
                "AE_DATA_DIR={} has no mnist/ folder",
                dir.display()
            );
            Some(dir)
        }
        None => {
            // Straight to stderr: the test harness captures `eprintln!`, and a
            // skip must show in the output even when the test passes.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: AE_DATA_DIR is not set; set it to the folder holding mnist/ to run it"
            );
            None
        }
    }
}

/// A scratch folder that `ae` runs in, with a copy of the repository's configs.
pub(crate) struct Sandbox {
    dir: tempfile::TempDir,
}

/// What one `ae` invocation did.
pub(crate) struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Sandbox {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let configs = dir.path().join("configs");
        fs::create_dir_all(&configs).expect("mkdir configs");
        for entry in fs::read_dir(workspace_root().join("configs")).expect("list configs") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                fs::copy(&path, configs.join(path.file_name().expect("name")))
                    .expect("copy config");
            }
        }
        Self { dir }
    }

    /// A sandbox with synthetic digit-like images as the user's own IDX
    /// files under `data/own/` (gzip; [`SYNTH_TRAIN`] training and
    /// [`SYNTH_TEST`] test images, labels `i % 10`) and [`SYNTH`], a
    /// 2-epoch experiment named `synth` on them.
    pub(crate) fn synthetic() -> Self {
        let sandbox = Self::new();
        let own = sandbox.path().join("data/own");
        fs::create_dir_all(&own).expect("mkdir");
        for (stem, n, seed) in [("train", SYNTH_TRAIN, 1), ("t10k", SYNTH_TEST, 2)] {
            let (pixels, labels) = synthetic_digits(n, seed);
            fs::write(
                own.join(format!("{stem}-images-idx3-ubyte.gz")),
                gzip(&idx_images_of(&pixels)),
            )
            .expect("write images");
            fs::write(
                own.join(format!("{stem}-labels-idx1-ubyte.gz")),
                gzip(&idx_labels_of(&labels)),
            )
            .expect("write labels");
        }
        sandbox.write(
            SYNTH,
            r#"# The quick config on synthetic images: no download needed.
schema = 1
name = "synth"

[data]
dataset = "files"
train = { images = "data/own/train-images-idx3-ubyte.gz", labels = "data/own/train-labels-idx1-ubyte.gz" }
test = { images = "data/own/t10k-images-idx3-ubyte.gz", labels = "data/own/t10k-labels-idx1-ubyte.gz" }

[train]
epochs = 2
"#,
        );
        sandbox
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to `name` in the sandbox and returns its relative path.
    pub(crate) fn write(&self, name: &str, text: &str) -> String {
        let path = self.path().join(name);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(&path, text).expect("write");
        name.to_string()
    }

    /// Runs `ae args...` here with `AE_DATA_DIR` set to `data_dir` (unset when `None`).
    pub(crate) fn ae(&self, args: &[&str], data_dir: Option<&Path>) -> Run {
        self.ae_with_env(args, data_dir, &[])
    }

    /// [`Sandbox::ae`] with more environment variables set.
    pub(crate) fn ae_with_env(
        &self,
        args: &[&str],
        data_dir: Option<&Path>,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ae"));
        command
            .args(args)
            .current_dir(self.path())
            .env_remove("AE_RUNS_DIR")
            .env_remove("AE_LOG")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied());
        match data_dir {
            Some(dir) => command.env("AE_DATA_DIR", dir),
            None => command.env_remove("AE_DATA_DIR"),
        };
        let Output {
            status,
            stdout,
            stderr,
        } = command.output().expect("run ae");
        Run {
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Runs `ae args...` here (no `AE_DATA_DIR`), failing the test if it does
    /// not end within 60 s: for what once hung.
    pub(crate) fn ae_within(&self, args: &[&str]) -> Run {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ae"))
            .args(args)
            .current_dir(self.path())
            .env_remove("AE_DATA_DIR")
            .env_remove("AE_RUNS_DIR")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ae");
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().expect("wait").is_none() {
            if Instant::now() > deadline {
                child.kill().expect("kill");
                panic!("`ae {}` hung", args.join(" "));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let output = child.wait_with_output().expect("output");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Every file under `dir` (relative to the sandbox), sorted.
    pub(crate) fn files_under(&self, dir: &str) -> Vec<String> {
        let root = self.path().join(dir);
        let mut found = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    found.push(
                        path.strip_prefix(&root)
                            .expect("under root")
                            .display()
                            .to_string(),
                    );
                }
            }
        }
        found.sort();
        found
    }
}

impl Run {
    #[track_caller]
    pub(crate) fn assert_ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "ae failed:\n{}", self.stderr);
        self
    }

    /// Asserts a clean failure: exit 1, an `error:` line, no panic, and every
    /// `needle` in the message.
    #[track_caller]
    pub(crate) fn assert_error(&self, needles: &[&str]) -> &Self {
        assert_eq!(
            self.code,
            Some(1),
            "expected exit 1; stderr:\n{}",
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "ae panicked:\n{}",
            self.stderr
        );
        let message = self
            .stderr
            .lines()
            .find(|line| line.starts_with("error: "))
            .unwrap_or_else(|| panic!("no `error:` line in:\n{}", self.stderr));
        for needle in needles {
            assert!(
                message.contains(needle),
                "{needle:?} not in the error:\n{message}"
            );
        }
        self
    }
}

/// Writes a structurally valid synthetic MNIST (4 train, 2 test images) as
/// `.gz` files under `<root>/mnist/`, with `replace` swapping in other bytes
/// for the named file.
pub(crate) fn synthetic_mnist(root: &Path, replace: Option<(&str, Vec<u8>)>) {
    let dir = root.join("mnist");
    fs::create_dir_all(&dir).expect("mkdir");
    let contents = [idx_images(4), idx_labels(4), idx_images(2), idx_labels(2)];
    for (name, content) in MNIST_FILES.iter().zip(contents) {
        let bytes = match &replace {
            Some((replaced, bytes)) if replaced == name => bytes.clone(),
            _ => gzip(&content),
        };
        fs::write(dir.join(format!("{name}.gz")), bytes).expect("write");
    }
}

/// The values of f32 tensor `name` in the safetensors file `bytes`.
pub(crate) fn f32s(bytes: &[u8], name: &str) -> Vec<f32> {
    let file = safetensors::SafeTensors::deserialize(bytes).expect("a safetensors file");
    let view = file
        .tensor(name)
        .unwrap_or_else(|_| panic!("no tensor `{name}`"));
    view.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect()
}

/// The images of a split file `bytes` as the values they stand for: u8
/// pixels (8-bit sources) as `p / 255`, f32 as they are.
pub(crate) fn split_pixels(bytes: &[u8]) -> Vec<f32> {
    let file = safetensors::SafeTensors::deserialize(bytes).expect("a safetensors file");
    let view = file.tensor("images").expect("no tensor `images`");
    match view.dtype() {
        safetensors::Dtype::U8 => view.data().iter().map(|&p| f32::from(p) / 255.0).collect(),
        safetensors::Dtype::F32 => f32s(bytes, "images"),
        other => panic!("split images are {other:?}"),
    }
}

/// A Parquet file as a user's polars reads it (not through `ae`'s reader).
pub(crate) fn read_parquet(path: &Path) -> polars::prelude::DataFrame {
    use polars::prelude::SerReader;
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    polars::prelude::ParquetReader::new(file)
        .finish()
        .expect("a readable Parquet file")
}

/// The values of f32 column `name`, none missing.
pub(crate) fn f32_column(frame: &polars::prelude::DataFrame, name: &str) -> Vec<f32> {
    frame
        .column(name)
        .unwrap_or_else(|_| panic!("no column `{name}`"))
        .f32()
        .expect("an f32 column")
        .into_no_null_iter()
        .collect()
}

/// The values of boolean column `name`, none missing.
pub(crate) fn bool_column(frame: &polars::prelude::DataFrame, name: &str) -> Vec<bool> {
    frame
        .column(name)
        .unwrap_or_else(|_| panic!("no column `{name}`"))
        .bool()
        .expect("a boolean column")
        .iter()
        .map(|v| v.expect("no missing values"))
        .collect()
}

/// A named pipe at `path`, in place of whatever was there.
#[cfg(unix)]
pub(crate) fn mkfifo(path: &Path) {
    let _ = fs::remove_file(path);
    let made = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", path.display());
}
