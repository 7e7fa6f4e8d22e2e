//! Whether a stage must run, and why.
//!
//! A stage is fresh when its manifest record finished, was made by this
//! pipeline version with the same config section, from inputs with the same
//! digests, and its outputs are still on disk with the digests recorded.
//! Inputs in the run directory are other stages' outputs, so a stage that
//! reruns and writes identical bytes leaves the stages after it fresh.

use std::collections::BTreeMap;

use ae_store::{FileRecord, Manifest, StageRecord, StageStatus};
use serde_json::{Value, json};

use crate::pipeline::{Experiment, Stage};

/// The pipeline's version as fingerprints record it: a new `ae` reruns everything.
pub const PIPELINE_VERSION: &str = concat!("ae ", env!("CARGO_PKG_VERSION"));

/// What to do with a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Its outputs are up to date.
    Fresh,
    /// It must run, for this reason.
    Run(String),
}

/// A stage's inputs as they are now, named as in the manifest.
pub type Inputs = Vec<FileRecord>;

/// Decides whether `stage` must run; also returns its current inputs.
/// `forced` names a reason that overrides the check (`--force`, ...).
pub fn assess(
    stage: Stage,
    exp: &Experiment,
    manifest: &Manifest,
    forced: Option<&str>,
) -> anyhow::Result<(Decision, Option<Inputs>)> {
    let inputs = current_inputs(stage, exp, manifest)?;
    if let Some(reason) = forced {
        return Ok((Decision::Run(reason.to_string()), inputs));
    }
    let Some(record) = manifest.stages.get(stage.name()) else {
        return Ok((Decision::Run("never ran".into()), inputs));
    };
    let decision = match record.status {
        StageStatus::Running => Decision::Run("interrupted last time".into()),
        StageStatus::Failed => Decision::Run("failed last time".into()),
        StageStatus::Ok => compare(stage, exp, record, inputs.as_deref())?,
    };
    Ok((decision, inputs))
}

