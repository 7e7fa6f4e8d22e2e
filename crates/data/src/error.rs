use std::fmt;
use std::io;
use std::path::PathBuf;

use ae_store::StoreError;

use crate::IdxError;

/// Why the data stage could not produce its splits. Every variant names the
/// file, folder or URL concerned and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The dataset folder could not be created or written.
    #[error(
        "cannot use the data folder {}: set `data.dir` in the config or AE_DATA_DIR to a folder you can write, or put the dataset files there by hand",
        dir.display()
    )]
    DataDir {
        /// The folder.
        dir: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// A dataset file exists but could not be read.
    #[error("cannot read {} (check its permissions)", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// A file of the user's own dataset (`data.dataset = "files"`) is not there.
    #[error(
        "{key} = {}: no such file; check the path (relative to the current directory)",
        path.display()
    )]
    Missing {
        /// The config key naming it: `data.train.images`.
        key: String,
        /// The path as given.
        path: PathBuf,
    },
    /// Reading a file would take more memory than there is.
    #[error(
        "{} promises {bytes} bytes, more memory than this machine can give to read it; use fewer images per file",
        path.display()
    )]
    Memory {
        /// The file.
        path: PathBuf,
        /// What its header promises.
        bytes: u64,
    },
    /// A file of the user's own dataset is there but cannot be used (it is
    /// a folder, a named pipe, a device, or unreadable).
    #[error("{key} cannot be used")]
    OwnFile {
        /// The config key naming it.
        key: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// A split came out empty: its file holds no image, or none with a
    /// label of `data.normal_labels`.
    #[error("the {split} split would hold no image: {why}")]
    EmptySplit {
        /// `training` or `test`.
        split: &'static str,
        /// Why, naming the file or key.
        why: String,
    },
    /// A `.gz` file does not decompress.
    #[error("{} is not a valid gzip file; {fix}", path.display())]
    CorruptGzip {
        /// The file.
        path: PathBuf,
        /// What to do about it.
        fix: Fix,
        /// What the decoder reported.
        #[source]
        source: io::Error,
    },
    /// A file decompressed but is not a well-formed IDX file.
    #[error("{} is not a usable IDX file; {fix}", path.display())]
    Idx {
        /// The file.
        path: PathBuf,
        /// What to do about it.
        fix: Fix,
        /// What is wrong with it.
        #[source]
        source: IdxError,
    },
    /// `data.train_limit` or `data.test_limit` asks for more images than
    /// the user's file holds.
    #[error(
        "{key} = {limit}, but {} holds only {available} images: lower it, or remove it to use them all",
        path.display()
    )]
    LimitTooLarge {
        /// The config key.
        key: &'static str,
        /// Its value.
        limit: usize,
        /// The images file.
        path: PathBuf,
        /// Images in it.
        available: usize,
    },
    /// The images and labels files of one split disagree on the count.
    #[error(
        "{} holds {n_images} images but {} holds {n_labels} labels; both files must come from the same split of the same dataset: replace the wrong one",
        images.display(),
        labels.display()
    )]
    CountMismatch {
        /// The images file.
        images: PathBuf,
        /// How many images it holds.
        n_images: usize,
        /// The labels file.
        labels: PathBuf,
        /// How many labels it holds.
        n_labels: usize,
    },
    /// A file is well-formed but its content is not the published dataset's.
    #[error(
        "checksum mismatch for {}: its decompressed sha256 is {found}, but {dataset}'s {name} has {expected}; the file is corrupt or from another dataset: delete it and run again to download a fresh copy",
        path.display()
    )]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The dataset it should belong to.
        dataset: crate::Dataset,
        /// The file's name in the dataset.
        name: &'static str,
        /// The published digest.
        expected: &'static str,
        /// The digest of what is on disk.
        found: String,
    },
    /// No mirror delivered a good copy of a missing file.
    #[error(
        "could not download {file} from any mirror ({}); check the network or set `data.mirrors`, or download {file}.gz by hand and put it in {} (gzip or raw IDX both work)",
        FailureList(attempts),
        dir.display()
    )]
    Download {
        /// The file's name without `.gz`.
        file: &'static str,
        /// Where it should go.
        dir: PathBuf,
        /// Each mirror tried, with why it failed.
        attempts: Vec<MirrorFailure>,
    },
    /// A file of the user's (or an image in their folder) cannot be used.
    #[error("{}: {problem}", path.display())]
    Unusable {
        /// The file, folder or image.
        path: PathBuf,
        /// What is wrong and, where it helps, what to do.
        problem: String,
    },
    /// The format of a file cannot be told from its name.
    #[error(
        "{key} = {}: cannot tell its format from its name; set data.format to one of idx, npy, npz, folder, csv, parquet",
        path.display()
    )]
    UnknownFormat {
        /// The config key naming it.
        key: String,
        /// The path as given.
        path: PathBuf,
    },
    /// `{ images, labels }` names files of a format that is not read in pairs.
    #[error(
        "{key} = {}: {format} files are not given as {{ images, labels }} pairs (only IDX and .npy are); give the path alone: {key_split} = \"{}\"",
        path.display(),
        path.display(),
        key_split = key.trim_end_matches(".images")
    )]
    PairFormat {
        /// The config key: `data.train.images`.
        key: String,
        /// The path as given.
        path: PathBuf,
        /// Its format.
        format: crate::Format,
    },
    /// A CSV or Parquet file cannot be read.
    #[error("{} cannot be read as a table of images", path.display())]
    Table {
        /// The file.
        path: PathBuf,
        /// What polars reported.
        #[source]
        source: polars::error::PolarsError,
    },
    /// The splits' labels cannot be matched up or used as configured.
    #[error("{0}")]
    Labels(String),
    /// Writing a split failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a user can do about a bad dataset file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    /// A published dataset's file: `ae` downloads a fresh copy once it is gone.
    Redownload,
    /// The user's own file: only they can replace it.
    Replace,
}

