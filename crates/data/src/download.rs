//! Downloading a missing dataset file from an ordered list of mirrors.
//!
//! Each attempt streams the body into a temporary file next to the
//! destination, then decompresses and checks it against the published
//! digest. Only a verified file is renamed into place; a failed or corrupt
//! download is deleted and the next mirror is tried.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{MirrorError, MirrorFailure};
use crate::source::gunzip;
use crate::{DataError, IdxFile};

/// Fetches dataset files from mirrors, in order, with timeouts.
#[derive(Debug)]
pub struct Downloader {
    agent: ureq::Agent,
    mirrors: Vec<String>,
}

impl Downloader {
    /// A downloader that tries `mirrors` in order. `connect_timeout` bounds
    /// each connection attempt; `read_timeout` bounds every wait for data.
    pub fn new(mirrors: Vec<String>, connect_timeout: Duration, read_timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(connect_timeout))
            .timeout_recv_response(Some(read_timeout))
            .timeout_per_read(Some(read_timeout))
            .user_agent(concat!("ae/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            agent: config.into(),
            mirrors,
        }
    }

    /// Downloads `file` into `dir` (created if missing) from the first mirror
    /// that serves a verified copy, and returns where it landed: `<name>.gz`,
    /// or `<name>` if the mirror served raw IDX.
    pub fn fetch(&self, file: &IdxFile, dir: &Path) -> Result<PathBuf, DataError> {
        let dir_err = |source| DataError::DataDir {
            dir: dir.to_path_buf(),
            source,
        };
        fs::create_dir_all(dir).map_err(dir_err)?;
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

    /// Streams `url` into `out` and verifies it; returns whether it was gzip.
    fn download_verified(
        &self,
        url: &str,
        file: &IdxFile,
        out: &File,
    ) -> Result<bool, MirrorError> {
        let mut response = self.agent.get(url).call()?;
        let bar = progress_bar(file.name, response.body().content_length());
        {
            let mut reader = bar.wrap_read(response.body_mut().as_reader());
            let mut writer = BufWriter::with_capacity(1 << 20, out);
            io::copy(&mut reader, &mut writer).map_err(MirrorError::Body)?;
            writer.flush().map_err(MirrorError::Body)?;
        }
        bar.finish_and_clear();

        let mut body = Vec::new();
        let mut out = out;
        out.seek(SeekFrom::Start(0)).map_err(MirrorError::Body)?;
        out.read_to_end(&mut body).map_err(MirrorError::Body)?;
        let gzipped = body.starts_with(&[0x1f, 0x8b]);
        let content = if gzipped {
            gunzip(&body, file.len).map_err(MirrorError::Gzip)?
        } else {
            body
        };
        let found = ae_store::sha256_hex(&content);
        if found != file.sha256 {
            return Err(MirrorError::Checksum {
                expected: file.sha256,
                found,
            });
        }
        Ok(gzipped)
    }
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
