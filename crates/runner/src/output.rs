//! Result lines on stdout (logs go to stderr through tracing).

use std::fmt::Display;
use std::io::{self, Write};

/// Prints one result line. A closed stdout (`ae pipeline ... | head -1`) is
/// not an error: the run's artifacts are its product and it carries on
/// quietly; `println!` would panic there, possibly between writing a stage's
/// outputs and recording them in the manifest.
pub(crate) fn line(text: impl Display) {
    if let Err(e) = writeln!(io::stdout().lock(), "{text}")
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        tracing::warn!("cannot write to standard output: {e}");
    }
}
