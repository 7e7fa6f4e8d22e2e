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
mod history;

use ae_model::{ModelConfig, ModelError, Params, with_latent};
use ae_store::{RunDir, StoreError, files};

pub use config::{Engine, TrainConfig};
pub use dfdx_engine::DfdxEngine;
pub use engine::{AdamSettings, TrainEngine};
pub use fit::fit;
pub use fused::FusedEngine;
pub use history::{EpochRecord, History};

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
    #[error("cannot start the training thread: {0}")]
    Threads(#[from] rayon::ThreadPoolBuildError),
}

/// What the train stage wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainArtifacts {
    /// The files written, relative to the run directory.
    pub outputs: Vec<&'static str>,
    /// Every epoch's figures.
    pub history: History,
}

/// The files the train stage reads, relative to the run directory.
pub const INPUTS: [&str; 2] = [files::TRAIN_SPLIT, files::TEST_SPLIT];

/// How many threads a fit may use: `None` for as many as help (the fused
/// engine uses at most two). The results are the same either way.
pub type MaxThreads = Option<usize>;

/// Runs the train stage in `run`.
pub fn run(
    cfg: &TrainConfig,
    model: &ModelConfig,
    seed: u64,
    run: &RunDir,
    threads: MaxThreads,
) -> Result<TrainArtifacts, TrainError> {
    let train = ae_store::read_split(&run.path(files::TRAIN_SPLIT))?;
    let test = ae_store::read_split(&run.path(files::TEST_SPLIT))?;
    tracing::info!(
        "{} training and {} test images; {} engine, latent {}",
        train.len(),
        test.len(),
        cfg.engine.name(),
        model.latent
    );
    let initial = Params::glorot(model.latent, seed)?;
    let (params, history) = train_params(cfg, &initial, seed, &train, &test, threads)?;
    params.save(&run.path(files::MODEL))?;
    history.save(&run.path(files::HISTORY))?;
    Ok(TrainArtifacts {
        outputs: vec![files::MODEL, files::HISTORY],
        history,
    })
}

/// Trains from `initial` with the configured engine; returns the final
/// weights and the history.
pub fn train_params(
    cfg: &TrainConfig,
    initial: &Params,
    seed: u64,
    train: &ae_store::Split,
    test: &ae_store::Split,
    threads: MaxThreads,
) -> Result<(Params, History), TrainError> {
    let adam = AdamSettings::from(cfg);
    // dfdx hands its GEMMs to rayon's current pool; on these small shapes one
    // thread is faster than two (waking a worker costs more than it saves).
    // The engine is built inside the pool: dfdx's optimiser is not `Send`.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let span = tracing::Span::current();
    pool.install(|| {
        let _entered = span.enter();
        let mut engine = engine(cfg.engine, initial, adam, threads)?;
        let history = fit(engine.as_mut(), cfg, seed, train, test)?;
        Ok((engine.params(), history))
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
