//! The stage list and how stages run: one span each, timings, and the
//! manifest record written after every stage, success or failure.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use ae_store::{Cache, FileRecord, Manifest, RunDir, StageRecord, StageStatus, files};
use anyhow::Context;

use serde_json::json;

use crate::config::{ExperimentConfig, Override};
use crate::output;
use crate::staleness::{self, Decision, PIPELINE_VERSION};

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
    pub fn inputs(self, cfg: &ExperimentConfig) -> Vec<String> {
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
    pub fn outputs(self, cfg: &ExperimentConfig) -> Vec<String> {
        let names: Vec<&str> = match self {
            Stage::Data => vec![files::TRAIN_SPLIT, files::TEST_SPLIT],
            Stage::Train => vec![files::MODEL, files::HISTORY],
            Stage::Infer => ae_infer::outputs(threshold_from_train(cfg)),
            Stage::Eval => vec![files::SCORES, files::METRICS],
            Stage::Report => return ae_report::outputs(&cfg.report, cfg.data.has_ground_truth()),
        };
        names.into_iter().map(String::from).collect()
    }

    /// The part of the config the stage depends on, as canonical JSON with
    /// dotted-key structure (`{"train": {"epochs": 50}, "seed": 0}`).
    pub fn section(self, cfg: &ExperimentConfig) -> serde_json::Value {
        let value = |v: &dyn erased::Serialize| v.to_json();
        match self {
            // Where the files are found, and how they are downloaded, does not
            // change their (checksummed) content.
            Stage::Data => {
                let mut data = json!({
                    "dataset": value(&cfg.data.dataset),
                    "train_limit": cfg.data.train_limit,
                    "test_limit": cfg.data.test_limit,
                });
                // Only when set, so runs from before these keys stay fresh.
                if let Some(labels) = &cfg.data.normal_labels {
                    data["normal_labels"] = json!(labels);
                }
                if let Some(outliers) = &cfg.data.outliers {
                    data["outliers"] = value(outliers);
                }
                json!({ "data": data })
            }
            Stage::Train => {
                json!({"model": value(&cfg.model), "train": value(&cfg.train), "seed": cfg.seed})
            }
            Stage::Infer => {
                json!({"model": value(&cfg.model), "eval": {"source": value(&cfg.eval.source)}})
            }
            Stage::Eval => json!({"eval": value(&cfg.eval)}),
            Stage::Report => json!({"report": value(&cfg.report), "name": cfg.name}),
        }
    }

    /// The stage that writes `file` under `cfg`.
    fn producer_of(file: &str, cfg: &ExperimentConfig) -> Option<Stage> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.outputs(cfg).iter().any(|f| f == file))
    }
}

/// Serialising any config part to JSON through one non-generic function.
mod erased {
    /// A config part that serialises.
    pub trait Serialize {
        /// Its JSON value.
        fn to_json(&self) -> serde_json::Value;
    }

    impl<T: serde::Serialize> Serialize for T {
        fn to_json(&self) -> serde_json::Value {
            serde_json::to_value(self).expect("config parts serialize to JSON")
        }
    }
}

/// The dataset's four files under the data root, then the outliers' two
/// test files, if any; `None` for one not there yet.
pub fn dataset_files(exp: &Experiment) -> Vec<Option<PathBuf>> {
    let dataset = exp.cfg.data.dataset;
    let mut splits = vec![
        (dataset, dataset.train_files()),
        (dataset, dataset.test_files()),
    ];
    if let Some(outliers) = &exp.cfg.data.outliers {
        splits.push((outliers.dataset, outliers.dataset.test_files()));
    }
    splits
        .iter()
        .flat_map(|(dataset, split)| {
            let dir = exp.data_root.join(dataset.name());
            [split.images, split.labels].map(|file| ae_data::locate(&dir, &file))
        })
        .collect()
}

/// Whether the anomaly threshold comes from the training split's scores.
fn threshold_from_train(cfg: &ExperimentConfig) -> bool {
    cfg.eval.source == ae_eval::ThresholdSource::Train
}

/// Where runs go and what they may use, from the global flags; none of it
/// changes a result.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The folder of run directories (`runs/`).
    pub runs_dir: PathBuf,
    /// The stage-output cache, unless disabled.
    pub cache: Option<Cache>,
    /// At most this many training threads.
    pub threads: ae_train::MaxThreads,
}

/// A loaded experiment and where its artifacts go.
#[derive(Debug)]
pub struct Experiment {
    /// The resolved, validated config.
    pub cfg: ExperimentConfig,
    /// The file it came from.
    pub config_path: PathBuf,
    /// `runs/<name>/`.
    pub run: RunDir,
    /// Where dataset files are looked for: `AE_DATA_DIR`, else `data.dir`.
    pub data_root: PathBuf,
    /// Where stage outputs are shared with other runs.
    pub cache: Option<Cache>,
    /// At most this many training threads.
    pub threads: ae_train::MaxThreads,
}

