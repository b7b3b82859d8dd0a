//! `strata.compare(...)`: `cargo xtask compare` from Python.
//!
//! The Python side turns keyword arguments into the command line of `strata-compare`
//! (`solvers=["adam", "bcd"]` -> `--solvers adam,bcd`), so every option of
//! `bench_suite::runner::CompareArgs` is available under its own name and new options
//! need no change here. The arguments are parsed by the same clap definition and run by
//! the same `bench_suite::runner::run`, which writes a new results directory as usual.

use bench_suite::runner::{CompareArgs, run};
use clap::Parser;
use pyo3::prelude::*;

use crate::value_error;

/// Parses `argv` (without the program name) as `strata-compare` does and runs the
/// comparison with the GIL released. Returns the new run directory; the Python wrapper
/// reads its `results.json`. A bad option is a `ValueError` with clap's message.
#[pyfunction]
pub fn compare_argv(py: Python<'_>, argv: Vec<String>) -> PyResult<String> {
    let args =
        CompareArgs::try_parse_from(std::iter::once("strata-compare".to_string()).chain(argv))
            .map_err(|e| value_error(e.render().to_string()))?;
    if args.list {
        return Err(value_error(
            "list=True: use strata.solvers() / the strata-compare binary",
        ));
    }
    let outcome = py.detach(move || run(&args)).map_err(value_error)?;
    Ok(outcome.dir.to_string_lossy().into_owned())
}
