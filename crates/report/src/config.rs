//! The `[report]` section of an experiment config.

use ae_store::Problem;
use serde::{Deserialize, Serialize};

/// Image format of the report's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FigureFormat {
    /// Raster images.
    Png,
    /// Vector images.
    Svg,
}

impl FigureFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            FigureFormat::Png => "png",
            FigureFormat::Svg => "svg",
        }
    }
}

/// `[report]`: the figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// Test images shown in the originals-over-reconstructions figure.
    pub examples: usize,
    /// Highest-scoring images shown in the top-anomalies figure.
    pub top_anomalies: usize,
    /// Figure format.
    pub format: FigureFormat,
}

impl Default for ReportConfig {
    fn default() -> Self {
        Self {
            examples: 10,
            top_anomalies: 20,
            format: FigureFormat::Png,
        }
    }
}

impl ReportConfig {
    /// Every invalid value, keys prefixed `report.`.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if !(1..=50).contains(&self.examples) {
            problems.push(Problem::new(
                "report.examples",
                self.examples,
                "must be between 1 and 50",
            ));
        }
        if !(1..=100).contains(&self.top_anomalies) {
            problems.push(Problem::new(
                "report.top_anomalies",
                self.top_anomalies,
                "must be between 1 and 100",
            ));
        }
        problems
    }
}
