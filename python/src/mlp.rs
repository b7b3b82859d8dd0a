//! Multilayer perceptrons for `strata.MLPClassifier` / `strata.MLPRegressor`.
//!
//! `mlp_fit` builds the network (`bench_suite::runner::initial_network`, the same
//! seeded initial weights as `cargo xtask compare`), the loss (softmax cross-entropy on
//! labels or squared error, mean over samples, L2 `alpha / n` so that the objective is
//! scikit-learn's `mean loss + alpha/(2 n) sum ||W||^2`), looks the solver up by name in
//! `bench_suite::runner::solver_registry()` (every network solver there is available;
//! keyword options replace fields of its documented default configuration through
//! `SolverCtx::options`) and runs it under `solvers::Driver` with an iteration budget.
//! `mlp_forward` rebuilds the network from `coefs_` / `intercepts_` and evaluates it.
//!
//! Weight layout: strata's `W_l` is `d_l x d_{l-1}` column-major, which is exactly the
//! memory of scikit-learn's `coefs_[l]` (`d_{l-1} x d_l`, C order), so both directions
//! are one slice copy (in) or none (out).

use std::collections::BTreeMap;

use autodiff::Real;
use bench_suite::problems::HiddenActivation;
use bench_suite::runner::{Built, Factory, INIT_STREAM, SolverCtx, SolverEntry, solver_registry};
use nalgebra::{DMatrix, DVector};
use nets::{
    Activation, Dataset, Dense, Init, Layer, Loss, LossKind, Reduction, Sequential, Targets,
};
use numpy::{Element, PyArray1, PyReadonlyArray1};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use solvers::{Budget, Driver, Frequency, NetProblem, Record, SolverError, Status};

use crate::arrays::{self, Mat, Orient};
use crate::interrupt::SignalCheck;
use crate::value_error;

/// The registry's network solvers (those that train a `NetProblem`).
fn network_solvers() -> Vec<SolverEntry> {
    solver_registry()
        .into_iter()
        .filter(|e| matches!(e.factory, Factory::Network { .. }))
        .collect()
}

/// Names and one-line descriptions of every network solver in the registry, in report
/// order (what `solver=` accepts).
#[pyfunction]
pub fn solver_names() -> Vec<(String, String)> {
    network_solvers()
        .iter()
        .map(|e| (e.name.to_string(), e.description.to_string()))
        .collect()
}

fn find_solver(name: &str) -> PyResult<SolverEntry> {
    let all = network_solvers();
    match all.iter().find(|e| e.name == name) {
        Some(e) => Ok(e.clone()),
        None => {
            let names: Vec<&str> = all.iter().map(|e| e.name).collect();
            Err(value_error(format!(
                "unknown solver {name:?}; valid solvers: {}",
                names.join(", ")
            )))
        }
    }
}

fn activation(name: &str) -> PyResult<Activation> {
    Ok(match name {
        "relu" => Activation::Relu,
        "tanh" => Activation::Tanh,
        "logistic" => Activation::Sigmoid,
        "identity" => Activation::Identity,
        _ => {
            return Err(value_error(format!(
                "unknown activation {name:?}; valid: relu, tanh, logistic, identity"
            )));
        }
    })
}

/// The initial network: relu / tanh exactly as the comparison runner draws it (He /
/// Glorot uniform from `seed` on stream `INIT_STREAM`), logistic / identity with
/// Glorot uniform from the same stream.
fn initial_net<T: Real>(
    widths: &[usize],
    act: Activation,
    seed: u64,
) -> Result<Sequential<T>, String> {
    let r = match act {
        Activation::Relu => {
            bench_suite::runner::initial_network(widths, HiddenActivation::Relu, seed)
        }
        Activation::Tanh => {
            bench_suite::runner::initial_network(widths, HiddenActivation::Tanh, seed)
        }
        _ => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(INIT_STREAM);
            Sequential::mlp(widths, act, Init::GlorotUniform, &mut rng)
        }
    };
    r.map_err(|e| e.to_string())
}

/// Replaces the mini-batch size of the solver's default configuration: its `batching`
/// (`MiniBatch { size, shuffle }`) or `batch_size` field; an error for full-batch methods.
fn batch_option(
    entry: &SolverEntry,
    ctx: &SolverCtx,
    size: usize,
    options: &mut BTreeMap<String, Value>,
) -> PyResult<()> {
    let Factory::Network { f64: make, .. } = entry.factory else {
        return Err(value_error("not a network solver"));
    };
    let built: Built<NetProblem<f64>> = make(ctx).map_err(value_error)?;
    let hp = built.hyperparameters;
    if let Some(b) = hp.get("batching") {
        let shuffle = b
            .pointer("/MiniBatch/shuffle")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        options.insert(
            "batching".into(),
            serde_json::json!({ "MiniBatch": { "size": size, "shuffle": shuffle } }),
        );
    } else if hp.contains_key("batch_size") {
        options.insert("batch_size".into(), serde_json::json!(size));
    } else {
        return Err(value_error(format!(
            "solver {:?} has no mini-batch setting (it is a full-batch method); use batch_size='auto'",
            entry.name
        )));
    }
    Ok(())
}

