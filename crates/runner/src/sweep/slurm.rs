//! `ae sweep --slurm`: the sweep as one SLURM array job and a collect job.
//!
//! Writes into `runs/<sweep>/slurm/`: `array.sh` (array task I runs
//! `ae sweep FILE --shard I/N`), `collect.sh` (`ae sweep FILE --collect`),
//! `logs/` (each task's output, `%A_%a.out`) and `submissions.json` (every
//! submission's job ids, read by `--status` and by the next submission).
//! Shard I holds the points at 0-based positions I-1, I-1+N, … with
//! N = ⌈points / points-per-task⌉, and only shards with a point that has not
//! finished are submitted: running the same command again reruns what
//! failed or never ran, and nothing else.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::{Point, Sweep, points};
use crate::cli::{ClusterArgs, SweepArgs};
use crate::experiment::Workspace;
use crate::output;

/// The folder of the job scripts, logs and submissions, in the sweep's folder.
pub(super) const SLURM_DIR: &str = "slurm";
/// The record of submissions, in [`SLURM_DIR`].
const SUBMISSIONS: &str = "submissions.json";

/// One submission of the sweep, as `submissions.json` keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Submission {
    /// When it was submitted (RFC 3339).
    pub submitted_at: String,
    /// The array job's id.
    pub array_job: String,
    /// The collect job's id; `None` when sbatch refused it.
    pub collect_job: Option<String>,
    /// N: the shards the points were split into.
    pub shards: usize,
    /// The shards submitted, each an array task of the same index.
    pub tasks: Vec<usize>,
}

impl Submission {
    /// The array task that ran `point` in this submission, as SLURM names it
    /// (`12_3`), if its shard was submitted.
    pub(super) fn task_of(&self, point: &Point) -> Option<String> {
        let shard = task_index(point.position, self.shards);
        self.tasks
            .contains(&shard)
            .then(|| format!("{}_{shard}", self.array_job))
    }

    /// Every job id of the submission, for `squeue --jobs`.
    pub(super) fn job_ids(&self) -> Vec<&str> {
        std::iter::once(self.array_job.as_str())
            .chain(self.collect_job.as_deref())
            .collect()
    }
}

/// The submissions recorded in `slurm_dir`, oldest first; none when the
/// sweep was never submitted.
pub(super) fn submissions(slurm_dir: &Path) -> anyhow::Result<Vec<Submission>> {
    let path = slurm_dir.join(SUBMISSIONS);
    if path.symlink_metadata().is_err() {
        return Ok(Vec::new());
    }
    let text = ae_store::read_bounded_text(&path, 16 << 20)?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a list of submissions; delete it to forget earlier submissions",
            path.display()
        )
    })
}

