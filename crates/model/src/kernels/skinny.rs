//! The five GEMMs of a training step, and the forward passes of validation
//! and inference, without packing. In every product one dimension is small:
//! the latent size L (8 to 128), or a block of the decoder's output
//! columns. So a block of R rows of the result stays in registers while
//! the other operand streams past once, and neither operand is copied
//! first. matrixmultiply packs both operands of every call into its own
//! layout before multiplying; for these shapes that packing cost nearly as
//! much as the arithmetic (perf, one thread: packing 24 % of the step, its
//! kernel 38 %).
//!
//! The decoder's product is fused with the output pass: each tile of
//! pre-activations becomes sigmoid, squared error and output gradient while
//! it is still in registers, so the `[n, 784]` pre-activations are never
//! written and read back.
//!
//! Each kernel is one generic function over the register block (`W` wide,
//! `R` rows), instantiated per latent size and instruction set
//! ([`dispatch_fma!`](super::simd::dispatch_fma)) with a block that fits
//! the registers: 32 × 16 lanes with AVX-512, 16 × 8 with AVX2, 16 × 4
//! with SSE2.

// The kernels index several arrays with one index, as the maths does; the
// loop shapes are what the compiler vectorises (see `columns_block`).
#![allow(clippy::needless_range_loop)]

use crate::INPUT;

use super::math::sigmoid;
use super::simd::{Level, MulAdd, dispatch_fma};

/// The decoder's output columns in a register block on each path; 784 =
/// 12 × 64 + 16, so every path ends with a block of [`TAIL`] columns.
const DECODE_COLUMNS_AVX512: usize = 64;
const DECODE_COLUMNS_AVX2: usize = 32;
const DECODE_COLUMNS_BASELINE: usize = 16;
/// The last decoder block's width.
const TAIL: usize = 16;
const _: () = assert!(INPUT.is_multiple_of(TAIL));

/// `acc[r] = Σ_t scalar(t, r) · v[t]`: `R` rows of a product against the
/// tall `v`, each `scalar` broadcast against a row of `v`.
#[inline(always)]
fn accumulate<M: MulAdd, const W: usize, const R: usize>(
    v: &[[f32; W]],
    scalar: impl Fn(usize, usize) -> f32,
) -> [[f32; W]; R] {
    let mut acc = [[0.0f32; W]; R];
    for (t, v) in v.iter().enumerate() {
        // A copy, so that the W values are loaded into registers once:
        // through the reference, the compiler read them from memory for
        // every one of the R rows, and with AVX-512 those loads (not the
        // multiply-adds) set the pace: Gᵀ H took 2.5 times as long as G W.
        let v: [f32; W] = *v;
        for r in 0..R {
            let s = scalar(t, r);
            for w in 0..W {
                acc[r][w] = M::mul_add(s, v[w], acc[r][w]);
            }
        }
    }
    acc
}

/// `acc[r] = Σ_t a_rows[r][t] · v[t]`: the rows of `a` times the tall `v`.
#[inline(always)]
fn rows_block<M: MulAdd, const W: usize, const R: usize>(
    a_rows: [&[f32]; R],
    v: &[[f32; W]],
) -> [[f32; W]; R] {
    accumulate::<M, W, R>(v, |t, r| a_rows[r][t])
}

/// `out[n × W] = a[n × k] · v[k × W]`, all row-major.
#[inline(always)]
fn rows_times<M: MulAdd, const W: usize, const R: usize>(
    a: &[f32],
    k: usize,
    v: &[f32],
    out: &mut [f32],
) {
    let v = &v.as_chunks::<W>().0[..k];
    let out = out.as_chunks_mut::<W>().0;
    let full = out.len() / R * R;
    for i in (0..full).step_by(R) {
        let acc = rows_block::<M, W, R>(std::array::from_fn(|r| &a[(i + r) * k..][..k]), v);
        out[i..i + R].copy_from_slice(&acc);
    }
    for i in full..out.len() {
        let [acc] = rows_block::<M, W, 1>([&a[i * k..][..k]], v);
        out[i] = acc;
    }
}

/// `acc[r] = Σ_i a[i][p + r] · c[i]`: columns `p..p + R` of `a` transposed, times `c`.
#[inline(always)]
fn columns_block<M: MulAdd, const W: usize, const R: usize>(
    a: &[f32],
    k: usize,
    p: usize,
    c: &[[f32; W]],
) -> [[f32; W]; R] {
    // Column r of the block as its own slice, read at `i * k`: written as
    // `a[i * k + p + r]`, the compiler vectorises across r (gathering into
    // accumulators on the stack, ten times slower) instead of across W.
    let columns: [&[f32]; R] = std::array::from_fn(|r| &a[p + r..]);
    accumulate::<M, W, R>(c, |i, r| columns[r][i * k])
}

