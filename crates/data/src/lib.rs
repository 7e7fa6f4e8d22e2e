//! The `data` stage: the images to train, validate and test on, as
//! safetensors splits.
//!
//! A published dataset (MNIST, Fashion-MNIST) is read from
//! `<root>/<dataset>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`;
//! any file that is missing is downloaded from the configured mirrors (see
//! [`Downloader`]). Every file is checked for structure (magic number,
//! dimensions, exact length; images and labels agree in count) and then
//! against the sha256 of the published content.
//!
//! With `data.dataset = "files"` the images are the user's own, in any
//! [`Format`]: IDX pairs, NumPy `.npy`/`.npz`, folders of PNG/JPEG/BMP
//! images, CSV or Parquet tables (one module per format). Their content is in the
//! stage's fingerprint; class names (folders, text labels) are kept.
//!
//! Pixels are scaled to `[0, 1]` and flattened to 784 values; the run
//! directory receives [`files::TRAIN_SPLIT`], [`files::TEST_SPLIT`] and,
//! with `data.validation`, [`files::VALIDATION_SPLIT`]: normal images held
//! out of training (a seeded, stratified fraction, or a source of their
//! own). Entry point: [`DataStage`], the stage contract. The pure parts,
//! [`idx`] parsing and [`normalize`], do no I/O. This is the only crate that
//! touches the network.

mod catalog;
mod config;
mod download;
mod error;
mod formats;
mod holdout;
pub mod idx;
mod labels;
mod raw;
pub mod scan;
mod select;
mod source;
mod sources;

use std::path::Path;
use std::time::Duration;

use ae_store::{Env, Input, PipelineStage, RunDir, files};
use serde_json::json;

pub use catalog::{Dataset, IdxFile, IdxKind, SplitFiles};
pub use config::{
    DataConfig, DatasetChoice, FilePair, Format, LabelRef, Outliers, SplitSource, Validation,
};
pub use download::{Downloader, Timeouts, body_limit};
pub use error::{DataError, Fix, MirrorError, MirrorFailure};
pub use idx::{IdxError, normalize};
pub use source::{locate, read_idx, verify_checksum};

use formats::{ImageSet, ReadOptions};
use raw::RawSplit;
use select::{Selection, write_selections};
use sources::{FileSource, PairSource, Role};

/// Added to the labels of `data.outliers` images in the test split: class
/// 3 of the outlier dataset is label 13, apart from the main dataset's 3.
pub const OUTLIER_LABEL_OFFSET: u8 = 10;

/// The data stage, for the runner.
#[derive(Debug, Clone, Copy)]
pub struct DataStage;

/// What the data stage reads of the experiment config.
#[derive(Debug, Clone, PartialEq)]
pub struct StageConfig {
    /// `[data]`.
    pub data: DataConfig,
    /// The experiment's seed: which training images are held out when
    /// `data.validation` is a fraction.
    pub seed: u64,
}

impl PipelineStage for DataStage {
    const NAME: &'static str = "data";
    type Config = StageConfig;
    type Outcome = ();
    type Error = DataError;

    /// The dataset files, by role (`train images`, ...): a published
    /// dataset's as found under the data root (`None` when still to be
    /// downloaded), or the user's own as configured (every image of a
    /// folder).
    fn inputs(cfg: &StageConfig, env: &Env) -> Vec<Input> {
        let cfg = &cfg.data;
        let published = sources::pairs(cfg, &env.data_root)
            .into_iter()
            .flat_map(|pair| [pair.images, pair.labels]);
        let own = sources::own(cfg)
            .into_iter()
            .flat_map(|(role, _, source)| sources::own_files(role, source, cfg.format));
        published
            .chain(own)
            .map(|file| Input::External {
                name: file.name,
                path: file.path,
            })
            .collect()
    }

    fn outputs(cfg: &StageConfig) -> Vec<String> {
        let mut outputs = vec![files::TRAIN_SPLIT, files::TEST_SPLIT];
        if cfg.data.has_validation() {
            outputs.push(files::VALIDATION_SPLIT);
        }
        outputs.into_iter().map(String::from).collect()
    }

    fn params(cfg: &StageConfig) -> serde_json::Value {
        let StageConfig {
            data:
                DataConfig {
                    dataset,
                    // Out: where the files are found does not change their
                    // content, which the inputs' digests cover (published
                    // files are also checked against their published digests).
                    dir: _,
                    // Out, by path: the user's files count by content, as
                    // inputs; what kind of source each is, is in `sources`.
                    train,
                    test,
                    format,
                    resize,
                    validation,
                    train_limit,
                    test_limit,
                    // Out: where and how patiently a missing file is
                    // downloaded does not change it: it is verified first.
                    mirrors: _,
                    connect_timeout_secs: _,
                    read_timeout_secs: _,
                    download_timeout_secs: _,
                    normal_labels,
                    outliers,
                },
            seed,
        } = cfg;
        let kind = |source: &Option<SplitSource>| match source {
            None => None,
            Some(SplitSource::Path(_)) => Some("path"),
            Some(SplitSource::Pair(pair)) => Some(if pair.labels.is_some() {
                "images and labels"
            } else {
                "images"
            }),
        };
        let validation = match validation {
            None => json!(null),
            Some(Validation::Fraction(fraction)) => json!({"fraction": fraction, "seed": seed}),
            Some(Validation::Source(source)) => json!({"source": kind(&Some(source.clone()))}),
        };
        json!({"data": {
            "dataset": dataset,
            "sources": {"train": kind(train), "test": kind(test)},
            "format": format,
            "resize": resize,
            "validation": validation,
            "train_limit": train_limit,
            "test_limit": test_limit,
            "normal_labels": normal_labels,
            "outliers": outliers,
        }})
    }

