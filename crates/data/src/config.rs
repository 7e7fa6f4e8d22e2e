//! The `[data]` section of an experiment config.

use std::fmt;
use std::path::PathBuf;

use ae_store::Problem;
use serde::{Deserialize, Serialize};

use crate::Dataset;

/// `data.dataset`: a published dataset, or the user's own files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetChoice {
    /// MNIST, found under the data root or downloaded, checked against its
    /// published digests.
    Mnist,
    /// Fashion-MNIST, likewise.
    FashionMnist,
    /// The user's own images, where `data.train` and `data.test` say, in
    /// any format of [`Format`] (no published digest; their content is in
    /// the fingerprint).
    Files,
}

impl DatasetChoice {
    /// The published dataset chosen, if one is.
    pub fn published(self) -> Option<Dataset> {
        match self {
            DatasetChoice::Mnist => Some(Dataset::Mnist),
            DatasetChoice::FashionMnist => Some(Dataset::FashionMnist),
            DatasetChoice::Files => None,
        }
    }

    /// The name used in configs.
    pub fn name(self) -> &'static str {
        match self.published() {
            Some(dataset) => dataset.name(),
            None => "files",
        }
    }
}

impl From<Dataset> for DatasetChoice {
    fn from(dataset: Dataset) -> Self {
        match dataset {
            Dataset::Mnist => DatasetChoice::Mnist,
            Dataset::FashionMnist => DatasetChoice::FashionMnist,
        }
    }
}

impl fmt::Display for DatasetChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `{ images = "...", labels = "..." }`: one split of the user's own data
/// as a pair of files: IDX (`idx3-ubyte` images of 28×28, `idx1-ubyte`
/// labels; gzip or raw) or NumPy `.npy`. Without `labels` the images are
/// unlabelled. Paths are relative to the current directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePair {
    /// The images file.
    pub images: PathBuf,
    /// The labels file, if the images have labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<PathBuf>,
}

/// Where one split of the user's own images is: `data.train`, `data.test`
/// or `data.validation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a path to a file or folder of images (\"my/train.npz\", \"my/images/\"), or { images = \"...\", labels = \"...\" }"
)]
pub enum SplitSource {
    /// One file or folder: an `.npz` archive (its `train_*`, `val_*` or
    /// `test_*` arrays, by split), an `.npy` file of images, a `.csv` or
    /// `.parquet` table, an IDX images file, or a folder of images.
    Path(PathBuf),
    /// Images and labels in two files.
    Pair(FilePair),
}

impl fmt::Display for SplitSource {
    /// As TOML writes it: `"path"` or `{ images = "...", labels = "..." }`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitSource::Path(path) => write!(f, "{:?}", path.display().to_string()),
            SplitSource::Pair(pair) => {
                write!(f, "{{ images = {:?}", pair.images.display().to_string())?;
                if let Some(labels) = &pair.labels {
                    write!(f, ", labels = {:?}", labels.display().to_string())?;
                }
                f.write_str(" }")
            }
        }
    }
}

impl SplitSource {
    /// The paths it names, each with its key under `key` (`data.train`).
    pub fn paths(&self, key: &str) -> Vec<(String, &PathBuf)> {
        match self {
            SplitSource::Path(path) => vec![(key.to_string(), path)],
            SplitSource::Pair(pair) => std::iter::once((format!("{key}.images"), &pair.images))
                .chain(pair.labels.iter().map(|l| (format!("{key}.labels"), l)))
                .collect(),
        }
    }
}

/// The format of a file or folder of the user's images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// LeCun's IDX: `idx3-ubyte` images, `idx1-ubyte` labels, gzip or raw.
    Idx,
    /// A NumPy `.npy` array: uint8 pixels 0–255, or float32/float64 in [0, 1].
    Npy,
    /// A NumPy `.npz` archive in the MedMNIST layout (`train_images`,
    /// `train_labels`, `val_*`, `test_*`).
    Npz,
    /// A folder of images (PNG, JPEG, BMP): `root/<class>/*.png`, or flat.
    Folder,
    /// A CSV table in the Kaggle digit-recognizer layout: an optional
    /// `label` column and 784 pixel columns 0–255.
    Csv,
    /// A Parquet table in the same layout as [`Format::Csv`].
    Parquet,
}

