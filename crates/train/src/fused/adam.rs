//! Keras's Adam, on the two threads' halves of the weights.

use crate::engine::AdamSettings;
use ae_model::dispatch_fma;
use ae_model::kernels::Isa;

/// Adam's moments and step count for a group of tensors (the encoder's
/// two, or the decoder's).
pub(super) struct AdamState<const N: usize> {
    settings: AdamSettings,
    moment1: [Vec<f32>; N],
    moment2: [Vec<f32>; N],
    t: u64,
}

impl<const N: usize> AdamState<N> {
    /// Zero moments for tensors of these sizes, before the first step.
    pub(super) fn new(settings: AdamSettings, sizes: [usize; N]) -> Self {
        Self {
            settings,
            moment1: sizes.map(|n| vec![0.0; n]),
            moment2: sizes.map(|n| vec![0.0; n]),
            t: 0,
        }
    }

    /// One Adam step on `params` with the gradient `g = (first + second)
    /// · scale` (the two halves of a batch, summed element by element in
    /// that order, times the loss's constant factor that they leave out),
    /// as Keras computes it: `m += (g - m)(1 - β1)`, `v += (g² - v)(1 - β2)`,
    /// `p -= α_t m / (√v + ε)`; compiled for `isa`'s vector width (the
    /// arithmetic, and so the result, is the same on every path). The
    /// multiply by `scale` costs nothing measurable here, where the square
    /// root and the division set the pace.
    pub(super) fn update(
        &mut self,
        isa: Isa,
        params: [&mut [f32]; N],
        first: [&[f32]; N],
        second: [&[f32]; N],
        scale: f32,
    ) {
        self.t += 1;
        let step = Step {
            scale,
            alpha: self.settings.step_size(self.t) as f32,
            b1: (1.0 - self.settings.beta1) as f32,
            b2: (1.0 - self.settings.beta2) as f32,
            eps: self.settings.epsilon as f32,
        };
        let tensors = params
            .into_iter()
            .zip(first)
            .zip(second)
            .zip(self.moment1.iter_mut().zip(self.moment2.iter_mut()));
        for (((p, g1), g2), (m, v)) in tensors {
            adam_tensor(isa, p, g1, g2, m, v, step);
        }
    }
}

/// One step's constants.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step {
    scale: f32,
    alpha: f32,
    b1: f32,
    b2: f32,
    eps: f32,
}

dispatch_fma! {
    /// Adam on one tensor, its gradient the sum of two halves.
    pub(crate) fn adam_tensor<M>(
        level,
        p: &mut [f32],
        first: &[f32],
        second: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        step: Step
    ) -> () {
        let _ = level;
        let Step {
            scale,
            alpha,
            b1,
            b2,
            eps,
        } = step;
        let n = p.len();
        let (first, second, m, v) = (&first[..n], &second[..n], &mut m[..n], &mut v[..n]);
        for i in 0..n {
            let g = (first[i] + second[i]) * scale;
            m[i] += (g - m[i]) * b1;
            v[i] += (g * g - v[i]) * b2;
            p[i] -= alpha * m[i] / (v[i].sqrt() + eps);
        }
    }
}
