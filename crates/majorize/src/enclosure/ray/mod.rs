//! The ray (forward band) bound of a **lower** hidden block: the top block's
//! chord/tangent bound ([`super::enclose_top_block`]) generalised to a direction that
//! moves any hidden dense layer `l` of a ReLU MLP (dense + ReLU layers above it, one
//! final dense layer, softmax cross-entropy or, since session 19, squared error), with
//! an a-priori floating-point slack (docs/MAJORIZE.md, "The ray bound of a lower block",
//! steps R1-R6, and R3'-R4' for squared error; the exact-arithmetic bound was measured
//! in `bench-suite/examples/ray_certificate`).
//!
//! **What is certified** (as the top block's): for every `a` in `[0, alpha_max]`, both
//! the exact objective from the block's kept input `A` at the weights `x + a v` and the
//! driver's record (block MM's `forward_trial` from the block through every layer above,
//! nets' loss value, the penalty in f64, at the weights [`super::apply_step`] writes) lie
//! under [`RayBound::upper_bound`], and the exact objective at `a = 0` is within `slack`
//! of `value`. Preconditions as [`super::enclose_top_block`], and given anchors are a
//! genuine f64 forward pass from the block's `Z0'` ([`enclose_ray_with`]).
//!
//! **Scope.** `T = f64`, one direction, zero outside layer `from.layer`; anything else
//! returns [`MajorizeError::Unsupported`]. Block MM takes it for its lower hidden blocks
//! with `lower_block_bound`, and for its top hidden block with `top_block_ray` (solvers'
//! `BlockMmConfig`).

mod band;
mod bound;
mod mse;
mod sums;

#[cfg(test)]
mod tests;

use autodiff::Real;
use nalgebra::{DMatrix, DVector};
use nets::{Activation, Dense, LossKind, Sequential, Targets};

use super::api::{EnclosureRequest, Step};
use super::downcast;
use super::from_layer::FromLayer;
use super::top_block::{RayBound, prep};
use crate::error::{MajorizeError, Result};

/// Buffers of [`enclose_ray`], kept between calls (resized only when a shape changes).
#[derive(Debug, Default)]
pub struct RayWorkspace {
    /// The block's own `Z0'` and `P'` when not given (`d_0 x N`).
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
    /// nets' gradient `ĝ` at the logits `Ẑ0_m` (`K x N`) and `Ĉ = fl(W_mᵀ ĝ)`.
    pub(crate) grad: DMatrix<f64>,
    pub(crate) c: DMatrix<f64>,
    /// `M = max(|sL|, |sU|)` of the last hidden layer and `R = fl(|W_m| M)` (`K x N`).
    pub(crate) mtop: DMatrix<f64>,
    pub(crate) r: DMatrix<f64>,
    /// The centre `μ` and radius of `W_m σ` over the last hidden layer's band (`K x N`;
    /// `R <= |μ| + rad`, R3 centred).
    pub(crate) rmu: DMatrix<f64>,
    pub(crate) rrad: DMatrix<f64>,
    /// Per-layer, per-sample sums of the band pass; the constants and scratch of R3-R4.
    pub(crate) col: Vec<f64>,
    pub(crate) col2: Vec<f64>,
    /// The output layer's `cm_j = max_k |W_m,kj|` (`d`).
    pub(crate) cm: Vec<f64>,
    /// Each sample's sums of R3-R4 over the last hidden layer's band (`sums`).
    pub(crate) sums: Vec<sums::SampleSums>,
}

/// `v` resized to the shapes of `shapes`, reusing every matrix whose shape is unchanged.
fn shaped(v: &mut Vec<DMatrix<f64>>, shapes: impl Iterator<Item = (usize, usize)> + Clone) {
    v.truncate(shapes.clone().count());
    for (i, sh) in shapes.enumerate() {
        if i == v.len() {
            v.push(DMatrix::zeros(sh.0, sh.1));
        } else if v[i].shape() != sh {
            v[i] = DMatrix::zeros(sh.0, sh.1);
        }
    }
}

impl RayWorkspace {
    /// Shapes every buffer for `p` (no allocation when the shapes are unchanged).
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
            super::top_block::abs_into(&mut self.absw[i], &l.weight);
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
    /// Optionally the caller's pre-activations `Ẑ0_1..Ẑ0_m` at `a = 0` (R1's anchors).
    pub(crate) anchors: Option<Vec<&'a DMatrix<f64>>>,
    pub(crate) targets: &'a Targets<f64>,
    pub(crate) loss: &'a nets::Loss,
    pub(crate) net: &'a Sequential<f64>,
    pub(crate) alpha_max: f64,
    pub(crate) w_penalised: bool,
    pub(crate) b_penalised: bool,
}

