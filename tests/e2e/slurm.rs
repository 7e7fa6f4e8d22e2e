//! `ae sweep --slurm` and `--status`: the job scripts, sbatch's refusals,
//! and a real one-node SLURM cluster (`tests/slurm/cluster.sh`, which
//! `.ci/run` starts). Where `sbatch` is absent the cluster test says so and
//! skips, unless `AE_REQUIRE_SLURM` is set (CI sets it), where it fails.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Run, Sandbox};
use crate::sweep::{GRID, POINTS, results};

/// How long the cluster may take to run a submission, collect job included.
const WAIT: Duration = Duration::from_secs(300);

/// A folder holding an executable `sbatch` that answers as a cluster that
/// refuses the job would.
fn refusing_sbatch(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).expect("mkdir");
    let sbatch = bin.join("sbatch");
    fs::write(
        &sbatch,
        "#!/bin/sh\necho 'sbatch: error: invalid partition specified: gpu' >&2\necho 'sbatch: error: Batch job submission failed: Invalid partition name specified' >&2\nexit 1\n",
    )
    .expect("write sbatch");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&sbatch, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    bin
}

/// The sweep file of the script test, in a folder whose name needs quoting.
const SWEEP_FILE: &str = "my sweeps/it's grid.toml";

#[test]
fn the_job_scripts_name_this_binary_and_the_sweep_and_sbatch_refusals_are_clear() {
    let sandbox = Sandbox::synthetic();
    // A path the shell would split and unquote: the scripts must quote it.
    sandbox.write(SWEEP_FILE, GRID);
    let empty = sandbox.path().join("empty");
    fs::create_dir_all(&empty).expect("mkdir");

    // --dry-run needs no SLURM: it writes the scripts and prints the lines.
    let dry = sandbox.ae_with_env(
        &[
            "sweep",
            SWEEP_FILE,
            "--slurm",
            "--dry-run",
            "--points-per-task",
            "3",
            "--cpus-per-task",
            "4",
            "--partition",
            "short",
            "--time",
            "0:30:00",
            "--sbatch-arg=--account=lab x",
        ],
        None,
        &[("PATH", empty.as_os_str())],
    );
    dry.assert_ok();
    let array_line = dry
        .stdout
        .lines()
        .find(|l| l.starts_with("would run: sbatch"))
        .unwrap_or_else(|| panic!("{}", dry.stdout));
    for part in [
        "--parsable",
        "--array=1-2",
        "--partition=short",
        "--time=0:30:00",
        "'--account=lab x'",
        "--cpus-per-task=4",
        "/runs/grid/slurm/logs/%A_%a.out",
        "/runs/grid/slurm/array.sh",
    ] {
        assert!(array_line.contains(part), "{part} in {array_line}");
    }
    assert!(
        dry.stdout
            .contains("--dependency=afterany:ARRAY_JOB_ID --job-name=ae-grid-collect"),
        "{}",
        dry.stdout
    );
    let script =
        fs::read_to_string(sandbox.path().join("runs/grid/slurm/array.sh")).expect("array.sh");
    let exe = fs::canonicalize(env!("CARGO_BIN_EXE_ae")).expect("ae");
    let sweep_file = fs::canonicalize(sandbox.path().join(SWEEP_FILE)).expect("sweep");
    assert!(script.starts_with("#!/bin/sh\n"), "{script}");
    assert!(
        script.contains(&format!("exec {}", exe.display())),
        "{script}"
    );
    assert!(
        script.contains(&format!(
            "--threads 4 sweep '{}' --shard \"$SLURM_ARRAY_TASK_ID/2\"",
            sweep_file.display().to_string().replace('\'', r"'\''")
        )),
        "{script}"
    );
    let collect =
        fs::read_to_string(sandbox.path().join("runs/grid/slurm/collect.sh")).expect("collect.sh");
    assert!(collect.trim_end().ends_with("--collect"), "{collect}");
    assert!(
        !sandbox
            .path()
            .join("runs/grid/slurm/submissions.json")
            .exists()
    );
    // The script runs as it is: as array task 2, it runs shard 2/2.
    let task = Command::new(sandbox.path().join("runs/grid/slurm/array.sh"))
        .env("SLURM_ARRAY_TASK_ID", "2")
        .output()
        .expect("run array.sh");
    let stdout = String::from_utf8_lossy(&task.stdout);
    assert!(
        task.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&task.stderr)
    );
    assert!(stdout.contains("shard 2/2: 2 of them"), "{stdout}");
    assert_eq!(
        points_run_in(&stdout),
        [POINTS[1], POINTS[3]].map(String::from).into()
    );

    // Without sbatch: a clear error, nothing recorded.
    let missing = sandbox.ae_with_env(
        &["sweep", SWEEP_FILE, "--slurm"],
        None,
        &[("PATH", empty.as_os_str())],
    );
    missing.assert_error(&["`sbatch` is not on PATH", "--dry-run"]);

    // A refusal: sbatch's own words, nothing recorded.
    let bin = refusing_sbatch(sandbox.path());
    let refused = sandbox.ae_with_env(
        &["sweep", SWEEP_FILE, "--slurm", "--partition", "gpu"],
        None,
        &[("PATH", bin.as_os_str())],
    );
    refused.assert_error(&[
        "sbatch refused the array job",
        "invalid partition specified: gpu",
        "Invalid partition name specified",
    ]);
    assert!(
        !sandbox
            .path()
            .join("runs/grid/slurm/submissions.json")
            .exists()
    );

    // Two submissions of one sweep at once: the second is refused.
    let lock = fs::File::create(sandbox.path().join("runs/grid/slurm/.submit.lock")).expect("lock");
    lock.lock().expect("flock");
    let busy = sandbox.ae(&["sweep", SWEEP_FILE, "--slurm", "--dry-run"], None);
    busy.assert_error(&["another `ae sweep --slurm` is submitting sweep `grid` now"]);
    drop(lock);

    // Options that need --slurm say so.
    let stray = sandbox.ae(&["sweep", SWEEP_FILE, "--partition", "x"], None);
    assert_eq!(stray.code, Some(2), "{}", stray.stderr);
    assert!(stray.stderr.contains("--slurm"), "{}", stray.stderr);
}