/// What a training run hands back to Python.
struct FitOut<T: Real> {
    layers: Vec<(DMatrix<T>, DVector<T>)>,
    records: Vec<Record>,
    status: Status,
    solver: String,
    hyperparameters: BTreeMap<String, Value>,
}

enum Failure {
    Value(String),
    Runtime(String),
    Interrupted(PyErr),
}

impl From<Failure> for PyErr {
    fn from(f: Failure) -> PyErr {
        match f {
            Failure::Value(m) => value_error(m),
            Failure::Runtime(m) => PyRuntimeError::new_err(m),
            Failure::Interrupted(e) => e,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn fit_impl<T: Real + RegistryReal>(
    x: DMatrix<T>,
    targets: Targets<T>,
    outputs: usize,
    hidden: Vec<usize>,
    act: Activation,
    loss: Loss,
    max_iter: u64,
    seed: u64,
    entry: SolverEntry,
    ctx: SolverCtx,
) -> Result<FitOut<T>, Failure> {
    let v = |e: &dyn std::fmt::Display| Failure::Value(e.to_string());
    let mut widths = vec![x.nrows()];
    widths.extend(&hidden);
    widths.push(outputs);
    let train = Dataset::new(x, targets).map_err(|e| v(&e))?;
    let net = initial_net::<T>(&widths, act, seed).map_err(Failure::Value)?;
    let mut problem = NetProblem::new(net, loss, train, None).map_err(|e| v(&e))?;
    let built = T::make(&entry, &ctx).map_err(|e| v(&e))?;
    let mut solver = built.solver;
    let mut signals = SignalCheck::default();
    let outcome = Driver::new(Budget::iterations(max_iter))
        .seed(seed)
        .observe(&mut signals, Frequency::Always)
        .run(&mut problem, &mut solver)
        .map_err(|e| v(&e))?;
    if let Some(e) = signals.raised.take() {
        return Err(Failure::Interrupted(e));
    }
    if let Status::Failed { error } = &outcome.status {
        return Err(Failure::Runtime(format!(
            "solver {:?} failed: {error}",
            entry.name
        )));
    }
    if let Status::NotApplicable { reason } = &outcome.status {
        return Err(Failure::Runtime(format!(
            "solver {:?} does not apply to this network: {reason}",
            entry.name
        )));
    }
    let layers = (0..problem.net.num_dense())
        .filter_map(|l| problem.net.dense(l))
        .map(|d| (d.weight.clone(), d.bias.clone()))
        .collect();
    Ok(FitOut {
        layers,
        records: outcome.trace.records,
        status: outcome.status,
        solver: solver.name(),
        hyperparameters: built.hyperparameters,
    })
}

/// Picks the registry factory of the scalar type.
trait RegistryReal: Real + Element {
    fn make(entry: &SolverEntry, ctx: &SolverCtx) -> Result<Built<NetProblem<Self>>, SolverError>;
}

impl RegistryReal for f32 {
    fn make(entry: &SolverEntry, ctx: &SolverCtx) -> Result<Built<NetProblem<f32>>, SolverError> {
        match entry.factory {
            Factory::Network { f32, .. } => f32(ctx),
            Factory::Nmf { .. } => Err(SolverError::Problem("not a network solver".into())),
        }
    }
}

impl RegistryReal for f64 {
    fn make(entry: &SolverEntry, ctx: &SolverCtx) -> Result<Built<NetProblem<f64>>, SolverError> {
        match entry.factory {
            Factory::Network { f64, .. } => f64(ctx),
            Factory::Nmf { .. } => Err(SolverError::Problem("not a network solver".into())),
        }
    }
}

/// The trace as columns: every `Record` field (NaN where absent) and every extra by name.
fn trace_dict<'py>(py: Python<'py>, records: &[Record]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let col = |f: &dyn Fn(&Record) -> f64| records.iter().map(f).collect::<Vec<f64>>();
    let opt = |x: Option<f64>| x.unwrap_or(f64::NAN);
    let fields: [(&str, Vec<f64>); 12] = [
        ("iteration", col(&|r| r.iteration as f64)),
        ("epochs", col(&|r| r.epochs)),
        ("samples_seen", col(&|r| r.samples_seen as f64)),
        ("wall_time_s", col(&|r| r.wall_time_s)),
        ("objective", col(&|r| r.objective)),
        ("surrogate", col(&|r| opt(r.surrogate))),
        ("train_accuracy", col(&|r| opt(r.train_accuracy))),
        ("test_objective", col(&|r| opt(r.test_objective))),
        ("test_accuracy", col(&|r| opt(r.test_accuracy))),
        ("forward", col(&|r| r.forward as f64)),
        ("backward", col(&|r| r.backward as f64)),
        ("inner_solves", col(&|r| r.inner_solves as f64)),
    ];
    for (name, values) in fields {
        d.set_item(name, PyArray1::from_vec(py, values))?;
    }
    let mut names: Vec<&str> = Vec::new();
    for r in records {
        for (k, _) in &r.extras {
            if !names.contains(&k.as_str()) {
                names.push(k);
            }
        }
    }
    for name in names {
        let values = col(&|r| {
            r.extras
                .iter()
                .find(|(k, _)| k == name)
                .map_or(f64::NAN, |(_, x)| *x)
        });
        d.set_item(name, PyArray1::from_vec(py, values))?;
    }
    Ok(d)
}

fn out_dict<'py, T: Real + Element>(py: Python<'py>, o: FitOut<T>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let coefs = PyList::empty(py);
    let intercepts = PyList::empty(py);
    for (w, b) in o.layers {
        coefs.append(arrays::to_numpy(py, w, Orient::SamplesAsColumns))?;
        let b: Vec<T> = b.data.into();
        intercepts.append(PyArray1::from_vec(py, b))?;
    }
    d.set_item("coefs", coefs)?;
    d.set_item("intercepts", intercepts)?;
    d.set_item("n_iter", o.records.last().map_or(0, |r| r.iteration))?;
    d.set_item("trace", trace_dict(py, &o.records)?)?;
    d.set_item("status", crate::status_name(&o.status))?;
    d.set_item("diverged", matches!(o.status, Status::Diverged { .. }))?;
    d.set_item("solver", o.solver)?;
    d.set_item(
        "hyperparameters",
        serde_json::to_string(&o.hyperparameters).unwrap_or_default(),
    )?;
    Ok(d)
}

fn labels(y: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
    let a: PyReadonlyArray1<'_, i64> = y
        .extract()
        .map_err(|_| PyTypeError::new_err("class labels must be a 1-D int64 NumPy array"))?;
    a.as_array()
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            usize::try_from(l)
                .map_err(|_| value_error(format!("label {l} at sample {i} is negative")))
        })
        .collect()
}

