//! Element-wise functions that the compiler can vectorise, generic over
//! how a path multiplies and adds ([`MulAdd`]): with FMA the polynomial
//! costs half the instructions.

use super::simd::MulAdd;

/// The logistic function 1 / (1 + e⁻ᶻ), in branch-free arithmetic that
/// vectorises, with six multiplies or multiply-adds where
/// `1 / (1 + exp(-z))` took eleven (the decoder's epilogue is bound by
/// them):
///
/// e⁻ᶻ = 2ᵗ with t = −z·log₂e, split into an integer n and |f| ≤ ½ (exactly);
/// 2ᶠ is a degree-5 polynomial (relative error 1.7e-7 in f32), 2⁻ⁿ is built from
/// bits, and 1 / (1 + 2ⁿ·2ᶠ) = 2⁻ⁿ / (2⁻ⁿ + 2ᶠ) needs no product for 2ⁿ.
/// The one rounding that grows with |z| is t's: e⁻ᶻ is off by about
/// |z|·6e-8 relative, which moves σ by σ(1 − σ)·|z|·6e-8, at most 1.4e-8
/// (a quarter of an ulp of σ near ½). t is clamped to ±126 so that
/// 2⁻ⁿ is a normal float: σ(z) is exactly 1 above z ≈ 87.3 and 2⁻¹²⁶/(2⁻¹²⁶ + 2ᶠ)
/// (about 1e-38) below −87.3.
#[inline(always)]
pub fn sigmoid<M: MulAdd>(z: f32) -> f32 {
    const MINUS_LOG2E: f32 = -std::f32::consts::LOG2_E;
    // Adding and subtracting 1.5 · 2²³ rounds to the nearest integer with
    // plain SSE2 arithmetic (no `round` instruction needed).
    const ROUND: f32 = 12_582_912.0;
    // 2ᶠ ≈ 1 + f·(c1 + f·(c2 + …)), minimax on [-½, ½] (c1 is near ln 2,
    // not it).
    #[allow(clippy::approx_constant)]
    const C: [f32; 5] = [
        0.693_147,
        0.240_222_42,
        0.055_507_336,
        0.009_671_513,
        0.001_326_472_7,
    ];
    let t = (z * MINUS_LOG2E).clamp(-126.0, 126.0);
    let shifted = t + ROUND;
    let n = shifted - ROUND;
    let f = t - n;
    let mut p = C[4];
    for &c in C[..4].iter().rev() {
        p = M::mul_add(p, f, c);
    }
    let two_f = M::mul_add(p, f, 1.0);
    // `shifted`'s mantissa holds 2²² + n, so its bit pattern minus ROUND's
    // is n, in integer arithmetic that vectorises (a float-to-int `as`
    // cast adds per-lane saturation checks instead); 2⁻ⁿ has the biased
    // exponent 127 − n, in 1..=253.
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let inverse_scale = f32::from_bits(127u32.wrapping_sub(n_bits) << 23);
    inverse_scale / (inverse_scale + two_f)
}

#[cfg(test)]
mod tests {
    use super::super::simd::{Fused, Plain};
    use super::*;

    /// The worst errors of σ against float64 on a fine grid of z in
    /// [-100, 100]: absolute, and relative to σ divided by 1 + |z| (the
    /// rounding of t = −z·log₂e grows with |z|; where σ is a normal float).
    fn worst_errors<M: MulAdd>() -> (f64, f64) {
        let (mut absolute, mut relative) = (0.0f64, 0.0f64);
        let mut z = -100.0f32;
        while z <= 100.0 {
            let exact = 1.0 / (1.0 + (-f64::from(z)).exp());
            let error = (f64::from(sigmoid::<M>(z)) - exact).abs();
            absolute = absolute.max(error);
            if exact > f64::from(f32::MIN_POSITIVE) {
                relative = relative.max(error / exact / (1.0 + f64::from(z.abs())));
            }
            z += 0.000_731;
        }
        (absolute, relative)
    }

    /// About as accurate as `1 / (1 + exp(-z))` with an exp good to 2e-7
    /// (Cephes' `expf`), which measured 8.8e-8 and 1.14e-7 here; this
    /// measures 9.2e-8 and 1.33e-7.
    #[test]
    fn sigmoid_is_accurate_across_the_range_fused_or_not() {
        for (path, (absolute, relative)) in [
            ("plain", worst_errors::<Plain>()),
            ("fused", worst_errors::<Fused>()),
        ] {
            assert!(absolute < 1.0e-7, "{path}: absolute error {absolute}");
            assert!(
                relative < 1.4e-7,
                "{path}: relative error {relative} × (1 + |z|)"
            );
        }
    }

    fn saturates<M: MulAdd>() {
        assert_eq!(sigmoid::<M>(0.0), 0.5);
        assert!(sigmoid::<M>(200.0) == 1.0);
        assert!(sigmoid::<M>(-200.0) >= 0.0 && sigmoid::<M>(-200.0) < 1e-37);
        assert!((f64::from(sigmoid::<M>(1.5)) - 1.0 / (1.0 + (-1.5f64).exp())).abs() < 1e-7);
    }

    #[test]
    fn sigmoid_saturates_without_nan() {
        saturates::<Plain>();
        saturates::<Fused>();
    }
}
