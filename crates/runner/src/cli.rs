//! The command line, as clap parses it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Override;
use crate::stage::Stage;

/// Autoencoder anomaly detection on MNIST-style images, one TOML file per experiment.
///
/// Each experiment runs as a pipeline of stages (data, train, infer, eval, report) that
/// write their artifacts to runs/NAME/ as safetensors, CSV, Parquet and PNG files.
#[derive(Debug, Parser)]
#[command(name = "ae", version, max_term_width = 100)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// More output: -v for debug, -vv for trace. AE_LOG (e.g. `ae_data=debug`) overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Less output: warnings and errors only.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// The folder that holds run directories.
    #[arg(
        long,
        env = "AE_RUNS_DIR",
        default_value = "runs",
        global = true,
        value_name = "DIR"
    )]
    pub runs_dir: PathBuf,

    /// The cache of stage outputs shared between runs [default: RUNS_DIR/.cache].
    #[arg(long, env = "AE_CACHE_DIR", global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Compute every stage that must run, rather than restoring it from the cache.
    #[arg(long, global = true)]
    pub no_cache: bool,

    /// Train on at most this many threads [default: as many as help, at most 2].
    /// Results do not depend on it.
    #[arg(long, env = "AE_THREADS", global = true, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the stages of an experiment that are stale, in order, writing runs/NAME/.
    ///
    /// A stage is fresh when its config section, its inputs and the ae version are those
    /// it last ran with and its outputs are intact; each line says `fresh`, or `ran` and why.
    Pipeline {
        #[command(flatten)]
        args: RunArgs,
        /// Run every stage, fresh or not.
        #[arg(long)]
        force: bool,
        /// Run this stage and every one after it, fresh or not.
        #[arg(long, value_name = "STAGE", conflicts_with = "force")]
        from: Option<Stage>,
        /// Say what would run, and why, without running anything.
        #[arg(long)]
        dry_run: bool,
        /// Read every input and output again to check its sha256, instead of
        /// trusting a file whose size, times and inode are those recorded.
        #[arg(long)]
        verify: bool,
    },
    /// Run exactly one stage of an experiment, fresh or not.
    Stage {
        /// The stage to run.
        #[arg(value_enum)]
        name: Stage,
        #[command(flatten)]
        args: RunArgs,
        /// First run the stale stages before it.
        #[arg(long)]
        with_upstream: bool,
        /// Run it even on outputs of an earlier stage that was interrupted or
        /// failed, or that changed since they were written.
        #[arg(long, conflicts_with = "with_upstream")]
        allow_stale_inputs: bool,
    },
    /// Say which stages of an experiment are fresh or stale, and why, without running any.
    Status {
        #[command(flatten)]
        args: RunArgs,
        /// Read every input and output again to check its sha256, instead of
        /// trusting a file whose size, times and inode are those recorded.
        #[arg(long)]
        verify: bool,
    },
    /// Run an experiment at every point of a grid, then summarise them.
    ///
    /// The sweep file names a base config and a grid section of dotted keys with lists of
    /// values; every combination is a point, run in runs/SWEEP/POINT/. Stages that
    /// were computed anywhere before (same fingerprint) are restored from the cache.
    /// The summary (summary.parquet, .csv, .md and plots) goes to runs/SWEEP/.
    Sweep(SweepArgs),
    /// Score new images with a trained detector: each image's score, and whether it is an anomaly.
    ///
    /// DETECTOR is a detector file (runs/NAME/eval/detector.safetensors), a run directory, or
    /// an experiment config (the detector of its run). Each INPUT is an image file (PNG, JPEG,
    /// BMP), a folder of them (flat, or one folder per class), an .npy or .npz, an IDX images
    /// file (raw or .gz), or a CSV or Parquet table; mix them freely. One row per image goes to
    /// --out (.parquet or .csv), else to stdout: a table on a terminal, CSV on a pipe. The
    /// summary line goes to stderr. --explain DIR draws why each flagged image was flagged.
    ///
    /// Exit status: 0 when every image was scored; 1 when some image files could not be read
    /// (each is named; the rest are scored and written); 3 with --fail-on-anomaly when an image
    /// is flagged; 1 on any other error.
    Score(ScoreArgs),
    /// Export a trained detector for use without ae: a standard ONNX model.
    ///
    /// DETECTOR as for `ae score`. The model takes `images` float32 `[N, 784]` (pixel/255,
    /// row-major) and gives `reconstruction` `[N, 784]`, `score` `[N]` and `is_anomaly` bool `[N]`,
    /// with the threshold inside the graph and the detector's metadata in metadata_props.
    Export {
        /// The detector: a detector file, a run directory, or an experiment config.
        detector: PathBuf,
        /// Where to write the ONNX model.
        #[arg(long, value_name = "FILE", required = true)]
        onnx: PathBuf,
    },
    /// Time the training engines on an experiment's data: seconds per epoch
    /// (validation included) and training images per second.
    Bench {
        #[command(flatten)]
        args: RunArgs,
        /// Epochs to time per engine (the first is reported but not in the median).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(2..=1000))]
        epochs: u32,
        /// Engines to time, in order; all of them when not given.
        #[arg(long = "engine", value_enum)]
        engines: Vec<BenchEngine>,
        /// Also time the fused engine's GEMMs alone (five per step, no element-wise work),
        /// in the same sitting, to compare with the training time.
        #[arg(long)]
        floor: bool,
        /// Run the kernels compiled for this path instead of the widest this CPU has
        /// (avx512, avx2, baseline), to time a narrower CPU's path on this one.
        #[arg(long, value_name = "PATH")]
        kernels: Option<String>,
    },
}

