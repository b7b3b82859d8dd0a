//! The ray (forward band) bound of a **lower** hidden block: the top block's
//! chord/tangent bound ([`super::enclose_top_block`]) generalised to a direction that
//! moves any hidden dense layer `l` of a ReLU MLP (dense + ReLU layers above it, one
//! final dense layer, softmax cross-entropy), with an a-priori floating-point slack
//! (docs/MAJORIZE.md, "The ray bound of a lower block (rigorous; session 16, in
//! progress)", steps R1-R6; the exact-arithmetic bound was measured in
//! `bench-suite/examples/ray_certificate`).
//!
//! **What is certified** (as the top block's): for every `a` in `[0, alpha_max]`, both
//! the exact objective from the block's kept input `A` at the weights `x + a v` and the
//! driver's record (block MM's `forward_trial` from the block through every layer above,
//! nets' loss value, the penalty in f64, at the weights [`super::apply_step`] writes) lie
//! under [`RayBound::upper_bound`], and the exact objective at `a = 0` is within `slack`
//! of `value`. Preconditions as [`super::enclose_top_block`].
//!
//! **Scope.** `T = f64`, one direction, zero outside layer `from.layer`; anything else
//! returns [`MajorizeError::Unsupported`]. Not wired into a solver yet (`pub(crate)`).

mod band;
mod bound;
#[cfg(test)]
mod tests;

use autodiff::Real;
use nalgebra::{DMatrix, DVector};
use nets::{Activation, Dense, LossKind, Sequential, Targets};

use super::api::{EnclosureRequest, OP, Step, check_output, to_t_up, validate};
use super::downcast;
use super::from_layer::FromLayer;
use super::top_block::RayBound;
use crate::error::{MajorizeError, Result};

/// Buffers of [`enclose_ray`], kept between calls (resized only when a shape changes).
#[derive(Debug, Default)]
pub(crate) struct RayWorkspace {
    pub(crate) z0: DMatrix<f64>,
    pub(crate) pd: DMatrix<f64>,
    /// `Ĥ0_k`, `k = 0..m-1` (`d_k x N`).
    pub(crate) act: Vec<DMatrix<f64>>,
    /// `Ẑ0_k`, `k = 1..m` at index `k - 1` (the last one the logits).
    pub(crate) zh: Vec<DMatrix<f64>>,
    /// The band's `sL_k`, `sU_k` (`k = 0..m-1`; for `k < m - 1` overwritten by the
    /// centre `c` and radius `r'` of the next dense layer's input).
    pub(crate) sl: Vec<DMatrix<f64>>,
    pub(crate) su: Vec<DMatrix<f64>>,
    /// Centre `μ` and radius of layer `k + 1`'s slopes at index `k` (`k + 1 < m`).
    pub(crate) mu: Vec<DMatrix<f64>>,
    pub(crate) rad: Vec<DMatrix<f64>>,
    /// `|W_k|`, `k = 1..m` at index `k - 1`.
    pub(crate) absw: Vec<DMatrix<f64>>,
    pub(crate) grad: DMatrix<f64>,
    pub(crate) c: DMatrix<f64>,
    pub(crate) mtop: DMatrix<f64>,
    pub(crate) r: DMatrix<f64>,
    pub(crate) col: Vec<f64>,
    pub(crate) col2: Vec<f64>,
}

fn shaped(v: &mut Vec<DMatrix<f64>>, shapes: impl Iterator<Item = (usize, usize)>) {
    let shapes: Vec<(usize, usize)> = shapes.collect();
    v.truncate(shapes.len());
    for (i, sh) in shapes.into_iter().enumerate() {
        if i == v.len() {
            v.push(DMatrix::zeros(sh.0, sh.1));
        } else if v[i].shape() != sh {
            v[i] = DMatrix::zeros(sh.0, sh.1);
        }
    }
}

