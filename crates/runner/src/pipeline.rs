//! The stage list and how stages run: one span each, timings, and the
//! manifest record written after every stage, success or failure.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use ae_store::{FileRecord, Manifest, RunDir, StageRecord, StageStatus, files};
use anyhow::Context;

use crate::config::{ExperimentConfig, Override};
use crate::output;

/// A pipeline stage. The name is the same word everywhere: CLI, manifest,
/// run-directory folder and tracing span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    /// Find or download the dataset, verify it, write normalised splits.
    Data,
    /// Fit the autoencoder; write the model and the loss history.
    Train,
    /// Encode and decode the test split with the trained model.
    Infer,
    /// Score each test image by its reconstruction MSE; flag anomalies.
    Eval,
    /// Draw the figures and write the report page.
    Report,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 5] = [
        Stage::Data,
        Stage::Train,
        Stage::Infer,
        Stage::Eval,
        Stage::Report,
    ];

    /// The stage's name.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Data => "data",
            Stage::Train => "train",
            Stage::Infer => "infer",
            Stage::Eval => "eval",
            Stage::Report => "report",
        }
    }

    /// The tracing span its events are logged in, named like the stage.
    fn span(self) -> tracing::Span {
        match self {
            Stage::Data => tracing::info_span!("data"),
            Stage::Train => tracing::info_span!("train"),
            Stage::Infer => tracing::info_span!("infer"),
            Stage::Eval => tracing::info_span!("eval"),
            Stage::Report => tracing::info_span!("report"),
        }
    }

    /// The run-directory files it reads under `cfg` (the data stage reads
    /// the dataset files under the data root instead).
    fn inputs(self, cfg: &ExperimentConfig) -> Vec<String> {
        let names: Vec<&str> = match self {
            Stage::Data => vec![],
            Stage::Train => ae_train::INPUTS.to_vec(),
            Stage::Infer => ae_infer::inputs(threshold_from_train(cfg)),
            Stage::Eval => ae_eval::inputs(&cfg.eval),
            Stage::Report => ae_report::INPUTS.to_vec(),
        };
        names.into_iter().map(String::from).collect()
    }

    /// The run-directory files it writes under `cfg`.
    fn outputs(self, cfg: &ExperimentConfig) -> Vec<String> {
        let names: Vec<&str> = match self {
            Stage::Data => vec![files::TRAIN_SPLIT, files::TEST_SPLIT],
            Stage::Train => vec![files::MODEL, files::HISTORY],
            Stage::Infer => ae_infer::outputs(threshold_from_train(cfg)),
            Stage::Eval => vec![files::SCORES, files::METRICS],
            Stage::Report => return ae_report::outputs(&cfg.report),
        };
        names.into_iter().map(String::from).collect()
    }

    /// The stage that writes `file` under `cfg`.
    fn producer_of(file: &str, cfg: &ExperimentConfig) -> Option<Stage> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.outputs(cfg).iter().any(|f| f == file))
    }
}

/// Whether the anomaly threshold comes from the training split's scores.
fn threshold_from_train(cfg: &ExperimentConfig) -> bool {
    cfg.eval.source == ae_eval::ThresholdSource::Train
}

/// A loaded experiment and where its artifacts go.
#[derive(Debug)]
pub struct Experiment {
    /// The resolved, validated config.
    pub cfg: ExperimentConfig,
    /// The file it came from.
    pub config_path: PathBuf,
    /// The `--set` arguments applied to it.
    pub overrides: Vec<Override>,
    /// `runs/<name>/`.
    pub run: RunDir,
    /// Where dataset files are looked for: `AE_DATA_DIR`, else `data.dir`.
    pub data_root: PathBuf,
}

impl Experiment {
    /// Loads and validates the config and creates the run directory.
    pub fn open(
        config_path: &Path,
        overrides: &[Override],
        runs_dir: &Path,
    ) -> anyhow::Result<Self> {
        let cfg = ExperimentConfig::load(config_path, overrides)?;
        let run = RunDir::new(runs_dir.join(&cfg.name));
        ae_store::create_dir_all(run.root()).with_context(|| {
            format!(
                "cannot create the run directory; choose another folder with --runs-dir or AE_RUNS_DIR (now {})",
                runs_dir.display()
            )
        })?;
        let data_root = match std::env::var_os("AE_DATA_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => cfg.data.dir.clone(),
        };
        Ok(Self {
            cfg,
            config_path: config_path.to_path_buf(),
            overrides: overrides.to_vec(),
            run,
            data_root,
        })
    }

    /// Writes the resolved config, defaults filled in, to `config.toml`.
    pub fn write_resolved_config(&self) -> anyhow::Result<()> {
        let mut header = format!(
            "# Resolved by ae {} from {}",
            env!("CARGO_PKG_VERSION"),
            self.config_path.display()
        );
        for o in &self.overrides {
            header.push_str(&format!(" --set {}", o.argument));
        }
        header.push_str(
            ".\n# Every default is filled in, so this file reproduces the run on its own.\n\n",
        );
        let text = header + &self.cfg.to_toml();
        ae_store::write_atomic(&self.run.path(files::CONFIG), |out| {
            out.write_all(text.as_bytes())
        })?;
        Ok(())
    }
}

