//! A chord/tangent upper bound along one direction that moves only the **top** hidden
//! block (dense layer `l`, then ReLU, then the output dense layer, then softmax
//! cross-entropy), with an a-priori floating-point slack (docs/MAJORIZE.md, "The top
//! block's chord/tangent bound"; the exact-arithmetic derivation was measured in
//! `bench-suite/examples/cheap_certificate`, session 15).
//!
//! **What is certified.** With the block's input `A` (`from.input`) taken as data, as
//! [`super::enclose_from_layer`] does, let `psi(a)` be the objective computed from `A`
//! at the weights `x + a v`: the exact value, and the driver's floating-point record
//! (block MM's `forward_trial` from the block: `fl(Ŵ A) + b̂` by the GEMM kernel, ReLU,
//! `fl(W2 Â) + b2`, then `Loss::value_and_output_grad`'s value, plus
//! `Sequential::weight_penalty(l2)`, added in f64) at the weights
//! [`super::apply_step`] writes. For every `a` in `[0, alpha_max]` both lie under
//! [`RayBound::upper_bound`]. `value` is the caller's record at `a = 0` (or this
//! module's own driver-style evaluation), and the exact `psi(0)` is within `slack` of it.
//!
//! **Preconditions** (the engine's): a given `from.output` / `from.output_dir` is a
//! floating-point evaluation of `W A + b` / `V A + β` (any summation order, FMA or not;
//! the first and last columns are checked with the engine's tolerance); a given `value`
//! is the driver's record at the base weights computed from the same `A`.
//!
//! **Scope.** `T = f64` only (f32 returns [`MajorizeError::Unsupported`]); one direction.
//! Anything else returns `Unsupported` and the caller falls back to the Taylor enclosure.

pub(crate) mod bound;
pub(crate) mod prep;
pub(crate) mod terms;
#[cfg(test)]
pub(crate) mod tests;

use autodiff::Real;
use nalgebra::{DMatrix, DVector};
use nets::{Activation, Sequential, Targets};

use super::api::{EnclosureRequest, Step, to_t_up};
use super::fp::Iv;
use super::from_layer::FromLayer;
use crate::error::{MajorizeError, Result};

/// A certified 1-D upper bound along a ray: for every `a` in `[0, alpha_max]`,
/// `phi(a) <= value + slope a + curvature a² + slack`, for both the exact `phi` and the
/// driver's floating-point record of it (module doc: which computation), and
/// `|phi(0) - value| <= slack`.
///
/// `slope` is **not** the derivative: it is the chord/tangent slope (each ReLU output's
/// change bounded by its chord on `[0, alpha_max]` where the gradient weight is positive
/// and by its tangent at `0+` where it is negative), which is `>=` the one-sided
/// derivative at `0+` and tends to it as `alpha_max -> 0`. `curvature >= 0` is the
/// softmax Böhning term plus the penalty's exact quadratic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RayBound<T: Real> {
    /// The caller's (or this module's driver-style) objective at `a = 0`.
    pub value: T,
    /// The chord/tangent slope (`>=` the one-sided directional derivative at `0+`).
    pub slope: T,
    /// The coefficient of `a²`, `>= 0`.
    pub curvature: T,
    /// `>= 0`: covers every floating-point effect (module doc), applied at every `a`.
    pub slack: T,
    /// The trust region `[0, alpha_max]` on which the bound holds.
    pub alpha_max: T,
}

impl<T: Real> RayBound<T> {
    /// `value + slope a + curvature a² + slack`, evaluated with outward rounding and
    /// rounded up to `T` (valid at `a = 0` too). Errors unless `0 <= a <= alpha_max`.
    pub fn upper_bound(&self, a: T) -> Result<T> {
        if !(a.finite() && a >= T::zero() && a <= self.alpha_max) {
            return Err(MajorizeError::InvalidParameter {
                name: "a",
                value: a.to_f64(),
                reason: "must lie in the trust region [0, alpha_max]",
            });
        }
        let x = Iv::point(a.to_f64());
        let s = Iv::point(self.value.to_f64())
            .add(Iv::point(self.slope.to_f64()).mul(x))
            .add(Iv::point(self.curvature.to_f64()).mul(x.mul(x)))
            .add(Iv::point(self.slack.to_f64()));
        Ok(to_t_up(s.hi))
    }

    /// The minimiser of the bound's polynomial on `[0, alpha_max]`: the vertex
    /// `-slope / (2 curvature)` clamped to the interval, or an end when `curvature = 0`
    /// (`alpha_max` if `slope < 0`, else 0). The bound holds there like anywhere else.
    pub fn minimizer(&self) -> T {
        let (s, c, m) = (
            self.slope.to_f64(),
            self.curvature.to_f64(),
            self.alpha_max.to_f64(),
        );
        if s >= 0.0 || !s.is_finite() || !c.is_finite() {
            return T::zero();
        }
        if c <= 0.0 {
            return self.alpha_max;
        }
        let v = -s / (2.0 * c);
        if v >= m { self.alpha_max } else { T::of(v) }
    }
}

