//! The epoch loop shared by every engine.

use std::time::Instant;

use ae_store::Split;
use indicatif::{ProgressBar, ProgressStyle};

use crate::batches::Order;
use crate::engine::TrainEngine;
use crate::{TrainConfig, TrainError};
use ae_store::{EpochRecord, History};

/// Trains `engine` for `cfg.epochs` epochs on `train`, validating on `test`
/// after each: `loss` is the mean of the epoch's batch losses, `val_loss` the
/// MSE over the whole test split. Stops with an error at the first epoch
/// whose loss is not finite.
pub fn fit(
    engine: &mut dyn TrainEngine,
    cfg: &TrainConfig,
    seed: u64,
    train: &Split,
    test: &Split,
) -> Result<History, TrainError> {
    let mut order = Order::new(train.len(), cfg.shuffle, seed);
    let mut history = History::default();
    let bar = progress_bar(cfg.epochs);
    for epoch in 1..=cfg.epochs {
        let clock = Instant::now();
        let loss = engine.train_epoch(&train.images, order.next_epoch(), cfg.batch_size);
        let val_loss = engine.squared_error_sum(&test.images) / test.images.len() as f64;
        let record = EpochRecord {
            epoch,
            loss,
            val_loss,
            seconds: clock.elapsed().as_secs_f64(),
        };
        if !(loss.is_finite() && val_loss.is_finite()) {
            bar.abandon();
            return Err(TrainError::Diverged {
                epoch,
                loss,
                val_loss,
            });
        }
        tracing::info!(
            "epoch {epoch}/{}: loss {loss:.6}, val_loss {val_loss:.6} ({:.2} s)",
            cfg.epochs,
            record.seconds
        );
        bar.set_message(format!("loss {loss:.5}  val_loss {val_loss:.5}"));
        bar.inc(1);
        history.epochs.push(record);
    }
    bar.finish_and_clear();
    Ok(history)
}

/// An epoch bar on stderr; indicatif draws nothing when stderr is not a terminal.
fn progress_bar(epochs: u32) -> ProgressBar {
    ProgressBar::new(u64::from(epochs)).with_style(
        ProgressStyle::with_template("epoch {pos:>3}/{len} [{bar:30}] {msg}  eta {eta}")
            .expect("a valid constant template")
            .progress_chars("=> "),
    )
}
