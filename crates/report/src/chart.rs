//! The report's chart toolkit: fonts, colours, legends, labelled axes,
//! score histograms' bins and the threshold line, shared by every figure so
//! they look alike.

use plotters::coord::Shift;
use plotters::prelude::*;

pub(crate) const FONT: &str = "sans-serif";
/// The first series' colour (matplotlib's blue).
pub(crate) const BLUE: RGBColor = RGBColor(31, 119, 180);
/// The second series' colour (matplotlib's orange).
pub(crate) const ORANGE: RGBColor = RGBColor(255, 127, 14);
/// The threshold, wherever it is drawn.
pub(crate) const THRESHOLD_COLOR: RGBColor = RGBColor(214, 39, 40);
/// Reference lines such as chance.
pub(crate) const GREY: RGBColor = RGBColor(150, 150, 150);

pub(crate) type DrawResult<DB> =
    Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Black text of `size` points with its top-left corner at `at`.
pub(crate) fn text<DB: DrawingBackend>(
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
    pub(crate) const COUNT: usize = 80;

    /// Bins covering `scores` and `threshold`.
    pub(crate) fn covering(scores: &[f32], threshold: f64) -> Self {
        let max = scores.iter().fold(threshold, |m, &s| m.max(f64::from(s))) * 1.02;
        Self {
            max,
            width: max / Self::COUNT as f64,
        }
    }

    /// The bin of `score`.
    pub(crate) fn of(&self, score: f32) -> usize {
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
        .label(format!("threshold {}", ae_store::readable(threshold, 4)))
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
