//! The IDX file format (LeCun's `idx3-ubyte` / `idx1-ubyte`): a big-endian
//! header of a magic number and dimensions, then unsigned bytes.
//!
//! Pure functions over byte slices: nothing here touches the file system.

use crate::IdxKind;

/// Magic number of an `idx3-ubyte` file: unsigned bytes, three dimensions.
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an `idx1-ubyte` file: unsigned bytes, one dimension.
pub const LABELS_MAGIC: u32 = 0x0000_0801;

const IMAGES_HEADER: usize = 16;
const LABELS_HEADER: usize = 8;

/// Why bytes are not a well-formed IDX file of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdxError {
    /// Shorter than the header alone.
    #[error("truncated IDX file: {len} bytes, shorter than the {header}-byte header")]
    NoHeader {
        /// Bytes present.
        len: usize,
        /// Bytes the header needs.
        header: usize,
    },
    /// The magic number is not the expected one.
    #[error("wrong IDX magic number {found} (expected {expected}: {what})")]
    WrongMagic {
        /// What the file starts with.
        found: u32,
        /// What it should start with.
        expected: u32,
        /// `images (idx3-ubyte)` or `labels (idx1-ubyte)`.
        what: &'static str,
    },
    /// The header's dimensions disagree with the file's length.
    #[error(
        "{} IDX file: the header promises {expected} bytes but the file has {found}",
        if found < expected { "truncated" } else { "oversized" }
    )]
    WrongLength {
        /// Header plus count × item size.
        expected: usize,
        /// The actual length.
        found: usize,
    },
    /// Images are not 28×28.
    #[error("images are {rows}×{cols}, expected 28×28")]
    WrongImageSize {
        /// Rows per image.
        rows: usize,
        /// Columns per image.
        cols: usize,
    },
    /// A stream holds more bytes than the header promises (it was read no
    /// further than one byte past them).
    #[error("oversized IDX file: it holds more than the {expected} bytes its header promises")]
    Oversized {
        /// Header plus count × item size.
        expected: u64,
    },
    /// The header promises more bytes than any file can hold.
    #[error("the header promises {count} items of {item_len} bytes, more than a file can hold")]
    Impossible {
        /// Items promised.
        count: u64,
        /// Bytes per item.
        item_len: u64,
    },
    /// A label byte outside 0–9.
    #[error("label {label} at index {index} is not a class 0–9")]
    BadLabel {
        /// The byte.
        label: u8,
        /// Its position.
        index: usize,
    },
}

/// The images of an `idx3-ubyte` file, borrowed from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdxImages<'a> {
    /// Number of images.
    pub count: usize,
    /// `count × 784` pixels, image after image, row-major.
    pub pixels: &'a [u8],
}

/// The header's length in bytes of an IDX file of `kind`.
pub fn header_len(kind: IdxKind) -> usize {
    match kind {
        IdxKind::Images => IMAGES_HEADER,
        IdxKind::Labels => LABELS_HEADER,
    }
}

/// The length of the whole file that an IDX `header` of `kind` promises:
/// the header plus count × item size. Checks the magic number and, for
/// images, that they are 28×28, so that nothing is read for a file of
/// another kind or shape.
pub fn promised_len(header: &[u8], kind: IdxKind) -> Result<u64, IdxError> {
    let (magic, what) = match kind {
        IdxKind::Images => (IMAGES_MAGIC, "images (idx3-ubyte)"),
        IdxKind::Labels => (LABELS_MAGIC, "labels (idx1-ubyte)"),
    };
    let dims = self::header(header, header_len(kind), magic, what)?;
    let item_len = match kind {
        IdxKind::Images => {
            let (rows, cols) = (dims[1], dims[2]);
            if rows * cols != ae_store::IMAGE_PIXELS || rows != ae_store::IMAGE_SIDE {
                return Err(IdxError::WrongImageSize { rows, cols });
            }
            ae_store::IMAGE_PIXELS as u64
        }
        IdxKind::Labels => 1,
    };
    let count = dims[0] as u64;
    count
        .checked_mul(item_len)
        .and_then(|body| body.checked_add(header_len(kind) as u64))
        .ok_or(IdxError::Impossible { count, item_len })
}

