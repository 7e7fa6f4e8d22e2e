//! The small CSV files of a run (`train/history.csv`, `eval/roc.csv`): a
//! fixed header, then rows of plain numbers separated by commas.

use std::path::Path;

use crate::StoreError;

/// Reads `path` (at most `limit` bytes), checks that its first line is `header`, and turns every
/// other line's fields into an item with `parse` (`None`: not a valid row).
pub(crate) fn read_rows<T>(
    path: &Path,
    limit: u64,
    header: &str,
    parse: impl Fn(&[&str]) -> Option<T>,
) -> Result<Vec<T>, StoreError> {
    let text = crate::read_bounded_text(path, limit)?;
    let bad = |line: &str| StoreError::Format {
        path: path.to_path_buf(),
        message: format!("not a `{header}` row: {line:?}"),
    };
    let mut lines = text.lines();
    match lines.next() {
        Some(first) if first == header => {}
        first => return Err(bad(first.unwrap_or(""))),
    }
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            parse(&fields).ok_or_else(|| bad(line))
        })
        .collect()
}
