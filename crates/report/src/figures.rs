//! The report's figures, each a [`Figure`] over borrowed inputs.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::inputs::{LabelView, ReportInputs};
use crate::render::{Figure, draw_digit};

pub(crate) const FONT: &str = "sans-serif";
const TRAIN_COLOR: RGBColor = RGBColor(31, 119, 180);
const VAL_COLOR: RGBColor = RGBColor(255, 127, 14);
pub(crate) const THRESHOLD_COLOR: RGBColor = RGBColor(214, 39, 40);
const BAR_COLOR: RGBColor = RGBColor(31, 119, 180);
const SIDE: i32 = ae_store::IMAGE_SIDE as i32;

pub(crate) type DrawResult<DB> =
    Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &str,
    at: (i32, i32),
    size: f64,
) -> DrawResult<DB> {
    area.draw(&Text::new(
        s.to_string(),
        at,
        (FONT, size).into_font().color(&BLACK),
    ))
}

/// The legend box in the upper right, the same on every chart.
pub(crate) fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> DrawResult<DB> {
    draw_legend_at(chart, SeriesLabelPosition::UpperRight)
}

/// The legend box at `position`.
pub(crate) fn draw_legend_at<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult<DB> {
    chart
        .configure_series_labels()
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .position(position)
        .draw()
}

/// The charts' coordinates: f64 on both axes.
pub(crate) type Coords =
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>;

/// The bins of a histogram of scores, wide enough to show the threshold too.
pub(crate) struct Bins {
    /// The right end of the x axis.
    pub max: f64,
    /// The width of one bin.
    pub width: f64,
}

impl Bins {
    /// How many bins every score histogram has.
    pub const COUNT: usize = 80;

    /// Bins covering `scores` and `threshold`.
    pub fn covering(scores: &[f32], threshold: f64) -> Self {
        let max = scores.iter().fold(threshold, |m, &s| m.max(f64::from(s))) * 1.02;
        Self {
            max,
            width: max / Self::COUNT as f64,
        }
    }

    /// The bin of `score`.
    pub fn of(&self, score: f32) -> usize {
        ((f64::from(score) / self.width) as usize).min(Self::COUNT - 1)
    }
}

/// One axis of a [`labelled_chart`]: its description, range and the
/// decimals of its tick labels.
pub(crate) struct Axis<'s> {
    pub desc: &'s str,
    pub range: std::ops::Range<f64>,
    pub digits: usize,
}

/// A captioned chart with described, labelled axes, in the report's style.
pub(crate) fn labelled_chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    caption: &str,
    x: Axis<'_>,
    y: Axis<'_>,
) -> Result<ChartContext<'a, DB, Coords>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT, 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(70)
        .build_cartesian_2d(x.range, y.range)?;
    let (x_digits, y_digits) = (x.digits, y.digits);
    chart
        .configure_mesh()
        .x_desc(x.desc)
        .y_desc(y.desc)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .x_label_formatter(&|v| format!("{v:.x_digits$}"))
        .y_label_formatter(&|v| format!("{v:.y_digits$}"))
        .draw()?;
    Ok(chart)
}

/// A chart with the score along x (up to `bins.max`) and `y_desc` up to `top`.
pub(crate) fn score_chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    caption: &str,
    score_name: &str,
    y_desc: &str,
    bins: &Bins,
    top: f64,
) -> Result<ChartContext<'a, DB, Coords>, DrawingAreaErrorKind<DB::ErrorType>> {
    let x_desc = format!("Reconstruction {score_name}");
    let x = Axis {
        desc: &x_desc,
        range: 0.0..bins.max,
        digits: 3,
    };
    let y = Axis {
        desc: y_desc,
        range: 0.0..top,
        digits: 0,
    };
    labelled_chart(root, caption, x, y)
}

/// The threshold as a vertical line up to `top`, with its legend entry.
pub(crate) fn draw_threshold<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Coords>,
    threshold: f64,
    top: f64,
) -> DrawResult<DB> {
    chart
        .draw_series(LineSeries::new(
            [(threshold, 0.0), (threshold, top)],
            THRESHOLD_COLOR.stroke_width(3),
        ))?
        .label(format!("threshold {threshold:.4}"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], THRESHOLD_COLOR.stroke_width(3)));
    Ok(())
}

