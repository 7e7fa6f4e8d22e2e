//! A split's pixels held as compactly as they are exact, for training: one
//! byte per pixel where every value is `p / 255` for an 8-bit `p` (what
//! every 8-bit source gives: IDX, PNG, uint8 `.npy`), four bytes otherwise.
//! `p / 255` is computed as the data stage computes it
//! ([`byte_value`]), so a byte stands for exactly the f32 it replaced and
//! training on bytes gives the same bits as training on floats, in a
//! quarter of the memory (MNIST's training split: 47 MB instead of 188).

/// Side length of an MNIST image.
pub const IMAGE_SIDE: usize = 28;
/// Pixels in one flattened image: 28 × 28.
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;

/// The f32 an 8-bit pixel stands for: `p / 255`, correctly rounded.
#[inline]
pub fn byte_value(p: u8) -> f32 {
    f32::from(p) / 255.0
}

/// The 8-bit pixel that stands for exactly `v`, if there is one.
#[inline]
fn exact_byte(v: f32) -> Option<u8> {
    let scaled = v * 255.0 + 0.5;
    if !(0.0..256.0).contains(&scaled) {
        return None;
    }
    let p = scaled as u8;
    (byte_value(p).to_bits() == v.to_bits()).then_some(p)
}

/// Pixels, image after image, `IMAGE_PIXELS` per image.
#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    /// Every value is `p / 255` for these bytes.
    Bytes(Vec<u8>),
    /// Values that are not all `p / 255`.
    Floats(Vec<f32>),
}

/// A borrowed [`Pixels`], or some of its images.
#[derive(Debug, Clone, Copy)]
pub enum PixelsRef<'a> {
    /// Every value is `p / 255` for these bytes.
    Bytes(&'a [u8]),
    /// The values themselves.
    Floats(&'a [f32]),
}

impl Pixels {
    /// Builds the compact form of `values`, a chunk at a time (see
    /// [`CompactBuilder`]).
    pub fn from_floats(values: &[f32]) -> Self {
        let mut builder = CompactBuilder::with_capacity(values.len());
        builder.push(values);
        builder.finish()
    }

    /// A view of all of it.
    pub fn view(&self) -> PixelsRef<'_> {
        match self {
            Self::Bytes(b) => PixelsRef::Bytes(b),
            Self::Floats(f) => PixelsRef::Floats(f),
        }
    }

    /// Number of images.
    pub fn images(&self) -> usize {
        self.view().images()
    }
}

impl<'a> PixelsRef<'a> {
    /// Number of pixel values.
    pub fn len(self) -> usize {
        match self {
            Self::Bytes(b) => b.len(),
            Self::Floats(f) => f.len(),
        }
    }

    /// True when it holds no pixel.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// Number of images.
    pub fn images(self) -> usize {
        self.len() / IMAGE_PIXELS
    }

    /// The first `images` images, and the rest.
    pub fn split_at_image(self, images: usize) -> (Self, Self) {
        let at = images * IMAGE_PIXELS;
        match self {
            Self::Bytes(b) => {
                let (x, y) = b.split_at(at);
                (Self::Bytes(x), Self::Bytes(y))
            }
            Self::Floats(f) => {
                let (x, y) = f.split_at(at);
                (Self::Floats(x), Self::Floats(y))
            }
        }
    }

    /// Appends image `index`'s values to `out`.
    pub fn extend_image(self, index: usize, out: &mut Vec<f32>) {
        let range = index * IMAGE_PIXELS..(index + 1) * IMAGE_PIXELS;
        match self {
            Self::Bytes(b) => out.extend(b[range].iter().map(|&p| byte_value(p))),
            Self::Floats(f) => out.extend_from_slice(&f[range]),
        }
    }

    /// Every value, as f32, appended to `out`.
    pub fn extend_all(self, out: &mut Vec<f32>) {
        match self {
            Self::Bytes(b) => out.extend(b.iter().map(|&p| byte_value(p))),
            Self::Floats(f) => out.extend_from_slice(f),
        }
    }

