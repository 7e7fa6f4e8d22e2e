//! The `report` stage: figures a person would rather look at, and a page
//! that shows them with the key numbers; and the summary of a sweep.
//!
//! Reads the test split, `infer/decoded.safetensors`, `eval/scores.parquet`,
//! `eval/metrics.json` (and `eval/roc.csv` with ground truth),
//! `train/history.csv` and the resolved `config.toml`, each through its one
//! reader; writes into `report/`: `reconstructions`, `loss`, `mse_hist`,
//! `top_anomalies`, `top_error_maps` and `anomaly_rate_by_label` as PNG or SVG (with ground
//! truth also `roc`, `precision_recall` and `score_distributions`), and
//! `index.html`, which opens from disk with the figures beside it.
//!
//! [`sweep`] is `ae sweep`'s summary: the statistics over points, the
//! tables (Parquet, CSV, Markdown) and the figures.
//!
//! Text renders with a font compiled into the binary (DejaVu Sans, see
//! `assets/`), so a machine without font libraries draws the same figures.

mod chart;
mod config;
mod errormap;
mod figures;
mod html;
mod inputs;
mod render;
pub mod sweep;
mod truth;

use std::path::PathBuf;

use ae_store::{Env, Input, PipelineStage, RunDir, StageOutcome, StoreError, files};
use ae_tables::TableError;
use serde_json::json;

pub use config::{FigureFormat, ReportConfig};
pub use errormap::{ErrorMap, TOP_ERROR_MAPS, TopErrorMaps, squared_errors};
pub use figures::{
    AnomalyRateByLabel, LossCurves, MseHistogram, Reconstructions, Shown, TopAnomalies,
};
pub use html::FIGURES;
pub use inputs::ReportInputs;
pub use render::{Figure, render};
pub use truth::{PrecisionRecall, Roc, ScoreDistributions, TRUTH_FIGURES};

/// Why the report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// An input could not be read or an output written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The scores table could not be read, or a summary table written.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The inputs do not describe the same test images.
    #[error("{} cannot be used for the report: {problem}", path.display())]
    Disagree {
        /// The file that disagrees with the test split.
        path: PathBuf,
        /// How.
        problem: String,
    },
    /// plotters could not draw a figure, or it could not be encoded.
    #[error("cannot draw {}", path.display())]
    Draw {
        /// The figure's file.
        path: PathBuf,
        /// What plotters or the PNG encoder reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The report stage, for the runner.
#[derive(Debug, Clone, Copy)]
pub struct ReportStage;

/// What the report stage reads of the experiment config.
#[derive(Debug, Clone, PartialEq)]
pub struct StageConfig {
    /// `[report]`.
    pub report: ReportConfig,
    /// The experiment's name, the page's title.
    pub name: String,
    /// Whether the test split says which images are anomalies (the data
    /// config decides): then the ground-truth figures are drawn too.
    pub ground_truth: bool,
    /// The whole resolved config, as TOML, shown on the page.
    pub resolved_config: String,
}

/// Where the report is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportOutcome {
    /// The page.
    pub index: PathBuf,
}

impl StageOutcome for ReportOutcome {
    fn result_lines(&self) -> Vec<String> {
        vec![format!("report: {}", self.index.display())]
    }
}

impl PipelineStage for ReportStage {
    const NAME: &'static str = "report";
    type Config = StageConfig;
    type Outcome = ReportOutcome;
    type Error = ReportError;

    fn inputs(cfg: &StageConfig, _env: &Env) -> Vec<Input> {
        Input::run_files(ReportInputs::files(cfg.ground_truth))
    }

    fn outputs(cfg: &StageConfig) -> Vec<String> {
        figure_stems(cfg.ground_truth)
            .map(|stem| figure_file(stem, cfg.report.format))
            .chain([files::REPORT_INDEX.to_string()])
            .collect()
    }

    fn params(cfg: &StageConfig) -> serde_json::Value {
        let StageConfig {
            report:
                ReportConfig {
                    examples,
                    top_anomalies,
                    format,
                },
            // In: it titles the page.
            name,
            // Out: it follows from the data config, whose effect on the test
            // split (its `is_outlier` tensor) is in the input's digest.
            ground_truth: _,
            // In: the page shows it.
            resolved_config,
        } = cfg;
        json!({
            "report": {"examples": examples, "top_anomalies": top_anomalies, "format": format},
            "name": name,
            "resolved_config": resolved_config,
        })
    }

