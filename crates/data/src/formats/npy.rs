//! NumPy `.npy` arrays (format versions 1–3): a magic string, a header
//! that is a Python dict literal (`descr`, `fortran_order`, `shape`), then
//! the elements in C order.
//!
//! Images are uint8 `[N, 28, 28]` or `[N, 784]` (pixels 0–255, or any
//! integer type holding them) or float32/float64 already in `[0, 1]`;
//! labels are integers 0–255 of shape `[N]` or `[N, 1]`. The body is read
//! in chunks straight into the output, so memory is the output's size.

use std::io::{self, Read};

use super::Pixels;

const MAGIC: &[u8] = b"\x93NUMPY";
/// No header of a real array is near this long.
const MAX_HEADER: usize = 1 << 16;
/// Elements converted at a time.
const CHUNK: usize = 1 << 16;

/// An element type of an array: little-endian (or single-byte) integers or floats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Element {
    /// An integer of this many bytes.
    Int { bytes: usize, signed: bool },
    /// An IEEE float of this many bytes (4 or 8).
    Float { bytes: usize },
}

impl Element {
    fn bytes(self) -> usize {
        match self {
            Element::Int { bytes, .. } | Element::Float { bytes } => bytes,
        }
    }

    /// The element at the start of `b`, as f64 (exact for every type read here
    /// but 64-bit integers beyond 2^53, which no pixel or label is).
    fn decode(self, b: &[u8]) -> f64 {
        match self {
            Element::Int { bytes: 1, signed } => {
                if signed {
                    f64::from(b[0] as i8)
                } else {
                    f64::from(b[0])
                }
            }
            Element::Int { bytes, signed } => {
                let mut word = [0u8; 8];
                word[..bytes].copy_from_slice(&b[..bytes]);
                if signed && b[bytes - 1] & 0x80 != 0 {
                    word[bytes..].fill(0xff);
                }
                if signed {
                    i64::from_le_bytes(word) as f64
                } else {
                    u64::from_le_bytes(word) as f64
                }
            }
            Element::Float { bytes: 4 } => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            Element::Float { .. } => {
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            }
        }
    }
}

/// What an `.npy` header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    /// The element type.
    pub(crate) element: Element,
    /// `descr` as written, for messages.
    pub(crate) descr: String,
    /// The array's shape.
    pub(crate) shape: Vec<usize>,
    /// Bytes before the body: magic, version, length and the dict.
    pub(crate) len: u64,
}

impl Header {
    /// Elements in the array (`None` when the shape overflows).
    fn count(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
    }

    /// The length of the whole file the header promises, header included;
    /// an error when the shape is too large for any file.
    pub(crate) fn file_len(&self) -> Result<u64, String> {
        self.count()
            .and_then(|n| n.checked_mul(self.element.bytes()))
            .and_then(|body| u64::try_from(body).ok())
            .and_then(|body| body.checked_add(self.len))
            .ok_or_else(|| format!("its shape {:?} is impossibly large", self.shape))
    }
}

/// Reads and checks an `.npy` header. Errors say what is wrong, for a
/// message that names the file.
pub(crate) fn read_header(r: &mut dyn Read) -> Result<Header, String> {
    let mut start = [0u8; 8];
    read_exactly(r, &mut start, "the header")?;
    if &start[..6] != MAGIC {
        return Err("it is not a NumPy .npy file (no \\x93NUMPY magic string)".into());
    }
    let (major, minor) = (start[6], start[7]);
    let (len_bytes, header_len) = match major {
        1 => {
            let mut b = [0u8; 2];
            read_exactly(r, &mut b, "the header")?;
            (2, usize::from(u16::from_le_bytes(b)))
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            read_exactly(r, &mut b, "the header")?;
            (4, u32::from_le_bytes(b) as usize)
        }
        _ => {
            return Err(format!(
                "it is .npy format version {major}.{minor}; ae reads 1.0 to 3.0"
            ));
        }
    };
    if header_len > MAX_HEADER {
        return Err(format!(
            "its header claims {header_len} bytes, more than any array needs"
        ));
    }
    let mut dict = vec![0u8; header_len];
    read_exactly(r, &mut dict, "the header")?;
    let dict = String::from_utf8(dict).map_err(|_| "its header is not text".to_string())?;
    let descr = quoted_value(&dict, "descr")?;
    let element = element(&descr)?;
    match word_value(&dict, "fortran_order")? {
        "False" => {}
        "True" => {
            return Err(
                "it is stored in Fortran (column-major) order; save it with np.save(path, np.ascontiguousarray(array))"
                    .into(),
            );
        }
        other => return Err(format!("its header has fortran_order: {other}")),
    }
    let shape = shape_value(&dict)?;
    Ok(Header {
        element,
        descr,
        shape,
        len: (8 + len_bytes + header_len) as u64,
    })
}