impl fmt::Display for Fix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fix::Redownload => {
                "delete it and run again to download a fresh copy, or replace it with a good one"
            }
            Fix::Replace => "replace it with a good one",
        })
    }
}

/// One mirror that did not deliver a good copy.
#[derive(Debug)]
pub struct MirrorFailure {
    /// The full URL requested.
    pub url: String,
    /// Why it failed.
    pub reason: MirrorError,
}

/// Why one mirror failed; [`MirrorFailure`] shows it with its causes.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// Connecting, the request or the response failed.
    #[error("the request failed")]
    Http(#[from] ureq::Error),
    /// Receiving the body into the temporary file failed.
    #[error("the download was interrupted")]
    Body(#[source] io::Error),
    /// The body is not valid gzip.
    #[error("it served a corrupt gzip file")]
    Gzip(#[source] io::Error),
    /// The body is larger than the file can be.
    #[error("it sent {bytes} bytes or more, but the file cannot be larger than {limit}")]
    TooLarge {
        /// What was sent, or claimed.
        bytes: u64,
        /// The most the file may take.
        limit: u64,
    },
    /// The body decompressed, but not to an IDX file of the expected kind and length.
    #[error("it served a file that is not the IDX file it should be")]
    Idx(#[source] crate::IdxError),
    /// The body decompressed to the wrong content.
    #[error("it served a file whose decompressed sha256 is {found}, not {expected}")]
    Checksum {
        /// The published digest.
        expected: &'static str,
        /// The digest of what was served.
        found: String,
    },
}

impl fmt::Display for MirrorFailure {
    /// `URL: reason: cause: ...`, the whole chain of the reason. A cause
    /// whose text its parent's message already ends with (ureq's errors
    /// show their cause themselves) is not repeated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.url, self.reason)?;
        let mut shown = self.reason.to_string();
        let mut cause = std::error::Error::source(&self.reason);
        while let Some(error) = cause {
            let text = error.to_string();
            if !shown.ends_with(&text) {
                write!(f, ": {text}")?;
            }
            shown = text;
            cause = error.source();
        }
        Ok(())
    }
}

struct FailureList<'a>(&'a [MirrorFailure]);

impl fmt::Display for FailureList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no mirrors configured");
        }
        for (i, failure) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{failure}")?;
        }
        Ok(())
    }
}