    fn run(cfg: &StageConfig, _env: &Env, run: &RunDir) -> Result<ReportOutcome, ReportError> {
        let inputs = ReportInputs::read(
            run,
            cfg.ground_truth,
            &cfg.resolved_config,
            cfg.report.examples,
        )?;
        draw_figures(&inputs, &cfg.report, &|stem| {
            run.path(&figure_file(stem, cfg.report.format))
        })?;
        let index = run.path(files::REPORT_INDEX);
        let page = html::page(&inputs, &cfg.name, cfg.report.format.extension());
        ae_store::write_atomic(&index, |out| out.write_all(page.as_bytes()))?;
        Ok(ReportOutcome { index })
    }
}

/// Every figure's file stem, in page order.
fn figure_stems(ground_truth: bool) -> impl Iterator<Item = &'static str> {
    let truth: &[(&str, &str)] = if ground_truth { &TRUTH_FIGURES } else { &[] };
    FIGURES.iter().chain(truth).map(|(stem, _)| *stem)
}

/// `report/<stem>.<ext>`.
fn figure_file(stem: &str, format: FigureFormat) -> String {
    format!("{}/{stem}.{}", files::REPORT_DIR, format.extension())
}

/// Draws every figure of `inputs` to the path `path` gives for its stem.
fn draw_figures(
    inputs: &ReportInputs,
    cfg: &ReportConfig,
    path: &dyn Fn(&str) -> PathBuf,
) -> Result<(), ReportError> {
    let m = &inputs.metrics;
    render(
        &Reconstructions::first(inputs, cfg.examples),
        &path("reconstructions"),
        cfg.format,
    )?;
    render(
        &LossCurves {
            history: &inputs.history,
            fit: &inputs.fit,
        },
        &path("loss"),
        cfg.format,
    )?;
    let score_name = inputs.score_name();
    render(
        &MseHistogram {
            scores: &inputs.scores.values,
            score_name: &score_name,
            threshold: m.threshold,
            anomalies: m.anomalies,
        },
        &path("mse_hist"),
        cfg.format,
    )?;
    render(
        &TopAnomalies::highest(inputs, cfg.top_anomalies),
        &path("top_anomalies"),
        cfg.format,
    )?;
    render(
        &TopErrorMaps::highest(inputs),
        &path("top_error_maps"),
        cfg.format,
    )?;
    render(
        &AnomalyRateByLabel {
            per_label: &m.per_label,
            threshold: m.threshold,
        },
        &path("anomaly_rate_by_label"),
        cfg.format,
    )?;
    if let Some(roc) = &inputs.roc {
        draw_truth_figures(inputs, &roc.points, path, cfg.format)?;
    }
    Ok(())
}

