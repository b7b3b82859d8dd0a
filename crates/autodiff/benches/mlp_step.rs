//! One training step of a ReLU MLP with softmax cross-entropy, f32, single thread:
//! record the forward pass on a reused tape (reset each step), backward, and a plain SGD
//! update `W <- W - lr dW` written here. The MLP is built directly with tape ops.
//!
//! Run: `cargo bench -p autodiff --bench mlp_step -- --measurement-time 3 --warm-up-time 1`

mod common;

use autodiff::Tape;
use common::{Mlp, data};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

fn bench_mlp(c: &mut Criterion, widths: &[usize], batch: usize) {
    let name = widths
        .iter()
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join("-");
    let mut g = c.benchmark_group(format!("mlp_step_{name}"));
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.sample_size(20);
    let (x, labels) = data(widths[0], batch, *widths.last().unwrap());
    let mut mlp = Mlp::new(widths);
    let mut tape = Tape::new();
    g.bench_function(BenchmarkId::new("batch", batch), |b| {
        b.iter(|| black_box(mlp.step(&mut tape, &x, &labels, 1e-3)))
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_mlp(c, &[784, 256, 256, 10], 128);
    bench_mlp(c, &[784, 256, 256, 10], 1024);
    bench_mlp(c, &[64, 128, 128, 10], 64);
}

criterion_group!(mlp, benches);
criterion_main!(mlp);
