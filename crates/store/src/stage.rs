//! The contract every pipeline stage crate implements, so that the runner
//! can plan, fingerprint, cache and run any stage without knowing its files
//! or its config keys.

use std::path::PathBuf;

use crate::RunDir;

/// One stage of the pipeline, as a type: `ae_data::DataStage`,
/// `ae_train::TrainStage`, and so on.
///
/// A stage reads [`Input`]s and writes the files [`PipelineStage::outputs`]
/// names into the run directory; [`PipelineStage::params`] is the part of
/// the experiment config its results depend on. Two runs with equal params,
/// equal input contents and the same `ae` version write equal outputs, which
/// is what makes a stage skippable when fresh and restorable from the cache.
pub trait PipelineStage {
    /// The stage's name: the same word on the command line, in the manifest,
    /// as the run-directory folder and as the tracing span.
    const NAME: &'static str;

    /// The part of the experiment config the stage reads (the runner builds
    /// it from the resolved config).
    type Config;

    /// What the stage reports besides its files.
    type Outcome: StageOutcome;

    /// Why the stage failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The files the stage reads under `cfg`.
    fn inputs(cfg: &Self::Config, env: &Env) -> Vec<Input>;

    /// The files the stage writes under `cfg`, relative to the run directory.
    fn outputs(cfg: &Self::Config) -> Vec<String>;

    /// The config values the stage's outputs depend on, as JSON whose
    /// structure is that of the config's dotted keys (`{"train": {"epochs":
    /// 50}}`), so that a change can be described by key. Implementations
    /// destructure their config without `..`, so a new config field does
    /// not compile until it is placed in or out, with the reason.
    fn params(cfg: &Self::Config) -> serde_json::Value;

    /// Runs the stage: reads its inputs, writes every output atomically.
    fn run(cfg: &Self::Config, env: &Env, run: &RunDir) -> Result<Self::Outcome, Self::Error>;
}

/// What a finished stage tells the user on standard output.
pub trait StageOutcome {
    /// Result lines, such as the seed's `Found N anomalies!` (none by default).
    fn result_lines(&self) -> Vec<String> {
        Vec::new()
    }
}

impl StageOutcome for () {}

/// A file a stage reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file of the run directory, written by an earlier stage: its path
    /// relative to the run directory (one of [`crate::files`]).
    Run(String),
    /// A file outside the run directory, such as a dataset file, known by
    /// `name` (its role: `train images`) and compared by content only, so it
    /// may move without making the stage stale. `path` is `None` while the
    /// file is not there: the stage will fetch it.
    External {
        /// What the file is to the stage.
        name: String,
        /// Where it is.
        path: Option<PathBuf>,
    },
}

impl Input {
    /// One [`Input::Run`] for each of `files` (of [`crate::files`]).
    pub fn run_files(files: impl IntoIterator<Item = &'static str>) -> Vec<Input> {
        files.into_iter().map(|f| Input::Run(f.into())).collect()
    }

    /// The name the manifest and fingerprints know the input by: the
    /// relative path of a run file, the role of an external one.
    pub fn name(&self) -> &str {
        match self {
            Input::Run(path) => path,
            Input::External { name, .. } => name,
        }
    }
}

/// What a stage may use that does not change its results, so none of it is
/// in a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// Where dataset files are looked for and downloaded to.
    pub data_root: PathBuf,
    /// At most this many threads for training (`None`: as many as help).
    pub threads: Option<usize>,
}
