//! beta-NMF as a solver: [`NmfProblem`] (the factorisation `V ~ W H` and its true
//! objective, the beta-divergence plus penalties) and [`BetaNmf`] (multiplicative MM,
//! heuristic or ME updates from `majorize::nmf`, optionally scikit-learn-exact).
//!
//! The driver records the objective after every iteration through
//! [`crate::Problem::evaluate`]. One iteration updates `W` then `H`.
//!
//! ```
//! use majorize::nmf::Rule;
//! use nalgebra::DMatrix;
//! use solvers::nmf::{BetaNmf, BetaNmfConfig, NmfProblem};
//! use solvers::{Budget, Driver, Status};
//!
//! let v = DMatrix::from_fn(6, 5, |i, j| 0.5 + ((i * 3 + j) % 4) as f64);
//! let w = DMatrix::from_element(6, 2, 1.0) + DMatrix::from_fn(6, 2, |i, j| 0.1 * (i + j) as f64);
//! let h = DMatrix::from_fn(2, 5, |i, j| 0.5 + 0.1 * (i * 5 + j) as f64);
//! let config = BetaNmfConfig { beta: 1.0, rule: Rule::Mm, ..Default::default() };
//! let mut problem = NmfProblem::new(v, w, h, &config)?;
//! let mut solver = BetaNmf::new(config)?;
//! let out = Driver::new(Budget::iterations(50)).run(&mut problem, &mut solver)?;
//! assert_eq!(out.status, Status::BudgetExhausted(solvers::BudgetKind::Iterations));
//! let obj: Vec<f64> = out.trace.records.iter().map(|r| r.objective).collect();
//! assert_eq!(obj.len(), 51);
//! assert!(obj.windows(2).all(|p| p[1] <= p[0] * (1.0 + 1e-12)));
//! # Ok::<(), solvers::SolverError>(())
//! ```

mod problem;
mod solver;

pub use problem::NmfProblem;
pub use solver::{BetaNmf, BetaNmfConfig};

use majorize::MajorizeError;

use crate::SolverError;

/// Maps a `majorize` error to the solver error carrying the same facts.
pub(crate) fn from_majorize(e: MajorizeError) -> SolverError {
    match e {
        MajorizeError::Shape { op, detail } => SolverError::ShapeMismatch {
            what: op.to_string(),
            expected: "V F x N, W F x K, H K x N".into(),
            got: detail,
        },
        MajorizeError::NonFinite { .. } => SolverError::NonFinite(e.to_string()),
        MajorizeError::InvalidParameter {
            name,
            value,
            reason,
        } => SolverError::config("BetaNmf", name, value, reason),
        other => SolverError::Problem(other.to_string()),
    }
}
