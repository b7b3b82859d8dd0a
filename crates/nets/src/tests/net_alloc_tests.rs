//! Steady-state allocation, precision agreement, trace reuse and the ignored timing probes
//! of whole networks (split from `net_tests.rs`).

use super::{rng, unif};
use crate::{Activation, Init, Loss, LossKind, Reduction, Sequential, Targets, loss_and_grad};
use autodiff::kernels::gemm_into;
use autodiff::{Real, Tape, Transpose, Var};
use nalgebra::DMatrix;

/// Allocations of one steady-state recording of the same graph directly on a tape
/// (what the tape itself does: the GEMM kernel allocates per product).
fn raw_tape_allocs(net: &Sequential<f32>, loss: &Loss, x: &DMatrix<f32>, t: &Targets<f32>) -> u64 {
    let mats: Vec<(DMatrix<f32>, DMatrix<f32>)> = (0..net.num_dense())
        .map(|l| {
            let d = net.dense(l).unwrap();
            (
                d.weight.clone(),
                DMatrix::from_column_slice(d.bias.len(), 1, d.bias.as_slice()),
            )
        })
        .collect();
    let onehot = match t {
        Targets::Labels { labels, classes } => DMatrix::from_fn(*classes, labels.len(), |k, n| {
            if labels[n] == k { 1.0 } else { 0.0 }
        }),
        Targets::Dense(y) => y.clone(),
    };
    let mut tape = Tape::<f32>::new();
    let record = |tape: &mut Tape<f32>| {
        tape.reset();
        let mut cur = tape.constant(x);
        let mut vars: [Option<Var>; 8] = [None; 8];
        for (l, (w, b)) in mats.iter().enumerate() {
            let wv = tape.param(w);
            let bv = tape.param(b);
            vars[2 * l] = Some(wv);
            vars[2 * l + 1] = Some(bv);
            let z = tape.matmul(wv, Transpose::No, cur, Transpose::No).unwrap();
            cur = tape.add_bias(z, bv).unwrap();
            if l + 1 < mats.len() {
                cur = tape.relu(cur).unwrap();
            }
        }
        let out = match (loss.kind, t) {
            (LossKind::SoftmaxCrossEntropy, Targets::Labels { labels, .. }) => tape
                .softmax_cross_entropy_labels(cur, labels, loss.reduction)
                .unwrap(),
            _ => {
                let y = tape.constant(&onehot);
                tape.mse(cur, y, loss.reduction).unwrap()
            }
        };
        let _ = tape.scalar(out).unwrap();
        tape.backward(out).unwrap();
        let s: f32 = vars
            .iter()
            .flatten()
            .map(|v| tape.grad(*v).unwrap()[0])
            .sum();
        std::hint::black_box(s);
    };
    for _ in 0..2 {
        record(&mut tape);
    }
    let before = super::alloc_count();
    record(&mut tape);
    super::alloc_count() - before
}

#[test]
fn loss_and_grad_adds_no_allocation_to_the_tapes() {
    let mut r = rng(65);
    let net =
        Sequential::<f32>::mlp(&[5, 8, 8, 3], Activation::Relu, Init::HeNormal, &mut r).unwrap();
    let x = DMatrix::from_fn(5, 16, |_, _| unif(&mut r, -1.0, 1.0) as f32);
    let labels = || Targets::Labels {
        labels: (0..16).map(|i| i % 3).collect(),
        classes: 3,
    };
    for (loss, t) in [
        (
            Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean).with_l2(1e-3),
            labels(),
        ),
        (Loss::new(LossKind::Mse, Reduction::Sum), labels()),
        (
            Loss::new(LossKind::Mse, Reduction::Sum),
            Targets::Dense(DMatrix::from_element(3, 16, 0.5f32)),
        ),
    ] {
        let mut tape = Tape::new();
        let mut g = vec![0.0f32; net.num_params()];
        for _ in 0..2 {
            loss_and_grad(&net, &loss, &x, &t, &mut tape, &mut g).unwrap();
        }
        let before = super::alloc_count();
        for _ in 0..5 {
            loss_and_grad(&net, &loss, &x, &t, &mut tape, &mut g).unwrap();
        }
        let ours = super::alloc_count() - before;
        let tape_only = raw_tape_allocs(&net, &loss, &x, &t);
        assert_eq!(
            ours,
            5 * tape_only,
            "{loss:?}: {ours} allocations in 5 calls, the bare tape makes {tape_only} per call"
        );
    }
}

