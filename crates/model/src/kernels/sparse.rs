//! The two products with the images X, skipping the pixels that are zero:
//! the encoder X W1ᵀ and the encoder weight's gradient Xᵀ G1. Four fifths
//! of an MNIST digit's pixels are 0, and a term `0 · w` changes no sum (for
//! finite `w`, `acc + 0 · w` is `acc` exactly; a sum that starts at +0
//! never becomes −0), so skipping them gives the bits of the dense
//! products, in a fraction of the time. Each row's nonzero pixels are a
//! bitmask ([`PixelMasks`]); where a batch is mostly nonzero (photographs,
//! not digits) the dense kernels are faster, and [`PixelMasks::worth_it`]
//! says so.

// The kernels index several arrays with one index, as the maths does.
#![allow(clippy::needless_range_loop)]

use super::simd::{Level, MulAdd, dispatch_fma, nonzero_bits};
use crate::INPUT;

/// 64-bit words in one image's mask.
const WORDS: usize = INPUT.div_ceil(64);

/// Above this share of nonzero pixels the dense kernels win: the encoder
/// then runs as many multiply-adds as dense with a bit loop around them,
/// and the gradient updates its output in memory instead of registers.
const SPARSE_BELOW: f64 = 0.5;

/// Which pixels of each image of a batch are nonzero: bit `t % 64` of word
/// `t / 64` of an image's mask is pixel `t`.
#[derive(Debug, Clone, Default)]
pub struct PixelMasks {
    masks: Vec<[u64; WORDS]>,
    nonzero: usize,
}

impl PixelMasks {
    /// No images yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The masks of `images` (`[n, 784]`), replacing what was here
    /// (inlined into [`refill_masks`], which compiles it per path).
    #[inline(always)]
    pub fn refill(&mut self, images: &[f32]) {
        self.masks.clear();
        self.nonzero = 0;
        for image in images.chunks_exact(INPUT) {
            let mut mask = [0u64; WORDS];
            for (word, pixels) in mask.iter_mut().zip(image.chunks(64)) {
                *word = pixels
                    .iter()
                    .enumerate()
                    .fold(0, |bits, (j, &p)| bits | (u64::from(p != 0.0) << j));
                self.nonzero += word.count_ones() as usize;
            }
            self.masks.push(mask);
        }
    }

    /// The masks of the 8-bit images at `indices` of `pixels` (`[N, 784]`),
    /// replacing what was here: the masks [`PixelMasks::refill`] makes of
    /// the same images widened to floats (a byte is 0 exactly where its
    /// value `p / 255` is), at a fraction of the cost.
    ///
    /// # Panics
    /// If an index is past the images (a caller bug).
    pub fn refill_from_bytes(&mut self, pixels: &[u8], indices: &[usize]) {
        const FULL_WORDS: usize = INPUT / 64;
        self.masks.clear();
        self.nonzero = 0;
        for &i in indices {
            let image = &pixels[i * INPUT..][..INPUT];
            let (full, tail) = image.as_chunks::<64>();
            let mut mask = [0u64; WORDS];
            for (word, bytes) in mask.iter_mut().zip(full) {
                *word = nonzero_bits(bytes);
            }
            if !tail.is_empty() {
                let mut last = [0u8; 64];
                last[..tail.len()].copy_from_slice(tail);
                mask[FULL_WORDS] = nonzero_bits(&last);
            }
            self.nonzero += mask.iter().map(|w| w.count_ones() as usize).sum::<usize>();
            self.masks.push(mask);
        }
    }

    /// Whether the sparse kernels are faster for these images than the
    /// dense ones (the results are the same bits either way).
    pub fn worth_it(&self) -> bool {
        !self.masks.is_empty()
            && (self.nonzero as f64) < SPARSE_BELOW * (self.masks.len() * INPUT) as f64
    }

    /// How many images.
    pub fn len(&self) -> usize {
        self.masks.len()
    }

    /// True when it holds no image.
    pub fn is_empty(&self) -> bool {
        self.masks.is_empty()
    }
}

