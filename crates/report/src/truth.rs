//! The figures of an experiment with ground truth (`data.normal_labels` or
//! `data.outliers`): the ROC curve, the precision-recall curve, and the
//! score distributions of normal and anomalous test images.

use ae_store::OperatingPoint;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::chart::{
    Axis, BLUE, Bins, Coords, DrawResult, FONT, GREY, ORANGE, THRESHOLD_COLOR, draw_legend,
    draw_legend_at, draw_threshold, labelled_chart, score_chart,
};
use crate::render::Figure;

const CURVE_COLOR: RGBColor = BLUE;
const CHANCE_COLOR: RGBColor = GREY;
const ANOMALY_COLOR: RGBColor = ORANGE;

/// The ground-truth figures: file stem and caption, in page order.
pub const TRUTH_FIGURES: [(&str, &str); 3] = [
    (
        "roc",
        "ROC curve: true against false positive rate as the threshold falls",
    ),
    (
        "precision_recall",
        "Precision against recall as the threshold falls",
    ),
    (
        "score_distributions",
        "Reconstruction error of normal and truly anomalous test images, with the threshold",
    ),
];

/// The ROC curve, with chance as a diagonal and the threshold's point.
pub struct Roc<'a> {
    /// From `eval/roc.csv`, highest score first.
    pub points: &'a [OperatingPoint],
    /// Its area, from `metrics.json`.
    pub auroc: Option<f64>,
    /// (false positive rate, true positive rate) at the configured threshold.
    pub at_threshold: Option<(f64, f64)>,
}

/// Precision against recall, with the anomaly share as the chance level.
pub struct PrecisionRecall<'a> {
    /// From `eval/roc.csv`, highest score first.
    pub points: &'a [OperatingPoint],
    /// Average precision, from `metrics.json`.
    pub average_precision: Option<f64>,
    /// The share of anomalies: a random ranking's precision.
    pub base_rate: f64,
    /// (recall, precision) at the configured threshold.
    pub at_threshold: Option<(f64, f64)>,
}

/// Overlaid histograms of the scores of normal and anomalous test images.
pub struct ScoreDistributions<'a> {
    /// Every test image's score.
    pub scores: &'a [f32],
    /// `MSE` or `MAE`.
    pub score_name: &'a str,
    /// Whether each is truly an anomaly.
    pub truth: &'a [bool],
    /// The configured threshold.
    pub threshold: f64,
}

/// A unit-square chart with a title, axes and a legend entry per series.
fn unit_chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    caption: &str,
    x: &str,
    y: &str,
) -> Result<ChartContext<'a, DB, Coords>, DrawingAreaErrorKind<DB::ErrorType>> {
    let axis = |desc| Axis {
        desc,
        range: 0.0..1.0,
        digits: 1,
    };
    let y = Axis {
        range: 0.0..1.02,
        ..axis(y)
    };
    labelled_chart(root, caption, axis(x), y)
}

fn one_class_note<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
    root.draw(&Text::new(
        "undefined: the ground truth of this test split has only one class".to_string(),
        (120, 260),
        (FONT, 20).into_font().color(&BLACK),
    ))
}

fn marker<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Coords>,
    at: Option<(f64, f64)>,
) -> DrawResult<DB> {
    if let Some(point) = at {
        chart
            .draw_series([Circle::new(point, 7, THRESHOLD_COLOR.filled())])?
            .label("the configured threshold")
            .legend(|(x, y)| Circle::new((x + 12, y), 6, THRESHOLD_COLOR.filled()));
    }
    Ok(())
}

impl Figure for Roc<'_> {
    fn size(&self) -> (u32, u32) {
        (700, 620)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let caption = match self.auroc {
            Some(a) => format!("ROC curve (AUROC {a:.4})"),
            None => "ROC curve".to_string(),
        };
        let mut chart = unit_chart(
            root,
            &caption,
            "False positive rate",
            "True positive rate (recall)",
        )?;
        if self.points.is_empty() {
            return one_class_note(root);
        }
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                CHANCE_COLOR.stroke_width(1),
            ))?
            .label("chance")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], CHANCE_COLOR));
        chart
            .draw_series(LineSeries::new(
                std::iter::once((0.0, 0.0)).chain(
                    self.points
                        .iter()
                        .map(|p| (p.false_positive_rate, p.true_positive_rate)),
                ),
                CURVE_COLOR.stroke_width(2),
            ))?
            .label("this model")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], CURVE_COLOR.stroke_width(2)));
        marker(&mut chart, self.at_threshold)?;
        draw_legend_at(&mut chart, SeriesLabelPosition::LowerRight)
    }
}

impl Figure for PrecisionRecall<'_> {
    fn size(&self) -> (u32, u32) {
        (700, 620)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let caption = match self.average_precision {
            Some(ap) => format!("Precision-recall (average precision {ap:.4})"),
            None => "Precision-recall".to_string(),
        };
        let mut chart = unit_chart(root, &caption, "Recall", "Precision")?;
        if self.points.is_empty() {
            return one_class_note(root);
        }
        let base = self.base_rate;
        chart
            .draw_series(LineSeries::new(
                [(0.0, base), (1.0, base)],
                CHANCE_COLOR.stroke_width(1),
            ))?
            .label(format!("chance ({:.1} % anomalies)", 100.0 * base))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], CHANCE_COLOR));
        chart
            .draw_series(LineSeries::new(
                self.points
                    .iter()
                    .map(|p| (p.true_positive_rate, p.precision)),
                CURVE_COLOR.stroke_width(2),
            ))?
            .label("this model")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], CURVE_COLOR.stroke_width(2)));
        marker(&mut chart, self.at_threshold)?;
        draw_legend_at(&mut chart, SeriesLabelPosition::LowerLeft)
    }
}

impl Figure for ScoreDistributions<'_> {
    fn size(&self) -> (u32, u32) {
        (960, 540)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let bins = Bins::covering(self.scores, self.threshold);
        // Shares of each class per bin, so a small class is as visible as a large one.
        let mut shares = [vec![0.0f64; Bins::COUNT], vec![0.0f64; Bins::COUNT]];
        let totals = [
            self.truth.iter().filter(|&&t| !t).count().max(1) as f64,
            self.truth.iter().filter(|&&t| t).count().max(1) as f64,
        ];
        for (&s, &t) in self.scores.iter().zip(self.truth) {
            shares[usize::from(t)][bins.of(s)] += 100.0 / totals[usize::from(t)];
        }
        let top = shares.iter().flatten().copied().fold(1.0f64, f64::max) * 1.08;
        let mut chart = score_chart(
            root,
            "Reconstruction error by ground truth",
            self.score_name,
            "% of the class's test images",
            &bins,
            top,
        )?;
        let names = [
            format!("normal ({:.0} images)", totals[0]),
            format!("anomalous ({:.0} images)", totals[1]),
        ];
        for ((class, color), name) in [CURVE_COLOR, ANOMALY_COLOR]
            .into_iter()
            .enumerate()
            .zip(names)
        {
            chart
                .draw_series(shares[class].iter().enumerate().map(|(i, &share)| {
                    let x0 = i as f64 * bins.width;
                    Rectangle::new(
                        [(x0, 0.0), (x0 + bins.width, share)],
                        color.mix(0.5).filled(),
                    )
                }))?
                .label(name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 20, y + 6)], color.mix(0.5).filled())
                });
        }
        draw_threshold(&mut chart, self.threshold, top)?;
        draw_legend(&mut chart)
    }
}
