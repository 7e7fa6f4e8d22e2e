//! The `data` stage: MNIST-style datasets from IDX files to safetensors splits.
//!
//! Reads `<root>/<dataset>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`;
//! any file that is missing is downloaded from the configured mirrors (see
//! [`Downloader`]). Every file is checked for structure (magic number,
//! dimensions, exact length; images and labels agree in count) and then
//! against the sha256 of the published content. Pixels are scaled to `[0, 1]`
//! and flattened to 784 values, and the run directory receives
//! [`ae_store::files::TRAIN_SPLIT`] and [`ae_store::files::TEST_SPLIT`].
//!
//! With `data.dataset = "files"` the splits come from the user's own IDX
//! files instead (`data.train`, `data.test`), read as they are: no
//! published digest, their content is in the stage's fingerprint.
//!
//! Entry point: [`DataStage`], the stage contract. The pure parts, [`idx`]
//! parsing and [`normalize`], do no I/O. This is the only crate that
//! touches the network.

mod catalog;
mod config;
mod download;
mod error;
pub mod idx;
mod raw;
mod select;
mod source;
mod sources;

use std::path::Path;
use std::time::Duration;

use ae_store::{Env, Input, PipelineStage, RunDir, files};
use serde_json::json;

pub use catalog::{Dataset, IdxFile, IdxKind, SplitFiles};
pub use config::{DataConfig, DatasetChoice, IdxPair, Outliers};
pub use download::{Downloader, Timeouts, body_limit};
pub use error::{DataError, Fix, MirrorError, MirrorFailure};
pub use idx::{IdxError, normalize};
pub use source::{locate, read_idx, verify_checksum};

use raw::RawSplit;
use select::{Selection, write_selections};
use sources::{FileSource, PairSource, Role};

/// Added to the labels of `data.outliers` images in the test split: class
/// 3 of the outlier dataset is label 13, apart from the main dataset's 3.
pub const OUTLIER_LABEL_OFFSET: u8 = 10;

/// The data stage, for the runner.
#[derive(Debug, Clone, Copy)]
pub struct DataStage;

impl PipelineStage for DataStage {
    const NAME: &'static str = "data";
    type Config = DataConfig;
    type Outcome = ();
    type Error = DataError;

    /// The dataset files, by role (`train images`, ...): a published
    /// dataset's as found under the data root (`None` when still to be
    /// downloaded), or the user's own as configured.
    fn inputs(cfg: &DataConfig, env: &Env) -> Vec<Input> {
        sources::pairs(cfg, &env.data_root)
            .into_iter()
            .flat_map(|pair| [pair.images, pair.labels])
            .map(|file| Input::External {
                name: file.name,
                path: file.path,
            })
            .collect()
    }

    fn outputs(_cfg: &DataConfig) -> Vec<String> {
        [files::TRAIN_SPLIT, files::TEST_SPLIT]
            .into_iter()
            .map(String::from)
            .collect()
    }

    fn params(cfg: &DataConfig) -> serde_json::Value {
        let DataConfig {
            dataset,
            // Out: where the files are found does not change their content,
            // which the inputs' digests cover (published files are also
            // checked against their published digests).
            dir: _,
            // Out, by path: the user's files count by content, as inputs.
            train: _,
            test: _,
            train_limit,
            test_limit,
            // Out: where and how patiently a missing file is downloaded does
            // not change it: it is verified before it is used.
            mirrors: _,
            connect_timeout_secs: _,
            read_timeout_secs: _,
            download_timeout_secs: _,
            normal_labels,
            outliers,
        } = cfg;
        json!({"data": {
            "dataset": dataset,
            "train_limit": train_limit,
            "test_limit": test_limit,
            "normal_labels": normal_labels,
            "outliers": outliers,
        }})
    }

    fn run(cfg: &DataConfig, env: &Env, run: &RunDir) -> Result<(), DataError> {
        write_splits(cfg, &env.data_root, run)
    }
}

