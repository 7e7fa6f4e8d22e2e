//! The report's five figures of every run, each a [`Figure`] over borrowed
//! inputs, drawn with the toolkit in [`crate::chart`].

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::chart::{
    BLUE, Bins, DrawResult, FONT, ORANGE, category_label, draw_legend, draw_threshold, score_chart,
    text, whole_numbers_only,
};
use ae_store::{FitSummary, History, LabelCounts};

use crate::inputs::ReportInputs;
use crate::render::{Figure, draw_digit};

const SIDE: i32 = ae_store::IMAGE_SIDE as i32;

/// One test image shown in a figure.
#[derive(Debug, Clone)]
pub struct Shown<'a> {
    /// Its position in the test split.
    pub index: usize,
    /// Its class, by name where the classes have names (`None`: unlabelled).
    pub label: Option<String>,
    /// Its score (reconstruction MSE by default).
    pub score: f32,
    /// Its pixels.
    pub original: &'a [f32],
    /// Its reconstruction's pixels.
    pub reconstruction: &'a [f32],
}

impl Shown<'_> {
    /// `label: score` under an image, or the score alone without labels.
    fn caption(&self) -> String {
        match &self.label {
            Some(label) => format!("{label}: {:.4}", self.score),
            None => format!("{:.4}", self.score),
        }
    }
}

impl<'a> Shown<'a> {
    /// Test image `index` of `inputs`.
    ///
    /// # Panics
    /// If the report did not read that image ([`ReportInputs::read`] reads
    /// the ones the figures show; a caller bug).
    pub fn of(inputs: &'a ReportInputs, index: usize) -> Self {
        let not_read = || format!("the report did not read test image {index}");
        Self {
            index,
            label: inputs.test.label_of(index),
            score: inputs.scores.values[index],
            original: inputs
                .originals
                .get(&index)
                .unwrap_or_else(|| panic!("{}", not_read())),
            reconstruction: inputs
                .reconstructions
                .get(&index)
                .unwrap_or_else(|| panic!("{}", not_read())),
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
            text(root, &shown.caption(), (x, caption_y), 13.0)?;
        }
        Ok(())
    }
}

/// Training and validation loss per epoch, with the epoch whose weights
/// were kept marked when it is not the last (early stopping).
pub struct LossCurves<'a> {
    /// `train/history.csv`.
    pub history: &'a History,
    /// `train/fit.json`.
    pub fit: &'a FitSummary,
}

impl Figure for LossCurves<'_> {
    fn size(&self) -> (u32, u32) {
        (960, 540)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let epochs = &self.history.epochs;
        let n_epochs = epochs.len().max(1) as f64;
        let values = epochs.iter().flat_map(|e| [e.loss, e.val_loss]);
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
            .build_cartesian_2d(0.5..n_epochs + 0.5, lo..hi)?;
        chart
            .configure_mesh()
            .x_desc("Epoch")
            .y_desc("Loss (mean squared error)")
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .y_label_formatter(&|v| format!("{v:.4}"))
            .x_labels(epochs.len().clamp(2, 12))
            .x_label_formatter(&whole_numbers_only)
            .draw()?;
        chart
            .draw_series(LineSeries::new(
                epochs.iter().map(|e| (f64::from(e.epoch), e.loss)),
                BLUE.stroke_width(2),
            ))?
            .label("Training loss")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], BLUE.stroke_width(2)));
        chart
            .draw_series(LineSeries::new(
                epochs.iter().map(|e| (f64::from(e.epoch), e.val_loss)),
                ORANGE.stroke_width(2),
            ))?
            .label(format!("Validation loss ({} split)", self.fit.validated_on))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], ORANGE.stroke_width(2)));
        if self.fit.kept_epoch != self.fit.epochs_run {
            let x = f64::from(self.fit.kept_epoch);
            let kept = BLACK.stroke_width(2);
            chart
                .draw_series(DashedLineSeries::new([(x, lo), (x, hi)], 6, 4, kept))?
                .label(format!(
                    "kept: epoch {} (val_loss {:.5})",
                    self.fit.kept_epoch, self.fit.kept_val_loss
                ))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], kept));
        }
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
                BLUE.mix(0.8).filled(),
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

    /// The `n` highest scores, highest first (ties by index), as the eval
    /// stage ranked them in `metrics.json`.
    pub fn highest(inputs: &'a ReportInputs, n: usize) -> Self {
        Self {
            entries: inputs
                .metrics
                .top_indices
                .iter()
                .take(n)
                .map(|&i| Shown::of(inputs, i as usize))
                .collect(),
            score_column: inputs.metrics.score.column().to_string(),
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
                &match &shown.label {
                    Some(label) => format!("#{}, label {label}", shown.index),
                    None => format!("#{}", shown.index),
                },
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
    pub per_label: &'a [LabelCounts],
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
                "Anomalies by label (threshold {}; 10–19: the outlier dataset's classes)",
                ae_store::readable(self.threshold, 4)
            )
        } else {
            format!(
                "Anomaly rate by label (threshold {})",
                ae_store::readable(self.threshold, 4)
            )
        };
        let mut chart = ChartBuilder::on(root)
            .caption(caption, (FONT, 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5..labels - 0.5, 0.0..top)?;
        let names: Vec<String> = self.per_label.iter().map(LabelCounts::shown).collect();
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
                BLUE.filled(),
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
