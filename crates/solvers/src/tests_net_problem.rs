//! Tests of `NetProblem` (its own file to keep `net_problem.rs` short).

use super::*;
use crate::first_order::AdamConfig;
use crate::{Batching, Budget, Driver, MemoryStore, Status};
use autodiff::Reduction;
use nets::{Activation, Init, LossKind};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Three Gaussian blobs in 4-D, 30 samples; a 4-8-3 tanh MLP.
fn problem(seed: u64) -> NetProblem<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = 30;
    let mut x = DMatrix::zeros(4, n);
    let mut labels = Vec::new();
    for j in 0..n {
        let c = j % 3;
        for i in 0..4 {
            x[(i, j)] = crate::testing::normal(&mut rng) * 0.5 + if i == c { 2.0 } else { 0.0 };
        }
        labels.push(c);
    }
    let data = Dataset::new(x, Targets::Labels { labels, classes: 3 }).unwrap();
    let net = Sequential::mlp(&[4, 8, 3], Activation::Tanh, Init::GlorotUniform, &mut rng).unwrap();
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean).with_l2(1e-3);
    NetProblem::new(net, loss, data.clone(), Some(data)).unwrap()
}

#[test]
fn minibatch_gradient_matches_the_extracted_columns() {
    let mut p = problem(1);
    let d = p.dim();
    let (mut g_full, mut g_all) = (vec![0.0; d], vec![0.0; d]);
    let f_full = p.value_grad(None, &mut g_full).unwrap();
    let all: Vec<usize> = (0..30).collect();
    let f_all = p.value_grad(Some(&all), &mut g_all).unwrap();
    assert_eq!((f_full, &g_full), (f_all, &g_all));
    // A subset, against loss_and_grad on hand-extracted columns.
    let batch = [7usize, 2, 29, 11];
    let mut g = vec![0.0; d];
    let f = p.value_grad(Some(&batch), &mut g).unwrap();
    let x = DMatrix::from_fn(4, 4, |i, j| p.train.inputs()[(i, batch[j])]);
    let Targets::Labels { labels, .. } = p.train.targets() else {
        unreachable!()
    };
    let t = Targets::Labels {
        labels: batch.iter().map(|&i| labels[i]).collect(),
        classes: 3,
    };
    let mut g_ref = vec![0.0; d];
    let mut tape = Tape::new();
    let f_ref = nets::loss_and_grad(&p.net, &p.loss, &x, &t, &mut tape, &mut g_ref).unwrap();
    assert_eq!((f, g), (f_ref, g_ref));
    // The evaluation's objective is the full-batch value.
    assert!((p.evaluate().objective - f_full).abs() < 1e-12);
}

/// A full-batch pass asked to keep the layers' outputs keeps them (the first is
/// `W₁x + b₁`), with the gradient of the default (fused) pass; a mini-batch pass
/// forgets them.
#[test]
fn full_batch_pass_keeps_layer_outputs() {
    let mut p = problem(2);
    let mut g = vec![0.0; p.dim()];
    assert!(p.full_batch_layer_output(0).is_none());
    p.value_grad(None, &mut g).unwrap();
    assert!(
        p.full_batch_layer_output(0).is_none(),
        "not kept by default"
    );
    let g_fused = g.clone();
    p.keep_layer_outputs(true);
    p.value_grad(None, &mut g).unwrap();
    assert_eq!(g, g_fused);
    let z1 = p.full_batch_layer_output(0).unwrap().clone();
    let d = p.net.layers()[0].as_dense().unwrap();
    let want = &d.weight * p.train.inputs() + DMatrix::from_fn(8, 30, |i, _| d.bias[i]);
    assert!(
        (&z1 - &want).abs().max() < 1e-13,
        "{}",
        (&z1 - &want).abs().max()
    );
    assert_eq!(p.full_batch_layer_output(2).unwrap().shape(), (3, 30));
    assert!(p.full_batch_layer_output(3).is_none());
    p.value_grad(Some(&[1, 2, 3]), &mut g).unwrap();
    assert!(p.full_batch_layer_output(0).is_none());
    p.value_grad(None, &mut g).unwrap();
    assert!(p.full_batch_layer_output(0).is_some());
    p.keep_layer_outputs(false);
    assert!(p.full_batch_layer_output(0).is_none());
}

