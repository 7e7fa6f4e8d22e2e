//! Logging: `tracing` events to stderr and, once the run directory is known,
//! appended to its `run.log`.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// Events with this target go to `run.log` only (the final error, which
/// `main` prints to stderr itself).
pub(crate) const LOG_FILE_ONLY: &str = "ae::log_file_only";

/// How much to print: `-q` warnings only, default info, `-v` debug, `-vv` trace.
/// `AE_LOG` (an env-filter directive such as `ae_data=debug`) overrides it.
pub(crate) fn filter(verbose: u8, quiet: bool) -> EnvFilter {
    if let Ok(filter) = EnvFilter::try_from_env("AE_LOG") {
        return filter;
    }
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    EnvFilter::new(level)
}

/// Compact lines on stderr, at the level `-v`/`-q` (or `AE_LOG`) asks for.
fn stderr_layer<S>(verbose: u8, quiet: bool) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .without_time()
        .with_target(false)
        .with_filter(filter_fn(|meta| meta.target() != LOG_FILE_ONLY))
        .with_filter(filter(verbose, quiet))
}

/// Installs the global subscriber: compact lines on stderr, timestamped lines
/// appended to `log_path`.
pub(crate) fn init(verbose: u8, quiet: bool, log_path: &Path) -> anyhow::Result<()> {
    // Opening a named pipe to write would wait for a reader: say what is there.
    if log_path.symlink_metadata().is_ok() {
        ae_store::regular_file(log_path).context("cannot use the run log")?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .with_context(|| format!("cannot open the run log {}", log_path.display()))?;
    let file_layer = fmt::layer()
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_target(false)
        .with_filter(filter(verbose.max(1), false));
    tracing_subscriber::registry()
        .with(stderr_layer(verbose, quiet))
        .with(file_layer)
        .try_init()
        .context("cannot install the logger")?;
    Ok(())
}

/// Installs a subscriber with the stderr lines only, for commands that
/// have no run directory of their own (`ae sweep`).
pub(crate) fn init_terminal(verbose: u8, quiet: bool) -> anyhow::Result<()> {
    tracing_subscriber::registry()
        .with(stderr_layer(verbose, quiet))
        .try_init()
        .context("cannot install the logger")
}
