//! beta-NMF for `strata.NMF`: `fit_transform` runs `solvers::nmf::BetaNmf` on an
//! `NmfProblem` through the `Driver`; `transform` iterates `majorize::nmf::update_w`
//! with the components fixed (scikit-learn's `transform` for `solver='mu'`).
//!
//! Conventions: scikit-learn's `X (n_samples x n_features)` is strata's `V (F x N)`,
//! `W` is `n_samples x k`, `H = components_` is `k x n_features` (as in
//! `majorize::nmf::sklearn`). `solver='mu'` is the scikit-learn-exact mode
//! (`sklearn_compatible`, MM exponent, scikit-learn's masked divergence and stopping
//! rule); `'mm'`, `'heuristic'`, `'me'` are strata's rules (Févotte & Idier 2011).

use autodiff::Real;
use majorize::nmf::sklearn::{SklearnStop, sklearn_divergence};
use majorize::nmf::{NmfConfig, NmfWorkspace, Penalties, Rule, divergence, update_w};
use nalgebra::DMatrix;
use numpy::Element;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use solvers::nmf::{BetaNmf, BetaNmfConfig, NmfProblem};
use solvers::{Budget, Driver, Frequency, Status};

use crate::arrays::{self, Mat, Orient};
use crate::interrupt::SignalCheck;
use crate::value_error;

/// The NMF solver names and what they run.
pub const NMF_SOLVERS: [&str; 4] = ["mu", "mm", "heuristic", "me"];

/// Why a fit ended without a result.
enum Failure {
    /// A Rust error (bad input or a failed run): `ValueError`.
    Value(String),
    /// A signal handler raised (Ctrl-C): re-raised as is.
    Interrupted(PyErr),
}

impl From<Failure> for PyErr {
    fn from(f: Failure) -> PyErr {
        match f {
            Failure::Value(m) => value_error(m),
            Failure::Interrupted(e) => e,
        }
    }
}

fn val(e: impl std::fmt::Display) -> Failure {
    Failure::Value(e.to_string())
}

/// `(rule, sklearn_compatible)` of a solver name; unknown names list the valid ones.
fn rule_of(solver: &str) -> PyResult<(Rule, bool)> {
    Ok(match solver {
        "mu" => (Rule::Mm, true),
        "mm" => (Rule::Mm, false),
        "heuristic" => (Rule::Heuristic, false),
        "me" => (Rule::Me, false),
        _ => {
            return Err(value_error(format!(
                "unknown NMF solver {solver:?}; valid solvers: {}",
                NMF_SOLVERS.join(", ")
            )));
        }
    })
}

/// The objective's penalties with scikit-learn's scaling (`Penalties::sklearn`).
fn penalties(alpha_w: f64, alpha_h: f64, l1_ratio: f64, f: usize, n: usize) -> PyResult<Penalties> {
    if !(0.0..=1.0).contains(&l1_ratio) {
        return Err(value_error(format!(
            "l1_ratio = {l1_ratio} must be in [0, 1]"
        )));
    }
    Ok(Penalties::sklearn(alpha_w, alpha_h, l1_ratio, f, n))
}

struct FitOut<T: Real> {
    w: DMatrix<T>,
    h: DMatrix<T>,
    n_iter: u64,
    reconstruction_err: f64,
    objective: Vec<f64>,
    status: String,
}

fn fit_impl<T: Real>(
    v: DMatrix<T>,
    init: Option<(DMatrix<T>, DMatrix<T>)>,
    k: usize,
    config: BetaNmfConfig,
    max_iter: u64,
    seed: u64,
) -> Result<FitOut<T>, Failure> {
    let (w0, h0) = match init {
        Some((w, h)) => {
            if w.ncols() != k || h.nrows() != k {
                return Err(Failure::Value(format!(
                    "n_components = {k} but the initial W has {} columns and H {} rows",
                    w.ncols(),
                    h.nrows()
                )));
            }
            (w, h)
        }
        None => bench_suite::runner::initial_factors(&v, k, seed).map_err(val)?,
    };
    let mut problem = NmfProblem::new(v, w0, h0, &config).map_err(val)?;
    let mut solver = BetaNmf::new(config).map_err(val)?;
    let mut signals = SignalCheck::default();
    let outcome = Driver::new(Budget::iterations(max_iter))
        .seed(seed)
        .observe(&mut signals, Frequency::Always)
        .run(&mut problem, &mut solver)
        .map_err(val)?;
    if let Some(e) = signals.raised.take() {
        return Err(Failure::Interrupted(e));
    }
    if let Status::Failed { error } = &outcome.status {
        return Err(Failure::Value(error.clone()));
    }
    let d = problem.divergence().map_err(val)?;
    let records = &outcome.trace.records;
    Ok(FitOut {
        n_iter: records.last().map_or(0, |r| r.iteration),
        objective: records.iter().map(|r| r.objective).collect(),
        reconstruction_err: (2.0 * d.max(0.0)).sqrt(),
        status: crate::status_name(&outcome.status),
        w: problem.w().clone(),
        h: problem.h().clone(),
    })
}