/// A training engine, as `ae bench --engine` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchEngine {
    /// The hand-fused step.
    Fused,
    /// dfdx's autodiff.
    Dfdx,
}

impl From<BenchEngine> for ae_train::Engine {
    fn from(engine: BenchEngine) -> Self {
        match engine {
            BenchEngine::Fused => ae_train::Engine::Fused,
            BenchEngine::Dfdx => ae_train::Engine::Dfdx,
        }
    }
}

/// What `pipeline` and `stage` share.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The experiment config, e.g. configs/default.toml.
    pub config: PathBuf,

    /// Override a config key, typed and validated like the file: --set train.epochs=5.
    /// Repeatable; later ones win.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<Override>,
}

/// `ae score`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct ScoreArgs {
    /// The detector: a detector file, a run directory, or an experiment config.
    pub detector: PathBuf,

    /// The images to score: files and folders, in any format ae reads.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// Write the scores to this file, Parquet or CSV by its extension, rather than to stdout.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Flag images above this score rather than the detector's threshold.
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub threshold: Option<f64>,

    /// Resample images that are not 28x28 (Lanczos3) rather than refuse them.
    #[arg(long)]
    pub resize: bool,

    /// The format of every INPUT, when their names do not tell it: idx, npy, npz, folder, csv
    /// or parquet.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<ae_data::Format>,

    /// Stop at the first image that cannot be read, rather than name it and go on.
    #[arg(long)]
    pub strict: bool,

    /// Exit with status 3 when any image is flagged (for scripts and CI).
    #[arg(long)]
    pub fail_on_anomaly: bool,

    /// Draw each flagged image's error map into DIR: original, reconstruction and the
    /// per-pixel squared error with its colour bar.
    #[arg(long, value_name = "DIR")]
    pub explain: Option<PathBuf>,

    /// With --explain: only the K highest-scoring flagged images.
    #[arg(long, value_name = "K", requires = "explain",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub top: Option<u32>,

    /// With --explain: also write the squared errors to DIR/error_maps.parquet.
    #[arg(long, requires = "explain")]
    pub explain_raw: bool,
}

