//! The sweep file and the points of its grid.
//!
//! ```toml
//! name = "latent-lr"           # runs/latent-lr/<point>/ (default: the file's stem)
//! base = "../default.toml"     # the experiment config, relative to this file
//! metric = "val_loss"          # plotted against each varied key (optional)
//!
//! [set]                        # optional: the same value at every point
//! train.epochs = 20
//!
//! [grid]                       # every combination is a point
//! model.latent = [16, 32, 64]
//! train.learning_rate = [1e-3, 3e-4]
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use ae_report::sweep::Metric;

use crate::config::{ConfigError, ExperimentConfig, MAX_FOLDER_NAME, Override, dotted_keys};

/// What a sweep file holds, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    name: Option<String>,
    base: PathBuf,
    #[serde(default)]
    metric: Metric,
    #[serde(default)]
    set: toml::Table,
    grid: toml::Table,
}

/// One key of the grid and its values, in the file's order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Axis {
    /// The dotted config key.
    pub key: String,
    /// What a point name calls it: the key's last part, or the whole key
    /// where two axes share a last part.
    pub label: String,
    /// Its values.
    pub values: Vec<toml::Value>,
}

/// One combination of grid values.
#[derive(Debug, Clone)]
pub(super) struct Point {
    /// 0-based position in the grid (the first axis varies slowest).
    pub position: usize,
    /// Its run directory's name: `latent=16,learning_rate=0.001`.
    pub name: String,
    /// One value per axis.
    pub values: Vec<toml::Value>,
    /// Every override that makes it, the point's name last.
    pub overrides: Vec<Override>,
    /// Its resolved, validated config.
    pub config: ExperimentConfig,
}

/// A loaded sweep, every point validated.
#[derive(Debug)]
pub(super) struct Sweep {
    /// The sweep file.
    pub file: PathBuf,
    /// Names `runs/<name>/`.
    pub name: String,
    /// The base experiment config.
    pub base: PathBuf,
    /// What the per-parameter plots show.
    pub metric: Metric,
    /// The grid's keys.
    pub axes: Vec<Axis>,
    /// Every point, in grid order.
    pub points: Vec<Point>,
}

