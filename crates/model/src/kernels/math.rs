//! Element-wise functions that the compiler can vectorise, generic over
//! how a path multiplies and adds ([`MulAdd`]): with FMA the polynomial
//! costs half the instructions.

use super::simd::MulAdd;

/// eˣ for f32 in branch-free arithmetic (Cephes' `expf` polynomial after
/// range reduction by ln 2), so loops over it vectorise; relative error
/// below 2e-7 on the range where the result is a normal f32. Inputs are
/// clamped to [-87, 88].
#[inline(always)]
pub fn exp<M: MulAdd>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 · 2²³ rounds to the nearest integer with
    // plain SSE2 arithmetic (no `round` instruction needed).
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = M::mul_add(x, LOG2E, ROUND);
    let n = shifted - ROUND;
    let r = M::mul_add(-n, LN2_LO, M::mul_add(-n, LN2_HI, x));
    let p = 1.987_569_1e-4;
    let p = M::mul_add(p, r, 1.398_2e-3);
    let p = M::mul_add(p, r, 8.333_452e-3);
    let p = M::mul_add(p, r, 4.166_579_6e-2);
    let p = M::mul_add(p, r, 1.666_666_5e-1);
    let p = M::mul_add(p, r, 0.5);
    let e_r = M::mul_add(p * r, r, r + 1.0);
    // 2ⁿ built from bits. `shifted`'s mantissa holds 2²² + n, so its bit
    // pattern minus ROUND's is n, in integer arithmetic that vectorises
    // (a float-to-int `as` cast adds per-lane saturation checks instead).
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f32::from_bits(n_bits.wrapping_add(127) << 23);
    e_r * scale
}

/// The logistic function 1 / (1 + e⁻ᶻ).
#[inline(always)]
pub fn sigmoid<M: MulAdd>(z: f32) -> f32 {
    1.0 / (1.0 + exp::<M>(-z))
}

#[cfg(test)]
mod tests {
    use super::super::simd::{Fused, Plain};
    use super::*;

    fn worst_relative_error<M: MulAdd>() -> f64 {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let exact = f64::from(x).exp();
            let rel = ((f64::from(exp::<M>(x)) - exact) / exact).abs();
            worst = worst.max(rel);
            x += 0.001_37;
        }
        worst
    }

    #[test]
    fn exp_is_accurate_across_the_range_fused_or_not() {
        for worst in [
            worst_relative_error::<Plain>(),
            worst_relative_error::<Fused>(),
        ] {
            assert!(worst < 2e-7, "worst relative error {worst}");
        }
        assert_eq!(exp::<Plain>(0.0), 1.0);
        assert_eq!(exp::<Fused>(0.0), 1.0);
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
