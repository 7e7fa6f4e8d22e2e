//! Which files the data stage reads for a config: each split's images and
//! labels, where they are (or that they are still missing), and how they
//! are checked.

use std::path::{Path, PathBuf};

use crate::{DataConfig, Dataset, IdxFile, SplitFiles, SplitSource, Validation, locate};

/// Which split of the written data a pair of files feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The training split.
    Train,
    /// The test split.
    Test,
    /// The validation split (`data.validation`).
    Validation,
    /// Appended to the test split as true anomalies (`data.outliers`).
    Outliers,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Train => "train",
            Role::Test => "test",
            Role::Validation => "validation",
            Role::Outliers => "outlier",
        }
    }

    /// Which arrays of an `.npz` archive the split reads: `train`, `val`
    /// or `test`.
    pub(crate) fn npz_prefix(self) -> &'static str {
        match self {
            Role::Train => "train",
            Role::Validation => "val",
            Role::Test | Role::Outliers => "test",
        }
    }
}

/// One split's two files of a published dataset.
#[derive(Debug, Clone)]
pub(crate) struct PairSource {
    pub(crate) images: FileSource,
    pub(crate) labels: FileSource,
    /// The published dataset the files belong to, whose digests they must
    /// match and whose mirrors serve them.
    pub(crate) published: Published,
}

/// What is known of a published dataset's split.
#[derive(Debug, Clone)]
pub(crate) struct Published {
    pub(crate) dataset: Dataset,
    pub(crate) files: SplitFiles,
    pub(crate) mirrors: Vec<String>,
}

/// One file of a pair.
#[derive(Debug, Clone)]
pub(crate) struct FileSource {
    /// The role, as the manifest and fingerprints know it: `train images`.
    pub(crate) name: String,
    /// Where the file is; `None` when a published file is not there yet.
    pub(crate) path: Option<PathBuf>,
}

/// The published pairs `cfg` reads, in the order they are written:
/// training split and test split of a published dataset, then the outliers
/// appended to the test split. (The user's own files are [`own`].)
pub(crate) fn pairs(cfg: &DataConfig, data_root: &Path) -> Vec<PairSource> {
    let published = |role: Role, dataset: Dataset, files: SplitFiles| {
        let dir = data_root.join(dataset.name());
        let file = |file: &IdxFile, part: &str| FileSource {
            name: format!("{} {part}", role.name()),
            path: locate(&dir, file),
        };
        PairSource {
            images: file(&files.images, "images"),
            labels: file(&files.labels, "labels"),
            published: Published {
                dataset,
                files,
                mirrors: cfg.mirrors_for(dataset),
            },
        }
    };
    let mut pairs = match cfg.dataset.published() {
        Some(dataset) => vec![
            published(Role::Train, dataset, dataset.train_files()),
            published(Role::Test, dataset, dataset.test_files()),
        ],
        None => Vec::new(),
    };
    if let Some(outliers) = &cfg.outliers {
        let dataset = outliers.dataset;
        pairs.push(published(Role::Outliers, dataset, dataset.test_files()));
    }
    pairs
}

/// The user's own sources `cfg` reads, each with its role and key:
/// `data.train`, `data.test` and, when it names files, `data.validation`.
pub(crate) fn own(cfg: &DataConfig) -> Vec<(Role, &'static str, &SplitSource)> {
    let mut sources = Vec::new();
    if let Some(train) = &cfg.train {
        sources.push((Role::Train, "data.train", train));
    }
    if let Some(test) = &cfg.test {
        sources.push((Role::Test, "data.test", test));
    }
    if let Some(Validation::Source(validation)) = &cfg.validation {
        sources.push((Role::Validation, "data.validation", validation));
    }
    sources
}

/// The files a user's source reads, each named by its role for the
/// manifest: `train images`, `train labels`, `train file`, and for a
/// folder `train image <class>/<file>`. A folder that cannot be listed is
/// given as itself, so that the stage runs and says what is wrong.
pub(crate) fn own_files(
    role: Role,
    source: &SplitSource,
    format: Option<crate::Format>,
) -> Vec<FileSource> {
    let file = |part: &str, path: &PathBuf| FileSource {
        name: format!("{} {part}", role.name()),
        path: Some(path.clone()),
    };
    match source {
        SplitSource::Pair(pair) => std::iter::once(file("images", &pair.images))
            .chain(pair.labels.iter().map(|l| file("labels", l)))
            .collect(),
        SplitSource::Path(path) => {
            // The stage's own rule; a name it cannot place is its to report.
            let is_folder =
                crate::formats::detect(path, format, "").is_ok_and(|f| f == crate::Format::Folder);
            if !is_folder {
                return vec![file("file", path)];
            }
            match crate::formats::image_files(path) {
                Ok(listing) => listing
                    .files
                    .iter()
                    .map(|f| FileSource {
                        name: format!(
                            "{} image {}",
                            role.name(),
                            f.strip_prefix(path).unwrap_or(f).display()
                        ),
                        path: Some(f.clone()),
                    })
                    .collect(),
                Err(_) => vec![file("folder", path)],
            }
        }
    }
}