impl RayWorkspace {
    /// Shapes every buffer for `p` (no allocation when the shapes are unchanged, but for
    /// the short list of shapes).
    pub(crate) fn shape(&mut self, p: &Parts<'_>) {
        let n = p.a_in.ncols();
        let m = p.above.len();
        let d0 = p.z0.nrows();
        let hidden =
            || std::iter::once(d0).chain(p.above[..m - 1].iter().map(|l| l.weight.nrows()));
        shaped(&mut self.act, hidden().map(|d| (d, n)));
        shaped(&mut self.sl, hidden().map(|d| (d, n)));
        shaped(&mut self.su, hidden().map(|d| (d, n)));
        shaped(&mut self.zh, p.above.iter().map(|l| (l.weight.nrows(), n)));
        shaped(
            &mut self.mu,
            p.above[..m - 1].iter().map(|l| (l.weight.nrows(), n)),
        );
        shaped(
            &mut self.rad,
            p.above[..m - 1].iter().map(|l| (l.weight.nrows(), n)),
        );
        self.absw.truncate(m);
        for (i, l) in p.above.iter().enumerate() {
            if i == self.absw.len() {
                self.absw.push(DMatrix::zeros(0, 0));
            }
            band::abs_into(&mut self.absw[i], &l.weight);
        }
    }
}

/// The parts of the request the bound reads, all as f64.
pub(crate) struct Parts<'a> {
    pub(crate) w: &'a DMatrix<f64>,
    pub(crate) b: &'a DVector<f64>,
    pub(crate) v: &'a [f64],
    pub(crate) beta: &'a [f64],
    pub(crate) a_in: &'a DMatrix<f64>,
    pub(crate) z0: &'a DMatrix<f64>,
    pub(crate) pd: &'a DMatrix<f64>,
    /// The dense layers above the block, `W_1..W_m` (the last one the output layer).
    pub(crate) above: Vec<&'a Dense<f64>>,
    pub(crate) targets: &'a Targets<f64>,
    pub(crate) loss: &'a nets::Loss,
    pub(crate) net: &'a Sequential<f64>,
    pub(crate) alpha_max: f64,
    pub(crate) w_penalised: bool,
    pub(crate) b_penalised: bool,
}

fn unsupported(why: String) -> MajorizeError {
    MajorizeError::Unsupported(format!("enclose_ray: {why}"))
}