impl Format {
    /// The name used in configs.
    pub fn name(self) -> &'static str {
        match self {
            Format::Idx => "idx",
            Format::Npy => "npy",
            Format::Npz => "npz",
            Format::Folder => "folder",
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }

    /// Every format, in the order the docs list them.
    pub const ALL: [Format; 6] = [
        Format::Idx,
        Format::Npy,
        Format::Npz,
        Format::Folder,
        Format::Csv,
        Format::Parquet,
    ];
}

impl std::str::FromStr for Format {
    type Err = String;

    /// A format by its [name](Format::name).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                format!("unknown format {name:?}; one of {}", names.join(", "))
            })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `data.validation`: normal images held out of training, to validate on,
/// stop early on, and set a threshold on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a fraction of the training images such as 0.1, or a path like data.train's (an .npz archive gives its val_* arrays)"
)]
pub enum Validation {
    /// This fraction of the training images, drawn with the config's seed
    /// and stratified by label when the images have labels.
    Fraction(f64),
    /// Images of their own.
    Source(SplitSource),
}

/// One entry of `data.normal_labels`: a class by number or by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a label number such as 3, or a class name such as \"good\""
)]
pub enum LabelRef {
    /// A label number.
    Number(u8),
    /// A class name (an image folder's class folder).
    Name(String),
}

impl fmt::Display for LabelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelRef::Number(n) => write!(f, "{n}"),
            LabelRef::Name(name) => write!(f, "{name:?}"),
        }
    }
}

/// `[data]`: which dataset, where its files live, how much of it to use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// `mnist`, `fashion-mnist`, or `files` (the user's own, see `train`
    /// and `test`).
    pub dataset: DatasetChoice,
    /// The data root; files live in `<dir>/<dataset>/`. `AE_DATA_DIR` overrides it.
    pub dir: PathBuf,
    /// With `dataset = "files"`: the training split's images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train: Option<SplitSource>,
    /// With `dataset = "files"`: the test split's images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<SplitSource>,
    /// The format of the user's files, where the extension does not tell
    /// (`.npy`, `.npz`, `.csv`, `.parquet`, a folder and IDX files named
    /// `*-ubyte[.gz]` are recognised).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// Resize images that are not 28×28 (Lanczos3 resampling) instead of
    /// refusing them.
    pub resize: bool,
    /// Normal images held out of training: a fraction of the training split,
    /// or a source of their own; written as the validation split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<Validation>,
    /// Use only the first N training images (all when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    /// Use only the first N test images (all when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_limit: Option<usize>,
    /// Base URLs tried in order for a missing file (the dataset's public
    /// mirrors when absent); each must serve `<file>.gz`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirrors: Option<Vec<String>>,
    /// Seconds to wait for a mirror to accept the connection.
    pub connect_timeout_secs: u64,
    /// Seconds a download may stall without receiving a byte.
    pub read_timeout_secs: u64,
    /// Seconds the download of one file from one mirror may take in all,
    /// however steadily bytes arrive; then the next mirror is tried.
    pub download_timeout_secs: u64,
    /// Train only on images with these labels, by number or class name (the
    /// one-class protocol); the test split keeps every image and marks those
    /// with other labels as anomalies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normal_labels: Option<Vec<LabelRef>>,
    /// Test images of another dataset appended to the test split, marked as
    /// anomalies (out-of-distribution detection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outliers: Option<Outliers>,
}

/// `data.outliers = { dataset = "fashion-mnist", count = 10000 }`: the first
/// `count` test images of `dataset` join the test split as anomalies, with
/// labels 10–19 for its classes 0–9. Its files are found under
/// `<dir>/<dataset>/` or downloaded from its public mirrors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outliers {
    /// Where the anomalies come from.
    pub dataset: Dataset,
    /// How many of its test images.
    pub count: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: DatasetChoice::Mnist,
            dir: PathBuf::from("data"),
            train: None,
            test: None,
            format: None,
            resize: false,
            validation: None,
            train_limit: None,
            test_limit: None,
            mirrors: None,
            connect_timeout_secs: 10,
            read_timeout_secs: 30,
            download_timeout_secs: 600,
            normal_labels: None,
            outliers: None,
        }
    }
}

