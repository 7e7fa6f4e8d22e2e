//! Running a sweep's points, each as an `ae pipeline` process, and telling
//! which have finished.

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use ae_store::{Manifest, files};
use anyhow::Context;

use super::{Point, Sweep, point_dir};
use crate::output;
use crate::pipeline::{Experiment, Stage, Workspace};
use crate::staleness::{self, Decision};

/// The stages whose freshness says a point has finished. The data stage is
/// left out: its inputs are the dataset files, which a machine that only
/// collects results need not have (train's inputs are its outputs).
const RESULT_STAGES: [Stage; 4] = [Stage::Train, Stage::Infer, Stage::Eval, Stage::Report];

/// The point's experiment, without creating anything.
pub fn experiment(point: &Point, sweep: &Sweep, workspace: &Workspace) -> Experiment {
    Experiment::new(point.config.clone(), &sweep.base, workspace)
}

/// Whether every stage of `point` has run with its config and its outputs
/// are intact.
pub fn finished(sweep: &Sweep, point: &Point, workspace: &Workspace) -> anyhow::Result<bool> {
    let manifest_path = point_dir(workspace, point).join(files::MANIFEST);
    if !manifest_path.is_file() {
        return Ok(false);
    }
    let manifest = Manifest::load(&manifest_path)?;
    let exp = experiment(point, sweep, workspace);
    for stage in RESULT_STAGES {
        let (decision, _) = staleness::assess(stage, &exp, &manifest, None)?;
        if decision != Decision::Fresh {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Runs points as child processes of this `ae`.
pub struct Runner<'a> {
    /// The sweep.
    pub sweep: &'a Sweep,
    /// Where the points' run directories go, and the shared cache.
    pub workspace: &'a Workspace,
    /// The `--threads` each point gets.
    pub threads: ae_train::MaxThreads,
    /// `-v` count passed on.
    pub verbose: u8,
}

impl Runner<'_> {
    /// Runs `points`, `jobs` at a time, printing a line as each ends;
    /// returns the names of those that failed.
    pub fn run_all(&self, points: &[&Point], jobs: usize) -> Vec<String> {
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

    /// Runs one point to completion; says which stages ran and how long it took.
    fn run_one(&self, point: &Point) -> anyhow::Result<String> {
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
        // The point's run.log has every detail; the terminal gets one line.
        match self.verbose {
            0 => command.arg("--quiet"),
            n => command.arg(format!("-{}", "v".repeat(usize::from(n)))),
        };
        command.arg("pipeline").arg(&self.sweep.base);
        for o in &point.overrides {
            command.arg("--set").arg(&o.argument);
        }
        let clock = Instant::now();
        let out = command
            .stdin(Stdio::null())
            .stderr(if self.verbose > 0 {
                Stdio::inherit()
            } else {
                Stdio::piped()
            })
            .output()
            .context("cannot start ae for the point")?;
        let seconds = clock.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let error = stderr
                .lines()
                .rev()
                .find(|l| l.starts_with("error: "))
                .map_or_else(
                    || format!("ae exited with {}", out.status),
                    |l| l["error: ".len()..].to_string(),
                );
            anyhow::bail!("{error}");
        }
        Ok(format!("{} ({seconds:.1} s)", describe_verdicts(&stdout)))
    }
}

/// `ran train, infer, eval, report; restored data` from a pipeline's lines.
fn describe_verdicts(stdout: &str) -> String {
    let mut by_verdict: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in stdout.lines() {
        let mut words = line.split_whitespace();
        let (Some(stage), Some(verdict)) = (words.next(), words.next()) else {
            continue;
        };
        if !Stage::ALL.iter().any(|s| s.name() == stage) {
            continue;
        }
        match by_verdict.iter_mut().find(|(v, _)| *v == verdict) {
            Some((_, stages)) => stages.push(stage),
            None => by_verdict.push((verdict, vec![stage])),
        }
    }
    by_verdict
        .into_iter()
        .map(|(verdict, stages)| format!("{verdict} {}", stages.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_lines_become_one_summary() {
        let stdout = "data    restored  never ran (from the cache)\n\
                      train   ran       never ran (1.0 s)\n\
                      infer   ran       never ran (0.1 s)\n\
                      Found 3 anomalies!\n\
                      eval    fresh\n\
                      report: runs/x/report/index.html\n";
        assert_eq!(
            describe_verdicts(stdout),
            "restored data; ran train, infer; fresh eval"
        );
    }
}