/// `ae sweep`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct SweepArgs {
    /// The sweep file, e.g. configs/sweeps/seeds.toml.
    pub file: PathBuf,

    /// Override a key at every point, e.g. --set train.epochs=5 (not a grid key).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<Override>,

    /// List the points, and which have finished, without running anything.
    #[arg(long)]
    pub dry_run: bool,

    /// Points to run at once; with more than one, each trains on one thread.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,

    /// Run only the I-th of every N points (1-based), e.g. --shard 2/4 in job 2 of a
    /// 4-job array; merge the results with --collect.
    #[arg(long, value_name = "I/N", conflicts_with = "collect")]
    pub shard: Option<Shard>,

    /// Run nothing: merge the points that have finished into the summary.
    #[arg(long, conflicts_with = "dry_run")]
    pub collect: bool,

    /// Accept a grid of more than 10000 points.
    #[arg(long)]
    pub allow_large: bool,

    /// Submit the points that have not finished to SLURM: one array job whose tasks each
    /// run a share of them (--shard), then a job that collects the summary when they end.
    /// Writes the job scripts to runs/SWEEP/slurm/; with --dry-run, prints the sbatch
    /// lines without submitting.
    #[arg(long, conflicts_with_all = ["collect", "shard", "jobs"])]
    pub slurm: bool,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Say, for every point, whether it has finished, is running, failed (and why) or
    /// has not started, with its SLURM job when submitted; then the summary so far.
    #[arg(long, conflicts_with_all = ["collect", "shard", "dry_run", "slurm"])]
    pub status: bool,
}

/// What `ae sweep --slurm` asks of the cluster for each job.
#[derive(Debug, Args)]
pub(crate) struct ClusterArgs {
    /// The partition (queue) to submit to [default: the cluster's].
    #[arg(long, requires = "slurm", value_name = "P")]
    pub partition: Option<String>,

    /// The time limit of each task, as sbatch takes it (e.g. 30, 2:00:00, 1-0).
    #[arg(long, requires = "slurm", value_name = "T")]
    pub time: Option<String>,

    /// CPUs for each task; its points train on that many threads.
    #[arg(long, requires = "slurm", default_value_t = 2, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub cpus_per_task: u16,

    /// Memory of each task, as sbatch takes it (e.g. 2G) [default: the cluster's].
    #[arg(long, requires = "slurm", value_name = "M")]
    pub mem: Option<String>,

    /// How many points each array task runs, one after another.
    #[arg(long, requires = "slurm", default_value_t = 1, value_name = "K",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub points_per_task: u32,

    /// Another option for both sbatch calls, e.g. --sbatch-arg=--account=lab (repeatable).
    #[arg(
        long = "sbatch-arg",
        requires = "slurm",
        value_name = "ARG",
        allow_hyphen_values = true
    )]
    pub sbatch_args: Vec<String>,
}

/// `--shard I/N`: the points whose 0-based index is I-1 modulo N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    /// 1-based, at most `count`.
    pub index: usize,
    /// How many shards.
    pub count: usize,
}

impl Shard {
    /// Whether the point at 0-based `position` belongs to this shard.
    pub(crate) fn contains(self, position: usize) -> bool {
        position % self.count == self.index - 1
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage = || format!("expected I/N with 1 <= I <= N, e.g. 2/4 (got {text:?})");
        let (index, count) = text.split_once('/').ok_or_else(usage)?;
        let index: usize = index.trim().parse().map_err(|_| usage())?;
        let count: usize = count.trim().parse().map_err(|_| usage())?;
        if index == 0 || index > count {
            return Err(usage());
        }
        Ok(Self { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_points() {
        let shards: Vec<Shard> = ["1/3", "2/3", "3/3"]
            .iter()
            .map(|s| s.parse().expect("valid"))
            .collect();
        for position in 0..10 {
            let owners = shards.iter().filter(|s| s.contains(position)).count();
            assert_eq!(owners, 1, "point {position}");
        }
        assert!(shards[1].contains(1) && shards[1].contains(4));
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
