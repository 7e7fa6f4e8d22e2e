//! The reference engine: dfdx's autodiff and Adam.

use ae_model::{Autoencoder, Cpu, INPUT, ModelError, Params};
use dfdx::losses::mse_loss;
use dfdx::nn::{Module, ModuleMut, ZeroGrads};
use dfdx::optim::{Adam, AdamConfig, Optimizer};
use dfdx::shapes::Const;
use dfdx::tensor::{AsArray, Gradients, TensorFromVec, Trace};
use dfdx::tensor_ops::Backward;

use ae_store::PixelsRef;

use crate::batches::gather;
use crate::engine::{AdamSettings, TrainEngine};

/// Rows per forward pass when computing the validation loss.
const EVAL_ROWS: usize = 1000;

/// dfdx's autodiff on [`Autoencoder`], Adam following Keras's ε.
pub struct DfdxEngine<const L: usize> {
    dev: Cpu,
    model: Autoencoder<L>,
    grads: Option<Gradients<f32, Cpu>>,
    opt: Adam<Autoencoder<L>, f32, Cpu>,
    adam: AdamSettings,
    t: u64,
    batch: Vec<f32>,
}

impl<const L: usize> DfdxEngine<L> {
    /// An engine starting from `params`.
    pub fn new(params: &Params, adam: AdamSettings) -> Result<Self, ModelError> {
        let dev = Cpu::default();
        let model = Autoencoder::<L>::from_params(&dev, params)?;
        let grads = model.alloc_grads();
        let opt = Adam::new(
            &model,
            AdamConfig {
                lr: adam.learning_rate,
                betas: [adam.beta1, adam.beta2],
                eps: adam.bias_corrected_epsilon(1),
                weight_decay: None,
            },
        );
        Ok(Self {
            dev,
            model,
            grads: Some(grads),
            opt,
            adam,
            t: 0,
            batch: Vec::new(),
        })
    }

    /// One Adam step on a batch (`[n, 784]`); returns its loss before the step.
    pub fn step(&mut self, batch: &[f32]) -> f32 {
        let (value, mut grads) = self.backward(batch);
        self.t += 1;
        // dfdx adds ε to √v̂; this ε' makes that Keras's ε added to √v.
        self.opt.cfg.eps = self.adam.bias_corrected_epsilon(self.t);
        self.opt
            .update(&mut self.model, &grads)
            .expect("every parameter of the autoencoder gets a gradient");
        self.model.zero_grads(&mut grads);
        self.grads = Some(grads);
        value
    }

    /// The gradients of the mean squared error on `batch` at the current
    /// weights, without taking a step (for checking other engines).
    pub fn gradients(&mut self, batch: &[f32]) -> Params {
        let (_, mut grads) = self.backward(batch);
        let mut out = Params::zeros(L).expect("L is a compiled latent size");
        out.encoder_weight = grads.get(&self.model.encoder.weight).as_vec();
        out.encoder_bias = grads.get(&self.model.encoder.bias).as_vec();
        out.decoder_weight = grads.get(&self.model.decoder.weight).as_vec();
        out.decoder_bias = grads.get(&self.model.decoder.bias).as_vec();
        self.model.zero_grads(&mut grads);
        self.grads = Some(grads);
        out
    }

    /// Forward and backward on a batch: its loss and the gradients (which
    /// the caller must zero and put back).
    fn backward(&mut self, batch: &[f32]) -> (f32, Gradients<f32, Cpu>) {
        let x = self.images(batch);
        let grads = self
            .grads
            .take()
            .expect("the gradients are put back after every step");
        let y = self.model.forward_mut(x.clone().traced(grads));
        let loss = mse_loss(y, x);
        (loss.array(), loss.backward())
    }

    fn images(&self, rows: &[f32]) -> ae_model::Images {
        self.dev
            .tensor_from_vec(rows.to_vec(), (rows.len() / INPUT, Const::<INPUT>))
    }
}

impl<const L: usize> TrainEngine for DfdxEngine<L> {
    fn train_epoch(&mut self, images: PixelsRef<'_>, order: &[usize], batch_size: usize) -> f64 {
        let mut batch = std::mem::take(&mut self.batch);
        let mut loss_sum = 0.0;
        let mut batches = 0usize;
        let isa = ae_model::kernels::Isa::detect();
        for indices in order.chunks(batch_size) {
            gather(isa, images, indices, &mut batch);
            loss_sum += f64::from(self.step(&batch));
            batches += 1;
        }
        self.batch = batch;
        loss_sum / batches as f64
    }

    fn squared_error_sum(&mut self, images: PixelsRef<'_>) -> f64 {
        // Summed in f64 here: dfdx's f32 `sum()` over 784,000 squared errors
        // drifts by about 0.1 %.
        let mut total = 0.0;
        images.for_each_chunk(EVAL_ROWS, &mut Vec::new(), |rows| {
            let reconstructed = self.model.forward(self.images(rows)).as_vec();
            total += reconstructed
                .iter()
                .zip(rows)
                .map(|(&y, &x)| f64::from(y - x).powi(2))
                .sum::<f64>();
        });
        total
    }

    fn params(&self) -> Params {
        self.model.to_params()
    }
}
