//! `report/index.html`: one page with the key figures and the resolved
//! config, opening from disk with the figures beside it.

use std::fmt::Write as _;

use crate::inputs::ReportInputs;

/// The figures in page order: file stem and caption.
pub const FIGURES: [(&str, &str); 6] = [
    (
        "reconstructions",
        "The first test images and their reconstructions",
    ),
    ("loss", "Training and validation loss per epoch"),
    (
        "mse_hist",
        "Distribution of the reconstruction error, with the threshold",
    ),
    ("top_anomalies", "The test images reconstructed worst"),
    (
        "top_error_maps",
        "Why the worst were flagged: original, reconstruction and squared error",
    ),
    ("anomaly_rate_by_label", "Anomaly rate by label"),
];

/// The page, linking the figures as `<stem>.<extension>`.
pub(crate) fn page(inputs: &ReportInputs, run_name: &str, extension: &str) -> String {
    let m = &inputs.metrics;
    let last = inputs.history.last();
    let mut rows = String::new();
    let mut row = |k: &str, v: String| {
        let _ = writeln!(
            rows,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(k),
            escape(&v)
        );
    };
    row(
        "Anomalies",
        format!(
            "{} of {} test images ({:.2} %)",
            m.anomalies,
            m.images,
            100.0 * m.anomaly_rate
        ),
    );
    row(
        "Threshold",
        format!(
            "{} ({} with {} on the {} split)",
            ae_store::readable(m.threshold, 6),
            m.rule.name(),
            m.parameter,
            m.source.name()
        ),
    );
    row(
        &format!("Test {}", m.score.name()),
        format!(
            "mean {:.6}, median {:.6}, std {:.6}, max {:.6}",
            m.scores.mean, m.scores.median, m.scores.std, m.scores.max
        ),
    );
    if let Some(last) = last {
        row(
            "Final loss",
            format!(
                "{:.6} (validation {:.6}) after {} epochs",
                last.loss, last.val_loss, last.epoch
            ),
        );
    }
    if let Some(d) = &m.detection {
        row(
            "Ground truth",
            format!(
                "{} anomalies, {} normal test images",
                d.true_anomalies, d.true_normal
            ),
        );
        row(
            "AUROC, average precision",
            format!("{:.4}, {:.4}", d.auroc, d.average_precision),
        );
        let at = &d.at_threshold;
        row(
            "At the threshold",
            format!(
                "precision {:.3}, recall {:.3}, F1 {:.3} (tp {}, fp {}, tn {}, fn {})",
                at.precision,
                at.recall,
                at.f1,
                at.true_positives,
                at.false_positives,
                at.true_negatives,
                at.false_negatives
            ),
        );
        row(
            "Best F1 (chosen on the test labels)",
            format!(
                "{:.3} at threshold {}",
                d.best_f1.f1,
                ae_store::readable(d.best_f1.threshold, 6)
            ),
        );
    }
    let mut labels = String::new();
    for l in &m.per_label {
        let _ = writeln!(
            labels,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.2} %</td></tr>",
            escape(&l.shown()),
            l.images,
            l.anomalies,
            100.0 * l.anomaly_rate
        );
    }
    let mut figures = String::new();
    let truth: &[(&str, &str)] = if inputs.roc.is_some() {
        &crate::TRUTH_FIGURES
    } else {
        &[]
    };
    for (stem, caption) in FIGURES.iter().chain(truth) {
        let _ = writeln!(
            figures,
            "<figure><img src=\"{stem}.{extension}\" alt=\"{caption}\"><figcaption>{caption}</figcaption></figure>"
        );
    }
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ae report: {name}</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ text-align: left; padding: 0.3em 0.8em; border-bottom: 1px solid #ddd; }}
figure {{ margin: 2em 0; }}
img {{ max-width: 100%; border: 1px solid #eee; }}
figcaption {{ color: #555; font-size: 0.9em; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; }}
</style>
</head>
<body>
<h1>ae report: {name}</h1>
<p>Found {anomalies} anomalies!</p>
<table>
{rows}</table>
{figures}<h2>Anomalies by label</h2>
<table>
<tr><th>label</th><th>images</th><th>anomalies</th><th>rate</th></tr>
{labels}</table>
<h2>Resolved config</h2>
<pre>{config}</pre>
</body>
</html>
"#,
        name = escape(run_name),
        anomalies = m.anomalies,
        config = escape(&inputs.config_text),
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