/// `out[k × W] = aᵀ · c` for `a[n × k]` and `c[n × W]`, all row-major.
#[inline(always)]
fn transposed_times<M: MulAdd, const W: usize, const R: usize>(
    a: &[f32],
    k: usize,
    c: &[f32],
    out: &mut [f32],
) {
    let c = c.as_chunks::<W>().0;
    let out = &mut out.as_chunks_mut::<W>().0[..k];
    if c.is_empty() {
        // An empty half batch: a sum of nothing.
        out.fill([0.0; W]);
        return;
    }
    let full = k / R * R;
    for p in (0..full).step_by(R) {
        out[p..p + R].copy_from_slice(&columns_block::<M, W, R>(a, k, p, c));
    }
    for p in full..k {
        let [acc] = columns_block::<M, W, 1>(a, k, p, c);
        out[p] = acc;
    }
}

/// The pre-activations of output columns `c0..c0 + C` for the `R` hidden
/// rows (without the bias): `Σ_l h[r][l] · W2ᵀ[l][c0..]`.
#[inline(always)]
fn decode_block<M: MulAdd, const C: usize, const R: usize>(
    hidden: [&[f32]; R],
    decoder_t: &[f32],
    c0: usize,
) -> [[f32; C]; R] {
    let mut acc = [[0.0f32; C]; R];
    for l in 0..hidden[0].len() {
        let v = &decoder_t[l * INPUT + c0..][..C];
        for r in 0..R {
            let s = hidden[r][l];
            for w in 0..C {
                acc[r][w] = M::mul_add(s, v[w], acc[r][w]);
            }
        }
    }
    acc
}

/// What the decoder does with each tile of pre-activations.
trait Epilogue {
    /// Handles row `row`, columns `c0..c0 + z.len()`, pre-activations `z`
    /// (bias not yet added).
    fn tile<M: MulAdd>(&mut self, row: usize, c0: usize, z: &[f32]);
}

/// Sigmoid, squared error and the output gradient G2 of a training step
/// (without the loss's constant factor).
struct OutputPass<'a> {
    images: &'a [f32],
    bias: &'a [f32],
    grad_output: &'a mut [f32],
    grad_bias: &'a mut [f32],
    row_lanes: &'a mut [[f32; TAIL]],
}

impl Epilogue for OutputPass<'_> {
    #[inline(always)]
    fn tile<M: MulAdd>(&mut self, row: usize, c0: usize, z: &[f32]) {
        let at = row * INPUT + c0;
        let width = z.len();
        let x = &self.images[at..][..width];
        let b = &self.bias[c0..][..width];
        let g = &mut self.grad_output[at..][..width];
        let gb = &mut self.grad_bias[c0..][..width];
        let lanes = &mut self.row_lanes[row];
        for start in (0..width).step_by(TAIL) {
            for k in 0..TAIL {
                let j = start + k;
                let y = sigmoid::<M>(z[j] + b[j]);
                let diff = y - x[j];
                lanes[k] = M::mul_add(diff, diff, lanes[k]);
                let grad = diff * y * (1.0 - y);
                g[j] = grad;
                gb[j] += grad;
            }
        }
    }
}

/// The squared error only, for the validation loss.
struct SquaredErrors<'a> {
    images: &'a [f32],
    bias: &'a [f32],
    row_lanes: &'a mut [[f32; TAIL]],
}

impl Epilogue for SquaredErrors<'_> {
    #[inline(always)]
    fn tile<M: MulAdd>(&mut self, row: usize, c0: usize, z: &[f32]) {
        let width = z.len();
        let x = &self.images[row * INPUT + c0..][..width];
        let b = &self.bias[c0..][..width];
        let lanes = &mut self.row_lanes[row];
        for start in (0..width).step_by(TAIL) {
            for k in 0..TAIL {
                let j = start + k;
                let diff = sigmoid::<M>(z[j] + b[j]) - x[j];
                lanes[k] = M::mul_add(diff, diff, lanes[k]);
            }
        }
    }
}

/// The reconstruction itself, for inference: sigmoid(z + b2).
struct Reconstruct<'a> {
    bias: &'a [f32],
    out: &'a mut [f32],
}

