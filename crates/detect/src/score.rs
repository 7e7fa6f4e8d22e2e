//! Scoring inputs a batch at a time: one thread reads and decodes, the
//! caller's thread (with the GEMM's own threads) reconstructs and scores.

use std::path::PathBuf;
use std::sync::mpsc::sync_channel;

use ae_data::DataError;
use ae_data::scan::{Batch, Item, ScanOptions, Unreadable, scan};
use indicatif::{ProgressBar, ProgressStyle};

use crate::{DetectError, Detector};

/// Batches read ahead of the one being scored: memory is about this many
/// batches more than one.
const READ_AHEAD: usize = 2;

/// How inputs are scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreOptions {
    /// How inputs are read.
    pub scan: ScanOptions,
    /// The threshold instead of the detector's (`--threshold`).
    pub threshold: Option<f64>,
    /// Stop at the first image that cannot be read (`--strict`), rather
    /// than name it and go on.
    pub strict: bool,
}

/// One batch, scored.
#[derive(Debug, Clone, Copy)]
pub struct Scored<'a> {
    /// The images and where they came from.
    pub batch: &'a Batch,
    /// Their reconstructions, `[n, 784]`.
    pub reconstructions: &'a [f32],
    /// Their scores.
    pub scores: &'a [f32],
    /// Whether each is above the threshold.
    pub flags: &'a [bool],
}

/// What scoring found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tally {
    /// Images scored.
    pub images: u64,
    /// Of them, above the threshold.
    pub anomalies: u64,
    /// Image files that could not be read (and were not scored).
    pub unreadable: u64,
    /// The threshold used.
    pub threshold: f64,
}

/// A count of scored images on standard error, shown only on a terminal.
#[derive(Debug, Clone)]
pub struct Progress(ProgressBar);

impl Progress {
    /// A spinner with the count and rate, drawn when standard error is a
    /// terminal (and hidden otherwise).
    pub fn on_terminal() -> Self {
        let bar = ProgressBar::new_spinner();
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} scored {human_pos} images ({per_sec})")
        {
            bar.set_style(style);
        }
        Self(bar)
    }

    /// Nothing drawn.
    pub fn hidden() -> Self {
        Self(ProgressBar::hidden())
    }
}

/// Scores every image of `inputs`, in order, with `detector`. Each scored
/// batch goes to `each`; each image file that cannot be read goes to
/// `unreadable` (or, with `strict`, ends scoring). The first input that
/// cannot be read, or an error from `each`, ends scoring with that error.
pub fn score_inputs(
    detector: &Detector,
    inputs: &[PathBuf],
    options: &ScoreOptions,
    progress: &Progress,
    mut each: impl FnMut(Scored<'_>) -> Result<(), DetectError>,
    mut unreadable: impl FnMut(&Unreadable),
) -> Result<Tally, DetectError> {
    let threshold = options.threshold.unwrap_or(detector.info().threshold);
    if !threshold.is_finite() {
        return Err(DetectError::Threshold(threshold));
    }
    let mut tally = Tally {
        images: 0,
        anomalies: 0,
        unreadable: 0,
        threshold,
    };
    let scan_options = options.scan;
    let result = std::thread::scope(|scope| {
        let (send, receive) = sync_channel::<Result<Item, DataError>>(READ_AHEAD);
        scope.spawn(move || {
            for input in inputs {
                let items = match scan(input, scan_options) {
                    Ok(items) => items,
                    Err(err) => {
                        let _ = send.send(Err(err));
                        return;
                    }
                };
                for item in items {
                    let failed = item.is_err();
                    // A closed channel: the scorer has stopped.
                    if send.send(item).is_err() || failed {
                        return;
                    }
                }
            }
        });
        for item in receive {
            match item? {
                Item::Batch(batch) => {
                    let reconstructions = detector.reconstruct(&batch.images);
                    let scores = detector.scores(&batch.images, &reconstructions);
                    let flags = ae_eval::scores::flag(&scores, threshold);
                    tally.images += batch.len() as u64;
                    tally.anomalies += flags.iter().filter(|&&f| f).count() as u64;
                    progress.0.inc(batch.len() as u64);
                    each(Scored {
                        batch: &batch,
                        reconstructions: &reconstructions,
                        scores: &scores,
                        flags: &flags,
                    })?;
                }
                Item::Unreadable(bad) if options.strict => return Err(DetectError::Strict(bad)),
                Item::Unreadable(bad) => {
                    tally.unreadable += 1;
                    progress.0.suspend(|| unreadable(&bad));
                }
            }
        }
        Ok(())
    });
    progress.0.finish_and_clear();
    result.map(|()| tally)
}