fn read_exactly(r: &mut dyn Read, buf: &mut [u8], what: &str) -> Result<(), String> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => format!("it ends inside {what} (truncated)"),
        _ => format!("reading {what} failed: {e}"),
    })
}

/// The text after `'key':` in a header dict, trimmed.
fn after_key<'a>(dict: &'a str, key: &str) -> Result<&'a str, String> {
    let at = [format!("'{key}'"), format!("\"{key}\"")]
        .iter()
        .find_map(|k| dict.find(k.as_str()).map(|i| i + k.len()))
        .ok_or_else(|| format!("its header has no '{key}'"))?;
    let rest = dict[at..].trim_start();
    rest.strip_prefix(':')
        .map(str::trim_start)
        .ok_or_else(|| format!("its header's '{key}' has no value"))
}

fn quoted_value(dict: &str, key: &str) -> Result<String, String> {
    let rest = after_key(dict, key)?;
    let quote = rest
        .chars()
        .next()
        .filter(|c| *c == '\'' || *c == '"')
        .ok_or_else(|| {
            format!("its header's '{key}' is not a string (structured arrays are not images)")
        })?;
    let body = &rest[1..];
    let end = body
        .find(quote)
        .ok_or_else(|| format!("its header's '{key}' is not closed"))?;
    Ok(body[..end].to_string())
}

fn word_value<'a>(dict: &'a str, key: &str) -> Result<&'a str, String> {
    let rest = after_key(dict, key)?;
    let end = rest
        .find(|c: char| !c.is_alphanumeric())
        .unwrap_or(rest.len());
    Ok(&rest[..end])
}

fn shape_value(dict: &str) -> Result<Vec<usize>, String> {
    let rest = after_key(dict, "shape")?;
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.split_once(')'))
        .map(|(inner, _)| inner)
        .ok_or_else(|| "its header's 'shape' is not a tuple".to_string())?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            d.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| format!("its header's shape ({inner}) is not a tuple of sizes"))
        })
        .collect()
}

/// The element type of a `descr` such as `|u1`, `<f4` or `<i8`.
fn element(descr: &str) -> Result<Element, String> {
    let unsupported = || {
        format!(
            "its dtype {descr:?} is not one ae reads: integers or float32/float64, little-endian"
        )
    };
    let (order, code) = descr.split_at_checked(1).ok_or_else(unsupported)?;
    let (kind, size) = code.split_at_checked(1).ok_or_else(unsupported)?;
    let bytes: usize = size.parse().map_err(|_| unsupported())?;
    let little = order == "<" || order == "|" || (order == "=" && cfg!(target_endian = "little"));
    if !little && bytes > 1 {
        return Err(format!(
            "its dtype {descr:?} is big-endian; save it little-endian with array.astype(array.dtype.newbyteorder('<'))"
        ));
    }
    match (kind, bytes) {
        ("u", 1 | 2 | 4 | 8) => Ok(Element::Int {
            bytes,
            signed: false,
        }),
        ("i", 1 | 2 | 4 | 8) => Ok(Element::Int {
            bytes,
            signed: true,
        }),
        ("b", 1) => Ok(Element::Int {
            bytes,
            signed: false,
        }),
        ("f", 4 | 8) => Ok(Element::Float { bytes }),
        _ => Err(unsupported()),
    }
}

