use std::path::{Path, PathBuf};

/// Every file name in a run directory, relative to it. Stages use these
/// constants and never spell a file name themselves.
pub mod files {
    /// The resolved experiment config, defaults filled in.
    pub const CONFIG: &str = "config.toml";
    /// What each stage read and wrote: see [`crate::Manifest`].
    pub const MANIFEST: &str = "manifest.json";
    /// The log of every `ae` invocation on this run, appended to.
    pub const RUN_LOG: &str = "run.log";
    /// Locked while an `ae` process works in the run directory.
    pub const LOCK: &str = ".lock";
    /// The training split: `images` f32 `[N, 784]`, `labels` u8 `[N]`
    /// (when the images have labels).
    pub const TRAIN_SPLIT: &str = "data/train.safetensors";
    /// The test split, in the same layout as [`TRAIN_SPLIT`].
    pub const TEST_SPLIT: &str = "data/test.safetensors";
    /// With `data.validation`: normal images held out of training, in the
    /// same layout as [`TRAIN_SPLIT`].
    pub const VALIDATION_SPLIT: &str = "data/validation.safetensors";
    /// The trained weights: `encoder.weight` `[L, 784]`, `encoder.bias` `[L]`,
    /// `decoder.weight` `[784, L]`, `decoder.bias` `[784]`.
    pub const MODEL: &str = "train/model.safetensors";
    /// Per epoch: `epoch,loss,val_loss,seconds`.
    pub const HISTORY: &str = "train/history.csv";
    /// The test split's codes: `latent` f32 `[N, L]`.
    pub const ENCODED: &str = "infer/encoded.safetensors";
    /// The test split's reconstructions: `images` f32 `[N, 784]`.
    pub const DECODED: &str = "infer/decoded.safetensors";
    /// The training split's reconstructions, written only when the threshold
    /// is computed on the training split: `images` f32 `[N, 784]`.
    pub const TRAIN_DECODED: &str = "infer/train_decoded.safetensors";
    /// The validation split's reconstructions, written only when the
    /// threshold is computed on it: `images` f32 `[N, 784]`.
    pub const VALIDATION_DECODED: &str = "infer/validation_decoded.safetensors";
    /// How training ended: epochs run, the epoch whose weights were kept
    /// and why it stopped, as JSON ([`crate::FitSummary`]).
    pub const FIT: &str = "train/fit.json";
    /// One row per test image: `index` u32, `label` u8, the score f32,
    /// `is_anomaly` bool, and with ground truth `is_outlier` bool.
    pub const SCORES: &str = "eval/scores.parquet";
    /// The one-file detector: the model's four tensors and, in the
    /// safetensors `__metadata__`, what scoring needs ([`crate::DetectorInfo`]).
    pub const DETECTOR: &str = "eval/detector.safetensors";
    /// The threshold, score summary and anomaly counts, as JSON.
    pub const METRICS: &str = "eval/metrics.json";
    /// With ground truth: the operating points as the threshold falls,
    /// `score,false_positive_rate,true_positive_rate,precision`.
    pub const ROC: &str = "eval/roc.csv";
    /// The report page; its figures sit beside it in `report/`.
    pub const REPORT_INDEX: &str = "report/index.html";
    /// The folder of the report's figures.
    pub const REPORT_DIR: &str = "report";
}

/// One experiment's directory, `runs/<name>/`; all artifact paths resolve against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The run directory at `root`. Nothing is created until something is written.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of one of the [`files`] in this run.
    pub fn path(&self, file: &str) -> PathBuf {
        self.root.join(file)
    }
}