#[test]
fn f32_networks_forward_like_f64() {
    let mut r = rng(66);
    let net = Sequential::<f32>::mlp(&[2, 3, 1], Activation::Sigmoid, Init::GlorotNormal, &mut r)
        .unwrap();
    let x = DMatrix::from_fn(2, 4, |_, _| unif(&mut r, -1.0, 1.0) as f32);
    let y = net.predict(&x).unwrap();
    let d0 = net.dense(0).unwrap();
    let d1 = net.dense(1).unwrap();
    for n in 0..4 {
        let h: Vec<f64> = (0..3)
            .map(|i| {
                let z = d0.weight[(i, 0)] as f64 * x[(0, n)] as f64
                    + d0.weight[(i, 1)] as f64 * x[(1, n)] as f64
                    + d0.bias[i] as f64;
                1.0 / (1.0 + (-z).exp())
            })
            .collect();
        let o: f64 =
            (0..3).map(|i| d1.weight[(0, i)] as f64 * h[i]).sum::<f64>() + d1.bias[0] as f64;
        assert!((y[(0, n)] as f64 - o).abs() < 1e-5);
    }
    let _ = <f32 as Real>::dtype_name();
}

#[test]
fn trace_reuse_named_params_and_thread_safety() {
    fn assert_send_sync<X: Send + Sync>() {}
    assert_send_sync::<Sequential<f32>>();
    assert_send_sync::<Sequential<f64>>();
    let mut r = rng(67);
    let net = Sequential::<f64>::mlp(&[3, 4, 4, 2], Activation::Softplus, Init::HeUniform, &mut r)
        .unwrap();
    let x1 = DMatrix::from_fn(3, 5, |_, _| unif(&mut r, -1.0, 1.0));
    let x2 = DMatrix::from_fn(3, 2, |_, _| unif(&mut r, -1.0, 1.0));
    let mut tr = net.forward_trace(&x1).unwrap();
    net.forward_trace_into(&x2, &mut tr).unwrap();
    assert_eq!(tr, net.forward_trace(&x2).unwrap());
    assert_eq!(tr.output(), &net.predict(&x2).unwrap());
    for l in 1..3 {
        let mut a = DMatrix::zeros(0, 0);
        Activation::Softplus.apply_matrix(&tr.z[l], &mut a);
        assert_eq!(a, tr.a[l]);
    }
    assert_eq!(
        net.param(2, "weight").unwrap().values,
        net.dense(1).unwrap().weight.as_slice()
    );
    assert!(net.param(1, "weight").is_none());
    assert!(net.param(9, "bias").is_none());
    let mut net2 = net.clone();
    net2.param_mut(4, "bias").unwrap().values[1] = 3.0;
    assert_eq!(net2.dense(2).unwrap().bias[1], 3.0);
    // Two threads share one network (the second may use a fresh scratch).
    let t = Targets::Labels {
        labels: vec![0, 1, 0, 1, 1],
        classes: 2,
    };
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Sum);
    let mut g0 = vec![0.0; net.num_params()];
    let v0 = loss_and_grad(&net, &loss, &x1, &t, &mut Tape::new(), &mut g0).unwrap();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut g = vec![0.0; net.num_params()];
                let mut tape = Tape::new();
                for _ in 0..20 {
                    assert_eq!(
                        loss_and_grad(&net, &loss, &x1, &t, &mut tape, &mut g).unwrap(),
                        v0
                    );
                    assert_eq!(g, g0);
                }
            });
        }
    });
    // JSON value embedding round-trips.
    let v = crate::persist::to_json_value(&net).unwrap();
    let back: Sequential<f64> = crate::persist::from_json_value(&v).unwrap();
    assert_eq!(back.flat_params(), net.flat_params());
}

