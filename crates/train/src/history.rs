//! `train/history.csv`: one row per epoch.

use std::path::Path;

use ae_store::StoreError;

/// One epoch's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: u32,
    /// Mean of the epoch's batch losses.
    pub loss: f64,
    /// MSE over the whole test split after the epoch.
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
        ae_store::write_atomic(path, |out| {
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

    /// The last epoch, if any.
    pub fn last(&self) -> Option<&EpochRecord> {
        self.epochs.last()
    }
}
