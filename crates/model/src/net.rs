//! The dfdx module.

use dfdx::nn::modules::{Linear, Module, ModuleVisitor, NonMutableModule, TensorCollection};
use dfdx::shapes::{Const, Dtype};
use dfdx::tensor::{Cpu, CpuError, NoneTape, OwnedTape, Tensor, ZerosTensor};
use dfdx::tensor_ops::Device;

use crate::{INPUT, ModelError, Params};

/// A batch of images, `[batch, 784]`, with the batch size known at run time.
pub type Images<T = dfdx::tensor::NoneTape> = Tensor<(usize, Const<INPUT>), f32, Cpu, T>;
/// A batch of codes, `[batch, L]`.
pub type Codes<const L: usize, T = dfdx::tensor::NoneTape> = Tensor<(usize, Const<L>), f32, Cpu, T>;

/// The autoencoder as a dfdx module: `encoder` Linear<784, L> then ReLU,
/// `decoder` Linear<L, 784> then sigmoid. Its tensors are named
/// `encoder.weight`, `encoder.bias`, `decoder.weight`, `decoder.bias`.
#[derive(Debug, Clone)]
pub struct Autoencoder<const L: usize, E: Dtype = f32, D: Device<E> = Cpu> {
    /// 784 → L.
    pub encoder: Linear<INPUT, L, E, D>,
    /// L → 784.
    pub decoder: Linear<L, INPUT, E, D>,
}

impl<const L: usize, E, D: Device<E>> TensorCollection<E, D> for Autoencoder<L, E, D>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
{
    type To<E2: Dtype, D2: Device<E2>> = Autoencoder<L, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("encoder", |s| &s.encoder, |s| &mut s.encoder),
                Self::module("decoder", |s| &s.decoder, |s| &mut s.decoder),
            ),
            |(encoder, decoder)| Autoencoder { encoder, decoder },
        )
    }
}

impl<const L: usize, E: Dtype, D: Device<E>> NonMutableModule for Autoencoder<L, E, D> {}

/// `Module` for the two tapes in use: none (inference) and owned (training).
macro_rules! impl_forward {
    ($($tape:ty),*) => {$(
        impl<const L: usize> Module<Images<$tape>> for Autoencoder<L> {
            type Output = Images<$tape>;
            type Error = CpuError;

            /// Reconstructs a batch: sigmoid(relu(x W1ᵀ + b1) W2ᵀ + b2).
            ///
            /// # Shapes
            /// `[batch, 784]` → `[batch, 784]`.
            fn try_forward(&self, images: Images<$tape>) -> Result<Images<$tape>, CpuError> {
                let codes = self.encoder.try_forward(images)?.try_relu()?; // [batch, L]
                self.decoder.try_forward(codes)?.try_sigmoid() // [batch, 784]
            }
        }
    )*};
}

impl_forward!(NoneTape, OwnedTape<f32, Cpu>);

impl<const L: usize> Autoencoder<L> {
    /// Builds the module on `dev` holding `params`' weights.
    pub fn from_params(dev: &Cpu, params: &Params) -> Result<Self, ModelError> {
        if params.latent() != L {
            return Err(ModelError::UnsupportedLatent(params.latent()));
        }
        let mut model = Self {
            encoder: Linear {
                weight: dev.zeros(),
                bias: dev.zeros(),
            },
            decoder: Linear {
                weight: dev.zeros(),
                bias: dev.zeros(),
            },
        };
        model.encoder.weight.copy_from(&params.encoder_weight);
        model.encoder.bias.copy_from(&params.encoder_bias);
        model.decoder.weight.copy_from(&params.decoder_weight);
        model.decoder.bias.copy_from(&params.decoder_bias);
        Ok(model)
    }

    /// The module's weights as [`Params`].
    pub fn to_params(&self) -> Params {
        let mut params = Params::zeros(L).expect("L is a compiled latent size");
        params.encoder_weight = self.encoder.weight.as_vec();
        params.encoder_bias = self.encoder.bias.as_vec();
        params.decoder_weight = self.decoder.weight.as_vec();
        params.decoder_bias = self.decoder.bias.as_vec();
        params
    }

    /// The encoder model: relu(x W1ᵀ + b1).
    ///
    /// # Shapes
    /// `[batch, 784]` → `[batch, L]`.
    pub fn encode(&self, images: Images) -> Codes<L> {
        self.encoder.forward(images).relu()
    }

    /// The decoder model: sigmoid(z W2ᵀ + b2).
    ///
    /// # Shapes
    /// `[batch, L]` → `[batch, 784]`.
    pub fn decode(&self, codes: Codes<L>) -> Images {
        self.decoder.forward(codes).sigmoid()
    }
}
