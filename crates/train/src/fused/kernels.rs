//! The fused element-wise passes over a half batch, each compiled for every
//! [`Isa`](super::simd::Isa) path; the arithmetic lives in [`super::math`].

use ae_model::INPUT;

use super::math::sigmoid;
use super::simd::dispatch;

/// Elements processed side by side in the element-wise passes; 784 = 49 × 16.
const LANES: usize = 16;
const _: () = assert!(INPUT.is_multiple_of(LANES));

dispatch! {
    /// For each row: y = sigmoid(z + b2), the squared error against the
    /// image, and G2 = scale · (y - x) · y · (1 - y) written over z; G2 summed
    /// over rows into `grad_bias`. Returns the sum of squared errors.
    pub(crate) fn output_pass(
        output: &mut [f32],
        images: &[f32],
        bias: &[f32],
        grad_bias: &mut [f32],
        scale: f32
    ) -> f64 {
        grad_bias.fill(0.0);
        let mut loss_sum = 0.0f64;
        for (out_row, x_row) in output.chunks_exact_mut(INPUT).zip(images.chunks_exact(INPUT)) {
            // One accumulator per lane, so the loop vectorises (a single f32
            // running sum cannot be reordered).
            let mut lane_sums = [0.0f32; LANES];
            let lanes = out_row
                .chunks_exact_mut(LANES)
                .zip(x_row.chunks_exact(LANES))
                .zip(bias.chunks_exact(LANES))
                .zip(grad_bias.chunks_exact_mut(LANES));
            for (((z, x), b), gb) in lanes {
                for k in 0..LANES {
                    let y = sigmoid(z[k] + b[k]);
                    let diff = y - x[k];
                    lane_sums[k] += diff * diff;
                    let g = scale * diff * y * (1.0 - y);
                    z[k] = g;
                    gb[k] += g;
                }
            }
            loss_sum += f64::from(lane_sums.iter().sum::<f32>());
        }
        loss_sum
    }
}

dispatch! {
    /// The sum over rows of Σ (sigmoid(z + b2) - x)².
    pub(crate) fn squared_errors(output: &[f32], images: &[f32], bias: &[f32]) -> f64 {
        let mut total = 0.0f64;
        for (out_row, x_row) in output.chunks_exact(INPUT).zip(images.chunks_exact(INPUT)) {
            let mut lane_sums = [0.0f32; LANES];
            let lanes = out_row.chunks_exact(LANES).zip(x_row.chunks_exact(LANES)).zip(bias.chunks_exact(LANES));
            for ((z, x), b) in lanes {
                for k in 0..LANES {
                    let diff = sigmoid(z[k] + b[k]) - x[k];
                    lane_sums[k] += diff * diff;
                }
            }
            total += f64::from(lane_sums.iter().sum::<f32>());
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::super::simd::Isa;
    use super::*;

    /// The detected path and the baseline compute the same sums (up to the
    /// rounding of fused multiply-adds).
    #[test]
    fn every_path_agrees_with_the_baseline() {
        let rows = 3;
        let z: Vec<f32> = (0..rows * INPUT)
            .map(|i| ((i % 97) as f32 - 48.0) / 9.0)
            .collect();
        let x: Vec<f32> = (0..rows * INPUT)
            .map(|i| (i % 256) as f32 / 255.0)
            .collect();
        let b: Vec<f32> = (0..INPUT).map(|i| (i % 7) as f32 / 10.0 - 0.3).collect();
        let detected = squared_errors(Isa::detect(), &z, &x, &b);
        let baseline = squared_errors(Isa::baseline(), &z, &x, &b);
        assert!(
            (detected - baseline).abs() <= 1e-5 * baseline,
            "{detected} vs {baseline}"
        );
        let (mut out_d, mut out_b) = (z.clone(), z);
        let (mut gb_d, mut gb_b) = (vec![0.0; INPUT], vec![0.0; INPUT]);
        let loss_d = output_pass(Isa::detect(), &mut out_d, &x, &b, &mut gb_d, 0.01);
        let loss_b = output_pass(Isa::baseline(), &mut out_b, &x, &b, &mut gb_b, 0.01);
        assert!((loss_d - loss_b).abs() <= 1e-5 * loss_b);
        assert_eq!(loss_b, baseline, "the pass's loss is the squared error sum");
        for (d, b) in gb_d.iter().zip(&gb_b) {
            assert!((d - b).abs() <= 1e-6, "{d} vs {b}");
        }
    }
}
