//! `train/history.csv`: one row per epoch; `train/fit.json`: how the fit
//! ended.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::StoreError;

/// How a fit ended: what `train/fit.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitSummary {
    /// Epochs trained.
    pub epochs_run: u32,
    /// Epochs the config allowed (`train.epochs`).
    pub max_epochs: u32,
    /// The epoch whose weights were written: the last, or with early
    /// stopping the one with the lowest validation loss.
    pub kept_epoch: u32,
    /// Its `val_loss`.
    pub kept_val_loss: f64,
    /// The split `val_loss` was measured on: `test` or `validation`.
    pub validated_on: String,
    /// Whether early stopping ended the fit before `max_epochs`.
    pub stopped_early: bool,
    /// Why it stopped and why that epoch was kept, in words.
    pub reason: String,
}

impl FitSummary {
    /// Writes it to `path` as JSON, atomically.
    pub fn save(&self, path: &Path) -> Result<(), StoreError> {
        crate::metrics::save_json(path, self)
    }

    /// Reads a file written by [`FitSummary::save`].
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        crate::metrics::load_json(path)
    }
}

/// One epoch's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: u32,
    /// Mean of the epoch's batch losses.
    pub loss: f64,
    /// MSE over the whole validation split (the test split unless
    /// `train.validate_on = "validation"`) after the epoch.
    pub val_loss: f64,
    /// Wall-clock seconds for the epoch, validation included.
    pub seconds: f64,
}

/// Every epoch of a fit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// In order.
    pub epochs: Vec<EpochRecord>,
}

impl History {
    /// The CSV header.
    pub const HEADER: &'static str = "epoch,loss,val_loss,seconds";

    /// Writes `epoch,loss,val_loss,seconds` rows to `path`, atomically.
    /// Losses keep every digit an f64 needs to round-trip.
    pub fn save(&self, path: &Path) -> Result<(), StoreError> {
        crate::write_atomic(path, |out| {
            writeln!(out, "{}", Self::HEADER)?;
            for r in &self.epochs {
                writeln!(
                    out,
                    "{},{:?},{:?},{:.4}",
                    r.epoch, r.loss, r.val_loss, r.seconds
                )?;
            }
            Ok(())
        })
    }

    /// Reads a file written by [`History::save`].
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        let epochs = crate::csv::read_rows(path, crate::limits::HISTORY, Self::HEADER, |fields| {
            let [epoch, loss, val_loss, seconds] = fields else {
                return None;
            };
            Some(EpochRecord {
                epoch: epoch.parse().ok()?,
                loss: loss.parse().ok()?,
                val_loss: val_loss.parse().ok()?,
                seconds: seconds.parse().ok()?,
            })
        })?;
        Ok(Self { epochs })
    }

    /// The epoch with the lowest validation loss (the first of equals).
    pub fn best(&self) -> Option<&EpochRecord> {
        self.epochs
            .iter()
            .reduce(|best, e| if e.val_loss < best.val_loss { e } else { best })
    }

    /// The last epoch, if any.
    pub fn last(&self) -> Option<&EpochRecord> {
        self.epochs.last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_histories_load_back_and_know_their_best_epoch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("history.csv");
        let history = History {
            epochs: vec![
                EpochRecord {
                    epoch: 1,
                    loss: 0.05,
                    val_loss: 0.03,
                    seconds: 0.25,
                },
                EpochRecord {
                    epoch: 2,
                    loss: 0.02,
                    val_loss: 0.0101,
                    seconds: 0.125,
                },
                EpochRecord {
                    epoch: 3,
                    loss: 0.01,
                    val_loss: 0.0102,
                    seconds: 0.5,
                },
            ],
        };
        history.save(&path).expect("save");
        let loaded = History::load(&path).expect("load");
        assert_eq!(loaded, history);
        assert_eq!(loaded.best().map(|e| e.epoch), Some(2));
        assert_eq!(History::default().best(), None);

        std::fs::write(&path, "epoch,loss,val_loss,seconds\n1,x,0.1,0.2\n").expect("write");
        let err = History::load(&path).expect_err("bad row").to_string();
        assert!(
            err.contains("history.csv") && err.contains("1,x,0.1,0.2"),
            "{err}"
        );
    }
}
