//! NumPy `.npz` archives in the MedMNIST layout: a zip (stored or deflated)
//! of `.npy` arrays named `<split>_images` and `<split>_labels`, with
//! `<split>` one of `train`, `val` and `test`.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::{Bad, ImageSet, npy};

/// Reads the `<prefix>_images` array of the archive at `path` and its
/// `<prefix>_labels`, if the archive has them.
pub(crate) fn read(path: &Path, prefix: &str) -> Result<ImageSet, Bad> {
    let bad = |problem: String| Bad::new(path, problem);
    let file = File::open(path).map_err(|e| bad(format!("cannot be opened: {e}")))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| bad(format!("is not a readable .npz (zip) archive: {e}")))?;
    let images_name = format!("{prefix}_images.npy");
    let labels_name = format!("{prefix}_labels.npy");
    if archive.index_for_name(&images_name).is_none() {
        let held: Vec<String> = archive
            .file_names()
            .filter_map(Result::ok)
            .map(|name| name.into_owned())
            .collect();
        return Err(bad(format!(
            "has no `{prefix}_images` array for this split (it holds {}); a MedMNIST-style archive has train_images, val_images and test_images",
            if held.is_empty() {
                "nothing".to_string()
            } else {
                held.join(", ")
            }
        )));
    }
    let pixels = array(&mut archive, &images_name, npy::read_images).map_err(bad)?;
    let labels = if archive.index_for_name(&labels_name).is_some() {
        let labels = array(&mut archive, &labels_name, npy::read_labels).map_err(bad)?;
        if labels.len() != pixels.count() {
            return Err(bad(format!(
                "its `{prefix}_images` holds {} images but `{prefix}_labels` holds {} labels",
                pixels.count(),
                labels.len()
            )));
        }
        Some(labels)
    } else {
        None
    };
    Ok(ImageSet {
        pixels,
        labels,
        names: None,
        origin: path.to_path_buf(),
    })
}

/// Reads the member `name` with `read`, checking that it holds exactly
/// what its header promises.
fn array<T>(
    archive: &mut zip::ZipArchive<File>,
    name: &str,
    read: impl FnOnce(&npy::Header, &mut dyn Read) -> Result<T, String>,
) -> Result<T, String> {
    let mut member = archive
        .by_name(name)
        .map_err(|e| format!("its `{name}` cannot be read: {e}"))?;
    let size = member.size();
    let in_member = |problem: String| format!("its `{name}`: {problem}");
    let header = npy::read_header(&mut member).map_err(in_member)?;
    let expected = header.file_len().map_err(in_member)?;
    if size != expected {
        return Err(in_member(format!(
            "its header promises {expected} bytes but the archive says it holds {size}"
        )));
    }
    let value = read(&header, &mut member).map_err(in_member)?;
    // Read to the end, so that the archive's checksum of the member is checked.
    let mut rest = Vec::new();
    member
        .take(1)
        .read_to_end(&mut rest)
        .map_err(|e| in_member(format!("it is corrupt: {e}")))?;
    if !rest.is_empty() {
        return Err(in_member("it holds more than its header promises".into()));
    }
    Ok(value)
}