fn unsupported(why: String) -> MajorizeError {
    prep::unsupported("enclose_ray", why)
}

/// The certified ray bound (module doc) along the single direction of `req` on `[0,
/// req.alpha_max[0]]` for a direction that moves only the hidden dense layer
/// `from.layer`; inputs and errors as [`super::enclose_top_block`], which this equals in
/// scope when the block is the top one (for softmax cross-entropy; squared error, which
/// `enclose_top_block` declines, is taken here too). Returns `Unsupported` unless the
/// loss is one of those two and the layers above are (ReLU, dense) pairs, at least one,
/// and nothing else.
pub fn enclose_ray<T: Real>(
    req: &EnclosureRequest<'_, T>,
    value: Option<T>,
    from: &FromLayer<'_, T>,
    ws: &mut RayWorkspace,
) -> Result<RayBound<T>> {
    enclose_ray_with(req, value, from, None, ws)
}

/// [`enclose_ray`] with, optionally, the caller's pre-activations `Ẑ0_1..Ẑ0_m` of the
/// dense layers above the block at `a = 0` (its kept forward trace, `anchors[k - 1]`
/// `d_k x N`) instead of this function's own forward pass: R1 holds for any f64
/// evaluation of `W_k relu(Ẑ0_{k-1}) + b_k` (within `γ_{d+1}(|W_k||Ĥ0_{k-1}| + |b_k|)`
/// of it entrywise, any summation order), the chain starting at the block's `Z0'`
/// (given or computed), so the trace must be the one from that `Z0'`.
///
/// **The caller guarantees that the anchors are such an evaluation.** Only their count,
/// shapes, finiteness and first and last columns are checked (the columns against `2
/// γ_{d+1}`, as a given `Z0'`; a wrong count is a `Shape` error, a wrong checked column
/// a `Domain` error); anchors wrong on an interior column are not detected and void the
/// certificate (the bound is then violated in `ray/tests/given_anchors.rs`).
pub fn enclose_ray_with<T: Real>(
    req: &EnclosureRequest<'_, T>,
    value: Option<T>,
    from: &FromLayer<'_, T>,
    anchors: Option<&[DMatrix<T>]>,
    ws: &mut RayWorkspace,
) -> Result<RayBound<T>> {
    const WHO: &str = "enclose_ray";
    let (plan, at) = prep::head(
        req,
        from.layer,
        WHO,
        &[LossKind::SoftmaxCrossEntropy, LossKind::Mse],
    )?;
    let mut above_idx = Vec::new();
    for pair in plan[at + 1..].chunks(2) {
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
    let Some(&top) = above_idx.last() else {
        return Err(unsupported(format!(
            "layer {} is the output layer",
            from.layer
        )));
    };
    let (blk, d, _) = prep::block(req, from, top, WHO)?;
    let mut above = Vec::with_capacity(above_idx.len());
    for i in &above_idx {
        above.push(
            blk.net.layers()[*i]
                .as_dense()
                .ok_or_else(|| unsupported("a layer above is not dense".into()))?,
        );
    }
    let anchors = match anchors {
        None => None,
        Some(t) => Some(
            t.iter()
                .map(|m| downcast::<_, DMatrix<f64>>(m))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| unsupported("not f64".into()))?,
        ),
    };
    let (mut z0_buf, mut pd_buf) = (std::mem::take(&mut ws.z0), std::mem::take(&mut ws.pd));
    let (w_penalised, b_penalised) = prep::penalised(blk.net, from.layer);
    // The block's products live in buffers taken from `ws`, returned to it whatever the
    // outcome (an error of `products` included), so the next call reuses them.
    let run = |z0_buf: &mut DMatrix<f64>, pd_buf: &mut DMatrix<f64>| {
        let (z0, pd) = prep::products(&blk, d, from, value, z0_buf, pd_buf, WHO)?;
        let parts = Parts {
            w: &d.weight,
            b: &d.bias,
            v: blk.v,
            beta: blk.beta,
            a_in: blk.a_in,
            z0,
            pd,
            above,
            anchors,
            targets: blk.targets,
            loss: req.loss,
            net: blk.net,
            alpha_max: blk.alpha_max,
            w_penalised,
            b_penalised,
        };
        bound::ray_bound(&parts, value.map(|x| x.to_f64()), ws)
    };
    let r = run(&mut z0_buf, &mut pd_buf);
    (ws.z0, ws.pd) = (z0_buf, pd_buf);
    Ok(r?.into_bound(req.alpha_max[0]))
}