impl Epilogue for Reconstruct<'_> {
    #[inline(always)]
    fn tile<M: MulAdd>(&mut self, row: usize, c0: usize, z: &[f32]) {
        let width = z.len();
        let b = &self.bias[c0..][..width];
        let y = &mut self.out[row * INPUT + c0..][..width];
        for j in 0..width {
            y[j] = sigmoid::<M>(z[j] + b[j]);
        }
    }
}

/// Each row's sum of its lanes, into `row_sums`. A row's squared errors
/// are summed in [`TAIL`] lanes across the whole row and the lanes once at
/// the end: summed per tile instead, the chain of scalar additions took a
/// quarter of the decoder pass.
#[inline(always)]
fn sum_lanes(row_lanes: &[[f32; TAIL]], row_sums: &mut [f32]) {
    for (sum, lanes) in row_sums.iter_mut().zip(row_lanes) {
        *sum = lanes.iter().sum();
    }
}

/// The decoder over `hidden[n × L]`, a column block at a time (its slice of
/// W2ᵀ stays in cache while every row passes), each tile to `epilogue`.
#[inline(always)]
fn decode<M: MulAdd, const C: usize, const R: usize, E: Epilogue>(
    hidden: &[f32],
    latent: usize,
    decoder_t: &[f32],
    epilogue: &mut E,
) {
    let rows = hidden.len() / latent;
    let full = rows / R * R;
    let hidden_row = |i: usize| &hidden[i * latent..][..latent];
    let main = INPUT / C * C;
    for c0 in (0..main).step_by(C) {
        for i in (0..full).step_by(R) {
            let z =
                decode_block::<M, C, R>(std::array::from_fn(|r| hidden_row(i + r)), decoder_t, c0);
            for (r, z) in z.iter().enumerate() {
                epilogue.tile::<M>(i + r, c0, z);
            }
        }
        for i in full..rows {
            let [z] = decode_block::<M, C, 1>([hidden_row(i)], decoder_t, c0);
            epilogue.tile::<M>(i, c0, &z);
        }
    }
    for c0 in (main..INPUT).step_by(TAIL) {
        for i in (0..full).step_by(R) {
            let z = decode_block::<M, TAIL, R>(
                std::array::from_fn(|r| hidden_row(i + r)),
                decoder_t,
                c0,
            );
            for (r, z) in z.iter().enumerate() {
                epilogue.tile::<M>(i + r, c0, z);
            }
        }
        for i in full..rows {
            let [z] = decode_block::<M, TAIL, 1>([hidden_row(i)], decoder_t, c0);
            epilogue.tile::<M>(i, c0, &z);
        }
    }
}

/// The pre-activations themselves, for timing the GEMMs alone.
struct Store<'a> {
    out: &'a mut [f32],
}

impl Epilogue for Store<'_> {
    #[inline(always)]
    fn tile<M: MulAdd>(&mut self, row: usize, c0: usize, z: &[f32]) {
        self.out[row * INPUT + c0..][..z.len()].copy_from_slice(z);
    }
}

/// Calls `$f::<M, L, R>($args)` with the register block of `$level` for
/// latent size `$latent` (`L` = the latent size, `R` rows: about 16
/// registers of accumulators on each path).
macro_rules! by_latent {
    ($level:expr, $latent:expr, $f:ident::<$m:ty>($($arg:expr),*)) => {
        match ($level, $latent) {
            (Level::Avx512, 8) => $f::<$m, 8, 16>($($arg),*),
            (Level::Avx512, 16) => $f::<$m, 16, 16>($($arg),*),
            (Level::Avx512, 32) => $f::<$m, 32, 8>($($arg),*),
            (Level::Avx512, 64) => $f::<$m, 64, 4>($($arg),*),
            (Level::Avx512, 128) => $f::<$m, 128, 2>($($arg),*),
            (Level::Avx2, 8) => $f::<$m, 8, 8>($($arg),*),
            (Level::Avx2, 16) => $f::<$m, 16, 4>($($arg),*),
            (Level::Avx2, 32) => $f::<$m, 32, 2>($($arg),*),
            (Level::Avx2, 64) => $f::<$m, 64, 1>($($arg),*),
            (Level::Avx2, 128) => $f::<$m, 128, 1>($($arg),*),
            (_, 8) => $f::<$m, 8, 4>($($arg),*),
            (_, 16) => $f::<$m, 16, 2>($($arg),*),
            (_, 32) => $f::<$m, 32, 1>($($arg),*),
            (_, 64) => $f::<$m, 64, 1>($($arg),*),
            (_, 128) => $f::<$m, 128, 1>($($arg),*),
            (_, other) => unreachable!("latent size {other} is not compiled"),
        }
    };
}

