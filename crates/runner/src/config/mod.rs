//! The experiment config: one TOML file per experiment, plus `--set` overrides.
//!
//! Loading happens in three passes, each with its own kind of error:
//! 1. the file is parsed and deserialized into [`ExperimentConfig`]
//!    (syntax errors, unknown keys and wrong types, with file, line and dotted key);
//! 2. `--set key=value` overrides are applied to the resolved config and it is
//!    deserialized again (the same checks, naming the `--set` argument);
//! 3. every section validates its values, and *all* problems are reported at once.

mod overrides;

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use ae_data::DataConfig;
use ae_eval::EvalConfig;
use ae_model::ModelConfig;
use ae_report::ReportConfig;
use ae_store::Problem;
use ae_train::TrainConfig;
use serde::{Deserialize, Serialize};

pub(crate) use overrides::{Override, dotted_keys};

/// One experiment: every stage's settings and the seed that drives every random stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExperimentConfig {
    /// The config format version; this `ae` reads [`ExperimentConfig::SCHEMA`].
    pub schema: u32,
    /// Names the run directory, `runs/<name>/`.
    pub name: String,
    /// Seeds initialisation, shuffling and anything else random: any u64.
    /// TOML integers stop at 2^63 − 1, so a larger seed is written as a
    /// string of digits (`seed = "18446744073709551615"`).
    #[serde(default, with = "seed_text")]
    pub seed: u64,
    /// `[data]`.
    #[serde(default)]
    pub data: DataConfig,
    /// `[model]`.
    #[serde(default)]
    pub model: ModelConfig,
    /// `[train]`.
    #[serde(default)]
    pub train: TrainConfig,
    /// `[eval]`.
    #[serde(default)]
    pub eval: EvalConfig,
    /// `[report]`.
    #[serde(default)]
    pub report: ReportConfig,
}

/// Why a config could not be loaded. Each names the file (or `--set`
/// argument), the key and what is allowed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {} (check the path; configs/default.toml is the seed experiment)", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The path holds something that is not a config file: a folder, a
    /// device, a file too large to be one.
    #[error("{} cannot be a config file", path.display())]
    Unusable {
        /// The path given.
        path: PathBuf,
        /// What it is.
        #[source]
        source: ae_store::StoreError,
    },
    /// The file is not TOML, or a key or type is wrong.
    #[error("{}{}: {message}", path.display(), Location(location))]
    File {
        /// The config file.
        path: PathBuf,
        /// Line and column, when known.
        location: Option<(usize, usize)>,
        /// What is wrong, with the dotted key.
        message: String,
    },
    /// A `--set` override names an unknown key or has the wrong type.
    #[error("--set {argument}: {message}")]
    Override {
        /// The argument as given.
        argument: String,
        /// What is wrong.
        message: String,
    },
    /// Values out of their allowed range.
    #[error(
        "{} has {} invalid value{}: {}. Fix {} in the file or with --set key=value",
        path.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        ProblemList(problems),
        if problems.len() == 1 { "it" } else { "them" }
    )]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// Each problem, and whether its key was set with `--set`.
        problems: Vec<(Problem, bool)>,
    },
}

impl ExperimentConfig {
    /// The config format version this `ae` reads.
    pub(crate) const SCHEMA: u32 = 1;

    /// Loads `path`, applies `overrides` in order and validates the result.
    pub(crate) fn load(path: &Path, overrides: &[Override]) -> Result<Self, ConfigError> {
        Self::read(path)?.resolve(path, overrides)
    }

