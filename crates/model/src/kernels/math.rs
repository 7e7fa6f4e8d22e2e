//! Element-wise functions that the compiler can vectorise.

/// eˣ for f32 in branch-free arithmetic (Cephes' `expf` polynomial after
/// range reduction by ln 2), so loops over it vectorise; relative error
/// below 2e-7 on the range where the result is a normal f32. Inputs are
/// clamped to [-87, 88].
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 · 2²³ rounds to the nearest integer with
    // plain SSE2 arithmetic (no `round` instruction needed).
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_2e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e_r = p * r * r + r + 1.0;
    // 2ⁿ built from bits. `shifted`'s mantissa holds 2²² + n, so its bit
    // pattern minus ROUND's is n, in integer arithmetic that vectorises
    // (a float-to-int `as` cast adds per-lane saturation checks instead).
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f32::from_bits(n_bits.wrapping_add(127) << 23);
    e_r * scale
}

/// The logistic function 1 / (1 + e⁻ᶻ).
#[inline(always)]
pub fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + exp(-z))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_across_the_range() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let exact = (x as f64).exp();
            let rel = ((exp(x) as f64 - exact) / exact).abs();
            worst = worst.max(rel);
            x += 0.001_37;
        }
        assert!(worst < 2e-7, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn sigmoid_saturates_without_nan() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(200.0) == 1.0 && sigmoid(-200.0) >= 0.0 && sigmoid(-200.0) < 1e-37);
        assert!((sigmoid(1.5) as f64 - 1.0 / (1.0 + (-1.5f64).exp())).abs() < 1e-7);
    }
}
