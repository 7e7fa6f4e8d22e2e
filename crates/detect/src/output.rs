//! Where the scores go: a Parquet or CSV file (written whole, atomically,
//! once every image is scored), CSV on standard output (a batch at a time)
//! or an aligned table on a terminal.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use ae_store::Score;
use ae_tables::{ImageScores, image_score_columns};

use crate::{DetectError, Scored};

/// Where the scores go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A Parquet file.
    Parquet(PathBuf),
    /// A CSV file.
    Csv(PathBuf),
    /// CSV on standard output (a pipe or a file).
    CsvStdout,
    /// An aligned table on standard output (a terminal).
    Terminal,
}

impl Output {
    /// The output `--out` asks for: a file by its extension, else standard
    /// output as a table on a terminal or CSV otherwise.
    pub fn choose(out: Option<&Path>, terminal: bool) -> Result<Self, String> {
        let Some(path) = out else {
            return Ok(if terminal {
                Output::Terminal
            } else {
                Output::CsvStdout
            });
        };
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "parquet" | "pq" => Ok(Output::Parquet(path.to_path_buf())),
            "csv" => Ok(Output::Csv(path.to_path_buf())),
            _ => Err(format!(
                "--out {}: cannot tell the format from its name; end it in .parquet or .csv",
                path.display()
            )),
        }
    }
}

/// The scores being written to an [`Output`].
#[derive(Debug)]
pub struct Table {
    output: Output,
    score: Score,
    /// The rows kept for a file.
    rows: ImageScores,
    file_ids: HashMap<PathBuf, u32>,
    /// Standard output, for CSV or a table.
    stdout: std::io::BufWriter<std::io::Stdout>,
    header_written: bool,
}

impl Table {
    /// Scores of kind `score` to be written to `output`.
    pub fn new(output: Output, score: Score) -> Self {
        Self {
            output,
            score,
            rows: ImageScores::new(score),
            file_ids: HashMap::new(),
            stdout: std::io::BufWriter::new(std::io::stdout()),
            header_written: false,
        }
    }

    /// Adds a scored batch: kept for a file, written to standard output now.
    pub fn push(&mut self, scored: &Scored<'_>) -> Result<(), DetectError> {
        match self.output {
            Output::Parquet(_) | Output::Csv(_) => {
                self.keep(scored);
                Ok(())
            }
            Output::CsvStdout | Output::Terminal => self.print(scored).map_err(DetectError::Stdout),
        }
    }

    /// Writes the file (or flushes standard output).
    pub fn finish(mut self) -> Result<(), DetectError> {
        match &self.output {
            Output::Parquet(path) => self.rows.write_parquet(path)?,
            Output::Csv(path) => {
                let rows = &self.rows;
                let score = self.score;
                ae_store::write_atomic(path, |out| write_csv(out, score, rows))?;
            }
            Output::CsvStdout | Output::Terminal => {
                if !self.header_written {
                    write_header(&mut self.stdout, &self.output, self.score)
                        .map_err(DetectError::Stdout)?;
                }
                self.stdout.flush().map_err(DetectError::Stdout)?;
            }
        }
        Ok(())
    }

    fn keep(&mut self, scored: &Scored<'_>) {
        let batch = scored.batch;
        for (i, origin) in batch.origins.iter().enumerate() {
            // Looked up by reference: a file of a million images is one
            // entry, and its rows allocate nothing.
            let id = match self.file_ids.get(origin.path()) {
                Some(&id) => id,
                None => {
                    let id = self.rows.files.len() as u32;
                    self.file_ids.insert(origin.path().to_path_buf(), id);
                    self.rows.files.push(origin.path().display().to_string());
                    id
                }
            };
            let (label, label_name) = label_of(batch, i);
            self.rows.file.push(id);
            self.rows.index.push(origin.index());
            self.rows.label.push(label);
            self.rows.label_name.push(label_name.map(str::to_string));
            self.rows.values.push(scored.scores[i]);
            self.rows.is_anomaly.push(scored.flags[i]);
        }
    }