/// Runs `ae sweep FILE --slurm`.
pub(super) fn submit(
    sweep: &Sweep,
    args: &SweepArgs,
    workspace: &Workspace,
    points_workspace: &Workspace,
    dir: &Path,
) -> anyhow::Result<()> {
    let cluster = &args.cluster;
    let slurm_dir = dir.join(SLURM_DIR);
    ae_store::create_dir_all(&slurm_dir.join("logs"))?;
    let _lock = lock_submissions(&slurm_dir, &sweep.name)?;

    let earlier = submissions(&slurm_dir)?;
    if let Some(last) = earlier.last()
        && !args.dry_run
    {
        refuse_while_queued(last, sweep)?;
    }

    let shards = sweep
        .points
        .len()
        .div_ceil(cluster.points_per_task as usize);
    let mut unfinished = Vec::new();
    for point in &sweep.points {
        if !points::finished(sweep, point, points_workspace)? {
            unfinished.push(point);
        }
    }
    let mut tasks: Vec<usize> = unfinished
        .iter()
        .map(|p| task_index(p.position, shards))
        .collect();
    tasks.sort_unstable();
    tasks.dedup();
    if tasks.is_empty() {
        output::line(format_args!(
            "every point of sweep {} has finished; nothing to submit (`ae sweep {} --collect` writes the summary)",
            sweep.name,
            sweep.file.display()
        ));
        return Ok(());
    }
    output::line(format_args!(
        "slurm: {} of {} points to run: {} of {shards} array tasks of up to {}, {} each",
        unfinished.len(),
        sweep.points.len(),
        tasks.len(),
        counted(cluster.points_per_task.into(), "point"),
        counted(cluster.cpus_per_task.into(), "CPU")
    ));

    let scripts = Scripts::new(sweep, args, workspace, &slurm_dir, shards)?;
    scripts.write()?;
    let logs = absolute(&slurm_dir.join("logs"))?;
    let mut array = sbatch_command(cluster);
    array
        .arg(format!("--array={}", array_ranges(&tasks)))
        .arg(format!("--job-name=ae-{}", sweep.name))
        .arg(format!("--cpus-per-task={}", cluster.cpus_per_task))
        .arg(format!("--output={}", logs.join("%A_%a.out").display()))
        .arg(&scripts.array);
    let collect_line = |array_job: &str| {
        let mut collect = sbatch_command(cluster);
        collect
            .arg(format!("--dependency=afterany:{array_job}"))
            .arg(format!("--job-name=ae-{}-collect", sweep.name))
            .arg("--cpus-per-task=1")
            .arg(format!(
                "--output={}",
                logs.join("collect_%j.out").display()
            ))
            .arg(&scripts.collect);
        collect
    };

    if args.dry_run {
        output::line(format_args!("would run: {}", command_line(&array)));
        output::line(format_args!(
            "then:      {}",
            command_line(&collect_line("ARRAY_JOB_ID"))
        ));
        output::line(format_args!(
            "job scripts: {} {}",
            scripts.array.display(),
            scripts.collect.display()
        ));
        return Ok(());
    }

    output::line(format_args!("$ {}", command_line(&array)));
    let array_job = run_sbatch(&mut array, "the array job")?;
    let mut submission = Submission {
        submitted_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        array_job,
        collect_job: None,
        shards,
        tasks,
    };
    output::line(format_args!(
        "array job {}: tasks {}",
        submission.array_job,
        array_ranges(&submission.tasks)
    ));
    // Recorded at once, so that a submission cut short here still keeps the
    // next one from running the same points beside it.
    let mut all = earlier;
    all.push(submission.clone());
    record_submissions(&slurm_dir, &all)?;
    let mut collect = collect_line(&submission.array_job);
    output::line(format_args!("$ {}", command_line(&collect)));
    let id = run_sbatch(&mut collect, "the collect job").with_context(|| {
        format!(
            "the array job {} was submitted, but not the job that collects it (run `ae sweep {} --collect` when it ends)",
            submission.array_job,
            sweep.file.display()
        )
    })?;
    output::line(format_args!("collect job {id}: after the array job ends"));
    submission.collect_job = Some(id);
    *all.last_mut().expect("just pushed") = submission.clone();
    record_submissions(&slurm_dir, &all)?;
    output::line(format_args!(
        "logs: {} (collect_{}.out); follow with `ae sweep {} --status`",
        logs.join(format!("{}_%a.out", submission.array_job))
            .display(),
        submission.collect_job.as_deref().unwrap_or("?"),
        sweep.file.display()
    ));
    Ok(())
}