/// Trains an MLP (the work behind `MLPClassifier.fit` / `MLPRegressor.fit`). `y`: int64
/// labels in `0..n_classes` when `n_classes` is given (softmax cross-entropy), else a
/// `(n, t)` float array (squared error). `options`: a JSON object of solver fields.
/// Returns a dict: `coefs`, `intercepts`, `n_iter`, `trace` (dict of arrays), `status`,
/// `diverged`, `solver` (its full name), `hyperparameters` (JSON). Computes in the
/// precision of `x`.
#[pyfunction]
#[pyo3(signature = (x, y, *, n_classes, hidden, activation, alpha, max_iter, batch_size, seed, solver, options))]
#[allow(clippy::too_many_arguments)]
pub fn mlp_fit<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    n_classes: Option<usize>,
    hidden: Vec<usize>,
    activation: &str,
    alpha: f64,
    max_iter: u64,
    batch_size: Option<usize>,
    seed: u64,
    solver: &str,
    options: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let entry = find_solver(solver)?;
    let act = self::activation(activation)?;
    let x = arrays::read(x, "X", Orient::SamplesAsColumns)?;
    let n = match &x {
        Mat::F32(m) => m.ncols(),
        Mat::F64(m) => m.ncols(),
    };
    if !(alpha >= 0.0 && alpha.is_finite()) {
        return Err(value_error(format!(
            "alpha = {alpha} must be >= 0 and finite"
        )));
    }
    let kind = if n_classes.is_some() {
        LossKind::SoftmaxCrossEntropy
    } else {
        LossKind::Mse
    };
    let loss = Loss::new(kind, Reduction::Mean).with_l2(alpha / n.max(1) as f64);
    let mut opts: BTreeMap<String, Value> = match serde_json::from_str::<Value>(options) {
        Ok(Value::Object(m)) => m.into_iter().collect(),
        Ok(_) | Err(_) => {
            return Err(value_error(format!(
                "options must be a JSON object, got {options}"
            )));
        }
    };
    let mut ctx = SolverCtx {
        loss: Some(kind),
        ..Default::default()
    };
    if let Some(b) = batch_size {
        if b == 0 {
            return Err(value_error("batch_size must be >= 1"));
        }
        batch_option(&entry, &ctx, b, &mut opts)?;
    }
    ctx.options = opts;
    macro_rules! go {
        ($t:ty, $x:expr) => {{
            let (targets, outputs) = match n_classes {
                Some(k) => (
                    Targets::Labels {
                        labels: labels(y)?,
                        classes: k,
                    },
                    k,
                ),
                None => {
                    let m = arrays::read_as::<$t>(y, "y", Orient::SamplesAsColumns)?;
                    let t = m.nrows();
                    (Targets::Dense(m), t)
                }
            };
            let out = py.detach(move || {
                fit_impl::<$t>(
                    $x, targets, outputs, hidden, act, loss, max_iter, seed, entry, ctx,
                )
            })?;
            out_dict(py, out)
        }};
    }
    match x {
        Mat::F32(x) => go!(f32, x),
        Mat::F64(x) => go!(f64, x),
    }
}

