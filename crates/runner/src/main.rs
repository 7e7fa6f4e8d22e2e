//! `ae`: the command-line runner of the autoencoder pipeline.
//!
//! Reads a TOML experiment config (see `configs/`), applies `--set`
//! overrides, and runs the pipeline's stages, each from its own crate, into
//! `runs/<name>/`: the resolved `config.toml`, `manifest.json`, `run.log` and
//! every stage's artifacts. Errors print their whole chain and exit non-zero.

mod bench;
mod cli;
mod config;
mod experiment;
mod lock;
mod logging;
mod observe;
mod output;
mod pipeline;
mod score;
mod stage;
mod staleness;
mod sweep;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, RunArgs};
use crate::experiment::{Experiment, Workspace};
use crate::pipeline::{Mode, Step, Upstream};
use crate::stage::Stage;

fn main() -> ExitCode {
    let cli = Cli::parse();
    exit_with_parent();
    match run(&cli) {
        Ok(code) => code,
        Err(err) => {
            tracing::error!(target: logging::LOG_FILE_ONLY, "{err:#}");
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Pipeline {
            args,
            force,
            from,
            dry_run,
            verify,
        } => {
            let steps: Vec<Step> = Stage::ALL
                .into_iter()
                .map(|stage| {
                    let forced = match from {
                        _ if *force => Some("--force".to_string()),
                        Some(first) if stage as usize >= *first as usize => {
                            Some(format!("--from {}", first.name()))
                        }
                        _ => None,
                    };
                    (stage, forced)
                })
                .collect();
            let mode = if *dry_run { Mode::DryRun } else { Mode::Run };
            run_steps(cli, args, &steps, mode, Upstream::Planned, *verify)
        }
        Command::Stage {
            name,
            args,
            with_upstream,
            allow_stale_inputs,
        } => {
            let mut steps: Vec<Step> = Vec::new();
            if *with_upstream {
                steps.extend(
                    Stage::ALL
                        .into_iter()
                        .take_while(|s| s != name)
                        .map(|s| (s, None)),
                );
            }
            steps.push((
                *name,
                Some(format!("requested with `ae stage {}`", name.name())),
            ));
            let upstream = match with_upstream {
                true => Upstream::Planned,
                false => Upstream::Checked {
                    allow_stale: *allow_stale_inputs,
                },
            };
            run_steps(cli, args, &steps, Mode::Run, upstream, false)
        }
        Command::Status { args, verify } => {
            let mut exp = Experiment::open(&args.config, &args.overrides, &workspace(cli))?;
            exp.verify = *verify;
            let steps: Vec<Step> = Stage::ALL.into_iter().map(|s| (s, None)).collect();
            pipeline::run_plan(&exp, &steps, Mode::Status, Upstream::Planned)
        }
        Command::Bench {
            args,
            epochs,
            engines,
            floor,
            kernels,
        } => {
            if let Some(path) = kernels {
                ae_model::kernels::Isa::cap(path)
                    .map_err(|e| anyhow::anyhow!("--kernels {path}: {e}"))?;
            }
            let exp = open(cli, args)?;
            bench::run(&exp, *epochs, engines, *floor)
        }
        Command::Sweep(args) => sweep::command(cli, &workspace(cli), args),
        Command::Score(args) => return score::command(cli, args),
        Command::Export { detector, onnx } => score::export(cli, detector, onnx),
    }
    .map(|()| ExitCode::SUCCESS)
}

/// The environment variable by which `ae sweep` asks the `ae pipeline` it
/// starts to end with it: it holds the sweep's process id.
pub(crate) const EXIT_WITH_PARENT: &str = "AE_EXIT_WITH_PARENT";

/// When started by a sweep, ends this process within a tenth of a second of
/// the sweep's end, however it ended (a signal to its pid, `kill -9`): a
/// supervisor that stops the sweep stops its points too. What the point was
/// writing is left as after any interruption: its next run redoes it.
fn exit_with_parent() {
    #[cfg(unix)]
    if let Some(parent) = std::env::var(EXIT_WITH_PARENT)
        .ok()
        .and_then(|pid| pid.parse::<u32>().ok())
    {
        std::thread::spawn(move || {
            loop {
                if std::os::unix::process::parent_id() != parent {
                    eprintln!("error: the sweep that started this ae has ended; stopping");
                    std::process::exit(143);
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        });
    }
}

/// Where runs go and what they may use, from the global flags.
fn workspace(cli: &Cli) -> Workspace {
    let cache = (!cli.no_cache).then(|| {
        ae_store::Cache::new(
            cli.cache_dir
                .clone()
                .unwrap_or_else(|| cli.runs_dir.join(".cache")),
        )
    });
    Workspace {
        runs_dir: cli.runs_dir.clone(),
        cache,
        threads: cli.threads.map(usize::from),
    }
}

/// Loads the experiment and starts logging into its run directory.
fn open(cli: &Cli, args: &RunArgs) -> anyhow::Result<Experiment> {
    let exp = Experiment::open(&args.config, &args.overrides, &workspace(cli))?;
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

fn run_steps(
    cli: &Cli,
    args: &RunArgs,
    steps: &[Step],
    mode: Mode,
    upstream: Upstream,
    verify: bool,
) -> anyhow::Result<()> {
    let mut exp = open(cli, args)?;
    exp.verify = verify;
    pipeline::run_plan(&exp, steps, mode, upstream)?;
    if mode == Mode::Run {
        output::line(format_args!("run directory: {}", exp.run.root().display()));
    }
    Ok(())
}
