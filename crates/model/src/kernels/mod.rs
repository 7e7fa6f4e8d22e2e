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
    /// training on floats. With FMA the quotient is `p · 1/255` with 1/255
    /// split in two floats, `fma(p, hi, p · lo)`: within 2⁻⁴⁸ of p / 255,
    /// whose binary digits repeat every 8 bits and so never come near a
    /// rounding tie; the tests check all 256. A division 16 lanes wide cost
    /// a tenth of an epoch. The baseline divides.
    ///
    /// # Panics
    /// If an index is past the images, or `out` holds fewer rows than
    /// `indices` (a caller bug).
    pub fn widen_rows<M>(level, pixels: &[u8], indices: &[usize], out: &mut [f32]) -> () {
        // 1/255 = RECIPROCAL + RECIPROCAL_LOW to about 2⁻⁶⁴.
        const RECIPROCAL: f32 = 1.0 / 255.0;
        const RECIPROCAL_LOW: f32 = -2.319_175_8e-10;
        let out = &mut out[..indices.len() * INPUT];
        for (k, (row, &i)) in out.chunks_exact_mut(INPUT).zip(indices).enumerate() {
            if let Some(&ahead) = indices.get(k + PREFETCH_ROWS_AHEAD) {
                prefetch(&pixels[ahead * INPUT..][..INPUT]);
            }
            let image = &pixels[i * INPUT..][..INPUT];
            if level == Level::Baseline {
                for (v, &p) in row.iter_mut().zip(image) {
                    *v = ae_store::byte_value(p);
                }
            } else {
                for (v, &p) in row.iter_mut().zip(image) {
                    let x = f32::from(p);
                    *v = M::mul_add(x, RECIPROCAL, x * RECIPROCAL_LOW);
                }
            }
        }
    }
}

/// How many rows ahead [`widen_rows`] asks for the image it will read: the
/// rows are scattered over the whole split, so without this each of an
/// image's 13 cache lines is a wait on memory.
const PREFETCH_ROWS_AHEAD: usize = 4;

/// `dst[cols × rows] = src[rows × cols]ᵀ`: 8 × 8 blocks in vector
/// registers where the path has AVX ([`simd::transpose_blocks`]), the
/// edges and the baseline in blocks of 8 rows, so that each column's 8
/// values are written together (a value at a time, the writes stride
/// through all of `dst`).
///
/// # Panics
/// If either slice is shorter than `rows × cols` (a caller bug).
pub fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    const BLOCK: usize = 8;
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols);
    let full = rows / BLOCK * BLOCK;
    // The columns the vector blocks covered in the first `full` rows.
    let done = if simd::transpose_blocks(Isa::detect(), src, rows, cols, dst) {
        cols / BLOCK * BLOCK
    } else {
        0
    };
    for r0 in (0..full).step_by(BLOCK) {
        let block = &src[r0 * cols..(r0 + BLOCK) * cols];
        for c in done..cols {
            let column: [f32; BLOCK] = std::array::from_fn(|k| block[k * cols + c]);
            dst[c * rows + r0..][..BLOCK].copy_from_slice(&column);
        }
    }
    for r in full..rows {
        for c in 0..cols {
            dst[c * rows + r] = src[r * cols + c];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_any_shape() {
        for (rows, cols) in [
            (0, 3),
            (1, 1),
            (7, 3),
            (8, 32),
            (19, 5),
            (17, 27),
            (784, 32),
            (32, 784),
        ] {
            let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let mut dst = vec![f32::NAN; rows * cols];
            transpose(&src, rows, cols, &mut dst);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(dst[c * rows + r], src[r * cols + c], "{rows}x{cols}");
                }
            }
        }
    }

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
