//! The command line's shape: help, stage names, exit codes.

use crate::support::Sandbox;

#[test]
fn every_command_has_help() {
    let sandbox = Sandbox::new();
    let top = sandbox.ae(&["--help"], None);
    top.assert_ok();
    for word in ["pipeline", "stage", "--runs-dir", "--verbose"] {
        assert!(
            top.stdout.contains(word),
            "{word} missing from:\n{}",
            top.stdout
        );
    }
    for command in [&["pipeline", "--help"][..], &["stage", "--help"]] {
        let run = sandbox.ae(command, None);
        run.assert_ok();
        assert!(run.stdout.contains("--set <KEY=VALUE>"), "{}", run.stdout);
    }
    let stage = sandbox.ae(&["stage", "--help"], None);
    assert!(stage.stdout.contains("data"), "{}", stage.stdout);
}

#[test]
fn an_unknown_stage_lists_the_known_ones() {
    let run = Sandbox::new().ae(&["stage", "evaluate", "configs/default.toml"], None);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("invalid value 'evaluate'"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("possible values: data"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_malformed_set_argument_is_a_usage_error() {
    let run = Sandbox::new().ae(
        &["pipeline", "configs/default.toml", "--set", "epochs"],
        None,
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("expected KEY=VALUE"), "{}", run.stderr);
}

/// Regression: with stdout closed early (`ae pipeline ... | head -1`),
/// `println!` panicked, between writing a stage's outputs and recording them.
#[test]
fn a_closed_stdout_is_not_an_error() {
    let sandbox = Sandbox::synthetic();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ae"))
        .args(["stage", "data", crate::support::SYNTH])
        .current_dir(sandbox.path())
        .env_remove("AE_DATA_DIR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ae");
    drop(child.stdout.take()); // the reader goes away before ae prints anything
    let output = child.wait_with_output().expect("ae runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let manifest =
        std::fs::read_to_string(sandbox.path().join("runs/synth/manifest.json")).expect("manifest");
    assert!(manifest.contains("\"data\""), "{manifest}");
}

/// `ae bench` names the CPU and the kernel path it runs, times the engine,
/// and with `--kernels` runs a narrower path (the baseline runs on every
/// CPU) to the same final val_loss; an unknown path is refused by name.
#[test]
fn bench_names_the_cpu_and_runs_the_kernel_path_asked_for() {
    let sandbox = Sandbox::synthetic();
    let bench = |extra: &[&str]| {
        let mut args = vec![
            "bench",
            crate::support::SYNTH,
            "--engine",
            "fused",
            "--epochs",
            "2",
        ];
        args.extend_from_slice(extra);
        let run = sandbox.ae_within(&args);
        run.assert_ok();
        run.stdout
    };
    let val_loss = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("fused"))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_else(|| panic!("no fused row in:\n{out}"))
            .to_string()
    };
    let widest = bench(&["--floor"]);
    assert!(widest.contains("CPU: "), "{widest}");
    assert!(widest.contains("fused engine kernels: "), "{widest}");
    assert!(widest.contains("GEMMs alone: "), "{widest}");
    let baseline = bench(&["--kernels", "baseline"]);
    assert!(
        baseline.contains("fused engine kernels: baseline"),
        "{baseline}"
    );
    // The paths round differently (FMA or not) but train the same model.
    let (a, b): (f64, f64) = (
        val_loss(&widest).parse().expect("val_loss"),
        val_loss(&baseline).parse().expect("val_loss"),
    );
    assert!((a - b).abs() < 1e-5, "{a} vs {b}");

    let run = sandbox.ae_within(&["bench", crate::support::SYNTH, "--kernels", "sse9"]);
    run.assert_error(&["--kernels sse9", "unknown kernel path"]);
}
