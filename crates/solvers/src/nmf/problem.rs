//! The beta-NMF problem: data `V` (F x N), factors `W` (F x K), `H` (K x N).

use autodiff::Real;
use majorize::nmf::{self, NmfConfig, NmfWorkspace, Penalties, Rule};
use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use super::{BetaNmfConfig, from_majorize};
use crate::{Evaluation, Problem, SolverError};

/// `V ~ W H` with `V, W, H >= 0` and the objective
/// `D_beta(V | W H) + l1_w sum W + (l2_w/2)||W||^2 + l1_h sum H + (l2_h/2)||H||^2`
/// (in scikit-learn mode the divergence is scikit-learn's masked `_beta_divergence`).
/// Samples are the `N` columns of `V`.
#[derive(Clone, Debug)]
pub struct NmfProblem<T: Real> {
    v: DMatrix<T>,
    pub(crate) w: DMatrix<T>,
    pub(crate) h: DMatrix<T>,
    objective: NmfConfig,
    pub(crate) ws: NmfWorkspace<T>,
}

#[derive(Serialize, Deserialize)]
struct SavedMatrix<T> {
    rows: usize,
    cols: usize,
    /// Column-major entries.
    data: Vec<T>,
}

#[derive(Serialize, Deserialize)]
struct SavedParams<T> {
    w: SavedMatrix<T>,
    h: SavedMatrix<T>,
}

impl<T: Real> NmfProblem<T> {
    /// Validates `V`, `W`, `H` for the configuration's beta (shapes, finiteness,
    /// `V >= 0`, `V > 0` for beta <= 0, strictly positive initial factors) and takes the
    /// objective's beta, penalties and scikit-learn flag from `config`.
    pub fn new(
        v: DMatrix<T>,
        w: DMatrix<T>,
        h: DMatrix<T>,
        config: &BetaNmfConfig,
    ) -> Result<Self, SolverError> {
        config.validate()?;
        nmf::validate_inputs(&v, &w, &h, config.beta).map_err(from_majorize)?;
        if v.is_empty() || w.ncols() == 0 {
            return Err(SolverError::EmptyData(format!(
                "V is {}x{}, rank {}",
                v.nrows(),
                v.ncols(),
                w.ncols()
            )));
        }
        let ws = NmfWorkspace::new(v.nrows(), v.ncols(), w.ncols()).map_err(from_majorize)?;
        let objective = NmfConfig {
            beta: config.beta,
            rule: Rule::Mm,
            me_theta: config.me_theta,
            penalties: config.penalties,
            sklearn_compatible: config.sklearn_compatible,
        };
        Ok(Self {
            v,
            w,
            h,
            objective,
            ws,
        })
    }
    /// The data `V`.
    pub fn v(&self) -> &DMatrix<T> {
        &self.v
    }
    /// The current `W`.
    pub fn w(&self) -> &DMatrix<T> {
        &self.w
    }
    /// The current `H`.
    pub fn h(&self) -> &DMatrix<T> {
        &self.h
    }
    /// The beta of the objective.
    pub fn beta(&self) -> f64 {
        self.objective.beta
    }
    /// The penalties of the objective.
    pub fn penalties(&self) -> Penalties {
        self.objective.penalties
    }
    /// Whether the objective is scikit-learn's masked divergence.
    pub fn sklearn_objective(&self) -> bool {
        self.objective.sklearn_compatible
    }
    /// The objective at the current factors.
    pub fn objective(&mut self) -> Result<f64, SolverError> {
        nmf::objective(&self.v, &self.w, &self.h, &self.objective, &mut self.ws)
            .map_err(from_majorize)
    }
    /// The divergence alone (scikit-learn's form in scikit-learn mode), as its stopping
    /// rule uses.
    pub fn divergence(&mut self) -> Result<f64, SolverError> {
        let r = if self.objective.sklearn_compatible {
            nmf::sklearn::sklearn_divergence(
                &self.v,
                &self.w,
                &self.h,
                self.objective.beta,
                &mut self.ws,
            )
        } else {
            nmf::divergence(&self.v, &self.w, &self.h, self.objective.beta, &mut self.ws)
        };
        r.map_err(from_majorize)
    }
    /// Splits `self` into the data and mutable factors plus workspace (for solvers).
    pub(crate) fn parts(
        &mut self,
    ) -> (
        &DMatrix<T>,
        &mut DMatrix<T>,
        &mut DMatrix<T>,
        &mut NmfWorkspace<T>,
    ) {
        (&self.v, &mut self.w, &mut self.h, &mut self.ws)
    }
}

fn restore<T: Real>(
    name: &str,
    m: SavedMatrix<T>,
    shape: (usize, usize),
) -> Result<DMatrix<T>, SolverError> {
    if (m.rows, m.cols) != shape || m.data.len() != m.rows * m.cols {
        return Err(SolverError::shape(
            format!("NmfProblem::load_params {name}"),
            format!("{}x{}", shape.0, shape.1),
            format!("{}x{} with {} entries", m.rows, m.cols, m.data.len()),
        ));
    }
    if let Some(i) = m.data.iter().position(|x| !x.finite() || *x < T::zero()) {
        return Err(SolverError::NonFinite(format!(
            "NmfProblem::load_params {name}: entry {i} = {} is not finite and >= 0",
            m.data[i]
        )));
    }
    Ok(DMatrix::from_vec(m.rows, m.cols, m.data))
}

impl<T: Real> Problem for NmfProblem<T> {
    fn evaluate(&mut self) -> Evaluation {
        Evaluation::objective(self.objective().unwrap_or(f64::NAN))
    }
    fn num_samples(&self) -> usize {
        self.v.ncols()
    }
    fn save_params(&self) -> serde_json::Value {
        let save = |m: &DMatrix<T>| SavedMatrix {
            rows: m.nrows(),
            cols: m.ncols(),
            data: m.as_slice().to_vec(),
        };
        serde_json::to_value(SavedParams {
            w: save(&self.w),
            h: save(&self.h),
        })
        .unwrap_or(serde_json::Value::Null)
    }
    fn load_params(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        let p: SavedParams<T> = serde_json::from_value(v.clone())?;
        let w = restore("W", p.w, self.w.shape())?;
        let h = restore("H", p.h, self.h.shape())?;
        self.w = w;
        self.h = h;
        Ok(())
    }
    fn params_finite(&self) -> bool {
        self.w.iter().chain(self.h.iter()).all(|x| x.finite())
    }
}