impl Experiment {
    /// Loads and validates the config and creates the run directory.
    pub fn open(
        config_path: &Path,
        overrides: &[Override],
        workspace: &Workspace,
    ) -> anyhow::Result<Self> {
        let exp = Self::new(
            ExperimentConfig::load(config_path, overrides)?,
            config_path,
            workspace,
        );
        ae_store::create_dir_all(exp.run.root()).with_context(|| {
            format!(
                "cannot create the run directory; choose another folder with --runs-dir or AE_RUNS_DIR (now {})",
                workspace.runs_dir.display()
            )
        })?;
        Ok(exp)
    }

    /// The experiment of a loaded config, creating nothing.
    pub fn new(cfg: ExperimentConfig, config_path: &Path, workspace: &Workspace) -> Self {
        let run = RunDir::new(workspace.runs_dir.join(&cfg.name));
        let data_root = match std::env::var_os("AE_DATA_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => cfg.data.dir.clone(),
        };
        Self {
            cfg,
            config_path: config_path.to_path_buf(),
            run,
            data_root,
            cache: workspace.cache.clone(),
            threads: workspace.threads,
        }
    }

    /// Writes the resolved config, defaults filled in, to `config.toml`,
    /// unless it already holds exactly that (so reruns leave it untouched).
    pub fn write_resolved_config(&self) -> anyhow::Result<()> {
        let text = format!(
            "# The resolved config of run `{}`: every default filled in, so this file\n\
             # reproduces the run on its own (`ae pipeline {}`).\n\n{}",
            self.cfg.name,
            self.run.path(files::CONFIG).display(),
            self.cfg.to_toml()
        );
        let path = self.run.path(files::CONFIG);
        if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
            return Ok(());
        }
        ae_store::write_atomic(&path, |out| out.write_all(text.as_bytes()))?;
        Ok(())
    }
}

/// How a plan is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run the stages that must run.
    Run,
    /// Say what would run (`--dry-run`).
    DryRun,
    /// Say which stages are fresh or stale (`ae status`).
    Status,
}

/// A stage to consider, and the reason to run it whatever its state.
pub type Step = (Stage, Option<String>);

/// Considers `steps` in order: each runs when forced or stale, and is
/// recorded in the manifest; one line per stage says `fresh` or `ran` and
/// why. Stops at the first failure, which is recorded too.
pub fn run_plan(exp: &Experiment, steps: &[Step], mode: Mode) -> anyhow::Result<()> {
    let _lock = match mode {
        Mode::Run => Some(lock_run_dir(exp)?),
        Mode::DryRun | Mode::Status => None,
    };
    if mode == Mode::Run {
        exp.write_resolved_config()?;
    }
    let manifest_path = exp.run.path(files::MANIFEST);
    let mut manifest = Manifest::load(&manifest_path)?;
    let mut upstream_pending: Option<Stage> = None;
    for (stage, forced) in steps {
        let stage = *stage;
        let _span = stage.span().entered();
        let (decision, inputs) = staleness::assess(stage, exp, &manifest, forced.as_deref())?;
        let reason = match decision {
            Decision::Fresh => {
                let note = match (mode, upstream_pending) {
                    (Mode::Run, _) | (_, None) => String::new(),
                    (_, Some(up)) => format!("unless `{}` writes different outputs", up.name()),
                };
                say(stage, "fresh", &note);
                continue;
            }
            Decision::Run(reason) => reason,
        };
        match mode {
            Mode::DryRun => {
                say(stage, "would run", &reason);
                upstream_pending.get_or_insert(stage);
                continue;
            }
            Mode::Status => {
                say(stage, "stale", &reason);
                upstream_pending.get_or_insert(stage);
                continue;
            }
            Mode::Run => {}
        }
        // A stage whose inputs are missing has not failed: it cannot start.
        check_inputs(stage, exp)?;
        let section = stage.section(&exp.cfg);
        let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let mut record = StageRecord {
            status: StageStatus::Running,
            fingerprint: String::new(),
            config: section.clone(),
            version: PIPELINE_VERSION.to_string(),
            started_at,
            seconds: 0.0,
            inputs: inputs.clone().unwrap_or_default(),
            outputs: Vec::new(),
            error: None,
            restored: false,
        };
        // What was computed anywhere with this fingerprint is restored, not
        // computed again, unless the user asked for the stage to run. The
        // fingerprint's lock makes a second process wait for the first.
        let cached = match (&exp.cache, &inputs, forced) {
            (Some(cache), Some(inputs), None) => {
                let fingerprint = staleness::fingerprint(stage, &section, inputs);
                let lock = cache.lock(&fingerprint)?;
                Some((cache, fingerprint, lock))
            }
            _ => None,
        };
        if let Some((cache, fingerprint, _lock)) = &cached
            && let Some(entry) = cache.get(fingerprint, &stage.outputs(&exp.cfg))?
        {
            let clock = Instant::now();
            record.outputs = cache.restore(&entry, &exp.run)?;
            record.seconds = clock.elapsed().as_secs_f64();
            record.status = StageStatus::Ok;
            record.fingerprint = fingerprint.clone();
            record.restored = true;
            manifest
                .stages
                .insert(stage.name().to_string(), record.clone());
            manifest.save(&manifest_path)?;
            tracing::info!(
                "restored from the cache {} ({reason}); computing it took {:.2} s",
                cache.root().display(),
                entry.seconds
            );
            say(stage, "restored", &format!("{reason} (from the cache)"));
            continue;
        }
        // Recorded as running first: if this process dies, the next run
        // knows the outputs are not to be trusted.
        manifest
            .stages
            .insert(stage.name().to_string(), record.clone());
        manifest.save(&manifest_path)?;
        tracing::info!("started: {reason}");
        let clock = Instant::now();
        let result = execute(stage, exp, inputs);
        record.seconds = clock.elapsed().as_secs_f64();
        match &result {
            Ok((inputs, outputs)) => {
                record.status = StageStatus::Ok;
                record.fingerprint = staleness::fingerprint(stage, &section, inputs);
                record.inputs = inputs.clone();
                record.outputs = outputs.clone();
                if let Some(cache) = &exp.cache {
                    let locked = cached.is_some();
                    record.outputs = share(cache, stage, &record, &exp.run, locked);
                }
            }
            Err(err) => {
                record.status = StageStatus::Failed;
                record.error = Some(format!("{err:#}"));
            }
        }
        manifest
            .stages
            .insert(stage.name().to_string(), record.clone());
        manifest.save(&manifest_path)?;
        result.with_context(|| format!("stage `{}` failed", stage.name()))?;
        tracing::info!("finished in {:.2} s", record.seconds);
        say(stage, "ran", &format!("{reason} ({:.1} s)", record.seconds));
    }
    Ok(())
}

