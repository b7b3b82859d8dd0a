//! Per-iteration timings measured in this thread's CPU time (from
//! `/proc/thread-self/schedstat`, nanoseconds on CPU) next to wall time, so figures stay
//! meaningful when the 2-core machine is shared with compile jobs. Single thread.
//!
//! Run: `cargo run --release -p autodiff --example cpu_time` (parts: `gemm`, `mlp`, or
//! `shapes`: the eight products of a batch-1024 step of the 784-256-256-10 MLP one by one,
//! GFLOP/s by CPU time; default `gemm` and `mlp`)

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

/// One product `C = op(A) op(B)` of the given output shape and depth, f32, as the
/// batch-1024 step of a 784-256-256-10 MLP runs it.
fn shape(name: &str, m: usize, n: usize, k: usize, ta: Transpose, tb: Transpose) {
    let (ar, ac) = if ta == Transpose::No { (m, k) } else { (k, m) };
    let (br, bc) = if tb == Transpose::No { (k, n) } else { (n, k) };
    let a = DMatrix::<f32>::from_fn(ar, ac, |i, j| ((i + 2 * j) % 7) as f32 * 0.1);
    let b = DMatrix::<f32>::from_fn(br, bc, |i, j| ((3 * i + j) % 5) as f32 * 0.1);
    let mut c = DMatrix::<f32>::zeros(m, n);
    let (cpu, _) = time(1.0, || {
        gemm_into(&mut c, 1.0, &a, ta, &b, tb, 0.0, 1).unwrap();
    });
    let flops = 2.0 * (m * n * k) as f64;
    println!(
        "{name:<28} {m:>4}x{n:<4} k={k:<4} {:>7.1} us  {:>6.1} GFLOP/s (CPU time)",
        cpu * 1e6,
        flops / cpu * 1e-9
    );
}

/// The products of one batch-1024 step of the 784-256-256-10 MLP (column-major: a layer
/// is `Z = W A`, its weight gradient `dW = dZ A^T`, its input gradient `W^T dZ`).
fn shapes() {
    use Transpose::{No, Yes};
    let nb = 1024;
    shape("gemm 1024^3", 1024, 1024, 1024, No, No);
    shape("fwd  Z1 = W1 X", 256, nb, 784, No, No);
    shape("fwd  Z2 = W2 A1", 256, nb, 256, No, No);
    shape("fwd  Z3 = W3 A2", 10, nb, 256, No, No);
    shape("bwd dW3 = dZ3 A2^T", 10, 256, nb, No, Yes);
    shape("bwd dA2 = W3^T dZ3", 256, nb, 10, Yes, No);
    shape("bwd dW2 = dZ2 A1^T", 256, 256, nb, No, Yes);
    shape("bwd dA1 = W2^T dZ2", 256, nb, 256, Yes, No);
    shape("bwd dW1 = dZ1 X^T", 256, 784, nb, No, Yes);
    shape("alt dW1^T = X dZ1^T", 784, 256, nb, No, Yes);
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

const USAGE: &str = "usage: cpu_time [gemm | mlp | shapes]  (default: gemm and mlp)";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let only = match args.as_slice() {
        [] => String::new(),
        [h] if h == "--help" || h == "-h" => {
            println!("{USAGE}");
            return;
        }
        [part] if ["gemm", "mlp", "shapes"].contains(&part.as_str()) => part.clone(),
        _ => {
            eprintln!("cpu_time: unexpected arguments {args:?}\n{USAGE}");
            std::process::exit(2)
        }
    };
    if only.is_empty() || only == "gemm" {
        gemm::<f32>(256);
        gemm::<f32>(1024);
        gemm::<f64>(256);
        gemm::<f64>(1024);
    }
    if only == "shapes" {
        shapes();
    }
    if only.is_empty() || only == "mlp" {
        mlp(&[784, 256, 256, 10], 128);
        mlp(&[784, 256, 256, 10], 1024);
        mlp(&[64, 128, 128, 10], 64);
    }
}
