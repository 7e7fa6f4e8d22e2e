//! Whether a stage must run, and why: a pure decision over the stage's
//! manifest record and what its files and params are now. No I/O here; what
//! is on disk is gathered by [`crate::observe`].
//!
//! A stage is fresh when its record finished, was made by this pipeline
//! version with the same params, from inputs with the same digests, and its
//! outputs are still on disk with the digests recorded. Inputs in the run
//! directory are other stages' outputs, so a stage that reruns and writes
//! identical bytes leaves the stages after it fresh.

use std::collections::BTreeMap;

use ae_store::{FileRecord, StageRecord, StageStatus};
use serde_json::{Value, json};

/// The pipeline's version as fingerprints record it: a new `ae` reruns everything.
pub(crate) const PIPELINE_VERSION: &str = concat!("ae ", env!("CARGO_PKG_VERSION"));

/// The digest recorded for an input that is not there (or is not a regular
/// file): the stage says which when it runs.
pub(crate) const MISSING: &str = "missing";

/// What to do with a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Its outputs are up to date.
    Fresh,
    /// It must run, for this reason.
    Run(String),
}

/// A stage as it is now, to compare with its record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Now<'a> {
    /// The `ae` version that would run it.
    pub(crate) version: &'a str,
    /// Its params under the current config.
    pub(crate) params: &'a Value,
    /// Its inputs and their digests; `None` while an input from outside the
    /// run directory is not there (the stage will fetch it).
    pub(crate) inputs: Option<&'a [FileRecord]>,
    /// Each output it declares, with the digest of what is on disk (`None`:
    /// missing).
    pub(crate) outputs: &'a [(String, Option<String>)],
    /// The process that holds the run directory's lock, when another does:
    /// a stage it records as running is running now, not interrupted.
    pub(crate) holder: Option<u32>,
}

/// Decides whether a stage with `record` (none: never ran) must run, given
/// how it is `now`. `forced` names a reason that overrides the check
/// (`--force`, ...).
pub(crate) fn decide(
    record: Option<&StageRecord>,
    now: &Now<'_>,
    forced: Option<&str>,
) -> Decision {
    if let Some(reason) = forced {
        return Decision::Run(reason.to_string());
    }
    let Some(record) = record else {
        return Decision::Run("never ran".into());
    };
    match (record.status, now.holder) {
        (StageStatus::Running, Some(pid)) => return Decision::Run(format!("running (pid {pid})")),
        (StageStatus::Running, None) => return Decision::Run("interrupted last time".into()),
        (StageStatus::Failed, _) => return Decision::Run("failed last time".into()),
        (StageStatus::Ok, _) => {}
    }
    if record.version != now.version {
        return Decision::Run(format!("{} → {}", record.version, now.version));
    }
    if canonical(&record.config) != canonical(now.params) {
        return Decision::Run(describe_changes(&record.config, now.params));
    }
    let Some(inputs) = now.inputs else {
        return Decision::Run("a dataset file is missing".into());
    };
    if let Some(reason) = changed_inputs(&record.inputs, inputs) {
        return Decision::Run(reason);
    }
    match changed_outputs(record, now.outputs) {
        Some(reason) => Decision::Run(reason),
        None => Decision::Fresh,
    }
}

/// The first output of `record` that is missing, or whose digest on disk
/// (in `outputs`) is not the one recorded: why another stage cannot trust it.
pub(crate) fn changed_outputs(
    record: &StageRecord,
    outputs: &[(String, Option<String>)],
) -> Option<String> {
    for (name, digest) in outputs {
        let recorded = record.outputs.iter().find(|o| o.path == *name);
        match (recorded, digest) {
            (None, _) | (_, None) => return Some(format!("output {name} missing")),
            (Some(recorded), Some(digest)) if recorded.sha256 != *digest => {
                return Some(format!("output {name} changed since it was written"));
            }
            _ => {}
        }
    }
    None
}

/// The first difference between the recorded inputs and the current ones,
/// each known by its key (see [`FileRecord::key`]): a file from outside the
/// run directory may be found elsewhere with the same content; only the
/// content counts.
fn changed_inputs(recorded: &[FileRecord], now: &[FileRecord]) -> Option<String> {
    // By key, so that a folder of 70,000 images is not compared pair by pair.
    let recorded: std::collections::HashMap<&str, &FileRecord> =
        recorded.iter().map(|r| (r.key(), r)).collect();
    for file in now {
        if file.sha256 == MISSING {
            return Some(format!("input {} missing", file.key()));
        }
        match recorded.get(file.key()) {
            Some(r) if r.sha256 == file.sha256 => {}
            Some(_) => return Some(format!("input {} changed", file.key())),
            None => return Some(format!("new input {}", file.key())),
        }
    }
    None
}

/// `params` without its `null`s: an unset key is written as absent, so
/// equal configs give equal params however they were built.
pub(crate) fn canonical(params: &Value) -> Value {
    match params {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), canonical(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// sha256 of the stage name, its params (canonical JSON: keys sorted), its
/// inputs' keys and digests, and the pipeline version: what identifies its
/// outputs in the cache.
pub(crate) fn fingerprint(
    stage: &str,
    params: &Value,
    inputs: &[FileRecord],
    version: &str,
) -> String {
    let inputs: Vec<(&str, &str)> = inputs
        .iter()
        .map(|f| (f.key(), f.sha256.as_str()))
        .collect();
    let canonical = json!({
        "stage": stage,
        "config": params,
        "inputs": inputs,
        "version": version,
    });
    ae_store::sha256_hex(canonical.to_string().as_bytes())
}

/// `train.epochs 50 → 20, seed 0 → 3`: what differs between two params
/// (a `null` is an unset key).
pub(crate) fn describe_changes(old: &Value, new: &Value) -> String {
    let (mut old_keys, mut new_keys) = (BTreeMap::new(), BTreeMap::new());
    flatten("", old, &mut old_keys);
    flatten("", new, &mut new_keys);
    let mut keys: Vec<&String> = old_keys.keys().chain(new_keys.keys()).collect();
    keys.sort();
    keys.dedup();
    let changes: Vec<String> = keys
        .into_iter()
        .filter(|k| old_keys.get(*k) != new_keys.get(*k))
        .map(|k| {
            let (old, new) = (old_keys.get(k), new_keys.get(k));
            let long = |v: Option<&String>| v.is_some_and(|v| v.len() > 40 || v.contains('\n'));
            if long(old) || long(new) {
                return format!("{k} changed");
            }
            let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "unset".into());
            format!("{k} {} → {}", show(old), show(new))
        })
        .collect();
    match changes.len() {
        0 => "config changed".to_string(),
        1..=3 => changes.join(", "),
        n => format!("{} and {} more", changes[..3].join(", "), n - 3),
    }
}

fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Null => {}
        Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests;
