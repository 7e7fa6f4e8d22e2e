//! `ae sweep FILE --status`: where each point stands, from its own files
//! (and SLURM's queue when the sweep was submitted), then the summary so far.
//! Writes nothing.

use std::path::Path;

use ae_report::sweep;
use ae_store::{Manifest, StageStatus, files};

use super::slurm::{self, Queue, Submission};
use super::summary::{self, Gathered};
use super::{Point, Sweep, point_dir, points};
use crate::experiment::Workspace;
use crate::lock;
use crate::output;
use crate::stage::Stage;

/// Where one point stands.
#[derive(Debug, Clone, PartialEq)]
enum PointState {
    /// Every stage ran with the point's config and its outputs are intact.
    Finished,
    /// An `ae` holds the point's run directory now.
    Running,
    /// A stage failed or was interrupted: why.
    Failed(String),
    /// It ran, but a stage must run again: why (its config changed, an
    /// output was deleted or altered).
    Stale(String),
    /// Nothing has run yet.
    NotStarted,
}

impl PointState {
    fn label(&self) -> String {
        match self {
            Self::Finished => "finished".into(),
            Self::Running => "running".into(),
            Self::Failed(why) => format!("failed ({why})"),
            Self::Stale(why) => format!("stale ({why})"),
            Self::NotStarted => "not started".into(),
        }
    }
}

/// Runs `ae sweep FILE --status`.
pub(super) fn show(sweep: &Sweep, workspace: &Workspace, dir: &Path) -> anyhow::Result<()> {
    let submissions = slurm::submissions(&dir.join(slurm::SLURM_DIR))?;
    let queue = match submissions.last() {
        None => None,
        Some(_) => {
            let ids: Vec<&str> = submissions.iter().flat_map(Submission::job_ids).collect();
            match Queue::read(&ids) {
                Ok(queue) => Some(queue),
                Err(err) => {
                    tracing::warn!("job states not shown: {err:#}");
                    None
                }
            }
        }
    };
    if let Some(last) = submissions.last() {
        output::line(format_args!(
            "submitted to SLURM {}: array job {} (tasks {} of 1-{}), collect job {}",
            last.submitted_at,
            last.array_job,
            slurm::array_ranges(&last.tasks),
            last.shards,
            last.collect_job.as_deref().unwrap_or("none")
        ));
    }

    let mut rows = Vec::with_capacity(sweep.points.len());
    for point in &sweep.points {
        let state = point_state(sweep, point, workspace)?;
        // The last submission that ran the point.
        let job = submissions
            .iter()
            .rev()
            .find_map(|s| s.task_of(point))
            .map(|task| {
                let queued = queue.as_ref().and_then(|q| q.find(&task));
                match queued {
                    Some(job) => format!("{task} {}", job.describe()),
                    None if queue.is_some() => format!("{task} ended"),
                    None => task,
                }
            })
            .unwrap_or_default();
        rows.push((point.name.as_str(), state, job));
    }
    let name_width = rows.iter().map(|(n, ..)| n.len()).max().unwrap_or(5).max(5);
    let state_width = rows
        .iter()
        .map(|(_, s, _)| s.label().len())
        .max()
        .unwrap_or(5)
        .max(5);
    let with_jobs = rows.iter().any(|(.., job)| !job.is_empty());
    let line = |name: &str, state: &str, job: &str| match with_jobs {
        true => format!("{name:<name_width$}  {state:<state_width$}  {job}"),
        false => format!("{name:<name_width$}  {state}"),
    };
    output::line(line("point", "state", "job"));
    for (name, state, job) in &rows {
        output::line(line(name, &state.label(), job));
    }
    if let (Some(last), Some(queue)) = (submissions.last(), &queue)
        && let Some(collect) = &last.collect_job
    {
        let state = queue
            .find(collect)
            .map_or("ended".to_string(), |job| job.describe());
        output::line(format_args!("collect job {collect}: {state}"));
    }
    let count = |wanted: fn(&PointState) -> bool| rows.iter().filter(|(_, s, _)| wanted(s)).count();
    output::line(format_args!(
        "{} finished, {} running, {} failed, {} stale, {} not started",
        count(|s| *s == PointState::Finished),
        count(|s| *s == PointState::Running),
        count(|s| matches!(s, PointState::Failed(_))),
        count(|s| matches!(s, PointState::Stale(_))),
        count(|s| *s == PointState::NotStarted),
    ));

    let Gathered {
        summary, results, ..
    } = summary::gather(sweep, workspace, |point| {
        Ok(rows[point.position].1 == PointState::Finished)
    })?;
    if !results.is_empty() {
        output::line("");
        for text in sweep::markdown(&summary, &results).lines() {
            output::line(text);
        }
    }
    Ok(())
}

/// Where `point` stands, from its manifest and its run directory's lock.
fn point_state(sweep: &Sweep, point: &Point, workspace: &Workspace) -> anyhow::Result<PointState> {
    let exp = points::experiment(point, sweep, workspace);
    if lock::holder(&exp).is_some() {
        return Ok(PointState::Running);
    }
    let manifest_path = point_dir(workspace, point).join(files::MANIFEST);
    if !manifest_path.is_file() {
        return Ok(PointState::NotStarted);
    }
    let manifest = Manifest::load(&manifest_path)?;
    if let Some((stage, error)) = points::failed_stage(&manifest) {
        return Ok(PointState::Failed(format!(
            "stage `{stage}`: {}",
            first_line(error)
        )));
    }
    // Recorded as running while nobody holds the lock: killed mid-stage.
    let interrupted = Stage::ALL.into_iter().find(|stage| {
        manifest
            .stages
            .get(stage.name())
            .is_some_and(|record| record.status == StageStatus::Running)
    });
    if let Some(stage) = interrupted {
        return Ok(PointState::Failed(format!(
            "interrupted in stage `{}`",
            stage.name()
        )));
    }
    Ok(
        match points::first_stale(sweep, point, workspace, &manifest)? {
            None => PointState::Finished,
            Some((stage, why)) => {
                PointState::Stale(format!("stage `{}`: {}", stage.name(), first_line(&why)))
            }
        },
    )
}

/// The first line of a message, at most 100 characters.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    match line.char_indices().nth(100) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}
