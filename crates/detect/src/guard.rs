//! Outputs that would destroy what the user has: `--out` naming an input
//! or the detector, `--explain` inside an input folder (its maps would be
//! scored next time), `--onnx` naming the detector.

use std::path::{Path, PathBuf};

use crate::DetectError;

/// An output of `ae score` or `ae export`.
#[derive(Debug, Clone, Copy)]
pub struct Planned<'a> {
    /// The flag that names it: `--out`, `--explain`, `--onnx`.
    pub flag: &'static str,
    /// Its path.
    pub path: &'a Path,
    /// Whether it is a folder that files are written into.
    pub folder: bool,
}

/// Refuses any `outputs` that is one of `inputs` or the detector, or, for
/// a folder, lies inside an input folder.
pub fn check_outputs(
    detector: &Path,
    inputs: &[PathBuf],
    outputs: &[Planned<'_>],
) -> Result<(), DetectError> {
    let inputs: Vec<(PathBuf, bool)> = inputs
        .iter()
        .filter_map(|p| Some((resolved(p)?, p.is_dir())))
        .collect();
    let detector = resolved(detector);
    for out in outputs {
        let Some(path) = resolved(out.path) else {
            continue;
        };
        let clash = |role: String| DetectError::Overwrite {
            what: out.flag,
            path: out.path.to_path_buf(),
            role,
        };
        if detector.as_ref() == Some(&path) {
            return Err(clash("the detector".into()));
        }
        for (input, is_dir) in &inputs {
            if *input == path {
                return Err(clash("an input".into()));
            }
            if out.folder && *is_dir && path.starts_with(input) {
                return Err(clash(format!(
                    "inside the input folder {} (its files would be read as images next time)",
                    input.display()
                )));
            }
        }
    }
    Ok(())
}

/// `path` made absolute with its links resolved, as far as it exists: the
/// nearest existing ancestor canonicalised, the rest appended.
fn resolved(path: &Path) -> Option<PathBuf> {
    let mut rest = Vec::new();
    let mut at = path;
    loop {
        if let Ok(real) = at.canonicalize() {
            return Some(rest.iter().rev().fold(real, |p, part| p.join(part)));
        }
        rest.push(at.file_name()?.to_os_string());
        at = match at.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_that_are_inputs_or_the_detector_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir_all(d.join("images")).expect("mkdir");
        std::fs::write(d.join("x.csv"), "label").expect("write");
        std::fs::write(d.join("det.safetensors"), "d").expect("write");
        let inputs = [d.join("x.csv"), d.join("images")];
        let detector = d.join("det.safetensors");
        let check = |flag, path: PathBuf, folder| {
            check_outputs(
                &detector,
                &inputs,
                &[Planned {
                    flag,
                    path: &path,
                    folder,
                }],
            )
        };
        // Through another spelling of the same path.
        let same = d.join("images/../x.csv");
        assert!(check("--out", same, false).is_err_and(|e| e.to_string().contains("an input")));
        assert!(check("--onnx", detector.clone(), false).is_err());
        assert!(
            check("--explain", d.join("images/why/deeper"), true)
                .is_err_and(|e| e.to_string().contains("inside the input folder"))
        );
        assert!(check("--out", d.join("images/scores.csv"), false).is_ok());
        assert!(check("--out", d.join("new/scores.parquet"), false).is_ok());
        assert!(check("--explain", d.join("why"), true).is_ok());
    }
}
