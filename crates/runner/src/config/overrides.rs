//! `--set key=value`: change any config key from the command line.

use std::str::FromStr;

use serde::Deserialize;

use super::{ConfigError, ExperimentConfig};

/// One `--set key=value` argument.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Override {
    /// The dotted key, exactly as in the TOML file: `train.epochs`.
    pub key: String,
    /// The value parsed as TOML (`5`, `1e-3`, `true`, `[1, 2]`, `"x"`); text
    /// that is not a TOML value is taken as a string, so `data.dataset=mnist` works.
    pub value: toml::Value,
    /// The argument as the user wrote it, for messages.
    pub argument: String,
}

impl FromStr for Override {
    type Err = String;

    fn from_str(argument: &str) -> Result<Self, Self::Err> {
        let usage = || {
            format!("expected KEY=VALUE with a dotted key, e.g. train.epochs=5 (got {argument:?})")
        };
        let (key, raw) = argument.split_once('=').ok_or_else(usage)?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(|part| part.trim().is_empty()) {
            return Err(usage());
        }
        Ok(Self {
            key: key.to_string(),
            value: parse_value(raw.trim()),
            argument: argument.to_string(),
        })
    }
}

fn parse_value(raw: &str) -> toml::Value {
    let parsed = format!("value = {raw}")
        .parse::<toml::Table>()
        .ok()
        .filter(|table| table.len() == 1)
        .and_then(|mut table| table.remove("value"));
    parsed.unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// Applies `overrides` in order to `cfg`, so an overridden value is typed
/// and checked exactly like the file's and an error names the argument that
/// caused it. All are applied at once (a sweep builds thousands of points);
/// only when that fails are they applied one by one, to find which failed.
pub(super) fn apply(
    cfg: &ExperimentConfig,
    overrides: &[Override],
) -> Result<ExperimentConfig, ConfigError> {
    let mut table = toml::Table::try_from(cfg).expect("the config types always serialize to TOML");
    for o in overrides {
        set(&mut table, o)?;
    }
    if let Ok(cfg) = ExperimentConfig::deserialize(toml::Value::Table(table)) {
        return Ok(cfg);
    }
    let mut cfg = cfg.clone();
    for o in overrides {
        let mut table =
            toml::Table::try_from(&cfg).expect("the config types always serialize to TOML");
        set(&mut table, o)?;
        cfg = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            ConfigError::Override {
                argument: o.argument.clone(),
                message: super::describe(e.path(), e.inner().message()),
            }
        })?;
    }
    Ok(cfg)
}

fn set(table: &mut toml::Table, o: &Override) -> Result<(), ConfigError> {
    let parts: Vec<&str> = o.key.split('.').map(str::trim).collect();
    let (last, parents) = parts.split_last().expect("keys are checked non-empty");
    let mut current = table;
    for (depth, part) in parents.iter().enumerate() {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(ConfigError::Override {
                    argument: o.argument.clone(),
                    message: format!(
                        "`{}` is a value, not a section, so it has no keys",
                        parts[..=depth].join(".")
                    ),
                });
            }
        };
    }
    current.insert(last.to_string(), o.value.clone());
    Ok(())
}

/// Every dotted key of `table` that holds a value, with the value, in the
/// table's order (a nested table is a section, so `[grid.model]` with
/// `latent` and `model.latent` give the same key).
pub(crate) fn dotted_keys(table: &toml::Table) -> Vec<(String, &toml::Value)> {
    fn walk<'a>(prefix: &str, table: &'a toml::Table, out: &mut Vec<(String, &'a toml::Value)>) {
        for (key, value) in table {
            let dotted = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                toml::Value::Table(inner) => walk(&dotted, inner, out),
                value => out.push((dotted, value)),
            }
        }
    }
    let mut keys = Vec::new();
    walk("", table, &mut keys);
    keys
}