fn fit_out_dict<'py, T: Real + Element>(
    py: Python<'py>,
    o: FitOut<T>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("W", arrays::to_numpy(py, o.w, Orient::AsIs))?;
    d.set_item("H", arrays::to_numpy(py, o.h, Orient::AsIs))?;
    d.set_item("n_iter", o.n_iter)?;
    d.set_item("reconstruction_err", o.reconstruction_err)?;
    d.set_item("objective", numpy::PyArray1::from_vec(py, o.objective))?;
    d.set_item("status", o.status)?;
    Ok(d)
}

/// Factorises `X ~ W H` (the work behind `strata.NMF.fit_transform`). `w`, `h`: the
/// initial factors (`init='custom'`), else scikit-learn's 'random' scheme from `seed`
/// (`bench_suite::runner::initial_factors`). Returns a dict with `W`, `H`, `n_iter`,
/// `reconstruction_err` (`sqrt(2 D)`), `objective` (per iteration, 0 included) and
/// `status`. Computes in the precision of `x`.
#[pyfunction]
#[pyo3(signature = (x, w, h, *, n_components, beta, solver, max_iter, tol, alpha_w, alpha_h, l1_ratio, seed))]
#[allow(clippy::too_many_arguments)]
pub fn nmf_fit<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: Option<&Bound<'py, PyAny>>,
    h: Option<&Bound<'py, PyAny>>,
    n_components: usize,
    beta: f64,
    solver: &str,
    max_iter: u64,
    tol: f64,
    alpha_w: f64,
    alpha_h: f64,
    l1_ratio: f64,
    seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let (rule, sklearn) = rule_of(solver)?;
    let v = arrays::read(x, "X", Orient::AsIs)?;
    let (f, n) = match &v {
        Mat::F32(m) => m.shape(),
        Mat::F64(m) => m.shape(),
    };
    let config = BetaNmfConfig {
        beta,
        rule,
        sklearn_compatible: sklearn,
        penalties: penalties(alpha_w, alpha_h, l1_ratio, f, n)?,
        tol,
        me_theta: majorize::nmf::DEFAULT_ME_THETA,
    };
    if n_components == 0 {
        return Err(value_error("n_components must be >= 1"));
    }
    match (w.is_some(), h.is_some()) {
        (true, false) | (false, true) => {
            return Err(value_error("init='custom' needs both W and H"));
        }
        _ => {}
    }
    macro_rules! go {
        ($t:ty, $v:expr) => {{
            let init = match (w, h) {
                (Some(w), Some(h)) => Some((
                    arrays::read_as::<$t>(w, "W", Orient::AsIs)?,
                    arrays::read_as::<$t>(h, "H", Orient::AsIs)?,
                )),
                _ => None,
            };
            let out =
                py.detach(move || fit_impl::<$t>($v, init, n_components, config, max_iter, seed))?;
            fit_out_dict(py, out)
        }};
    }
    match v {
        Mat::F32(v) => go!(f32, v),
        Mat::F64(v) => go!(f64, v),
    }
}

/// Checks `what` finite and `>= 0` (`> 0` when `strict`), naming the first bad entry.
fn check_entries<T: Real>(what: &str, m: &DMatrix<T>, strict: bool) -> Result<(), Failure> {
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            let x = m[(i, j)];
            let ok = x.finite()
                && if strict {
                    x > T::zero()
                } else {
                    x >= T::zero()
                };
            if !ok {
                let need = if strict {
                    "finite and > 0 (beta <= 0)"
                } else {
                    "finite and >= 0"
                };
                return Err(Failure::Value(format!(
                    "NMF {what}: entry ({i}, {j}) = {x} must be {need}"
                )));
            }
        }
    }
    Ok(())
}