/// Calls `decode::<M, C, R>` with the decoder block of `$level`.
macro_rules! by_level {
    ($level:expr, $m:ty, $($arg:expr),*) => {
        match $level {
            Level::Avx512 => decode::<$m, DECODE_COLUMNS_AVX512, 4, _>($($arg),*),
            Level::Avx2 => decode::<$m, DECODE_COLUMNS_AVX2, 2, _>($($arg),*),
            Level::Baseline => decode::<$m, DECODE_COLUMNS_BASELINE, 2, _>($($arg),*),
        }
    };
}

dispatch_fma! {
    /// `out[n × L] = a[n × k] · v[k × L]` (the encoder: X W1ᵀ with v = W1ᵀ;
    /// the hidden gradient: G2 W2).
    pub fn product<M>(level, latent: usize, a: &[f32], k: usize, v: &[f32], out: &mut [f32]) -> () {
        by_latent!(level, latent, rows_times::<M>(a, k, v, out))
    }
}

dispatch_fma! {
    /// `out[k × L] = aᵀ · c` for `a[n × k]`, `c[n × L]` (the weight
    /// gradients: ∇W2 = G2ᵀ H, ∇W1ᵀ = Xᵀ G1).
    pub fn transposed_product<M>(level, latent: usize, a: &[f32], k: usize, c: &[f32], out: &mut [f32]) -> () {
        by_latent!(level, latent, transposed_times::<M>(a, k, c, out))
    }
}

dispatch_fma! {
    /// The decoder and the output pass of a training step, fused: for the
    /// hidden rows, y = sigmoid(H W2ᵀ + b2); G2 = (y - x) · y · (1 - y)
    /// into `grad_output` and summed over rows into `grad_bias`; each row's
    /// squared error into `row_sums`. G2 leaves out the constant factor
    /// of d(loss)/dy, 2 / (rows × 784) for a mean squared error: the
    /// caller applies it once to the weight gradients instead of here to
    /// every element (one multiply of the ten a pass is bound by).
    pub fn decode_output_pass<M>(
        level,
        hidden: &[f32],
        latent: usize,
        decoder_t: &[f32],
        bias: &[f32],
        images: &[f32],
        grad_output: &mut [f32],
        grad_bias: &mut [f32],
        row_sums: &mut [f32]
    ) -> () {
        grad_bias.fill(0.0);
        let mut row_lanes = vec![[0.0; TAIL]; row_sums.len()];
        let mut pass = OutputPass { images, bias, grad_output, grad_bias, row_lanes: &mut row_lanes };
        by_level!(level, M, hidden, latent, decoder_t, &mut pass);
        sum_lanes(&row_lanes, row_sums)
    }
}

dispatch_fma! {
    /// Each hidden row's squared reconstruction error, Σ (sigmoid(H W2ᵀ + b2) - x)²,
    /// into `row_sums`.
    pub fn decode_squared_errors<M>(
        level,
        hidden: &[f32],
        latent: usize,
        decoder_t: &[f32],
        bias: &[f32],
        images: &[f32],
        row_sums: &mut [f32]
    ) -> () {
        let mut row_lanes = vec![[0.0; TAIL]; row_sums.len()];
        let mut pass = SquaredErrors { images, bias, row_lanes: &mut row_lanes };
        by_level!(level, M, hidden, latent, decoder_t, &mut pass);
        sum_lanes(&row_lanes, row_sums)
    }
}

dispatch_fma! {
    /// The decoder's output for the hidden rows, y = sigmoid(H W2ᵀ + b2),
    /// into `out` (`[n × 784]`). Each row's values are the bits the
    /// training passes compute for it, whatever the other rows.
    pub fn decode_output<M>(
        level,
        hidden: &[f32],
        latent: usize,
        decoder_t: &[f32],
        bias: &[f32],
        out: &mut [f32]
    ) -> () {
        let mut pass = Reconstruct { bias, out };
        by_level!(level, M, hidden, latent, decoder_t, &mut pass)
    }
}

dispatch_fma! {
    /// `out[n × 784] = H W2ᵀ`: the decoder's product alone, without the bias.
    pub fn decode_product<M>(
        level,
        hidden: &[f32],
        latent: usize,
        decoder_t: &[f32],
        out: &mut [f32]
    ) -> () {
        let mut store = Store { out };
        by_level!(level, M, hidden, latent, decoder_t, &mut store)
    }
}

#[cfg(test)]
mod tests {
    use super::super::simd::Isa;
    use super::*;

