//! Why an image was flagged: the original, its reconstruction and where
//! they differ, as a per-pixel squared-error map in a perceptual colour map
//! (viridis) with its colour bar.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;

use crate::chart::{DrawResult, text};
use crate::render::{Figure, draw_digit};

const SIDE: i32 = ae_store::IMAGE_SIDE as i32;
/// Screen pixels per image pixel.
const SCALE: i32 = 8;
const PANEL: i32 = SIDE * SCALE;
const GAP: i32 = 24;
const LEFT: i32 = 16;
const TOP: i32 = 76;
const BAR_W: i32 = 18;

/// Each pixel's squared reconstruction error, `(x - x̂)²`, in `[0, 1]`.
pub fn squared_errors(original: &[f32], reconstruction: &[f32]) -> Vec<f32> {
    original
        .iter()
        .zip(reconstruction)
        .map(|(&x, &y)| (x - y) * (x - y))
        .collect()
}

/// One image's error map: original | reconstruction | squared error, with
/// the score and the threshold in the title.
pub struct ErrorMap<'a> {
    /// What the image is, e.g. its file and index.
    pub name: String,
    /// Its pixels, `[784]` in `[0, 1]`.
    pub original: &'a [f32],
    /// Its reconstruction's pixels.
    pub reconstruction: &'a [f32],
    /// Its score.
    pub score: f32,
    /// `mse` or `mae`.
    pub score_column: String,
    /// The threshold it was held against.
    pub threshold: f64,
}

impl ErrorMap<'_> {
    /// The colour bar's top: the largest squared error in the image (so a
    /// faint map still shows where), at least a small floor so a perfect
    /// reconstruction is one colour, not noise.
    fn scale_max(errors: &[f32]) -> f32 {
        errors.iter().copied().fold(1e-6, f32::max)
    }
}

impl ErrorMap<'_> {
    /// Every error map's size.
    fn size_of_one() -> (u32, u32) {
        (
            (LEFT + 3 * PANEL + 2 * GAP + GAP + BAR_W + 70) as u32,
            (TOP + PANEL + 16) as u32,
        )
    }
}

impl Figure for ErrorMap<'_> {
    fn size(&self) -> (u32, u32) {
        Self::size_of_one()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let flagged = f64::from(self.score) > self.threshold;
        text(root, &self.name, (LEFT, 8), 18.0)?;
        text(
            root,
            &format!(
                "{} {:.6} {} threshold {:.6}: {}",
                self.score_column,
                self.score,
                if flagged { ">" } else { "≤" },
                self.threshold,
                if flagged { "anomaly" } else { "normal" }
            ),
            (LEFT, 30),
            15.0,
        )?;
        let errors = squared_errors(self.original, self.reconstruction);
        let max = Self::scale_max(&errors);
        let y = TOP;
        let x = |k: i32| LEFT + k * (PANEL + GAP);
        draw_digit(root, self.original, (x(0), y), SCALE)?;
        draw_digit(root, self.reconstruction, (x(1), y), SCALE)?;
        for (i, &e) in errors.iter().enumerate() {
            let (row, col) = ((i as i32) / SIDE, (i as i32) % SIDE);
            let top_left = (x(2) + col * SCALE, y + row * SCALE);
            root.draw(&Rectangle::new(
                [top_left, (top_left.0 + SCALE, top_left.1 + SCALE)],
                ViridisRGB::get_color_normalized(e, 0.0, max).filled(),
            ))?;
        }
        for (k, caption) in ["original", "reconstruction", "squared error"]
            .iter()
            .enumerate()
        {
            text(root, caption, (x(k as i32), y - 18), 14.0)?;
        }
        // The colour bar, 0 at the bottom, the image's largest error on top.
        let bar_x = x(3) - GAP / 2;
        for step in 0..PANEL {
            let value = max * (PANEL - 1 - step) as f32 / (PANEL - 1) as f32;
            root.draw(&Rectangle::new(
                [(bar_x, y + step), (bar_x + BAR_W, y + step + 1)],
                ViridisRGB::get_color_normalized(value, 0.0, max).filled(),
            ))?;
        }
        root.draw(&Rectangle::new(
            [(bar_x, y), (bar_x + BAR_W, y + PANEL)],
            BLACK.stroke_width(1),
        ))?;
        for k in 0..=4 {
            let value = max * k as f32 / 4.0;
            let at = y + PANEL - PANEL * k / 4;
            root.draw(&PathElement::new(
                [(bar_x + BAR_W, at), (bar_x + BAR_W + 4, at)],
                BLACK,
            ))?;
            text(
                root,
                &format!("{value:.3}"),
                (bar_x + BAR_W + 6, at - 7),
                12.0,
            )?;
        }
        Ok(())
    }
}

/// The report's error maps: one [`ErrorMap`] per row, highest score first.
pub struct TopErrorMaps<'a> {
    /// The maps, in order.
    pub maps: Vec<ErrorMap<'a>>,
}

/// How many of the top anomalies the report explains.
pub const TOP_ERROR_MAPS: usize = 5;

impl<'a> TopErrorMaps<'a> {
    /// The [`TOP_ERROR_MAPS`] highest-scoring test images of `inputs`, as
    /// the eval stage ranked them.
    pub fn highest(inputs: &'a crate::ReportInputs) -> Self {
        let m = &inputs.metrics;
        Self {
            maps: m
                .top_indices
                .iter()
                .take(TOP_ERROR_MAPS)
                .map(|&i| {
                    let shown = crate::Shown::of(inputs, i as usize);
                    ErrorMap {
                        name: match &shown.label {
                            Some(label) => format!("test image #{i}, label {label}"),
                            None => format!("test image #{i}"),
                        },
                        original: shown.original,
                        reconstruction: shown.reconstruction,
                        score: shown.score,
                        score_column: m.score.column().to_string(),
                        threshold: m.threshold,
                    }
                })
                .collect(),
        }
    }
}

impl Figure for TopErrorMaps<'_> {
    fn size(&self) -> (u32, u32) {
        let one = ErrorMap::size_of_one();
        (one.0, one.1 * self.maps.len().max(1) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        if self.maps.is_empty() {
            return text(root, "No test image to show", (LEFT, 8), 18.0);
        }
        for (map, area) in self
            .maps
            .iter()
            .zip(root.split_evenly((self.maps.len(), 1)))
        {
            map.draw(&area)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squared_errors_are_per_pixel() {
        assert_eq!(
            squared_errors(&[0.0, 1.0, 0.5], &[0.5, 1.0, 0.0]),
            [0.25, 0.0, 0.25]
        );
    }

    #[test]
    fn an_error_map_renders_to_png() {
        let dir = tempfile::tempdir().expect("tempdir");
        let original: Vec<f32> = (0..784).map(|i| (i % 28) as f32 / 27.0).collect();
        let reconstruction = vec![0.5; 784];
        let path = dir.path().join("map.png");
        let map = ErrorMap {
            name: "digits.npy[3]".into(),
            original: &original,
            reconstruction: &reconstruction,
            score: 0.09,
            score_column: "mse".into(),
            threshold: 0.02,
        };
        crate::render(&map, &path, crate::FigureFormat::Png).expect("renders");
        let decoded = image_size(&path);
        assert_eq!(decoded, map.size());
    }

    /// A PNG's width and height from its IHDR chunk.
    fn image_size(path: &std::path::Path) -> (u32, u32) {
        let bytes = std::fs::read(path).expect("png");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        (be(16), be(20))
    }
}
