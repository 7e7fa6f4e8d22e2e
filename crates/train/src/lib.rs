//! The `train` stage: fits the autoencoder to the training split.
//!
//! Reads [`files::TRAIN_SPLIT`] and [`files::TEST_SPLIT`]; writes
//! [`files::MODEL`] (the weights, see [`ae_model::Params`]) and
//! [`files::HISTORY`] (`epoch,loss,val_loss,seconds`). Keras's recipe: weights
//! from Glorot-uniform with the config seed, Adam with Keras's ε placement,
//! MSE loss, the split reshuffled every epoch from the seed (last partial
//! batch used), validation on the whole test split after every epoch.
//!
//! Two engines compute the steps (see [`Engine`]): dfdx's autodiff, the
//! reference, and a hand-fused step that the tests hold to it.

mod batches;
mod config;
mod dfdx_engine;
mod engine;
mod fit;
mod fused;

use ae_model::{ModelConfig, ModelError, Params, with_latent};
use ae_store::{Env, Input, PipelineStage, RunDir, StoreError, files};
use serde_json::json;

pub use config::{EarlyStopping, Engine, TrainConfig, ValidateOn};
pub use dfdx_engine::DfdxEngine;
pub use engine::{AdamSettings, TrainEngine};
pub use fit::{Fit, fit};
pub use fused::{FusedEngine, gemm_only_seconds, kernel_path};

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss became NaN or infinite.
    #[error(
        "training diverged at epoch {epoch}: loss {loss}, val_loss {val_loss}; lower train.learning_rate or check the data"
    )]
    Diverged {
        /// 1-based.
        epoch: u32,
        /// The epoch's loss.
        loss: f64,
        /// The epoch's validation loss.
        val_loss: f64,
    },
    /// A model could not be built or saved.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// An input could not be read or an output written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The thread pool for dfdx's GEMMs could not be started.
    #[error("cannot start the training thread")]
    Threads(#[from] rayon::ThreadPoolBuildError),
}

/// The train stage, for the runner.
#[derive(Debug, Clone, Copy)]
pub struct TrainStage;

/// What the train stage reads of the experiment config.
#[derive(Debug, Clone, PartialEq)]
pub struct StageConfig {
    /// `[model]`.
    pub model: ModelConfig,
    /// `[train]`.
    pub train: TrainConfig,
    /// The experiment's seed: initial weights and the shuffle order.
    pub seed: u64,
}

/// How many threads a fit may use: `None` for as many as help (the fused
/// engine uses at most two). The results are the same either way.
pub type MaxThreads = Option<usize>;

impl PipelineStage for TrainStage {
    const NAME: &'static str = "train";
    type Config = StageConfig;
    type Outcome = ();
    type Error = TrainError;

    fn inputs(cfg: &StageConfig, _env: &Env) -> Vec<Input> {
        Input::run_files([files::TRAIN_SPLIT, validation_file(cfg.train.validate_on)])
    }

    fn outputs(_cfg: &StageConfig) -> Vec<String> {
        [files::MODEL, files::HISTORY, files::FIT]
            .into_iter()
            .map(String::from)
            .collect()
    }

    fn params(cfg: &StageConfig) -> serde_json::Value {
        // Every field is in: each changes the weights (the two engines round
        // differently, so even `engine` does).
        let StageConfig {
            model: ModelConfig { latent },
            train:
                TrainConfig {
                    epochs,
                    batch_size,
                    shuffle,
                    learning_rate,
                    beta1,
                    beta2,
                    epsilon,
                    engine,
                    validate_on,
                    early_stopping,
                },
            seed,
        } = cfg;
        json!({
            "model": {"latent": latent},
            "train": {
                "epochs": epochs, "batch_size": batch_size, "shuffle": shuffle,
                "learning_rate": learning_rate, "beta1": beta1, "beta2": beta2,
                "epsilon": epsilon, "engine": engine,
                "validate_on": validate_on, "early_stopping": early_stopping,
            },
            "seed": seed,
        })
    }

    fn run(cfg: &StageConfig, env: &Env, run: &RunDir) -> Result<(), TrainError> {
        // One byte per pixel where the images are 8-bit (MNIST's are): a
        // quarter of the memory, the same values.
        let train = ae_store::read_split_pixels(&run.path(files::TRAIN_SPLIT))?;
        let validate_on = cfg.train.validate_on;
        let validation = ae_store::read_split_pixels(&run.path(validation_file(validate_on)))?;
        tracing::info!(
            "{} training images, validating on {} {} images; {} engine, latent {}",
            train.images(),
            validation.images(),
            validate_on.name(),
            cfg.train.engine.name(),
            cfg.model.latent
        );
        let initial = Params::glorot(cfg.model.latent, cfg.seed)?;
        let fit = train_params(
            &cfg.train,
            &initial,
            cfg.seed,
            train.view(),
            validation.view(),
            env.threads,
        )?;
        fit.params.save(&run.path(files::MODEL))?;
        fit.history.save(&run.path(files::HISTORY))?;
        fit.summary.save(&run.path(files::FIT))?;
        if let Some(last) = fit.history.last() {
            tracing::info!(
                "final loss {:.6}, val_loss {:.6} after {} epochs",
                last.loss,
                last.val_loss,
                last.epoch
            );
        }
        tracing::info!("{}", fit.summary.reason);
        Ok(())
    }
}

/// The split `val_loss` is measured on.
fn validation_file(on: ValidateOn) -> &'static str {
    match on {
        ValidateOn::Test => files::TEST_SPLIT,
        ValidateOn::Validation => files::VALIDATION_SPLIT,
    }
}

/// Trains from `initial` with the configured engine, validating on
/// `validation` after every epoch; returns the weights kept (the last
/// epoch's, or with early stopping the best one's), the history and how the
/// fit ended.
pub fn train_params(
    cfg: &TrainConfig,
    initial: &Params,
    seed: u64,
    train: ae_store::PixelsRef<'_>,
    validation: ae_store::PixelsRef<'_>,
    threads: MaxThreads,
) -> Result<Fit, TrainError> {
    let adam = AdamSettings::from(cfg);
    // dfdx hands its GEMMs to rayon's current pool; on these small shapes one
    // thread is faster than two (waking a worker costs more than it saves).
    // The engine is built inside the pool: dfdx's optimiser is not `Send`.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let span = tracing::Span::current();
    pool.install(|| {
        let _entered = span.enter();
        let mut engine = engine(cfg.engine, initial, adam, threads)?;
        fit(engine.as_mut(), cfg, seed, train, validation)
    })
}

/// The configured engine, starting from `initial`, on at most `threads` threads.
pub fn engine(
    kind: Engine,
    initial: &Params,
    adam: AdamSettings,
    threads: MaxThreads,
) -> Result<Box<dyn TrainEngine>, ModelError> {
    with_latent!(initial.latent(), |L| {
        let engine: Box<dyn TrainEngine> = match kind {
            Engine::Dfdx => Box::new(DfdxEngine::<L>::new(initial, adam)?),
            Engine::Fused => Box::new(match threads {
                Some(n) => FusedEngine::with_threads(initial, adam, n),
                None => FusedEngine::new(initial, adam),
            }),
        };
        engine
    })
}
