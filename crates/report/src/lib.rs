//! The `report` stage: figures a person would rather look at, and a page
//! that shows them with the key numbers.
//!
//! Reads the test split, `infer/decoded.safetensors`, `eval/scores.parquet`
//! (with polars), `eval/metrics.json`, `train/history.csv` and the resolved
//! `config.toml`; writes into `report/`: `reconstructions`, `loss`,
//! `mse_hist`, `top_anomalies` and `anomaly_rate_by_label` as PNG or SVG,
//! and `index.html`, which opens from disk with the figures beside it.
//!
//! Text renders with a font compiled into the binary (DejaVu Sans, see
//! `assets/`), so a machine without font libraries draws the same figures.

mod config;
mod figures;
mod html;
mod inputs;
mod render;
mod sweep;
mod truth;

use std::path::PathBuf;

use ae_store::{RunDir, StoreError, files};

pub use config::{FigureFormat, ReportConfig};
pub use figures::{
    AnomalyRateByLabel, LossCurves, MseHistogram, Reconstructions, Shown, TopAnomalies,
};
pub use html::FIGURES;
pub use inputs::{INPUTS, ReportInputs};
pub use render::{Figure, render};
pub use sweep::{SweepCurves, SweepMetric};
pub use truth::{PrecisionRecall, RocCurve, ScoreDistributions, TRUTH_FIGURES, operating_points};

/// Why the report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// An input could not be read or an output written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An input is not what its stage writes.
    #[error("{} cannot be used for the report: {message}", path.display())]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// plotters could not draw a figure.
    #[error("cannot draw {}: {message}", path.display())]
    Draw {
        /// The figure's file.
        path: PathBuf,
        /// What plotters reported.
        message: String,
    },
}

/// What the report stage wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportArtifacts {
    /// The files written, relative to the run directory.
    pub outputs: Vec<String>,
    /// The page.
    pub index: PathBuf,
}

/// The files the report stage writes for `cfg`, relative to the run
/// directory; `ground_truth` when the test split says which images are anomalies.
pub fn outputs(cfg: &ReportConfig, ground_truth: bool) -> Vec<String> {
    let truth: &[(&str, &str)] = if ground_truth { &TRUTH_FIGURES } else { &[] };
    FIGURES
        .iter()
        .chain(truth)
        .map(|(stem, _)| format!("{}/{stem}.{}", files::REPORT_DIR, cfg.format.extension()))
        .chain([files::REPORT_INDEX.to_string()])
        .collect()
}