/// Puts a finished stage's outputs in the cache; returns its output records
/// as they now are. A cache that cannot be written costs only the sharing.
fn share(
    cache: &Cache,
    stage: Stage,
    record: &StageRecord,
    run: &RunDir,
    locked: bool,
) -> Vec<FileRecord> {
    // Locked already unless the fingerprint became known only now (the data
    // stage's, once it has found its files) or the stage was forced to run.
    let _lock = (!locked).then(|| cache.lock(&record.fingerprint));
    match cache.put(
        stage.name(),
        &record.fingerprint,
        record.seconds,
        run,
        &record.outputs,
    ) {
        Ok(outputs) => outputs,
        Err(err) => {
            tracing::warn!(
                "cannot store the outputs in the cache {} (they are fine in the run directory): {err:#}",
                cache.root().display()
            );
            record.outputs.clone()
        }
    }
}

/// One line per stage on stdout: `train   ran     train.epochs 50 → 20 (7.9 s)`.
fn say(stage: Stage, verdict: &str, reason: &str) {
    output::line(
        format_args!("{:<7} {:<9} {reason}", stage.name(), verdict)
            .to_string()
            .trim_end(),
    );
}

/// Takes the run directory's lock file for this process's lifetime, waiting
/// while another `ae` holds it. The operating system releases it when the
/// holder exits, even after `kill -9`.
fn lock_run_dir(exp: &Experiment) -> anyhow::Result<std::fs::File> {
    let path = exp.run.path(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            tracing::warn!(
                "another ae process is working in {}; waiting for it to finish",
                exp.run.root().display()
            );
            file.lock()
                .with_context(|| format!("cannot lock {}", path.display()))?;
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    Ok(file)
}

type StageFiles = (Vec<FileRecord>, Vec<FileRecord>);

/// Runs one stage; returns what it read (`inputs`, hashed before it ran;
/// for the data stage, the dataset files it used) and what it wrote.
fn execute(
    stage: Stage,
    exp: &Experiment,
    inputs: Option<Vec<FileRecord>>,
) -> anyhow::Result<StageFiles> {
    let mut inputs = inputs.unwrap_or_default();
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
            let artifacts = ae_train::run(&cfg.train, &cfg.model, cfg.seed, &exp.run, exp.threads)?;
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
            let lines = [
                Some(artifacts.metrics.found_line()),
                artifacts.metrics.detection_line(),
            ];
            for line in lines.into_iter().flatten() {
                // On stdout as the result; in run.log too, but not twice on a terminal.
                tracing::info!(target: crate::logging::LOG_FILE_ONLY, "{line}");
                output::line(&line);
            }
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
