//! Running a sweep's points, each as an `ae pipeline` process, and telling
//! which have finished, from each point's own manifest.

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use ae_store::{Manifest, StageRecord, StageStatus, files};
use anyhow::Context;

use super::{Point, Sweep, point_dir};
use crate::experiment::{Experiment, Workspace};
use crate::observe;
use crate::output;
use crate::stage::Stage;
use crate::staleness::Decision;

/// The stages whose freshness says a point has finished. The data stage is
/// left out: its inputs are the dataset files, which a machine that only
/// collects results need not have (train's inputs are its outputs).
const RESULT_STAGES: [Stage; 4] = [Stage::Train, Stage::Infer, Stage::Eval, Stage::Report];

/// The point's experiment, without creating anything.
pub(crate) fn experiment(point: &Point, sweep: &Sweep, workspace: &Workspace) -> Experiment {
    Experiment::new(point.config.clone(), &sweep.base, workspace)
}

/// Whether every stage of `point` has run with its config and its outputs
/// are intact.
pub(crate) fn finished(
    sweep: &Sweep,
    point: &Point,
    workspace: &Workspace,
) -> anyhow::Result<bool> {
    let manifest_path = point_dir(workspace, point).join(files::MANIFEST);
    if !manifest_path.is_file() {
        return Ok(false);
    }
    let manifest = Manifest::load(&manifest_path)?;
    Ok(first_stale(sweep, point, workspace, &manifest)?.is_none())
}

/// The first of the point's result stages that must run again, and why,
/// judged against its `manifest`; `None` when the point has finished.
pub(crate) fn first_stale(
    sweep: &Sweep,
    point: &Point,
    workspace: &Workspace,
    manifest: &Manifest,
) -> anyhow::Result<Option<(Stage, String)>> {
    let exp = experiment(point, sweep, workspace);
    for stage in RESULT_STAGES {
        if let Decision::Run(why) = observe::assess(stage, &exp, manifest, None, None)?.decision {
            return Ok(Some((stage, why)));
        }
    }
    Ok(None)
}

/// Runs points as child processes of this `ae`.
pub(crate) struct Runner<'a> {
    /// The sweep.
    pub(crate) sweep: &'a Sweep,
    /// Where the points' run directories go, and the shared cache.
    pub(crate) workspace: &'a Workspace,
    /// The `--threads` each point gets.
    pub(crate) threads: ae_train::MaxThreads,
    /// `-v` count passed on.
    pub(crate) verbose: u8,
}

impl Runner<'_> {
    /// Runs `points`, `jobs` at a time, printing a line as each ends;
    /// returns the names of those that failed.
    pub(crate) fn run_all(&self, points: &[&Point], jobs: usize) -> Vec<String> {
        let next = AtomicUsize::new(0);
        let failed = Mutex::new(Vec::new());
        let done = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..jobs.min(points.len()) {
                scope.spawn(|| {
                    while let Some(point) = points.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let outcome = self.run_one(point);
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        let line = match outcome {
                            Ok(summary) => summary,
                            Err(err) => {
                                failed
                                    .lock()
                                    .expect("no thread panics holding the list")
                                    .push(point.name.clone());
                                format!("FAILED: {err:#}")
                            }
                        };
                        output::line(format_args!(
                            "[{n}/{}] {}: {line}",
                            points.len(),
                            point.name
                        ));
                    }
                });
            }
        });
        let mut failed = failed
            .into_inner()
            .expect("no thread panics holding the list");
        failed.sort_by_key(|name| points.iter().position(|p| &p.name == name));
        failed
    }

    /// Runs one point to completion; says, from the point's manifest, which
    /// stages ran, were restored or were fresh, and how long it took.
    fn run_one(&self, point: &Point) -> anyhow::Result<String> {
        let manifest_path = point_dir(self.workspace, point).join(files::MANIFEST);
        let before = Manifest::load(&manifest_path).unwrap_or_default();
        let exe = std::env::current_exe().context("cannot find the running ae executable")?;
        let mut command = Command::new(exe);
        command.arg("--runs-dir").arg(&self.workspace.runs_dir);
        match &self.workspace.cache {
            Some(cache) => command.arg("--cache-dir").arg(cache.root()),
            None => command.arg("--no-cache"),
        };
        if let Some(threads) = self.threads {
            command.arg("--threads").arg(threads.to_string());
        }
        // The point's run.log has every detail (and its manifest the error of
        // a failed stage); the terminal gets one line, unless -v asks for more.
        match self.verbose {
            0 => command.arg("--quiet"),
            n => command.arg(format!("-{}", "v".repeat(usize::from(n)))),
        };
        command.env(crate::EXIT_WITH_PARENT, std::process::id().to_string());
        command.arg("pipeline").arg(&self.sweep.base);
        for o in &point.overrides {
            command.arg("--set").arg(&o.argument);
        }
        let clock = Instant::now();
        let stderr = if self.verbose > 0 {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        let status = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .status()
            .context("cannot start ae for the point")?;
        let seconds = clock.elapsed().as_secs_f64();
        let after = Manifest::load(&manifest_path)?;
        if !status.success() {
            let log = point_dir(self.workspace, point).join(files::RUN_LOG);
            match failed_stage(&after) {
                Some((stage, error)) => anyhow::bail!("stage `{stage}` failed: {error}"),
                None => anyhow::bail!("ae exited with {status}; {} says why", log.display()),
            }
        }
        Ok(format!("{} ({seconds:.1} s)", verdicts(&before, &after)))
    }
}