/// The name of category `v` on an axis of categories at 0, 1, 2, ...;
/// blank between them.
pub(crate) fn category_label(names: &[String], v: f64) -> String {
    let i = v.round();
    if (v - i).abs() < 1e-6 && i >= 0.0 {
        names.get(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// Axis labels at whole numbers only (epochs), blank elsewhere.
pub(crate) fn whole_numbers_only(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        String::new()
    }
}

/// One test image shown in a figure.
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a> {
    /// Its position in the test split.
    pub index: usize,
    /// Its class.
    pub label: u8,
    /// Its score (reconstruction MSE by default).
    pub score: f32,
    /// Its pixels.
    pub original: &'a [f32],
    /// Its reconstruction's pixels.
    pub reconstruction: &'a [f32],
}

impl<'a> Shown<'a> {
    /// Test image `index` of `inputs`.
    pub fn of(inputs: &'a ReportInputs, index: usize) -> Self {
        let pixels = index * ae_store::IMAGE_PIXELS..(index + 1) * ae_store::IMAGE_PIXELS;
        Self {
            index,
            label: inputs.test.labels[index],
            score: inputs.scores.values[index],
            original: inputs.test.image(index),
            reconstruction: &inputs.decoded[pixels],
        }
    }
}

/// The seed's figure: the first test images over their reconstructions.
pub struct Reconstructions<'a> {
    /// The images shown, left to right.
    pub images: Vec<Shown<'a>>,
    /// `MSE` or `MAE`, for the title.
    pub score_name: String,
}

impl<'a> Reconstructions<'a> {
    const SCALE: i32 = 3;
    const CELL: i32 = SIDE * Self::SCALE + 10;
    const LEFT: i32 = 150;
    const TOP: i32 = 44;

    /// The first `n` test images.
    pub fn first(inputs: &'a ReportInputs, n: usize) -> Self {
        let n = n.min(inputs.test.len());
        Self {
            images: (0..n).map(|i| Shown::of(inputs, i)).collect(),
            score_name: inputs.score_name(),
        }
    }
}

impl Figure for Reconstructions<'_> {
    fn size(&self) -> (u32, u32) {
        let n = self.images.len() as i32;
        (
            (Self::LEFT + n * Self::CELL + 10) as u32,
            (Self::TOP + 2 * Self::CELL + 34) as u32,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let title = format!(
            "Test images (top) and their reconstructions (bottom), with label: reconstruction {}",
            self.score_name
        );
        text(root, &title, (10, 10), 20.0)?;
        text(root, "original", (10, Self::TOP + 36), 17.0)?;
        text(
            root,
            "reconstructed",
            (10, Self::TOP + Self::CELL + 36),
            17.0,
        )?;
        for (k, shown) in self.images.iter().enumerate() {
            let x = Self::LEFT + k as i32 * Self::CELL;
            draw_digit(root, shown.original, (x, Self::TOP), Self::SCALE)?;
            draw_digit(
                root,
                shown.reconstruction,
                (x, Self::TOP + Self::CELL),
                Self::SCALE,
            )?;
            let caption_y = Self::TOP + 2 * Self::CELL;
            text(
                root,
                &format!("{}: {:.4}", shown.label, shown.score),
                (x, caption_y),
                13.0,
            )?;
        }
        Ok(())
    }
}

/// Training and validation loss per epoch.
pub struct LossCurves<'a> {
    /// (epoch, loss, val_loss).
    pub history: &'a [(u32, f64, f64)],
}

impl Figure for LossCurves<'_> {
    fn size(&self) -> (u32, u32) {
        (960, 540)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let epochs = self.history.len().max(1) as f64;
        let values = self.history.iter().flat_map(|&(_, l, v)| [l, v]);
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let (lo, hi) = if lo.is_finite() {
            (lo * 0.9, hi * 1.05)
        } else {
            (0.0, 1.0)
        };
        let mut chart = ChartBuilder::on(root)
            .caption("Training and validation loss", (FONT, 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(0.5..epochs + 0.5, lo..hi)?;
        chart
            .configure_mesh()
            .x_desc("Epoch")
            .y_desc("Loss (mean squared error)")
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .y_label_formatter(&|v| format!("{v:.4}"))
            .x_labels(self.history.len().clamp(2, 12))
            .x_label_formatter(&whole_numbers_only)
            .draw()?;
        chart
            .draw_series(LineSeries::new(
                self.history.iter().map(|&(e, l, _)| (f64::from(e), l)),
                TRAIN_COLOR.stroke_width(2),
            ))?
            .label("Training loss")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], TRAIN_COLOR.stroke_width(2)));
        chart
            .draw_series(LineSeries::new(
                self.history.iter().map(|&(e, _, v)| (f64::from(e), v)),
                VAL_COLOR.stroke_width(2),
            ))?
            .label("Validation loss")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], VAL_COLOR.stroke_width(2)));
        draw_legend(&mut chart)
    }
}

/// Histogram of the test scores with the threshold marked.
pub struct MseHistogram<'a> {
    /// Per-image scores.
    pub scores: &'a [f32],
    /// `MSE` or `MAE`.
    pub score_name: &'a str,
    /// The anomaly threshold.
    pub threshold: f64,
    /// Images above it.
    pub anomalies: usize,
}

impl Figure for MseHistogram<'_> {
    fn size(&self) -> (u32, u32) {
        (960, 540)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let bins = Bins::covering(self.scores, self.threshold);
        let mut counts = vec![0usize; Bins::COUNT];
        for &s in self.scores {
            counts[bins.of(s)] += 1;
        }
        let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.08;
        let caption = format!(
            "Reconstruction error of {} test images: {} above the threshold",
            self.scores.len(),
            self.anomalies
        );
        let mut chart = score_chart(root, &caption, self.score_name, "Images", &bins, top)?;
        chart.draw_series(counts.iter().enumerate().map(|(i, &c)| {
            let x0 = i as f64 * bins.width;
            Rectangle::new(
                [(x0, 0.0), (x0 + bins.width * 0.92, c as f64)],
                BAR_COLOR.mix(0.8).filled(),
            )
        }))?;
        draw_threshold(&mut chart, self.threshold, top)?;
        draw_legend(&mut chart)
    }
}

