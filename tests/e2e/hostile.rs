//! What a hostile or broken file system does to `ae`: something other than
//! a file where a file should be, a cache that cannot be used, a manifest
//! from a newer `ae`, a full disk. `ae` says what it found and stops, or, for the cache,
//! goes on without it; it never hangs, reads forever or panics.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{Run, SYNTH, Sandbox, mkfifo};

/// How many stages a run computed (its lines whose verdict is `ran`).
fn computed(run: &Run) -> usize {
    run.stdout
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("ran"))
        .count()
}

/// Regression: a named pipe in place of a manifest, log, output or config
/// hung `ae pipeline` and `ae status`; `ae pipeline /dev/zero` read until
/// memory ran out.
#[cfg(unix)]
#[test]
fn something_other_than_a_file_is_named_and_never_waited_on() {
    let sandbox = Sandbox::synthetic();
    sandbox
        .ae_within(&["pipeline", "/dev/zero"])
        .assert_error(&[
            "/dev/zero cannot be a config file",
            "is not a regular file but a device",
        ]);
    mkfifo(&sandbox.path().join("configs/pipe.toml"));
    sandbox
        .ae_within(&["pipeline", "configs/pipe.toml"])
        .assert_error(&["configs/pipe.toml cannot be a config file", "named pipe"]);

    sandbox.ae_within(&["pipeline", SYNTH]).assert_ok();
    let run = sandbox.path().join("runs/synth");
    // An output replaced by a pipe.
    mkfifo(&run.join("train/history.csv"));
    for command in ["status", "pipeline"] {
        sandbox
            .ae_within(&[command, SYNTH])
            .assert_error(&["train/history.csv is not a regular file but a named pipe"]);
    }
    fs::remove_file(run.join("train/history.csv")).expect("remove the pipe");
    // The manifest, then the log.
    mkfifo(&run.join("manifest.json"));
    for command in ["status", "pipeline"] {
        sandbox
            .ae_within(&[command, SYNTH])
            .assert_error(&["manifest.json is not a regular file but a named pipe"]);
    }
    fs::remove_file(run.join("manifest.json")).expect("remove the pipe");
    mkfifo(&run.join("run.log"));
    sandbox.ae_within(&["pipeline", SYNTH]).assert_error(&[
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
    let run = sandbox.ae_within(&["pipeline", SYNTH]);
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
    sandbox
        .ae_within(&["pipeline", SYNTH, "--set", "name=first"])
        .assert_ok();
    for entry in fs::read_dir(cache.join("stages")).expect("list") {
        let path = entry.expect("entry").path();
        fs::remove_file(&path).expect("remove");
        fs::create_dir(&path).expect("a directory in its place");
    }
    let again = sandbox.ae_within(&["pipeline", SYNTH, "--set", "name=second"]);
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
        sandbox.ae_within(&[command, SYNTH]).assert_error(&[
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
    /// caller skips.
    fn mount(dir: &Path, megabytes: u32, test: &str) -> Option<Self> {
        fs::create_dir_all(dir).expect("mkdir");
        let mut mount = Command::new("mount");
        mount
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir);
        succeeds_as_root(mount, test, "mounting a tmpfs needs root")
            .then(|| Self(dir.to_path_buf()))
    }
}

/// Runs a command that only root may run; `false` after saying that the
/// calling test skips, and why (CI runs as root).
fn succeeds_as_root(mut command: Command, test: &str, why: &str) -> bool {
    let succeeded = command
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !succeeded {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why} (CI runs as root)");
    }
    succeeded
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
    // 3 MB: less than the training split's 4.7 MB (6,000 images of bytes).
    let Some(_tmpfs) = Tmpfs::mount(&full, 3, "a_full_disk_leaves_no_half_written_file") else {
        return;
    };
    let run = sandbox.ae_within(&["--runs-dir", "full", "pipeline", SYNTH]);
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

    // The same disk with room: the next run finishes every stage.
    assert!(
        Command::new("mount")
            .args(["-o", "remount,size=512m"])
            .arg(&full)
            .status()
            .is_ok_and(|s| s.success()),
        "remount the tmpfs larger"
    );
    let again = sandbox.ae_within(&["--runs-dir", "full", "pipeline", SYNTH]);
    again.assert_ok();
    assert_eq!(computed(&again), 5, "{}", again.stdout);
}

/// Marks a path immutable (`chattr +i`) for a test and clears the mark
/// however the test ends, so the sandbox can be removed.
struct Immutable(std::path::PathBuf);

impl Immutable {
    /// `None` after saying why the caller skips.
    fn mark(path: &Path, test: &str) -> Option<Self> {
        let mut chattr = Command::new("chattr");
        chattr.arg("+i").arg(path);
        let why = "chattr +i needs root and a file system with attributes";
        succeeds_as_root(chattr, test, why).then(|| Self(path.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// Regression: an immutable `locks/` folder in the cache made every run
/// fail. A cache that refuses writes is warned of once; the run restores
/// what the cache still holds and computes the rest.
#[cfg(unix)]
#[test]
fn an_immutable_cache_is_warned_of_once_and_never_fails_a_run() {
    let test = "an_immutable_cache_is_warned_of_once_and_never_fails_a_run";
    let sandbox = Sandbox::synthetic();
    sandbox
        .ae_within(&["pipeline", SYNTH, "--set", "name=first"])
        .assert_ok();
    let cache = sandbox.path().join("runs/.cache");
    let Some(_locks) = Immutable::mark(&cache.join("locks"), test) else {
        return;
    };
    let Some(_stages) = Immutable::mark(&cache.join("stages"), test) else {
        return;
    };
    // Same settings, another run: what the cache holds is still restored;
    // the report (its page names the run) is computed and cannot be stored.
    let second = sandbox.ae_within(&["pipeline", SYNTH, "--set", "name=second"]);
    second.assert_ok();
    assert_eq!(computed(&second), 1, "{}", second.stdout);
    assert!(second.stdout.contains("report  ran"), "{}", second.stdout);
    assert_eq!(
        second.stderr.matches("cannot use the cache").count(),
        1,
        "{}",
        second.stderr
    );
    // A new seed (the data stage does not draw on it): the data is restored,
    // the rest computed and not stored; one warning, and the run ends.
    let third = sandbox.ae_within(&["pipeline", SYNTH, "--set", "name=third", "--set", "seed=9"]);
    third.assert_ok();
    assert_eq!(computed(&third), 4, "{}", third.stdout);
    assert!(
        third.stdout.contains("data    restored"),
        "{}",
        third.stdout
    );
    assert_eq!(
        third.stderr.matches("cannot use the cache").count(),
        1,
        "{}",
        third.stderr
    );
}
