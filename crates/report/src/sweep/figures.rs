//! The figures of a sweep summary (drawn by `ae sweep`, not by the report stage): every
//! point's validation curve, and a metric against one varied parameter.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::chart::{DrawResult, FONT, category_label, draw_legend, whole_numbers_only};
use crate::render::Figure;

/// Ten distinguishable colours (matplotlib's "tab10"), reused in turn.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Points beyond this many are drawn but not named in the legend.
const LEGEND_ENTRIES: usize = 12;

/// Every point's validation loss per epoch, on one chart.
pub struct SweepCurves<'a> {
    /// (point name, [(epoch, val_loss)]).
    pub curves: &'a [(String, Vec<(u32, f64)>)],
}

impl Figure for SweepCurves<'_> {
    fn size(&self) -> (u32, u32) {
        (1100, 620)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let epochs = self
            .curves
            .iter()
            .map(|(_, c)| c.len())
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let (lo, hi) = range(self.curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.1)));
        let mut chart = ChartBuilder::on(root)
            .caption("Validation loss of every point", (FONT, 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(
                0.5..epochs + 0.5,
                lo - (hi - lo) * 0.05..hi + (hi - lo) * 0.05 + 1e-12,
            )?;
        chart
            .configure_mesh()
            .x_desc("Epoch")
            .y_desc("Validation loss (MSE)")
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .y_label_formatter(&|v| format!("{v:.4}"))
            .x_labels((epochs as usize).clamp(2, 12))
            .x_label_formatter(&whole_numbers_only)
            .draw()?;
        for (i, (name, curve)) in self.curves.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let series = chart.draw_series(LineSeries::new(
                curve.iter().map(|&(e, v)| (f64::from(e), v)),
                color.stroke_width(2),
            ))?;
            if i < LEGEND_ENTRIES {
                series.label(name.as_str()).legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 24, y)], color.stroke_width(2))
                });
            }
        }
        draw_legend(&mut chart)
    }
}

/// A metric of every point against one varied parameter: each value of the
/// parameter is a column, each point a dot in it, the mean a bar.
pub struct SweepMetric<'a> {
    /// The dotted config key.
    pub parameter: &'a str,
    /// The metric's name.
    pub metric: &'a str,
    /// The parameter's values, as labels, in order.
    pub categories: &'a [String],
    /// (index into `categories`, metric) per point.
    pub points: &'a [(usize, f64)],
}

impl Figure for SweepMetric<'_> {
    fn size(&self) -> (u32, u32) {
        (900, 540)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let columns = self.categories.len().max(1) as f64;
        let (lo, hi) = range(self.points.iter().map(|p| p.1));
        let pad = ((hi - lo) * 0.15).max(hi.abs() * 0.01).max(1e-12);
        let caption = format!(
            "{} by {} (dots: points; bars: means)",
            self.metric, self.parameter
        );
        let mut chart = ChartBuilder::on(root)
            .caption(caption, (FONT, 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(90)
            .build_cartesian_2d(-0.5..columns - 0.5, lo - pad..hi + pad)?;
        let names = self.categories;
        let precise = hi.abs() < 10.0;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(self.parameter)
            .y_desc(self.metric)
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .x_labels(names.len().max(2))
            .x_label_formatter(&|v| category_label(names, *v))
            .y_label_formatter(&|v| {
                if precise {
                    format!("{v:.5}")
                } else {
                    format!("{v:.0}")
                }
            })
            .draw()?;
        let color = PALETTE[0];
        for (column, _) in names.iter().enumerate() {
            let values: Vec<f64> = self
                .points
                .iter()
                .filter(|p| p.0 == column)
                .map(|p| p.1)
                .collect();
            if values.is_empty() {
                continue;
            }
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let x = column as f64;
            chart.draw_series([PathElement::new(
                [(x - 0.3, mean), (x + 0.3, mean)],
                PALETTE[1].stroke_width(3),
            )])?;
            chart.draw_series(
                values
                    .iter()
                    .map(|&v| Circle::new((x, v), 5, color.filled())),
            )?;
        }
        Ok(())
    }
}

/// The smallest and largest finite values, or (0, 1) when there are none.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
}
