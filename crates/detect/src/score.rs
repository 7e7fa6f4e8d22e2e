//! Scoring inputs a batch at a time: one thread reads and decodes, a
//! worker per core reconstructs and scores, the caller takes the results
//! in order.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

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

impl ScoreOptions {
    /// The threshold images are held against: `--threshold`, else the
    /// detector's; an error unless it is a finite number.
    pub fn threshold(&self, detector: &Detector) -> Result<f64, DetectError> {
        let threshold = self.threshold.unwrap_or(detector.info().threshold);
        if threshold.is_finite() {
            Ok(threshold)
        } else {
            Err(DetectError::Threshold(threshold))
        }
    }
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
    /// A spinner with the count and the time taken, drawn when standard
    /// error is a terminal (and hidden otherwise).
    pub fn on_terminal() -> Self {
        let bar = ProgressBar::new_spinner();
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} scored {human_pos} images in {elapsed}")
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

/// What a worker made of one item.
enum Done {
    Scored {
        batch: Batch,
        reconstructions: Vec<f32>,
        scores: Vec<f32>,
        flags: Vec<bool>,
    },
    Unreadable(Unreadable),
    Failed(DataError),
}

/// Scores every image of `inputs`, in order, with `detector`. Each scored
/// batch goes to `each`; each image file that cannot be read goes to
/// `unreadable` (or, with `strict`, ends scoring). The first input that
/// cannot be read, or an error from `each`, ends scoring with that error.
///
/// One thread reads the inputs a batch at a time, one worker per core
/// reconstructs and scores them, and the caller's thread takes the
/// results in input order: memory is a few batches.
pub fn score_inputs(
    detector: &Detector,
    inputs: &[PathBuf],
    options: &ScoreOptions,
    progress: &Progress,
    mut each: impl FnMut(Scored<'_>) -> Result<(), DetectError>,
    mut unreadable: impl FnMut(&Unreadable),
) -> Result<Tally, DetectError> {
    let threshold = options.threshold(detector)?;
    let mut tally = Tally {
        images: 0,
        anomalies: 0,
        unreadable: 0,
        threshold,
    };
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let scorers = (0..workers)
        .map(|_| detector.scorer())
        .collect::<Result<Vec<_>, _>>()?;
    let scan_options = options.scan;
    let result = std::thread::scope(|scope| {
        let (send_item, receive_item) = sync_channel::<(u64, Result<Item, DataError>)>(READ_AHEAD);
        let (send_done, receive_done) = sync_channel::<(u64, Done)>(READ_AHEAD + workers);
        scope.spawn(move || read(inputs, scan_options, &send_item));
        // Shared by the workers, and dropped with the last of them, so that
        // the reader stops when they have.
        let receive_item = Arc::new(Mutex::new(receive_item));
        for scorer in scorers {
            let (receive_item, send_done) = (Arc::clone(&receive_item), send_done.clone());
            scope.spawn(move || {
                loop {
                    let next = match receive_item.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, item)) = next else { return };
                    let done = match item {
                        Ok(Item::Batch(batch)) => {
                            let reconstructions = scorer.reconstruct(&batch.images);
                            let scores = scorer.scores(&batch.images, &reconstructions);
                            let flags = ae_eval::scores::flag(&scores, threshold);
                            Done::Scored {
                                batch,
                                reconstructions,
                                scores,
                                flags,
                            }
                        }
                        Ok(Item::Unreadable(bad)) => Done::Unreadable(bad),
                        Err(err) => Done::Failed(err),
                    };
                    // A closed channel: the caller has stopped.
                    if send_done.send((seq, done)).is_err() {
                        return;
                    }
                }
            });
        }
        drop((send_done, receive_item));
        // Results come in any order; they are taken in the inputs' order.
        let mut waiting = BTreeMap::new();
        let mut next = 0;
        for (seq, done) in receive_done {
            waiting.insert(seq, done);
            while let Some(done) = waiting.remove(&next) {
                next += 1;
                match done {
                    Done::Scored {
                        batch,
                        reconstructions,
                        scores,
                        flags,
                    } => {
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
                    Done::Unreadable(bad) if options.strict => {
                        return Err(DetectError::Strict(bad));
                    }
                    Done::Unreadable(bad) => {
                        tally.unreadable += 1;
                        progress.0.suspend(|| unreadable(&bad));
                    }
                    Done::Failed(err) => return Err(err.into()),
                }
            }
        }
        Ok(())
    });
    progress.0.finish_and_clear();
    result.map(|()| tally)
}

/// Reads every input in order into `send`, numbering the items, until an
/// input fails or the receiving side has gone.
fn read(
    inputs: &[PathBuf],
    options: ScanOptions,
    send: &SyncSender<(u64, Result<Item, DataError>)>,
) {
    let mut seq = 0;
    for input in inputs {
        let items = match scan(input, options) {
            Ok(items) => items,
            Err(err) => {
                let _ = send.send((seq, Err(err)));
                return;
            }
        };
        for item in items {
            let failed = item.is_err();
            if send.send((seq, item)).is_err() || failed {
                return;
            }
            seq += 1;
        }
    }
}
