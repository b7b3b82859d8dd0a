//! Wall time per beta-NMF iteration (W then H) on a dense random problem.
//!
//! `cargo run --release -p majorize --example nmf_speed -- [F N K ITERS]`
//! (defaults 500 400 20 50). Prints milliseconds per iteration for each beta and rule,
//! single-threaded, f64.

use std::time::Instant;

use majorize::nmf::{self, NmfConfig, NmfWorkspace, Rule};
use nalgebra::DMatrix;

const USAGE: &str = "usage: nmf_speed [F N K ITERS]   (positive integers; defaults 500 400 20 50)";

/// The positional sizes; `--help` prints the usage, anything else that is not a
/// positive integer (or more than four values) exits 2 with the usage.
fn sizes() -> Vec<usize> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        std::process::exit(0);
    }
    let parsed: Option<Vec<usize>> = args
        .iter()
        .map(|s| s.parse().ok().filter(|&v: &usize| v > 0))
        .collect();
    match parsed {
        Some(a) if a.len() <= 4 => a,
        _ => {
            eprintln!("nmf_speed: bad arguments {args:?}\n{USAGE}");
            std::process::exit(2);
        }
    }
}

fn main() {
    let a = sizes();
    let (f, n, k, iters) = (
        a.first().copied().unwrap_or(500),
        a.get(1).copied().unwrap_or(400),
        a.get(2).copied().unwrap_or(20),
        a.get(3).copied().unwrap_or(50),
    );
    // Deterministic pseudo-random positive data (LCG), no RNG dependency.
    let mut s = 12345u64;
    let mut u = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let v = DMatrix::from_fn(f, n, |_, _| 0.05 + u());
    let w0 = DMatrix::from_fn(f, k, |_, _| 0.1 + u());
    let h0 = DMatrix::from_fn(k, n, |_, _| 0.1 + u());
    println!("F={f} N={n} K={k}, {iters} iterations, f64, 1 thread");
    for beta in [0.0, 1.0, 1.5, 2.0, 3.0] {
        for (name, cfg) in [
            ("MM", NmfConfig::new(beta)),
            ("ME", NmfConfig::new(beta).with_rule(Rule::Me)),
            ("sklearn", NmfConfig::new(beta).sklearn()),
        ] {
            let (mut w, mut h) = (w0.clone(), h0.clone());
            let mut ws = NmfWorkspace::new(f, n, k).unwrap();
            nmf::iterate(&v, &mut w, &mut h, &cfg, &mut ws).unwrap();
            let t = Instant::now();
            for _ in 0..iters {
                nmf::iterate(&v, &mut w, &mut h, &cfg, &mut ws).unwrap();
            }
            let ms = t.elapsed().as_secs_f64() * 1e3 / iters as f64;
            let obj = nmf::objective(&v, &w, &h, &cfg, &mut ws).unwrap();
            println!("beta {beta:>3} {name:<8} {ms:8.3} ms/iter   objective {obj:.6e}");
        }
    }
}
