//! What a stage's files are now: its inputs and outputs hashed where
//! needed, for the staleness decision and the fingerprint. A file whose size
//! and modification time are those of a record is not read again.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ae_store::{FileRecord, Input, Manifest, StageRecord};
use serde_json::Value;

use crate::experiment::Experiment;
use crate::stage::{BoundStage, Stage};
use crate::staleness::{self, Decision, Now, PIPELINE_VERSION};

/// A stage judged against its manifest record.
pub(crate) struct Assessment {
    /// Whether it must run, and why.
    pub(crate) decision: Decision,
    /// Its params under the current config.
    pub(crate) params: Value,
    /// Its inputs now (see [`inputs`]).
    pub(crate) inputs: Option<Vec<FileRecord>>,
}

/// Whether `stage` of `exp` must run, judged against `manifest`; `forced`
/// names a reason that overrides the check, and `holder` the process that
/// holds the run directory now, if another does.
pub(crate) fn assess(
    stage: Stage,
    exp: &Experiment,
    manifest: &Manifest,
    forced: Option<&str>,
    holder: Option<u32>,
) -> anyhow::Result<Assessment> {
    let bound = exp.stage(stage);
    let params = bound.params();
    let inputs = inputs(bound, exp, manifest)?;
    let record = manifest.stages.get(stage.name());
    let outputs = outputs(bound, exp, record)?;
    let now = Now {
        version: PIPELINE_VERSION,
        params: &params,
        inputs: inputs.as_deref(),
        outputs: &outputs,
        holder,
    };
    Ok(Assessment {
        decision: staleness::decide(record, &now, forced),
        params,
        inputs,
    })
}

/// The stage's inputs as they are now, each under its key, hashed only
/// where size or time changed since the manifest recorded it; `None` when
/// an input from outside the run directory is not there yet (the stage
/// will fetch it). An input that is not there, or not a regular file, is
/// recorded with the digest [`staleness::MISSING`]; the stage reports it,
/// with what to do, when it is to run.
pub(crate) fn inputs(
    stage: &dyn BoundStage,
    exp: &Experiment,
    manifest: &Manifest,
) -> anyhow::Result<Option<Vec<FileRecord>>> {
    let known: BTreeMap<&str, &FileRecord> = manifest
        .stages
        .values()
        .flat_map(|r| r.outputs.iter().chain(&r.inputs))
        .map(|f| (f.path.as_str(), f))
        .collect();
    let mut records = Vec::new();
    for input in stage.inputs(&exp.env) {
        let (name, shown, path): (Option<String>, String, PathBuf) = match input {
            Input::Run(file) => (None, file.clone(), exp.run.path(&file)),
            Input::External { path: None, .. } => return Ok(None),
            Input::External {
                name,
                path: Some(path),
            } => (Some(name), path.display().to_string(), path),
        };
        // An outside file that is missing or not a regular file is the
        // stage's to report, with its config key: it will run and say so.
        let readable = name.is_none() || ae_store::regular_file(&path).is_ok();
        let found = match known.get(shown.as_str()) {
            _ if !readable => None,
            Some(previous) => previous.refresh(&path, exp.verify)?,
            None if path.exists() => Some(FileRecord::of(&path, shown.clone())?),
            None => None,
        };
        let record = found.unwrap_or_else(|| FileRecord::absent(shown, staleness::MISSING));
        records.push(FileRecord { name, ..record });
    }
    Ok(Some(records))
}

/// Each output the stage declares, with the digest of what is on disk now
/// (`None`: missing, or never recorded, which makes the stage run either
/// way), rehashed only where it changed since `record`.
pub(crate) fn outputs(
    stage: &dyn BoundStage,
    exp: &Experiment,
    record: Option<&StageRecord>,
) -> anyhow::Result<Vec<(String, Option<String>)>> {
    stage
        .outputs()
        .into_iter()
        .map(|name| {
            let path = exp.run.path(&name);
            let recorded = record.and_then(|r| r.outputs.iter().find(|o| o.path == name));
            let now = match recorded {
                Some(recorded) => recorded.refresh(&path, exp.verify)?,
                None => None,
            };
            Ok((name, now.map(|f| f.sha256)))
        })
        .collect()
}