    /// Calls `f` on the values of `images` images at a time (the last
    /// chunk may be shorter), as f32: floats where they are, bytes
    /// converted into `scratch` first.
    pub fn for_each_chunk(self, images: usize, scratch: &mut Vec<f32>, mut f: impl FnMut(&[f32])) {
        let mut rest = self;
        while !rest.is_empty() {
            let (chunk, after) = rest.split_at_image(images.min(rest.images()));
            rest = after;
            match chunk {
                Self::Floats(values) => f(values),
                Self::Bytes(_) => {
                    scratch.clear();
                    chunk.extend_all(scratch);
                    f(scratch);
                }
            }
        }
    }
}

impl<'a> From<&'a [f32]> for PixelsRef<'a> {
    fn from(values: &'a [f32]) -> Self {
        Self::Floats(values)
    }
}

impl<'a> From<&'a Vec<f32>> for PixelsRef<'a> {
    fn from(values: &'a Vec<f32>) -> Self {
        Self::Floats(values)
    }
}

/// Builds [`Pixels`] from f32 values arriving in chunks: bytes while every
/// value is exactly a byte's, floats from the first that is not.
#[derive(Debug)]
pub struct CompactBuilder {
    capacity: usize,
    bytes: Vec<u8>,
    floats: Option<Vec<f32>>,
}

impl CompactBuilder {
    /// For about `capacity` values in all.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity,
            bytes: Vec::with_capacity(capacity),
            floats: None,
        }
    }

    /// Adds the next values.
    pub fn push(&mut self, values: &[f32]) {
        if let Some(floats) = &mut self.floats {
            floats.extend_from_slice(values);
            return;
        }
        let start = self.bytes.len();
        let mut exact = true;
        self.bytes.extend(values.iter().map(|&v| {
            let p = exact_byte(v);
            exact &= p.is_some();
            p.unwrap_or(0)
        }));
        if !exact {
            let mut floats = Vec::with_capacity(self.capacity.max(start + values.len()));
            floats.extend(self.bytes[..start].iter().map(|&p| byte_value(p)));
            floats.extend_from_slice(values);
            self.bytes = Vec::new();
            self.floats = Some(floats);
        }
    }

    /// The pixels.
    pub fn finish(self) -> Pixels {
        match self.floats {
            Some(floats) => Pixels::Floats(floats),
            None => Pixels::Bytes(self.bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_is_recognised_and_nothing_else() {
        for p in 0..=255u8 {
            assert_eq!(exact_byte(byte_value(p)), Some(p));
        }
        for v in [
            0.5f32,
            1.0 / 510.0,
            -0.0,
            -1.0 / 255.0,
            256.0 / 255.0,
            f32::NAN,
            1e-9,
        ] {
            assert_eq!(exact_byte(v), None, "{v}");
        }
    }

    #[test]
    fn bytes_while_exact_floats_from_the_first_value_that_is_not() {
        let bytes: Vec<f32> = (0..IMAGE_PIXELS * 2)
            .map(|i| byte_value((i % 256) as u8))
            .collect();
        let compact = Pixels::from_floats(&bytes);
        assert!(matches!(compact, Pixels::Bytes(_)));
        let mut back = Vec::new();
        compact.view().extend_all(&mut back);
        assert_eq!(back, bytes);

        let mut builder = CompactBuilder::with_capacity(bytes.len() + 2);
        builder.push(&bytes);
        builder.push(&[0.25, 0.5]);
        let Pixels::Floats(floats) = builder.finish() else {
            panic!("0.25 is no byte's value");
        };
        assert_eq!(floats[..bytes.len()], bytes[..]);
        assert_eq!(floats[bytes.len()..], [0.25, 0.5]);

        let view = compact.view();
        assert_eq!(view.images(), 2);
        for pixels in [view, PixelsRef::from(&bytes)] {
            let mut chunks = Vec::new();
            pixels.for_each_chunk(1, &mut Vec::new(), |values| chunks.push(values.to_vec()));
            assert_eq!(chunks, [&bytes[..IMAGE_PIXELS], &bytes[IMAGE_PIXELS..]]);
        }
        let (first, second) = view.split_at_image(1);
        let mut row = Vec::new();
        second.extend_image(0, &mut row);
        assert_eq!(row, bytes[IMAGE_PIXELS..]);
        assert_eq!(first.images(), 1);
    }
}
