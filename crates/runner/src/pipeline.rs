//! Running a plan of stages in one run directory: each stage is judged
//! fresh or stale ([`crate::staleness`]), restored from the cache or run,
//! and recorded in the manifest before it starts and after it ends,
//! successfully or not.

use std::time::{Instant, SystemTime};

use ae_store::{Cache, FileRecord, Manifest, StageRecord, StageStatus, StoreError, files};
use anyhow::Context;
use serde_json::Value;

use crate::experiment::Experiment;
use crate::lock::{self, lock_run_dir};
use crate::observe;
use crate::output;
use crate::stage::{BoundStage, Stage};
use crate::staleness::{self, Decision, PIPELINE_VERSION};

/// How a plan is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Run the stages that must run.
    Run,
    /// Say what would run (`--dry-run`).
    DryRun,
    /// Say which stages are fresh or stale (`ae status`).
    Status,
}

/// A stage to consider, and the reason to run it whatever its state.
pub(crate) type Step = (Stage, Option<String>);

/// How far a plan trusts the outputs of stages it does not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upstream {
    /// The plan runs every stage before the ones it asks for, when stale
    /// (`ae pipeline`, `ae stage --with-upstream`).
    Planned,
    /// The plan runs one stage alone (`ae stage`): the stages whose outputs
    /// it reads are checked first. One that was interrupted or failed, or
    /// whose outputs changed since it wrote them, stops the plan unless
    /// `allow_stale` (`--allow-stale-inputs`); one that is only stale (its
    /// config changed) is named in a warning.
    Checked {
        /// Run on outputs that cannot be trusted anyway.
        allow_stale: bool,
    },
}

/// Considers `steps` in order: each runs when forced or stale, and is
/// recorded in the manifest; one line per stage says `fresh` or `ran` and
/// why. Stops at the first failure, which is recorded too. When the plan
/// ends with every stage that ever ran here fresh, `config.toml` is
/// written: it describes the run directory only when the directory agrees
/// with it (an interrupted or failed run leaves the last agreeing one).
pub(crate) fn run_plan(
    exp: &Experiment,
    steps: &[Step],
    mode: Mode,
    upstream: Upstream,
) -> anyhow::Result<()> {
    let _lock = match mode {
        Mode::Run => Some(lock_run_dir(exp)?),
        Mode::DryRun | Mode::Status => None,
    };
    // Another process's lock: a stage it records as running is running.
    let holder = match mode {
        Mode::Run => None,
        Mode::DryRun | Mode::Status => lock::holder(exp),
    };
    if mode == Mode::Run {
        remove_leftovers(exp);
    }
    let manifest_path = exp.run.path(files::MANIFEST);
    let mut manifest = Manifest::load(&manifest_path)?;
    // The records of the stages this process produced: their digests were
    // computed here, so a file whose stamp still matches is not read again
    // when a later stage takes it as an input.
    let mut produced_here = Manifest::default();
    let mut upstream_pending: Option<Stage> = None;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        // The last stage's copy into the cache, which goes on while the next
        // stage runs (joined before the next copy starts, and at the end).
        let mut caching = Caching::new(scope, exp);
        for (stage, forced) in steps {
            let stage = *stage;
            let bound = exp.stage(stage);
            let _span = stage.span().entered();
            let observe::Assessment {
                decision,
                params,
                inputs,
            } = observe::assess(stage, exp, &manifest, forced.as_deref(), holder)?;
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
            check_inputs(bound, exp)?;
            if let Upstream::Checked { allow_stale } = upstream {
                check_upstream(bound, exp, &manifest, allow_stale)?;
            }
            // Recorded as running first: if this process dies, the next run
            // knows the outputs are not to be trusted.
            let mut record = StageRecord {
                status: StageStatus::Running,
                fingerprint: String::new(),
                config: params.clone(),
                version: PIPELINE_VERSION.to_string(),
                started_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
                seconds: 0.0,
                inputs: inputs.clone().unwrap_or_default(),
                outputs: Vec::new(),
                error: None,
                restored: false,
            };
            manifest
                .stages
                .insert(stage.name().to_string(), record.clone());
            manifest.save(&manifest_path)?;
            tracing::info!("started: {reason}");
            let clock = Instant::now();
            let result = produce(
                bound,
                exp,
                &params,
                &produced_here,
                forced.is_some(),
                &mut caching,
            );
            record.seconds = clock.elapsed().as_secs_f64();
            match &result {
                Ok(done) => {
                    record.status = StageStatus::Ok;
                    record.fingerprint = done.fingerprint.clone();
                    record.inputs = done.inputs.clone();
                    record.outputs = done.outputs.clone();
                    record.restored = done.computed_in.is_some();
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
            let done = result.with_context(|| format!("stage `{}` failed", stage.name()))?;
            produced_here
                .stages
                .insert(stage.name().to_string(), record.clone());
            for line in &done.lines {
                // On stdout as the result; in run.log too, but not twice on a terminal.
                tracing::info!(target: crate::logging::LOG_FILE_ONLY, "{line}");
                output::line(line);
            }
            match done.computed_in {
                Some(seconds) => {
                    tracing::info!(
                        "restored from the cache ({reason}); computing it took {seconds:.2} s"
                    );
                    say(stage, "restored", &format!("{reason} (from the cache)"));
                }
                None => {
                    tracing::info!("finished in {:.2} s", record.seconds);
                    say(stage, "ran", &format!("{reason} ({:.1} s)", record.seconds));
                }
            }
        }
        caching.finish();
        Ok(())
    })?;
    if mode == Mode::Run && agrees_with_config(exp, &manifest)? {
        exp.write_resolved_config()?;
    }
    Ok(())
}

