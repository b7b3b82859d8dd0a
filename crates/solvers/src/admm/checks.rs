//! Shape checks of restored ADMM state against the network and data (#13): a
//! checkpoint is user data, and a wrong shape must be an error, not a panic in a
//! matrix product.

use autodiff::Real;
use nalgebra::DMatrix;

use super::lifted::Lifted;
use crate::state_check::{check_finite, check_layer_matrices, check_len};
use crate::{NetProblem, SolverError};

/// `W_l` is `d_l x d_{l-1}`, `b_l` has `d_l` entries, `Z_l` is `d_l x N` (every layer),
/// `A_l` is `d_l x N` (hidden layers), one activation per hidden layer.
pub(crate) fn check_lifted<T: Real>(
    what: &str,
    v: &Lifted<T>,
    problem: &NetProblem<T>,
) -> Result<(), SolverError> {
    let widths = problem.net.mlp_view()?.widths;
    let n = problem.train.len();
    let layers = widths.len().saturating_sub(1);
    check_len(what, "w", layers, v.w.len())?;
    check_len(what, "b", layers, v.b.len())?;
    for l in 0..layers {
        check_layer_matrices(what, "w", &v.w[l..=l], &widths[l + 1..=l + 1], widths[l])?;
        check_len(what, &format!("b[{l}]"), widths[l + 1], v.b[l].len())?;
        check_finite(what, &format!("b[{l}]"), v.b[l].as_slice())?;
    }
    check_layer_matrices(what, "z", &v.z, &widths[1..], n)?;
    let hidden = &widths[1..layers.max(1)];
    check_layer_matrices(what, "a", &v.a, hidden, n)?;
    check_len(what, "h", hidden.len(), v.h.len())
}

/// A `K x N` matrix (K = output width), or an empty one when `allow_empty`.
pub(crate) fn check_output_sized<T: Real>(
    what: &str,
    field: &str,
    m: &DMatrix<T>,
    problem: &NetProblem<T>,
    allow_empty: bool,
) -> Result<(), SolverError> {
    if allow_empty && m.is_empty() {
        return Ok(());
    }
    let widths = problem.net.mlp_view()?.widths;
    let k = widths.last().copied().unwrap_or(0);
    check_layer_matrices(
        what,
        field,
        std::slice::from_ref(m),
        &[k],
        problem.train.len(),
    )
}