/// Buffers of [`enclose_top_block`], kept between calls so that a steady state
/// allocates nothing (resized only when a shape grows).
#[derive(Debug, Default)]
pub struct TopBlockWorkspace {
    pub(crate) z0: DMatrix<f64>,
    pub(crate) pd: DMatrix<f64>,
    pub(crate) act: DMatrix<f64>,
    pub(crate) logits: DMatrix<f64>,
    pub(crate) grad: DMatrix<f64>,
    pub(crate) c: DMatrix<f64>,
    pub(crate) pm: DMatrix<f64>,
    pub(crate) absw2: DMatrix<f64>,
    pub(crate) r: DMatrix<f64>,
    pub(crate) col: Vec<f64>,
}

impl TopBlockWorkspace {
    /// An empty workspace.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The parts of the request the bound reads, all as f64 (`T = f64`).
pub(crate) struct Parts<'a> {
    pub(crate) w: &'a DMatrix<f64>,
    pub(crate) b: &'a DVector<f64>,
    pub(crate) v: &'a [f64],
    pub(crate) beta: &'a [f64],
    pub(crate) w2: &'a DMatrix<f64>,
    pub(crate) b2: &'a DVector<f64>,
    pub(crate) a_in: &'a DMatrix<f64>,
    /// The block's output `Z0'` and direction product `P'` (`d x N`): the caller's
    /// (borrowed, not copied) or the workspace's own.
    pub(crate) z0: &'a DMatrix<f64>,
    pub(crate) pd: &'a DMatrix<f64>,
    pub(crate) targets: &'a Targets<f64>,
    pub(crate) loss: &'a nets::Loss,
    pub(crate) net: &'a Sequential<f64>,
    pub(crate) alpha_max: f64,
    pub(crate) w_penalised: bool,
    pub(crate) b_penalised: bool,
}

/// `dst = src`, reusing `dst`'s allocation when the shapes agree.
pub(crate) fn copy_into(dst: &mut DMatrix<f64>, src: &DMatrix<f64>) {
    if dst.shape() == src.shape() {
        dst.copy_from(src);
    } else {
        *dst = src.clone();
    }
}

/// `dst = |w|` entrywise, reusing `dst`'s allocation when the shapes agree.
pub(crate) fn abs_into(dst: &mut DMatrix<f64>, w: &DMatrix<f64>) {
    copy_into(dst, w);
    dst.apply(|x| *x = x.abs());
}

fn unsupported(why: String) -> MajorizeError {
    prep::unsupported("enclose_top_block", why)
}

/// The certified chord/tangent bound of `psi(a)` (module doc) along the single direction
/// of `req` on `[0, req.alpha_max[0]]`, for a direction that moves only the top hidden
/// dense layer `from.layer`. Inputs as [`super::enclose_from_layer`]; `value` = the
/// caller's record at `a = 0`, or `None` for this function's own driver-style evaluation.
///
/// Returns [`MajorizeError::Unsupported`] unless: `T = f64`; one direction; the
/// direction is zero outside layer `from.layer`'s weight and bias; that layer is
/// followed by exactly ReLU, one dense layer and nothing else; the loss is softmax
/// cross-entropy (labels or dense targets). Other errors: those of
/// [`super::enclose`]'s validation, a misshapen or non-finite `from.input`, a given
/// output that is not this layer's, a non-finite `value`. A bound whose terms overflow
/// has an infinite slack (valid, useless: shrink the trust region).
pub fn enclose_top_block<T: Real>(
    req: &EnclosureRequest<'_, T>,
    value: Option<T>,
    from: &FromLayer<'_, T>,
    ws: &mut TopBlockWorkspace,
) -> Result<RayBound<T>> {
    const WHO: &str = "enclose_top_block";
    let (plan, at) = prep::head(req, from.layer, WHO, &[nets::LossKind::SoftmaxCrossEntropy])?;
    let top = match &plan[at..] {
        [Step::Dense(_), Step::Act(Activation::Relu), Step::Dense(o)] => *o,
        _ => {
            return Err(unsupported(format!(
                "layer {} is not followed by exactly ReLU and one dense output layer",
                from.layer
            )));
        }
    };
    let (blk, d, out) = prep::block(req, from, top, WHO)?;
    let (a_in, v, beta) = (blk.a_in, blk.v, blk.beta);
    // Z0 and P: the given products or ours, formed in the workspace's buffers (taken out
    // while the bound borrows them, and put back after).
    let (mut z0_buf, mut pd_buf) = (std::mem::take(&mut ws.z0), std::mem::take(&mut ws.pd));
    let (z0, pd) = prep::products(&blk, d, from, value, &mut z0_buf, &mut pd_buf, WHO)?;
    let (w_penalised, b_penalised) = prep::penalised(blk.net, from.layer);
    let parts = Parts {
        w: &d.weight,
        b: &d.bias,
        v,
        beta,
        w2: &out.weight,
        b2: &out.bias,
        a_in,
        z0,
        pd,
        targets: blk.targets,
        loss: req.loss,
        net: blk.net,
        alpha_max: blk.alpha_max,
        w_penalised,
        b_penalised,
    };
    let r = bound::ray_bound(&parts, value.map(|x| x.to_f64()), ws);
    (ws.z0, ws.pd) = (z0_buf, pd_buf);
    Ok(r?.into_bound(req.alpha_max[0]))
}
