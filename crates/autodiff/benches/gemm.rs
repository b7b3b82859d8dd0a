//! GEMM wrapper throughput (criterion reports elements/s; one element = one flop, so
//! Gelem/s = GFLOP/s with 2mnk flops per product). Single thread.
//!
//! Run: `cargo bench -p autodiff --bench gemm -- --measurement-time 3 --warm-up-time 1`

use autodiff::kernels::gemm_into;
use autodiff::{Real, Transpose};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use nalgebra::DMatrix;
use std::hint::black_box;
use std::time::Duration;

fn bench_type<T: Real>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("gemm_{}", T::dtype_name()));
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.sample_size(10);
    let shapes: [(usize, usize, usize, Transpose, Transpose, &str); 5] = [
        (256, 256, 256, Transpose::No, Transpose::No, "256^3"),
        (1024, 1024, 1024, Transpose::No, Transpose::No, "1024^3"),
        // The three products of a 784-256 layer on a batch of 128 (forward, dA, dW).
        (
            256,
            128,
            784,
            Transpose::No,
            Transpose::No,
            "W·X 256x784·784x128",
        ),
        (
            784,
            128,
            256,
            Transpose::Yes,
            Transpose::No,
            "Wt·dZ 784x256·256x128",
        ),
        (
            256,
            784,
            128,
            Transpose::No,
            Transpose::Yes,
            "dZ·Xt 256x128·128x784",
        ),
    ];
    for (m, n, k, ta, tb, name) in shapes {
        let a = match ta {
            Transpose::No => {
                DMatrix::<T>::from_fn(m, k, |i, j| T::of(((i + 2 * j) % 7) as f64 * 0.1))
            }
            Transpose::Yes => {
                DMatrix::<T>::from_fn(k, m, |i, j| T::of(((i + 2 * j) % 7) as f64 * 0.1))
            }
        };
        let b = match tb {
            Transpose::No => {
                DMatrix::<T>::from_fn(k, n, |i, j| T::of(((3 * i + j) % 5) as f64 * 0.1))
            }
            Transpose::Yes => {
                DMatrix::<T>::from_fn(n, k, |i, j| T::of(((3 * i + j) % 5) as f64 * 0.1))
            }
        };
        let mut out = DMatrix::<T>::zeros(m, n);
        g.throughput(Throughput::Elements((2 * m * n * k) as u64));
        g.bench_function(BenchmarkId::from_parameter(name), |bch| {
            bch.iter(|| {
                gemm_into(&mut out, T::one(), &a, ta, &b, tb, T::zero(), 1).unwrap();
                black_box(&out);
            })
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_type::<f32>(c);
    bench_type::<f64>(c);
}

criterion_group!(gemm, benches);
criterion_main!(gemm);