    fn values(n: usize, salt: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + salt * 104_729) % 997) as f32 - 498.0) / 997.0)
            .collect()
    }

    /// `a[n × k] · b[k × m]` in f64.
    fn reference(a: &[f32], b: &[f32], n: usize, k: usize, m: usize) -> Vec<f64> {
        (0..n * m)
            .map(|idx| {
                (0..k)
                    .map(|p| f64::from(a[idx / m * k + p]) * f64::from(b[p * m + idx % m]))
                    .sum()
            })
            .collect()
    }

    fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        (0..rows * cols)
            .map(|idx| a[(idx % rows) * cols + idx / rows])
            .collect()
    }

    fn assert_close(got: &[f32], want: &[f64], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (f64::from(*g) - w).abs() <= 1e-4 * (1.0 + w.abs()),
                "{what}[{i}]: {g} vs {w}"
            );
        }
    }

    /// Every latent size and row count (none, full blocks and tails) on
    /// every path this CPU can run.
    #[test]
    fn products_equal_a_float64_reference_on_every_path() {
        for isa in Isa::every_available() {
            for latent in crate::LATENT_SIZES {
                for rows in [0, 1, 7, 33] {
                    let k = INPUT;
                    let a = values(rows * k, latent + rows);
                    let v = values(k * latent, latent);
                    let mut out = vec![f32::NAN; rows * latent];
                    product(isa, latent, &a, k, &v, &mut out);
                    assert_close(&out, &reference(&a, &v, rows, k, latent), "product");

                    let c = values(rows * latent, 3);
                    let mut out = vec![f32::NAN; k * latent];
                    transposed_product(isa, latent, &a, k, &c, &mut out);
                    let at = transpose(&a, rows, k);
                    assert_close(&out, &reference(&at, &c, k, rows, latent), "transposed");
                }
            }
        }
    }

    #[test]
    fn the_fused_decoder_equals_the_unfused_passes() {
        for isa in Isa::every_available() {
            for latent in [8, 32, 128] {
                let rows = 11;
                let hidden: Vec<f32> = values(rows * latent, 1)
                    .iter()
                    .map(|v| v.max(0.0))
                    .collect();
                let decoder = values(INPUT * latent, 2);
                let decoder_t = transpose(&decoder, INPUT, latent);
                let bias = values(INPUT, 3);
                let images: Vec<f32> = values(rows * INPUT, 4).iter().map(|v| v + 0.5).collect();
                let z = reference(&hidden, &decoder_t, rows, latent, INPUT);
                let (mut g2, mut gb, mut sums) = (
                    vec![f32::NAN; rows * INPUT],
                    vec![f32::NAN; INPUT],
                    vec![f32::NAN; rows],
                );
                decode_output_pass(
                    isa, &hidden, latent, &decoder_t, &bias, &images, &mut g2, &mut gb, &mut sums,
                );
                let mut want_g2 = vec![0.0; rows * INPUT];
                let mut want_gb = vec![0.0; INPUT];
                let mut want_sums = vec![0.0; rows];
                for (idx, z) in z.iter().enumerate() {
                    let y = 1.0 / (1.0 + (-(z + f64::from(bias[idx % INPUT]))).exp());
                    let diff = y - f64::from(images[idx]);
                    want_sums[idx / INPUT] += diff * diff;
                    want_g2[idx] = diff * y * (1.0 - y);
                    want_gb[idx % INPUT] += want_g2[idx];
                }
                let mut plain = vec![f32::NAN; rows * INPUT];
                decode_product(isa, &hidden, latent, &decoder_t, &mut plain);
                assert_close(&plain, &z, "H W2ᵀ");
                assert_close(&g2, &want_g2, "G2");
                assert_close(&gb, &want_gb, "grad bias");
                assert_close(&sums, &want_sums, "row sums");
                let mut y = vec![f32::NAN; rows * INPUT];
                decode_output(isa, &hidden, latent, &decoder_t, &bias, &mut y);
                let want_y: Vec<f64> = z
                    .iter()
                    .enumerate()
                    .map(|(idx, z)| 1.0 / (1.0 + (-(z + f64::from(bias[idx % INPUT]))).exp()))
                    .collect();
                assert_close(&y, &want_y, "sigmoid(H W2ᵀ + b2)");
                let mut only = vec![f32::NAN; rows];
                decode_squared_errors(isa, &hidden, latent, &decoder_t, &bias, &images, &mut only);
                assert_eq!(only, sums, "the validation pass sums as training does");
            }
        }
    }
}