#[test]
fn rejects_mismatched_data_and_buffers() {
    let p = problem(1);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let wrong = Sequential::mlp(&[5, 3], Activation::Relu, Init::HeNormal, &mut rng).unwrap();
    let err = NetProblem::new(wrong, p.loss, p.train.clone(), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "shape mismatch in training inputs vs network input: expected 5, got 4"
    );
    let mut p = problem(1);
    assert_eq!(
        p.value_grad(None, &mut [0.0; 3]).unwrap_err().to_string(),
        "shape mismatch in NetProblem gradient buffer: expected 67, got 3"
    );
    assert_eq!(
        p.value_grad(Some(&[30]), &mut vec![0.0; 67])
            .unwrap_err()
            .to_string(),
        "shape mismatch in mini-batch index bound: expected < 30, got 30"
    );
}

/// Layer outputs beyond [`crate::MAX_ACTIVATION_BYTES`] are refused before any of them is
/// allocated: a 10^6-wide hidden layer (2 x 10^6 + 2 entries per sample, the ReLU
/// layer's output and the 2 outputs counted too) takes 1073 f64 training samples, not
/// 1074, and the test set is checked as well.
#[test]
fn layer_outputs_beyond_the_entry_cap_are_an_error() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let wide = 1_000_000;
    let net = Sequential::mlp(&[2, wide, 2], Activation::Relu, Init::HeUniform, &mut rng).unwrap();
    assert_eq!(net.output_entries_per_sample(2), Some(wide * 2 + 2));
    let data = |n: usize| {
        let x = DMatrix::from_fn(2, n, |i, j| ((i + j) % 3) as f64);
        let labels = (0..n).map(|j| j % 2).collect();
        Dataset::new(x, Targets::Labels { labels, classes: 2 }).unwrap()
    };
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    // (2 * 10^6 + 2) * 8 * 1073 <= 16 * 2^30 < (2 * 10^6 + 2) * 8 * 1074.
    assert!(NetProblem::new(net.clone(), loss, data(1073), None).is_ok());
    for (train, test) in [(1074, None), (10, Some(1074))] {
        let err = NetProblem::new(net.clone(), loss, data(train), test.map(data)).unwrap_err();
        let which = if test.is_some() { "test" } else { "training" };
        assert_eq!(
            err.to_string(),
            format!(
                "problem error: NetProblem::new ({which} set): shape mismatch: the layer outputs need 2000002 entries per sample x 1074 samples x 8 bytes, more than MAX_ACTIVATION_BYTES = 17179869184"
            )
        );
    }
}

/// `train` is a public field: replacing it after a mini-batch pass (dense targets
/// with other rows, or another target kind) must not hit the old batch buffer's
/// shape (it panicked in nalgebra's `copy_from`): a typed error when the new data
/// do not fit the network, and the fresh problem's exact gradient when they do.
#[test]
fn replacing_the_training_set_after_a_mini_batch_is_safe() {
    let mut p = problem(5);
    let Targets::Labels { labels, .. } = p.train.targets().clone() else {
        unreachable!()
    };
    let x = p.train.inputs().clone();
    let one_hot = |rows: usize| DMatrix::from_fn(rows, 30, |k, j| f64::from(labels[j] == k));
    let dense = |rows| Dataset::new(x.clone(), Targets::Dense(one_hot(rows))).unwrap();
    p.loss = Loss::new(LossKind::Mse, Reduction::Mean);
    p.train = dense(3);
    let mut g = vec![0.0; p.dim()];
    let batch = [4usize, 17, 4];
    p.value_grad(Some(&batch), &mut g).unwrap();
    p.train = dense(5);
    assert_eq!(
        p.value_grad(Some(&batch), &mut g).unwrap_err().to_string(),
        "problem error: mse: targets do not fit the loss: output has 3 rows but dense targets have 5"
    );
    // Back to labels (one-hot for MSE): the same value and gradient as a new problem.
    p.train = Dataset::new(x.clone(), Targets::Labels { labels, classes: 3 }).unwrap();
    let f = p.value_grad(Some(&batch), &mut g).unwrap();
    let mut fresh = NetProblem::new(p.net.clone(), p.loss, p.train.clone(), None).unwrap();
    let mut g_fresh = vec![0.0; p.dim()];
    let f_fresh = fresh.value_grad(Some(&batch), &mut g_fresh).unwrap();
    assert_eq!((f, g), (f_fresh, g_fresh));
}

