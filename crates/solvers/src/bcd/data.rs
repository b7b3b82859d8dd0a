//! The training data a lifted solver sees: inputs, targets and the loss.

use autodiff::Real;
use nalgebra::DMatrix;
use nets::{Dataset, Loss, Targets};

/// Inputs `X = V_0` (`d_0 x N`), targets and loss of a full-batch lifted method.
///
/// Lifted objectives are written in **sum form** (data term `sum_n ell(z_n, y_n)`, as in
/// the BCD reference code and the MAC paper); a `Mean` loss multiplies the whole
/// penalised objective by `1/N` ([`LiftedData::weight`]), which changes no iterate. The
/// L2 penalty `(l2/2)||W||^2` of a `Mean` loss becomes `(N l2 / 2)||W||^2` in sum form.
#[derive(Clone, Copy, Debug)]
pub struct LiftedData<'a, T: Real> {
    /// Inputs, `d_0 x N`.
    pub x: &'a DMatrix<T>,
    /// Targets (labels or dense `d_L x N`).
    pub targets: &'a Targets<T>,
    /// The training loss (its reduction and L2 coefficient are honoured).
    pub loss: &'a Loss,
}

impl<'a, T: Real> LiftedData<'a, T> {
    /// The data of a [`Dataset`] with a loss.
    pub fn new(data: &'a Dataset<T>, loss: &'a Loss) -> Self {
        LiftedData {
            x: data.inputs(),
            targets: data.targets(),
            loss,
        }
    }

    /// Number of samples N.
    pub fn n(&self) -> usize {
        self.x.ncols()
    }

    /// Weight of one sample in the true objective (1 for Sum, 1/N for Mean): reported
    /// penalised values are `weight * (sum-form value)`.
    pub fn weight(&self) -> f64 {
        self.loss.sample_weight(self.n())
    }

    /// L2 coefficient in sum form: `l2 / weight`.
    pub fn l2_sum(&self) -> f64 {
        self.loss.l2 / self.weight()
    }

    /// Sum-form data term `sum_n ell(out_n, y_n)`.
    pub fn data_term(&self, out: &DMatrix<T>) -> Result<f64, crate::SolverError> {
        let v = self
            .loss
            .value(out, self.targets)
            .map_err(|e| crate::SolverError::Problem(e.to_string()))?;
        Ok(v.to_f64() / self.weight())
    }
}
