//! `ae bench`: how fast each training engine runs on an experiment's data.

use std::time::Instant;

use ae_model::Params;
use ae_store::files;
use ae_train::{Engine, TrainConfig};

use crate::cli::BenchEngine;
use crate::experiment::Experiment;
use crate::output;
use crate::pipeline::{Mode, Upstream, run_plan};
use crate::stage::Stage;

/// Trains each engine for `epochs` epochs from the config's initial weights
/// and prints seconds per epoch (median of all but the first, which warms
/// caches and allocators) and training images per second.
pub(crate) fn run(exp: &Experiment, epochs: u32, engines: &[BenchEngine]) -> anyhow::Result<()> {
    if !exp.run.path(files::TRAIN_SPLIT).is_file() || !exp.run.path(files::TEST_SPLIT).is_file() {
        run_plan(exp, &[(Stage::Data, None)], Mode::Run, Upstream::Planned)?;
    }
    let train = ae_store::read_split(&exp.run.path(files::TRAIN_SPLIT))?;
    let test = ae_store::read_split(&exp.run.path(files::TEST_SPLIT))?;
    let initial = Params::glorot(exp.cfg.model.latent, exp.cfg.seed)?;
    let engines: Vec<Engine> = if engines.is_empty() {
        vec![Engine::Fused, Engine::Dfdx]
    } else {
        engines.iter().map(|&e| e.into()).collect()
    };

    output::line(format_args!(
        "{} training and {} test images, latent {}, batch {}, {} epochs per engine",
        train.len(),
        test.len(),
        exp.cfg.model.latent,
        exp.cfg.train.batch_size,
        epochs
    ));
    output::line("engine   s/epoch (median)   fastest   images/s   final val_loss");
    for engine in engines {
        let cfg = TrainConfig {
            epochs,
            engine,
            // Every epoch is timed.
            early_stopping: None,
            ..exp.cfg.train.clone()
        };
        let clock = Instant::now();
        let history =
            ae_train::train_params(&cfg, &initial, exp.cfg.seed, &train, &test, exp.env.threads)?
                .history;
        tracing::debug!(
            "{} took {:.2} s in all",
            engine.name(),
            clock.elapsed().as_secs_f64()
        );
        let mut seconds: Vec<f64> = history.epochs.iter().skip(1).map(|e| e.seconds).collect();
        seconds.sort_by(f64::total_cmp);
        let median = seconds[seconds.len() / 2];
        let val_loss = history.last().map_or(f64::NAN, |e| e.val_loss);
        output::line(format_args!(
            "{:<8} {:>16.3}   {:>7.3}   {:>8.0}   {:.6}",
            engine.name(),
            median,
            seconds[0],
            train.len() as f64 / median,
            val_loss
        ));
    }
    Ok(())
}
