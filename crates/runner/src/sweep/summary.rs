//! The sweep's summary: which points have finished (their manifests say),
//! then `ae_report::sweep` reads their results and writes the tables and
//! figures.

use std::path::Path;

use ae_report::sweep::{self, FinishedPoint, GridValue, PointResults, VaryingKey};
use ae_store::RunDir;
use anyhow::bail;

use super::spec::value_label;
use super::{Point, Sweep, point_dir, points};
use crate::experiment::Workspace;
use crate::output;

/// What the finished points of a sweep say, and which have not finished.
pub(crate) struct Gathered {
    /// The summary's description of the sweep.
    pub summary: sweep::Sweep,
    /// Each finished point's results, in grid order.
    pub results: Vec<PointResults>,
    /// The names of the points that have not finished.
    pub unfinished: Vec<String>,
}

/// Reads the results of every point that has finished, as `finished`
/// tells.
pub(crate) fn gather(
    sweep: &Sweep,
    workspace: &Workspace,
    mut finished: impl FnMut(&Point) -> anyhow::Result<bool>,
) -> anyhow::Result<Gathered> {
    let varying = sweep.varying();
    let mut results = Vec::new();
    let mut unfinished = Vec::new();
    for point in &sweep.points {
        if !finished(point)? {
            unfinished.push(point.name.clone());
            continue;
        }
        let finished = FinishedPoint {
            name: point.name.clone(),
            values: varying
                .iter()
                .map(|(i, _)| grid_value(&point.values[*i]))
                .collect(),
            run: RunDir::new(point_dir(workspace, point)),
        };
        results.push(PointResults::read(finished)?);
    }
    let summary = sweep::Sweep {
        name: sweep.name.clone(),
        file: sweep.file.clone(),
        base: sweep.base.clone(),
        points: sweep.points.len(),
        varying: varying
            .iter()
            .map(|(_, axis)| VaryingKey {
                key: axis.key.clone(),
                values: axis.values.iter().map(grid_value).collect(),
            })
            .collect(),
        metric: sweep.metric,
    };
    Ok(Gathered {
        summary,
        results,
        unfinished,
    })
}

/// Reads every finished point and writes the summary into `dir`; says which
/// points have not finished. Fails when none has.
pub(crate) fn collect_and_write(
    sweep: &Sweep,
    workspace: &Workspace,
    dir: &Path,
) -> anyhow::Result<()> {
    let Gathered {
        summary,
        results,
        unfinished,
    } = gather(sweep, workspace, |point| {
        points::finished(sweep, point, workspace)
    })?;
    if results.is_empty() {
        bail!(
            "no point of sweep `{}` has finished in {}; run `ae sweep {}` first",
            sweep.name,
            dir.display(),
            sweep.file.display()
        );
    }
    let written = sweep::write(&summary, &results, dir)?;
    for line in sweep::markdown(&summary, &results).lines() {
        output::line(line);
    }
    if !unfinished.is_empty() {
        output::line(format_args!(
            "{} of {} points have not finished and are not in the summary: {}",
            unfinished.len(),
            sweep.points.len(),
            unfinished.join(" ")
        ));
    }
    output::line(format_args!(
        "summary: {}",
        written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    ));
    Ok(())
}

/// A grid value as the summary types it: numbers and flags as themselves,
/// anything else by its label.
fn grid_value(value: &toml::Value) -> GridValue {
    match value {
        toml::Value::Integer(i) => GridValue::Int(*i),
        toml::Value::Float(f) => GridValue::Float(*f),
        toml::Value::Boolean(b) => GridValue::Bool(*b),
        other => GridValue::Text(value_label(other)),
    }
}