    fn run(cfg: &StageConfig, env: &Env, run: &RunDir) -> Result<(), DataError> {
        write_splits(cfg, &env.data_root, run)
    }
}

/// Every image set a config reads, before selection.
struct Sets {
    train: ImageSet,
    test: ImageSet,
    validation: Option<ImageSet>,
    outliers: Option<ImageSet>,
}

/// Reads (downloading what is missing) and checks every source, then
/// writes the splits into `run`. With `data.normal_labels` the training and
/// validation splits keep only those labels; with `data.normal_labels` or
/// `data.outliers` the test split carries the ground truth (`is_outlier`).
/// Outlier images keep their own classes, shifted by
/// [`OUTLIER_LABEL_OFFSET`]. Nothing is written until every split is known
/// to be good.
fn write_splits(cfg: &StageConfig, data_root: &Path, run: &RunDir) -> Result<(), DataError> {
    let data = &cfg.data;
    let mut sets = match data.dataset.published() {
        Some(dataset) => {
            tracing::info!("dataset {dataset} from {}", data_root.display());
            published_sets(data, data_root)?
        }
        None => {
            tracing::info!("dataset: your own images");
            own_sets(data, data_root)?
        }
    };
    let names = labels::unify(&mut sets)?;
    let normal = labels::resolve_normal(data, names.as_deref(), &sets)?;
    let is_normal = |label: Option<u8>| match (&normal, label) {
        (Some(normal), Some(label)) => normal.contains(&label),
        _ => true,
    };

    let train_count = sets.train.count();
    check_limit("data.train_limit", data.train_limit, &sets.train, data)?;
    let mut train_indices: Vec<usize> = (0..train_count)
        .filter(|&i| is_normal(sets.train.labels.as_ref().map(|l| l[i])))
        .take(data.train_limit.unwrap_or(usize::MAX))
        .collect();
    let held_out = match (&data.validation, &sets.validation) {
        (Some(Validation::Fraction(fraction)), _) => {
            let (kept, held) = holdout::split(
                &train_indices,
                sets.train.labels.as_deref(),
                *fraction,
                cfg.seed,
            );
            train_indices = kept;
            Some(Selection::new(&sets.train, held, |_| false))
        }
        (_, Some(validation)) => {
            let indices = (0..validation.count())
                .filter(|&i| is_normal(validation.labels.as_ref().map(|l| l[i])))
                .collect();
            Some(Selection::new(validation, indices, |_| false))
        }
        _ => None,
    };
    if train_indices.is_empty() {
        let why = match &data.normal_labels {
            Some(labels) if train_count > 0 => format!(
                "no image of {} has a label in data.normal_labels = [{}]",
                sets.train.origin.display(),
                labels
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ if train_count > 0 => "data.validation holds out every image".to_string(),
            _ => format!("{} holds no image", sets.train.origin.display()),
        };
        return Err(DataError::EmptySplit {
            split: "training",
            why,
        });
    }
    if let Some(held) = &held_out
        && held.len() == 0
    {
        return Err(DataError::EmptySplit {
            split: "validation",
            why: match &data.validation {
                Some(Validation::Fraction(f)) => format!(
                    "data.validation = {f} of {} training images rounds to none: raise it",
                    train_count
                ),
                _ => "no image of data.validation is normal (has a label in data.normal_labels)"
                    .into(),
            },
        });
    }
    let train = Selection::new(&sets.train, train_indices, |_| false);

    check_limit("data.test_limit", data.test_limit, &sets.test, data)?;
    if sets.test.count() == 0 {
        return Err(DataError::EmptySplit {
            split: "test",
            why: format!("{} holds no image", sets.test.origin.display()),
        });
    }
    let first = (0..sets.test.count().min(data.test_limit.unwrap_or(usize::MAX))).collect();
    let mut test = vec![Selection::new(&sets.test, first, |l| !is_normal(l))];
    if let (Some(outliers), Some(set)) = (&data.outliers, &mut sets.outliers) {
        if let Some(labels) = &mut set.labels {
            // Their classes become 10–19, so no table mixes them with the digits.
            for label in labels.iter_mut() {
                *label += OUTLIER_LABEL_OFFSET;
            }
        }
        let first = (0..outliers.count.min(set.count())).collect();
        test.push(Selection::new(set, first, |_| true));
    }
    let names = names.as_deref();
    write_selections(&run.path(files::TRAIN_SPLIT), &[train], false, names)?;
    if let Some(held) = held_out {
        write_selections(&run.path(files::VALIDATION_SPLIT), &[held], false, names)?;
    }
    write_selections(
        &run.path(files::TEST_SPLIT),
        &test,
        data.has_ground_truth(),
        names,
    )?;
    Ok(())
}

/// A published dataset's splits (and the outliers' test split).
fn published_sets(cfg: &DataConfig, data_root: &Path) -> Result<Sets, DataError> {
    let mut sets = read_published(cfg, data_root)?.into_iter();
    let (Some(train), Some(test)) = (sets.next(), sets.next()) else {
        unreachable!("a published dataset has a training and a test split")
    };
    Ok(Sets {
        train,
        test,
        validation: None,
        outliers: sets.next(),
    })
}

/// The published pairs `cfg` reads (see [`sources::pairs`]), found or
/// downloaded, checked for structure first and then against their digests.
fn read_published(cfg: &DataConfig, data_root: &Path) -> Result<Vec<ImageSet>, DataError> {
    let mut pairs = sources::pairs(cfg, data_root);
    // Find or fetch every file before the slow work, so a missing file is
    // reported (or downloaded) first.
    for pair in &mut pairs {
        fetch_missing(cfg, data_root, pair)?;
    }
    // The first pair (the training split, the largest) on this thread,
    // the others beside it; errors in the pairs' order.
    let raw = std::thread::scope(|scope| {
        let others: Vec<_> = pairs
            .iter()
            .skip(1)
            .map(|pair| scope.spawn(|| RawSplit::read(pair)))
            .collect();
        let first = pairs.first().map(RawSplit::read);
        first
            .into_iter()
            .chain(others.into_iter().map(|reading| {
                reading
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            }))
            .collect::<Result<Vec<_>, _>>()
    })?;
    for raw in &raw {
        raw.verify()?;
    }
    Ok(raw.into_iter().map(RawSplit::into_set).collect())
}

/// The user's own splits, each read in its format; the outliers of
/// `data.outliers`, found or downloaded as a published dataset's.
fn own_sets(cfg: &DataConfig, data_root: &Path) -> Result<Sets, DataError> {
    let options = ReadOptions {
        format: cfg.format,
        resize: cfg.resize,
    };
    let mut train = None;
    let mut test = None;
    let mut validation = None;
    for (role, key, source) in sources::own(cfg) {
        let set = formats::read(source, key, role.npz_prefix(), options)?;
        tracing::info!(
            "{key}: {} images from {}{}",
            set.count(),
            set.origin.display(),
            match (&set.labels, &set.names) {
                (None, _) => ", without labels".to_string(),
                (Some(_), Some(names)) => format!(", classes {}", names.join(", ")),
                (Some(_), None) => String::new(),
            }
        );
        match role {
            Role::Train => train = Some(set),
            Role::Test => test = Some(set),
            Role::Validation => validation = Some(set),
            Role::Outliers => {}
        }
    }
    let (Some(train), Some(test)) = (train, test) else {
        unreachable!("validation requires data.train and data.test with files")
    };
    // With the user's own data, the only published pair is the outliers'.
    let outliers = read_published(cfg, data_root)?.into_iter().next();
    Ok(Sets {
        train,
        test,
        validation,
        outliers,
    })
}

/// Downloads the files of a published pair that are not there yet.
fn fetch_missing(
    cfg: &DataConfig,
    data_root: &Path,
    pair: &mut PairSource,
) -> Result<(), DataError> {
    let published = &pair.published;
    let downloader = Downloader::new(
        published.mirrors.clone(),
        Timeouts {
            connect: Duration::from_secs(cfg.connect_timeout_secs),
            read: Duration::from_secs(cfg.read_timeout_secs),
            total: Duration::from_secs(cfg.download_timeout_secs),
        },
    );
    let dir = data_root.join(published.dataset.name());
    for (file, idx_file) in [
        (&mut pair.images, &published.files.images),
        (&mut pair.labels, &published.files.labels),
    ] {
        if file.path.is_none() {
            file.path = Some(downloader.fetch(idx_file, &dir)?);
        }
        tracing::debug!("{}: {}", file.name, located(file).display());
    }
    Ok(())
}

/// Where a file of a pair is, once [`fetch_missing`] has run.
pub(crate) fn located(file: &FileSource) -> &Path {
    file.path
        .as_deref()
        .expect("every file is located or fetched before it is read")
}

/// With the user's own files, a limit above the set's count is an error (a
/// published split's size is checked with the config).
fn check_limit(
    key: &'static str,
    limit: Option<usize>,
    set: &ImageSet,
    cfg: &DataConfig,
) -> Result<(), DataError> {
    match limit {
        Some(limit) if cfg.dataset.published().is_none() && limit > set.count() => {
            Err(DataError::LimitTooLarge {
                key,
                limit,
                path: set.origin.clone(),
                available: set.count(),
            })
        }
        _ => Ok(()),
    }
}
