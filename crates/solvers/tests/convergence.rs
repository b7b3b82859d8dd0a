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