/// Holds `slurm/.submit.lock` while submitting: two submissions of one
/// sweep at once would both submit its unfinished points.
fn lock_submissions(slurm_dir: &Path, sweep: &str) -> anyhow::Result<File> {
    let path = slurm_dir.join(".submit.lock");
    let file = crate::lock::open_lock_file(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => bail!(
            "another `ae sweep --slurm` is submitting sweep `{sweep}` now ({} is locked); let it finish",
            path.display()
        ),
        Err(TryLockError::Error(e)) if crate::lock::locks_unsupported(&e) => {
            tracing::warn!(
                "the file system of {} does not support locks ({e}); submitting without the lock",
                path.display()
            );
            Ok(file)
        }
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Refuses to submit while a job of the last submission is still queued or
/// running: its tasks would run the same points twice at once.
fn refuse_while_queued(last: &Submission, sweep: &Sweep) -> anyhow::Result<()> {
    let queue = match Queue::read(&last.job_ids()) {
        Ok(queue) => queue,
        Err(err) => bail!(
            "cannot tell whether the last submission's jobs ({}) are still queued: {err:#}",
            last.job_ids().join(", ")
        ),
    };
    let active: Vec<String> = queue
        .jobs
        .iter()
        .filter(|job| job.active())
        .map(|job| format!("{} {}", job.id, job.state))
        .collect();
    if !active.is_empty() {
        bail!(
            "jobs of sweep `{}` are still queued or running ({}); wait for them (`ae sweep {} --status`) or cancel them with `scancel {}`, then submit again",
            sweep.name,
            active.join(", "),
            sweep.file.display(),
            last.job_ids().join(" ")
        );
    }
    Ok(())
}

/// Writes `submissions.json` atomically.
fn record_submissions(slurm_dir: &Path, all: &[Submission]) -> anyhow::Result<()> {
    let path = slurm_dir.join(SUBMISSIONS);
    ae_store::write_atomic(&path, |out| {
        serde_json::to_writer_pretty(&mut *out, all)?;
        out.write_all(b"\n")
    })
    .with_context(|| {
        format!(
            "the jobs were submitted, but recording them in {} failed",
            path.display()
        )
    })
}

/// `sbatch --parsable` and the options both jobs share.
fn sbatch_command(cluster: &ClusterArgs) -> Command {
    let mut command = Command::new("sbatch");
    command.arg("--parsable");
    if let Some(partition) = &cluster.partition {
        command.arg(format!("--partition={partition}"));
    }
    if let Some(time) = &cluster.time {
        command.arg(format!("--time={time}"));
    }
    if let Some(mem) = &cluster.mem {
        command.arg(format!("--mem={mem}"));
    }
    command.args(&cluster.sbatch_args);
    command
}

/// Runs sbatch; returns the job id it printed, or its own message when it
/// refused.
fn run_sbatch(command: &mut Command, what: &str) -> anyhow::Result<String> {
    let out = command.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow::anyhow!(
            "cannot submit {what}: `sbatch` is not on PATH. --slurm runs where SLURM's commands are (a cluster's login node); --dry-run writes the job scripts without them"
        ),
        _ => anyhow::Error::new(e).context(format!("cannot run sbatch for {what}")),
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!(
            "sbatch refused {what} ({}): {}",
            out.status,
            one_message(&stderr, &stdout)
        );
    }
    // `--parsable` prints `id` or `id;cluster`.
    let id = stdout.trim().split(';').next().unwrap_or("").trim();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        bail!(
            "sbatch submitted {what} but printed no job id: {}",
            one_message(&stdout, &stderr)
        );
    }
    Ok(id.to_string())
}

/// A tool's messages as one line: `sbatch: error: ` prefixes dropped.
fn one_message(first: &str, second: &str) -> String {
    let lines: Vec<&str> = first
        .lines()
        .chain(second.lines())
        .map(|l| {
            l.trim()
                .trim_start_matches("sbatch: error: ")
                .trim_start_matches("squeue: error: ")
        })
        .filter(|l| !l.is_empty())
        .collect();
    match lines.is_empty() {
        true => "(no message)".to_string(),
        false => lines.join(" "),
    }
}

/// `1 point`, `2 points`.
fn counted(n: u64, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        _ => format!("{n} {noun}s"),
    }
}

/// `1-3,5,7-8`: sorted indices as sbatch's `--array` takes them.
pub(super) fn array_ranges(indices: &[usize]) -> String {
    let mut text = String::new();
    let mut i = 0;
    while i < indices.len() {
        let start = indices[i];
        let mut end = start;
        while i + 1 < indices.len() && indices[i + 1] == end + 1 {
            i += 1;
            end += 1;
        }
        if !text.is_empty() {
            text.push(',');
        }
        let _ = match start == end {
            true => write!(text, "{start}"),
            false => write!(text, "{start}-{end}"),
        };
        i += 1;
    }
    text
}

/// The two job scripts of a submission.
struct Scripts {
    array: PathBuf,
    collect: PathBuf,
    array_text: String,
    collect_text: String,
}

