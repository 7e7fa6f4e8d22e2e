//! One worker's half of a step: the forward pass, the gradients of its
//! half batch, and the validation error, over buffers it keeps.

use ae_model::{INPUT, Params};
use ae_store::PixelsRef;

use super::weights::{Decoder, Encoder};
use crate::batches::gather;
use ae_model::kernels::Isa;
use ae_model::kernels::skinny::{
    decode_output_pass, decode_squared_errors, product, transposed_product,
};
use ae_model::kernels::sparse::{
    PixelMasks, masked_product, masked_transposed_product, refill_masks,
};

/// Rows per forward pass when computing the validation loss.
const EVAL_ROWS: usize = 1000;

/// The buffers for computing one half batch's gradients.
pub(super) struct Worker {
    isa: Isa,
    latent: usize,
    /// `[rows, 784]`: the gathered images.
    batch: Vec<f32>,
    /// Which of their pixels are nonzero.
    masks: PixelMasks,
    /// `[rows, L]`: the hidden activations, H.
    hidden: Vec<f32>,
    /// `[rows, 784]`: the output gradient G2.
    output: Vec<f32>,
    /// `[rows, L]`: G1.
    hidden_grad: Vec<f32>,
    /// `[rows]`: each row's squared error.
    row_sums: Vec<f32>,
    /// The rows of the half batch last gathered.
    rows: usize,
}

impl Worker {
    pub(super) fn new(isa: Isa, latent: usize) -> Self {
        Self {
            isa,
            latent,
            batch: Vec::new(),
            masks: PixelMasks::new(),
            hidden: Vec::new(),
            output: Vec::new(),
            hidden_grad: Vec::new(),
            row_sums: Vec::new(),
            rows: 0,
        }
    }

    /// Grows the buffers to `rows` rows; once they are big enough this allocates nothing.
    fn reserve_rows(&mut self, rows: usize) {
        let l = self.latent;
        if self.row_sums.len() < rows {
            self.hidden.resize(rows * l, 0.0);
            self.hidden_grad.resize(rows * l, 0.0);
            self.output.resize(rows * INPUT, 0.0);
            self.row_sums.resize(rows, 0.0);
        }
    }

    /// H = relu(X W1ᵀ + b1) for the `rows` images gathered, whose pixel
    /// masks are in `masks`, into the first rows of `hidden`.
    fn encode(&mut self, encoder: &Encoder, images: &[f32], rows: usize) {
        let l = self.latent;
        let hidden = &mut self.hidden[..rows * l];
        if self.masks.worth_it() {
            masked_product(self.isa, l, images, &self.masks, &encoder.weight_t, hidden);
        } else {
            product(self.isa, l, images, INPUT, &encoder.weight_t, hidden);
        }
        for row in hidden.chunks_exact_mut(l) {
            for (h, b) in row.iter_mut().zip(&encoder.bias) {
                *h = (*h + b).max(0.0);
            }
        }
    }

    /// This half's share of the gradients of a batch's mean squared error,
    /// without its constant factor 2 / (rows in the whole batch × 784)
    /// (the engine applies it to the sum of the halves), into `grads`, in
    /// the engine's layout (the encoder weight's gradient transposed, see
    /// [`Encoder`]).
    /// Returns the half's sum of squared errors. An empty half gives zeros.
    /// The three phases one after another; on two threads the engine waits
    /// for each weight only before the phase that reads it.
    pub(super) fn half_gradients(
        &mut self,
        encoder: &Encoder,
        decoder: &Decoder,
        images: PixelsRef<'_>,
        indices: &[usize],
        grads: &mut Params,
    ) -> f64 {
        self.gather(images, indices);
        self.encode_batch(encoder);
        self.gradients(decoder, grads)
    }

