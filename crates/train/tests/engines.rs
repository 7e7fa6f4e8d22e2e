//! The fused engine against dfdx's autodiff, finite differences and a
//! hand-computed Adam step; the epoch loop's divergence check.

use ae_model::{INPUT, Params};
use ae_store::PixelsRef;
use ae_train::{
    AdamSettings, DfdxEngine, EarlyStopping, FusedEngine, TrainConfig, TrainEngine, ValidateOn,
};

const KERAS_ADAM: AdamSettings = AdamSettings {
    learning_rate: 1e-3,
    beta1: 0.9,
    beta2: 0.999,
    epsilon: 1e-7,
};

/// `n` synthetic images with every pixel in (0, 1), so no gradient is exactly zero.
fn images(n: usize, salt: usize) -> Vec<f32> {
    (0..n * INPUT)
        .map(|i| (((i * 7919 + salt * 104_729) % 997) as f32 + 1.0) / 999.0)
        .collect()
}

/// Glorot weights plus non-zero biases (some hidden units dead, most alive).
fn params(latent: usize, seed: u64) -> Params {
    let mut p = Params::glorot(latent, seed).expect("init");
    for (j, b) in p.encoder_bias.iter_mut().enumerate() {
        *b = 0.05 * ((j % 5) as f32 - 1.0);
    }
    for (i, b) in p.decoder_bias.iter_mut().enumerate() {
        *b = 0.1 * ((i % 7) as f32 - 3.0);
    }
    p
}

/// The loss computed naively in f64 (indexed loops read like the maths).
#[allow(clippy::needless_range_loop)]
fn loss_f64(p: &Params, images: &[f32]) -> f64 {
    let l = p.latent();
    let mut sum = 0.0;
    for x in images.chunks_exact(INPUT) {
        let h: Vec<f64> = (0..l)
            .map(|j| {
                let z = p.encoder_bias[j] as f64
                    + (0..INPUT)
                        .map(|i| p.encoder_weight[j * INPUT + i] as f64 * x[i] as f64)
                        .sum::<f64>();
                z.max(0.0)
            })
            .collect();
        for i in 0..INPUT {
            let z = p.decoder_bias[i] as f64
                + (0..l)
                    .map(|j| p.decoder_weight[i * l + j] as f64 * h[j])
                    .sum::<f64>();
            let y = 1.0 / (1.0 + (-z).exp());
            sum += (y - x[i] as f64).powi(2);
        }
    }
    sum / images.len() as f64
}

