//! The fused engine: the training step of this one topology written out by
//! hand on its own kernels: five GEMMs without packing, the decoder's fused
//! with the output pass, over preallocated buffers. It computes what dfdx's
//! autodiff computes (the tests hold the gradients and the weights after
//! several steps to it) several times faster, since it skips dfdx's per-op
//! tensors and tape and the GEMM crates' packing.
//!
//! With X the batch `[n, 784]`, W1 `[L, 784]`, W2 `[784, L]`:
//! ```text
//! forward   H  = relu(X W1ᵀ + b1)              [n, L]
//!           Y  = sigmoid(H W2ᵀ + b2)           [n, 784]
//!           loss = mean((Y - X)²)
//! backward  G2 = 2 (Y - X) ⊙ Y ⊙ (1 - Y) / (n · 784)
//!           ∇W2 = G2ᵀ H,  ∇b2 = Σ_rows G2
//!           G1 = (G2 W2) ⊙ [H > 0]
//!           ∇W1 = G1ᵀ X,  ∇b1 = Σ_rows G1
//! ```
//! then Keras's Adam on every parameter.
//!
//! Every batch is computed as two halves whose gradients are summed, always
//! in the same order, so the result does not depend on how many threads ran
//! them. With two cores a helper thread takes the second half, and after
//! each step the two update the weights side by side (the main thread the
//! encoder, the helper the decoder); they hand off through spin-waited
//! atomic counters, since waking a sleeping thread costs more than a
//! half-step of these small GEMMs.
//!
//! The parts: `ae_model::kernels` (the GEMMs without packing, the decoder
//! fused with the output pass, compiled per instruction set; shared with
//! inference), [`worker`] (a half batch's passes), [`weights`] (the two parts of the
//! weights, in the kernels' layout), [`adam`] (the optimiser), [`handoff`]
//! (the two threads' spin-waits), [`floor`] (the GEMMs alone, for
//! `ae bench --floor`).

mod adam;
mod floor;
mod handoff;
mod weights;
mod worker;

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ae_model::kernels::Isa;
use ae_model::{INPUT, Params};
use ae_store::PixelsRef;

use crate::batches::prefetch_images;
use crate::engine::{AdamSettings, TrainEngine};
use adam::AdamState;
use handoff::{StopOnDrop, spin_until};
use weights::{Decoder, Encoder};
use worker::Worker;

pub use floor::gemm_only_seconds;

/// The kernels' path on this CPU, as the fused engine picks it: `avx512`,
/// `avx2+fma` or `baseline`.
pub fn kernel_path() -> &'static str {
    Isa::detect().name()
}

/// The share of a two-thread epoch the main thread may spend waiting for the
/// helper before the engine counts the epoch as starved. Measured on the
/// 2-core development machine: 1–11 % idle; 71 % with two busy processes
/// beside it, where one thread then ran 3× faster than two had.
const STARVED_WAIT_SHARE: f64 = 0.5;

/// Starved epochs in a row, and the wait they add up to, before the engine
/// concludes that the helper has lost its core and goes on with one
/// thread. A moment's contention is not that: while the pipeline copied the
/// data stage's splits into the cache, four 5-ms epochs of a 5,000-image
/// training each waited 40-80 % of their time, and then none did.
const STARVED_EPOCHS: usize = 3;
const STARVED_WAIT: Duration = Duration::from_millis(100);

/// The run of starved two-thread epochs so far.
#[derive(Debug, Default)]
struct Starvation {
    epochs: usize,
    waited: Duration,
}

impl Starvation {
    /// Counts an epoch in which the main thread waited `waited`, `share` of
    /// the epoch, for its helper; true once the helper has been starved for
    /// [`STARVED_EPOCHS`] epochs in a row and [`STARVED_WAIT`] in all.
    fn starved_after(&mut self, share: f64, waited: Duration) -> bool {
        if share > STARVED_WAIT_SHARE {
            self.epochs += 1;
            self.waited += waited;
        } else {
            *self = Self::default();
        }
        self.epochs >= STARVED_EPOCHS && self.waited >= STARVED_WAIT
    }
}

