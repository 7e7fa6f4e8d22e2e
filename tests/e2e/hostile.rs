//! What a hostile or broken file system does to `ae`: something other than
//! a file where a file should be, a cache that cannot be used, a manifest
//! from a newer `ae`. `ae` says what it found and stops, or, for the cache,
//! goes on without it; it never hangs, reads forever or panics.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Run, SYNTH, Sandbox};

/// Runs `ae args...` in `sandbox`, failing the test if it does not end
/// within 60 s (the old behaviour here was to hang).
fn ae_within(sandbox: &Sandbox, args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ae"))
        .args(args)
        .current_dir(sandbox.path())
        .env_remove("AE_DATA_DIR")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ae");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            child.kill().expect("kill");
            panic!("`ae {}` hung", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("output");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// How many stages a run computed (its lines whose verdict is `ran`).
fn computed(run: &Run) -> usize {
    run.stdout
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("ran"))
        .count()
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let _ = fs::remove_file(path);
    let made = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// Regression: a named pipe in place of a manifest, log, output or config
/// hung `ae pipeline` and `ae status`; `ae pipeline /dev/zero` read until
/// memory ran out.
#[cfg(unix)]
#[test]
fn something_other_than_a_file_is_named_and_never_waited_on() {
    let sandbox = Sandbox::synthetic();
    ae_within(&sandbox, &["pipeline", "/dev/zero"]).assert_error(&[
        "/dev/zero cannot be a config file",
        "is not a regular file but a device",
    ]);
    mkfifo(&sandbox.path().join("configs/pipe.toml"));
    ae_within(&sandbox, &["pipeline", "configs/pipe.toml"])
        .assert_error(&["configs/pipe.toml cannot be a config file", "named pipe"]);

    ae_within(&sandbox, &["pipeline", SYNTH]).assert_ok();
    let run = sandbox.path().join("runs/synth");
    // An output replaced by a pipe.
    mkfifo(&run.join("train/history.csv"));
    for command in ["status", "pipeline"] {
        ae_within(&sandbox, &[command, SYNTH])
            .assert_error(&["train/history.csv is not a regular file but a named pipe"]);
    }
    fs::remove_file(run.join("train/history.csv")).expect("remove the pipe");
    // The manifest, then the log.
    mkfifo(&run.join("manifest.json"));
    for command in ["status", "pipeline"] {
        ae_within(&sandbox, &[command, SYNTH])
            .assert_error(&["manifest.json is not a regular file but a named pipe"]);
    }
    fs::remove_file(run.join("manifest.json")).expect("remove the pipe");
    mkfifo(&run.join("run.log"));
    ae_within(&sandbox, &["pipeline", SYNTH]).assert_error(&[
        "cannot use the run log",
        "run.log is not a regular file but a named pipe",
    ]);
}

/// Regression: a read-only or damaged cache (a lock folder that cannot be
/// used, a record that is a directory) made every run fail, even those that
/// only needed to compute.
#[test]
fn a_cache_that_cannot_be_used_is_warned_of_once_and_left_aside() {
    let sandbox = Sandbox::synthetic();
    let cache = sandbox.path().join("runs/.cache");
    fs::create_dir_all(&cache).expect("mkdir");
    fs::write(cache.join("locks"), b"not a folder").expect("write");
    let run = ae_within(&sandbox, &["pipeline", SYNTH]);
    run.assert_ok();
    assert_eq!(computed(&run), 5, "{}", run.stdout);
    assert_eq!(
        run.stderr.matches("cannot use the cache").count(),
        1,
        "warned once: {}",
        run.stderr
    );

    // A cache whose records are directories: every stage is computed.
    fs::remove_file(cache.join("locks")).expect("remove");
    ae_within(&sandbox, &["pipeline", SYNTH, "--set", "name=first"]).assert_ok();
    for entry in fs::read_dir(cache.join("stages")).expect("list") {
        let path = entry.expect("entry").path();
        fs::remove_file(&path).expect("remove");
        fs::create_dir(&path).expect("a directory in its place");
    }
    let again = ae_within(&sandbox, &["pipeline", SYNTH, "--set", "name=second"]);
    again.assert_ok();
    assert_eq!(computed(&again), 5, "{}", again.stdout);
    assert_eq!(
        again.stderr.matches("cannot use the cache").count(),
        1,
        "{}",
        again.stderr
    );
}

/// Regression: a manifest from a newer `ae` was taken for `never ran` and
/// overwritten.
#[test]
fn a_manifest_from_a_newer_ae_is_refused_and_kept() {
    let sandbox = Sandbox::synthetic();
    let run = sandbox.path().join("runs/synth");
    fs::create_dir_all(&run).expect("mkdir");
    let newer = r#"{"schema": 99, "stages": {"data": {"new": true}}}"#;
    fs::write(run.join("manifest.json"), newer).expect("write");
    for command in ["status", "pipeline"] {
        ae_within(&sandbox, &[command, SYNTH]).assert_error(&[
            "was written by a newer ae (manifest schema 99; this ae reads up to 3)",
        ]);
    }
    assert_eq!(
        fs::read_to_string(run.join("manifest.json")).expect("manifest"),
        newer
    );
    assert!(!run.join("data").exists(), "nothing ran");
}

/// A small tmpfs mounted for a test, unmounted however the test ends.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `megabytes` at `dir`; `None` after saying why the
    /// caller skips (mounting needs root; CI runs as root).
    fn mount(dir: &Path, megabytes: u32, test: &str) -> Option<Self> {
        fs::create_dir_all(dir).expect("mkdir");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: mounting a tmpfs needs root (CI runs as root)"
            );
            return None;
        }
        Some(Self(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A full disk gives a clean error naming the file, leaves no temporary
/// file, and records the stage as failed; the next run on a disk with room
/// finishes.
#[cfg(unix)]
#[test]
fn a_full_disk_leaves_no_half_written_file() {
    let sandbox = Sandbox::synthetic();
    let full = sandbox.path().join("full");
    let Some(_tmpfs) = Tmpfs::mount(&full, 12, "a_full_disk_leaves_no_half_written_file") else {
        return;
    };
    let run = ae_within(&sandbox, &["--runs-dir", "full", "pipeline", SYNTH]);
    run.assert_error(&[
        "stage `data` failed",
        "cannot write",
        "data/train.safetensors",
    ]);
    assert!(
        run.stderr.contains("No space left on device"),
        "{}",
        run.stderr
    );
    let leftovers: Vec<String> = sandbox
        .files_under("full")
        .into_iter()
        .filter(|f| f.contains(".ae-tmp-") || f.contains("safetensors"))
        .collect();
    assert_eq!(leftovers, Vec::<String>::new());
    let manifest = fs::read_to_string(full.join("synth/manifest.json")).expect("manifest");
    assert!(manifest.contains("\"status\": \"failed\""), "{manifest}");
    assert!(manifest.contains("No space left on device"), "{manifest}");
}
