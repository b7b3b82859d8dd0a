//! The losses on the output model, summed into one scalar Taylor model.
//!
//! Per sample (one column `z` of the output, `K` entries, `δ_k = z_k - c0_k`):
//!
//! - **MSE** `½ Σ (z_k - y_k)²` is quadratic: `½ r0² + r0 δ + ½ δ²` with `r0 = c0 - y`
//!   (exact up to rounding; `½ δ²` through `add_square` with `[r] = ½`).
//! - **Logistic** `Σ softplus(z_k) - y_k z_k`: the softplus 1-D enclosure (monotone /
//!   even-symmetric rules) around `c0_k`, minus the linear `y_k z_k`.
//! - **Softmax cross-entropy** `σ lse(z) - yᵀz` with `σ = Σ y_k` (1 for labels), through
//!   the max-shifted log-sum-exp. Taylor with Lagrange remainder:
//!   `lse(c0 + δ) = lse(c0) + p(c0)ᵀδ + ½ δᵀ H(ξ) δ`, `H = diag p - p pᵀ`, `ξ` in the
//!   range box of `z`. `½ δᵀHδ = ½ Var_{p(ξ)}(δ) = ½ min_m Σ p_j (δ_j - m)²`, so with
//!   `m = δ_c` (`c = argmax c0`) it lies in `[0, ½ Σ_{j≠c} p̄_j (δ_j - δ_c)²]`, where
//!   `p̄_j = sup_ξ p_j(ξ) = 1 / (1 + Σ_{i≠j} exp(z_i,lo - z_j,hi))`. With a saturated
//!   softmax every `p̄_j` with `j ≠ c` is tiny, so the bound stays sharp; nothing
//!   overflows because only differences of logits are exponentiated.
//!
//! The driver's own floating-point evaluation error of each loss (nets' `Loss::value`:
//! residuals / softplus in `T`, sums in `f64`, the result rounded to `T`) is added to the
//! degree-0 radius; see docs/MAJORIZE.md for the constants.

use nalgebra::DMatrix;
use nets::LossKind;

use super::activation::{Smooth, smooth_enclosure};
use super::elementwise::{Acc, BoxIv, Elem, add_square, ranges};
use super::fp::{Iv, LIBM_ULPS, U64, dn, eta, fmax, fmin, gamma, rounding, up, up_ops};
use super::model::Model;
use super::scalar1::{Consts1, mse_k1};

fn lib() -> f64 {
    if rounding() { LIBM_ULPS * U64 } else { 0.0 }
}

/// `exp` over an interval, outward. For a narrow interval (width `h = t.hi - t.lo <= 1`,
/// the usual case: a point rounded outward) one library call serves both ends:
/// `exp(t.hi) = exp(t.lo) e^h <= exp(t.lo) (1 + 2h)`, since `e^h` lies below its chord
/// `1 + (e - 1) h` on `[0, 1]` (convexity); `h` and the product are rounded up.
pub(crate) fn exp_iv(t: Iv) -> Iv {
    let lo_exp = Iv::approx(t.lo.exp(), lib(), eta(U64));
    let lo = if lo_exp.lo > 0.0 { lo_exp.lo } else { 0.0 };
    let h = up(t.hi - t.lo);
    let hi = if (0.0..=1.0).contains(&h) && lo_exp.hi.is_finite() {
        up(lo_exp.hi * up(1.0 + 2.0 * h))
    } else {
        Iv::approx(t.hi.exp(), lib(), eta(U64)).hi
    };
    Iv::new(lo, hi)
}

pub(crate) fn ln_iv(s: Iv) -> Iv {
    Iv::new(
        Iv::approx(s.lo.ln(), lib(), eta(U64)).lo,
        Iv::approx(s.hi.ln(), lib(), eta(U64)).hi,
    )
}

/// Smallest shift `w` for which [`exp_lower_shift`] uses the cubic (below it, `exp`).
const SHIFT_MIN: f64 = -0.25;

