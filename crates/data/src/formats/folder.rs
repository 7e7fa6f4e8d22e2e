//! Folders of image files (PNG, JPEG, BMP) in the ImageFolder convention:
//! `root/<class>/<image>`, the class folders' names sorted becoming labels
//! 0, 1, …; or a flat `root/<image>` without labels.
//!
//! Colour is converted to 8-bit grayscale (Rec. 709 luma, alpha dropped).
//! Images must be 28×28 unless resizing is asked for (Lanczos3). Files are
//! decoded on every core, each into its own slot of the output.

use std::fs;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use image::imageops::FilterType;

use super::{Bad, ImageSet, Pixels};

/// The file name extensions read as images (lowercase).
pub(crate) const IMAGE_EXTENSIONS: [&str; 5] = ["png", "jpg", "jpeg", "bmp", "dib"];
/// The most bytes one image file may hold.
const MAX_FILE: u64 = 64 << 20;
/// The most pixels an image to be resized may have on a side.
const MAX_SIDE: u32 = 16_384;
/// At most this many classes: labels are bytes.
const MAX_CLASSES: usize = 256;

/// The image files of a folder, in the order they are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listing {
    /// Each image file.
    pub(crate) files: Vec<PathBuf>,
    /// With class folders: their names, sorted, and each file's label.
    pub(crate) classes: Option<(Vec<String>, Vec<u8>)>,
    /// Files skipped because their names do not end in an image extension.
    pub(crate) skipped: usize,
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// The entries of `dir` that are not hidden, sorted by name.
fn entries(dir: &Path) -> Result<Vec<PathBuf>, Bad> {
    let mut paths = Vec::new();
    let read = fs::read_dir(dir).map_err(|e| Bad::new(dir, format!("cannot be listed: {e}")))?;
    for entry in read {
        let entry = entry.map_err(|e| Bad::new(dir, format!("cannot be listed: {e}")))?;
        let path = entry.path();
        if !is_hidden(&path) {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// What an entry of a folder is.
enum Entry {
    Folder(PathBuf),
    Image(PathBuf),
    /// A file whose name does not end in an image extension.
    Other,
}

/// The entries of `dir` that are not hidden, sorted by name, each
/// classified; a pipe or device with an image's name is an error.
fn classified(dir: &Path) -> Result<Vec<Entry>, Bad> {
    entries(dir)?
        .into_iter()
        .map(|path| {
            let meta =
                fs::metadata(&path).map_err(|e| Bad::new(&path, format!("cannot be read: {e}")))?;
            Ok(if meta.is_dir() {
                Entry::Folder(path)
            } else if !is_image(&path) {
                Entry::Other
            } else if meta.is_file() {
                Entry::Image(path)
            } else {
                return Err(Bad::new(
                    &path,
                    "is not a regular file (a pipe or a device?)",
                ));
            })
        })
        .collect()
}

/// Lists the image files under `root`: class folders, or images directly.
pub(crate) fn image_files(root: &Path) -> Result<Listing, Bad> {
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    let mut skipped = 0;
    for entry in classified(root)? {
        match entry {
            Entry::Folder(path) => dirs.push(path),
            Entry::Image(path) => files.push(path),
            Entry::Other => skipped += 1,
        }
    }
    match (dirs.is_empty(), files.is_empty()) {
        (true, true) => Err(Bad::new(
            root,
            format!(
                "holds no image ({}); put images (.png, .jpg, .bmp) in it, or one folder of them per class",
                if skipped > 0 {
                    format!("{skipped} files of other kinds")
                } else {
                    "it is empty".into()
                }
            ),
        )),
        (true, false) => Ok(Listing {
            files,
            classes: None,
            skipped,
        }),
        (false, false) => Err(Bad::new(
            root,
            format!(
                "holds both images (such as {}) and class folders (such as {}); keep one kind",
                files[0].display(),
                dirs[0].display()
            ),
        )),
        (false, true) => {
            if dirs.len() > MAX_CLASSES {
                return Err(Bad::new(
                    root,
                    format!(
                        "holds {} class folders; ae takes at most {MAX_CLASSES}",
                        dirs.len()
                    ),
                ));
            }
            let mut names = Vec::new();
            let mut labels = Vec::new();
            for (label, dir) in dirs.iter().enumerate() {
                let before = files.len();
                for entry in classified(dir)? {
                    match entry {
                        Entry::Folder(path) => {
                            return Err(Bad::new(
                                &path,
                                "is a folder inside a class folder; ae reads root/<class>/<image> only: move its images up, or remove it",
                            ));
                        }
                        Entry::Image(path) => files.push(path),
                        Entry::Other => skipped += 1,
                    }
                }
                if files.len() == before {
                    return Err(Bad::new(
                        dir,
                        "is a class folder that holds no image; remove it or fill it",
                    ));
                }
                let label = u8::try_from(label).expect("at most 256 classes");
                labels.resize(files.len(), label);
                names.push(
                    dir.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                );
            }
            Ok(Listing {
                files,
                classes: Some((names, labels)),
                skipped,
            })
        }
    }
}

/// Reads every image under `root` as 28×28 grayscale bytes.
pub(crate) fn read(root: &Path, resize: bool) -> Result<ImageSet, crate::DataError> {
    let listing = image_files(root)?;
    if listing.skipped > 0 {
        tracing::warn!(
            "{}: skipped {} files whose names do not end in an image extension ({})",
            root.display(),
            listing.skipped,
            IMAGE_EXTENSIONS.join(", ")
        );
    }
    let pixels = decode_all(&listing.files, resize)?;
    let (names, labels) = match listing.classes {
        Some((names, labels)) => (Some(names), Some(labels)),
        None => (None, None),
    };
    Ok(ImageSet {
        pixels: Pixels::U8(pixels),
        labels,
        names,
        origin: root.to_path_buf(),
    })
}

/// Decodes `files` into 784 bytes each, on every core; the first bad file
/// in order is the error.
fn decode_all(files: &[PathBuf], resize: bool) -> Result<Vec<u8>, Bad> {
    let mut out = Vec::new();
    out.try_reserve_exact(files.len() * ae_store::IMAGE_PIXELS)
        .map_err(|_| {
            Bad::new(
                &files[0],
                "holding the images takes more memory than there is",
            )
        })?;
    out.resize(files.len() * ae_store::IMAGE_PIXELS, 0);
    decode_each(files, resize, &mut out)
        .into_iter()
        .collect::<Result<(), Bad>>()?;
    Ok(out)
}

/// Decodes each of `files` into its 784 bytes of `out`, on every core:
/// each file's outcome, in order (a bad file's bytes are left as they were).
///
/// # Panics
/// If `out` does not hold 784 bytes per file (a caller bug).
pub(crate) fn decode_each(files: &[PathBuf], resize: bool, out: &mut [u8]) -> Vec<Result<(), Bad>> {
    const PIXELS: usize = ae_store::IMAGE_PIXELS;
    assert_eq!(out.len(), files.len() * PIXELS, "784 bytes per file");
    if files.is_empty() {
        return Vec::new();
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(files.len())
        .max(1);
    let per_thread = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(per_thread)
            .zip(out.chunks_mut(per_thread * PIXELS))
            .map(|(files, out)| {
                scope.spawn(move || {
                    files
                        .iter()
                        .zip(out.chunks_exact_mut(PIXELS))
                        .map(|(path, slot)| decode(path, resize, slot))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // Chunks are in file order, so the outcomes are too.
        workers
            .into_iter()
            .zip(files.chunks(per_thread))
            .flat_map(|(worker, files)| {
                worker.join().unwrap_or_else(|_| {
                    files
                        .iter()
                        .map(|path| Err(Bad::new(path, "decoding it panicked")))
                        .collect()
                })
            })
            .collect()
    })
}

/// Decodes one image file into `out`, 784 grayscale bytes.
pub(crate) fn decode(path: &Path, resize: bool, out: &mut [u8]) -> Result<(), Bad> {
    let unreadable = |e: std::io::Error| Bad::new(path, format!("cannot be read: {e}"));
    let mut bytes = Vec::new();
    fs::File::open(path)
        .map_err(unreadable)?
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(Bad::new(
            path,
            format!(
                "is larger than {} MiB, too large for an image of this kind",
                MAX_FILE >> 20
            ),
        ));
    }
    let mut reader = image::io::Reader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Bad::new(path, format!("cannot be read: {e}")))?;
    let mut limits = image::io::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| {
        Bad::new(
            path,
            format!("is not an image ae can decode (PNG, JPEG or BMP): {e}"),
        )
    })?;
    let side = ae_store::IMAGE_SIDE as u32;
    let gray = image.to_luma8();
    let gray = if gray.dimensions() == (side, side) {
        gray
    } else if resize {
        image::imageops::resize(&gray, side, side, FilterType::Lanczos3)
    } else {
        let (w, h) = gray.dimensions();
        return Err(Bad::new(
            path,
            format!(
                "is {w}×{h}, not 28×28; resize it, or have ae resample it (data.resize = true in a config, --resize for ae score)"
            ),
        ));
    };
    out.copy_from_slice(gray.as_raw());
    Ok(())
}