/// The stage a point's manifest records as failed, with its error.
pub(crate) fn failed_stage(manifest: &Manifest) -> Option<(&str, &str)> {
    Stage::ALL.into_iter().find_map(|stage| {
        let record = manifest.stages.get(stage.name())?;
        (record.status == StageStatus::Failed).then(|| {
            (
                stage.name(),
                record.error.as_deref().unwrap_or("(no message)"),
            )
        })
    })
}

/// `ran train, infer; restored data; fresh eval, report`: what a pipeline
/// did, from the manifest before and after it.
fn verdicts(before: &Manifest, after: &Manifest) -> String {
    let mut by_verdict: Vec<(&str, Vec<&str>)> = Vec::new();
    for stage in Stage::ALL {
        let Some(record) = after.stages.get(stage.name()) else {
            continue;
        };
        let unchanged = before
            .stages
            .get(stage.name())
            .is_some_and(|old| same_run(old, record));
        let verdict = match (unchanged, record.restored) {
            (true, _) => "fresh",
            (false, true) => "restored",
            (false, false) => "ran",
        };
        match by_verdict.iter_mut().find(|(v, _)| *v == verdict) {
            Some((_, stages)) => stages.push(stage.name()),
            None => by_verdict.push((verdict, vec![stage.name()])),
        }
    }
    by_verdict
        .into_iter()
        .map(|(verdict, stages)| format!("{verdict} {}", stages.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether two records are of the same run of a stage.
fn same_run(a: &StageRecord, b: &StageRecord) -> bool {
    a.started_at == b.started_at
        && a.seconds == b.seconds
        && a.fingerprint == b.fingerprint
        && a.status == b.status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(started_at: &str, restored: bool) -> StageRecord {
        StageRecord {
            status: StageStatus::Ok,
            fingerprint: "f".into(),
            config: serde_json::Value::Null,
            version: "v".into(),
            started_at: started_at.into(),
            seconds: 0.0,
            inputs: vec![],
            outputs: vec![],
            error: None,
            restored,
        }
    }

    #[test]
    fn the_manifests_before_and_after_say_what_ran() {
        let mut before = Manifest::default();
        before.stages.insert("data".into(), record("t0", false));
        before.stages.insert("eval".into(), record("t0", false));
        let mut after = before.clone();
        after.stages.insert("data".into(), record("t1", true));
        after.stages.insert("train".into(), record("t1", false));
        after.stages.insert("infer".into(), record("t1", false));
        assert_eq!(
            verdicts(&before, &after),
            "restored data; ran train, infer; fresh eval"
        );
        let mut failed = after.clone();
        failed.stages.get_mut("infer").expect("infer").status = StageStatus::Failed;
        failed.stages.get_mut("infer").expect("infer").error = Some("boom".into());
        assert_eq!(failed_stage(&failed), Some(("infer", "boom")));
        assert_eq!(failed_stage(&after), None);
    }
}