/// A lower bound of `exp(t + to - from)` without a library call, given
/// `0 <= base <= exp(t)` and `w = to - from <= 0` (a logit's shift over the box): returns
/// a lower bound of `exp(t) exp(w)`, using `exp(w) >= 1 + w + w²/2 + w³/6` (Taylor with
/// the remainder `exp(ξ) w⁴/24 >= 0`, valid for every real `w`). For `w` in
/// `[SHIFT_MIN, 0]` the cubic is `>= 0.77`; it is evaluated in f64 with six operations on
/// numbers of magnitude `<= 1`, so its rounding error is below `16u`, and `32u` is
/// subtracted. `w` itself is rounded down (`exp` is increasing). Outside that range, or
/// when `base` is zero or not finite, `fallback` computes the bound with `exp`.
#[inline]
pub(crate) fn exp_lower_shift(
    base: f64,
    to: f64,
    from: f64,
    fallback: impl FnOnce() -> f64,
) -> f64 {
    exp_lower_w(base, dn(to - from), fallback)
}

/// [`exp_lower_shift`] with the shift given: `w` must be a lower bound of the shift
/// (`w <= to - from`); returns a lower bound of `exp(t) exp(w)`.
#[inline]
pub(crate) fn exp_lower_w(base: f64, w: f64, fallback: impl FnOnce() -> f64) -> f64 {
    if !(rounding() && base > 0.0 && base.is_finite() && (SHIFT_MIN..=0.0).contains(&w)) {
        return fallback();
    }
    let p = 1.0 + w * (1.0 + w * (0.5 + w * (1.0 / 6.0)));
    let p = p - 32.0 * U64;
    dn(base * p)
}

/// Scalar result: the data term's model before the reduction weight, and `Σ max|ℓ|`
/// over entries (for the driver's summation error).
pub(crate) struct DataModel {
    pub(crate) acc: Acc,
    pub(crate) abs_sum: f64,
}