    fn print(&mut self, scored: &Scored<'_>) -> std::io::Result<()> {
        if !self.header_written {
            write_header(&mut self.stdout, &self.output, self.score)?;
            self.header_written = true;
        }
        let batch = scored.batch;
        for (i, origin) in batch.origins.iter().enumerate() {
            let (label, name) = label_of(batch, i);
            let (score, flag) = (scored.scores[i], scored.flags[i]);
            match self.output {
                Output::Terminal => writeln!(
                    self.stdout,
                    "{score:>12.6}  {:<7}  {:<10}  {origin}",
                    if flag { "yes" } else { "no" },
                    name.map(str::to_string)
                        .or(label.map(|l| l.to_string()))
                        .unwrap_or_else(|| "-".into()),
                )?,
                _ => csv_row(
                    &mut self.stdout,
                    &origin.path().display().to_string(),
                    origin.index(),
                    label,
                    name,
                    score,
                    flag,
                )?,
            }
        }
        Ok(())
    }
}

fn write_header(out: &mut dyn Write, output: &Output, score: Score) -> std::io::Result<()> {
    match output {
        Output::Terminal => writeln!(
            out,
            "{:>12}  {:<7}  {:<10}  image",
            score.column(),
            "anomaly",
            "label"
        ),
        _ => writeln!(out, "{}", image_score_columns(score).join(",")),
    }
}

/// Row `i`'s label and class name.
fn label_of(batch: &ae_data::scan::Batch, i: usize) -> (Option<u8>, Option<&str>) {
    let label = batch.labels.as_ref().map(|l| l[i]);
    let name = label.and_then(|l| {
        batch
            .label_names
            .as_ref()
            .and_then(|names| names.get(usize::from(l)))
            .map(String::as_str)
    });
    (label, name)
}

fn write_csv(out: &mut dyn Write, score: Score, rows: &ImageScores) -> std::io::Result<()> {
    writeln!(out, "{}", image_score_columns(score).join(","))?;
    for r in 0..rows.len() {
        csv_row(
            out,
            &rows.files[rows.file[r] as usize],
            rows.index[r],
            rows.label[r],
            rows.label_name[r].as_deref(),
            rows.values[r],
            rows.is_anomaly[r],
        )?;
    }
    Ok(())
}

/// One CSV row, in the order of [`image_score_columns`]; a field that is
/// absent is empty.
fn csv_row(
    out: &mut dyn Write,
    file: &str,
    index: Option<u64>,
    label: Option<u8>,
    name: Option<&str>,
    score: f32,
    flag: bool,
) -> std::io::Result<()> {
    let index = index.map(|i| i.to_string()).unwrap_or_default();
    let label = label.map(|l| l.to_string()).unwrap_or_default();
    let name = name.map(quoted).unwrap_or_default();
    writeln!(
        out,
        "{},{index},{label},{name},{score},{flag}",
        quoted(file)
    )
}

/// A CSV field: quoted when it holds a comma, a quote or a line break.
fn quoted(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_commas_or_quotes_are_quoted() {
        assert_eq!(quoted("a/b.png"), "a/b.png");
        assert_eq!(quoted("a,b.png"), "\"a,b.png\"");
        assert_eq!(quoted("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn the_output_is_told_by_the_extension() {
        assert_eq!(
            Output::choose(Some(Path::new("s.PARQUET")), true),
            Ok(Output::Parquet("s.PARQUET".into()))
        );
        assert_eq!(
            Output::choose(Some(Path::new("s.csv")), true),
            Ok(Output::Csv("s.csv".into()))
        );
        assert!(
            Output::choose(Some(Path::new("s.txt")), false)
                .is_err_and(|e| e.contains("s.txt") && e.contains(".parquet"))
        );
        assert_eq!(Output::choose(None, true), Ok(Output::Terminal));
        assert_eq!(Output::choose(None, false), Ok(Output::CsvStdout));
    }
}
