//! The fused engine: the training step of this one topology written out by
//! hand, five GEMMs and three fused element-wise passes over preallocated
//! buffers. It computes what dfdx's autodiff computes (the tests hold the
//! gradients and the weights after several steps to it) several times
//! faster, since it skips dfdx's per-op tensors and tape.
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
//! them. With two cores a helper thread takes the second half; the two hand
//! off through spin-waited atomic counters, since waking a sleeping thread
//! costs more than a half-step of these small GEMMs.
//!
//! The parts: [`gemm`] (the one `unsafe` call into matrixmultiply, behind
//! checked views), [`worker`] (a half batch's passes), [`kernels`] (the
//! fused element-wise passes, compiled per [`simd`] path, over [`math`]),
//! [`adam`] (the optimiser), [`handoff`] (the two threads' spin-waits).

mod adam;
mod gemm;
mod handoff;
mod kernels;
mod math;
pub(crate) mod simd;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use ae_model::{INPUT, Params};

use crate::engine::{AdamSettings, TrainEngine};
use adam::AdamState;
use handoff::{StopOnDrop, spin_until};
use simd::Isa;
use worker::Worker;

/// The share of a two-thread epoch the main thread may spend waiting for the
/// helper before the engine concludes the helper is starved. Measured on the
/// 2-core development machine: 1–11 % idle; 71 % with two busy processes
/// beside it, where one thread then ran 3× faster than two had.
const STARVED_WAIT_SHARE: f64 = 0.5;

