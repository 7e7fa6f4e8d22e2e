//! One worker's half of a step: the forward pass, the gradients of its
//! half batch, and the validation error, over buffers it keeps.

use ae_model::{INPUT, Params};

use super::gemm::{View, ViewMut, gemm};
use super::kernels::{output_pass, squared_errors};
use super::simd::Isa;
use crate::batches::gather;

/// Rows per forward pass when computing the validation loss.
const EVAL_ROWS: usize = 1000;

/// The buffers for computing one half batch's gradients.
pub(super) struct Worker {
    isa: Isa,
    latent: usize,
    /// `[rows, 784]`: the gathered images.
    batch: Vec<f32>,
    /// `[rows, L]`: the hidden activations, H.
    hidden: Vec<f32>,
    /// `[rows, 784]`: the output pre-activations, then G2.
    output: Vec<f32>,
    /// `[rows, L]`: G1.
    hidden_grad: Vec<f32>,
    /// This half's share of the batch gradients.
    pub(super) grads: Params,
    /// This half's sum of squared errors at its last step.
    pub(super) loss_sum: f64,
}

impl Worker {
    pub(super) fn new(isa: Isa, latent: usize) -> Self {
        Self {
            isa,
            latent,
            batch: Vec::new(),
            hidden: Vec::new(),
            output: Vec::new(),
            hidden_grad: Vec::new(),
            grads: Params::zeros(latent).expect("a valid model has a compiled latent size"),
            loss_sum: 0.0,
        }
    }

    /// Grows the buffers to `rows` rows; once they are big enough this allocates nothing.
    fn reserve_rows(&mut self, rows: usize) {
        let l = self.latent;
        if self.hidden.len() < rows * l {
            self.hidden.resize(rows * l, 0.0);
            self.hidden_grad.resize(rows * l, 0.0);
            self.output.resize(rows * INPUT, 0.0);
        }
    }

    /// H = relu(X W1ᵀ + b1) and the output pre-activations H W2ᵀ (without
    /// b2) for `rows` images, into the first rows of the buffers.
    fn forward(&mut self, params: &Params, images: &[f32], rows: usize) {
        let l = self.latent;
        let hidden = &mut self.hidden[..rows * l];
        gemm(
            1.0,
            View::rows(images, rows, INPUT),
            View::rows(&params.encoder_weight, l, INPUT).t(),
            0.0,
            ViewMut::rows(hidden, rows, l),
        );
        for row in hidden.chunks_exact_mut(l) {
            for (h, b) in row.iter_mut().zip(&params.encoder_bias) {
                *h = (*h + b).max(0.0);
            }
        }
        gemm(
            1.0,
            View::rows(hidden, rows, l),
            View::rows(&params.decoder_weight, INPUT, l).t(),
            0.0,
            ViewMut::rows(&mut self.output[..rows * INPUT], rows, INPUT),
        );
    }

    /// This half's share of the gradients of a batch's mean squared error,
    /// into `self.grads`; `scale` is 2 / (rows in the whole batch × 784).
    /// Returns the half's sum of squared errors. An empty half gives zeros.
    pub(super) fn half_gradients(
        &mut self,
        params: &Params,
        images: &[f32],
        indices: &[usize],
        scale: f32,
    ) -> f64 {
        let rows = indices.len();
        let l = self.latent;
        let mut batch = std::mem::take(&mut self.batch);
        gather(images, indices, &mut batch);
        self.reserve_rows(rows);
        self.forward(params, &batch, rows);

        // Output pass: sigmoid, squared error, G2 in place, ∇b2.
        let loss_sum = output_pass(
            self.isa,
            &mut self.output[..rows * INPUT],
            &batch,
            &params.decoder_bias,
            &mut self.grads.decoder_bias,
            scale,
        );
        let output = &self.output[..rows * INPUT];
        let hidden = &self.hidden[..rows * l];

        // ∇W2 = G2ᵀ H
        gemm(
            1.0,
            View::rows(output, rows, INPUT).t(),
            View::rows(hidden, rows, l),
            0.0,
            ViewMut::rows(&mut self.grads.decoder_weight, INPUT, l),
        );
        // G1 = (G2 W2) ⊙ [H > 0], ∇b1
        let hidden_grad = &mut self.hidden_grad[..rows * l];
        gemm(
            1.0,
            View::rows(output, rows, INPUT),
            View::rows(&params.decoder_weight, INPUT, l),
            0.0,
            ViewMut::rows(hidden_grad, rows, l),
        );
        let grad_bias = &mut self.grads.encoder_bias;
        grad_bias.fill(0.0);
        for (g_row, h_row) in hidden_grad.chunks_exact_mut(l).zip(hidden.chunks_exact(l)) {
            for ((g, &h), gb) in g_row.iter_mut().zip(h_row).zip(grad_bias.iter_mut()) {
                if h <= 0.0 {
                    *g = 0.0;
                }
                *gb += *g;
            }
        }
        // ∇W1 = G1ᵀ X
        gemm(
            1.0,
            View::rows(hidden_grad, rows, l).t(),
            View::rows(&batch, rows, INPUT),
            0.0,
            ViewMut::rows(&mut self.grads.encoder_weight, l, INPUT),
        );
        self.batch = batch;
        loss_sum
    }

    /// Σ (sigmoid(H W2ᵀ + b2) - X)² over `images`, in chunks.
    pub(super) fn squared_errors(&mut self, params: &Params, images: &[f32]) -> f64 {
        let mut total = 0.0;
        for chunk in images.chunks(EVAL_ROWS * INPUT) {
            let rows = chunk.len() / INPUT;
            self.reserve_rows(rows);
            self.forward(params, chunk, rows);
            total += squared_errors(
                self.isa,
                &self.output[..rows * INPUT],
                chunk,
                &params.decoder_bias,
            );
        }
        total
    }
}