impl DataConfig {
    /// The mirrors to try, in order, for a missing file of the published
    /// dataset `dataset`: `data.mirrors` for the main dataset when set,
    /// otherwise the dataset's public mirrors.
    pub fn mirrors_for(&self, dataset: Dataset) -> Vec<String> {
        match &self.mirrors {
            Some(mirrors) if self.dataset.published() == Some(dataset) => mirrors.clone(),
            _ => dataset
                .default_mirrors()
                .iter()
                .map(|m| m.to_string())
                .collect(),
        }
    }

    /// Whether the test split says which images are anomalies.
    pub fn has_ground_truth(&self) -> bool {
        self.normal_labels.is_some() || self.outliers.is_some()
    }

    /// Whether `data.validation` asks for a validation split.
    pub fn has_validation(&self) -> bool {
        self.validation.is_some()
    }

    /// Every invalid value in this section, with keys prefixed `data.`.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.dir.as_os_str().is_empty() {
            problems.push(Problem::new("data.dir", "\"\"", "must name a folder"));
        }
        problems.extend(self.validate_files());
        let published = self.dataset.published();
        let limits = [
            (
                "data.train_limit",
                self.train_limit,
                published.map(Dataset::train_len),
            ),
            (
                "data.test_limit",
                self.test_limit,
                published.map(Dataset::test_len),
            ),
        ];
        for (key, limit, available) in limits {
            match (limit, available) {
                (Some(0), None) => problems.push(Problem::new(key, 0, "must be at least 1")),
                (Some(limit), Some(available)) if limit == 0 || limit > available => {
                    problems.push(Problem::new(
                        key,
                        limit,
                        format!(
                            "must be between 1 and {available} (the split's size for {})",
                            self.dataset
                        ),
                    ));
                }
                _ => {}
            }
        }
        if let Some(mirrors) = &self.mirrors {
            if mirrors.is_empty() {
                problems.push(Problem::new(
                    "data.mirrors",
                    "[]",
                    "must list at least one URL (leave it out for the default mirrors)",
                ));
            }
            for mirror in mirrors {
                if !(mirror.starts_with("http://") || mirror.starts_with("https://")) {
                    problems.push(Problem::new(
                        "data.mirrors",
                        format!("{mirror:?}"),
                        "must hold http:// or https:// URLs",
                    ));
                }
            }
        }
        if let Some(labels) = &self.normal_labels {
            problems.extend(self.validate_normal_labels(labels));
        }
        if let Some(Validation::Fraction(fraction)) = self.validation
            && !(fraction > 0.0 && fraction < 1.0)
        {
            problems.push(Problem::new(
                "data.validation",
                fraction,
                "must be a fraction greater than 0 and less than 1, e.g. 0.1",
            ));
        }
        if let (Some(Validation::Source(source)), false) =
            (&self.validation, self.dataset == DatasetChoice::Files)
        {
            problems.push(Problem::new(
                "data.validation",
                source,
                format!(
                    "can name files only when data.dataset = \"files\" (it is \"{}\"): use a fraction such as 0.1",
                    self.dataset
                ),
            ));
        }
        if let (Some(format), false) = (self.format, self.dataset == DatasetChoice::Files) {
            problems.push(Problem::new(
                "data.format",
                format!("{:?}", format.name()),
                format!(
                    "is read only when data.dataset = \"files\" (it is \"{}\"): remove it",
                    self.dataset
                ),
            ));
        }
        if let Some(outliers) = &self.outliers {
            if Some(outliers.dataset) == self.dataset.published() {
                problems.push(Problem::new(
                    "data.outliers.dataset",
                    format!("{:?}", outliers.dataset.name()),
                    format!("must differ from data.dataset ({})", self.dataset),
                ));
            }
            let available = outliers.dataset.test_len();
            if outliers.count == 0 || outliers.count > available {
                problems.push(Problem::new(
                    "data.outliers.count",
                    outliers.count,
                    format!(
                        "must be between 1 and {available} (the test split's size for {})",
                        outliers.dataset
                    ),
                ));
            }
        }
        for (key, secs, most) in [
            ("data.connect_timeout_secs", self.connect_timeout_secs, 3600),
            ("data.read_timeout_secs", self.read_timeout_secs, 3600),
            (
                "data.download_timeout_secs",
                self.download_timeout_secs,
                86_400,
            ),
        ] {
            if !(1..=most).contains(&secs) {
                problems.push(Problem::new(
                    key,
                    secs,
                    format!("must be between 1 and {most} seconds"),
                ));
            }
        }
        problems
    }

    /// Numbers 0–9 for a published dataset (names need class folders), no
    /// repeats, and not every class unless outliers are added.
    fn validate_normal_labels(&self, labels: &[LabelRef]) -> Vec<Problem> {
        let shown = format!(
            "[{}]",
            labels
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut problems = Vec::new();
        let mut distinct = labels.to_vec();
        distinct.sort_by_key(ToString::to_string);
        distinct.dedup();
        if labels.is_empty() || distinct.len() != labels.len() {
            problems.push(Problem::new(
                "data.normal_labels",
                shown,
                "must list distinct labels, e.g. [3] or [\"good\"]",
            ));
            return problems;
        }
        if self.dataset.published().is_some() {
            let numbers: Option<Vec<u8>> = labels
                .iter()
                .map(|l| match l {
                    LabelRef::Number(n) if *n <= 9 => Some(*n),
                    _ => None,
                })
                .collect();
            match numbers {
                None => problems.push(Problem::new(
                    "data.normal_labels",
                    shown,
                    format!(
                        "must list labels from 0 to 9 for {}, e.g. [3]",
                        self.dataset
                    ),
                )),
                Some(numbers) if numbers.len() == 10 && self.outliers.is_none() => {
                    problems.push(Problem::new(
                        "data.normal_labels",
                        shown,
                        "leaves no test image to count as an anomaly: list fewer labels, or add data.outliers",
                    ))
                }
                Some(_) => {}
            }
        }
        problems
    }

    /// `data.train` and `data.test` are set exactly when `dataset = "files"`.
    fn validate_files(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let files = self.dataset == DatasetChoice::Files;
        for (key, split) in [("data.train", &self.train), ("data.test", &self.test)] {
            match split {
                None if files => problems.push(Problem::new(
                    key,
                    "(missing)",
                    "must name the split's images when data.dataset = \"files\": a file or folder (\"my/train.npz\", \"my/train/\") or { images = \"my/train-images-idx3-ubyte.gz\", labels = \"my/train-labels-idx1-ubyte.gz\" }",
                )),
                Some(source) if !files => problems.push(Problem::new(
                    key,
                    source,
                    format!(
                        "is read only when data.dataset = \"files\" (it is \"{}\"): remove it, or set data.dataset = \"files\"",
                        self.dataset
                    ),
                )),
                Some(source) => problems.extend(empty_paths(source, key)),
                None => {}
            }
        }
        if let Some(Validation::Source(source)) = &self.validation {
            problems.extend(empty_paths(source, "data.validation"));
        }
        problems
    }
}

