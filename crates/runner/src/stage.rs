//! The stage table: each pipeline stage, its crate's contract
//! ([`ae_store::PipelineStage`]), and the part of the experiment config it
//! reads. The runner spells no stage's file names or config keys; they
//! come from the contract.

use ae_data::DataStage;
use ae_eval::EvalStage;
use ae_infer::InferStage;
use ae_report::ReportStage;
use ae_store::{Env, Input, PipelineStage, RunDir, StageOutcome};
use ae_train::TrainStage;
use serde_json::Value;

use crate::config::ExperimentConfig;

/// A pipeline stage. The name is the same word everywhere: CLI, manifest,
/// run-directory folder and tracing span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Stage {
    /// Find or download the dataset (or read your own files), verify it,
    /// write normalised splits.
    Data,
    /// Fit the autoencoder; write the model and the loss history.
    Train,
    /// Encode and decode the test split with the trained model.
    Infer,
    /// Score each test image by its reconstruction error; flag anomalies.
    Eval,
    /// Draw the figures and write the report page.
    Report,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub(crate) const ALL: [Stage; 5] = [
        Stage::Data,
        Stage::Train,
        Stage::Infer,
        Stage::Eval,
        Stage::Report,
    ];

    /// The stage's name, from its crate's contract.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stage::Data => DataStage::NAME,
            Stage::Train => TrainStage::NAME,
            Stage::Infer => InferStage::NAME,
            Stage::Eval => EvalStage::NAME,
            Stage::Report => ReportStage::NAME,
        }
    }

    /// The tracing span its events are logged in, named like the stage.
    pub(crate) fn span(self) -> tracing::Span {
        match self {
            Stage::Data => tracing::info_span!("data"),
            Stage::Train => tracing::info_span!("train"),
            Stage::Infer => tracing::info_span!("infer"),
            Stage::Eval => tracing::info_span!("eval"),
            Stage::Report => tracing::info_span!("report"),
        }
    }
}

/// One stage of one experiment: its contract with the config it reads.
pub(crate) trait BoundStage {
    /// Which stage.
    fn stage(&self) -> Stage;
    /// The files it reads.
    fn inputs(&self, env: &Env) -> Vec<Input>;
    /// The files it writes, relative to the run directory.
    fn outputs(&self) -> Vec<String>;
    /// The config values its outputs depend on, without unset (`null`) keys.
    fn params(&self) -> Value;
    /// Runs it; returns the result lines for standard output.
    fn run(&self, env: &Env, run: &RunDir) -> anyhow::Result<Vec<String>>;
}

/// A stage's contract `S` with its config.
struct Bound<S: PipelineStage> {
    stage: Stage,
    cfg: S::Config,
}

impl<S: PipelineStage> BoundStage for Bound<S> {
    fn stage(&self) -> Stage {
        self.stage
    }

    fn inputs(&self, env: &Env) -> Vec<Input> {
        S::inputs(&self.cfg, env)
    }

    fn outputs(&self) -> Vec<String> {
        S::outputs(&self.cfg)
    }

    fn params(&self) -> Value {
        crate::staleness::canonical(&S::params(&self.cfg))
    }

    fn run(&self, env: &Env, run: &RunDir) -> anyhow::Result<Vec<String>> {
        let outcome = S::run(&self.cfg, env, run)?;
        Ok(outcome.result_lines())
    }
}

fn bound<S: PipelineStage + 'static>(stage: Stage, cfg: S::Config) -> Box<dyn BoundStage> {
    Box::new(Bound::<S> { stage, cfg })
}

