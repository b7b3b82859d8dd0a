//! Reading the (W_l, b_l) chain out of a [`Sequential`] MLP and writing it back: the
//! network stays the one source of truth for the weights (the driver evaluates and
//! checkpoints it), the lifted solvers keep only their auxiliary variables.

use autodiff::Real;
use nalgebra::{DMatrix, DVector};
use nets::{Loss, LossKind, MlpView, Sequential};

use crate::SolverError;

/// Weights, biases and hidden activations of an MLP (`w[l-1] = W_l`, `b[l-1] = b_l`,
/// `acts[l-1] = h_l` for `l = 1..L-1`).
pub(crate) struct Layers<T: Real> {
    pub w: Vec<DMatrix<T>>,
    pub b: Vec<DVector<T>>,
    pub view: MlpView,
}

/// Copies the dense chain of `net` (errors unless it is an MLP in the sense of
/// [`Sequential::mlp_view`]).
pub(crate) fn read_layers<T: Real>(
    net: &Sequential<T>,
    solver: &str,
) -> Result<Layers<T>, SolverError> {
    let view = net
        .mlp_view()
        .map_err(|e| SolverError::NotApplicable(format!("{solver} needs an MLP: {e}")))?;
    let l_count = view.num_layers();
    let mut w = Vec::with_capacity(l_count);
    let mut b = Vec::with_capacity(l_count);
    for l in 0..l_count {
        let d = net
            .dense(l)
            .ok_or_else(|| SolverError::Problem(format!("{solver}: dense layer {l} missing")))?;
        crate::linalg::check_finite(
            &d.weight,
            &format!("{solver}: W_{} read from the network", l + 1),
        )?;
        crate::linalg::check_finite_vec(
            &d.bias,
            &format!("{solver}: b_{} read from the network", l + 1),
        )?;
        w.push(d.weight.clone());
        b.push(d.bias.clone());
    }
    Ok(Layers { w, b, view })
}

/// Replaces `w`, `b` by the dense chain of `net` ([`read_layers`]), erroring if the
/// network no longer has the layer shapes of `w` (the ones the solver state was built for).
/// Returns whether any weight or bias differs from what `w`, `b` held (the network was
/// changed between steps, so products the solver kept are stale).
pub(crate) fn reload_layers<T: Real>(
    net: &Sequential<T>,
    w: &mut Vec<DMatrix<T>>,
    b: &mut Vec<DVector<T>>,
    solver: &str,
) -> Result<bool, SolverError> {
    let layers = read_layers(net, solver)?;
    if layers.w.len() != w.len()
        || layers
            .w
            .iter()
            .zip(w.iter())
            .any(|(a, b)| a.shape() != b.shape())
    {
        return Err(SolverError::Problem(format!(
            "{solver}: the network changed shape since init"
        )));
    }
    let changed = layers.w != *w || layers.b != *b;
    *w = layers.w;
    *b = layers.b;
    Ok(changed)
}

/// Copies `w`, `b` into the dense layers of `net` (shapes are checked first).
pub(crate) fn write_layers<T: Real>(
    net: &mut Sequential<T>,
    w: &[DMatrix<T>],
    b: &[DVector<T>],
    solver: &str,
) -> Result<(), SolverError> {
    for (l, (wl, bl)) in w.iter().zip(b).enumerate() {
        let d = net
            .dense_mut(l)
            .ok_or_else(|| SolverError::Problem(format!("{solver}: dense layer {l} missing")))?;
        if d.weight.shape() != wl.shape() || d.bias.len() != bl.len() {
            return Err(SolverError::shape(
                format!("{solver}: layer {} weights", l + 1),
                format!("{:?}", d.weight.shape()),
                format!("{:?}", wl.shape()),
            ));
        }
        d.weight.copy_from(wl);
        d.bias.copy_from(bl);
    }
    Ok(())
}

/// Rejects losses without an output prox / curvature bound (the multiclass hinge).
pub(crate) fn check_loss(loss: &Loss, solver: &'static str) -> Result<(), SolverError> {
    loss.validate()
        .map_err(|e| SolverError::Problem(format!("{solver}: {e}")))?;
    if loss.kind == LossKind::MulticlassHinge {
        return Err(SolverError::NotApplicable(format!(
            "{solver}: loss MulticlassHinge is not supported (needs a smooth loss: Mse, SoftmaxCrossEntropy or Logistic)"
        )));
    }
    Ok(())
}