    /// Phase 1, which reads no weight: the images at `indices`, as f32,
    /// and their pixel masks for the sparse kernels (from the bytes, where
    /// the images are bytes).
    pub(super) fn gather(&mut self, images: PixelsRef<'_>, indices: &[usize]) {
        gather(self.isa, images, indices, &mut self.batch);
        match images {
            PixelsRef::Bytes(bytes) => self.masks.refill_from_bytes(bytes, indices),
            PixelsRef::Floats(_) => refill_masks(self.isa, &mut self.masks, &self.batch),
        }
        self.rows = indices.len();
        self.reserve_rows(self.rows);
    }

    /// Phase 2, which reads the encoder: H for the gathered images.
    pub(super) fn encode_batch(&mut self, encoder: &Encoder) {
        let batch = std::mem::take(&mut self.batch);
        self.encode(encoder, &batch, self.rows);
        self.batch = batch;
    }

    /// Phase 3, which reads the decoder: the gradients of the gathered and
    /// encoded half (see [`Worker::half_gradients`]).
    pub(super) fn gradients(&mut self, decoder: &Decoder, grads: &mut Params) -> f64 {
        let rows = self.rows;
        let l = self.latent;
        let batch = std::mem::take(&mut self.batch);

        // Decoder fused with the output pass: sigmoid, squared error, G2, ∇b2.
        let hidden = &self.hidden[..rows * l];
        let output = &mut self.output[..rows * INPUT];
        let row_sums = &mut self.row_sums[..rows];
        decode_output_pass(
            self.isa,
            hidden,
            l,
            &decoder.weight_t,
            &decoder.bias,
            &batch,
            output,
            &mut grads.decoder_bias,
            row_sums,
        );
        let loss_sum = row_sums.iter().map(|&s| f64::from(s)).sum();
        let output = &*output;

        // ∇W2 = G2ᵀ H
        transposed_product(
            self.isa,
            l,
            output,
            INPUT,
            hidden,
            &mut grads.decoder_weight,
        );
        // G1 = (G2 W2) ⊙ [H > 0], ∇b1
        let hidden_grad = &mut self.hidden_grad[..rows * l];
        product(self.isa, l, output, INPUT, &decoder.weight, hidden_grad);
        let grad_bias = &mut grads.encoder_bias;
        grad_bias.fill(0.0);
        for (g_row, h_row) in hidden_grad.chunks_exact_mut(l).zip(hidden.chunks_exact(l)) {
            for ((g, &h), gb) in g_row.iter_mut().zip(h_row).zip(grad_bias.iter_mut()) {
                if h <= 0.0 {
                    *g = 0.0;
                }
                *gb += *g;
            }
        }
        // ∇W1ᵀ = Xᵀ G1 (the engine keeps the encoder weight transposed)
        if self.masks.worth_it() {
            masked_transposed_product(
                self.isa,
                l,
                &batch,
                &self.masks,
                hidden_grad,
                &mut grads.encoder_weight,
            );
        } else {
            transposed_product(
                self.isa,
                l,
                &batch,
                INPUT,
                hidden_grad,
                &mut grads.encoder_weight,
            );
        }
        self.batch = batch;
        loss_sum
    }

    /// Σ (sigmoid(H W2ᵀ + b2) - X)² over `images`, in chunks.
    pub(super) fn squared_errors(
        &mut self,
        encoder: &Encoder,
        decoder: &Decoder,
        images: PixelsRef<'_>,
    ) -> f64 {
        let every_row: Vec<usize> = (0..EVAL_ROWS).collect();
        let mut total = 0.0;
        let mut rest = images;
        while !rest.is_empty() {
            let (chunk, after) = rest.split_at_image(EVAL_ROWS.min(rest.images()));
            rest = after;
            self.gather(chunk, &every_row[..chunk.images()]);
            self.encode_batch(encoder);
            let rows = self.rows;
            let row_sums = &mut self.row_sums[..rows];
            decode_squared_errors(
                self.isa,
                &self.hidden[..rows * self.latent],
                self.latent,
                &decoder.weight_t,
                &decoder.bias,
                &self.batch[..rows * INPUT],
                row_sums,
            );
            total += row_sums.iter().map(|&s| f64::from(s)).sum::<f64>();
        }
        total
    }
}
