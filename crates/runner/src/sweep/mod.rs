//! `ae sweep`: one experiment at every point of a grid, then a summary.
//!
//! Reads a sweep file (see [`spec`]); runs each point as its own `ae
//! pipeline` process in `runs/<sweep>/<point>/`, `--jobs` at a time, all
//! sharing one stage cache, so a stage computed for one point (the data
//! stage, at least) is restored for the others. Writes the summary (see
//! `ae_report::sweep`) to `runs/<sweep>/`. `--slurm` submits the points to
//! a SLURM cluster instead (see [`slurm`]); `--status` says where each point
//! stands (see [`status`]).

mod points;
mod slurm;
mod spec;
mod status;
mod summary;

use std::path::PathBuf;

use anyhow::bail;

use crate::cli::{Cli, SweepArgs};
use crate::experiment::Workspace;
use crate::output;

use spec::{Point, Sweep};

/// Runs `ae sweep`.
pub(crate) fn command(cli: &Cli, workspace: &Workspace, args: &SweepArgs) -> anyhow::Result<()> {
    let sweep = Sweep::load(&args.file, &args.overrides, args.allow_large)?;
    let dir = workspace.runs_dir.join(&sweep.name);
    if dir.join(ae_store::files::MANIFEST).is_file() {
        bail!(
            "{} is the run directory of an experiment named `{}`; give the sweep another name in {}",
            dir.display(),
            sweep.name,
            sweep.file.display()
        );
    }
    // The points' runs share the cache of the runs folder, not one of their own.
    let points_workspace = Workspace {
        runs_dir: dir.clone(),
        ..workspace.clone()
    };
    crate::logging::init_terminal(cli.verbose, cli.quiet)?;

    if args.collect {
        return summary::collect_and_write(&sweep, &points_workspace, &dir);
    }
    let selected: Vec<&Point> = sweep
        .points
        .iter()
        .filter(|p| args.shard.is_none_or(|s| s.contains(p.position)))
        .collect();
    let of_shard = args.shard.map_or(String::new(), |s| {
        format!(", shard {s}: {} of them", selected.len())
    });
    output::line(format_args!(
        "sweep {}: {} points of {}{of_shard}, in {}",
        sweep.name,
        sweep.points.len(),
        sweep.base.display(),
        dir.display()
    ));
    if args.status {
        return status::show(&sweep, &points_workspace, &dir);
    }
    if args.slurm {
        return slurm::submit(&sweep, args, workspace, &points_workspace, &dir);
    }
    if args.dry_run {
        for point in &selected {
            let state = if points::finished(&sweep, point, &points_workspace)? {
                "finished"
            } else {
                "to run"
            };
            output::line(format_args!(
                "{:>4}  {:<40} {state}",
                point.position + 1,
                point.name
            ));
        }
        return Ok(());
    }

    let threads = match args.jobs {
        1 => workspace.threads,
        _ => Some(1),
    };
    let runner = points::Runner {
        sweep: &sweep,
        workspace: &points_workspace,
        threads,
        verbose: cli.verbose,
    };
    let failed = runner.run_all(&selected, usize::from(args.jobs));

    let summarised = match args.shard {
        None => summary::collect_and_write(&sweep, &points_workspace, &dir),
        Some(shard) => {
            output::line(format_args!(
                "shard {shard} done; when every shard has finished, `ae sweep {} --collect` writes the summary",
                sweep.file.display()
            ));
            Ok(())
        }
    };
    if !failed.is_empty() {
        if let Err(err) = summarised {
            tracing::warn!("no summary: {err:#}");
        }
        bail!(
            "{} of {} points failed: {}; each point's run.log in {} says why",
            failed.len(),
            selected.len(),
            failed.join(", "),
            dir.display()
        );
    }
    summarised
}

/// `runs/<sweep>/<point>/`.
fn point_dir(workspace: &Workspace, point: &Point) -> PathBuf {
    workspace.runs_dir.join(&point.name)
}
