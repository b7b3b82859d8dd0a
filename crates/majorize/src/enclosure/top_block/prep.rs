//! The request handling shared by [`super::enclose_top_block`] and the ray bound of lower
//! blocks (`enclosure::ray`): validation, the moving block's tensors and direction, and
//! the block's products `Z0'`, `P'` (given and checked, or computed). Moved here from
//! `enclose_top_block` unchanged (the same checks in the same order, the same errors).

use autodiff::Real;
use nalgebra::DMatrix;
use nets::{Dense, LossKind, Sequential, Targets};

use crate::enclosure::api::{EnclosureRequest, OP, Step, check_output, validate};
use crate::enclosure::downcast;
use crate::enclosure::from_layer::FromLayer;
use crate::error::{MajorizeError, Result};

/// Whether layer `layer`'s weight and bias carry the L2 penalty.
pub(crate) fn penalised(net: &Sequential<f64>, layer: usize) -> (bool, bool) {
    let is = |name: &str| net.param(layer, name).is_some_and(|t| t.penalised);
    (is("weight"), is("bias"))
}

/// `Unsupported` with the message prefixed by the entry point's name `who`.
pub(crate) fn unsupported(who: &str, why: String) -> MajorizeError {
    MajorizeError::Unsupported(format!("{who}: {why}"))
}

/// The first checks: `T = f64`, the engine's validation and L2 check, one direction,
/// a loss among `losses` (the top block: softmax cross-entropy; the ray bound also
/// squared error), `from.layer` a dense step of the plan. Returns the plan and the
/// position of that step in it.
pub(crate) fn head<T: Real>(
    req: &EnclosureRequest<'_, T>,
    layer: usize,
    who: &str,
    losses: &[LossKind],
) -> Result<(Vec<Step>, usize)> {
    if T::dtype_name() != "f64" {
        return Err(unsupported(
            who,
            format!("scalar type {} (f64 only)", T::dtype_name()),
        ));
    }
    let plan = validate(req)?;
    crate::enclosure::extreme::check_l2(req.loss)?;
    if req.directions.len() != 1 {
        return Err(unsupported(
            who,
            format!("{} directions (one only)", req.directions.len()),
        ));
    }
    if !losses.contains(&req.loss.kind) {
        return Err(unsupported(
            who,
            format!("loss {:?} (supported: {losses:?})", req.loss.kind),
        ));
    }
    let at = plan
        .iter()
        .position(|s| matches!(s, Step::Dense(li) if *li == layer))
        .ok_or_else(|| unsupported(who, format!("layer {layer} is not a dense layer")))?;
    Ok((plan, at))
}

/// The moving block as f64: the net, its input, the targets, the block's dense layer,
/// the direction's weight `V` (`rows x cols`, column-major) and bias `β`, `ā`.
pub(crate) struct Block<'a> {
    pub(crate) net: &'a Sequential<f64>,
    pub(crate) a_in: &'a DMatrix<f64>,
    pub(crate) targets: &'a Targets<f64>,
    pub(crate) v: &'a [f64],
    pub(crate) beta: &'a [f64],
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) alpha_max: f64,
}

