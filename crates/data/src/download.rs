//! Downloading a missing dataset file from an ordered list of mirrors.
//!
//! Each attempt streams the body into a temporary file next to the
//! destination, then decompresses and checks it against the published
//! digest. Only a verified file is renamed into place; a failed or corrupt
//! download is deleted and the next mirror is tried. Every download is
//! bounded: in size (a known file's size, plus what gzip may add), in the
//! wait for each read, and in total time.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{MirrorError, MirrorFailure};
use crate::source::{StreamError, read_idx_stream_parts};
use crate::{DataError, IdxFile};

/// How long a download may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Each connection attempt.
    pub connect: Duration,
    /// Each wait for data.
    pub read: Duration,
    /// The whole download of one file from one mirror.
    pub total: Duration,
}

/// The most bytes a mirror may send for a file of `len` bytes: the file
/// itself, raw, or gzip of it (which adds at most a few bytes per 16 KiB
/// block of incompressible data, and a header).
pub fn body_limit(len: u64) -> u64 {
    len + len / 1000 + 64 * 1024
}

/// Fetches dataset files from mirrors, in order, with timeouts.
#[derive(Debug)]
pub struct Downloader {
    agent: ureq::Agent,
    mirrors: Vec<String>,
}

impl Downloader {
    /// A downloader that tries `mirrors` in order, within `timeouts`.
    pub fn new(mirrors: Vec<String>, timeouts: Timeouts) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(timeouts.connect))
            .timeout_recv_response(Some(timeouts.read))
            .timeout_per_read(Some(timeouts.read))
            .timeout_global(Some(timeouts.total))
            .user_agent(concat!("ae/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            agent: config.into(),
            mirrors,
        }
    }

    /// Downloads `file` into `dir` (created if missing) from the first mirror
    /// that serves a verified copy, and returns where it landed: `<name>.gz`,
    /// or `<name>` if the mirror served raw IDX. Downloads into one folder
    /// take turns (a lock file in it), so concurrent runs fetch a file once;
    /// the turn begins by removing what interrupted downloads left.
    pub fn fetch(&self, file: &IdxFile, dir: &Path) -> Result<PathBuf, DataError> {
        let dir_err = |source| DataError::DataDir {
            dir: dir.to_path_buf(),
            source,
        };
        fs::create_dir_all(dir).map_err(dir_err)?;
        let _turn = take_turn(dir)?;
        if let Some(path) = crate::locate(dir, file) {
            tracing::info!(path = %path.display(), "{} was downloaded meanwhile", file.name);
            return Ok(path);
        }
        let freed = ae_store::remove_stale_temps(dir, true);
        if freed > 0 {
            tracing::info!(
                "removed {freed} bytes that interrupted downloads left in {}",
                dir.display()
            );
        }
        let mut attempts = Vec::new();
        for mirror in &self.mirrors {
            let url = join_url(mirror, &format!("{}.gz", file.name));
            tracing::info!(%url, "downloading {}", file.name);
            let temp = ae_store::temp_file_in(dir).map_err(dir_err)?;
            match self.download_verified(&url, file, temp.as_file()) {
                Ok(gzipped) => {
                    let name = if gzipped {
                        format!("{}.gz", file.name)
                    } else {
                        file.name.to_string()
                    };
                    let dest = dir.join(name);
                    temp.persist(&dest).map_err(|e| dir_err(e.error))?;
                    tracing::info!(path = %dest.display(), "downloaded and verified {}", file.name);
                    return Ok(dest);
                }
                Err(reason) => {
                    tracing::warn!(%url, "mirror failed: {reason}");
                    attempts.push(MirrorFailure { url, reason });
                    // `temp` drops here and deletes the bad bytes.
                }
            }
        }
        Err(DataError::Download {
            file: file.name,
            dir: dir.to_path_buf(),
            attempts,
        })
    }

    /// Streams `url` into `out`, no more than a file of `file`'s size may
    /// take, and verifies it; returns whether it was gzip.
    fn download_verified(
        &self,
        url: &str,
        file: &IdxFile,
        out: &File,
    ) -> Result<bool, MirrorError> {
        let limit = body_limit(file.len);
        let mut response = self.agent.get(url).call()?;
        let claimed = response.body().content_length();
        if let Some(claimed) = claimed.filter(|&n| n > limit) {
            return Err(MirrorError::TooLarge {
                bytes: claimed,
                limit,
            });
        }
        let bar = progress_bar(file.name, claimed);
        {
            let reader = bar.wrap_read(response.body_mut().as_reader());
            let mut writer = BufWriter::with_capacity(1 << 20, out);
            let copied =
                io::copy(&mut reader.take(limit + 1), &mut writer).map_err(MirrorError::Body)?;
            if copied > limit {
                return Err(MirrorError::TooLarge {
                    bytes: copied,
                    limit,
                });
            }
            writer.flush().map_err(MirrorError::Body)?;
        }
        bar.finish_and_clear();

        let mut out = out;
        out.seek(SeekFrom::Start(0)).map_err(MirrorError::Body)?;
        let mut gzipped = [0u8; 2];
        let peeked = out.read(&mut gzipped).map_err(MirrorError::Body)?;
        let gzipped = peeked == 2 && gzipped == [0x1f, 0x8b];
        out.seek(SeekFrom::Start(0)).map_err(MirrorError::Body)?;
        // The content is checked (structure, length) and hashed as it is
        // decompressed; it is not kept.
        let mut hasher = ae_store::BackgroundSha256::start();
        let read = read_idx_stream_parts(out, file.kind, Some(file.len), None, |bytes| {
            hasher.update(bytes)
        });
        let found = hasher.finish();
        read.map_err(|e| match e {
            StreamError::Io {
                gzipped: true,
                source,
            } => MirrorError::Gzip(source),
            StreamError::Io { source, .. } => MirrorError::Body(source),
            StreamError::Idx(source) => MirrorError::Idx(source),
            StreamError::Memory { bytes } => MirrorError::TooLarge { bytes, limit },
        })?;
        if found != file.sha256 {
            return Err(MirrorError::Checksum {
                expected: file.sha256,
                found,
            });
        }
        Ok(gzipped)
    }
}

/// The lock of downloads into `dir`, held until dropped.
fn take_turn(dir: &Path) -> Result<File, DataError> {
    let path = dir.join(".ae-download.lock");
    if path.symlink_metadata().is_ok() {
        ae_store::regular_file(&path)?;
    }
    let lock_err = |source| DataError::DataDir {
        dir: dir.to_path_buf(),
        source,
    };
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(lock_err)?;
    file.lock().map_err(lock_err)?;
    Ok(file)
}

fn join_url(base: &str, name: &str) -> String {
    if base.ends_with('/') {
        format!("{base}{name}")
    } else {
        format!("{base}/{name}")
    }
}

/// A byte progress bar on stderr; indicatif draws nothing when stderr is not a terminal.
fn progress_bar(name: &str, total: Option<u64>) -> ProgressBar {
    let bar = match total {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{msg:24} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} eta {eta}",
            )
            .expect("a valid constant template")
            .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{msg:24} {spinner} {bytes:>10} {bytes_per_sec:>12}")
                .expect("a valid constant template"),
        ),
    };
    bar.with_message(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_urls_with_or_without_a_trailing_slash() {
        assert_eq!(join_url("http://a/b/", "f.gz"), "http://a/b/f.gz");
        assert_eq!(join_url("http://a/b", "f.gz"), "http://a/b/f.gz");
    }
}
