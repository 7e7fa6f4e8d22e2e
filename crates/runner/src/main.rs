//! `ae`: the command-line runner of the autoencoder pipeline.
//!
//! Reads a TOML experiment config (see `configs/`), applies `--set`
//! overrides, and runs the pipeline's stages, each from its own crate, into
//! `runs/<name>/`: the resolved `config.toml`, `manifest.json`, `run.log` and
//! every stage's artifacts. Errors print their whole chain and exit non-zero.

mod bench;
mod cli;
mod config;
mod logging;
mod output;
mod pipeline;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, RunArgs};
use crate::pipeline::{Experiment, Stage};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(target: logging::LOG_FILE_ONLY, "{err:#}");
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Pipeline(args) => run_stages(cli, args, &Stage::ALL),
        Command::Stage { name, args } => run_stages(cli, args, &[*name]),
        Command::Bench {
            args,
            epochs,
            engines,
        } => {
            let exp = open(cli, args)?;
            bench::run(&exp, *epochs, engines)
        }
    }
}

/// Loads the experiment and starts logging into its run directory.
fn open(cli: &Cli, args: &RunArgs) -> anyhow::Result<Experiment> {
    let exp = Experiment::open(&args.config, &args.overrides, &cli.runs_dir)?;
    logging::init(
        cli.verbose,
        cli.quiet,
        &exp.run.path(ae_store::files::RUN_LOG),
    )?;
    tracing::info!(
        config = %args.config.display(),
        run = %exp.run.root().display(),
        "ae {}",
        env!("CARGO_PKG_VERSION")
    );
    Ok(exp)
}

fn run_stages(cli: &Cli, args: &RunArgs, stages: &[Stage]) -> anyhow::Result<()> {
    let exp = Experiment::open(&args.config, &args.overrides, &cli.runs_dir)?;
    logging::init(
        cli.verbose,
        cli.quiet,
        &exp.run.path(ae_store::files::RUN_LOG),
    )?;
    tracing::info!(
        config = %args.config.display(),
        run = %exp.run.root().display(),
        "ae {}",
        env!("CARGO_PKG_VERSION")
    );
    pipeline::run_stages(&exp, stages)?;
    output::line(format_args!("run directory: {}", exp.run.root().display()));
    Ok(())
}
