//! Cost of a certified enclosure against one forward + backward pass (nets'
//! `loss_and_grad`), on digits shapes: 64-128-10 and 64-128-128-10 ReLU MLPs, softmax
//! cross-entropy (mean), N = 1438 samples (the digits training split), f64, one thread.
//! Inputs are synthetic digits-like pixels in [0, 1] (the timing does not depend on the
//! values); the direction is the negative gradient (k = 1) or one block per dense layer
//! (k = L), trust region 1e-2. `enclose_with` keeps one workspace across iterations,
//! as a solver does.
//!
//! Run: `cargo bench -p majorize --bench enclosure -- --measurement-time 3 --warm-up-time 1`
//! and compare the groups' times side by side (same run, same load).

use std::hint::black_box;
use std::time::Duration;

use autodiff::Tape;
use criterion::{Criterion, criterion_group, criterion_main};
use majorize::{EnclosureRequest, EnclosureWorkspace, enclose_with};
use nalgebra::{DMatrix, DVector};
use nets::{Activation, Init, Loss, LossKind, Reduction, Sequential, Targets};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn bench_shape(c: &mut Criterion, widths: &[usize]) {
    let name = widths
        .iter()
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join("-");
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let n = 1438;
    let net = Sequential::<f64>::mlp(widths, Activation::Relu, Init::HeNormal, &mut rng).unwrap();
    let x = DMatrix::from_fn(widths[0], n, |_, _| (rng.random_range(0..17) as f64) / 16.0);
    let k_out = *widths.last().unwrap();
    let y = Targets::Labels {
        labels: (0..n).map(|_| rng.random_range(0..k_out)).collect(),
        classes: k_out,
    };
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    let p = net.num_params();
    let mut grad = vec![0.0; p];
    let mut tape = Tape::new();
    nets::loss_and_grad(&net, &loss, &x, &y, &mut tape, &mut grad).unwrap();
    let d1 = vec![DVector::from_iterator(p, grad.iter().map(|g| -g))];
    let layout = net.param_layout();
    let dl: Vec<DVector<f64>> = (0..net.num_dense())
        .map(|l| {
            let li = 2 * l;
            DVector::from_fn(p, |j, _| {
                if layout
                    .iter()
                    .any(|i| i.layer == li && j >= i.offset && j < i.offset + i.rows * i.cols)
                {
                    -grad[j]
                } else {
                    0.0
                }
            })
        })
        .collect();
    let a1 = vec![1e-2];
    let al = vec![1e-2; dl.len()];
    let mut g = c.benchmark_group(format!("enclosure_{name}_n{n}"));
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.sample_size(10);
    g.bench_function("forward_backward", |b| {
        b.iter(|| {
            black_box(nets::loss_and_grad(&net, &loss, &x, &y, &mut tape, &mut grad).unwrap())
        })
    });
    for (label, dirs, amax) in [("enclose_k1", &d1, &a1), ("enclose_kL", &dl, &al)] {
        let req = EnclosureRequest {
            net: &net,
            loss: &loss,
            inputs: &x,
            targets: &y,
            directions: dirs,
            alpha_max: amax,
        };
        // Steady state of a solver: one workspace kept across calls.
        let mut ws = EnclosureWorkspace::new();
        g.bench_function(label, |b| {
            b.iter(|| black_box(enclose_with(&req, &mut ws).unwrap()))
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_shape(c, &[64, 128, 10]);
    bench_shape(c, &[64, 128, 128, 10]);
}

criterion_group!(enclosure, benches);
criterion_main!(enclosure);