/// The ROC and precision-recall curves and the score distributions.
fn draw_truth_figures(
    inputs: &ReportInputs,
    points: &[ae_store::OperatingPoint],
    path: &dyn Fn(&str) -> PathBuf,
    format: FigureFormat,
) -> Result<(), ReportError> {
    let detection = inputs.metrics.detection.as_ref();
    let at = detection.map(|d| &d.at_threshold);
    render(
        &Roc {
            points,
            auroc: detection.map(|d| d.auroc),
            at_threshold: at.map(|c| (c.false_positive_rate(), c.recall)),
        },
        &path("roc"),
        format,
    )?;
    let truth = inputs.scores.is_outlier.as_deref().unwrap_or_default();
    render(
        &PrecisionRecall {
            points,
            average_precision: detection.map(|d| d.average_precision),
            base_rate: truth.iter().filter(|&&t| t).count() as f64 / truth.len().max(1) as f64,
            at_threshold: at.map(|c| (c.recall, c.precision)),
        },
        &path("precision_recall"),
        format,
    )?;
    render(
        &ScoreDistributions {
            scores: &inputs.scores.values,
            score_name: &inputs.score_name(),
            truth,
            threshold: inputs.metrics.threshold,
        },
        &path("score_distributions"),
        format,
    )
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use ae_store::{
        CompactSplit, Confusion, Detection, EpochRecord, FitSummary, History, IMAGE_PIXELS,
        LabelCounts, Metrics, OperatingPoint, Pixels, RocCurve, Score, Summary, ThresholdRule,
        ThresholdSource,
    };
    use ae_tables::ScoresTable;

    use super::*;

    fn synthetic_inputs(n: usize) -> ReportInputs {
        let images: Vec<f32> = (0..n * IMAGE_PIXELS)
            .map(|i| ((i * 13) % 255) as f32 / 255.0)
            .collect();
        let decoded: Vec<f32> = images.iter().map(|v| 1.0 - v).collect();
        let mse: Vec<f32> = (0..n).map(|i| 0.01 + 0.001 * i as f32).collect();
        let threshold = 0.02;
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let summary = Summary {
            mean: 0.015,
            median: 0.015,
            std: 0.003,
            max: 0.03,
        };
        ReportInputs {
            originals: (0..n)
                .map(|i| (i, images[i * IMAGE_PIXELS..][..IMAGE_PIXELS].to_vec()))
                .collect(),
            reconstructions: (0..n)
                .map(|i| (i, decoded[i * IMAGE_PIXELS..][..IMAGE_PIXELS].to_vec()))
                .collect(),
            test: CompactSplit {
                pixels: Pixels::Floats(images),
                labels: Some(labels.clone()),
                label_names: None,
                is_outlier: None,
            },
            scores: ScoresTable {
                score: Score::Mse,
                labels: Some(labels),
                is_anomaly: mse.iter().map(|&m| f64::from(m) > threshold).collect(),
                values: mse,
                is_outlier: None,
            },
            metrics: Metrics {
                score: Score::Mse,
                rule: ThresholdRule::MeanMultiple,
                parameter: 2.0,
                source: ThresholdSource::Test,
                threshold,
                source_scores: summary,
                images: n,
                scores: summary,
                anomalies: 9,
                anomaly_rate: 0.45,
                per_label: (0..10)
                    .map(|label| LabelCounts {
                        label,
                        name: None,
                        images: 2,
                        anomalies: usize::from(label % 3 == 0),
                        anomaly_rate: f64::from(u8::from(label % 3 == 0)) / 2.0,
                    })
                    .collect(),
                top_indices: (0..n as u32).rev().collect(),
                detection: None,
            },
            history: History {
                epochs: (1..=5)
                    .map(|e| EpochRecord {
                        epoch: e,
                        loss: 0.1 / f64::from(e),
                        val_loss: 0.09 / f64::from(e),
                        seconds: 0.5,
                    })
                    .collect(),
            },
            fit: FitSummary {
                epochs_run: 5,
                max_epochs: 10,
                kept_epoch: 3,
                kept_val_loss: 0.03,
                validated_on: "validation".into(),
                stopped_early: true,
                reason: "early stopping".into(),
            },
            roc: None,
            config_text: "name = \"<synthetic>\"".into(),
        }
    }

    /// Width, height and number of distinct colours of a PNG.
    fn png_stats(path: &std::path::Path) -> (u32, u32, usize) {
        let mut reader = png::Decoder::new(File::open(path).expect("png"))
            .read_info()
            .expect("header");
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).expect("pixels");
        let mut colours: Vec<&[u8]> = buf[..info.buffer_size()].chunks_exact(3).collect();
        colours.sort_unstable();
        colours.dedup();
        (info.width, info.height, colours.len())
    }

    #[test]
    fn every_figure_renders_with_text_and_the_page_links_them() {
        let inputs = synthetic_inputs(20);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = |stem: &str| dir.path().join(format!("{stem}.png"));
        let cfg = ReportConfig {
            top_anomalies: 7,
            ..ReportConfig::default()
        };
        draw_figures(&inputs, &cfg, &path).expect("draw");
        for (stem, size) in [
            (
                "reconstructions",
                Reconstructions::first(&inputs, 10).size(),
            ),
            ("loss", (960, 540)),
            ("mse_hist", (960, 540)),
            ("top_anomalies", TopAnomalies::highest(&inputs, 7).size()),
            ("anomaly_rate_by_label", (960, 540)),
        ] {
            let (w, h, colours) = png_stats(&path(stem));
            assert_eq!((w, h), size, "{stem}");
            // Anti-aliased text and lines give many shades; a blank or
            // text-less image has a handful.
            assert!(colours > 16, "{stem} has only {colours} colours");
        }
        for (stem, _) in TRUTH_FIGURES {
            assert!(!path(stem).exists(), "{stem} needs ground truth");
        }
        // The top-anomalies grid shows metrics.json's order, not its own.
        let top = TopAnomalies::highest(&inputs, 7);
        assert_eq!(
            top.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
            [19, 18, 17, 16, 15, 14, 13]
        );
        let mut reordered = synthetic_inputs(20);
        reordered.metrics.top_indices = vec![3, 1, 4];
        let top = TopAnomalies::highest(&reordered, 7);
        assert_eq!(
            top.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
            [3, 1, 4]
        );

        let page = html::page(&inputs, "<run>", "png");
        for (stem, _) in FIGURES {
            assert!(page.contains(&format!("<img src=\"{stem}.png\"")), "{stem}");
        }
        assert!(
            page.contains("ae report: &lt;run&gt;"),
            "the name is escaped"
        );
        assert!(
            page.contains("name = &quot;&lt;synthetic&gt;&quot;"),
            "the config is escaped"
        );
    }

    #[test]
    fn ground_truth_figures_render_and_the_page_shows_the_metrics() {
        let mut inputs = synthetic_inputs(20);
        // The higher half of the scores are the true anomalies, but one.
        let truth: Vec<bool> = (0..20).map(|i| i >= 10 && i != 12).collect();
        inputs.scores.is_outlier = Some(truth);
        let confusion = |threshold: f64| Confusion {
            threshold,
            true_positives: 9,
            false_positives: 1,
            true_negatives: 9,
            false_negatives: 1,
            precision: 0.9,
            recall: 0.9,
            f1: 0.9,
        };
        inputs.metrics.detection = Some(Detection {
            true_anomalies: 9,
            true_normal: 11,
            auroc: 0.95,
            average_precision: 0.9,
            at_threshold: confusion(0.02),
            best_f1: confusion(0.019),
        });
        let point = |fpr: f64, tpr: f64| OperatingPoint {
            score: 1.0 - fpr,
            false_positive_rate: fpr,
            true_positive_rate: tpr,
            precision: tpr / (tpr + fpr),
        };
        inputs.roc = Some(RocCurve {
            points: vec![point(0.0, 0.5), point(0.1, 0.9), point(1.0, 1.0)],
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let path = |stem: &str| dir.path().join(format!("{stem}.png"));
        draw_figures(&inputs, &ReportConfig::default(), &path).expect("draw");
        for (stem, _) in TRUTH_FIGURES {
            let (_, _, colours) = png_stats(&path(stem));
            assert!(colours > 16, "{stem} has only {colours} colours");
        }
        let page = html::page(&inputs, "run", "png");
        assert!(page.contains("<img src=\"roc.png\""));
        assert!(page.contains("0.9500, 0.9000"), "AUROC and AP on the page");
    }

    #[test]
    fn svg_figures_hold_text() {
        let inputs = synthetic_inputs(20);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("loss.svg");
        render(
            &LossCurves {
                history: &inputs.history,
                fit: &inputs.fit,
            },
            &path,
            FigureFormat::Svg,
        )
        .expect("draw");
        let svg = std::fs::read_to_string(&path).expect("svg");
        assert!(
            svg.starts_with("<svg") && svg.contains("Validation loss"),
            "{}",
            &svg[..200.min(svg.len())]
        );
    }

    #[test]
    fn the_declared_outputs_are_the_files_a_run_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inputs = synthetic_inputs(20);
        for format in [FigureFormat::Png, FigureFormat::Svg] {
            let cfg = StageConfig {
                report: ReportConfig {
                    format,
                    ..ReportConfig::default()
                },
                name: "x".into(),
                ground_truth: false,
                resolved_config: String::new(),
            };
            let run = RunDir::new(dir.path().join(format.extension()));
            draw_figures(&inputs, &cfg.report, &|stem| {
                run.path(&figure_file(stem, format))
            })
            .expect("draw");
            std::fs::write(run.path(files::REPORT_INDEX), "").expect("index");
            let mut written: Vec<String> = std::fs::read_dir(run.path(files::REPORT_DIR))
                .expect("list")
                .map(|e| format!("report/{}", e.expect("entry").file_name().to_string_lossy()))
                .collect();
            written.sort();
            let mut declared = ReportStage::outputs(&cfg);
            declared.sort();
            assert_eq!(written, declared);
        }
    }
}
