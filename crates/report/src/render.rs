//! Drawing a figure to PNG or SVG, written atomically.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::{FigureFormat, ReportError};

/// The bundled font, so text renders on machines without font libraries.
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the bundled font as plotters' "sans-serif" (once per process).
pub(crate) fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        if plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_err() {
            // Unreachable with the bundled file; drawing text would then fail
            // with an error naming the figure, not a panic.
            tracing::error!("the bundled font could not be loaded");
        }
    });
}

/// One figure of the report.
pub trait Figure {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);

    /// Draws on `root`, already filled white.
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>;
}

/// Renders `figure` to `path` in `format`; the file appears only when complete.
pub fn render(figure: &impl Figure, path: &Path, format: FigureFormat) -> Result<(), ReportError> {
    register_font();
    let (width, height) = figure.size();
    let draw_err = |source: Box<dyn std::error::Error + Send + Sync>| ReportError::Draw {
        path: path.to_path_buf(),
        source,
    };
    let bytes = match format {
        FigureFormat::Png => {
            let mut pixels = vec![0u8; width as usize * height as usize * 3];
            {
                let root =
                    BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
                draw_on(&root, figure).map_err(|e| draw_err(Box::new(e)))?;
            }
            encode_png(&pixels, width, height).map_err(|e| draw_err(Box::new(e)))?
        }
        FigureFormat::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
                draw_on(&root, figure).map_err(|e| draw_err(Box::new(e)))?;
            }
            svg.into_bytes()
        }
    };
    ae_store::write_atomic(path, |out| out.write_all(&bytes))?;
    Ok(())
}

/// Fills `root` white, draws `figure` on it and finishes the drawing.
fn draw_on<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    figure: &impl Figure,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    figure.draw(root)?;
    root.present()
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(rgb)?;
    Ok(out)
}

/// A grey level 0–1 as a colour (0 black, 1 white).
pub(crate) fn grey(value: f32) -> RGBColor {
    let v = (value.clamp(0.0, 1.0) * 255.0).round() as u8;
    RGBColor(v, v, v)
}

/// Draws a 28×28 image with its top-left corner at `(x, y)`, `scale` pixels per pixel.
pub(crate) fn draw_digit<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    pixels: &[f32],
    (x, y): (i32, i32),
    scale: i32,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let side = ae_store::IMAGE_SIDE;
    for (i, &value) in pixels.iter().enumerate() {
        let (row, col) = ((i / side) as i32, (i % side) as i32);
        let top_left = (x + col * scale, y + row * scale);
        let bottom_right = (top_left.0 + scale, top_left.1 + scale);
        area.draw(&Rectangle::new(
            [top_left, bottom_right],
            grey(value).filled(),
        ))?;
    }
    Ok(())
}
