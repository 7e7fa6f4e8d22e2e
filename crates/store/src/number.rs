//! Numbers as people read them.

/// `x` with `decimals` decimals where that shows it well (zero, or a
/// magnitude from 1e-4 to below 1e6), and otherwise in scientific notation
/// with as many decimals: a threshold of 1e308 prints as `1.000000e308`,
/// not as 309 digits.
pub fn readable(x: f64, decimals: usize) -> String {
    let magnitude = x.abs();
    if x == 0.0 || (1e-4..1e6).contains(&magnitude) || !x.is_finite() {
        format!("{x:.decimals$}")
    } else {
        format!("{x:.decimals$e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_numbers_in_decimals_extreme_ones_in_scientific_notation() {
        assert_eq!(readable(0.019273, 6), "0.019273");
        assert_eq!(readable(0.0, 6), "0.000000");
        assert_eq!(readable(1e308, 6), "1.000000e308");
        assert_eq!(readable(-2.5e-9, 4), "-2.5000e-9");
        assert_eq!(readable(f64::NAN, 4), "NaN");
    }
}
