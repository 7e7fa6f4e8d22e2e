//! Why images were flagged (`--explain DIR`): an error map per flagged
//! image (or the `--top K` highest-scoring flagged images), and with
//! `--explain-raw` the squared errors themselves as Parquet.
//!
//! Files are named `<n>-<file stem>[-<index>].png`, `n` the image's place
//! in the whole run (or its rank with `--top`), so that two inputs with the
//! same file names do not overwrite each other.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};

use ae_data::scan::Origin;
use ae_report::{ErrorMap, FigureFormat, squared_errors};
use ae_store::{IMAGE_PIXELS, Score};
use ae_tables::ErrorMaps;

use crate::{DetectError, Scored};

/// The raw error maps' file in the explain folder.
pub const ERROR_MAPS: &str = "error_maps.parquet";

/// What `--explain` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplainOptions {
    /// The folder the figures go to (created if missing).
    pub dir: PathBuf,
    /// Only the K highest-scoring flagged images.
    pub top: Option<usize>,
    /// Also write the squared errors as [`ERROR_MAPS`].
    pub raw: bool,
}

/// One flagged image kept for its figure.
#[derive(Debug, Clone)]
struct Flagged {
    /// Its place in the whole run.
    ordinal: u64,
    origin: Origin,
    score: f32,
    original: Vec<f32>,
    reconstruction: Vec<f32>,
}

impl Flagged {
    /// Higher scores first, then earlier images.
    fn rank(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.ordinal.cmp(&other.ordinal))
    }
}

/// Ordered so that the heap's top is the one to drop first: the lowest
/// score, the latest image.
struct Kept(Flagged);

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Kept {}
impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Kept {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.rank(&other.0)
    }
}

/// Writes error maps as scored batches arrive.
pub struct Explainer {
    options: ExplainOptions,
    score: Score,
    threshold: f64,
    /// Images seen so far.
    seen: u64,
    /// With `--top`: the best K so far.
    kept: BinaryHeap<Kept>,
    raw: ErrorMaps,
    written: u64,
}

impl Explainer {
    /// Error maps of images scored by `score` against `threshold`, into
    /// `options.dir`.
    pub fn new(options: ExplainOptions, score: Score, threshold: f64) -> Result<Self, DetectError> {
        ae_store::create_dir_all(&options.dir)?;
        Ok(Self {
            options,
            score,
            threshold,
            seen: 0,
            kept: BinaryHeap::new(),
            raw: ErrorMaps {
                score,
                file: Vec::new(),
                index: Vec::new(),
                values: Vec::new(),
                squared_errors: Vec::new(),
            },
            written: 0,
        })
    }

    /// Takes a scored batch: draws its flagged images now, or keeps the
    /// best for `--top`.
    pub fn push(&mut self, scored: &Scored<'_>) -> Result<(), DetectError> {
        let batch = scored.batch;
        for (i, origin) in batch.origins.iter().enumerate() {
            let ordinal = self.seen;
            self.seen += 1;
            if !scored.flags[i] {
                continue;
            }
            let pixels = i * IMAGE_PIXELS..(i + 1) * IMAGE_PIXELS;
            let flagged = Flagged {
                ordinal,
                origin: origin.clone(),
                score: scored.scores[i],
                original: batch.images[pixels.clone()].to_vec(),
                reconstruction: scored.reconstructions[pixels].to_vec(),
            };
            match self.options.top {
                None => self.write(&flagged, ordinal + 1)?,
                Some(k) => {
                    self.kept.push(Kept(flagged));
                    if self.kept.len() > k {
                        self.kept.pop();
                    }
                }
            }
        }
        Ok(())
    }

    /// Draws what `--top` kept and writes the raw maps; returns how many
    /// images were explained.
    pub fn finish(mut self) -> Result<u64, DetectError> {
        let mut kept: Vec<Flagged> = std::mem::take(&mut self.kept)
            .into_iter()
            .map(|k| k.0)
            .collect();
        kept.sort_by(Flagged::rank);
        for (rank, flagged) in kept.iter().enumerate() {
            self.write(flagged, rank as u64 + 1)?;
        }
        if self.options.raw {
            self.raw.write_parquet(&self.options.dir.join(ERROR_MAPS))?;
        }
        Ok(self.written)
    }

    /// Draws one error map, named by `n`.
    fn write(&mut self, flagged: &Flagged, n: u64) -> Result<(), DetectError> {
        let path = self.options.dir.join(file_name(n, &flagged.origin));
        let map = ErrorMap {
            name: flagged.origin.to_string(),
            original: &flagged.original,
            reconstruction: &flagged.reconstruction,
            score: flagged.score,
            score_column: self.score.column().to_string(),
            threshold: self.threshold,
        };
        ae_report::render(&map, &path, FigureFormat::Png)?;
        if self.options.raw {
            self.raw
                .file
                .push(flagged.origin.path().display().to_string());
            self.raw.index.push(flagged.origin.index());
            self.raw.values.push(flagged.score);
            self.raw
                .squared_errors
                .extend(squared_errors(&flagged.original, &flagged.reconstruction));
        }
        self.written += 1;
        Ok(())
    }
}

/// `<n>-<stem>[-<index>].png`, with only letters, digits, `-`, `_` and `.`
/// from the stem.
fn file_name(n: u64, origin: &Origin) -> String {
    let stem: String = Path::new(origin.path())
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match origin.index() {
        Some(index) => format!("{n:06}-{stem}-{index}.png"),
        None => format!("{n:06}-{stem}.png"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_numbered_and_plain() {
        assert_eq!(
            file_name(3, &Origin::File("in/a b/cat 1.png".into())),
            "000003-cat_1.png"
        );
        assert_eq!(
            file_name(
                12,
                &Origin::Row {
                    path: "x/digits.npy".into(),
                    index: 40
                }
            ),
            "000012-digits-40.png"
        );
    }
}