/// Encloses `Σ_n ℓ(z_n, y_n)` (no reduction weight yet). `y` is the dense `K x N` target
/// matrix (one-hot for labels), `u_t` the driver's roundoff.
pub(crate) fn data_term(
    kind: LossKind,
    z: &Model,
    y: &DMatrix<f64>,
    amax: &[f64],
    u_t: f64,
) -> DataModel {
    let k = z.k;
    let (rows, cols) = z.c0.shape();
    let bx = BoxIv::new(amax);
    let mut total = Acc::with_k(k);
    let mut abs_sum = 0.0;
    let mut el = Elem::with_k(k);
    match kind {
        LossKind::Mse => {
            let half = Iv::point(0.5);
            // nets: r = z - y in T, then 0.5 r² and sums in f64: relative error of each term
            // <= 3 u_T + 2 γ64 (the sums are charged below through abs_sum).
            let rel = up(3.0 * gamma(1, u_t) + 2.0 * gamma(2, U64));
            if k == 1 && super::fp::fast_paths() {
                let kc = Consts1::new(amax[0], u_t);
                abs_sum = mse_k1(z, y.as_slice(), &kc, rel, &mut total);
                return DataModel {
                    acc: total,
                    abs_sum,
                };
            }
            for idx in 0..rows * cols {
                el.load(z, idx);
                let yv = y.as_slice()[idx];
                let rg = ranges(&el, &bx);
                let r0 = Iv::point(el.c0).sub(Iv::point(yv));
                total.c0 = total.c0.add(r0.mul(r0).mul(half));
                total.add_linear(&el, r0);
                let d0 = add_square(&el, &rg, half, &mut total.q);
                total.add_e(d0);
                let res = r0.add(rg.d).mag();
                let lmax = up(up(0.5 * res) * res);
                total.add_e(up(rel * lmax + eta(u_t)));
                abs_sum = up(abs_sum + lmax);
            }
        }
        LossKind::Logistic => {
            // nets: softplus(z) - y z in T: <= (3 LIBM + 6) u_T (softplus + |y z|) + 4 eta_T.
            let rel = up(gamma(1, u_t) * (3.0 * LIBM_ULPS + 6.0));
            for idx in 0..rows * cols {
                el.load(z, idx);
                let yv = y.as_slice()[idx];
                let rg = ranges(&el, &bx);
                let yy = Iv::point(el.c0).add(rg.d);
                let one = smooth_enclosure(Smooth::Softplus, el.c0, yy.lo, yy.hi);
                total.c0 = total
                    .c0
                    .add(one.h0.sub(Iv::point(yv).mul(Iv::point(el.c0))));
                total.add_linear(&el, one.s.sub(Iv::point(yv)));
                let d0 = add_square(&el, &rg, one.r, &mut total.q);
                total.add_e(d0);
                let lmax = up(one.hb.hi + up(yv.abs() * yy.mag()));
                total.add_e(up(rel * lmax + 4.0 * eta(u_t)));
                abs_sum = up(abs_sum + lmax);
            }
        }
        LossKind::SoftmaxCrossEntropy if k == 1 && super::fp::fast_paths() => {
            abs_sum = super::loss1::ce_k1(z, y, &Consts1::new(amax[0], u_t), &mut total);
        }
        LossKind::SoftmaxCrossEntropy => {
            let mut els: Vec<Elem> = (0..rows).map(|_| Elem::with_k(k)).collect();
            let mut rgs = Vec::with_capacity(rows);
            let mut zbox = vec![Iv::ZERO; rows];
            let mut diff = Elem::with_k(k);
            let mut u_acc = Acc::with_k(k);
            let kf = rows as f64;
            let ln_k = kf.ln();
            let mut ex = vec![Iv::ZERO; rows];
            let mut elo = vec![0.0; rows];
            let mut suf = vec![0.0; rows + 1];
            for n in 0..cols {
                rgs.clear();
                for j in 0..rows {
                    els[j].load(z, n * rows + j);
                    let rg = ranges(&els[j], &bx);
                    zbox[j] = Iv::point(els[j].c0).add(rg.d);
                    rgs.push(rg);
                }
                let c = (0..rows)
                    .max_by(|&a, &b| els[a].c0.total_cmp(&els[b].c0))
                    .unwrap_or(0);
                let mx = els[c].c0;
                // lse(c0) and p(c0), enclosed.
                let mut s = Iv::ZERO;
                for j in 0..rows {
                    let t = Iv::point(els[j].c0).sub(Iv::point(mx));
                    ex[j] = exp_iv(t);
                    s = s.add(ex[j]);
                }
                let lse0 = Iv::point(mx).add(ln_iv(s));
                let inv_s = Iv::new(dn(1.0 / s.hi), up(1.0 / s.lo));
                let mut sigma = Iv::ZERO;
                let mut yz = Iv::ZERO;
                for j in 0..rows {
                    let yj = y[(j, n)];
                    sigma = sigma.add(Iv::point(yj));
                    yz = yz.add(Iv::point(yj).mul(Iv::point(els[j].c0)));
                }
                total.c0 = total.c0.add(sigma.mul(lse0).sub(yz));
                for j in 0..rows {
                    let pj = ex[j].mul(inv_s);
                    let coef = sigma.mul(pj).sub(Iv::point(y[(j, n)]));
                    total.add_linear(&els[j], coef);
                }
                // Remainder: σ θ U, θ ∈ [0, 1], U = ½ Σ_{j≠c} p̄_j (δ_j - δ_c)².
                u_acc.clear();
                // Σ_{i≠j} exp(z_i,lo - z_j,hi) >= (Σ_{i≠j} E_i) F_j with lower bounds
                // E_i <= exp(z_i,lo - mx), F_j <= exp(mx - z_j,hi): K exponentials per
                // sample instead of K²; the sums over i ≠ j come from prefix and suffix
                // sums (rounded down, no cancellation). Pairwise fallback if F_j overflows.
                for i in 0..rows {
                    elo[i] = exp_lower_shift(ex[i].lo, zbox[i].lo, els[i].c0, || {
                        let t = Iv::point(zbox[i].lo).sub(Iv::point(mx));
                        exp_iv(Iv::point(t.lo)).lo
                    });
                }
                suf[rows] = 0.0;
                for i in (0..rows).rev() {
                    suf[i] = dn(suf[i + 1] + elo[i]);
                }
                let mut pre = 0.0;
                for j in 0..rows {
                    let pre_j = pre;
                    pre = dn(pre + elo[j]);
                    if j == c {
                        continue;
                    }
                    // exp(mx - c0_j) >= 1 / ex_j.hi, times exp(c0_j - z_j,hi).
                    let inv = if ex[j].hi.is_finite() && ex[j].hi > 0.0 {
                        dn(1.0 / ex[j].hi)
                    } else {
                        0.0
                    };
                    let f = exp_lower_shift(inv, els[j].c0, zbox[j].hi, || {
                        let t = Iv::point(mx).sub(Iv::point(zbox[j].hi));
                        exp_iv(Iv::point(t.lo)).lo
                    });
                    let others = dn(pre_j + suf[j + 1]);
                    let mut sl = dn(others * f);
                    if !(f.is_finite() && sl.is_finite()) {
                        sl = 0.0;
                        for i in 0..rows {
                            if i != j {
                                let t = Iv::point(zbox[i].lo).sub(Iv::point(zbox[j].hi));
                                sl = dn(sl + exp_iv(Iv::point(t.lo)).lo);
                            }
                        }
                    }
                    let pbar = fmin(up(1.0 / dn(1.0 + sl)), 1.0);
                    if pbar == 0.0 {
                        continue;
                    }
                    diff.c0 = 0.0;
                    diff.e = up(els[j].e + els[c].e);
                    for i in 0..k {
                        let d = Iv::point(els[j].c1[i]).sub(Iv::point(els[c].c1[i]));
                        let (m, r) = d.to_mid_rad();
                        diff.c1[i] = m;
                        diff.e = up(diff.e + up(r * amax[i]));
                    }
                    for ij in 0..k * k {
                        diff.q[ij] = els[j].q[ij].sub(els[c].q[ij]);
                    }
                    let rg = ranges(&diff, &bx);
                    let d0 = add_square(&diff, &rg, Iv::new(0.0, up(0.5 * pbar)), &mut u_acc.q);
                    u_acc.add_e(d0);
                }
                for (o, q) in total.q.iter_mut().zip(&u_acc.q) {
                    let h = Iv::new(fmin(q.lo, 0.0), fmax(q.hi, 0.0));
                    *o = o.add(sigma.mul(h));
                }
                total.add_e(up(sigma.mag() * u_acc.e));
                // Driver: nets evaluates in f64 from the T logits (module doc, MAJORIZE.md).
                let zm = zbox.iter().map(|b| b.mag()).fold(0.0, f64::max);
                let ysum: f64 = (0..rows).map(|j| y[(j, n)].abs()).sum();
                let per = 12.0 * zm + (LIBM_ULPS + 8.0) * ln_k + 2.0 * LIBM_ULPS + 4.0 * kf + 8.0;
                // `ysum` (rows - 1 roundings) and `ln_k` (libm, LIBM_ULPS ulps) are plain f64: their
                // relative errors are counted as `rows + LIBM_ULPS` more operations.
                let extra = rows + LIBM_ULPS as usize;
                let drv = up_ops(gamma(1, U64) * ysum * per + kf * eta(U64), 8 + extra);
                if super::ce_plain::plain_knobs().driver {
                    total.add_e(drv);
                }
                let _ = &rgs;
                abs_sum = up(abs_sum + up_ops(ysum * (2.0 * zm + ln_k + 1.0), 6 + extra));
            }
        }
        LossKind::MulticlassHinge => {}
    }
    DataModel {
        acc: total,
        abs_sum,
    }
}
