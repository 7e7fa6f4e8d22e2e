//! Which files the data stage reads for a config: each split's images and
//! labels, where they are (or that they are still missing), and how they
//! are checked.

use std::path::{Path, PathBuf};

use crate::{DataConfig, Dataset, Fix, IdxFile, SplitFiles, locate};

/// Which split of the written data a pair of files feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The training split.
    Train,
    /// The test split.
    Test,
    /// Appended to the test split as true anomalies (`data.outliers`).
    Outliers,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Train => "train",
            Role::Test => "test",
            Role::Outliers => "outlier",
        }
    }
}

/// One split's two files.
#[derive(Debug, Clone)]
pub(crate) struct PairSource {
    pub(crate) role: Role,
    pub(crate) images: FileSource,
    pub(crate) labels: FileSource,
    /// The published dataset the files belong to, whose digests they must
    /// match and whose mirrors serve them; `None` for the user's own files.
    pub(crate) published: Option<Published>,
}

impl PairSource {
    /// `train`, `test` or `outlier`: the key of the user's own pair
    /// (`data.train`), and the first word of the files' names.
    pub(crate) fn role_key(&self) -> &'static str {
        self.role.name()
    }

    /// What a user can do about a bad file of this pair.
    pub(crate) fn fix(&self) -> Fix {
        if self.published.is_some() {
            Fix::Redownload
        } else {
            Fix::Replace
        }
    }
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

/// The pairs `cfg` reads, in the order they are written: training split,
/// test split, then the outliers appended to it.
pub(crate) fn pairs(cfg: &DataConfig, data_root: &Path) -> Vec<PairSource> {
    let published = |role: Role, dataset: Dataset, files: SplitFiles| {
        let dir = data_root.join(dataset.name());
        let file = |file: &IdxFile, part: &str| FileSource {
            name: format!("{} {part}", role.name()),
            path: locate(&dir, file),
        };
        PairSource {
            role,
            images: file(&files.images, "images"),
            labels: file(&files.labels, "labels"),
            published: Some(Published {
                dataset,
                files,
                mirrors: cfg.mirrors_for(dataset),
            }),
        }
    };
    let own = |role: Role, pair: Option<&crate::IdxPair>| {
        let file = |path: Option<&PathBuf>, part: &str| FileSource {
            name: format!("{} {part}", role.name()),
            path: path.cloned(),
        };
        PairSource {
            role,
            images: file(pair.map(|p| &p.images), "images"),
            labels: file(pair.map(|p| &p.labels), "labels"),
            published: None,
        }
    };
    let mut pairs = match cfg.dataset.published() {
        Some(dataset) => vec![
            published(Role::Train, dataset, dataset.train_files()),
            published(Role::Test, dataset, dataset.test_files()),
        ],
        None => vec![
            own(Role::Train, cfg.train.as_ref()),
            own(Role::Test, cfg.test.as_ref()),
        ],
    };
    if let Some(outliers) = &cfg.outliers {
        let dataset = outliers.dataset;
        pairs.push(published(Role::Outliers, dataset, dataset.test_files()));
    }
    pairs
}