    /// Reads and parses `path` (keys and types checked, values not yet).
    pub(crate) fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = ae_store::read_bounded_text(path, ae_store::limits::CONFIG).map_err(|e| {
            let path = path.to_path_buf();
            match e {
                ae_store::StoreError::Read { source, .. } => ConfigError::Read { path, source },
                source => ConfigError::Unusable { path, source },
            }
        })?;
        Self::from_toml(&text).map_err(|(location, message)| ConfigError::File {
            path: path.to_path_buf(),
            location,
            message,
        })
    }

    /// This config, read from `path`, with `overrides` applied in order and
    /// every value validated.
    pub(crate) fn resolve(&self, path: &Path, overrides: &[Override]) -> Result<Self, ConfigError> {
        let cfg = if overrides.is_empty() {
            self.clone()
        } else {
            self.with_overrides(overrides)?
        };
        let problems = cfg.validate();
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                problems: problems
                    .into_iter()
                    .map(|p| {
                        let from_set = overrides.iter().any(|o| o.key == p.key);
                        (p, from_set)
                    })
                    .collect(),
            })
        }
    }

    /// Parses TOML text; on error, the line and column (when known) and a
    /// message naming the dotted key.
    fn from_toml(text: &str) -> Result<Self, (Option<(usize, usize)>, String)> {
        let deserializer = toml::Deserializer::parse(text).map_err(|e| {
            (
                e.span().map(|s| line_col(text, s)),
                format!("invalid TOML: {}", e.message().trim()),
            )
        })?;
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let location = e.inner().span().map(|s| line_col(text, s));
            (location, describe(e.path(), e.inner().message()))
        })
    }

    /// Every out-of-range value in every section.
    pub(crate) fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.schema != Self::SCHEMA {
            problems.push(Problem::new(
                "schema",
                self.schema,
                format!(
                    "is not a config format this ae reads (it reads schema = {})",
                    Self::SCHEMA
                ),
            ));
        }
        if !is_folder_name(&self.name) {
            problems.push(Problem::new(
                "name",
                format!("{:?}", self.name),
                FOLDER_NAME_RULE,
            ));
        }
        problems.extend(self.data.validate());
        problems.extend(self.model.validate());
        problems.extend(self.train.validate());
        problems.extend(self.eval.validate());
        problems.extend(self.report.validate());
        problems.extend(self.validate_across_sections());
        problems
    }

    /// What one section asks of another: a validation split for the stages
    /// that use one.
    fn validate_across_sections(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.data.has_validation() {
            return problems;
        }
        let needs = "needs a validation split: set data.validation (e.g. 0.1, a fraction of the training images held out)";
        if self.train.validate_on == ae_train::ValidateOn::Validation {
            problems.push(Problem::new("train.validate_on", "\"validation\"", needs));
        }
        if self.eval.source == ae_eval::ThresholdSource::Validation {
            problems.push(Problem::new("eval.source", "\"validation\"", needs));
        }
        problems
    }

    /// This config with `overrides` applied in order, each typed and
    /// checked like the file's values (but not validated).
    pub(crate) fn with_overrides(&self, overrides: &[Override]) -> Result<Self, ConfigError> {
        overrides::apply(self, overrides)
    }

    /// The config as TOML, every default filled in.
    pub(crate) fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the config types always serialize to TOML")
    }
}

/// `seed` as TOML can hold every u64: an integer up to 2^63 − 1, a string
/// of digits above.
mod seed_text {
    use serde::{Deserializer, Serializer, de};

    pub(super) fn serialize<S: Serializer>(seed: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        match i64::try_from(*seed) {
            Ok(small) => serializer.serialize_i64(small),
            Err(_) => serializer.serialize_str(&seed.to_string()),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_any(SeedVisitor)
    }

    struct SeedVisitor;

    const EXPECTED: &str = "a whole number from 0 to 18446744073709551615";

    impl de::Visitor<'_> for SeedVisitor {
        type Value = u64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(EXPECTED)
        }

        fn visit_u64<E: de::Error>(self, seed: u64) -> Result<u64, E> {
            Ok(seed)
        }

        fn visit_i64<E: de::Error>(self, seed: i64) -> Result<u64, E> {
            u64::try_from(seed)
                .map_err(|_| E::custom(format!("{seed} is not a seed: use {EXPECTED}")))
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<u64, E> {
            text.trim()
                .parse()
                .map_err(|_| E::custom(format!("{text:?} is not a seed: use {EXPECTED}")))
        }
    }
}

/// What [`is_folder_name`] accepts, as an error message says it.
pub(crate) const FOLDER_NAME_RULE: &str = "must be a folder name of at most 255 letters, digits, '.', '_', '-', '=', ',' and '+', not starting with '.' (runs/.cache is the stage cache)";

/// Whether `name` is a plain folder name, not hidden (so no run lives in
/// the cache, `runs/.cache`) and not too long: letters, digits, `.`, `_`, `-`,
/// and the `=`, `,`, `+` of sweep point names (`latent=16,seed=0`).
pub(crate) fn is_folder_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= MAX_FOLDER_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-=,+".contains(c))
}

/// The longest folder name file systems allow (bytes; ext4, XFS, APFS, NTFS).
pub(crate) const MAX_FOLDER_NAME: usize = 255;

/// A deserialization message with the dotted key it concerns in front.
fn describe(path: &serde_path_to_error::Path, message: &str) -> String {
    let key = path.to_string();
    if message.starts_with("unknown field") {
        format!("unknown key `{key}`: {message}")
    } else if key == "." {
        message.to_string()
    } else {
        format!("{key}: {message}")
    }
}

/// 1-based line and column of the start of `span` in `text`.
fn line_col(text: &str, span: Range<usize>) -> (usize, usize) {
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

struct Location<'a>(&'a Option<(usize, usize)>);

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((line, col)) => write!(f, ":{line}:{col}"),
            None => Ok(()),
        }
    }
}

struct ProblemList<'a>(&'a [(Problem, bool)]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (problem, from_set)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
            if *from_set {
                f.write_str(" (from --set)")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