impl Sweep {
    /// Reads `file`, builds the grid with `extra` overrides applied at every
    /// point, and validates every point's config; all problems at once.
    pub(super) fn load(file: &Path, extra: &[Override], allow_large: bool) -> anyhow::Result<Self> {
        let text = ae_store::read_bounded_text(file, ae_store::limits::CONFIG)
            .with_context(|| format!("cannot read the sweep file {}", file.display()))?;
        let spec: SweepFile = serde_path_to_error::deserialize(
            toml::Deserializer::parse(&text)
                .map_err(|e| anyhow::anyhow!("invalid TOML: {}", e.message().trim()))
                .with_context(|| format!("sweep file {}", file.display()))?,
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "{}: `{}`: {}",
                file.display(),
                e.path(),
                e.inner().message()
            )
        })?;

        let name = match spec.name {
            Some(name) => name,
            None => file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        if !crate::config::is_folder_name(&name) {
            bail!(
                "{}: name = {name:?} {}",
                file.display(),
                crate::config::FOLDER_NAME_RULE
            );
        }
        let folder = file.parent().unwrap_or(Path::new(""));
        let base = tidy(folder.join(&spec.base));

        let mut fixed: Vec<Override> = dotted_keys(&spec.set)
            .into_iter()
            .map(|(key, value)| override_of(&key, value.clone()))
            .collect();
        fixed.extend(extra.iter().cloned());

        let mut axes = Vec::new();
        for (key, value) in dotted_keys(&spec.grid) {
            let toml::Value::Array(values) = value else {
                bail!(
                    "{}: grid key `{key}` must be a list of values, e.g. {key} = [1, 2]",
                    file.display()
                );
            };
            if values.is_empty() {
                bail!("{}: grid key `{key}` has no values", file.display());
            }
            axes.push(Axis {
                label: key.clone(),
                key,
                values: values.clone(),
            });
        }
        if axes.is_empty() {
            bail!(
                "{}: [grid] is empty; give at least one key with a list of values, e.g. seed = [0, 1, 2]",
                file.display()
            );
        }
        for axis in &axes {
            if axis.key == "name" {
                bail!(
                    "{}: `name` cannot be a grid key: each point is named after its values",
                    file.display()
                );
            }
            if let Some(o) = fixed.iter().find(|o| o.key == axis.key) {
                bail!(
                    "{}: `{}` is a grid key, so it cannot also be set for every point (`{}`)",
                    file.display(),
                    axis.key,
                    o.argument
                );
            }
        }
        label_axes(&mut axes);
        let count = grid_size(&axes);
        if count.is_none_or(|n| n > MAX_POINTS) && !allow_large {
            bail!(
                "{}: the grid has {} points, more than {MAX_POINTS}; pass --allow-large to run it anyway",
                file.display(),
                count.map_or("too many".to_string(), |n| n.to_string())
            );
        }
        distinct_labels(&axes).with_context(|| file.display().to_string())?;
        let base_config = ExperimentConfig::read(&base)
            .with_context(|| format!("the base config of sweep file {}", file.display()))?;

        let mut points = Vec::new();
        let mut problems = Vec::new();
        for (position, values) in cartesian(&axes).into_iter().enumerate() {
            let name = point_name(&axes, &values);
            if name.len() > MAX_FOLDER_NAME {
                let longest = axes
                    .iter()
                    .zip(&values)
                    .max_by_key(|(_, value)| value_label(value).len())
                    .map_or("", |(axis, _)| axis.key.as_str());
                problems.push(format!(
                    "point {} ({}…): its folder name would be {} bytes, more than {MAX_FOLDER_NAME}: shorten the values of `{longest}`",
                    position + 1,
                    name.chars().take(40).collect::<String>(),
                    name.len()
                ));
                continue;
            }
            let mut overrides = fixed.clone();
            overrides.extend(
                axes.iter()
                    .zip(&values)
                    .map(|(axis, value)| override_of(&axis.key, value.clone())),
            );
            overrides.push(override_of("name", toml::Value::String(name.clone())));
            match base_config.resolve(&base, &overrides) {
                Ok(config) => points.push(Point {
                    position,
                    name,
                    values,
                    overrides,
                    config,
                }),
                Err(err) => problems.push(format!(
                    "point {} ({name}): {}",
                    position + 1,
                    point_problem(err)
                )),
            }
        }
        if !problems.is_empty() {
            let shown = problems.len().min(10);
            bail!(
                "{}: {} of {} points are invalid, so none was run; fix the grid or [set]:\n  {}{}",
                file.display(),
                problems.len(),
                problems.len() + points.len(),
                problems[..shown].join("\n  "),
                if problems.len() > shown {
                    format!("\n  and {} more", problems.len() - shown)
                } else {
                    String::new()
                }
            );
        }
        let names: BTreeSet<&str> = points.iter().map(|p| p.name.as_str()).collect();
        if names.len() != points.len() {
            bail!(
                "{}: two points have the same name; a grid key lists a value twice",
                file.display()
            );
        }
        Ok(Self {
            file: file.to_path_buf(),
            name,
            base,
            metric: spec.metric,
            axes,
            points,
        })
    }

    /// The axes with more than one value, and their positions among all axes.
    pub(super) fn varying(&self) -> Vec<(usize, &Axis)> {
        self.axes
            .iter()
            .enumerate()
            .filter(|(_, a)| a.values.len() > 1)
            .collect()
    }
}

/// `configs/sweeps/../default.toml` as `configs/default.toml`, when both
/// name the same file (a symbolic link on the way could make them differ).
fn tidy(path: PathBuf) -> PathBuf {
    use std::path::Component;
    let mut tidied = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(tidied.components().next_back(), Some(Component::Normal(_))) =>
            {
                tidied.pop();
            }
            other => tidied.push(other),
        }
    }
    match (std::fs::canonicalize(&path), std::fs::canonicalize(&tidied)) {
        (Ok(a), Ok(b)) if a == b => tidied,
        _ => path,
    }
}

/// What is wrong with a point's config, without the advice for `--set`.
fn point_problem(err: ConfigError) -> String {
    match err {
        ConfigError::Invalid { problems, .. } => problems
            .iter()
            .map(|(problem, _)| problem.to_string())
            .collect::<Vec<_>>()
            .join("; "),
        ConfigError::Override { message, .. } => message,
        other => other.to_string(),
    }
}

fn override_of(key: &str, value: toml::Value) -> Override {
    Override {
        argument: format!("{key}={value}"),
        key: key.to_string(),
        value,
    }
}