/// One half batch's gradients and its sum of squared errors.
struct HalfGrads {
    /// In the engine's layout (the encoder weight's transposed).
    grads: Params,
    loss_sum: f64,
}

/// The fused training step; see the module docs.
pub struct FusedEngine {
    /// The kernels' instruction set, detected once.
    isa: Isa,
    /// Updated by the main thread.
    encoder: RwLock<Encoder>,
    /// Updated by the helper.
    decoder: RwLock<Decoder>,
    /// One per half batch; the helper thread uses the second.
    workers: [RwLock<Worker>; 2],
    /// Each half's gradients, apart from its worker's buffers so that the
    /// other thread reads them (to update its part of the weights) while
    /// this one already gathers and encodes the next half.
    half_grads: [RwLock<HalfGrads>; 2],
    adam_encoder: AdamState<2>,
    adam_decoder: AdamState<2>,
    threads: usize,
    starvation: Starvation,
}

impl FusedEngine {
    /// An engine starting from `params`, on as many threads (1 or 2) as
    /// there are cores.
    pub fn new(params: &Params, adam: AdamSettings) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_threads(params, adam, cores.min(2))
    }

    /// An engine starting from `params` on `threads` threads (1 or 2); the
    /// results are the same either way.
    pub fn with_threads(params: &Params, adam: AdamSettings, threads: usize) -> Self {
        let isa = Isa::detect();
        let worker = || RwLock::new(Worker::new(isa, params.latent()));
        let half_grads = || {
            RwLock::new(HalfGrads {
                grads: Params::zeros(params.latent())
                    .expect("a valid model has a compiled latent size"),
                loss_sum: 0.0,
            })
        };
        let sizes = |a: &[f32], b: &[f32]| [a.len(), b.len()];
        Self {
            isa,
            encoder: RwLock::new(Encoder::new(params)),
            decoder: RwLock::new(Decoder::new(params)),
            workers: [worker(), worker()],
            half_grads: [half_grads(), half_grads()],
            adam_encoder: AdamState::new(adam, sizes(&params.encoder_weight, &params.encoder_bias)),
            adam_decoder: AdamState::new(adam, sizes(&params.decoder_weight, &params.decoder_bias)),
            threads: threads.clamp(1, 2),
            starvation: Starvation::default(),
        }
    }

    /// The gradients of the mean squared error over the images at `indices`
    /// at the current weights (no step taken), as Adam computes them.
    pub fn gradients(&mut self, images: PixelsRef<'_>, indices: &[usize]) -> Params {
        self.batch_gradients(images, indices);
        let [h0, h1] = &mut self.half_grads;
        let mut sum = h0.get_mut().expect("not poisoned").grads.clone();
        add_into(&mut sum, &h1.get_mut().expect("not poisoned").grads);
        let scale = loss_scale(indices.len());
        for tensor in [
            &mut sum.encoder_weight,
            &mut sum.encoder_bias,
            &mut sum.decoder_weight,
            &mut sum.decoder_bias,
        ] {
            tensor.iter_mut().for_each(|g| *g *= scale);
        }
        weights::grads_to_model_layout(&sum)
    }

    /// One step on one thread: both halves, then Adam. Returns the batch loss.
    fn step_single(&mut self, images: PixelsRef<'_>, indices: &[usize]) -> f64 {
        let loss = self.batch_gradients(images, indices);
        let scale = loss_scale(indices.len());
        let [h0, h1] = &self.half_grads;
        let (g0, g1) = (
            &h0.read().expect("not poisoned").grads,
            &h1.read().expect("not poisoned").grads,
        );
        update_encoder(
            self.isa,
            &mut self.adam_encoder,
            self.encoder.get_mut().expect("not poisoned"),
            [g0, g1],
            scale,
        );
        update_decoder(
            self.isa,
            &mut self.adam_decoder,
            self.decoder.get_mut().expect("not poisoned"),
            [g0, g1],
            scale,
        );
        loss
    }

    /// On this thread: both halves' gradients, each in its worker (the same
    /// work as on two threads). Returns the batch loss.
    fn batch_gradients(&mut self, images: PixelsRef<'_>, indices: &[usize]) -> f64 {
        let (first, second) = halves(indices);
        let encoder = self.encoder.get_mut().expect("not poisoned");
        let decoder = self.decoder.get_mut().expect("not poisoned");
        let [w0, w1] = &mut self.workers;
        let [h0, h1] = &mut self.half_grads;
        let (w0, w1) = (
            w0.get_mut().expect("not poisoned"),
            w1.get_mut().expect("not poisoned"),
        );
        let (h0, h1) = (
            &mut h0.get_mut().expect("not poisoned").grads,
            &mut h1.get_mut().expect("not poisoned").grads,
        );
        let sum = w0.half_gradients(encoder, decoder, images, first, h0)
            + w1.half_gradients(encoder, decoder, images, second, h1);
        sum / (indices.len() * INPUT) as f64
    }

    /// An epoch with a helper thread computing every batch's second half
    /// and taking Adam's step on the decoder, while the main thread takes
    /// the encoder's and then transposes the new W2 for the next step.
    /// Returns the mean batch loss, the time the main thread spent waiting
    /// for the helper, and that time's share of the epoch.
    ///
    /// The transpose is the main thread's so that each thread updates
    /// about as much: with it, the decoder's side had the longer update
    /// and, measured, the slower gradients too (by 2-3 % of the step
    /// either way round), and the other thread waited for it.
    fn epoch_two_threads(
        &mut self,
        images: PixelsRef<'_>,
        order: &[usize],
        batch_size: usize,
    ) -> (f64, Duration, f64) {
        let clock = Instant::now();
        let mut waited = Duration::ZERO;
        // Each counter = s + 1 once its thread has done that part of step s:
        // `halves[0]`/`halves[1]` the main thread's/helper's half batch,
        // `encoded` the encoder's update, `stepped` the decoder's (W2 and
        // b2), `decoded` W2ᵀ of that update. `stop` ends the helper if the
        // main thread unwinds.
        let halves_done = [AtomicUsize::new(0), AtomicUsize::new(0)];
        let encoded = AtomicUsize::new(0);
        let stepped = AtomicUsize::new(0);
        let decoded = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let isa = self.isa;
        let (encoder, decoder) = (&self.encoder, &self.decoder);
        let (workers, half_grads) = (&self.workers, &self.half_grads);
        let (adam_encoder, adam_decoder) = (&mut self.adam_encoder, &mut self.adam_decoder);
        let steps = order.chunks(batch_size).count();
        let counters = (&halves_done, &encoded, &stepped, &decoded, &stop);
        let (halves_done, encoded, stepped, decoded, stop) = counters;
        std::thread::scope(|scope| {
            let _stop_on_exit = StopOnDrop(stop);
            scope.spawn(move || {
                for (step, indices) in order.chunks(batch_size).enumerate() {
                    let mut worker = workers[1].write().expect("not poisoned");
                    let (_, second) = halves(indices);
                    // The gather reads no weight: it overlaps the main
                    // thread's encoder update.
                    worker.gather(images, second);
                    if let Some(next) = order.chunks(batch_size).nth(step + 1) {
                        prefetch_images(images, halves(next).1);
                    }
                    // The encoder as the main thread left it after the last
                    // step (which has read this half's last gradients).
                    if !spin_until(encoded, step, stop) {
                        return;
                    }
                    worker.encode_batch(&read(encoder));
                    // W2ᵀ of the last step's decoder.
                    if !spin_until(decoded, step, stop) {
                        return;
                    }
                    {
                        let mut half = half_grads[1].write().expect("not poisoned");
                        half.loss_sum = worker.gradients(&read(decoder), &mut half.grads);
                    }
                    halves_done[1].store(step + 1, Ordering::Release);
                    if !spin_until(&halves_done[0], step + 1, stop) {
                        return;
                    }
                    {
                        let (h0, h1) = (read(&half_grads[0]), read(&half_grads[1]));
                        let mut dec = decoder.write().expect("not poisoned");
                        let halves = [&h0.grads, &h1.grads];
                        let scale = loss_scale(indices.len());
                        step_decoder(isa, adam_decoder, &mut dec, halves, scale);
                    }
                    stepped.store(step + 1, Ordering::Release);
                }
            });

            // W2ᵀ once the helper has stepped the decoder `step` times.
            let transpose_decoder = |step: usize, waited: &mut Duration| {
                let wait = Instant::now();
                spin_until(stepped, step, stop);
                *waited += wait.elapsed();
                decoder.write().expect("not poisoned").refresh();
                decoded.store(step, Ordering::Release);
            };
            let mut loss_sum = 0.0;
            for (step, indices) in order.chunks(batch_size).enumerate() {
                let own = {
                    let mut worker = workers[0].write().expect("not poisoned");
                    let (first, _) = halves(indices);
                    // The gather overlaps the helper's decoder update; the
                    // encoder is this thread's own.
                    worker.gather(images, first);
                    if let Some(next) = order.chunks(batch_size).nth(step + 1) {
                        prefetch_images(images, halves(next).0);
                    }
                    if step > 0 {
                        transpose_decoder(step, &mut waited);
                    }
                    worker.encode_batch(&read(encoder));
                    let mut half = half_grads[0].write().expect("not poisoned");
                    worker.gradients(&read(decoder), &mut half.grads)
                };
                halves_done[0].store(step + 1, Ordering::Release);
                let wait = Instant::now();
                spin_until(&halves_done[1], step + 1, stop);
                waited += wait.elapsed();
                {
                    let (h0, h1) = (read(&half_grads[0]), read(&half_grads[1]));
                    loss_sum += (own + h1.loss_sum) / (indices.len() * INPUT) as f64;
                    let mut enc = encoder.write().expect("not poisoned");
                    let halves = [&h0.grads, &h1.grads];
                    let scale = loss_scale(indices.len());
                    update_encoder(isa, adam_encoder, &mut enc, halves, scale);
                }
                encoded.store(step + 1, Ordering::Release);
            }
            // The helper's last decoder update, before anyone reads the weights.
            if steps > 0 {
                transpose_decoder(steps, &mut waited);
            }
            let share = waited.as_secs_f64() / clock.elapsed().as_secs_f64().max(f64::EPSILON);
            (loss_sum / steps.max(1) as f64, waited, share)
        })
    }

    /// The validation error on two threads: the helper takes the second half.
    fn squared_errors_two_threads(&mut self, images: PixelsRef<'_>) -> f64 {
        let (first, second) = images.split_at_image(images.images().div_ceil(2));
        let encoder = &*self.encoder.get_mut().expect("not poisoned");
        let decoder = &*self.decoder.get_mut().expect("not poisoned");
        let [w0, w1] = &mut self.workers;
        let (w0, w1) = (
            w0.get_mut().expect("not poisoned"),
            w1.get_mut().expect("not poisoned"),
        );
        std::thread::scope(|scope| {
            let helper = scope.spawn(|| w1.squared_errors(encoder, decoder, second));
            let own = w0.squared_errors(encoder, decoder, first);
            own + helper.join().expect("the validation helper does not panic")
        })
    }
}