/// Parses an `idx3-ubyte` file of 28×28 images.
pub fn parse_images(bytes: &[u8]) -> Result<IdxImages<'_>, IdxError> {
    let (head, body) = bytes.split_at(bytes.len().min(IMAGES_HEADER));
    parse_images_parts(head, body)
}

/// [`parse_images`] of a file read as its header and, apart, its body
/// (so the pixels need not be moved to drop the header).
pub fn parse_images_parts<'a>(head: &[u8], body: &'a [u8]) -> Result<IdxImages<'a>, IdxError> {
    let header = header(head, IMAGES_HEADER, IMAGES_MAGIC, "images (idx3-ubyte)")?;
    let (count, rows, cols) = (header[0], header[1], header[2]);
    if rows * cols != ae_store::IMAGE_PIXELS || rows != ae_store::IMAGE_SIDE {
        return Err(IdxError::WrongImageSize { rows, cols });
    }
    let pixels = checked_body(body, IMAGES_HEADER, count, rows * cols)?;
    Ok(IdxImages { count, pixels })
}

/// Parses an `idx1-ubyte` file of class labels 0–9.
pub fn parse_labels(bytes: &[u8]) -> Result<&[u8], IdxError> {
    let (head, body) = bytes.split_at(bytes.len().min(LABELS_HEADER));
    parse_labels_parts(head, body)
}

/// [`parse_labels`] of a file read as its header and, apart, its body.
pub fn parse_labels_parts<'a>(head: &[u8], body: &'a [u8]) -> Result<&'a [u8], IdxError> {
    let labels = parse_any_labels_parts(head, body)?;
    if let Some(index) = labels.iter().position(|&label| label > 9) {
        return Err(IdxError::BadLabel {
            label: labels[index],
            index,
        });
    }
    Ok(labels)
}

/// Parses an `idx1-ubyte` file of labels of any byte value (a user's own
/// classes, such as EMNIST letters 1–26).
pub fn parse_any_labels(bytes: &[u8]) -> Result<&[u8], IdxError> {
    let (head, body) = bytes.split_at(bytes.len().min(LABELS_HEADER));
    parse_any_labels_parts(head, body)
}

/// [`parse_any_labels`] of a file read as its header and, apart, its body.
pub fn parse_any_labels_parts<'a>(head: &[u8], body: &'a [u8]) -> Result<&'a [u8], IdxError> {
    let header = header(head, LABELS_HEADER, LABELS_MAGIC, "labels (idx1-ubyte)")?;
    checked_body(body, LABELS_HEADER, header[0], 1)
}