/// The last part of each key, unless two axes share it.
fn label_axes(axes: &mut [Axis]) {
    let last = |key: &str| key.rsplit('.').next().unwrap_or(key).to_string();
    let lasts: Vec<String> = axes.iter().map(|a| last(&a.key)).collect();
    for (i, axis) in axes.iter_mut().enumerate() {
        let shared = lasts.iter().filter(|l| **l == lasts[i]).count() > 1;
        axis.label = if shared {
            axis.key.clone()
        } else {
            lasts[i].clone()
        };
    }
}

/// The most points a sweep runs without `--allow-large`.
pub(super) const MAX_POINTS: usize = 10_000;

/// How many points the axes make; `None` beyond `usize`.
fn grid_size(axes: &[Axis]) -> Option<usize> {
    axes.iter()
        .try_fold(1usize, |n, axis| n.checked_mul(axis.values.len()))
}

/// Fails when two values of one axis would give the same folder name (their
/// points would share a run directory).
fn distinct_labels(axes: &[Axis]) -> anyhow::Result<()> {
    for axis in axes {
        let mut seen: Vec<(String, &toml::Value)> = Vec::new();
        for value in &axis.values {
            let label = point_name(std::slice::from_ref(axis), std::slice::from_ref(value));
            if let Some((_, other)) = seen.iter().find(|(l, _)| *l == label) {
                if *other == value {
                    bail!("grid key `{}` lists the value {value} twice", axis.key);
                }
                bail!(
                    "grid key `{}` has the values {other} and {value}, which give one folder name, `{label}`: change one of them",
                    axis.key
                );
            }
            seen.push((label, value));
        }
    }
    Ok(())
}

/// Every combination of the axes' values; the first axis varies slowest.
fn cartesian(axes: &[Axis]) -> Vec<Vec<toml::Value>> {
    axes.iter().fold(vec![Vec::new()], |partial, axis| {
        partial
            .iter()
            .flat_map(|prefix| {
                axis.values.iter().map(move |value| {
                    let mut next = prefix.clone();
                    next.push(value.clone());
                    next
                })
            })
            .collect()
    })
}

/// `latent=16,learning_rate=0.001`: each axis's label and value.
pub(super) fn point_name(axes: &[Axis], values: &[toml::Value]) -> String {
    axes.iter()
        .zip(values)
        .map(|(axis, value)| format!("{}={}", axis.label, value_label(value)))
        .collect::<Vec<_>>()
        .join(",")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+=,".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A value as a point name shows it: strings bare, lists joined with `+`.
pub(super) fn value_label(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(items) => items.iter().map(value_label).collect::<Vec<_>>().join("+"),
        toml::Value::Table(table) => table
            .values()
            .map(value_label)
            .collect::<Vec<_>>()
            .join("+"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(key: &str, values: &[toml::Value]) -> Axis {
        Axis {
            key: key.into(),
            label: key.into(),
            values: values.to_vec(),
        }
    }

    #[test]
    fn the_grid_is_every_combination_first_axis_slowest() {
        let mut axes = vec![
            axis("model.latent", &[16.into(), 32.into()]),
            axis(
                "train.learning_rate",
                &[1e-3.into(), 3e-4.into(), 1e-4.into()],
            ),
        ];
        label_axes(&mut axes);
        let points = cartesian(&axes);
        assert_eq!(points.len(), 6);
        let names: Vec<String> = points.iter().map(|v| point_name(&axes, v)).collect();
        assert_eq!(names[0], "latent=16,learning_rate=0.001");
        assert_eq!(names[1], "latent=16,learning_rate=0.0003");
        assert_eq!(names[5], "latent=32,learning_rate=0.0001");
    }

    #[test]
    fn names_are_folder_safe_and_shared_labels_keep_the_whole_key() {
        let mut axes = vec![
            axis("data.limit", &[1.into()]),
            axis("eval.limit", &[2.into()]),
            axis(
                "data.normal_labels",
                &[toml::Value::Array(vec![3.into(), 5.into()])],
            ),
            axis("data.dataset", &["fashion mnist/x".into()]),
        ];
        label_axes(&mut axes);
        let values: Vec<toml::Value> = axes.iter().map(|a| a.values[0].clone()).collect();
        assert_eq!(
            point_name(&axes, &values),
            "data.limit=1,eval.limit=2,normal_labels=3+5,dataset=fashion_mnist_x"
        );
    }
}
