//! An experiment ready to run: its resolved config, its run directory,
//! where its dataset files are, and what the global flags let it use.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use ae_store::{Cache, Env, RunDir, files};
use anyhow::Context;

use crate::config::{ExperimentConfig, Override};
use crate::stage::{BoundStage, Stage, bind};

/// Where runs go and what they may use, from the global flags; none of it
/// changes a result.
#[derive(Debug, Clone)]
pub(crate) struct Workspace {
    /// The folder of run directories (`runs/`).
    pub(crate) runs_dir: PathBuf,
    /// The stage-output cache, unless disabled.
    pub(crate) cache: Option<Cache>,
    /// At most this many training threads.
    pub(crate) threads: ae_train::MaxThreads,
}

/// A loaded experiment and where its artifacts go.
pub(crate) struct Experiment {
    /// The resolved, validated config.
    pub(crate) cfg: ExperimentConfig,
    /// The file it came from.
    pub(crate) config_path: PathBuf,
    /// `runs/<name>/`.
    pub(crate) run: RunDir,
    /// What every stage may use: the data root (`AE_DATA_DIR`, else
    /// `data.dir`) and the thread limit.
    pub(crate) env: Env,
    /// Where stage outputs are shared with other runs; see [`Experiment::cache`].
    cache: Option<Cache>,
    /// Set once the cache has failed: the rest of the run goes without it.
    cache_failed: AtomicBool,
    /// Whether every file is read again to check its digest (`--verify`),
    /// rather than trusted while its stamp is the one recorded.
    pub(crate) verify: bool,
    /// Every stage bound to its part of `cfg`, in pipeline order.
    stages: [Box<dyn BoundStage>; 5],
}

impl Experiment {
    /// Loads and validates the config and creates the run directory.
    pub(crate) fn open(
        config_path: &Path,
        overrides: &[Override],
        workspace: &Workspace,
    ) -> anyhow::Result<Self> {
        let exp = Self::new(
            ExperimentConfig::load(config_path, overrides)?,
            config_path,
            workspace,
        );
        ae_store::create_dir_all(exp.run.root()).with_context(|| {
            format!(
                "cannot create the run directory; choose another folder with --runs-dir or AE_RUNS_DIR (now {})",
                workspace.runs_dir.display()
            )
        })?;
        Ok(exp)
    }

    /// The experiment of a loaded config, creating nothing.
    pub(crate) fn new(cfg: ExperimentConfig, config_path: &Path, workspace: &Workspace) -> Self {
        let run = RunDir::new(workspace.runs_dir.join(&cfg.name));
        let data_root = match std::env::var_os("AE_DATA_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => cfg.data.dir.clone(),
        };
        Self {
            stages: bind(&cfg),
            cfg,
            config_path: config_path.to_path_buf(),
            run,
            env: Env {
                data_root,
                threads: workspace.threads,
            },
            cache: workspace.cache.clone(),
            cache_failed: AtomicBool::new(false),
            verify: false,
        }
    }

    /// The stage cache, unless disabled or failed earlier in this run.
    pub(crate) fn cache(&self) -> Option<&Cache> {
        self.cache
            .as_ref()
            .filter(|_| !self.cache_failed.load(Ordering::Relaxed))
    }

    /// Goes on without the cache after it failed with `err`: the cache only
    /// saves time, so its failure is a warning (once per run), not an error.
    pub(crate) fn cache_failed(&self, err: ae_store::StoreError) {
        if let Some(cache) = &self.cache
            && !self.cache_failed.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "cannot use the cache {}, going on without it: {:#}",
                cache.root().display(),
                anyhow::Error::from(err)
            );
        }
    }

    /// `stage`, bound to this experiment's config.
    pub(crate) fn stage(&self, stage: Stage) -> &dyn BoundStage {
        self.stages[stage as usize].as_ref()
    }

    /// The stage that writes `file` (relative to the run directory).
    pub(crate) fn producer_of(&self, file: &str) -> Option<Stage> {
        Stage::ALL
            .into_iter()
            .find(|&stage| self.stage(stage).outputs().iter().any(|f| f == file))
    }

    /// Writes the resolved config, defaults filled in, to `config.toml`,
    /// unless it already holds exactly that (so reruns leave it untouched).
    pub(crate) fn write_resolved_config(&self) -> anyhow::Result<()> {
        let text = format!(
            "# The resolved config of run `{}`: every default filled in, so this file\n\
             # reproduces the run on its own (`ae pipeline {}`).\n\n{}",
            self.cfg.name,
            self.run.path(files::CONFIG).display(),
            self.cfg.to_toml()
        );
        let path = self.run.path(files::CONFIG);
        if ae_store::read_bounded_text(&path, ae_store::limits::CONFIG).is_ok_and(|old| old == text)
        {
            return Ok(());
        }
        ae_store::write_atomic(&path, |out| out.write_all(text.as_bytes()))?;
        Ok(())
    }
}
