//! The epoch loop shared by every engine.

use std::time::Instant;

use ae_store::PixelsRef;
use indicatif::{ProgressBar, ProgressStyle};

use ae_model::Params;
use ae_store::{EpochRecord, FitSummary, History};

use crate::batches::Order;
use crate::engine::TrainEngine;
use crate::{EarlyStopping, TrainConfig, TrainError};

/// What a fit produced.
#[derive(Debug, Clone)]
pub struct Fit {
    /// The weights kept: the last epoch's, or with early stopping the best one's.
    pub params: Params,
    /// Every epoch trained.
    pub history: History,
    /// How it ended and which epoch was kept.
    pub summary: FitSummary,
}

/// Follows the validation loss for early stopping.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Monitor {
    rule: EarlyStopping,
    best: f64,
    best_epoch: u32,
    waited: u32,
}

impl Monitor {
    pub(crate) fn new(rule: EarlyStopping) -> Self {
        Self {
            rule,
            best: f64::INFINITY,
            best_epoch: 0,
            waited: 0,
        }
    }

    /// Records an epoch's validation loss; returns whether it is the new
    /// best (fell by more than `min_delta`).
    pub(crate) fn improved(&mut self, epoch: u32, val_loss: f64) -> bool {
        if val_loss < self.best - self.rule.min_delta {
            self.best = val_loss;
            self.best_epoch = epoch;
            self.waited = 0;
            true
        } else {
            self.waited += 1;
            false
        }
    }

    /// Whether `patience` epochs have passed without improvement.
    pub(crate) fn should_stop(&self) -> bool {
        self.waited >= self.rule.patience
    }
}

/// Trains `engine` for up to `cfg.epochs` epochs on `train`, validating on
/// `validation` after each: `loss` is the mean of the epoch's batch losses,
/// `val_loss` the MSE over the whole validation split. With
/// `cfg.early_stopping` it stops once the validation loss has not improved
/// for `patience` epochs and keeps the best epoch's weights. Stops with an
/// error at the first epoch whose loss is not finite.
pub fn fit(
    engine: &mut dyn TrainEngine,
    cfg: &TrainConfig,
    seed: u64,
    train: PixelsRef<'_>,
    validation: PixelsRef<'_>,
) -> Result<Fit, TrainError> {
    let mut order = Order::new(train.images(), cfg.shuffle, seed);
    let mut history = History::default();
    let mut monitor = cfg.early_stopping.map(Monitor::new);
    let mut best: Option<(Params, EpochRecord)> = None;
    let bar = progress_bar(cfg.epochs);
    for epoch in 1..=cfg.epochs {
        let clock = Instant::now();
        let loss = engine.train_epoch(train, order.next_epoch(), cfg.batch_size);
        let val_loss = engine.squared_error_sum(validation) / validation.len() as f64;
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
        if let Some(monitor) = &mut monitor {
            if monitor.improved(epoch, val_loss) {
                best = Some((engine.params(), record));
            } else if monitor.should_stop() {
                break;
            }
        }
    }
    bar.finish_and_clear();
    let last = *history.last().expect("at least one epoch");
    let validated_on = cfg.validate_on.name().to_string();
    let (params, summary) = match (best, cfg.early_stopping) {
        (Some((params, kept)), Some(rule)) => {
            let stopped_early = last.epoch < cfg.epochs;
            let reason = if stopped_early {
                format!(
                    "early stopping: val_loss did not fall more than {} below its best for {} epochs; stopped after epoch {} and kept epoch {} (val_loss {:.6})",
                    rule.min_delta, rule.patience, last.epoch, kept.epoch, kept.val_loss
                )
            } else {
                format!(
                    "ran all {} epochs; kept epoch {}, the best by val_loss ({:.6})",
                    cfg.epochs, kept.epoch, kept.val_loss
                )
            };
            let summary = FitSummary {
                epochs_run: last.epoch,
                max_epochs: cfg.epochs,
                kept_epoch: kept.epoch,
                kept_val_loss: kept.val_loss,
                validated_on,
                stopped_early,
                reason,
            };
            (params, summary)
        }
        _ => {
            let summary = FitSummary {
                epochs_run: last.epoch,
                max_epochs: cfg.epochs,
                kept_epoch: last.epoch,
                kept_val_loss: last.val_loss,
                validated_on,
                stopped_early: false,
                reason: format!("ran all {} epochs; kept the last", cfg.epochs),
            };
            (engine.params(), summary)
        }
    };
    Ok(Fit {
        params,
        history,
        summary,
    })
}

/// An epoch bar on stderr; indicatif draws nothing when stderr is not a terminal.
fn progress_bar(epochs: u32) -> ProgressBar {
    ProgressBar::new(u64::from(epochs)).with_style(
        ProgressStyle::with_template("epoch {pos:>3}/{len} [{bar:30}] {msg}  eta {eta}")
            .expect("a valid constant template")
            .progress_chars("=> "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic loss curve: falls, then rises; with patience 3 and
    /// min_delta 0.01 the monitor stops three epochs after the best.
    #[test]
    fn stops_after_patience_epochs_without_improvement() {
        let curve = [1.0, 0.5, 0.3, 0.295, 0.31, 0.32, 0.2, 0.1];
        let mut monitor = Monitor::new(EarlyStopping {
            patience: 3,
            min_delta: 0.01,
        });
        let mut stopped = None;
        let mut best = 0;
        for (i, &loss) in curve.iter().enumerate() {
            let epoch = i as u32 + 1;
            if monitor.improved(epoch, loss) {
                best = epoch;
            } else if monitor.should_stop() {
                stopped = Some(epoch);
                break;
            }
        }
        // 0.295 is not 0.01 below 0.3: epoch 3 stays the best.
        assert_eq!((best, stopped), (3, Some(6)));
    }
}