/// A read guard, for locks no thread panics holding.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().expect("no thread panics holding a lock")
}

/// Adam on the encoder with the batch gradient `(g0 + g1) · scale` (the
/// halves leave out the loss's constant factor, [`loss_scale`]).
fn update_encoder(
    isa: Isa,
    adam: &mut AdamState<2>,
    encoder: &mut Encoder,
    [g0, g1]: [&Params; 2],
    scale: f32,
) {
    adam.update(
        isa,
        [&mut encoder.weight_t, &mut encoder.bias],
        [&g0.encoder_weight, &g0.encoder_bias],
        [&g1.encoder_weight, &g1.encoder_bias],
        scale,
    );
}

/// Adam on the decoder with the batch gradient `(g0 + g1) · scale`, then
/// W2ᵀ again.
fn update_decoder(
    isa: Isa,
    adam: &mut AdamState<2>,
    decoder: &mut Decoder,
    halves: [&Params; 2],
    scale: f32,
) {
    step_decoder(isa, adam, decoder, halves, scale);
    decoder.refresh();
}

/// Adam on W2 and b2 with the batch gradient `(g0 + g1) · scale`, leaving
/// W2ᵀ stale ([`Decoder::refresh`] brings it up to date).
fn step_decoder(
    isa: Isa,
    adam: &mut AdamState<2>,
    decoder: &mut Decoder,
    [g0, g1]: [&Params; 2],
    scale: f32,
) {
    adam.update(
        isa,
        [&mut decoder.weight, &mut decoder.bias],
        [&g0.decoder_weight, &g0.decoder_bias],
        [&g1.decoder_weight, &g1.decoder_bias],
        scale,
    );
}