/// Runs `stages` in order, recording each in the manifest as it finishes.
/// Stops at the first failure, which is recorded too.
pub fn run_stages(exp: &Experiment, stages: &[Stage]) -> anyhow::Result<()> {
    exp.write_resolved_config()?;
    let manifest_path = exp.run.path(files::MANIFEST);
    let mut manifest = Manifest::load(&manifest_path)?;
    for &stage in stages {
        let _span = stage.span().entered();
        // A stage whose inputs are missing has not failed: it cannot start.
        check_inputs(stage, exp)?;
        let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let clock = Instant::now();
        tracing::info!("started");
        let result = execute(stage, exp);
        let seconds = clock.elapsed().as_secs_f64();
        let record = match &result {
            Ok((inputs, outputs)) => StageRecord {
                status: StageStatus::Ok,
                started_at,
                seconds,
                inputs: inputs.clone(),
                outputs: outputs.clone(),
                error: None,
            },
            Err(err) => StageRecord {
                status: StageStatus::Failed,
                started_at,
                seconds,
                inputs: Vec::new(),
                outputs: Vec::new(),
                error: Some(format!("{err:#}")),
            },
        };
        manifest.stages.insert(stage.name().to_string(), record);
        manifest.save(&manifest_path)?;
        result.with_context(|| format!("stage `{}` failed", stage.name()))?;
        tracing::info!("finished in {seconds:.2} s");
    }
    Ok(())
}

type StageFiles = (Vec<FileRecord>, Vec<FileRecord>);

/// Runs one stage and hashes what it read and wrote.
fn execute(stage: Stage, exp: &Experiment) -> anyhow::Result<StageFiles> {
    let mut inputs = hash_inputs(stage, exp)?;
    let cfg = &exp.cfg;
    match stage {
        Stage::Data => {
            tracing::info!(
                "dataset {} from {}",
                cfg.data.dataset,
                exp.data_root.display()
            );
            let artifacts = ae_data::run(&cfg.data, &exp.data_root, &exp.run)?;
            inputs = artifacts
                .sources
                .iter()
                .map(|path| FileRecord::of(path, path.display().to_string()))
                .collect::<Result<_, _>>()?;
        }
        Stage::Train => {
            let artifacts = ae_train::run(&cfg.train, &cfg.model, cfg.seed, &exp.run)?;
            if let Some(last) = artifacts.history.last() {
                tracing::info!(
                    "final loss {:.6}, val_loss {:.6} after {} epochs",
                    last.loss,
                    last.val_loss,
                    last.epoch
                );
            }
        }
        Stage::Infer => {
            ae_infer::run(&cfg.model, &exp.run, threshold_from_train(cfg))?;
        }
        Stage::Eval => {
            let artifacts = ae_eval::run(&cfg.eval, &exp.run)?;
            let line = artifacts.metrics.found_line();
            // On stdout as the result; in run.log too, but not twice on a terminal.
            tracing::info!(target: crate::logging::LOG_FILE_ONLY, "{line}");
            output::line(&line);
        }
        Stage::Report => {
            let artifacts = ae_report::run(&cfg.report, &exp.run, &cfg.name)?;
            tracing::info!(target: crate::logging::LOG_FILE_ONLY, "report: {}", artifacts.index.display());
            output::line(format_args!("report: {}", artifacts.index.display()));
        }
    }
    let outputs = stage
        .outputs(cfg)
        .iter()
        .map(|name| FileRecord::of(&exp.run.path(name), name.clone()))
        .collect::<Result<_, _>>()?;
    Ok((inputs, outputs))
}

/// Fails with what to run first when one of a stage's inputs is missing.
fn check_inputs(stage: Stage, exp: &Experiment) -> anyhow::Result<()> {
    for name in stage.inputs(&exp.cfg) {
        let path = exp.run.path(&name);
        if !path.is_file() {
            let producer =
                Stage::producer_of(&name, &exp.cfg).map_or("the stage that writes it", Stage::name);
            anyhow::bail!(
                "stage `{}` needs {}, which does not exist: run `ae stage {producer} {}` first, or `ae pipeline {}` for every stage",
                stage.name(),
                path.display(),
                exp.config_path.display(),
                exp.config_path.display()
            );
        }
    }
    Ok(())
}

/// Hashes a stage's run-directory inputs before it runs.
fn hash_inputs(stage: Stage, exp: &Experiment) -> anyhow::Result<Vec<FileRecord>> {
    stage
        .inputs(&exp.cfg)
        .into_iter()
        .map(|name| Ok(FileRecord::of(&exp.run.path(&name), name)?))
        .collect()
}