/// The second checks (after the caller's check of the layers above): the f64 views, the
/// dense layers `from.layer` and `top` (`who`'s "the layers are not dense" otherwise),
/// the direction zero outside the block, the input's shape and finiteness.
pub(crate) fn block<'a, T: Real>(
    req: &'a EnclosureRequest<'_, T>,
    from: &'a FromLayer<'_, T>,
    top: usize,
    who: &str,
) -> Result<(Block<'a>, &'a Dense<f64>, &'a Dense<f64>)> {
    let net: &Sequential<f64> =
        downcast(req.net).ok_or_else(|| unsupported(who, "not f64".into()))?;
    let a_in: &DMatrix<f64> =
        downcast(from.input).ok_or_else(|| unsupported(who, "not f64".into()))?;
    let targets: &Targets<f64> =
        downcast(req.targets).ok_or_else(|| unsupported(who, "not f64".into()))?;
    let dir: &nalgebra::DVector<f64> =
        downcast(&req.directions[0]).ok_or_else(|| unsupported(who, "not f64".into()))?;
    let alpha_max = req.alpha_max[0].to_f64();
    let (Some(d), Some(out)) = (
        net.layers()[from.layer].as_dense(),
        net.layers()[top].as_dense(),
    ) else {
        return Err(unsupported(who, "the layers are not dense".into()));
    };
    let (Some(wi), Some(bi)) = (
        net.param_span(from.layer, "weight"),
        net.param_span(from.layer, "bias"),
    ) else {
        return Err(unsupported(
            who,
            format!("dense layer {} does not expose weight and bias", from.layer),
        ));
    };
    let (lo, hi) = (
        wi.offset.min(bi.offset),
        net.layer_param_offset(from.layer + 1),
    );
    let ds = dir.as_slice();
    if let Some(j) = ds[..lo].iter().chain(&ds[hi..]).position(|x| *x != 0.0) {
        return Err(unsupported(
            who,
            format!(
                "the direction is nonzero outside layer {} (entry {})",
                from.layer,
                if j < lo { j } else { j - lo + hi }
            ),
        ));
    }
    let (rows, n) = (d.weight.ncols(), req.inputs.ncols());
    if a_in.shape() != (rows, n) {
        return Err(MajorizeError::Shape {
            op: OP,
            detail: format!(
                "the input of layer {} is {}x{}, expected {rows}x{n}",
                from.layer,
                a_in.nrows(),
                a_in.ncols()
            ),
        });
    }
    crate::validate::finite(OP, "layer input", a_in)?;
    let blk = Block {
        net,
        a_in,
        targets,
        v: &ds[wi.offset..wi.offset + wi.rows * wi.cols],
        beta: &ds[bi.offset..bi.offset + bi.rows],
        rows: wi.rows,
        cols: wi.cols,
        alpha_max,
    };
    Ok((blk, d, out))
}

/// `Z0'` and `P'` (`d x N`): the given products (checked on two columns, as the engine
/// does), borrowed, or ours, formed in `z0_buf`, `pd_buf`; then the check of a given
/// `value` (finite).
pub(crate) fn products<'a, T: Real>(
    blk: &Block<'a>,
    d: &Dense<f64>,
    from: &'a FromLayer<'_, T>,
    value: Option<T>,
    z0_buf: &'a mut DMatrix<f64>,
    pd_buf: &'a mut DMatrix<f64>,
    who: &str,
) -> Result<(&'a DMatrix<f64>, &'a DMatrix<f64>)> {
    let (a_in, v, beta) = (blk.a_in, blk.v, blk.beta);
    let z0: &DMatrix<f64> = match from.output.and_then(downcast::<_, DMatrix<f64>>) {
        Some(z) => {
            check_output(d, a_in, z, &format_args!("layer {}", from.layer))?;
            z
        }
        None => {
            d.forward_into(a_in, z0_buf)
                .map_err(|e| unsupported(who, format!("forward: {e}")))?;
            z0_buf
        }
    };
    let vm = nalgebra::DMatrixView::from_slice(v, blk.rows, blk.cols);
    let pd: &DMatrix<f64> = match from.output_dir.and_then(downcast::<_, DMatrix<f64>>) {
        Some(p) => {
            let map = crate::enclosure::api::AffineParts {
                weight: v,
                rows: blk.rows,
                cols: blk.cols,
                bias: beta,
            };
            crate::enclosure::api::check_affine_output(
                map,
                a_in,
                p,
                &format_args!("layer {} direction", from.layer),
            )?;
            p
        }
        None => {
            if pd_buf.shape() != z0.shape() {
                *pd_buf = DMatrix::zeros(z0.nrows(), z0.ncols());
            }
            pd_buf.gemm(1.0, &vm, a_in, 0.0);
            for mut c in pd_buf.column_iter_mut() {
                for (x, b) in c.iter_mut().zip(beta) {
                    *x += *b;
                }
            }
            pd_buf
        }
    };
    if let Some(val) = value
        && !val.finite()
    {
        return Err(MajorizeError::NonFinite {
            op: OP,
            what: "value",
            row: 0,
            col: 0,
        });
    }
    Ok((z0, pd))
}
