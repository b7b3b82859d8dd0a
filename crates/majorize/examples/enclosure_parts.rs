//! Profiling aid for the enclosure engine on digits shapes (64-32-10, N = 1438, f64):
//! repeats one `k = 1` enclosure (`enclose_with_value`) and one gradient pass so that
//! `perf record` sees them in isolation, and prints their mean wall times.
//!
//! Run: `cargo run --release -p majorize --example enclosure_parts -- [relu|softplus] [secs] [alpha_max]`

use std::hint::black_box;
use std::time::Instant;

use autodiff::Tape;
use majorize::enclosure::{EnclosureRequest, EnclosureWorkspace, enclose_with_value};
use nalgebra::{DMatrix, DVector};
use nets::{Activation, Init, Loss, LossKind, Reduction, Sequential, Targets};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const USAGE: &str = "usage: enclosure_parts [relu|softplus] [secs > 0] [alpha_max > 0]";

/// `(softplus, secs, alpha_max)` from the positional arguments; `--help` prints the
/// usage, a value that does not parse (or an extra one) exits 2 with the usage.
fn options() -> (bool, f64, f64) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        std::process::exit(0);
    }
    let fail = || -> ! {
        eprintln!("enclosure_parts: bad arguments {args:?}\n{USAGE}");
        std::process::exit(2);
    };
    let softplus = match args.first().map(String::as_str) {
        None | Some("relu") => false,
        Some("softplus") => true,
        Some(_) => fail(),
    };
    let positive = |i: usize, default: f64| match args.get(i) {
        None => default,
        Some(s) => match s.parse::<f64>() {
            Ok(v) if v > 0.0 && v.is_finite() => v,
            _ => fail(),
        },
    };
    if args.len() > 3 {
        fail();
    }
    (softplus, positive(1, 2.0), positive(2, 1e-3))
}

fn main() {
    let (softplus, secs, alpha_max) = options();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let n = 1438;
    let act = if softplus {
        Activation::Softplus
    } else {
        Activation::Relu
    };
    let net = Sequential::<f64>::mlp(&[64, 32, 10], act, Init::HeNormal, &mut rng).unwrap();
    let x = DMatrix::from_fn(64, n, |_, _| (rng.random_range(0..17) as f64) / 16.0);
    let (loss, y) = if softplus {
        let lab: Vec<usize> = (0..n).map(|_| rng.random_range(0..10)).collect();
        let y = DMatrix::from_fn(10, n, |r, c| if lab[c] == r { 1.0 } else { 0.0 });
        (Loss::new(LossKind::Mse, Reduction::Mean), Targets::Dense(y))
    } else {
        let y = Targets::Labels {
            labels: (0..n).map(|_| rng.random_range(0..10)).collect(),
            classes: 10,
        };
        (Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean), y)
    };
    let p = net.num_params();
    let mut grad = vec![0.0; p];
    let mut tape = Tape::new();
    let f0 = nets::loss_and_grad(&net, &loss, &x, &y, &mut tape, &mut grad).unwrap();
    let d1 = vec![DVector::from_iterator(p, grad.iter().map(|g| -g))];
    let amax = [alpha_max];
    let req = EnclosureRequest {
        net: &net,
        loss: &loss,
        inputs: &x,
        targets: &y,
        directions: &d1,
        alpha_max: &amax,
    };
    let mut ws = EnclosureWorkspace::new();
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        let mut k = 0u32;
        while k < 3 || t.elapsed().as_secs_f64() < secs {
            f();
            k += 1;
        }
        t.elapsed().as_secs_f64() / f64::from(k) * 1e3
    };
    let g = time(&mut || {
        black_box(nets::loss_and_grad(&net, &loss, &x, &y, &mut tape, &mut grad).unwrap());
    });
    let e = time(&mut || {
        black_box(enclose_with_value(&req, f0, &mut ws).unwrap());
    });
    let enc = enclose_with_value(&req, f0, &mut ws).unwrap();
    println!(
        "gradient {g:.3} ms, enclosure k=1 {e:.3} ms, ratio {:.2}",
        e / g
    );
    println!(
        "slope {:?} curvature {:?} slack {:?}",
        enc.gradient, enc.quad_upper, enc.slack
    );
}