/// Calls `$f::<M, L, R>($args)` with `R` rows per register block for
/// latent size `$latent` on `$level` (as [`super::skinny`]'s products).
macro_rules! by_latent {
    ($level:expr, $latent:expr, $f:ident::<$m:ty>($($arg:expr),*)) => {
        match ($level, $latent) {
            (Level::Avx512, 8) => $f::<$m, 8, 8>($($arg),*),
            (Level::Avx512, 16) => $f::<$m, 16, 4>($($arg),*),
            (Level::Avx512, 32) => $f::<$m, 32, 4>($($arg),*),
            (Level::Avx512, 64) => $f::<$m, 64, 2>($($arg),*),
            (Level::Avx512, 128) => $f::<$m, 128, 1>($($arg),*),
            (Level::Avx2, 8) => $f::<$m, 8, 4>($($arg),*),
            (Level::Avx2, 16) => $f::<$m, 16, 4>($($arg),*),
            (Level::Avx2, 32) => $f::<$m, 32, 2>($($arg),*),
            (Level::Avx2, 64) => $f::<$m, 64, 1>($($arg),*),
            (Level::Avx2, 128) => $f::<$m, 128, 1>($($arg),*),
            (_, 8) => $f::<$m, 8, 2>($($arg),*),
            (_, 16) => $f::<$m, 16, 1>($($arg),*),
            (_, 32) => $f::<$m, 32, 1>($($arg),*),
            (_, 64) => $f::<$m, 64, 1>($($arg),*),
            (_, 128) => $f::<$m, 128, 1>($($arg),*),
            (_, other) => unreachable!("latent size {other} is not compiled"),
        }
    };
}

/// `acc[r] = Σ_t rows[r][t] · v[t]` over the pixels `t` nonzero in any of
/// the `R` rows, in ascending `t` (the dense order, zeros left out).
#[inline(always)]
fn masked_rows_block<M: MulAdd, const W: usize, const R: usize>(
    rows: [&[f32; INPUT]; R],
    masks: [&[u64; WORDS]; R],
    v: &[[f32; W]; INPUT],
) -> [[f32; W]; R] {
    let mut acc = [[0.0f32; W]; R];
    for word in 0..WORDS {
        let any = masks.iter().fold(0, |any, mask| any | mask[word]);
        for t in pixels_in(word, any) {
            let v = &v[t];
            for r in 0..R {
                let s = rows[r][t];
                for w in 0..W {
                    acc[r][w] = M::mul_add(s, v[w], acc[r][w]);
                }
            }
        }
    }
    acc
}

/// `out[n × W] = images[n × 784] · v[784 × W]` over the nonzero pixels.
#[inline(always)]
fn masked_times<M: MulAdd, const W: usize, const R: usize>(
    images: &[f32],
    masks: &PixelMasks,
    v: &[f32],
    out: &mut [f32],
) {
    let images = images.as_chunks::<INPUT>().0;
    let v: &[[f32; W]; INPUT] = v.as_chunks::<W>().0[..INPUT]
        .try_into()
        .expect("v has 784 rows");
    let out = out.as_chunks_mut::<W>().0;
    let masks = &masks.masks[..];
    let n = images.len().min(masks.len()).min(out.len());
    let full = n / R * R;
    for i in (0..full).step_by(R) {
        let acc = masked_rows_block::<M, W, R>(
            std::array::from_fn(|r| &images[i + r]),
            std::array::from_fn(|r| &masks[i + r]),
            v,
        );
        out[i..i + R].copy_from_slice(&acc);
    }
    for i in full..n {
        let [acc] = masked_rows_block::<M, W, 1>([&images[i]], [&masks[i]], v);
        out[i] = acc;
    }
}