impl Scripts {
    /// Scripts that run this `ae` binary, from the folder it runs in now,
    /// on the same runs folder, cache, data root and `--set` overrides.
    fn new(
        sweep: &Sweep,
        args: &SweepArgs,
        workspace: &Workspace,
        slurm_dir: &Path,
        shards: usize,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the running ae executable")?;
        let cwd = std::env::current_dir().context("cannot tell the current folder")?;
        let mut ae = vec![quote(exe.as_os_str())];
        ae.push("--runs-dir".into());
        ae.push(quote(absolute(&workspace.runs_dir)?.as_os_str()));
        match &workspace.cache {
            Some(cache) => {
                ae.push("--cache-dir".into());
                ae.push(quote(absolute(cache.root())?.as_os_str()));
            }
            None => ae.push("--no-cache".into()),
        }
        let mut sweep_args = vec![
            "sweep".to_string(),
            quote(absolute(&args.file)?.as_os_str()),
        ];
        for o in &args.overrides {
            sweep_args.push("--set".into());
            sweep_args.push(quote(OsStr::new(&o.argument)));
        }
        if args.allow_large {
            sweep_args.push("--allow-large".into());
        }
        let file = comment_text(&sweep.file.display().to_string());
        let mut header = format!(
            "#!/bin/sh\n# Written by `ae sweep {file} --slurm`; `ae sweep {file} --slurm` submits it again\n# with the points that have not finished.\nset -eu\ncd {}\n",
            quote(cwd.as_os_str())
        );
        // The data root as it was at submission, whatever the job's environment.
        if let Some(data) = std::env::var_os("AE_DATA_DIR").filter(|v| !v.is_empty()) {
            let _ = writeln!(
                header,
                "export AE_DATA_DIR={}",
                quote(absolute(Path::new(&data))?.as_os_str())
            );
        }
        let cpus = args.cluster.cpus_per_task;
        let array_text = format!(
            "{header}# Array task I runs the points of shard I/{shards} (positions I-1, I-1+{shards}, …).\nexec {} --threads {cpus} {} --shard \"$SLURM_ARRAY_TASK_ID/{shards}\"\n",
            ae.join(" "),
            sweep_args.join(" ")
        );
        let collect_text = format!(
            "{header}# Writes the summary of the points that finished.\nexec {} {} --collect\n",
            ae.join(" "),
            sweep_args.join(" ")
        );
        Ok(Self {
            array: absolute(&slurm_dir.join("array.sh"))?,
            collect: absolute(&slurm_dir.join("collect.sh"))?,
            array_text,
            collect_text,
        })
    }

    /// Writes both, atomically and executable.
    fn write(&self) -> anyhow::Result<()> {
        for (path, text) in [
            (&self.array, &self.array_text),
            (&self.collect, &self.collect_text),
        ] {
            ae_store::write_atomic(path, |out| out.write_all(text.as_bytes()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                    .with_context(|| format!("cannot make {} executable", path.display()))?;
            }
        }
        Ok(())
    }
}

/// `path` made absolute against the current folder (symbolic links kept:
/// the job sees the same names).
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot make {} absolute", path.display()))
}