impl TrainEngine for FusedEngine {
    fn train_epoch(&mut self, images: PixelsRef<'_>, order: &[usize], batch_size: usize) -> f64 {
        if self.threads == 2 {
            let (loss, waited, share) = self.epoch_two_threads(images, order, batch_size);
            tracing::debug!(
                "the main thread waited for the helper {:.0} % of the epoch",
                100.0 * share
            );
            // Balanced halves keep the main thread waiting a small share of
            // the epoch. Waiting most of it, epoch after epoch, means the
            // helper is starved of its core (other processes are busy),
            // where spinning only makes things worse: carry on with one
            // thread. The results are the same.
            if self.starvation.starved_after(share, waited) {
                tracing::info!(
                    "training waited for its helper thread {:.0} % of the last {} epochs (the cores are busy): continuing on one thread",
                    100.0 * share,
                    self.starvation.epochs
                );
                self.threads = 1;
            }
            return loss;
        }
        let mut loss_sum = 0.0;
        let mut batches = 0usize;
        for indices in order.chunks(batch_size) {
            loss_sum += self.step_single(images, indices);
            batches += 1;
        }
        loss_sum / batches as f64
    }

    fn squared_error_sum(&mut self, images: PixelsRef<'_>) -> f64 {
        if self.threads == 2 {
            return self.squared_errors_two_threads(images);
        }
        let encoder = self.encoder.get_mut().expect("not poisoned");
        let decoder = self.decoder.get_mut().expect("not poisoned");
        let worker = self.workers[0].get_mut().expect("not poisoned");
        worker.squared_errors(encoder, decoder, images)
    }