/// `out[784 × W] = imagesᵀ · c` for `c[n × W]`: row by row, each nonzero
/// pixel's row of `out` gets its term, so every element sums its terms in
/// ascending row order from +0, as the dense kernel does.
#[inline(always)]
fn masked_transposed_times<M: MulAdd, const W: usize, const R: usize>(
    images: &[f32],
    masks: &PixelMasks,
    c: &[f32],
    out: &mut [f32],
) {
    let out: &mut [[f32; W]; INPUT] = (&mut out.as_chunks_mut::<W>().0[..INPUT])
        .try_into()
        .expect("out has 784 rows");
    out.fill([0.0; W]);
    let rows = images.as_chunks::<INPUT>().0;
    let c = c.as_chunks::<W>().0;
    let masks = &masks.masks[..];
    let n = rows.len().min(masks.len()).min(c.len());
    let full = n / R * R;
    for i in (0..full).step_by(R) {
        scatter_rows::<M, W, R>(
            std::array::from_fn(|r| &rows[i + r]),
            std::array::from_fn(|r| &masks[i + r]),
            std::array::from_fn(|r| &c[i + r]),
            out,
        );
    }
    for i in full..n {
        scatter_rows::<M, W, 1>([&rows[i]], [&masks[i]], [&c[i]], out);
    }
}

/// `out[t] += Σ_r rows[r][t] · c[r]` for the pixels `t` nonzero in any of
/// the `R` rows, the rows' terms in ascending row order.
#[inline(always)]
fn scatter_rows<M: MulAdd, const W: usize, const R: usize>(
    rows: [&[f32; INPUT]; R],
    masks: [&[u64; WORDS]; R],
    c: [&[f32; W]; R],
    out: &mut [[f32; W]; INPUT],
) {
    let c: [[f32; W]; R] = std::array::from_fn(|r| *c[r]);
    for word in 0..WORDS {
        let any = masks.iter().fold(0, |any, mask| any | mask[word]);
        for t in pixels_in(word, any) {
            let mut acc = out[t];
            for r in 0..R {
                let s = rows[r][t];
                for w in 0..W {
                    acc[w] = M::mul_add(s, c[r][w], acc[w]);
                }
            }
            out[t] = acc;
        }
    }
}

/// The pixels whose bits are set in `bits`, word `word` of a mask, in
/// ascending order.
#[inline(always)]
fn pixels_in(word: usize, mut bits: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (bits != 0).then(|| {
            let t = word * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            // Below 784: the masks have no bit past the last pixel.
            t.min(INPUT - 1)
        })
    })
}

dispatch_fma! {
    /// `out[n × L] = images[n × 784] · v[784 × L]`, the terms of zero
    /// pixels (per `masks`, the images' own) left out: the bits of
    /// [`super::skinny::product`] with `k` = 784.
    pub fn masked_product<M>(level, latent: usize, images: &[f32], masks: &PixelMasks, v: &[f32], out: &mut [f32]) -> () {
        by_latent!(level, latent, masked_times::<M>(images, masks, v, out))
    }
}

dispatch_fma! {
    /// `out[784 × L] = imagesᵀ · c` for `c[n × L]`, the terms of zero
    /// pixels left out: the bits of [`super::skinny::transposed_product`]
    /// with `a` = the images.
    pub fn masked_transposed_product<M>(level, latent: usize, images: &[f32], masks: &PixelMasks, c: &[f32], out: &mut [f32]) -> () {
        by_latent!(level, latent, masked_transposed_times::<M>(images, masks, c, out))
    }
}