#[test]
fn adam_trains_and_resumes_bit_identically_on_a_network() {
    let adam = || {
        AdamConfig {
            lr: 0.02,
            batching: Batching::mini(8),
            ..Default::default()
        }
        .build::<f64>()
        .unwrap()
    };
    let mut p = problem(2);
    let full = Driver::new(Budget::epochs(12.0))
        .seed(9)
        .run(&mut p, &mut adam())
        .unwrap();
    assert_eq!(
        full.status,
        Status::BudgetExhausted(crate::BudgetKind::Epochs)
    );
    let (first, last) = (&full.trace.records[0], full.trace.last().unwrap());
    assert!(
        last.objective < 0.5 * first.objective,
        "{} -> {}",
        first.objective,
        last.objective
    );
    assert!(last.train_accuracy.unwrap() > 0.9);
    // 6 epochs (12 data passes: forward + backward) of 30 samples in batches of 8.
    assert_eq!((last.forward, last.backward), (6 * 4, 6 * 4));
    assert_eq!(last.samples_seen, 2 * 6 * 30);

    let mut store = MemoryStore::default();
    let mut p1 = problem(2);
    Driver::new(Budget::epochs(4.0))
        .seed(9)
        .checkpointing(&mut store, 1)
        .run(&mut p1, &mut adam())
        .unwrap();
    let mut p2 = problem(2);
    p2.set_params(&vec![0.5; 67]).unwrap(); // other weights: overwritten on resume
    let resumed = Driver::new(Budget::epochs(12.0))
        .checkpointing(&mut store, 1)
        .resume(true)
        .run(&mut p2, &mut adam())
        .unwrap();
    assert_eq!(resumed.trace.without_time(), full.trace.without_time());
    assert_eq!(p2.net.flat_params(), p.net.flat_params());
}

#[test]
fn huge_learning_rates_diverge_without_panicking_on_a_network() {
    for lr in [1e4, 1e12] {
        let mut p = problem(4);
        let mut adam = AdamConfig {
            lr,
            batching: Batching::mini(8),
            ..Default::default()
        }
        .build::<f64>()
        .unwrap();
        let out = Driver::new(Budget::epochs(50.0))
            .run(&mut p, &mut adam)
            .unwrap();
        assert!(
            matches!(out.status, Status::Diverged { .. }),
            "lr {lr}: {:?}",
            out.status
        );
        assert!(out.trace.records.len() >= 2);
    }
    let mut p = problem(4);
    let mut gd = crate::first_order::SgdConfig::gd(1e6)
        .build::<f64>()
        .unwrap();
    let out = Driver::new(Budget::iterations(50))
        .run(&mut p, &mut gd)
        .unwrap();
    assert!(
        matches!(out.status, Status::Diverged { .. }),
        "{:?}",
        out.status
    );
}

/// Issue #14: the data-parallel full-batch gradient (two threads in the tape's GEMMs;
/// 128 x 64 x 400 multiply-adds exceed the threshold where the tape goes parallel) is
/// bit-identical run to run, and equal to the one-thread gradient up to rounding.
#[test]
fn two_thread_full_batch_gradient_is_bit_identical_run_to_run() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (d, n) = (64, 400);
    let x = DMatrix::from_fn(d, n, |_, _| crate::testing::normal(&mut rng));
    let labels = (0..n).map(|j| j % 10).collect();
    let data = Dataset::new(
        x,
        Targets::Labels {
            labels,
            classes: 10,
        },
    )
    .unwrap();
    let net = Sequential::mlp(&[d, 128, 10], Activation::Relu, Init::HeUniform, &mut rng).unwrap();
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    let grad = |threads: usize| {
        let mut p = NetProblem::new(net.clone(), loss, data.clone(), None)
            .unwrap()
            .with_threads(threads);
        let mut g = vec![0.0; p.dim()];
        let f = p.value_grad(None, &mut g).unwrap();
        (f, g)
    };
    let (a, b, one) = (grad(2), grad(2), grad(1));
    assert_eq!(a.0.to_bits(), b.0.to_bits());
    assert!(
        a.1.iter()
            .zip(&b.1)
            .all(|(x, y)| x.to_bits() == y.to_bits())
    );
    assert!((a.0 - one.0).abs() < 1e-12 * one.0.abs());
    let scale = one.1.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(scale > 0.0);
    for (x, y) in a.1.iter().zip(&one.1) {
        assert!((x - y).abs() < 1e-10 * scale, "{x} vs {y}");
    }
}
