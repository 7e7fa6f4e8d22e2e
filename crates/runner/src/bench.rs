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
/// and prints the CPU, the fused engine's kernel path, seconds per epoch
/// (median of all but the first, which warms caches and allocators) and
/// training images per second; with `floor`, the fused engine's GEMMs alone.
pub(crate) fn run(
    exp: &Experiment,
    epochs: u32,
    engines: &[BenchEngine],
    floor: bool,
) -> anyhow::Result<()> {
    if !exp.run.path(files::TRAIN_SPLIT).is_file() || !exp.run.path(files::TEST_SPLIT).is_file() {
        run_plan(exp, &[(Stage::Data, None)], Mode::Run, Upstream::Planned)?;
    }
    let train = ae_store::read_split_pixels(&exp.run.path(files::TRAIN_SPLIT))?;
    let test = ae_store::read_split_pixels(&exp.run.path(files::TEST_SPLIT))?;
    let initial = Params::glorot(exp.cfg.model.latent, exp.cfg.seed)?;
    let engines: Vec<Engine> = if engines.is_empty() {
        vec![Engine::Fused, Engine::Dfdx]
    } else {
        engines.iter().map(|&e| e.into()).collect()
    };

    output::line(format_args!(
        "{} training and {} test images, latent {}, batch {}, {} epochs per engine",
        train.images(),
        test.images(),
        exp.cfg.model.latent,
        exp.cfg.train.batch_size,
        epochs
    ));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    output::line(format_args!(
        "CPU: {} ({cores} cores); fused engine kernels: {}",
        cpu_model(),
        ae_train::kernel_path()
    ));
    output::line("engine   s/epoch (median)   fastest   images/s   final val_loss");
    let mut fused_median = None;
    for engine in engines {
        let cfg = TrainConfig {
            epochs,
            engine,
            // Every epoch is timed.
            early_stopping: None,
            ..exp.cfg.train.clone()
        };
        let clock = Instant::now();
        let history = ae_train::train_params(
            &cfg,
            &initial,
            exp.cfg.seed,
            train.view(),
            test.view(),
            exp.env.threads,
        )?
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
            train.images() as f64 / median,
            val_loss
        ));
        if engine == Engine::Fused {
            fused_median = Some(median);
        }
    }
    if floor {
        let steps = train.images().div_ceil(exp.cfg.train.batch_size);
        let half = exp.cfg.train.batch_size.div_ceil(2);
        let seconds = ae_train::gemm_only_seconds(exp.cfg.model.latent, half, steps)?;
        let ratio = fused_median.map_or(String::new(), |m| {
            format!("; the fused engine's epoch is {:.2}× that", m / seconds)
        });
        output::line(format_args!(
            "GEMMs alone: {seconds:.3} s/epoch ({steps} steps × the five GEMMs of a {half}-row half batch, as each core computes them, no element-wise work){ratio}"
        ));
    }
    Ok(())
}

/// The CPU's model name (`/proc/cpuinfo` on Linux), or what the target is.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| format!("{} CPU", std::env::consts::ARCH))
}