fn tensors(p: &Params) -> [(&'static str, &Vec<f32>); 4] {
    [
        ("encoder.weight", &p.encoder_weight),
        ("encoder.bias", &p.encoder_bias),
        ("decoder.weight", &p.decoder_weight),
        ("decoder.bias", &p.decoder_bias),
    ]
}

fn max_abs(values: &[f32]) -> f32 {
    values.iter().fold(0.0, |m, v| m.max(v.abs()))
}

#[test]
fn fused_gradients_match_central_finite_differences() {
    let p = params(8, 1);
    let x = images(3, 0);
    let indices: Vec<usize> = (0..3).collect();
    let grads = FusedEngine::with_threads(&p, KERAS_ADAM, 1).gradients((&x).into(), &indices);
    let h = 1e-3f32;
    let mut checked = 0;
    for (name, tensor) in tensors(&grads) {
        let len = tensor.len();
        for &k in &[0, 1, len / 3, len / 2, len - 1] {
            let mut plus = p.clone();
            let mut minus = p.clone();
            set(&mut plus, name, k, h);
            set(&mut minus, name, k, -h);
            let numeric = (loss_f64(&plus, &x) - loss_f64(&minus, &x)) / (2.0 * h as f64);
            let analytic = tensor[k] as f64;
            let tolerance = 1e-6 + 1e-3 * numeric.abs();
            assert!(
                (numeric - analytic).abs() < tolerance,
                "{name}[{k}]: finite difference {numeric:e}, fused {analytic:e}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 20);
}

fn set(p: &mut Params, name: &str, k: usize, delta: f32) {
    let place = match name {
        "encoder.weight" => &mut p.encoder_weight[k],
        "encoder.bias" => &mut p.encoder_bias[k],
        "decoder.weight" => &mut p.decoder_weight[k],
        _ => &mut p.decoder_bias[k],
    };
    *place += delta;
}

#[test]
fn fused_gradients_equal_dfdx_autodiff() {
    for (latent, rows) in [(8, 5), (32, 64), (16, 1), (64, 9), (128, 3)] {
        let p = params(latent, latent as u64);
        let x = images(rows, latent);
        let indices: Vec<usize> = (0..rows).collect();
        let fused = FusedEngine::with_threads(&p, KERAS_ADAM, 2).gradients((&x).into(), &indices);
        let reference = ae_model::with_latent!(latent, |L| DfdxEngine::<L>::new(&p, KERAS_ADAM)
            .expect("engine")
            .gradients(&x))
        .expect("compiled latent");
        for ((name, a), (_, b)) in tensors(&fused).into_iter().zip(tensors(&reference)) {
            let scale = max_abs(b);
            let worst = a
                .iter()
                .zip(b.iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                worst <= 1e-4 * scale + 1e-9,
                "latent {latent}, {name}: max difference {worst:e} (scale {scale:e})"
            );
        }
    }
}

#[test]
fn one_adam_step_matches_a_hand_computed_update() {
    let p = params(8, 2);
    let x = images(4, 1);
    let order: Vec<usize> = (0..4).collect();
    let mut engine = FusedEngine::with_threads(&p, KERAS_ADAM, 1);
    let g = engine.gradients((&x).into(), &order);
    engine.train_epoch((&x).into(), &order, 4);
    let after = engine.params();
    // Keras at t = 1: m = (1 - β1) g, v = (1 - β2) g², p -= lr √(1 - β2) / (1 - β1) · m / (√v + ε).
    let (lr, b1, b2, eps) = (1e-3f64, 0.9f64, 0.999f64, 1e-7f64);
    for ((name, before), ((_, grad), (_, new))) in tensors(&p)
        .into_iter()
        .zip(tensors(&g).into_iter().zip(tensors(&after)))
    {
        for k in 0..before.len() {
            let g = grad[k] as f64;
            let m = (1.0 - b1) * g;
            let v = (1.0 - b2) * g * g;
            let expected =
                before[k] as f64 - lr * (1.0 - b2).sqrt() / (1.0 - b1) * m / (v.sqrt() + eps);
            assert!(
                (new[k] as f64 - expected).abs() < 2e-8 + 1e-6 * expected.abs(),
                "{name}[{k}]: {} after the step, expected {expected}",
                new[k]
            );
        }
    }
}

#[test]
fn weights_after_several_steps_equal_dfdx() {
    let latent = 16;
    let p = params(latent, 3);
    let x = images(96, 2);
    let order: Vec<usize> = (0..96).rev().collect();
    let mut fused = FusedEngine::with_threads(&p, KERAS_ADAM, 2);
    let fused_loss = fused.train_epoch((&x).into(), &order, 32); // 3 steps
    fused.train_epoch((&x).into(), &order, 32); // 3 more
    let mut dfdx = DfdxEngine::<16>::new(&p, KERAS_ADAM).expect("engine");
    let dfdx_loss = dfdx.train_epoch((&x).into(), &order, 32);
    dfdx.train_epoch((&x).into(), &order, 32);
    // dfdx sums the 32 × 784 squared errors in f32 (relative error up to
    // about 1e-5); the fused engine sums them in f64.
    assert!(
        (fused_loss - dfdx_loss).abs() < 1e-5 * dfdx_loss,
        "{fused_loss} vs {dfdx_loss}"
    );
    let (a, b) = (fused.params(), dfdx.params());
    for ((name, a), (_, b)) in tensors(&a).into_iter().zip(tensors(&b)) {
        let worst = a
            .iter()
            .zip(b.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        // Each step moves a weight by at most about lr = 1e-3.
        assert!(
            worst < 2e-5,
            "{name}: weights differ by up to {worst:e} after 6 steps"
        );
    }
    let val = |e: &mut dyn TrainEngine| e.squared_error_sum((&x).into());
    assert!((val(&mut fused) - val(&mut dfdx)).abs() < 1e-5 * val(&mut dfdx));
}

#[test]
fn one_and_two_threads_give_identical_weights() {
    let p = params(32, 4);
    let x = images(300, 3);
    let order: Vec<usize> = (0..300).map(|i| (i * 37) % 300).collect();
    let mut one = FusedEngine::with_threads(&p, KERAS_ADAM, 1);
    let mut two = FusedEngine::with_threads(&p, KERAS_ADAM, 2);
    for _ in 0..2 {
        assert_eq!(
            one.train_epoch((&x).into(), &order, 64).to_bits(),
            two.train_epoch((&x).into(), &order, 64).to_bits()
        );
    }
    assert_eq!(one.params(), two.params());
    assert_eq!(
        one.squared_error_sum((&x).into()).to_bits(),
        two.squared_error_sum((&x).into()).to_bits()
    );
}

/// An engine whose loss explodes at its second epoch.
struct Exploding(u32);

impl TrainEngine for Exploding {
    fn train_epoch(&mut self, _: PixelsRef<'_>, _: &[usize], _: usize) -> f64 {
        self.0 += 1;
        if self.0 >= 2 { f64::NAN } else { 0.5 }
    }
    fn squared_error_sum(&mut self, _: PixelsRef<'_>) -> f64 {
        1.0
    }
    fn params(&self) -> Params {
        Params::zeros(8).expect("zeros")
    }
}

#[test]
fn a_loss_that_becomes_nan_stops_training_naming_the_epoch() {
    let split = images(4, 0);
    let cfg = TrainConfig {
        epochs: 5,
        batch_size: 2,
        ..TrainConfig::default()
    };
    let err = ae_train::fit(&mut Exploding(0), &cfg, 0, (&split).into(), (&split).into())
        .expect_err("diverges");
    let message = err.to_string();
    assert!(
        message.starts_with("training diverged at epoch 2: loss NaN"),
        "{message}"
    );
    assert!(message.contains("lower train.learning_rate"), "{message}");
}

/// An engine whose validation loss follows a script and whose weights say
/// which epoch made them.
struct Scripted {
    epoch: u64,
    curve: Vec<f64>,
}

impl TrainEngine for Scripted {
    fn train_epoch(&mut self, _: PixelsRef<'_>, _: &[usize], _: usize) -> f64 {
        self.epoch += 1;
        0.5
    }
    fn squared_error_sum(&mut self, images: PixelsRef<'_>) -> f64 {
        self.curve[self.epoch as usize - 1] * images.len() as f64
    }
    fn params(&self) -> Params {
        Params::glorot(8, self.epoch).expect("init")
    }
}

#[test]
fn early_stopping_stops_on_a_plateau_and_keeps_the_best_weights() {
    let split = images(4, 0);
    let curve = vec![0.9, 0.5, 0.3, 0.31, 0.299, 0.35, 0.2, 0.1, 0.05, 0.01];
    let cfg = TrainConfig {
        epochs: 10,
        batch_size: 2,
        validate_on: ValidateOn::Validation,
        early_stopping: Some(EarlyStopping {
            patience: 3,
            min_delta: 0.005,
        }),
        ..TrainConfig::default()
    };
    let mut engine = Scripted {
        epoch: 0,
        curve: curve.clone(),
    };
    let fit = ae_train::fit(&mut engine, &cfg, 0, (&split).into(), (&split).into()).expect("fit");
    // 0.299 is not 0.005 below 0.3, so epoch 3 stays the best; three epochs
    // without improvement (4, 5, 6) stop it after epoch 6.
    assert_eq!(fit.history.epochs.len(), 6);
    assert_eq!((fit.summary.kept_epoch, fit.summary.epochs_run), (3, 6));
    assert!(fit.summary.stopped_early);
    assert!(
        fit.summary.reason.contains("kept epoch 3"),
        "{}",
        fit.summary.reason
    );
    assert_eq!(
        fit.params,
        Params::glorot(8, 3).expect("init"),
        "epoch 3's weights"
    );
    // Without early stopping every epoch runs and the last weights are kept.
    let cfg = TrainConfig {
        early_stopping: None,
        ..cfg
    };
    let mut engine = Scripted { epoch: 0, curve };
    let fit = ae_train::fit(&mut engine, &cfg, 0, (&split).into(), (&split).into()).expect("fit");
    assert_eq!((fit.summary.kept_epoch, fit.history.epochs.len()), (10, 10));
    assert_eq!(fit.params, Params::glorot(8, 10).expect("init"));
}

#[test]
fn training_on_bytes_gives_the_bits_of_training_on_their_floats() {
    let floats: Vec<f32> = (0..96 * INPUT)
        .map(|i| ae_store::byte_value(((i * 7919) % 256) as u8))
        .collect();
    let bytes = ae_store::Pixels::from_floats(&floats);
    assert!(matches!(bytes, ae_store::Pixels::Bytes(_)));
    let p = params(16, 5);
    let order: Vec<usize> = (0..96).map(|i| (i * 29) % 96).collect();
    for threads in [1, 2] {
        let mut on_floats = FusedEngine::with_threads(&p, KERAS_ADAM, threads);
        let mut on_bytes = FusedEngine::with_threads(&p, KERAS_ADAM, threads);
        for _ in 0..2 {
            assert_eq!(
                on_floats
                    .train_epoch((&floats).into(), &order, 32)
                    .to_bits(),
                on_bytes.train_epoch(bytes.view(), &order, 32).to_bits()
            );
        }
        assert_eq!(on_floats.params(), on_bytes.params());
        assert_eq!(
            on_floats.squared_error_sum((&floats).into()).to_bits(),
            on_bytes.squared_error_sum(bytes.view()).to_bits()
        );
    }
}