/// The certified ray bound (module doc) along the single direction of `req` on `[0,
/// req.alpha_max[0]]` for a direction that moves only the hidden dense layer
/// `from.layer`; inputs and errors as [`super::enclose_top_block`], which this equals in
/// scope when the block is the top one. Returns `Unsupported` unless the layers above
/// are (ReLU, dense) pairs, at least one, and nothing else.
pub(crate) fn enclose_ray<T: Real>(
    req: &EnclosureRequest<'_, T>,
    value: Option<T>,
    from: &FromLayer<'_, T>,
    ws: &mut RayWorkspace,
) -> Result<RayBound<T>> {
    if T::dtype_name() != "f64" {
        return Err(unsupported(format!(
            "scalar type {} (f64 only)",
            T::dtype_name()
        )));
    }
    let plan = validate(req)?;
    super::extreme::check_l2(req.loss)?;
    let [dir] = req.directions else {
        return Err(unsupported(format!(
            "{} directions (one only)",
            req.directions.len()
        )));
    };
    if req.loss.kind != LossKind::SoftmaxCrossEntropy {
        return Err(unsupported(format!(
            "loss {:?} (softmax cross-entropy only)",
            req.loss.kind
        )));
    }
    let at = plan
        .iter()
        .position(|s| matches!(s, Step::Dense(li) if *li == from.layer))
        .ok_or_else(|| unsupported(format!("layer {} is not a dense layer", from.layer)))?;
    let rest = &plan[at + 1..];
    let mut above_idx = Vec::new();
    for pair in rest.chunks(2) {
        match pair {
            [Step::Act(Activation::Relu), Step::Dense(o)] => above_idx.push(*o),
            _ => {
                return Err(unsupported(format!(
                    "layer {} is not followed by (ReLU, dense) pairs only",
                    from.layer
                )));
            }
        }
    }
    if above_idx.is_empty() {
        return Err(unsupported(format!(
            "layer {} is the output layer",
            from.layer
        )));
    }
    let net: &Sequential<f64> = downcast(req.net).ok_or_else(|| unsupported("not f64".into()))?;
    let a_in: &DMatrix<f64> = downcast(from.input).ok_or_else(|| unsupported("not f64".into()))?;
    let targets: &Targets<f64> =
        downcast(req.targets).ok_or_else(|| unsupported("not f64".into()))?;
    let dir: &DVector<f64> = downcast(dir).ok_or_else(|| unsupported("not f64".into()))?;
    let alpha_max = req.alpha_max[0].to_f64();
    let d = net.layers()[from.layer]
        .as_dense()
        .ok_or_else(|| unsupported("the block is not dense".into()))?;
    let mut above = Vec::with_capacity(above_idx.len());
    for i in &above_idx {
        above.push(
            net.layers()[*i]
                .as_dense()
                .ok_or_else(|| unsupported("a layer above is not dense".into()))?,
        );
    }
    let (Some(wi), Some(bi)) = (
        net.param_span(from.layer, "weight"),
        net.param_span(from.layer, "bias"),
    ) else {
        return Err(unsupported(format!(
            "dense layer {} does not expose weight and bias",
            from.layer
        )));
    };
    let (lo, hi) = (
        wi.offset.min(bi.offset),
        net.layer_param_offset(from.layer + 1),
    );
    let ds = dir.as_slice();
    if let Some(j) = ds[..lo].iter().chain(&ds[hi..]).position(|x| *x != 0.0) {
        return Err(unsupported(format!(
            "the direction is nonzero outside layer {} (entry {})",
            from.layer,
            if j < lo { j } else { j - lo + hi }
        )));
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
    let v = &ds[wi.offset..wi.offset + wi.rows * wi.cols];
    let beta = &ds[bi.offset..bi.offset + bi.rows];
    // Z0 and P as the top block: the given products (checked) or ours.
    let (mut z0_buf, mut pd_buf) = (std::mem::take(&mut ws.z0), std::mem::take(&mut ws.pd));
    let z0: &DMatrix<f64> = match from.output.and_then(downcast::<_, DMatrix<f64>>) {
        Some(z) => {
            check_output(d, a_in, z, &format_args!("layer {}", from.layer))?;
            z
        }
        None => {
            d.forward_into(a_in, &mut z0_buf)
                .map_err(|e| unsupported(format!("forward: {e}")))?;
            &z0_buf
        }
    };
    let vm = nalgebra::DMatrixView::from_slice(v, wi.rows, wi.cols);
    let pd: &DMatrix<f64> = match from.output_dir.and_then(downcast::<_, DMatrix<f64>>) {
        Some(p) => {
            let map = super::api::AffineParts {
                weight: v,
                rows: wi.rows,
                cols: wi.cols,
                bias: beta,
            };
            super::api::check_affine_output(
                map,
                a_in,
                p,
                &format_args!("layer {} direction", from.layer),
            )?;
            p
        }
        None => {
            if pd_buf.shape() != z0.shape() {
                pd_buf = DMatrix::zeros(z0.nrows(), z0.ncols());
            }
            pd_buf.gemm(1.0, &vm, a_in, 0.0);
            for mut c in pd_buf.column_iter_mut() {
                for (x, b) in c.iter_mut().zip(beta) {
                    *x += *b;
                }
            }
            &pd_buf
        }
    };
    let parts = Parts {
        w: &d.weight,
        b: &d.bias,
        v,
        beta,
        a_in,
        z0,
        pd,
        above,
        targets,
        loss: req.loss,
        net,
        alpha_max,
        w_penalised: net.param(from.layer, "weight").is_some_and(|t| t.penalised),
        b_penalised: net.param(from.layer, "bias").is_some_and(|t| t.penalised),
    };
    let r = bound::ray_bound(&parts, value.map(|x| x.to_f64()), ws);
    (ws.z0, ws.pd) = (z0_buf, pd_buf);
    let r = r?;
    Ok(RayBound {
        value: T::of(r.value),
        slope: to_t_up(r.slope),
        curvature: to_t_up(r.curvature),
        slack: to_t_up(r.slack),
        alpha_max: req.alpha_max[0],
    })
}