#[test]
fn status_says_where_each_local_point_stands() {
    let sandbox = Sandbox::synthetic();
    sandbox.write("sweeps/grid.toml", GRID);
    let before = sandbox.ae(&["sweep", "sweeps/grid.toml", "--status"], None);
    before.assert_ok();
    assert_eq!(
        before.stdout.matches("not started").count(),
        5,
        "{}",
        before.stdout
    );
    assert!(!sandbox.path().join("runs/grid/summary.csv").exists());

    sandbox
        .ae(&["sweep", "sweeps/grid.toml", "--shard", "1/2"], None)
        .assert_ok();
    // One point's outputs deleted, another's failure recorded as a stage
    // that was interrupted (killed while running).
    let runs = sandbox.path().join("runs/grid");
    fs::remove_dir_all(runs.join(POINTS[2]).join("eval")).expect("rm eval");
    let manifest = runs.join(POINTS[0]).join("manifest.json");
    let text = fs::read_to_string(&manifest).expect("manifest");
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("json");
    json["stages"]["train"]["status"] = "running".into();
    fs::write(&manifest, json.to_string()).expect("write manifest");

    let status = sandbox.ae(&["sweep", "sweeps/grid.toml", "--status"], None);
    status.assert_ok();
    let state = |point: &str| -> String {
        let line = status
            .stdout
            .lines()
            .find(|l| l.starts_with(point))
            .unwrap_or_else(|| panic!("{point} in {}", status.stdout));
        line[point.len()..].trim().to_string()
    };
    assert_eq!(state(POINTS[0]), "failed (interrupted in stage `train`)");
    assert_eq!(state(POINTS[1]), "not started");
    assert!(
        state(POINTS[2]).starts_with("stale (stage `eval`:"),
        "{}",
        status.stdout
    );
    assert_eq!(state(POINTS[3]), "not started");
    assert!(
        status
            .stdout
            .contains("0 finished, 0 running, 1 failed, 1 stale, 2 not started"),
        "{}",
        status.stdout
    );
    // A finished point shows in the summary so far; --status writes nothing.
    sandbox
        .ae(&["sweep", "sweeps/grid.toml", "--shard", "2/2"], None)
        .assert_ok();
    let status = sandbox.ae(&["sweep", "sweeps/grid.toml", "--status"], None);
    assert!(
        status
            .stdout
            .contains("2 finished, 0 running, 1 failed, 1 stale, 0 not started"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("| 16           | 1    |"),
        "{}",
        status.stdout
    );
    assert!(!runs.join("summary.csv").exists());

    // A damaged record of submissions is named, with what to do.
    fs::create_dir_all(runs.join("slurm")).expect("mkdir");
    fs::write(runs.join("slurm/submissions.json"), "[{\"array_job\": ").expect("write");
    sandbox
        .ae(&["sweep", "sweeps/grid.toml", "--status"], None)
        .assert_error(&[
            "slurm/submissions.json is not a list of submissions",
            "delete it",
        ]);
}

/// The cluster's daemons' logs (next to `SLURM_CONF`), for a failure message.
fn daemon_logs() -> String {
    let Some(conf) = std::env::var_os("SLURM_CONF") else {
        return "(SLURM_CONF is not set: no daemon logs)".into();
    };
    let dir = Path::new(&conf).with_file_name("log");
    let mut text = String::new();
    for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
        let log = fs::read_to_string(entry.path()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        text.push_str(&format!("==== {}\n", entry.path().display()));
        for line in tail.into_iter().rev() {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// Whether a real cluster answers here, or `None` after announcing the skip.
fn cluster(test: &str) -> Option<()> {
    let answer = match Command::new("sinfo").arg("--noheader").output() {
        Ok(out)
            if out.status.success() && Command::new("sbatch").arg("--version").output().is_ok() =>
        {
            Ok(())
        }
        Ok(out) => Err(format!(
            "`sinfo` failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("no message")
        )),
        Err(e) => Err(format!("SLURM's commands are not on PATH ({e})")),
    };
    let required = std::env::var_os("AE_REQUIRE_SLURM").is_some_and(|v| !v.is_empty());
    match (answer, required) {
        (Ok(()), _) => Some(()),
        (Err(why), true) => panic!(
            "AE_REQUIRE_SLURM is set but no cluster answers: {why}; start one with tests/slurm/cluster.sh"
        ),
        (Err(why), false) => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: no SLURM cluster answers ({why}); `just slurm-up` (as root, with slurm-wlm and munge installed) and SLURM_CONF exported run it"
            );
            None
        }
    }
}

/// The job id after `label` in `ae`'s output (`array job 12: …`).
fn job_id(run: &Run, label: &str) -> String {
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no `{label}` in:\n{}", run.stdout))
        .trim()
        .to_string()
}

/// Waits until SLURM no longer lists `job` as pending or running.
fn wait_for(job: &str, logs: &Path) {
    let deadline = Instant::now() + WAIT;
    loop {
        let out = Command::new("squeue")
            .args(["--noheader", "--array", "--format=%i %T %r"])
            .arg(format!("--jobs={job}"))
            .output()
            .expect("run squeue");
        let listed = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if listed.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let mut task_logs = String::new();
            for entry in fs::read_dir(logs).into_iter().flatten().flatten() {
                task_logs.push_str(&format!(
                    "==== {}\n{}",
                    entry.path().display(),
                    fs::read_to_string(entry.path()).unwrap_or_default()
                ));
            }
            panic!(
                "SLURM job {job} still queued after {} s: {listed}\n{task_logs}\n{}",
                WAIT.as_secs(),
                daemon_logs()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The points each task's log says it ran, by task index.
fn points_run(logs: &Path, array_job: &str, task: usize) -> BTreeSet<String> {
    let log = logs.join(format!("{array_job}_{task}.out"));
    let text = fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", log.display(), daemon_logs()));
    points_run_in(&text)
}

/// The points a sweep's output says it ran (`[1/2] POINT: ran …`).
fn points_run_in(output: &str) -> BTreeSet<String> {
    output
        .lines()
        .filter_map(|l| l.strip_prefix('[')?.split_once("] ")?.1.split_once(": "))
        .map(|(point, _)| point.to_string())
        .collect()
}

#[test]
fn a_sweep_submitted_to_a_real_slurm_cluster_equals_the_local_one_and_resubmits_what_is_missing() {
    if cluster("a_sweep_submitted_to_a_real_slurm_cluster").is_none() {
        return;
    }
    let sandbox = Sandbox::synthetic();
    sandbox.write("sweeps/grid.toml", GRID);
    let sweep = |runs: &str, extra: &[&str]| -> Run {
        let args = [
            &["--runs-dir", runs, "sweep", "sweeps/grid.toml"][..],
            extra,
        ]
        .concat();
        let run = sandbox.ae(&args, None);
        assert_eq!(
            run.code,
            Some(0),
            "ae {}\n{}\n{}\n{}",
            args.join(" "),
            run.stdout,
            run.stderr,
            daemon_logs()
        );
        run
    };
    sweep("local", &[]);
    let local = fs::read_to_string(sandbox.path().join("local/grid/summary.csv")).expect("csv");

    let slurm = ["--slurm", "--points-per-task", "2", "--cpus-per-task", "1"];
    let submitted = sweep("cluster", &slurm);
    assert!(
        submitted
            .stdout
            .contains("4 of 4 points to run: 2 of 2 array tasks of up to 2 points, 1 CPU each"),
        "{}",
        submitted.stdout
    );
    let array = job_id(&submitted, "array job ");
    let collect = job_id(&submitted, "collect job ");
    // While its jobs are queued, the sweep is not submitted a second time.
    let twice = sandbox.ae(
        &[
            &["--runs-dir", "cluster", "sweep", "sweeps/grid.toml"][..],
            &slurm,
        ]
        .concat(),
        None,
    );
    twice.assert_error(&[
        "jobs of sweep `grid` are still queued or running",
        &format!("scancel {array} {collect}"),
    ]);
    let grid = sandbox.path().join("cluster/grid");
    let logs = grid.join("slurm/logs");
    wait_for(&collect, &logs);

    let summary = fs::read_to_string(grid.join("summary.csv"))
        .unwrap_or_else(|e| panic!("summary.csv: {e}\n{}", daemon_logs()));
    assert_eq!(results(&summary), results(&local));
    // Task I ran the points of shard I/2, and only those.
    let given = |positions: [usize; 2]| -> BTreeSet<String> {
        positions.iter().map(|&p| POINTS[p].to_string()).collect()
    };
    assert_eq!(points_run(&logs, &array, 1), given([0, 2]));
    assert_eq!(points_run(&logs, &array, 2), given([1, 3]));
    let collected = fs::read_to_string(logs.join(format!("collect_{collect}.out"))).expect("log");
    assert!(collected.contains("summary: "), "{collected}");

    let status = sweep("cluster", &["--status"]);
    for (i, point) in POINTS.iter().enumerate() {
        let task = format!("{array}_{}", i % 2 + 1);
        assert!(
            status
                .stdout
                .lines()
                .any(|l| l.starts_with(point) && l.contains(" finished ") && l.contains(&task)),
            "{point} {task}:\n{}",
            status.stdout
        );
    }

    // One point's outputs deleted: only its task is submitted again, and in
    // it only that point runs; the others' manifests are untouched.
    let manifests = |points: &[usize]| -> Vec<Vec<u8>> {
        points
            .iter()
            .map(|&p| fs::read(grid.join(POINTS[p]).join("manifest.json")).expect("manifest"))
            .collect()
    };
    let untouched = manifests(&[0, 2, 3]);
    fs::remove_dir_all(grid.join(POINTS[1]).join("eval")).expect("rm eval");
    let again = sweep("cluster", &slurm);
    assert!(
        again
            .stdout
            .contains("1 of 4 points to run: 1 of 2 array tasks")
            && again.stdout.contains(" --array=2 "),
        "{}",
        again.stdout
    );
    let array2 = job_id(&again, "array job ");
    let collect2 = job_id(&again, "collect job ");
    wait_for(&collect2, &logs);
    let log = fs::read_to_string(logs.join(format!("{array2}_2.out"))).expect("log");
    assert!(
        log.lines().any(|l| l.contains(POINTS[1])
            && l.contains("eval")
            && !l.contains(": fresh data, train, infer, eval, report")),
        "{log}"
    );
    assert!(
        log.lines().any(
            |l| l.contains(POINTS[3]) && l.contains(": fresh data, train, infer, eval, report")
        ),
        "{log}"
    );
    assert!(!logs.join(format!("{array2}_1.out")).exists());
    assert_eq!(manifests(&[0, 2, 3]), untouched);
    let summary = fs::read_to_string(grid.join("summary.csv")).expect("csv");
    assert_eq!(results(&summary), results(&local));

    // Everything finished: nothing more to submit.
    let done = sweep("cluster", &slurm);
    assert!(done.stdout.contains("nothing to submit"), "{}", done.stdout);
}
