//! The squared-error terms of the ray bound (docs/MAJORIZE.md, "The ray bound of a lower
//! block", R3' and R4'): for `ℓ(z) = ½‖z - y‖²` per sample the Taylor expansion along the
//! logits is exact, `ℓ(z + δ) = ℓ(z) + (z - y)ᵀδ + ½‖δ‖²`, so the quadratic term needs no
//! Hessian bound and the deviation of a logit vector by `e` (∞-norm) moves the loss by at
//! most `e Σ_k (|z_k - y_k| + e)`. Everything here is rounded up.

use super::super::top_block::bound::{target_at, ua, um};
use crate::enclosure::fp::{U64, eta, gamma, up};
use nalgebra::DMatrix;
use nets::Targets;

/// R3', one sample's bound on `|Ĉ - C|` per unit of `max_k |W_m,kj|`: nets' gradient
/// `ĝ = fl(fl(w) fl(z - y))` of the exact `g = w (z - y)` at the anchored logits has
/// `|ĝ - g| <= γ_3 |g| + η <= γ_4 |ĝ| + 2η` entrywise (three roundings, one underflow),
/// and `Ĉ = fl(W_mᵀ ĝ)` adds `γ_K |W_m|ᵀ |ĝ|`: `(γ_4 + γ_K) ‖ĝ_s‖₁ + 2Kη`.
pub(crate) fn grad_error(grad: &DMatrix<f64>, s: usize) -> f64 {
    let kk = grad.nrows();
    let g1 = grad.column(s).iter().fold(0.0, |a, x| ua(a, x.abs()));
    let f = ua(gamma(4, U64), gamma(kk, U64));
    ua(um(f, g1), 2.0 * kk as f64 * eta(U64))
}

/// R3', one sample's quadratic factor (to be multiplied by the sample weight `w` and
/// `a²`): `½‖δ_s‖²` with `|δ_ks| <= a R_ks` and `‖δ_s‖₂ <= a ‖W_m‖₂ ‖M_s‖₂`, so
/// `½ min(‖W_m‖₂² Σ_j M_js², Σ_k R_ks²)`; `nb2 >= ‖W_m‖₂²`, `q >= Σ_j M_js²`, `rkb` the
/// rigorous `R` of the sample.
pub(crate) fn quad(nb2: f64, q: f64, rkb: &[f64]) -> f64 {
    let r2 = rkb.iter().fold(0.0, |a, r| ua(a, um(*r, *r)));
    um(0.5, um(nb2, q).min(r2))
}

/// R4', one sample at the logits: with `t_k = |Ẑ0_ks - y_ks| + ā R_ks + e` (every logit
/// vector within `e` of `ψ`'s on `[0, ā]` has `|z_k - y_k| <= t_k`), returns `(dev, drv,
/// lup)`:
/// - `dev = e Σ_k t_k`: how far the loss at the driver's or the exact logits can lie from
///   `ψ`'s (`|(z' - z)ᵀ(z - y) + ½‖z' - z‖²| <= e Σ(|z_k - y_k| + e/2)`);
/// - `drv = γ_3 ½ Σ_k t_k² + 2Kη`: nets' evaluation `Σ_k fl(fl(0.5 fl(z_k - y_k)) fl(z_k -
///   y_k))` term by term (the sum over `k` is charged in `sums_term`);
/// - `lup = (1 + γ_4) ½ Σ_k t_k² + 2Kη`: an upper bound of the computed per-sample loss,
///   the magnitude the sums over `k` and `N` round.
pub(crate) fn deviation(
    logits: &DMatrix<f64>,
    targets: &Targets<f64>,
    s: usize,
    rkb: &[f64],
    abar: f64,
    e: f64,
) -> (f64, f64, f64) {
    let kk = logits.nrows();
    let (mut st, mut st2) = (0.0f64, 0.0f64);
    for (k, r) in rkb.iter().enumerate() {
        let r0 = up((logits[(k, s)] - target_at(targets, k, s)).abs());
        let t = ua(ua(r0, um(abar, *r)), e);
        st = ua(st, t);
        st2 = ua(st2, um(t, t));
    }
    let et2 = 2.0 * kk as f64 * eta(U64);
    let half = um(0.5, st2);
    let drv = ua(um(gamma(3, U64), half), et2);
    let lup = ua(um(up(1.0 + gamma(4, U64)), half), et2);
    (um(e, st), drv, lup)
}
