//! Small finite-sum test problems with known optima, so that solvers can be tested
//! without a network: ridge least squares (a strongly convex quadratic) and
//! L2-regularised logistic regression. Both implement [`crate::Differentiable`].

mod least_squares;
mod logistic;

pub use least_squares::LeastSquares;
pub use logistic::Logistic;

use autodiff::Real;
use rand::{Rng, RngExt};

use crate::SolverError;

/// Standard normal draw (Box-Muller), for synthetic data in tests.
pub fn normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// The most data entries (`d * N`) a test problem accepts or draws (1e9: defined as
/// `majorize::MAX_ENTRIES`, the workspace's one size cap).
pub const MAX_TEST_ENTRIES: usize = majorize::MAX_ENTRIES;

/// Checks the size `d * N` of a test problem (no overflow, at most [`MAX_TEST_ENTRIES`])
/// before anything of that size is allocated, and returns it.
pub(crate) fn check_size(what: &'static str, d: usize, n: usize) -> Result<usize, SolverError> {
    match d.checked_mul(n) {
        Some(e) if e <= MAX_TEST_ENTRIES => Ok(e),
        _ => Err(SolverError::config(
            what,
            "d * N",
            format!("{d} * {n}"),
            "the data would exceed MAX_TEST_ENTRIES = 1e9 entries",
        )),
    }
}

/// Errors on the first NaN or infinite entry of a test problem's data.
pub(crate) fn check_data_finite<T: Real>(
    what: &str,
    field: &str,
    v: &[T],
) -> Result<(), SolverError> {
    match v.iter().position(|x| !x.finite()) {
        Some(i) => Err(SolverError::NonFinite(format!(
            "{what}: {field}[{i}] = {} is not finite",
            v[i].to_f64()
        ))),
        None => Ok(()),
    }
}

/// Checks a parameter vector's length.
pub(crate) fn check_len(what: &str, expected: usize, got: usize) -> Result<(), SolverError> {
    if expected == got {
        Ok(())
    } else {
        Err(SolverError::shape(what, expected, got))
    }
}

/// Parameters as JSON (exact: serde_json writes the shortest round-tripping decimal).
pub(crate) fn params_json<T: Real>(x: &[T]) -> serde_json::Value {
    serde_json::to_value(x).unwrap_or(serde_json::Value::Null)
}

/// Parameters back from JSON, with a length check.
pub(crate) fn params_from_json<T: Real>(
    v: &serde_json::Value,
    dim: usize,
) -> Result<Vec<T>, SolverError> {
    let x: Vec<T> = serde_json::from_value(v.clone())?;
    check_len("loaded parameters", dim, x.len())?;
    crate::state_check::check_finite("test problem", "params", &x)?;
    Ok(x)
}
