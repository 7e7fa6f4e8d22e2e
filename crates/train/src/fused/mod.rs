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

mod gemm;
mod math;
pub(crate) mod simd;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use ae_model::{INPUT, Params};

use crate::batches::gather;
use crate::engine::{AdamSettings, TrainEngine};
use gemm::{View, ViewMut, gemm};
use math::sigmoid;
use simd::{Isa, dispatch};

/// Rows per forward pass when computing the validation loss.
const EVAL_ROWS: usize = 1000;

/// The share of a two-thread epoch the main thread may spend waiting for the
/// helper before the engine concludes the helper is starved. Measured on the
/// 2-core development machine: 1–11 % idle; 71 % with two busy processes
/// beside it, where one thread then ran 3× faster than two had.
const STARVED_WAIT_SHARE: f64 = 0.5;

/// Elements processed side by side in the element-wise passes; 784 = 49 × 16.
const LANES: usize = 16;
const _: () = assert!(INPUT.is_multiple_of(LANES));

/// The fused training step; see the module docs.
pub struct FusedEngine {
    params: RwLock<Params>,
    /// One per half batch; the helper thread uses the second.
    workers: [Mutex<Worker>; 2],
    adam_state: AdamState,
    threads: usize,
}

/// Adam's moments and step count.
struct AdamState {
    settings: AdamSettings,
    moment1: Params,
    moment2: Params,
    t: u64,
}

/// The buffers for computing one half batch's gradients.
struct Worker {
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
    grads: Params,
    /// This half's sum of squared errors at its last step.
    loss_sum: f64,
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
        let zeros =
            || Params::zeros(params.latent()).expect("a valid model has a compiled latent size");
        let worker = || Mutex::new(Worker::new(isa, params.latent()));
        Self {
            params: RwLock::new(params.clone()),
            workers: [worker(), worker()],
            adam_state: AdamState {
                settings: adam,
                moment1: zeros(),
                moment2: zeros(),
                t: 0,
            },
            threads: threads.clamp(1, 2),
        }
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

impl AdamState {
    /// One Adam step with `grads`, as Keras computes it:
    /// `m += (g - m)(1 - β1)`, `v += (g² - v)(1 - β2)`, `p -= α_t m / (√v + ε)`.
    fn update(&mut self, params: &mut Params, grads: &Params) {
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

impl Worker {
    fn new(isa: Isa, latent: usize) -> Self {
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
    fn half_gradients(
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
    fn squared_errors(&mut self, params: &Params, images: &[f32]) -> f64 {
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

/// Busy-waits until `counter` reaches `target`; false if `stop` was raised
/// first. After a long burst (milliseconds) it yields between checks, so on a busy
/// machine (other processes on the cores) the waiting thread gives its core
/// to the one it waits for instead of starving it.
fn spin_until(counter: &AtomicUsize, target: usize, stop: &AtomicBool) -> bool {
    const SPINS_BEFORE_YIELDING: u32 = 1_000_000;
    let mut spins = 0u32;
    loop {
        if counter.load(Ordering::Acquire) >= target {
            return true;
        }
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        if spins < SPINS_BEFORE_YIELDING {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// Raises the flag when dropped, so a helper never spins after the main
/// thread has left the epoch (normally or by unwinding).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

dispatch! {
    /// For each row: y = sigmoid(z + b2), the squared error against the
    /// image, and G2 = scale · (y - x) · y · (1 - y) written over z; G2 summed
    /// over rows into `grad_bias`. Returns the sum of squared errors.
    pub fn output_pass(
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
    pub fn squared_errors(output: &[f32], images: &[f32], bias: &[f32]) -> f64 {
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