/// A word for `sh`: as it is when it needs no quoting, else in single quotes.
fn quote(word: &OsStr) -> String {
    let text = word.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./:=,%@+-".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// `text` for a `#` comment: a line break in a file name would end the
/// comment and make the rest a command, so control characters are escaped.
fn comment_text(text: &str) -> String {
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect()
}

/// A command as a shell line.
fn command_line(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One job or array task as `squeue` lists it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct QueuedJob {
    /// `12` or `12_3`.
    pub id: String,
    /// `PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, …
    pub state: String,
    /// Why it waits (`Dependency`, `Resources`) or `None`.
    pub reason: String,
}

impl QueuedJob {
    /// Whether it is still to run or running.
    pub(super) fn active(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING" | "SUSPENDED" | "REQUEUED"
        )
    }

    /// `RUNNING`, `PENDING (Dependency)`.
    pub(super) fn describe(&self) -> String {
        match self.reason.as_str() {
            "None" | "" => self.state.clone(),
            reason => format!("{} ({reason})", self.state),
        }
    }
}

/// What `squeue` knows of some jobs: those queued, running, or ended
/// recently (SLURM forgets ended jobs after `MinJobAge`, 5 minutes by default).
#[derive(Debug, Default)]
pub(super) struct Queue {
    pub jobs: Vec<QueuedJob>,
}

impl Queue {
    /// Asks `squeue` about `ids` (array jobs task by task).
    pub(super) fn read(ids: &[&str]) -> anyhow::Result<Self> {
        let out = Command::new("squeue")
            .args(["--noheader", "--array", "--states=all", "--format=%i|%T|%r"])
            .arg(format!("--jobs={}", ids.join(",")))
            .output()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => anyhow::anyhow!("`squeue` is not on PATH"),
                _ => anyhow::Error::new(e).context("cannot run squeue"),
            })?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            // Every id forgotten: nothing of them is queued.
            if stderr.contains("Invalid job id") {
                return Ok(Self::default());
            }
            bail!(
                "squeue failed ({}): {}",
                out.status,
                one_message(&stderr, &stdout)
            );
        }
        Ok(Self::parse(&stdout))
    }

    fn parse(text: &str) -> Self {
        let jobs = text
            .lines()
            .filter_map(|line| {
                let mut cells = line.trim().splitn(3, '|');
                Some(QueuedJob {
                    id: cells.next()?.to_string(),
                    state: cells.next()?.to_string(),
                    reason: cells.next().unwrap_or("").to_string(),
                })
            })
            .collect();
        Self { jobs }
    }

    /// The job or array task `id` (`12_3`), or, for a task of an array whose
    /// tasks have not been split out yet, the array's pending line (`12_[1-4]`).
    pub(super) fn find(&self, id: &str) -> Option<&QueuedJob> {
        self.jobs.iter().find(|j| j.id == id).or_else(|| {
            let (array, task) = id.split_once('_')?;
            let task: usize = task.parse().ok()?;
            self.jobs.iter().find(|j| {
                j.id.strip_prefix(array)
                    .and_then(|rest| rest.strip_prefix("_["))
                    .and_then(|rest| rest.split(['%', ']']).next())
                    .is_some_and(|ranges| in_ranges(ranges, task))
            })
        })
    }
}

/// Whether `task` is in `1-3,5`.
fn in_ranges(ranges: &str, task: usize) -> bool {
    ranges.split(',').any(|range| match range.split_once('-') {
        Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
            (Ok(a), Ok(b)) => (a..=b).contains(&task),
            _ => false,
        },
        None => range.parse() == Ok(task),
    })
}

/// The array task (and shard, 1-based) that runs the point at 0-based
/// `position`: the one whose `--shard I/N` holds it.
fn task_index(position: usize, shards: usize) -> usize {
    position % shards + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Shard;

    #[test]
    fn array_ranges_compress_runs() {
        assert_eq!(array_ranges(&[1, 2, 3, 5, 7, 8]), "1-3,5,7-8");
        assert_eq!(array_ranges(&[4]), "4");
        assert_eq!(array_ranges(&[]), "");
    }

    #[test]
    fn words_are_quoted_only_when_needed() {
        assert_eq!(quote(OsStr::new("/a/b-c_1.toml")), "/a/b-c_1.toml");
        assert_eq!(quote(OsStr::new("a b")), "'a b'");
        assert_eq!(quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(quote(OsStr::new("$HOME;rm")), "'$HOME;rm'");
        assert_eq!(quote(OsStr::new("")), "''");
    }

    #[test]
    fn a_file_name_cannot_end_a_comment() {
        assert_eq!(comment_text("a\nrm -rf x\r.toml"), "a\\nrm -rf x\\r.toml");
        assert_eq!(comment_text("plain é.toml"), "plain é.toml");
    }

    #[test]
    fn the_queue_finds_tasks_split_out_or_still_in_the_array_line() {
        let queue = Queue::parse(
            "12_1|RUNNING|None\n12_[2-3,5%2]|PENDING|Resources\n13|PENDING|Dependency\n",
        );
        assert_eq!(
            queue.find("12_1").map(QueuedJob::describe).as_deref(),
            Some("RUNNING")
        );
        assert_eq!(
            queue.find("12_5").map(QueuedJob::describe).as_deref(),
            Some("PENDING (Resources)")
        );
        assert!(queue.find("12_4").is_none());
        assert!(queue.find("13").is_some_and(QueuedJob::active));
        assert!(queue.find("1_1").is_none());
    }

    #[test]
    fn a_point_belongs_to_the_task_of_its_shard() {
        for shards in 1..5 {
            for position in 0..12 {
                let index = task_index(position, shards);
                assert!((1..=shards).contains(&index));
                assert!(
                    Shard {
                        index,
                        count: shards
                    }
                    .contains(position)
                );
            }
        }
    }
}
