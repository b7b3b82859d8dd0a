//! Per-iteration timings measured in this thread's CPU time (from
//! `/proc/thread-self/schedstat`, nanoseconds on CPU) next to wall time, so figures stay
//! meaningful when the 2-core machine is shared with compile jobs. Single thread.
//!
//! Run: `cargo run --release -p autodiff --example cpu_time`

#[path = "../benches/common/mod.rs"]
mod common;

use autodiff::kernels::gemm_into;
use autodiff::{Real, Tape, Transpose};
use common::{Mlp, data};
use nalgebra::DMatrix;
use std::time::Instant;

/// Nanoseconds this thread has spent on a CPU (0 if unavailable).
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Runs `f` repeatedly for about `secs` of CPU time after a warm-up; returns the best
/// (CPU, wall) seconds per call over 5 windows.
fn time(secs: f64, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..3 {
        f();
    }
    let mut best = (f64::INFINITY, f64::INFINITY);
    for _ in 0..5 {
        let (c0, w0) = (cpu_ns(), Instant::now());
        let mut n = 0u32;
        while (cpu_ns() - c0) as f64 * 1e-9 < secs / 5.0 {
            f();
            n += 1;
        }
        let cpu = (cpu_ns() - c0) as f64 * 1e-9 / n as f64;
        let wall = w0.elapsed().as_secs_f64() / n as f64;
        if cpu < best.0 {
            best = (cpu, wall);
        }
    }
    best
}

fn gemm<T: Real>(n: usize) {
    let a = DMatrix::<T>::from_fn(n, n, |i, j| T::of(((i + 2 * j) % 7) as f64 * 0.1));
    let b = DMatrix::<T>::from_fn(n, n, |i, j| T::of(((3 * i + j) % 5) as f64 * 0.1));
    let mut c = DMatrix::<T>::zeros(n, n);
    let (cpu, wall) = time(2.0, || {
        gemm_into(
            &mut c,
            T::one(),
            &a,
            Transpose::No,
            &b,
            Transpose::No,
            T::zero(),
            1,
        )
        .unwrap()
    });
    let flops = 2.0 * (n * n * n) as f64;
    println!(
        "gemm {} {n}^3: {:.1} GFLOP/s by CPU time ({:.1} by wall time)",
        T::dtype_name(),
        flops / cpu * 1e-9,
        flops / wall * 1e-9
    );
}

fn mlp(widths: &[usize], batch: usize) {
    let (x, labels) = data(widths[0], batch, *widths.last().unwrap());
    let mut net = Mlp::new(widths);
    let mut tape = Tape::new();
    let (cpu, wall) = time(3.0, || {
        std::hint::black_box(net.step(&mut tape, &x, &labels, 1e-3));
    });
    println!(
        "mlp step {widths:?} batch {batch}: {:.3} ms by CPU time ({:.3} ms by wall time)",
        cpu * 1e3,
        wall * 1e3
    );
}

fn main() {
    let only = std::env::args().nth(1).unwrap_or_default();
    if only.is_empty() || only == "gemm" {
        gemm::<f32>(256);
        gemm::<f32>(1024);
        gemm::<f64>(256);
        gemm::<f64>(1024);
    }
    if only.is_empty() || only == "mlp" {
        mlp(&[784, 256, 256, 10], 128);
        mlp(&[784, 256, 256, 10], 1024);
        mlp(&[64, 128, 128, 10], 64);
    }
}