/// The fused training step; see the module docs.
pub struct FusedEngine {
    /// The element-wise passes' instruction set, detected once.
    isa: Isa,
    params: RwLock<Params>,
    /// One per half batch; the helper thread uses the second.
    workers: [Mutex<Worker>; 2],
    adam_state: AdamState,
    threads: usize,
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
        let worker = || Mutex::new(Worker::new(isa, params.latent()));
        Self {
            isa,
            params: RwLock::new(params.clone()),
            workers: [worker(), worker()],
            adam_state: AdamState::new(adam, params.latent()),
            threads: threads.clamp(1, 2),
        }
    }

    /// The element-wise passes' path on this CPU: `avx512`, `avx2+fma` or
    /// `baseline`.
    pub fn kernel_path(&self) -> &'static str {
        self.isa.name()
    }

    /// The gradients of the mean squared error over the images at `indices`
    /// at the current weights (no step taken).
    pub fn gradients(&mut self, images: &[f32], indices: &[usize]) -> Params {
        self.batch_gradients(images, indices);
        self.workers[0]
            .get_mut()
            .expect("not poisoned")
            .grads
            .clone()
    }

    /// One step on one thread: both halves, then Adam. Returns the batch loss.
    fn step_single(&mut self, images: &[f32], indices: &[usize]) -> f64 {
        let loss = self.batch_gradients(images, indices);
        let params = self.params.get_mut().expect("not poisoned");
        let grads = &self.workers[0].get_mut().expect("not poisoned").grads;
        self.adam_state.update(params, grads);
        loss
    }

    /// On this thread: both halves' gradients, summed into the first
    /// worker's (the same order as on two threads). Returns the batch loss.
    fn batch_gradients(&mut self, images: &[f32], indices: &[usize]) -> f64 {
        let (first, second) = halves(indices);
        let scale = loss_scale(indices.len());
        let params = self
            .params
            .get_mut()
            .expect("no thread panicked holding the weights");
        let [w0, w1] = &mut self.workers;
        let (w0, w1) = (
            w0.get_mut().expect("not poisoned"),
            w1.get_mut().expect("not poisoned"),
        );
        let sum = w0.half_gradients(params, images, first, scale)
            + w1.half_gradients(params, images, second, scale);
        add_into(&mut w0.grads, &w1.grads);
        sum / (indices.len() * INPUT) as f64
    }

    /// An epoch with a helper thread computing every batch's second half.
    /// Returns the mean batch loss and the share of the epoch the main
    /// thread spent waiting for the helper.
    fn epoch_two_threads(
        &mut self,
        images: &[f32],
        order: &[usize],
        batch_size: usize,
    ) -> (f64, f64) {
        let clock = Instant::now();
        let mut waited = Duration::ZERO;
        // `go` = s + 1 releases the helper into step s; `done` = s + 1 says
        // its half of step s is ready; `stop` ends it if the main thread unwinds.
        let go = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let (params, workers, adam_state) = (&self.params, &self.workers, &mut self.adam_state);
        std::thread::scope(|scope| {
            let _stop_on_exit = StopOnDrop(&stop);
            scope.spawn(|| {
                for (step, indices) in order.chunks(batch_size).enumerate() {
                    if !spin_until(&go, step + 1, &stop) {
                        return;
                    }
                    {
                        let params = params.read().expect("not poisoned");
                        let mut worker = workers[1].lock().expect("not poisoned");
                        let (_, second) = halves(indices);
                        worker.loss_sum = worker.half_gradients(
                            &params,
                            images,
                            second,
                            loss_scale(indices.len()),
                        );
                    }
                    done.store(step + 1, Ordering::Release);
                }
            });

            let mut loss_sum = 0.0;
            let mut batches = 0usize;
            for (step, indices) in order.chunks(batch_size).enumerate() {
                go.store(step + 1, Ordering::Release);
                let mut worker = workers[0].lock().expect("not poisoned");
                let (first, _) = halves(indices);
                let own = {
                    let params = params.read().expect("not poisoned");
                    worker.half_gradients(&params, images, first, loss_scale(indices.len()))
                };
                let wait = Instant::now();
                spin_until(&done, step + 1, &stop);
                waited += wait.elapsed();
                // The helper's half is added to ours: the same order as on one thread.
                let helper = workers[1].lock().expect("not poisoned");
                add_into(&mut worker.grads, &helper.grads);
                loss_sum += (own + helper.loss_sum) / (indices.len() * INPUT) as f64;
                drop(helper);
                adam_state.update(&mut params.write().expect("not poisoned"), &worker.grads);
                batches += 1;
            }
            let share = waited.as_secs_f64() / clock.elapsed().as_secs_f64().max(f64::EPSILON);
            (loss_sum / batches as f64, share)
        })
    }

    /// The validation error on two threads: the helper takes the second half.
    fn squared_errors_two_threads(&mut self, images: &[f32]) -> f64 {
        let rows = images.len() / INPUT;
        let (first, second) = images.split_at(rows.div_ceil(2) * INPUT);
        let params = self.params.get_mut().expect("not poisoned");
        let [w0, w1] = &mut self.workers;
        let (w0, w1) = (
            w0.get_mut().expect("not poisoned"),
            w1.get_mut().expect("not poisoned"),
        );
        let params = &*params;
        std::thread::scope(|scope| {
            let helper = scope.spawn(|| w1.squared_errors(params, second));
            let own = w0.squared_errors(params, first);
            own + helper.join().expect("the validation helper does not panic")
        })
    }
}

impl TrainEngine for FusedEngine {
    fn train_epoch(&mut self, images: &[f32], order: &[usize], batch_size: usize) -> f64 {
        if self.threads == 2 {
            let (loss, waiting) = self.epoch_two_threads(images, order, batch_size);
            tracing::debug!(
                "the main thread waited for the helper {:.0} % of the epoch",
                100.0 * waiting
            );
            // Balanced halves keep the main thread waiting a small share of
            // the epoch. Waiting most of it means the helper is starved of
            // its core (other processes are busy), where spinning only makes
            // things worse: carry on with one thread. The results are the same.
            if waiting > STARVED_WAIT_SHARE {
                tracing::info!(
                    "training waited for its helper thread {:.0} % of the epoch (the cores are busy): continuing on one thread",
                    100.0 * waiting
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

    fn squared_error_sum(&mut self, images: &[f32]) -> f64 {
        if self.threads == 2 {
            return self.squared_errors_two_threads(images);
        }
        let params = self.params.get_mut().expect("not poisoned");
        let worker = self.workers[0].get_mut().expect("not poisoned");
        worker.squared_errors(params, images)
    }

    fn params(&self) -> Params {
        self.params.read().expect("not poisoned").clone()
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