/// Runs the report stage in `run`; `run_name` titles the page.
pub fn run(
    cfg: &ReportConfig,
    run: &RunDir,
    run_name: &str,
) -> Result<ReportArtifacts, ReportError> {
    let inputs = ReportInputs::read(run)?;
    let path = |stem: &str| {
        run.path(&format!(
            "{}/{stem}.{}",
            files::REPORT_DIR,
            cfg.format.extension()
        ))
    };
    let m = &inputs.metrics;
    render(
        &Reconstructions::first(&inputs, cfg.examples),
        &path("reconstructions"),
        cfg.format,
    )?;
    render(
        &LossCurves {
            history: &inputs.history,
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
            anomalies: inputs.scores.is_anomaly.iter().filter(|&&a| a).count(),
        },
        &path("mse_hist"),
        cfg.format,
    )?;
    render(
        &TopAnomalies::highest(&inputs, cfg.top_anomalies),
        &path("top_anomalies"),
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
    if let Some(truth) = &inputs.test.is_outlier {
        draw_truth_figures(&inputs, truth, &path, cfg.format)?;
    }
    let index = run.path(files::REPORT_INDEX);
    let page = html::page(&inputs, run_name, cfg.format.extension());
    ae_store::write_atomic(&index, |out| out.write_all(page.as_bytes()))?;
    Ok(ReportArtifacts {
        outputs: outputs(cfg, inputs.test.is_outlier.is_some()),
        index,
    })
}

/// The ROC and precision-recall curves and the score distributions.
fn draw_truth_figures(
    inputs: &ReportInputs,
    truth: &[bool],
    path: &dyn Fn(&str) -> PathBuf,
    format: FigureFormat,
) -> Result<(), ReportError> {
    let points = operating_points(&inputs.scores.values, truth);
    let detection = inputs.metrics.detection.as_ref();
    let at = detection.map(|d| &d.at_threshold);
    let false_positive_rate = |c: &inputs::ConfusionView| {
        c.false_positives as f64 / (c.false_positives + c.true_negatives).max(1) as f64
    };
    render(
        &RocCurve {
            points: &points,
            auroc: detection.map(|d| d.auroc),
            at_threshold: at.map(|c| (false_positive_rate(c), c.recall)),
        },
        &path("roc"),
        format,
    )?;
    render(
        &PrecisionRecall {
            points: &points,
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

    use ae_store::{IMAGE_PIXELS, Split};

    use super::inputs::{LabelView, MetricsView, Scores, SummaryView};
    use super::*;

    fn synthetic_inputs(n: usize) -> ReportInputs {
        let images: Vec<f32> = (0..n * IMAGE_PIXELS)
            .map(|i| ((i * 13) % 255) as f32 / 255.0)
            .collect();
        let decoded: Vec<f32> = images.iter().map(|v| 1.0 - v).collect();
        let mse: Vec<f32> = (0..n).map(|i| 0.01 + 0.001 * i as f32).collect();
        let threshold = 0.02;
        ReportInputs {
            test: Split {
                images,
                labels: (0..n).map(|i| (i % 10) as u8).collect(),
                is_outlier: None,
            },
            decoded,
            scores: Scores {
                is_anomaly: mse.iter().map(|&m| f64::from(m) > threshold).collect(),
                values: mse,
            },
            metrics: MetricsView {
                rule: "mean_multiple".into(),
                parameter: 2.0,
                source: "test".into(),
                threshold,
                images: n,
                score: "mse".into(),
                scores: SummaryView {
                    mean: 0.015,
                    median: 0.015,
                    std: 0.003,
                    max: 0.03,
                },
                anomalies: 9,
                anomaly_rate: 0.45,
                per_label: (0..10)
                    .map(|label| LabelView {
                        label,
                        images: 2,
                        anomalies: usize::from(label % 3 == 0),
                        anomaly_rate: f64::from(u8::from(label % 3 == 0)) / 2.0,
                    })
                    .collect(),
                top_indices: (0..n as u32).rev().collect(),
                detection: None,
            },
            history: (1..=5)
                .map(|e| (e, 0.1 / f64::from(e), 0.09 / f64::from(e)))
                .collect(),
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
        render(
            &Reconstructions::first(&inputs, 10),
            &path("reconstructions"),
            FigureFormat::Png,
        )
        .expect("draw");
        render(
            &LossCurves {
                history: &inputs.history,
            },
            &path("loss"),
            FigureFormat::Png,
        )
        .expect("draw");
        let hist = MseHistogram {
            scores: &inputs.scores.values,
            score_name: "MSE",
            threshold: 0.02,
            anomalies: 9,
        };
        render(&hist, &path("mse_hist"), FigureFormat::Png).expect("draw");
        render(
            &TopAnomalies::highest(&inputs, 7),
            &path("top_anomalies"),
            FigureFormat::Png,
        )
        .expect("draw");
        let rates = AnomalyRateByLabel {
            per_label: &inputs.metrics.per_label,
            threshold: 0.02,
        };
        render(&rates, &path("anomaly_rate_by_label"), FigureFormat::Png).expect("draw");

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
        // The worst-first order and the top-anomalies grid of 7: two rows of five.
        let top = TopAnomalies::highest(&inputs, 7);
        assert_eq!(
            top.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
            [19, 18, 17, 16, 15, 14, 13]
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
        inputs.test.is_outlier = Some(truth.clone());
        let confusion = |threshold: f64| inputs::ConfusionView {
            threshold,
            true_positives: 9,
            false_positives: 1,
            true_negatives: 9,
            false_negatives: 1,
            precision: 0.9,
            recall: 0.9,
            f1: 0.9,
        };
        inputs.metrics.detection = Some(inputs::DetectionView {
            true_anomalies: 9,
            true_normal: 11,
            auroc: 0.95,
            average_precision: 0.9,
            at_threshold: confusion(0.02),
            best_f1: confusion(0.019),
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let path = |stem: &str| dir.path().join(format!("{stem}.png"));
        draw_truth_figures(&inputs, &truth, &path, FigureFormat::Png).expect("draw");
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
}