dispatch_fma! {
    /// The masks of `images`, into `masks` ([`PixelMasks::refill`],
    /// compiled for the path so that the comparisons run in vectors).
    pub fn refill_masks<M>(level, masks: &mut PixelMasks, images: &[f32]) -> () {
        let _ = level;
        masks.refill(images)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Isa;
    use super::super::skinny::{product, transposed_product};
    use super::*;

    /// Digit-like rows: a zero border and scattered zeros, values of every
    /// sign in `v` and `c`, so that a skipped term would show.
    fn sparse_images(rows: usize) -> Vec<f32> {
        (0..rows * INPUT)
            .map(|i| {
                let (r, t) = (i / INPUT, i % INPUT);
                let (y, x) = (t / 28, t % 28);
                let inside = (4..24).contains(&y) && (6..22).contains(&x);
                if inside && (t * 7 + r * 13) % 5 < 2 {
                    ((t * 31 + r) % 255 + 1) as f32 / 255.0
                } else {
                    0.0
                }
            })
            .collect()
    }

    fn values(n: usize, salt: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + salt * 104_729) % 997) as f32 - 498.0) / 997.0)
            .collect()
    }

    #[test]
    fn masked_products_give_the_dense_products_bits_on_every_path() {
        for isa in Isa::every_available() {
            for latent in crate::LATENT_SIZES {
                for rows in [0, 1, 5, 33] {
                    let images = sparse_images(rows);
                    let mut masks = PixelMasks::new();
                    refill_masks(isa, &mut masks, &images);
                    assert_eq!(masks.len(), rows);
                    assert!(rows == 0 || masks.worth_it(), "these rows are mostly zeros");

                    let v = values(INPUT * latent, latent);
                    let (mut dense, mut masked) =
                        (vec![f32::NAN; rows * latent], vec![f32::NAN; rows * latent]);
                    product(isa, latent, &images, INPUT, &v, &mut dense);
                    masked_product(isa, latent, &images, &masks, &v, &mut masked);
                    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&masked),
                        bits(&dense),
                        "{} L={latent} n={rows}",
                        isa.name()
                    );

                    let c = values(rows * latent, 3);
                    let (mut dense, mut masked) = (
                        vec![f32::NAN; INPUT * latent],
                        vec![f32::NAN; INPUT * latent],
                    );
                    transposed_product(isa, latent, &images, INPUT, &c, &mut dense);
                    masked_transposed_product(isa, latent, &images, &masks, &c, &mut masked);
                    assert_eq!(
                        bits(&masked),
                        bits(&dense),
                        "{} L={latent} n={rows}",
                        isa.name()
                    );
                }
            }
        }
    }

    #[test]
    fn masks_of_bytes_are_the_masks_of_their_floats() {
        // Every byte value somewhere, zeros in runs and alone, at every
        // position of a 64-pixel word and in the last, short word.
        let pixels: Vec<u8> = (0..5 * INPUT)
            .map(|i| match i % 7 {
                0 | 3 => 0,
                _ => (i * 37 % 256) as u8,
            })
            .collect();
        let indices = [4, 0, 2, 2];
        let floats: Vec<f32> = indices
            .iter()
            .flat_map(|&i| &pixels[i * INPUT..][..INPUT])
            .map(|&p| ae_store::byte_value(p))
            .collect();
        let (mut from_floats, mut from_bytes) = (PixelMasks::new(), PixelMasks::new());
        from_floats.refill(&floats);
        from_bytes.refill_from_bytes(&pixels, &indices);
        assert_eq!(from_bytes.masks, from_floats.masks);
        assert_eq!(from_bytes.nonzero, from_floats.nonzero);
        from_bytes.refill_from_bytes(&vec![0; INPUT], &[0]);
        assert_eq!(from_bytes.masks, [[0; WORDS]]);
        from_bytes.refill_from_bytes(&vec![1; INPUT], &[0]);
        assert_eq!(from_bytes.nonzero, INPUT);
        assert_eq!(from_bytes.masks[0][WORDS - 1], (1 << (INPUT % 64)) - 1);
    }

    #[test]
    fn masks_mark_exactly_the_nonzero_pixels_and_judge_density() {
        let mut images = vec![0.0f32; 2 * INPUT];
        images[0] = 0.5;
        images[63] = 1.0;
        images[64] = -0.0;
        images[INPUT + 783] = 0.25;
        let mut masks = PixelMasks::new();
        masks.refill(&images);
        assert_eq!(masks.masks[0][0], 1 | 1 << 63);
        assert_eq!(masks.masks[0][1..], [0; WORDS - 1]);
        assert_eq!(masks.masks[1][WORDS - 1], 1 << (783 % 64));
        assert!(masks.worth_it());
        masks.refill(&vec![0.5; 3 * INPUT]);
        assert!(!masks.worth_it(), "dense images go to the dense kernels");
        masks.refill(&[]);
        assert!(masks.is_empty() && !masks.worth_it());
    }
}