/// Every stage bound to its part of `cfg`, in pipeline order: the one place
/// that hands config sections to stages. The destructuring has no `..`, so
/// a new top-level config field does not compile until it is given to the
/// stages that read it (or said to be read by none).
pub(crate) fn bind(cfg: &ExperimentConfig) -> [Box<dyn BoundStage>; 5] {
    let ExperimentConfig {
        // Read by no stage: the config format's version.
        schema: _,
        name,
        seed,
        data,
        model,
        train,
        eval,
        report,
    } = cfg;
    let ground_truth = data.has_ground_truth();
    [
        bound::<DataStage>(
            Stage::Data,
            ae_data::StageConfig {
                data: data.clone(),
                seed: *seed,
            },
        ),
        bound::<TrainStage>(
            Stage::Train,
            ae_train::StageConfig {
                model: model.clone(),
                train: train.clone(),
                seed: *seed,
            },
        ),
        bound::<InferStage>(
            Stage::Infer,
            ae_infer::StageConfig {
                model: model.clone(),
                threshold_source: eval.source,
            },
        ),
        bound::<EvalStage>(
            Stage::Eval,
            ae_eval::StageConfig {
                eval: eval.clone(),
                ground_truth,
                latent: model.latent,
            },
        ),
        bound::<ReportStage>(
            Stage::Report,
            ae_report::StageConfig {
                report: report.clone(),
                name: name.clone(),
                ground_truth,
                resolved_config: cfg.to_toml(),
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;
    use crate::config::{Override, dotted_keys};

    /// Config keys that change no stage's params, each with the reason.
    const IN_NO_FINGERPRINT: [(&str, &str); 10] = [
        ("schema", "the config file's format, not a result"),
        (
            "data.dir",
            "where dataset files are found; their content is an input",
        ),
        (
            "data.mirrors",
            "where missing files come from; they are verified",
        ),
        ("data.connect_timeout_secs", "how long a download may wait"),
        ("data.read_timeout_secs", "how long a download may wait"),
        ("data.download_timeout_secs", "how long a download may take"),
        (
            "data.train.images",
            "a path; the file's content is an input",
        ),
        (
            "data.train.labels",
            "a path; the file's content is an input",
        ),
        ("data.test.images", "a path; the file's content is an input"),
        ("data.test.labels", "a path; the file's content is an input"),
    ];

    /// A config with every optional key set, so that every key is a leaf of
    /// its TOML form.
    fn every_key_set() -> ExperimentConfig {
        let text = r#"
            schema = 1
            name = "x"
            [data]
            dataset = "files"
            train = { images = "a.gz", labels = "b.gz" }
            test = { images = "c.gz", labels = "d.gz" }
            train_limit = 10
            test_limit = 10
            mirrors = ["http://a/"]
            normal_labels = [3]
            outliers = { dataset = "fashion-mnist", count = 5 }
            format = "npy"
            validation = 0.1
            [train]
            early_stopping = { patience = 3, min_delta = 0.001 }
            [eval]
            q = 95.0
            value = 0.5
        "#;
        toml::from_str(text).expect("every key set")
    }

    /// Another value of the same type, that the config still accepts.
    fn another(key: &str, value: &toml::Value) -> toml::Value {
        use toml::Value as V;
        match value {
            V::Integer(i) => V::Integer(i + 1),
            V::Float(f) => V::Float(f * 2.0 + 1.0),
            V::Boolean(b) => V::Boolean(!b),
            V::Array(items) => {
                let mut items = items.clone();
                items.push(match items.first() {
                    Some(V::String(_)) => V::String("http://b/".into()),
                    _ => V::Integer(4),
                });
                V::Array(items)
            }
            V::String(s) => V::String(
                match (key, s.as_str()) {
                    ("data.dataset", _) => "mnist",
                    ("data.outliers.dataset", _) => "mnist",
                    ("train.engine", "fused") => "dfdx",
                    ("train.validate_on", "test") => "validation",
                    ("data.format", _) => "csv",
                    ("eval.score", "mse") => "mae",
                    ("eval.rule", "mean_multiple") => "percentile",
                    ("eval.source", "test") => "train",
                    ("report.format", "png") => "svg",
                    ("name", _) | ("data.dir", _) | (_, "a.gz" | "b.gz" | "c.gz" | "d.gz") => {
                        "elsewhere"
                    }
                    _ => panic!("give `{key}` (now {s:?}) another valid value in this test"),
                }
                .into(),
            ),
            other => panic!("no other value for `{key}` = {other}"),
        }
    }

    /// Every config key either changes some stage's params or is one of
    /// [`IN_NO_FINGERPRINT`]: a new key cannot slip past the fingerprints.
    #[test]
    fn every_config_key_is_in_a_fingerprint_or_listed_as_out() {
        let base = every_key_set();
        // The report's page shows the whole resolved config, so every key is
        // in the report's params that way; what counts is the rest.
        let params = |cfg: &ExperimentConfig| -> Vec<Value> {
            bind(cfg)
                .iter()
                .map(|s| {
                    let mut params = s.params();
                    if let Some(map) = params.as_object_mut() {
                        map.remove("resolved_config");
                    }
                    params
                })
                .collect()
        };
        let before = params(&base);
        let table: toml::Table = toml::from_str(&base.to_toml()).expect("the config as TOML");
        let keys = dotted_keys(&table);
        assert!(keys.len() > 30, "{keys:?}");
        for (key, value) in keys {
            let changed = Override {
                argument: key.clone(),
                key: key.clone(),
                value: another(&key, value),
            };
            let cfg = base
                .with_overrides(&[changed])
                .unwrap_or_else(|e| panic!("`{key}`: {e}"));
            let after = params(&cfg);
            let moved: Vec<&str> = Stage::ALL
                .iter()
                .zip(before.iter().zip(&after))
                .filter(|(_, (b, a))| b != a)
                .map(|(stage, _)| stage.name())
                .collect();
            let excluded = IN_NO_FINGERPRINT.iter().any(|(k, _)| *k == key);
            assert!(
                moved.is_empty() == excluded,
                "`{key}` changes the params of {moved:?}; a key that changes results must \
                 be in the params of the stages it affects, and one that does not must be \
                 listed with its reason in IN_NO_FINGERPRINT"
            );
        }
    }

    #[test]
    fn the_table_is_in_pipeline_order_and_names_agree_everywhere() {
        let cfg: ExperimentConfig =
            toml::from_str("schema = 1\nname = \"x\"\n").expect("a minimal config");
        let stages = bind(&cfg);
        for (i, stage) in Stage::ALL.into_iter().enumerate() {
            assert_eq!(stages[i].stage(), stage);
            assert_eq!(stage as usize, i);
            let cli_name = stage.to_possible_value().expect("a value");
            assert_eq!(cli_name.get_name(), stage.name());
        }
    }
}
