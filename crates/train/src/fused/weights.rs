//! The weights as the kernels read them, in two parts that the two threads
//! update side by side after each step (the main thread the encoder, the
//! helper the decoder).
//!
//! The encoder weight is kept transposed, `[784, L]`, the layout of the
//! decoder weight, so that both weight gradients come from one kernel; the
//! decoder also keeps its transpose `[L, 784]` for the forward pass,
//! refreshed after every step. Adam works element by element, so it runs
//! on this layout as on any other.

use ae_model::kernels::transpose;
use ae_model::{INPUT, Params};

/// W1ᵀ and b1.
pub(crate) struct Encoder {
    /// W1ᵀ, `[784, L]`.
    pub(crate) weight_t: Vec<f32>,
    /// b1, `[L]`.
    pub(crate) bias: Vec<f32>,
}

/// W2, b2 and W2ᵀ.
pub(crate) struct Decoder {
    /// W2, `[784, L]`.
    pub(crate) weight: Vec<f32>,
    /// b2, `[784]`.
    pub(crate) bias: Vec<f32>,
    /// W2ᵀ, `[L, 784]`.
    pub(crate) weight_t: Vec<f32>,
}

impl Encoder {
    /// The encoder of `params`.
    pub(crate) fn new(params: &Params) -> Self {
        let mut weight_t = vec![0.0; params.encoder_weight.len()];
        transpose(
            &params.encoder_weight,
            params.latent(),
            INPUT,
            &mut weight_t,
        );
        Self {
            weight_t,
            bias: params.encoder_bias.clone(),
        }
    }
}

impl Decoder {
    /// The decoder of `params`.
    pub(crate) fn new(params: &Params) -> Self {
        let mut decoder = Self {
            weight: params.decoder_weight.clone(),
            bias: params.decoder_bias.clone(),
            weight_t: vec![0.0; params.decoder_weight.len()],
        };
        decoder.refresh();
        decoder
    }

    /// W2ᵀ again, after W2 changed.
    pub(crate) fn refresh(&mut self) {
        let latent = self.weight.len() / INPUT;
        transpose(&self.weight, INPUT, latent, &mut self.weight_t);
    }
}

/// The weights in the model's layout.
pub(crate) fn to_params(encoder: &Encoder, decoder: &Decoder) -> Params {
    let latent = encoder.bias.len();
    let mut params = Params::zeros(latent).expect("the engine's latent size is a compiled one");
    transpose(&encoder.weight_t, INPUT, latent, &mut params.encoder_weight);
    params.encoder_bias.clone_from(&encoder.bias);
    params.decoder_weight.clone_from(&decoder.weight);
    params.decoder_bias.clone_from(&decoder.bias);
    params
}

/// Gradients in the model's layout from the engine's (the encoder weight's
/// transposed back to `[L, 784]`).
pub(crate) fn grads_to_model_layout(inner: &Params) -> Params {
    let mut params = inner.clone();
    transpose(
        &inner.encoder_weight,
        INPUT,
        inner.latent(),
        &mut params.encoder_weight,
    );
    params
}