/// Timing probe (not a test of correctness): `cargo test -p nets -- --ignored --nocapture timing`.
#[test]
#[ignore]
fn timing_loss_and_grad_and_prox() {
    let mut r = rng(68);
    let net =
        Sequential::<f32>::mlp(&[784, 256, 10], Activation::Relu, Init::HeNormal, &mut r).unwrap();
    let x = DMatrix::from_fn(784, 128, |_, _| unif(&mut r, 0.0, 1.0) as f32);
    let t = Targets::Labels {
        labels: (0..128).map(|i| i % 10).collect(),
        classes: 10,
    };
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    let mut tape = Tape::new();
    let mut g = vec![0.0f32; net.num_params()];
    for _ in 0..5 {
        loss_and_grad(&net, &loss, &x, &t, &mut tape, &mut g).unwrap();
    }
    let reps = 50;
    let t0 = std::time::Instant::now();
    for _ in 0..reps {
        loss_and_grad(&net, &loss, &x, &t, &mut tape, &mut g).unwrap();
    }
    let dt = t0.elapsed().as_secs_f64() / reps as f64;
    let flops = 3.0 * 2.0 * 128.0 * (784.0 * 256.0 + 256.0 * 10.0);
    eprintln!(
        "loss_and_grad 784-256-10, N=128, f32: {:.3} ms/call ({:.1} GFLOP/s in the products)",
        dt * 1e3,
        flops / dt / 1e9
    );
    let a = DMatrix::from_fn(100, 100, |_, _| unif(&mut r, 0.0, 1.0));
    let m = DMatrix::from_fn(100, 100, |_, _| unif(&mut r, -2.0, 2.0));
    let mut out = DMatrix::zeros(0, 0);
    for h in [Activation::Relu, Activation::Sigmoid, Activation::Tanh] {
        let t0 = std::time::Instant::now();
        crate::prox::prox_weighted_matrix(&h, &a, &m, 10.0, 1.0, &mut out).unwrap();
        eprintln!(
            "prox_weighted_matrix {h:?} 10^4 entries: {:.2} ms",
            t0.elapsed().as_secs_f64() * 1e3
        );
    }
}

#[test]
#[ignore]
fn timing_gemm_probe() {
    let mut r = rng(69);
    let w = DMatrix::from_fn(256, 784, |_, _| unif(&mut r, -1.0, 1.0) as f32);
    let x = DMatrix::from_fn(784, 128, |_, _| unif(&mut r, 0.0, 1.0) as f32);
    let mut c = DMatrix::zeros(256, 128);
    let t0 = std::time::Instant::now();
    for _ in 0..50 {
        gemm_into(&mut c, 1.0, &w, Transpose::No, &x, Transpose::No, 0.0, 1).unwrap();
    }
    let dt = t0.elapsed().as_secs_f64() / 50.0;
    eprintln!(
        "gemm 256x784x128 f32: {:.3} ms ({:.1} GFLOP/s)",
        dt * 1e3,
        2.0 * 256.0 * 784.0 * 128.0 / dt / 1e9
    );
    let mut tape = Tape::<f32>::new();
    let t0 = std::time::Instant::now();
    for _ in 0..50 {
        tape.reset();
        let xv = tape.constant(&x);
        let wv = tape.param(&w);
        let z = tape.matmul(wv, Transpose::No, xv, Transpose::No).unwrap();
        let s = tape.sum_all(z).unwrap();
        tape.backward(s).unwrap();
    }
    eprintln!(
        "tape matmul fwd+bwd: {:.3} ms",
        t0.elapsed().as_secs_f64() / 50.0 * 1e3
    );
}
