//! Keras's Adam over the four tensors of [`Params`].

use ae_model::Params;

use crate::engine::AdamSettings;

/// Adam's moments and step count.
pub(super) struct AdamState {
    settings: AdamSettings,
    moment1: Params,
    moment2: Params,
    t: u64,
}

impl AdamState {
    /// Zero moments for a model of `latent` units, before the first step.
    pub(super) fn new(settings: AdamSettings, latent: usize) -> Self {
        let zeros = || Params::zeros(latent).expect("a valid model has a compiled latent size");
        Self {
            settings,
            moment1: zeros(),
            moment2: zeros(),
            t: 0,
        }
    }

    /// One Adam step with `grads`, as Keras computes it:
    /// `m += (g - m)(1 - β1)`, `v += (g² - v)(1 - β2)`, `p -= α_t m / (√v + ε)`.
    pub(super) fn update(&mut self, params: &mut Params, grads: &Params) {
        self.t += 1;
        let alpha = self.settings.step_size(self.t) as f32;
        let b1 = (1.0 - self.settings.beta1) as f32;
        let b2 = (1.0 - self.settings.beta2) as f32;
        let eps = self.settings.epsilon as f32;
        let (m, v) = (&mut self.moment1, &mut self.moment2);
        let tensors = [
            (
                &mut params.encoder_weight,
                &grads.encoder_weight,
                &mut m.encoder_weight,
                &mut v.encoder_weight,
            ),
            (
                &mut params.encoder_bias,
                &grads.encoder_bias,
                &mut m.encoder_bias,
                &mut v.encoder_bias,
            ),
            (
                &mut params.decoder_weight,
                &grads.decoder_weight,
                &mut m.decoder_weight,
                &mut v.decoder_weight,
            ),
            (
                &mut params.decoder_bias,
                &grads.decoder_bias,
                &mut m.decoder_bias,
                &mut v.decoder_bias,
            ),
        ];
        for (p, g, m, v) in tensors {
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m += (g - *m) * b1;
                *v += (g * g - *v) * b2;
                *p -= alpha * *m / (v.sqrt() + eps);
            }
        }
    }
}
