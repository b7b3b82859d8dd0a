//! The ends of `T`'s range, which the relative error bounds of the main argument
//! (Higham's `γ_n`, the libm bounds) exclude: **underflow** to subnormals, whose errors
//! are absolute (up to the smallest subnormal `η_T` per operation, however small the
//! exact result), and **overflow** to infinity, after which the driver computes `inf` or
//! NaN while the enclosure (in f64) is still finite. Counterexamples found in review
//! (tests/enclosure_adversarial.rs): `α v` underflowing in [`super::apply_step`] and
//! amplified by a huge input; a GEMM product underflowing in the forward pass and
//! amplified by a huge next-layer weight; `α v = 1e39` overflowing in f32; a subnormal
//! L2 coefficient whose half is inexact.
//!
//! The terms, from a-priori magnitude bounds over the whole box (`M_0 = max |x|`, per
//! dense layer `R = max_r sum_c (|W| + sum_i ᾱ_i |V_i|)`, `B = max_r (|b| + sum_i ᾱ_i |v_b,i|)`,
//! `M_l = R M_{l-1} + B`, activations by their range and Lipschitz constant `L`):
//!
//! * overflow: if any weight `|w| + Σ ᾱ|v|`, any `M_l`, the loss or the penalty can reach
//!   `MAX_T / 16`, the enclosure is returned with an infinite upper bound (valid, useless:
//!   the caller shrinks its trust region);
//! * underflow: an absolute error bound `e_l` on every activation entry, with
//!   `e_l = L (R e_{l-1} + (c + 2) η_T + 2 k η_T (c M_{l-1} + 1)) + 4 η_T` (the GEMM's
//!   `c` products and bias addition, each off by at most `η_T` when subnormal; the
//!   `2k` roundings of each weight in `apply_step`, each off by at most `η_T`, times the
//!   inputs; the activation's few operations), then through the loss's Lipschitz
//!   constant per sample (`Σ_k |∂ℓ/∂z_k|` over the range) plus `8 K η_T` for its own
//!   operations, summed over samples with the reduction's weight. Twice that is added to
//!   the slack. For normal-range data these terms are of order `1e-40` (f32) or
//!   `1e-300` (f64).
//! * a nonzero `l2` below `2^-1021` is refused (then `l2 / 2` is exact, as the penalty
//!   enclosure assumes).

use autodiff::Real;
use nalgebra::DVector;
use nets::{Activation, Loss, LossKind, ParamInfo, Reduction, Sequential};

use super::api::Step;
use super::fp::up;
use crate::error::{MajorizeError, Result};

/// What the extremes of the range add to an enclosure.
pub(crate) enum Extreme {
    /// No overflow is possible on the box; add this absolute amount to the slack.
    Finite(f64),
    /// The driver may overflow somewhere on the box: the upper bound must be infinite.
    Overflow,
}

/// `η_T`, the smallest positive subnormal of `T`, and `MAX_T`.
fn range_of<T: Real>() -> (f64, f64) {
    if T::dtype_name() == "f32" {
        (f64::from(f32::from_bits(1)), f64::from(f32::MAX))
    } else {
        (f64::from_bits(1), f64::MAX)
    }
}

/// `x < limit`, false for NaN.
fn fits(x: f64, limit: f64) -> bool {
    x < limit
}

/// Refuses a nonzero L2 coefficient whose half is not exact.
pub(crate) fn check_l2(loss: &Loss) -> Result<()> {
    if loss.l2 != 0.0 && loss.l2 < 2f64.powi(-1021) {
        return Err(MajorizeError::InvalidParameter {
            name: "l2",
            value: loss.l2,
            reason: "a nonzero L2 coefficient must be >= 2^-1021 (so that l2/2 is exact, \
                     as the penalty enclosure assumes); use 0 or a normal value",
        });
    }
    Ok(())
}