fn transform_impl<T: Real>(
    v: DMatrix<T>,
    h: DMatrix<T>,
    config: NmfConfig,
    max_iter: u64,
    tol: f64,
) -> Result<(DMatrix<T>, u64), Failure> {
    config.validate().map_err(val)?;
    let k = h.nrows();
    if h.ncols() != v.ncols() || k == 0 {
        return Err(Failure::Value(format!(
            "X has {} features but components_ is {}x{} (expected k x {})",
            v.ncols(),
            k,
            h.ncols(),
            v.ncols()
        )));
    }
    check_entries("X", &v, config.beta <= 0.0)?;
    check_entries("components_", &h, false)?;
    // scikit-learn's start for 'mu' with fixed H: every entry sqrt(mean(X) / k).
    let mean = v.iter().map(|x| x.to_f64()).sum::<f64>() / v.len().max(1) as f64;
    let mut w = DMatrix::from_element(v.nrows(), k, T::of((mean / k as f64).sqrt()));
    let mut ws = NmfWorkspace::new(v.nrows(), v.ncols(), k).map_err(val)?;
    let div = |w: &DMatrix<T>, ws: &mut NmfWorkspace<T>| {
        if config.sklearn_compatible {
            sklearn_divergence(&v, w, &h, config.beta, ws)
        } else {
            divergence(&v, w, &h, config.beta, ws)
        }
    };
    let mut stop = SklearnStop::new(
        tol,
        if tol > 0.0 {
            div(&w, &mut ws).map_err(val)?
        } else {
            0.0
        },
    );
    let mut signals = SignalCheck::default();
    let mut n_iter = 0;
    for it in 1..=max_iter {
        update_w(&v, &mut w, &h, &config, &mut ws).map_err(val)?;
        n_iter = it;
        if tol > 0.0
            && it % 10 == 0
            && stop.should_stop(it as usize, div(&w, &mut ws).map_err(val)?)
        {
            break;
        }
        if signals.poll() {
            return Err(Failure::Interrupted(
                signals.raised.take().expect("poll returned true"),
            ));
        }
    }
    Ok((w, n_iter))
}

/// `W` for new data with `H = components_` fixed (`strata.NMF.transform`): from
/// `sqrt(mean(X)/k)` everywhere, `max_iter` W-updates of the chosen rule with
/// scikit-learn's stopping rule. Returns `(W, n_iter)` in the precision of `x`.
#[pyfunction]
#[pyo3(signature = (x, h, *, beta, solver, max_iter, tol, alpha_w, alpha_h, l1_ratio))]
#[allow(clippy::too_many_arguments)]
pub fn nmf_transform<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    h: &Bound<'py, PyAny>,
    beta: f64,
    solver: &str,
    max_iter: u64,
    tol: f64,
    alpha_w: f64,
    alpha_h: f64,
    l1_ratio: f64,
) -> PyResult<(Bound<'py, PyAny>, u64)> {
    let (rule, sklearn) = rule_of(solver)?;
    let v = arrays::read(x, "X", Orient::AsIs)?;
    let (f, n) = match &v {
        Mat::F32(m) => m.shape(),
        Mat::F64(m) => m.shape(),
    };
    let config = NmfConfig {
        beta,
        rule,
        penalties: penalties(alpha_w, alpha_h, l1_ratio, f, n)?,
        sklearn_compatible: sklearn,
        me_theta: majorize::nmf::DEFAULT_ME_THETA,
    };
    macro_rules! go {
        ($t:ty, $v:expr) => {{
            let h = arrays::read_as::<$t>(h, "components_", Orient::AsIs)?;
            let (w, it) = py.detach(move || transform_impl::<$t>($v, h, config, max_iter, tol))?;
            Ok((arrays::to_numpy(py, w, Orient::AsIs).into_any(), it))
        }};
    }
    match v {
        Mat::F32(v) => go!(f32, v),
        Mat::F64(v) => go!(f64, v),
    }
}