/// The images of an array with header `header`, whose body `r` yields:
/// `[N, 28, 28]`, `[N, 28, 28, 1]` or `[N, 784]`; integers 0–255 kept as
/// bytes, floats checked to be in `[0, 1]`. Errors name the image.
pub(crate) fn read_images(header: &Header, r: &mut dyn Read) -> Result<Pixels, String> {
    let n = image_count(header)?;
    read_image_rows(header, r, 0, n)
}

/// How many images an array with header `header` holds; an error when its
/// shape is not one of images.
pub(crate) fn image_count(header: &Header) -> Result<usize, String> {
    let side = ae_store::IMAGE_SIDE;
    let n = match header.shape[..] {
        [n, p] if p == ae_store::IMAGE_PIXELS => n,
        [n, h, w] | [n, h, w, 1] if h == side && w == side => n,
        _ => {
            return Err(format!(
                "its images have shape {:?}; ae reads [N, 28, 28] or [N, 784] (resize them to 28×28 first)",
                header.shape
            ));
        }
    };
    n.checked_mul(ae_store::IMAGE_PIXELS)
        .ok_or("its shape is too large")?;
    Ok(n)
}

/// The next `n` images of the body `r` of an array with header `header`,
/// the first of them image `first` (for messages): what [`read_images`]
/// reads, a chunk at a time.
pub(crate) fn read_image_rows(
    header: &Header,
    r: &mut dyn Read,
    first: usize,
    n: usize,
) -> Result<Pixels, String> {
    let total = n
        .checked_mul(ae_store::IMAGE_PIXELS)
        .ok_or("its shape is too large")?;
    let image = |i: usize| first + i / ae_store::IMAGE_PIXELS;
    match header.element {
        Element::Int {
            bytes: 1,
            signed: false,
        } => {
            let mut pixels = reserve::<u8>(total)?;
            pixels.resize(total, 0);
            read_exactly(r, &mut pixels, "the pixels")?;
            Ok(Pixels::U8(pixels))
        }
        Element::Int { .. } => {
            let mut pixels = reserve::<u8>(total)?;
            each_element(header, r, total, |i, v| {
                if !(0.0..=255.0).contains(&v) {
                    return Err(format!(
                        "image {} holds the value {v}; pixels must be 0–255",
                        image(i)
                    ));
                }
                pixels.push(v as u8);
                Ok(())
            })?;
            Ok(Pixels::U8(pixels))
        }
        Element::Float { .. } => {
            let mut values = reserve::<f32>(total)?;
            each_element(header, r, total, |i, v| {
                if !(0.0..=1.0).contains(&v) {
                    return Err(format!(
                        "image {} holds the value {v}; float pixels must be in [0, 1] (divide by 255 first)",
                        image(i)
                    ));
                }
                values.push(v as f32);
                Ok(())
            })?;
            Ok(Pixels::F32(values))
        }
    }
}

/// The labels of an array with header `header`: integers 0–255 of shape
/// `[N]` or `[N, 1]`. Errors name the index.
pub(crate) fn read_labels(header: &Header, r: &mut dyn Read) -> Result<Vec<u8>, String> {
    let n = match header.shape[..] {
        [n] | [n, 1] => n,
        _ => {
            return Err(format!(
                "its labels have shape {:?}; ae reads [N] or [N, 1]",
                header.shape
            ));
        }
    };
    if let Element::Float { .. } = header.element {
        return Err(format!(
            "its labels are floats ({}); they must be integers 0–255",
            header.descr
        ));
    }
    let mut labels = reserve::<u8>(n)?;
    each_element(header, r, n, |i, v| {
        if !(0.0..=255.0).contains(&v) {
            return Err(format!("label {v} at index {i} is not a class 0–255"));
        }
        labels.push(v as u8);
        Ok(())
    })?;
    Ok(labels)
}

fn reserve<T>(n: usize) -> Result<Vec<T>, String> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| format!("holding its {n} values takes more memory than there is"))?;
    Ok(v)
}

