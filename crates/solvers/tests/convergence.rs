//! Every gradient method reaches the independently computed optimum of a strongly convex
//! quadratic (closed form) and of L2-regularised logistic regression (Newton) to 1e-6
//! relative distance in the parameters, in f64, full-batch.

mod common;

use common::*;
use solvers::first_order::*;
use solvers::{Batching, Differentiable, Solver, Status};

const TOL: f64 = 1e-6;

fn check<S>(make: impl Fn() -> S, iters: u64, label: &str)
where
    S: Solver<solvers::testing::LeastSquares<f64>> + Solver<solvers::testing::Logistic<f64>>,
{
    let mut p = least_squares();
    let opt = least_squares_optimum(&p);
    let out = run(&mut p, &mut make(), iters);
    let e = rel_err(&p, &opt);
    eprintln!(
        "{label} least squares: rel err {e:.3e} after {} its, status {:?}",
        out.trace.records.len() - 1,
        out.status
    );
    assert!(e < TOL, "{label} on least squares: relative error {e:.3e}");
    assert!(!matches!(
        out.status,
        Status::Diverged { .. } | Status::Failed { .. }
    ));

    let mut p = logistic();
    let opt = logistic_optimum(&p);
    let out = run(&mut p, &mut make(), iters);
    let e = rel_err(&p, &opt);
    eprintln!(
        "{label} logistic: rel err {e:.3e} after {} its, status {:?}",
        out.trace.records.len() - 1,
        out.status
    );
    assert!(e < TOL, "{label} on logistic: relative error {e:.3e}");
    let _ = p.dim();
}

#[test]
fn gd_reaches_optimum() {
    check(|| SgdConfig::gd(0.5).build::<f64>().unwrap(), 2000, "GD");
}

#[test]
fn adam_reaches_optimum() {
    let cfg = AdamConfig {
        lr: 1e-2,
        batching: Batching::Full,
        ..Default::default()
    };
    check(|| cfg.clone().build::<f64>().unwrap(), 5000, "Adam");
}

#[test]
fn heavy_ball_and_nesterov_reach_optimum() {
    let hb = SgdConfig {
        lr: 0.2,
        momentum: 0.9,
        batching: Batching::Full,
        ..Default::default()
    };
    check(|| hb.clone().build::<f64>().unwrap(), 3000, "heavy ball");
    let nag = SgdConfig {
        nesterov: true,
        ..hb.clone()
    };
    check(|| nag.clone().build::<f64>().unwrap(), 3000, "Nesterov");
}

#[test]
fn adamw_without_decay_reaches_optimum() {
    // With weight_decay > 0, AdamW minimises a different objective by design (the decay
    // is not the gradient of a penalty on the Adam-preconditioned scale): tested with 0
    // here; the decay itself is checked in the unit test of `Decoupled`.
    let cfg = AdamWConfig {
        lr: 1e-2,
        weight_decay: 0.0,
        batching: Batching::Full,
        ..Default::default()
    };
    check(|| cfg.clone().build::<f64>().unwrap(), 5000, "AdamW(wd=0)");
}

#[test]
fn rmsprop_reaches_optimum_with_decaying_rate() {
    // With a constant rate RMSProp's step tends to lr * g/|g| (v decays with g) and
    // oscillates at the scale of lr: it cannot reach 1e-6 with its defaults. A cosine
    // decay of the rate to 0 over the run is the documented setting that can.
    let cfg = RmsPropConfig {
        lr: 1e-2,
        schedule: Schedule::Cosine {
            total: 6000,
            min_factor: 0.0,
        },
        batching: Batching::Full,
        ..Default::default()
    };
    check(
        || cfg.clone().build::<f64>().unwrap(),
        6000,
        "RMSProp(cosine)",
    );
}

#[test]
fn adagrad_reaches_optimum() {
    let cfg = AdagradConfig {
        lr: 0.5,
        batching: Batching::Full,
        ..Default::default()
    };
    check(|| cfg.clone().build::<f64>().unwrap(), 5000, "Adagrad");
}

#[test]
fn lbfgs_reaches_optimum() {
    check(
        || {
            solvers::lbfgs::LbfgsConfig::default()
                .build::<f64>()
                .unwrap()
        },
        200,
        "L-BFGS",
    );
}

#[test]
fn inna_reaches_optimum() {
    let cfg = solvers::inna::InnaConfig {
        batching: Batching::Full,
        ..Default::default()
    };
    check(|| cfg.clone().build::<f64>().unwrap(), 5000, "INNA");
}

#[test]
fn step_tuned_reaches_optimum() {
    let cfg = solvers::step_tuned::StepTunedConfig {
        alpha: 0.5,
        batching: Batching::Full,
        ..Default::default()
    };
    check(|| cfg.clone().build::<f64>().unwrap(), 5000, "Step-Tuned");
}

#[test]
fn rmsprop_with_constant_rate_stalls_above_tolerance() {
    // The claim behind the decaying schedule above, measured: constant lr = 1e-2
    // (PyTorch's default) stalls well above 1e-6 relative error.
    let cfg = RmsPropConfig {
        batching: Batching::Full,
        ..Default::default()
    };
    let mut p = least_squares();
    let opt = least_squares_optimum(&p);
    run(&mut p, &mut cfg.build::<f64>().unwrap(), 6000);
    let e = rel_err(&p, &opt);
    eprintln!("RMSProp constant lr: rel err {e:.3e}");
    assert!(e > 1e-4, "relative error {e:.3e}");
}

#[test]
fn f32_runs_reach_single_precision_accuracy() {
    // Same data rounded to f32; the optimum is the f64 closed form. Single precision
    // (eps 1.2e-7, condition number ~10 here) allows about 1e-5 relative error.
    use rand::SeedableRng;
    use solvers::lbfgs::LbfgsConfig;
    use solvers::testing::LeastSquares;
    let p64 = least_squares();
    let opt = least_squares_optimum(&p64);
    let make = || {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        LeastSquares::<f32>::random(6, 40, 0.1, &mut rng).unwrap()
    };
    let err = |p: &LeastSquares<f32>| {
        let mut x = vec![0f32; 6];
        p.params(&mut x);
        let d: f64 = x
            .iter()
            .zip(opt.iter())
            .map(|(a, b)| (*a as f64 - b).powi(2))
            .sum();
        d.sqrt() / opt.norm()
    };
    let mut p = make();
    run(
        &mut p,
        &mut SgdConfig::gd(0.5).build::<f32>().unwrap(),
        2000,
    );
    assert!(err(&p) < 1e-5, "GD f32: {:.3e}", err(&p));
    let mut p = make();
    let cfg = AdamConfig {
        lr: 1e-2,
        batching: Batching::Full,
        ..Default::default()
    };
    run(&mut p, &mut cfg.build::<f32>().unwrap(), 5000);
    assert!(err(&p) < 1e-5, "Adam f32: {:.3e}", err(&p));
    // L-BFGS cannot reach grad_tol = 1e-10 in f32: it must stop cleanly (Converged,
    // "line search cannot decrease f further") at single-precision accuracy.
    let mut p = make();
    let out = run(
        &mut p,
        &mut LbfgsConfig::default().build::<f32>().unwrap(),
        200,
    );
    assert!(
        matches!(out.status, Status::Converged { .. }),
        "{:?}",
        out.status
    );
    assert!(err(&p) < 1e-5, "L-BFGS f32: {:.3e}", err(&p));
    eprintln!(
        "L-BFGS f32: {:?} after {} its",
        out.status,
        out.trace.records.len() - 1
    );
}
