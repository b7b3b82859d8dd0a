//! `strata._native`: the compiled half of the `strata` Python package (PyO3).
//!
//! A thin layer over the Rust crates, no numerics of its own: NumPy arrays are read into
//! the crates' column-major matrices ([`arrays`]), runs go through `solvers::Driver`
//! with the GIL released and an observer that turns Ctrl-C into `KeyboardInterrupt`
//! ([`interrupt`]), NMF uses `majorize::nmf` and `solvers::nmf` ([`nmf`]), networks are
//! built and trained through `bench_suite`'s solver registry ([`mlp`]) and comparisons
//! run `bench_suite::runner::run` ([`compare`]). The scikit-learn-style estimators are
//! the Python classes in `python/strata/`; they call the functions registered here.
//!
//! Errors: every error of the Rust crates becomes `ValueError` carrying its message;
//! an array of an unsupported dtype or dimension becomes `TypeError`.

use pyo3::prelude::*;
use solvers::Status;

pub mod arrays;
pub mod compare;
pub mod interrupt;
pub mod mlp;
pub mod nmf;

/// `ValueError` with the message of a Rust error (the Python face of every typed error
/// of the crates: shapes, NaN, negative NMF data, labels out of range, bad options).
pub fn value_error(e: impl std::fmt::Display) -> PyErr {
    pyo3::exceptions::PyValueError::new_err(e.to_string())
}

/// A short status string: `converged: ...`, `max_iter`, `diverged: ...`, `stopped: ...`.
pub fn status_name(s: &Status) -> String {
    match s {
        Status::Converged { reason } => format!("converged: {reason}"),
        Status::BudgetExhausted(_) => "max_iter".into(),
        Status::Diverged { reason } => format!("diverged: {reason}"),
        Status::Failed { error } => format!("failed: {error}"),
        Status::Stopped { reason } => format!("stopped: {reason}"),
        Status::NotApplicable { reason } => format!("not applicable: {reason}"),
    }
}

/// The module `strata._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(nmf::nmf_fit, m)?)?;
    m.add_function(wrap_pyfunction!(nmf::nmf_transform, m)?)?;
    m.add_function(wrap_pyfunction!(mlp::mlp_fit, m)?)?;
    m.add_function(wrap_pyfunction!(mlp::mlp_forward, m)?)?;
    m.add_function(wrap_pyfunction!(mlp::solver_names, m)?)?;
    m.add_function(wrap_pyfunction!(compare::compare_argv, m)?)?;
    m.add_function(wrap_pyfunction!(arrays::read_path, m)?)?;
    Ok(())
}