/// A problem for each empty path of `source`.
fn empty_paths(source: &SplitSource, key: &str) -> Vec<Problem> {
    source
        .paths(key)
        .into_iter()
        .filter(|(_, path)| path.as_os_str().is_empty())
        .map(|(key, _)| Problem::new(key, "\"\"", "must name a file or folder"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(DataConfig::default().validate(), vec![]);
    }

    #[test]
    fn ground_truth_settings_are_checked() {
        let numbers = |n: &[u8]| n.iter().map(|&n| LabelRef::Number(n)).collect::<Vec<_>>();
        let one_class = DataConfig {
            normal_labels: Some(numbers(&[3])),
            ..DataConfig::default()
        };
        assert_eq!(one_class.validate(), vec![]);
        assert!(one_class.has_ground_truth());
        let all: Vec<u8> = (0..10).collect();
        let named = vec![LabelRef::Name("good".into())];
        for bad in [
            vec![],
            numbers(&[10]),
            numbers(&[3, 3]),
            numbers(&all),
            named,
        ] {
            let cfg = DataConfig {
                normal_labels: Some(bad.clone()),
                ..DataConfig::default()
            };
            let keys: Vec<_> = cfg.validate().into_iter().map(|p| p.key).collect();
            assert_eq!(keys, ["data.normal_labels"], "{bad:?}");
        }
        let cfg = DataConfig {
            outliers: Some(Outliers {
                dataset: Dataset::Mnist,
                count: 10_001,
            }),
            ..DataConfig::default()
        };
        let keys: Vec<_> = cfg.validate().into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["data.outliers.dataset", "data.outliers.count"]);
    }

    #[test]
    fn own_files_need_both_splits_and_only_with_the_files_dataset() {
        let pair = |stem: &str| {
            SplitSource::Pair(FilePair {
                images: format!("{stem}-images.gz").into(),
                labels: Some(format!("{stem}-labels.gz").into()),
            })
        };
        let files = DataConfig {
            dataset: DatasetChoice::Files,
            train: Some(pair("train")),
            test: Some(pair("test")),
            // Any size is fine until the files are read.
            train_limit: Some(100_000),
            ..DataConfig::default()
        };
        assert_eq!(files.validate(), vec![]);
        let keys = |cfg: &DataConfig| -> Vec<String> {
            cfg.validate().into_iter().map(|p| p.key).collect()
        };
        let missing = DataConfig {
            test: None,
            train_limit: Some(0),
            ..files.clone()
        };
        assert_eq!(keys(&missing), ["data.test", "data.train_limit"]);
        let stray = DataConfig {
            dataset: DatasetChoice::Mnist,
            ..files.clone()
        };
        assert_eq!(
            keys(&stray),
            ["data.train", "data.test", "data.train_limit"]
        );
        let empty = DataConfig {
            train: Some(SplitSource::Pair(FilePair {
                images: PathBuf::new(),
                labels: Some("l.gz".into()),
            })),
            validation: Some(Validation::Source(SplitSource::Path(PathBuf::new()))),
            ..files.clone()
        };
        assert_eq!(keys(&empty), ["data.train.images", "data.validation"]);
        // Names need the classes' folders; numbers above 9 are fine there too.
        let named = DataConfig {
            normal_labels: Some(vec![LabelRef::Name("good".into()), LabelRef::Number(12)]),
            validation: Some(Validation::Fraction(0.1)),
            ..files
        };
        assert_eq!(keys(&named), Vec::<String>::new());
        for fraction in [0.0, 1.0, -0.5, f64::NAN] {
            let cfg = DataConfig {
                validation: Some(Validation::Fraction(fraction)),
                ..DataConfig::default()
            };
            assert_eq!(keys(&cfg), ["data.validation"], "{fraction}");
        }
    }

    #[test]
    fn sources_parse_as_a_path_or_a_pair_with_a_clear_message_otherwise() {
        let parse = |text: &str| toml::from_str::<DataConfig>(text);
        let cfg = parse("dataset = \"files\"\ntrain = \"my/train.npz\"\nvalidation = 0.2\nnormal_labels = [\"good\", 3]\n[test]\nimages = \"t.npy\"\n").expect("valid");
        assert_eq!(cfg.train, Some(SplitSource::Path("my/train.npz".into())));
        assert_eq!(
            cfg.test,
            Some(SplitSource::Pair(FilePair {
                images: "t.npy".into(),
                labels: None
            }))
        );
        assert_eq!(cfg.validation, Some(Validation::Fraction(0.2)));
        assert_eq!(
            cfg.normal_labels,
            Some(vec![LabelRef::Name("good".into()), LabelRef::Number(3)])
        );
        let err = parse("train = 3\n").expect_err("a number").to_string();
        assert!(
            err.contains("a path to a file or folder of images"),
            "{err}"
        );
        let err = parse("train = { images = \"a\", label = \"b\" }\n")
            .expect_err("a typo")
            .to_string();
        assert!(err.contains("a path to a file or folder"), "{err}");
    }

    #[test]
    fn reports_every_problem() {
        let cfg = DataConfig {
            train_limit: Some(0),
            test_limit: Some(10_001),
            mirrors: Some(vec!["ftp://x".into()]),
            read_timeout_secs: 0,
            ..DataConfig::default()
        };
        let keys: Vec<_> = cfg.validate().into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "data.train_limit",
                "data.test_limit",
                "data.mirrors",
                "data.read_timeout_secs"
            ]
        );
    }
}
