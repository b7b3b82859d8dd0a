//! The output loss inside the splitting (summed over samples) and the closed-form /
//! Newton output steps.

use autodiff::{Real, Reduction};
use nalgebra::DMatrix;
use nets::loss_prox::hinge_output_step;
use nets::{Loss, LossKind, Targets};

use super::config::OutputLoss;
use super::lifted::dense_targets;
use crate::SolverError;

fn nerr(e: nets::NetsError) -> SolverError {
    SolverError::Problem(format!("ADMM output step: {e}"))
}

/// The per-sample output loss `ell`, summed over samples (never averaged: penalty
/// weights are per sample; solvers rescale by the problem's sample weight when they
/// report values next to the true objective).
#[derive(Debug, Clone)]
pub(crate) struct OutputTerm<T: Real> {
    kind: OutputLoss,
    /// The problem's loss with Sum reduction and no L2 (for `OutputLoss::Problem`).
    sum_loss: Loss,
    /// Dense K x N targets (one-hot for labels); used by least squares and hinge.
    y: DMatrix<T>,
}

impl<T: Real> OutputTerm<T> {
    pub(crate) fn new(
        kind: OutputLoss,
        problem_loss: &Loss,
        targets: &Targets<T>,
        k: usize,
    ) -> Result<Self, SolverError> {
        let y = match kind {
            OutputLoss::Problem => DMatrix::zeros(0, 0),
            _ => dense_targets(targets, k)?,
        };
        if kind == OutputLoss::Hinge
            && let Some(v) = y.iter().find(|v| !(**v == T::zero() || **v == T::one()))
        {
            return Err(SolverError::Problem(format!(
                "the ADMM hinge output loss needs 0/1 targets, found {v}"
            )));
        }
        if kind == OutputLoss::Problem && problem_loss.kind == LossKind::MulticlassHinge {
            return Err(SolverError::Problem(
                "ADMM output loss `Problem` cannot use the multiclass hinge (no prox); \
                 choose OutputLoss::Hinge (one-vs-all) or LeastSquares"
                    .into(),
            ));
        }
        Ok(OutputTerm {
            kind,
            sum_loss: Loss::new(problem_loss.kind, Reduction::Sum),
            y,
        })
    }

    /// `sum_n ell(z_n, y_n)`.
    pub(crate) fn value(&self, z: &DMatrix<T>, targets: &Targets<T>) -> Result<f64, SolverError> {
        Ok(match self.kind {
            OutputLoss::LeastSquares => {
                0.5 * z
                    .iter()
                    .zip(self.y.iter())
                    .map(|(a, b)| (a.to_f64() - b.to_f64()).powi(2))
                    .sum::<f64>()
            }
            OutputLoss::Hinge => z
                .iter()
                .zip(self.y.iter())
                .map(|(a, b)| {
                    let (a, b) = (a.to_f64(), b.to_f64());
                    if b > 0.5 {
                        (1.0 - a).max(0.0)
                    } else {
                        a.max(0.0)
                    }
                })
                .sum(),
            OutputLoss::Problem => self.sum_loss.value(z, targets).map_err(nerr)?.to_f64(),
        })
    }

    /// Taylor's output step: `Z <- argmin ell(Z) + <Z, lambda> + beta ||Z - m||^2`,
    /// column by column (ALGORITHMS.md 2.2). `m` is overwritten with scratch values.
    pub(crate) fn taylor_step(
        &self,
        m: &mut DMatrix<T>,
        lambda: &DMatrix<T>,
        beta: f64,
        targets: &Targets<T>,
        z: &mut DMatrix<T>,
    ) -> Result<(), SolverError> {
        match self.kind {
            OutputLoss::LeastSquares => {
                // (z - y) + lambda + 2 beta (z - m) = 0.
                let c = 1.0 / (1.0 + 2.0 * beta);
                for (((zo, &mi), &li), &yi) in z
                    .iter_mut()
                    .zip(m.iter())
                    .zip(lambda.iter())
                    .zip(self.y.iter())
                {
                    *zo = T::of(c * (yi.to_f64() - li.to_f64() + 2.0 * beta * mi.to_f64()));
                }
            }
            OutputLoss::Hinge => {
                for (((zo, &mi), &li), &yi) in z
                    .iter_mut()
                    .zip(m.iter())
                    .zip(lambda.iter())
                    .zip(self.y.iter())
                {
                    let v = hinge_output_step(yi.to_f64() > 0.5, mi.to_f64(), li.to_f64(), beta)
                        .map_err(nerr)?;
                    *zo = T::of(v);
                }
            }
            OutputLoss::Problem => {
                // prox_{t ell}(v) with t = 1 / (2 beta), v = m - lambda / (2 beta).
                let s = T::of(1.0 / (2.0 * beta));
                for (mi, &li) in m.iter_mut().zip(lambda.iter()) {
                    *mi -= s * li;
                }
                self.sum_loss
                    .output_prox(targets, m, 1.0 / (2.0 * beta), z)
                    .map_err(nerr)?;
            }
        }
        Ok(())
    }
}