/// Makes sure the dataset's files are there (downloading what is missing),
/// verifies and parses them, and writes both splits into `run`. With
/// `data.normal_labels` the training split keeps only those labels; with
/// `data.normal_labels` or `data.outliers` the test split carries the ground
/// truth (`is_outlier`). Outlier images keep their own classes, shifted by
/// [`OUTLIER_LABEL_OFFSET`].
fn write_splits(cfg: &DataConfig, data_root: &Path, run: &RunDir) -> Result<(), DataError> {
    match cfg.dataset {
        DatasetChoice::Files => tracing::info!("dataset: your own IDX files"),
        published => tracing::info!("dataset {published} from {}", data_root.display()),
    }
    let mut pairs = sources::pairs(cfg, data_root);
    // Find or fetch every file before the slow work, so a missing file is
    // reported (or downloaded) first.
    for pair in &mut pairs {
        fetch_missing(cfg, data_root, pair)?;
    }

    // Structure first, for every file (the most specific message wins),
    // then the published checksums, then normalising and writing.
    let raw = pairs
        .iter()
        .map(RawSplit::read)
        .collect::<Result<Vec<_>, _>>()?;
    for raw in &raw {
        raw.verify()?;
    }

    // Both splits are selected and checked before either is written, so a
    // bad input leaves no split behind.
    let (train_images, train_labels) = raw[0].parse()?;
    check_limit(cfg, &raw[0], train_images.count)?;
    let normal: Vec<usize> = (0..train_images.count)
        .filter(|&i| !cfg.is_outlier_label(train_labels[i]))
        .take(cfg.train_limit.unwrap_or(usize::MAX))
        .collect();
    if normal.is_empty() {
        let why = match &cfg.normal_labels {
            Some(labels) if train_images.count > 0 => format!(
                "no image of {} has a label in data.normal_labels = {labels:?}",
                raw[0].labels_path.display()
            ),
            _ => format!("{} holds no image", raw[0].images_path.display()),
        };
        return Err(DataError::EmptySplit {
            split: "training",
            why,
        });
    }
    let train = Selection::new(train_images.pixels, train_labels, normal, |_| false);

    let (test_images, test_labels) = raw[1].parse()?;
    check_limit(cfg, &raw[1], test_images.count)?;
    if test_images.count == 0 {
        return Err(DataError::EmptySplit {
            split: "test",
            why: format!("{} holds no image", raw[1].images_path.display()),
        });
    }
    let first = (0..test_images.count.min(cfg.test_limit.unwrap_or(usize::MAX))).collect();
    let mut test = vec![Selection::new(
        test_images.pixels,
        test_labels,
        first,
        |l| cfg.is_outlier_label(l),
    )];
    let parsed_outliers;
    if let (Some(outliers), Some(raw)) = (&cfg.outliers, raw.get(2)) {
        parsed_outliers = raw.parse()?;
        let (images, labels) = &parsed_outliers;
        let first = (0..outliers.count.min(images.count)).collect();
        let mut outliers = Selection::new(images.pixels, labels, first, |_| true);
        // Their classes become 10–19, so no table mixes them with the digits.
        for label in &mut outliers.labels {
            *label += OUTLIER_LABEL_OFFSET;
        }
        test.push(outliers);
    }
    write_selections(&run.path(files::TRAIN_SPLIT), &[train], false)?;
    write_selections(&run.path(files::TEST_SPLIT), &test, cfg.has_ground_truth())?;
    Ok(())
}

/// Downloads the files of a published pair that are not there yet; a user's
/// own file that is not there is an error naming its key.
fn fetch_missing(
    cfg: &DataConfig,
    data_root: &Path,
    pair: &mut PairSource,
) -> Result<(), DataError> {
    let Some(published) = &pair.published else {
        for (file, part) in [(&pair.images, "images"), (&pair.labels, "labels")] {
            let key = format!("data.{}.{part}", pair.role_key());
            let Some(path) = &file.path else {
                unreachable!("validation requires data.train and data.test with files")
            };
            match ae_store::regular_file(path) {
                Ok(_) => {}
                Err(ae_store::StoreError::Read { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    return Err(DataError::Missing {
                        key,
                        path: path.clone(),
                    });
                }
                Err(source) => return Err(DataError::OwnFile { key, source }),
            }
        }
        return Ok(());
    };
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

/// With the user's own files, a limit above the file's count is an error
/// (a published split's size is checked with the config).
fn check_limit(cfg: &DataConfig, raw: &RawSplit, available: usize) -> Result<(), DataError> {
    let (key, limit) = match raw.role {
        Role::Train => ("data.train_limit", cfg.train_limit),
        Role::Test => ("data.test_limit", cfg.test_limit),
        Role::Outliers => return Ok(()),
    };
    match limit {
        Some(limit) if raw.published.is_none() && limit > available => {
            Err(DataError::LimitTooLarge {
                key,
                limit,
                path: raw.images_path.clone(),
                available,
            })
        }
        _ => Ok(()),
    }
}