/// Calls `each` with the index and value of each of the `count` elements.
fn each_element(
    header: &Header,
    r: &mut dyn Read,
    count: usize,
    mut each: impl FnMut(usize, f64) -> Result<(), String>,
) -> Result<(), String> {
    let size = header.element.bytes();
    let mut buf = vec![0u8; CHUNK * size];
    let mut done = 0;
    while done < count {
        let n = (count - done).min(CHUNK);
        read_exactly(r, &mut buf[..n * size], "the data")?;
        for (k, bytes) in buf[..n * size].chunks_exact(size).enumerate() {
            each(done + k, header.element.decode(bytes))?;
        }
        done += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use ae_testkit::npy;

    fn images_of(bytes: &[u8]) -> Result<Pixels, String> {
        let mut r = bytes;
        let header = read_header(&mut r)?;
        read_images(&header, &mut r)
    }

    #[test]
    fn reads_bytes_ints_and_floats() {
        let pixels: Vec<u8> = (0..2 * 784).map(|i| (i % 256) as u8).collect();
        let u8s = images_of(&npy("|u1", &[2, 28, 28], &pixels)).expect("u8");
        assert_eq!(u8s, Pixels::U8(pixels.clone()));
        let wide: Vec<u8> = pixels
            .iter()
            .flat_map(|&p| i64::from(p).to_le_bytes())
            .collect();
        assert_eq!(images_of(&npy("<i8", &[2, 784], &wide)).expect("i8"), u8s);
        let floats: Vec<f32> = pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
        let body: Vec<u8> = floats.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            images_of(&npy("<f4", &[2, 28, 28, 1], &body)).expect("f4"),
            Pixels::F32(floats.clone())
        );
        let body: Vec<u8> = floats
            .iter()
            .flat_map(|&v| f64::from(v).to_le_bytes())
            .collect();
        assert_eq!(
            images_of(&npy("<f8", &[2, 784], &body)).expect("f8"),
            Pixels::F32(floats)
        );
    }

    #[test]
    fn labels_are_integers_of_one_dimension() {
        let body: Vec<u8> = [3i64, 200, 0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let mut r = &npy("<i8", &[3, 1], &body)[..];
        let header = read_header(&mut r).expect("header");
        assert_eq!(read_labels(&header, &mut r).expect("labels"), [3, 200, 0]);
        let body: Vec<u8> = [3i64, 256].iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut r = &npy("<i8", &[2], &body)[..];
        let header = read_header(&mut r).expect("header");
        let err = read_labels(&header, &mut r).expect_err("256");
        assert!(err.contains("label 256 at index 1"), "{err}");
    }

    #[test]
    fn every_bad_array_says_what_is_wrong() {
        let cases: [(Vec<u8>, &str); 8] = [
            (b"PK\x03\x04 not npy".to_vec(), "not a NumPy .npy file"),
            (npy("|u1", &[2, 27, 27], &[0; 2 * 729]), "shape [2, 27, 27]"),
            (npy("|u1", &[2, 784], &[0; 784]), "truncated"),
            (npy("<c8", &[1, 784], &[0; 8 * 784]), "dtype \"<c8\""),
            (npy(">f4", &[1, 784], &[0; 4 * 784]), "big-endian"),
            (
                npy(
                    "<f4",
                    &[1, 784],
                    &[[0u8; 4], 2.0f32.to_le_bytes()].concat().repeat(392),
                ),
                "image 0 holds the value 2",
            ),
            (
                npy("<f4", &[1, 784], &f32::NAN.to_le_bytes().repeat(784)),
                "image 0 holds the value NaN",
            ),
            (
                npy("<i2", &[1, 784], &300i16.to_le_bytes().repeat(784)),
                "value 300; pixels must be 0–255",
            ),
        ];
        for (bytes, expected) in cases {
            let err = images_of(&bytes).expect_err(expected);
            assert!(err.contains(expected), "{err} (expected {expected})");
        }
        let mut fortran = npy("|u1", &[1, 784], &[0; 784]);
        let at = fortran
            .windows(5)
            .position(|w| w == b"False")
            .expect("False");
        fortran.splice(at..at + 5, *b"True ");
        assert!(
            images_of(&fortran)
                .expect_err("fortran")
                .contains("Fortran")
        );
    }
}