/// The module doc's terms for the request's network, data, directions and box.
#[allow(clippy::too_many_arguments)]
pub(crate) fn extreme_terms<T: Real>(
    net: &Sequential<T>,
    plan: &[Step],
    layout: &[ParamInfo],
    inputs: &nalgebra::DMatrix<T>,
    y_abs_max: f64,
    loss: &Loss,
    directions: &[DVector<T>],
    amax: &[f64],
) -> Extreme {
    let (eta, t_max) = range_of::<T>();
    let limit = t_max / 16.0;
    let k = directions.len() as f64;
    let n = inputs.ncols().max(1) as f64;
    let mut m = inputs.iter().fold(0.0f64, |a, v| a.max(v.to_f64().abs()));
    let mut e = 0.0f64;
    let mut w_max = 0.0f64;
    let grow = |x: f64| up(x * (1.0 + 1e-12));
    for step in plan {
        match *step {
            Step::Dense(li) => {
                let info = |name: &str| layout.iter().find(|p| p.layer == li && p.name == name);
                let (Some(wi), Some(bi)) = (info("weight"), info("bias")) else {
                    return Extreme::Overflow;
                };
                let Some(d) = net.layers().get(li).and_then(|l| l.as_dense()) else {
                    return Extreme::Overflow;
                };
                let (rows, cols) = (wi.rows, wi.cols);
                let mut r_max = 0.0f64;
                for r in 0..rows {
                    let mut s = 0.0f64;
                    for c in 0..cols {
                        let j = wi.offset + c * rows + r;
                        let mut a = d.weight[(r, c)].to_f64().abs();
                        for (dir, am) in directions.iter().zip(amax) {
                            let step = up(am * dir[j].to_f64().abs());
                            if !fits(step, limit) {
                                return Extreme::Overflow;
                            }
                            a = up(a + step);
                        }
                        w_max = w_max.max(a);
                        s = up(s + a);
                    }
                    r_max = r_max.max(s);
                }
                let mut b_max = 0.0f64;
                for r in 0..bi.rows {
                    let mut a = d.bias[r].to_f64().abs();
                    for (dir, am) in directions.iter().zip(amax) {
                        a = up(a + up(am * dir[bi.offset + r].to_f64().abs()));
                    }
                    b_max = b_max.max(a);
                }
                w_max = w_max.max(b_max);
                let c = cols as f64;
                let delta = up(up((c + 2.0) * eta) + up(2.0 * k * eta * up(c * m + 1.0)));
                e = grow(up(r_max * e) + delta);
                m = grow(up(r_max * m) + b_max);
            }
            Step::Act(a) => {
                let (lip, range) = match a {
                    Activation::Identity | Activation::Relu => (1.0, m),
                    Activation::LeakyRelu { slope } => {
                        let s = slope.abs().max(1.0);
                        (s, up(s * m))
                    }
                    Activation::Tanh => (1.0, m.min(1.0)),
                    Activation::Sigmoid => (0.25, 1.0),
                    Activation::Softplus => (1.0, up(m + std::f64::consts::LN_2)),
                    Activation::Elu { alpha } => {
                        (alpha.abs().max(1.0), up(m * alpha.abs().max(1.0)))
                    }
                };
                e = up(up(lip * e) + 4.0 * eta);
                m = range;
            }
        }
        if !fits(m, limit) || !e.is_finite() {
            return Extreme::Overflow;
        }
    }
    let out_k = match plan.iter().rev().find_map(|s| match s {
        Step::Dense(li) => layout.iter().find(|p| p.layer == *li && p.name == "weight"),
        Step::Act(_) => None,
    }) {
        Some(p) => p.rows as f64,
        None => return Extreme::Overflow,
    };
    let yb = y_abs_max;
    // Per sample: Lipschitz sum over outputs, and the largest loss value.
    let (lip, value_max) = match loss.kind {
        LossKind::Mse => {
            let r = up(m + yb);
            (up(out_k * r), up(0.5 * out_k * up(r * r)))
        }
        LossKind::SoftmaxCrossEntropy => {
            let ysum = up(out_k * yb);
            (
                up(1.0 + ysum),
                up(up(1.0 + ysum) * up(2.0 * m + out_k.ln() + 1.0)),
            )
        }
        LossKind::Logistic => (
            up(out_k * up(1.0 + yb)),
            up(out_k * up(up(1.0 + yb) * up(m + std::f64::consts::LN_2))),
        ),
        LossKind::MulticlassHinge => return Extreme::Overflow,
    };
    let samples = match loss.reduction {
        Reduction::Mean => 1.0,
        Reduction::Sum => n,
    };
    if !fits(up(value_max * samples), limit) {
        return Extreme::Overflow;
    }
    if loss.l2 != 0.0 {
        // The driver sums the penalty in f64: bound it with the largest weight.
        let count = layout
            .iter()
            .filter(|p| p.penalised)
            .map(|p| p.rows * p.cols)
            .sum::<usize>() as f64;
        if !fits(up(loss.l2 * count * up(w_max * w_max)), f64::MAX / 16.0) {
            return Extreme::Overflow;
        }
    }
    let per_sample = up(up(lip * e) + 8.0 * out_k * eta);
    let pen = if loss.l2 != 0.0 {
        4.0 * f64::from_bits(1) * loss.l2.max(1.0)
    } else {
        0.0
    };
    Extreme::Finite(up(2.0 * up(up(samples * per_sample) + pen)))
}
