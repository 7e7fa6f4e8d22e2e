//! The CPU kernels of this one topology, shared by the fused training
//! engine (`ae-train`) and inference ([`Codec`](crate::Codec)): the skinny
//! products without packing and the decoder fused with what follows it
//! ([`skinny`]), compiled per instruction set and chosen at run time
//! ([`simd`]), over vectorisable element-wise functions ([`math`]).
//!
//! Every product computes each output row on its own, in the same order of
//! operations whatever the rows beside it, so an image is encoded and
//! decoded to the same bits alone or in any batch, and inference gives
//! the bits training's validation pass computed.

pub mod math;
pub mod simd;
pub mod skinny;
pub mod sparse;

pub use simd::{Isa, Level};

use crate::INPUT;
use simd::{dispatch_fma, prefetch};

dispatch_fma! {
    /// Images `indices` of the 8-bit `pixels` (`[N, 784]`) into the rows of
    /// `out`, each pixel `p` as `p / 255` correctly rounded: the value the
    /// data stage's floats have, so training on bytes gives the bits of
    /// training on floats. With FMA the quotient is a product and one
    /// correction step, exact for every byte (the tests check all 256), as
    /// a division 16 lanes wide costs a tenth of an epoch; the baseline
    /// divides.
    ///
    /// # Panics
    /// If an index is past the images, or `out` holds fewer rows than
    /// `indices` (a caller bug).
    pub fn widen_rows<M>(level, pixels: &[u8], indices: &[usize], out: &mut [f32]) -> () {
        const RECIPROCAL: f32 = 1.0 / 255.0;
        let out = &mut out[..indices.len() * INPUT];
        for (k, (row, &i)) in out.chunks_exact_mut(INPUT).zip(indices).enumerate() {
            if let Some(&ahead) = indices.get(k + PREFETCH_ROWS_AHEAD) {
                prefetch(&pixels[ahead * INPUT..][..INPUT]);
            }
            let image = &pixels[i * INPUT..][..INPUT];
            if level == Level::Baseline {
                for (v, &p) in row.iter_mut().zip(image) {
                    *v = f32::from(p) / 255.0;
                }
            } else {
                for (v, &p) in row.iter_mut().zip(image) {
                    let x = f32::from(p);
                    let q = x * RECIPROCAL;
                    let residual = M::mul_add(-q, 255.0, x);
                    *v = M::mul_add(residual, RECIPROCAL, q);
                }
            }
        }
    }
}

/// How many rows ahead [`widen_rows`] asks for the image it will read: the
/// rows are scattered over the whole split, so without this each of an
/// image's 13 cache lines is a wait on memory.
const PREFETCH_ROWS_AHEAD: usize = 4;

/// `dst[cols × rows] = src[rows × cols]ᵀ`.
///
/// # Panics
/// If either slice is shorter than `rows × cols` (a caller bug).
pub fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols);
    for (r, row) in src.chunks_exact(cols).enumerate().take(rows) {
        for (c, &value) in row.iter().enumerate() {
            dst[c * rows + r] = value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widened_rows_are_the_data_stages_values_on_every_path() {
        // Every byte value, in images of 784.
        let pixels: Vec<u8> = (0..3 * INPUT).map(|i| (i % 256) as u8).collect();
        for isa in Isa::every_available() {
            let mut out = vec![f32::NAN; 3 * INPUT];
            widen_rows(isa, &pixels, &[2, 0, 1], &mut out);
            for (row, image) in [2, 0, 1].into_iter().enumerate() {
                for j in 0..INPUT {
                    let p = pixels[image * INPUT + j];
                    assert_eq!(
                        out[row * INPUT + j].to_bits(),
                        ae_store::byte_value(p).to_bits(),
                        "{} pixel {p}",
                        isa.name()
                    );
                }
            }
        }
    }
}