    fn params(&self) -> Params {
        weights::to_params(&read(&self.encoder), &read(&self.decoder))
    }
}

/// A batch's indices split into the two halves (the first takes the odd one).
fn halves(indices: &[usize]) -> (&[usize], &[usize]) {
    indices.split_at(indices.len().div_ceil(2))
}

/// d(mean squared error)/d(output) = scale · (y - x) for a batch of `rows`.
fn loss_scale(rows: usize) -> f32 {
    2.0 / (rows * INPUT) as f32
}

/// `into += other`, tensor by tensor.
fn add_into(into: &mut Params, other: &Params) {
    let pairs = [
        (&mut into.encoder_weight, &other.encoder_weight),
        (&mut into.encoder_bias, &other.encoder_bias),
        (&mut into.decoder_weight, &other.decoder_weight),
        (&mut into.decoder_bias, &other.decoder_bias),
    ];
    for (a, b) in pairs {
        for (a, b) in a.iter_mut().zip(b) {
            *a += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lasting_starvation_gives_up_the_helper() {
        let ms = Duration::from_millis;
        // Short epochs that wait most of their time for a moment: not enough wait.
        let mut starvation = Starvation::default();
        for _ in 0..6 {
            assert!(!starvation.starved_after(0.8, ms(5)));
        }
        // A balanced epoch ends the run.
        assert!(!starvation.starved_after(0.02, ms(1)));
        assert_eq!(starvation.epochs, 0);
        // Long starved epochs: the third in a row gives up.
        assert!(!starvation.starved_after(0.7, ms(60)));
        assert!(!starvation.starved_after(0.7, ms(60)));
        assert!(starvation.starved_after(0.7, ms(60)));
        // Two long ones, a balanced one, two long ones: never three in a row.
        let mut starvation = Starvation::default();
        for share in [0.9, 0.9, 0.1, 0.9, 0.9] {
            assert!(!starvation.starved_after(share, ms(200)));
        }
    }
}