/// The highest-scoring test images, original beside reconstruction.
pub struct TopAnomalies<'a> {
    /// The images shown, highest score first.
    pub entries: Vec<Shown<'a>>,
    /// `mse` or `mae`, for the captions.
    pub score_column: String,
}

impl<'a> TopAnomalies<'a> {
    const COLUMNS: i32 = 5;
    const SCALE: i32 = 2;
    const CELL_W: i32 = 2 * SIDE * Self::SCALE + 48;
    const CELL_H: i32 = SIDE * Self::SCALE + 44;
    const TOP: i32 = 44;

    /// The `n` highest scores, highest first (ties by index).
    pub fn highest(inputs: &'a ReportInputs, n: usize) -> Self {
        let mut order: Vec<usize> = (0..inputs.scores.values.len()).collect();
        let scores = &inputs.scores.values;
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        order.truncate(n);
        Self {
            entries: order.into_iter().map(|i| Shown::of(inputs, i)).collect(),
            score_column: inputs.metrics.score.clone(),
        }
    }
}

impl Figure for TopAnomalies<'_> {
    fn size(&self) -> (u32, u32) {
        let rows = self.entries.len().div_ceil(Self::COLUMNS as usize).max(1) as i32;
        (
            (Self::COLUMNS * Self::CELL_W + 20) as u32,
            (Self::TOP + rows * Self::CELL_H + 10) as u32,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let title = format!(
            "The {} test images reconstructed worst (original | reconstruction)",
            self.entries.len()
        );
        text(root, &title, (10, 10), 20.0)?;
        for (k, shown) in self.entries.iter().enumerate() {
            let (row, col) = (k as i32 / Self::COLUMNS, k as i32 % Self::COLUMNS);
            let x = 10 + col * Self::CELL_W;
            let y = Self::TOP + row * Self::CELL_H;
            draw_digit(root, shown.original, (x, y), Self::SCALE)?;
            draw_digit(
                root,
                shown.reconstruction,
                (x + SIDE * Self::SCALE + 4, y),
                Self::SCALE,
            )?;
            let below = y + SIDE * Self::SCALE + 3;
            text(
                root,
                &format!("#{}, label {}", shown.index, shown.label),
                (x, below),
                13.0,
            )?;
            text(
                root,
                &format!("{} {:.4}", self.score_column, shown.score),
                (x, below + 16),
                13.0,
            )?;
        }
        Ok(())
    }
}

/// The share of each label's test images that are anomalies.
pub struct AnomalyRateByLabel<'a> {
    /// Counts per label.
    pub per_label: &'a [LabelView],
    /// The threshold, for the caption.
    pub threshold: f64,
}

impl Figure for AnomalyRateByLabel<'_> {
    fn size(&self) -> (u32, u32) {
        (960, 540)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let labels = self.per_label.len().max(1) as f64;
        let top = self
            .per_label
            .iter()
            .fold(0.0f64, |m, l| m.max(100.0 * l.anomaly_rate))
            .max(1.0)
            * 1.18;
        let outlier_classes = self.per_label.iter().any(|l| l.label >= 10);
        let caption = if outlier_classes {
            format!(
                "Anomalies by label (threshold {:.4}; 10–19: the outlier dataset's classes)",
                self.threshold
            )
        } else {
            format!("Anomaly rate by label (threshold {:.4})", self.threshold)
        };
        let mut chart = ChartBuilder::on(root)
            .caption(caption, (FONT, 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5..labels - 0.5, 0.0..top)?;
        let names: Vec<String> = self.per_label.iter().map(|l| l.label.to_string()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("Label")
            .y_desc("Anomalies (% of the label's test images)")
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .x_labels(self.per_label.len())
            .x_label_formatter(&|v| category_label(&names[..], *v))
            .y_label_formatter(&|v| {
                if top < 10.0 {
                    format!("{v:.1}")
                } else {
                    format!("{v:.0}")
                }
            })
            .draw()?;
        chart.draw_series(self.per_label.iter().enumerate().map(|(i, l)| {
            let x = i as f64;
            Rectangle::new(
                [(x - 0.35, 0.0), (x + 0.35, 100.0 * l.anomaly_rate)],
                BAR_COLOR.filled(),
            )
        }))?;
        // With many labels (outliers add 10–19) only the count fits over a bar.
        let crowded = self.per_label.len() > 12;
        chart.draw_series(self.per_label.iter().enumerate().map(|(i, l)| {
            let (text, x) = if crowded {
                (l.anomalies.to_string(), i as f64 - 0.25)
            } else {
                (format!("{}/{}", l.anomalies, l.images), i as f64 - 0.3)
            };
            Text::new(
                text,
                (x, 100.0 * l.anomaly_rate + top * 0.05),
                (FONT, 14).into_font(),
            )
        }))?;
        Ok(())
    }
}