fn read_vector_as<T: Real>(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<DVector<T>> {
    if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, f64>>() {
        return Ok(DVector::from_iterator(
            a.len()?,
            a.as_array().iter().map(|&x| T::of(x)),
        ));
    }
    if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, f32>>() {
        return Ok(DVector::from_iterator(
            a.len()?,
            a.as_array().iter().map(|&x| T::of(f64::from(x))),
        ));
    }
    Err(PyTypeError::new_err(format!(
        "{name} must be a 1-D float32 or float64 NumPy array"
    )))
}

fn forward_impl<T: Real>(
    x: &DMatrix<T>,
    layers: Vec<(DMatrix<T>, DVector<T>)>,
    act: Activation,
    softmax: bool,
) -> Result<DMatrix<T>, String> {
    let last = layers.len().saturating_sub(1);
    let mut net_layers: Vec<Box<dyn Layer<T>>> = Vec::new();
    for (l, (w, b)) in layers.into_iter().enumerate() {
        net_layers.push(Box::new(Dense::new(w, b).map_err(|e| e.to_string())?));
        if l < last {
            net_layers.push(Box::new(act));
        }
    }
    let net = Sequential::from_layers(net_layers).map_err(|e| e.to_string())?;
    let mut out = net.predict(x).map_err(|e| e.to_string())?;
    if softmax {
        // Shifted softmax per sample (column).
        for mut c in out.column_iter_mut() {
            let m = c.max();
            c.apply(|z| *z = (*z - m).exp());
            let s = c.sum();
            c /= s;
        }
    }
    Ok(out)
}

/// Outputs of the network `coefs` / `intercepts` (scikit-learn layout) with hidden
/// activation `activation` on `x` (`n x d`): `(n x k)`, softmax probabilities when
/// `softmax`. Computes in the precision of `x`.
#[pyfunction]
#[pyo3(signature = (x, coefs, intercepts, *, activation, softmax))]
pub fn mlp_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    coefs: Vec<Bound<'py, PyAny>>,
    intercepts: Vec<Bound<'py, PyAny>>,
    activation: &str,
    softmax: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let act = self::activation(activation)?;
    if coefs.len() != intercepts.len() || coefs.is_empty() {
        return Err(value_error(format!(
            "{} coefficient matrices but {} intercept vectors (need the same number, >= 1)",
            coefs.len(),
            intercepts.len()
        )));
    }
    macro_rules! go {
        ($t:ty, $x:expr) => {{
            let mut layers = Vec::with_capacity(coefs.len());
            for (l, (w, b)) in coefs.iter().zip(&intercepts).enumerate() {
                layers.push((
                    arrays::read_as::<$t>(w, &format!("coefs_[{l}]"), Orient::SamplesAsColumns)?,
                    read_vector_as::<$t>(b, &format!("intercepts_[{l}]"))?,
                ));
            }
            let x = $x;
            let out = py
                .detach(move || forward_impl::<$t>(&x, layers, act, softmax))
                .map_err(value_error)?;
            Ok(arrays::to_numpy(py, out, Orient::SamplesAsColumns).into_any())
        }};
    }
    match arrays::read(x, "X", Orient::SamplesAsColumns)? {
        Mat::F32(x) => go!(f32, x),
        Mat::F64(x) => go!(f64, x),
    }
}
