//! Shared helpers of the integration tests: independent reference optima.
#![allow(dead_code)]

use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::testing::{LeastSquares, Logistic};
use solvers::{Budget, Differentiable, Driver, RunOutcome, Solver};

/// A seeded ridge least-squares problem (d = 6, N = 40, lambda = 0.1).
pub fn least_squares() -> LeastSquares<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    LeastSquares::random(6, 40, 0.1, &mut rng).unwrap()
}

/// A seeded logistic regression (d = 5 with a constant feature, N = 60, lambda = 0.1).
pub fn logistic() -> Logistic<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    Logistic::random(5, 60, 0.1, &mut rng).unwrap()
}

/// Closed-form minimiser (A A^T / N + lambda I)^-1 A y / N, by Cholesky.
pub fn least_squares_optimum(p: &LeastSquares<f64>) -> DVector<f64> {
    let (a, y) = p.data();
    let d = p.dim();
    let n = y.len();
    let a = DMatrix::from_column_slice(d, n, a);
    let y = DVector::from_column_slice(y);
    let h = &a * a.transpose() / n as f64 + DMatrix::identity(d, d) * p.lambda();
    let rhs = &a * y / n as f64;
    h.cholesky().expect("SPD").solve(&rhs)
}

/// Minimiser of the logistic objective by Newton's method (written here, independent
/// of the crate): iterate until the Newton step is below 1e-14.
pub fn logistic_optimum(p: &Logistic<f64>) -> DVector<f64> {
    let (x, y) = p.data();
    let d = p.dim();
    let n = y.len();
    let x = DMatrix::from_column_slice(d, n, x);
    let lam = p.lambda();
    let mut w = DVector::zeros(d);
    for _ in 0..100 {
        let mut g = &w * lam;
        let mut h = DMatrix::identity(d, d) * lam;
        for (i, yi) in y.iter().enumerate() {
            let xi = x.column(i);
            let m = yi * xi.dot(&w);
            let s = 1.0 / (1.0 + m.exp()); // sigma(-m)
            g -= xi * (yi * s / n as f64);
            h += xi * xi.transpose() * (s * (1.0 - s) / n as f64);
        }
        let step = h.cholesky().expect("SPD").solve(&g);
        w -= &step;
        if step.norm() < 1e-14 {
            break;
        }
    }
    w
}

/// Relative distance ||x - x*|| / max(||x*||, 1e-12).
pub fn rel_err<P: Differentiable<Scalar = f64>>(p: &P, opt: &DVector<f64>) -> f64 {
    let mut x = vec![0.0; p.dim()];
    p.params(&mut x);
    let x = DVector::from_vec(x);
    (x - opt).norm() / opt.norm().max(1e-12)
}

/// Runs `solver` for at most `iters` iterations with seed 0.
pub fn run<P: solvers::Problem, S: Solver<P>>(p: &mut P, s: &mut S, iters: u64) -> RunOutcome {
    Driver::new(Budget::iterations(iters)).run(p, s).unwrap()
}
