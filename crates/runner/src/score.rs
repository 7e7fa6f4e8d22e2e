//! `ae score` and `ae export`: a trained detector on new images, and as
//! ONNX, through `ae-detect`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ae_detect::{
    DetectError, Detector, ExplainOptions, Explainer, Output, Planned, Progress, ScoreOptions,
    Table, check_outputs, score_inputs,
};
use anyhow::Context;

use crate::cli::{Cli, ScoreArgs};
use crate::config::ExperimentConfig;

/// The exit status when `--fail-on-anomaly` is given and an image is flagged.
pub(crate) const EXIT_ANOMALY: u8 = 3;
/// The exit status when some images could not be read (the rest were scored).
pub(crate) const EXIT_UNREADABLE: u8 = 1;

/// Runs `ae score`: the exit status says what was found.
pub(crate) fn command(cli: &Cli, args: &ScoreArgs) -> anyhow::Result<ExitCode> {
    crate::logging::init_terminal(cli.verbose, cli.quiet)?;
    let output = Output::choose(args.out.as_deref(), std::io::stdout().is_terminal())
        .map_err(anyhow::Error::msg)?;
    let path = detector_file(cli, &args.detector)?;
    let raw = args
        .explain
        .as_ref()
        .filter(|_| args.explain_raw)
        .map(|dir| dir.join(ae_detect::ERROR_MAPS));
    let planned: Vec<Planned<'_>> = [
        args.out.as_deref().map(|path| Planned {
            flag: "--out",
            path,
            folder: false,
        }),
        args.explain.as_deref().map(|path| Planned {
            flag: "--explain",
            path,
            folder: true,
        }),
        raw.as_deref().map(|path| Planned {
            flag: "--explain-raw",
            path,
            folder: false,
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    check_outputs(&path, &args.inputs, &planned)?;
    let detector = Detector::open(&path)
        .with_context(|| format!("cannot use the detector {}", path.display()))?;
    let info = detector.info();
    tracing::debug!("detector {}: {info:?}", path.display());
    let options = ScoreOptions {
        scan: ae_data::scan::ScanOptions {
            format: args.format,
            resize: args.resize,
            batch: ae_infer::BATCH,
        },
        threshold: args.threshold,
        strict: args.strict,
    };
    // A table on the terminal shows progress itself.
    let progress = if std::io::stderr().is_terminal() && !cli.quiet && output != Output::Terminal {
        Progress::on_terminal()
    } else {
        Progress::hidden()
    };
    let mut table = Table::new(output.clone(), info.score);
    let mut explainer = match &args.explain {
        Some(dir) => Some(Explainer::new(
            ExplainOptions {
                dir: dir.clone(),
                top: args.top.map(|k| k as usize),
                raw: args.explain_raw,
            },
            info.score,
            options.threshold(&detector)?,
        )?),
        None => None,
    };
    let scored = score_inputs(
        &detector,
        &args.inputs,
        &options,
        &progress,
        |batch| {
            table.push(&batch)?;
            match &mut explainer {
                Some(explainer) => explainer.push(&batch),
                None => Ok(()),
            }
        },
        |bad| eprintln!("warning: skipped {bad}"),
    )
    .and_then(|tally| table.finish().map(|()| tally));
    let tally = match (scored, explainer) {
        (Ok(tally), Some(explainer)) => {
            let dir = args.explain.as_deref().unwrap_or(Path::new("."));
            explainer.finish().map(|n| {
                tracing::info!("drew {n} error maps in {}", dir.display());
                tally
            })
        }
        (scored, _) => scored,
    };
    let tally = match tally {
        Ok(tally) => tally,
        // `ae score ... | head`: whoever reads has all it wants.
        Err(DetectError::Stdout(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e.into()),
    };
    if let Output::Parquet(file) | Output::Csv(file) = &output {
        tracing::info!("wrote {} rows to {}", tally.images, file.display());
    }
    let share = if tally.images == 0 {
        0.0
    } else {
        100.0 * tally.anomalies as f64 / tally.images as f64
    };
    let threshold = match args.threshold {
        Some(value) => format!("{} from --threshold", ae_store::readable(value, 6)),
        None => ae_eval::metrics::threshold_text(
            info.threshold,
            info.score,
            info.rule,
            info.parameter,
            info.source,
        ),
    };
    let mut summary = format!(
        "Found {} anomalies! ({} of {} images, {share:.2} %; threshold {threshold})",
        tally.anomalies, tally.anomalies, tally.images,
    );
    if tally.unreadable > 0 {
        summary.push_str(&format!(
            "; {} image files could not be read (named above)",
            tally.unreadable
        ));
    }
    eprintln!("{summary}");
    Ok(if tally.unreadable > 0 {
        ExitCode::from(EXIT_UNREADABLE)
    } else if args.fail_on_anomaly && tally.anomalies > 0 {
        ExitCode::from(EXIT_ANOMALY)
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs `ae export DETECTOR --onnx FILE`.
pub(crate) fn export(cli: &Cli, detector: &Path, onnx: &Path) -> anyhow::Result<()> {
    crate::logging::init_terminal(cli.verbose, cli.quiet)?;
    let path = detector_file(cli, detector)?;
    let detector = Detector::open(&path)
        .with_context(|| format!("cannot use the detector {}", path.display()))?;
    let planned = Planned {
        flag: "--onnx",
        path: onnx,
        folder: false,
    };
    check_outputs(&path, &[], &[planned])?;
    ae_detect::export_onnx(&detector, onnx)?;
    crate::output::line(format_args!(
        "wrote {} (ONNX opset {}; threshold {} inside)",
        onnx.display(),
        ae_detect::OPSET,
        detector.info().threshold
    ));
    Ok(())
}

/// The detector file DETECTOR names: a detector file, a run directory, or
/// an experiment config (the detector of its run under `--runs-dir`).
fn detector_file(cli: &Cli, detector: &Path) -> anyhow::Result<PathBuf> {
    let is_config = detector.is_file()
        && detector
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    if !is_config {
        if !detector.exists() {
            anyhow::bail!(
                "DETECTOR {}: no such file or folder; give a detector file (runs/NAME/eval/detector.safetensors), a run directory or an experiment config",
                detector.display()
            );
        }
        return Ok(ae_detect::locate(detector)?);
    }
    let cfg = ExperimentConfig::load(detector, &[])?;
    let run = cli.runs_dir.join(&cfg.name);
    ae_detect::locate(&run).with_context(|| {
        format!(
            "the experiment {} runs in {}",
            detector.display(),
            run.display()
        )
    })
}
