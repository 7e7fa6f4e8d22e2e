//! The command line, as clap parses it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Override;
use crate::pipeline::Stage;

/// Autoencoder anomaly detection on MNIST-style images, one TOML file per experiment.
///
/// Each experiment runs as a pipeline of stages (data, train, infer) that write their
/// artifacts to runs/<name>/ as safetensors and CSV files.
#[derive(Debug, Parser)]
#[command(name = "ae", version, max_term_width = 100)]
pub struct Cli {
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
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the stages of an experiment that are stale, in order, writing runs/<name>/.
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
    },
    /// Say which stages of an experiment are fresh or stale, and why, without running any.
    Status(RunArgs),
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
pub struct RunArgs {
    /// The experiment config, e.g. configs/default.toml.
    pub config: PathBuf,

    /// Override a config key, typed and validated like the file: --set train.epochs=5.
    /// Repeatable; later ones win.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<Override>,
}