/// Whether every stage that has run in the run directory is fresh under
/// `exp`'s config (stages that never ran contradict nothing).
fn agrees_with_config(exp: &Experiment, manifest: &Manifest) -> anyhow::Result<bool> {
    for stage in Stage::ALL {
        if manifest.stages.contains_key(stage.name())
            && observe::assess(stage, exp, manifest, None, None)?.decision != Decision::Fresh
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Stops a stage that runs alone (`ae stage`) when a stage before it (whose
/// outputs reach it, directly or through the stages between) was
/// interrupted or failed, or its outputs changed since it wrote them,
/// unless `allow_stale`; warns when such a stage is only stale.
fn check_upstream(
    bound: &dyn BoundStage,
    exp: &Experiment,
    manifest: &Manifest,
    allow_stale: bool,
) -> anyhow::Result<()> {
    let name = bound.stage().name();
    let upstream = Stage::ALL
        .into_iter()
        .take_while(|&stage| stage != bound.stage());
    for producer in upstream {
        let Some(record) = manifest.stages.get(producer.name()) else {
            continue;
        };
        let untrusted = match record.status {
            StageStatus::Running => Some("was interrupted last time".to_string()),
            StageStatus::Failed => Some("failed last time".to_string()),
            StageStatus::Ok => {
                let outputs = observe::outputs(exp.stage(producer), exp, Some(record))?;
                staleness::changed_outputs(record, &outputs)
            }
        };
        if let Some(why) = untrusted {
            if !allow_stale {
                anyhow::bail!(
                    "stage `{name}` reads what stage `{}` wrote, which cannot be trusted: it {why}. Run `ae stage {} {}` or `ae pipeline {}` first, or pass --allow-stale-inputs to run `{name}` on it anyway",
                    producer.name(),
                    producer.name(),
                    exp.config_path.display(),
                    exp.config_path.display()
                );
            }
            tracing::warn!(
                "`{name}` reads what `{}` wrote, which {why} (--allow-stale-inputs)",
                producer.name()
            );
            continue;
        }
        if let Decision::Run(reason) =
            observe::assess(producer, exp, manifest, None, None)?.decision
        {
            tracing::warn!(
                "stage `{}` is stale ({reason}): `{name}` reads its outputs as they are",
                producer.name()
            );
        }
    }
    Ok(())
}

/// What a stage that finished read and wrote.
struct Produced {
    /// Its inputs, with their digests.
    inputs: Vec<FileRecord>,
    /// Its outputs, with their digests.
    outputs: Vec<FileRecord>,
    fingerprint: String,
    /// `Some(seconds it took to compute)` when restored from the cache.
    computed_in: Option<f64>,
    /// Its result lines for standard output.
    lines: Vec<String>,
}

/// Restores the stage from the cache when its fingerprint is there, and
/// otherwise runs it and puts its outputs in the cache. What was computed
/// anywhere with this fingerprint is restored, not computed again, unless
/// the user asked for the stage to run (`forced`). The fingerprint's lock
/// makes a second process wait for the first. The inputs are judged against
/// `produced_here` alone (the records this process made), so that no digest
/// recorded elsewhere (a manifest edited by hand) reaches this stage's
/// record or fingerprint unchecked: any other input is read again.
fn produce<'scope>(
    bound: &dyn BoundStage,
    exp: &'scope Experiment,
    params: &Value,
    produced_here: &Manifest,
    forced: bool,
    caching: &mut Caching<'scope, '_>,
) -> anyhow::Result<Produced> {
    let name = bound.stage().name();
    let inputs = observe::inputs(bound, exp, produced_here)?;
    let locked = match (exp.cache(), &inputs, forced) {
        (Some(cache), Some(inputs), false) => {
            let fingerprint = staleness::fingerprint(name, params, inputs, PIPELINE_VERSION);
            match cache.lock(&fingerprint) {
                Ok(lock) => Some((cache, fingerprint, lock)),
                Err(err) => {
                    exp.cache_failed(err);
                    None
                }
            }
        }
        _ => None,
    };
    if let (Some((cache, fingerprint, _lock)), Some(inputs)) = (&locked, &inputs)
        && let Some(restored) = restore(exp, cache, fingerprint, bound)
    {
        let (outputs, seconds) = restored;
        return Ok(Produced {
            inputs: inputs.clone(),
            outputs,
            fingerprint: fingerprint.clone(),
            computed_in: Some(seconds),
            lines: Vec::new(),
        });
    }
    let clock = Instant::now();
    let lines = bound.run(&exp.env, &exp.run)?;
    let seconds = clock.elapsed().as_secs_f64();
    // Inputs from outside the run directory that were missing are there
    // now (the stage fetched them); they are hashed once it has.
    let inputs = match inputs {
        Some(inputs) => inputs,
        None => observe::inputs(bound, exp, produced_here)?.with_context(|| {
            format!("stage `{name}` finished, but an input it fetches is still missing")
        })?,
    };
    let outputs: Vec<FileRecord> = bound
        .outputs()
        .into_iter()
        .map(|file| FileRecord::of(&exp.run.path(&file), file))
        .collect::<Result<_, _>>()?;
    let fingerprint = staleness::fingerprint(name, params, &inputs, PIPELINE_VERSION);
    if let Some(cache) = exp.cache() {
        // Locked already unless the fingerprint became known only now (the
        // data stage's, once it has fetched its files) or the stage was
        // forced to run.
        let lock = match &locked {
            Some(_) => None,
            None => Some(cache.lock(&fingerprint)),
        };
        match lock.transpose() {
            Ok(lock) => {
                let held = lock.or(locked.map(|(_, _, lock)| lock));
                caching.put(cache, held, name, &fingerprint, seconds, &outputs);
            }
            Err(err) => exp.cache_failed(err),
        }
    }
    Ok(Produced {
        inputs,
        outputs,
        fingerprint,
        computed_in: None,
        lines,
    })
}

/// Copies stage outputs into the cache on a thread of their own, one stage
/// at a time, so that the copy (tens of megabytes for the data splits and
/// the reconstructions) overlaps the next stage instead of adding to the
/// run. The cache only saves time: a failed copy is a warning, and the run
/// goes on without the cache from then on.
struct Caching<'scope, 'env> {
    scope: &'scope std::thread::Scope<'scope, 'env>,
    exp: &'scope Experiment,
    pending: Option<std::thread::ScopedJoinHandle<'scope, Result<(), StoreError>>>,
}

impl<'scope, 'env> Caching<'scope, 'env> {
    fn new(scope: &'scope std::thread::Scope<'scope, 'env>, exp: &'scope Experiment) -> Self {
        Self {
            scope,
            exp,
            pending: None,
        }
    }

    /// Puts `outputs` of stage `name` in `cache` under `fingerprint`, after
    /// the previous copy has finished, holding the fingerprint's `lock`
    /// (when there is one) until it is done.
    fn put(
        &mut self,
        cache: &'scope Cache,
        lock: Option<std::fs::File>,
        name: &str,
        fingerprint: &str,
        seconds: f64,
        outputs: &[FileRecord],
    ) {
        self.finish();
        let (name, fingerprint, outputs) =
            (name.to_string(), fingerprint.to_string(), outputs.to_vec());
        let run = &self.exp.run;
        self.pending = Some(self.scope.spawn(move || {
            let _lock = lock;
            cache.put(&name, &fingerprint, seconds, run, &outputs)
        }));
    }

    /// Waits for the copy under way, if any, and reports its failure.
    fn finish(&mut self) {
        if let Some(copy) = self.pending.take() {
            match copy.join() {
                Ok(Ok(())) => {}
                Ok(Err(err)) => self.exp.cache_failed(err),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    }
}

/// The stage's outputs restored from the cache entry of `fingerprint`, and
/// the seconds computing them took; `None` when there is no usable entry.
/// A damaged entry is removed by the cache and the stage is computed.
fn restore(
    exp: &Experiment,
    cache: &Cache,
    fingerprint: &str,
    bound: &dyn BoundStage,
) -> Option<(Vec<FileRecord>, f64)> {
    let entry = match cache.get(fingerprint, &bound.outputs()) {
        Ok(entry) => entry?,
        Err(err) => {
            exp.cache_failed(err);
            return None;
        }
    };
    match cache.restore(&entry, &exp.run) {
        Ok(outputs) => Some((outputs, entry.seconds)),
        Err(err @ StoreError::CorruptBlob { .. }) => {
            tracing::warn!(
                "{:#}; computing the stage instead",
                anyhow::Error::from(err)
            );
            None
        }
        Err(err) => {
            exp.cache_failed(err);
            None
        }
    }
}

/// Removes the temporary files that interrupted writes left in the run
/// directory: every one, since the caller holds the run directory's lock,
/// which every writer there holds too.
fn remove_leftovers(exp: &Experiment) {
    let mut folders: Vec<std::path::PathBuf> = Stage::ALL
        .iter()
        .flat_map(|&stage| exp.stage(stage).outputs())
        .filter_map(|file| exp.run.path(&file).parent().map(ToOwned::to_owned))
        .collect();
    folders.push(exp.run.root().to_path_buf());
    folders.sort();
    folders.dedup();
    let freed: u64 = folders
        .iter()
        .map(|dir| ae_store::remove_stale_temps(dir, true))
        .sum();
    if freed > 0 {
        tracing::info!("removed {freed} bytes that interrupted writes left in the run directory");
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

/// Fails with what to run first when one of a stage's run-directory inputs
/// is missing.
fn check_inputs(bound: &dyn BoundStage, exp: &Experiment) -> anyhow::Result<()> {
    for input in bound.inputs(&exp.env) {
        let ae_store::Input::Run(name) = input else {
            continue;
        };
        let path = exp.run.path(&name);
        if !path.is_file() {
            let producer = exp
                .producer_of(&name)
                .map_or("the stage that writes it", Stage::name);
            anyhow::bail!(
                "stage `{}` needs {}, which does not exist: run `ae stage {producer} {}` first, or `ae pipeline {}` for every stage",
                bound.stage().name(),
                path.display(),
                exp.config_path.display(),
                exp.config_path.display()
            );
        }
    }
    Ok(())
}