fn compare(
    stage: Stage,
    exp: &Experiment,
    record: &StageRecord,
    inputs: Option<&[FileRecord]>,
) -> anyhow::Result<Decision> {
    if record.version != PIPELINE_VERSION {
        return Ok(Decision::Run(format!(
            "{} → {PIPELINE_VERSION}",
            record.version
        )));
    }
    let section = stage.section(&exp.cfg);
    if record.config != section {
        return Ok(Decision::Run(describe_changes(&record.config, &section)));
    }
    let Some(inputs) = inputs else {
        return Ok(Decision::Run("a dataset file is missing".into()));
    };
    if let Some(reason) = changed_inputs(stage, &record.inputs, inputs) {
        return Ok(Decision::Run(reason));
    }
    for name in stage.outputs(&exp.cfg) {
        let Some(recorded) = record.outputs.iter().find(|o| o.path == name) else {
            return Ok(Decision::Run(format!("output {name} missing")));
        };
        match recorded.refresh(&exp.run.path(&name))? {
            None => return Ok(Decision::Run(format!("output {name} missing"))),
            Some(now) if now.sha256 != recorded.sha256 => {
                return Ok(Decision::Run(format!(
                    "output {name} changed since it was written"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(Decision::Fresh)
}

/// The first difference between the recorded inputs and the current ones.
fn changed_inputs(stage: Stage, recorded: &[FileRecord], now: &[FileRecord]) -> Option<String> {
    if stage == Stage::Data {
        // Dataset files may be found elsewhere (AE_DATA_DIR) with the same
        // content; only the content counts.
        let digests =
            |files: &[FileRecord]| files.iter().map(|f| f.sha256.clone()).collect::<Vec<_>>();
        return (digests(recorded) != digests(now))
            .then(|| "the dataset files changed".to_string());
    }
    for file in now {
        match recorded.iter().find(|r| r.path == file.path) {
            Some(r) if r.sha256 == file.sha256 => {}
            Some(_) => return Some(format!("input {} changed", file.path)),
            None => return Some(format!("new input {}", file.path)),
        }
    }
    None
}

/// The stage's inputs as they are now, hashed only where size or time
/// changed since a manifest record; `None` when a dataset file is missing
/// (the data stage will download it).
pub fn current_inputs(
    stage: Stage,
    exp: &Experiment,
    manifest: &Manifest,
) -> anyhow::Result<Option<Inputs>> {
    let known: BTreeMap<&str, &FileRecord> = manifest
        .stages
        .values()
        .flat_map(|r| r.outputs.iter().chain(&r.inputs))
        .map(|f| (f.path.as_str(), f))
        .collect();
    let paths: Vec<(String, std::path::PathBuf)> = match stage {
        Stage::Data => {
            let mut paths = Vec::new();
            for path in crate::pipeline::dataset_files(exp) {
                match path {
                    Some(path) => paths.push((path.display().to_string(), path)),
                    None => return Ok(None),
                }
            }
            paths
        }
        _ => stage
            .inputs(&exp.cfg)
            .into_iter()
            .map(|name| {
                let path = exp.run.path(&name);
                (name, path)
            })
            .collect(),
    };
    let mut records = Vec::with_capacity(paths.len());
    for (name, path) in paths {
        let record = match known.get(name.as_str()) {
            Some(previous) => previous.refresh(&path)?,
            None if path.exists() => Some(FileRecord::of(&path, name.clone())?),
            None => None,
        };
        match record {
            Some(record) => records.push(record),
            // A missing run-directory input is reported when the stage is to run.
            None => records.push(FileRecord {
                path: name,
                bytes: 0,
                sha256: "missing".into(),
                modified_ns: None,
            }),
        }
    }
    Ok(Some(records))
}

/// sha256 of the stage name, its config section (canonical JSON: keys
/// sorted), its inputs' paths (file names for the dataset) and digests, and
/// the pipeline version: what identifies its outputs in the cache.
pub fn fingerprint(stage: Stage, section: &Value, inputs: &[FileRecord]) -> String {
    let inputs: Vec<(&str, &str)> = inputs
        .iter()
        .map(|f| {
            // Dataset files count by name and content, wherever they were found.
            let name = match stage {
                Stage::Data => f.path.rsplit(['/', '\\']).next().unwrap_or(&f.path),
                _ => f.path.as_str(),
            };
            (name, f.sha256.as_str())
        })
        .collect();
    let canonical = json!({
        "stage": stage.name(),
        "config": section,
        "inputs": inputs,
        "version": PIPELINE_VERSION,
    });
    ae_store::sha256_hex(canonical.to_string().as_bytes())
}

/// `train.epochs 50 → 20, seed 0 → 3`: what differs between two sections.
pub fn describe_changes(old: &Value, new: &Value) -> String {
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
            let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "unset".into());
            format!("{k} {} → {}", show(old_keys.get(k)), show(new_keys.get(k)))
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
        Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_changed_added_and_removed_keys() {
        let old = json!({"train": {"epochs": 50, "engine": "fused"}, "seed": 0});
        let new = json!({"train": {"epochs": 20, "engine": "fused"}, "seed": 0});
        assert_eq!(describe_changes(&old, &new), "train.epochs 50 → 20");
        let new =
            json!({"train": {"epochs": 20, "engine": "dfdx"}, "seed": 3, "eval": {"q": 95.0}});
        assert_eq!(
            describe_changes(&old, &new),
            "eval.q unset → 95.0, seed 0 → 3, train.engine fused → dfdx and 1 more"
        );
    }

    #[test]
    fn fingerprints_change_with_config_and_inputs() {
        let input = |sha: &str| FileRecord {
            path: "data/train.safetensors".into(),
            bytes: 1,
            sha256: sha.into(),
            modified_ns: None,
        };
        let a = fingerprint(Stage::Train, &json!({"epochs": 5}), &[input("aa")]);
        assert_eq!(
            a,
            fingerprint(Stage::Train, &json!({"epochs": 5}), &[input("aa")])
        );
        assert_ne!(
            a,
            fingerprint(Stage::Train, &json!({"epochs": 6}), &[input("aa")])
        );
        assert_ne!(
            a,
            fingerprint(Stage::Train, &json!({"epochs": 5}), &[input("ab")])
        );
        assert_ne!(
            a,
            fingerprint(Stage::Infer, &json!({"epochs": 5}), &[input("aa")])
        );
    }
}