/// Checks the magic number and returns the dimensions that follow it.
fn header(
    bytes: &[u8],
    header_len: usize,
    magic: u32,
    what: &'static str,
) -> Result<Vec<usize>, IdxError> {
    let no_header = || IdxError::NoHeader {
        len: bytes.len(),
        header: header_len,
    };
    let word = |i: usize| -> Option<u32> {
        let w = bytes.get(4 * i..4 * i + 4)?;
        Some(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
    };
    // The magic number first: a labels file given as images is a wrong
    // magic number even though it is also shorter than an images header.
    let found = word(0).ok_or_else(no_header)?;
    if found != magic {
        return Err(IdxError::WrongMagic {
            found,
            expected: magic,
            what,
        });
    }
    (1..header_len / 4)
        .map(|i| word(i).map(|d| d as usize).ok_or_else(no_header))
        .collect()
}

/// The bytes after the header, checked to be exactly `count × item_len`
/// (lengths in errors count the header's `header_len` bytes too).
fn checked_body(
    body: &[u8],
    header_len: usize,
    count: usize,
    item_len: usize,
) -> Result<&[u8], IdxError> {
    let expected = count
        .checked_mul(item_len)
        .and_then(|n| n.checked_add(header_len))
        .unwrap_or(usize::MAX);
    let found = body.len() + header_len;
    if found != expected {
        return Err(IdxError::WrongLength { expected, found });
    }
    Ok(body)
}

/// Scales pixels from `0..=255` to `[0, 1]` as `f32`, exactly as Keras's
/// `x.astype('float32') / 255.` does.
pub fn normalize(pixels: &[u8]) -> Vec<f32> {
    pixels.iter().map(|&p| f32::from(p) / 255.0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idx3 file of `count` 28×28 images whose pixel i of image k is (k + i) % 256.
    fn images_file(count: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        for word in [IMAGES_MAGIC, count, 28, 28] {
            bytes.extend(word.to_be_bytes());
        }
        for k in 0..count as usize {
            bytes.extend((0..784).map(|i| ((k + i) % 256) as u8));
        }
        bytes
    }

    fn labels_file(labels: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend(LABELS_MAGIC.to_be_bytes());
        bytes.extend((labels.len() as u32).to_be_bytes());
        bytes.extend(labels);
        bytes
    }

    #[test]
    fn parses_images_and_labels() {
        let file = images_file(2);
        let images = parse_images(&file).expect("valid");
        assert_eq!(images.count, 2);
        assert_eq!(images.pixels.len(), 2 * 784);
        assert_eq!(images.pixels[784 + 5], 6);

        let file = labels_file(&[7, 0, 9]);
        assert_eq!(parse_labels(&file).expect("valid"), &[7, 0, 9]);
    }

    #[test]
    fn an_empty_file_of_zero_items_is_valid() {
        assert_eq!(parse_images(&images_file(0)).expect("valid").count, 0);
        assert_eq!(
            parse_labels(&labels_file(&[])).expect("valid"),
            &[] as &[u8]
        );
    }

    #[test]
    fn rejects_wrong_magic_either_way_round() {
        let labels = labels_file(&[1]);
        assert_eq!(
            parse_images(&[labels.clone(), vec![0; 8]].concat()),
            Err(IdxError::WrongMagic {
                found: LABELS_MAGIC,
                expected: IMAGES_MAGIC,
                what: "images (idx3-ubyte)"
            })
        );
        let images = images_file(1);
        assert!(matches!(
            parse_labels(&images),
            Err(IdxError::WrongMagic {
                found: IMAGES_MAGIC,
                ..
            })
        ));
    }

    #[test]
    fn rejects_truncated_and_oversized_files() {
        let file = images_file(3);
        assert_eq!(
            parse_images(&file[..file.len() - 1]),
            Err(IdxError::WrongLength {
                expected: 16 + 3 * 784,
                found: 16 + 3 * 784 - 1
            })
        );
        assert_eq!(
            parse_images(&file[..10]),
            Err(IdxError::NoHeader {
                len: 10,
                header: 16
            })
        );
        let mut long = labels_file(&[1, 2]);
        long.push(3);
        let err = parse_labels(&long).expect_err("oversized");
        assert!(err.to_string().starts_with("oversized"), "{err}");
        let err = parse_images(&file[..100]).expect_err("truncated");
        assert!(err.to_string().starts_with("truncated"), "{err}");
    }

    #[test]
    fn rejects_images_that_are_not_28_by_28() {
        let mut file = images_file(1);
        file[8..12].copy_from_slice(&14u32.to_be_bytes());
        file[12..16].copy_from_slice(&56u32.to_be_bytes());
        assert_eq!(
            parse_images(&file),
            Err(IdxError::WrongImageSize { rows: 14, cols: 56 })
        );
    }

    #[test]
    fn rejects_labels_outside_0_to_9() {
        assert_eq!(
            parse_labels(&labels_file(&[1, 10])),
            Err(IdxError::BadLabel {
                label: 10,
                index: 1
            })
        );
    }

    #[test]
    fn huge_header_dimensions_do_not_overflow() {
        let mut file = images_file(0);
        file[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            parse_images(&file),
            Err(IdxError::WrongLength { .. })
        ));
    }

    #[test]
    fn normalizes_to_the_unit_interval_like_keras() {
        let scaled = normalize(&[0, 1, 128, 255]);
        assert_eq!(scaled, vec![0.0, 1.0 / 255.0, 128.0 / 255.0, 1.0]);
        assert_eq!(scaled[2].to_bits(), (128f32 / 255f32).to_bits());
    }
}
