//! The arithmetic of the top block's chord/tangent bound (docs/MAJORIZE.md, "The top
//! block's chord/tangent bound", steps 1-7; the step numbers below refer to it). All in
//! f64. The long sums (over the `d` hidden units per sample, over the `d x N` entries)
//! are plain f64 sums of nonnegative terms followed by one rigorous inflation
//! ([`UpOps`]: `x (1 + 2γ_{m+1}) + (m + 1)η` for `m` operations); short sums and the
//! per-sample error terms are accumulated with `up` (round to nearest, then one ulp
//! up); signed sums get one a-priori `γ_m Σ|·|` term; directed rounding is kept where
//! it decides a branch (the chord cases, "active somewhere") or bounds an exponential.

use autodiff::Transpose;
use nalgebra::DMatrix;
use nets::Targets;

use super::terms::{driver_ce, grad_error, penalty_terms, quad_sample, sums_term};
use super::{Parts, TopBlockWorkspace};
use crate::enclosure::api::OP;
use crate::enclosure::fp::{LIBM_ULPS, U64, UpOps, dn, eta, gamma, up};
use crate::error::{MajorizeError, Result};
use crate::prod::gemm;

#[cfg(test)]
thread_local! {
    /// Test-only mutation knobs (absent from non-test builds).
    pub(crate) static KNOBS: std::cell::Cell<Knobs> = const { std::cell::Cell::new(Knobs {
        zero_slack: false,
        tangent_everywhere: false,
    }) };
}

/// Mutation knobs of the tests: drop the slack; take the tangent also where `C > 0`.
#[cfg(test)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Knobs {
    pub(crate) zero_slack: bool,
    pub(crate) tangent_everywhere: bool,
}

#[cfg(test)]
fn knobs() -> Knobs {
    KNOBS.with(|k| k.get())
}

#[cfg(not(test))]
#[derive(Clone, Copy)]
struct Knobs {
    zero_slack: bool,
    tangent_everywhere: bool,
}

#[cfg(not(test))]
#[inline(always)]
fn knobs() -> Knobs {
    Knobs {
        zero_slack: false,
        tangent_everywhere: false,
    }
}

/// The bound's coefficients in f64.
pub(crate) struct Raw {
    pub(crate) value: f64,
    pub(crate) slope: f64,
    pub(crate) curvature: f64,
    pub(crate) slack: f64,
}

impl Raw {
    /// The bound in `T` on `[0, alpha_max]`: the value as computed, the slope, curvature
    /// and slack rounded up into `T`.
    pub(crate) fn into_bound<T: autodiff::Real>(self, alpha_max: T) -> super::RayBound<T> {
        use crate::enclosure::api::to_t_up;
        super::RayBound {
            value: T::of(self.value),
            slope: to_t_up(self.slope),
            curvature: to_t_up(self.curvature),
            slack: to_t_up(self.slack),
            alpha_max,
        }
    }
}

/// `up(x + y)`.
#[inline]
pub(crate) fn ua(x: f64, y: f64) -> f64 {
    up(x + y)
}

/// `up(x * y)`.
#[inline]
pub(crate) fn um(x: f64, y: f64) -> f64 {
    up(x * y)
}

/// A lower bound of `exp(y)` for every real `y >= x` (step 6, the variance bound):
/// `exp(x)(1 - 2Lu) - η` rounded down (libm accuracy, docs/MAJORIZE.md §4), with the
/// argument clamped to `[., 709]` (so the result stays finite; `exp` is increasing) and
/// 0 below -745 or for NaN. `exp_f = dn(1 - 2Lu)`, `et = η`.
#[inline]
pub(crate) fn exp_lo(x: f64, exp_f: f64, et: f64) -> f64 {
    if x.is_nan() || x < -745.0 {
        return 0.0;
    }
    let x = x.min(709.0);
    dn(dn(dn(x.exp() * exp_f)) - et).max(0.0)
}

/// `(sure, t̂)` with `t̂ = fl(z + fl(ā p))`: when `sure`, `t̂` has the sign of the exact
/// `z + ā p` and of its directed bounds `t_hi = up(z + up(ā p))`, `t_lo = dn(z + dn(ā
/// p))`. All three are within `8.2u S + 6η` of `t̂` (`S = |z| + |ā p|`: two operations
/// of error `u`, two ulps `<= 2u|·| + 2^-1074`), and the margin
/// `fl(fl(|z| + |fl(ā p)|)·2e-15 + 1e-300)` is at least `18u S (1 - 4u) + 0.99e-300`
/// (docs/MAJORIZE.md, the top block's bound, step 7). Not `sure` for NaN or infinities.
#[inline(always)]
pub(crate) fn sure_t(z: f64, pv: f64, abar: f64) -> (bool, f64) {
    let ap = abar * pv;
    let tp = z + ap;
    (tp.abs() > (z.abs() + ap.abs()) * 2e-15 + 1e-300, tp)
}

/// Step 6, the shifted exponentials of the box `[lo, hi]` of one sample's logits: with
/// `M = max_k lo_k`, `E_k <= exp(lo_k - M)` into `eb`, its prefix sums `pre[k] <=
/// Σ_{i<k} E_i` and suffix sums `suf[k] <= Σ_{i>=k} E_i`, all rounded down (`pre`,
/// `suf` of length `K + 1`). Returns `M`, or `None` (nothing written) when `M` is not
/// finite.
pub(crate) fn shifted_exps(
    lo: &[f64],
    eb: &mut [f64],
    pre: &mut [f64],
    suf: &mut [f64],
    exp_f: f64,
    et: f64,
) -> Option<f64> {
    let kk = lo.len();
    let shift = lo.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !shift.is_finite() {
        return None;
    }
    pre[0] = 0.0;
    for k in 0..kk {
        eb[k] = exp_lo(dn(lo[k] - shift), exp_f, et);
        pre[k + 1] = dn(pre[k] + eb[k]);
    }
    suf[kk] = 0.0;
    for k in (0..kk).rev() {
        suf[k] = dn(suf[k + 1] + eb[k]);
    }
    Some(shift)
}

/// Step 6: an upper bound of `sup softmax_j` over the box `[lo, hi]`, i.e. of `1/(1 +
/// Σ_{i≠j} exp(lo_i - hi_j))`, from [`shifted_exps`]' output: `exp(lo_i - hi_j) >=
/// E_i F_j` with `F_j <= exp(M - hi_j)`, the sum over `i ≠ j` = `pre[j] + suf[j + 1]`,
/// everything rounded so that the bound only grows; 1 when `M` is not finite (`hi_j`
/// is then not evaluated).
#[inline]
pub(crate) fn sup_softmax(
    shift: Option<f64>,
    j: usize,
    hi_j: impl FnOnce() -> f64,
    pre: &[f64],
    suf: &[f64],
    exp_f: f64,
    et: f64,
) -> f64 {
    let Some(shift) = shift else {
        return 1.0;
    };
    let f = exp_lo(dn(shift - hi_j()), exp_f, et);
    let sl = dn(f * dn(pre[j] + suf[j + 1]));
    up(1.0 / dn(1.0 + sl)).min(1.0)
}

/// The target entry `y_k` of sample `s` (labels: one-hot).
pub(crate) fn target_at(t: &Targets<f64>, k: usize, s: usize) -> f64 {
    match t {
        Targets::Labels { labels, .. } => f64::from(u8::from(labels[s] == k)),
        Targets::Dense(m) => m[(k, s)],
    }
}

/// Errors unless the targets fit `k` outputs and `n` samples (finite dense targets).
pub(crate) fn check_targets(t: &Targets<f64>, k: usize, n: usize) -> Result<()> {
    let bad = |detail: String| MajorizeError::Shape { op: OP, detail };
    match t {
        Targets::Labels { labels, classes } => {
            if labels.len() != n || *classes != k {
                return Err(bad(format!(
                    "{} labels of {classes} classes for {n} samples and {k} outputs",
                    labels.len()
                )));
            }
            if let Some(s) = labels.iter().position(|l| *l >= k) {
                return Err(bad(format!("label {} of sample {s} is >= {k}", labels[s])));
            }
        }
        Targets::Dense(m) => {
            if m.shape() != (k, n) {
                return Err(bad(format!(
                    "targets are {}x{}, expected {k}x{n}",
                    m.nrows(),
                    m.ncols()
                )));
            }
            crate::validate::finite(OP, "targets", m)?;
        }
    }
    Ok(())
}

/// The bound (module doc of `top_block`; steps of docs/MAJORIZE.md in the comments).
pub(crate) fn ray_bound(
    p: &Parts<'_>,
    value: Option<f64>,
    ws: &mut TopBlockWorkspace,
) -> Result<Raw> {
    let (kk, dh) = p.w2.shape();
    let (nin, n) = p.a_in.shape();
    let abar = p.alpha_max;
    check_targets(p.targets, kk, n)?;
    let kf = kk as f64;
    let (u, et) = (U64, eta(U64));
    let w = super::terms::weight_up(p.loss, n);
    // Step 4: the logits at a = 0 from relu(Z0'), nets' loss value and gradient there.
    if ws.act.shape() != p.z0.shape() {
        ws.act = DMatrix::zeros(dh, n);
    }
    for (o, z) in ws.act.iter_mut().zip(p.z0.iter()) {
        *o = z.max(0.0);
    }
    if ws.logits.shape() != (kk, n) {
        ws.logits = DMatrix::zeros(kk, n);
    }
    // Products through the GEMM wrapper, as the ray bound's (session 20): every error
    // term here holds for any summation order.
    gemm(&mut ws.logits, p.w2, Transpose::No, &ws.act, Transpose::No)?;
    for mut c in ws.logits.column_iter_mut() {
        c += p.b2;
    }
    let data0 = p
        .loss
        .value_and_output_grad(&ws.logits, p.targets, &mut ws.grad)
        .map_err(|e| MajorizeError::Unsupported(format!("enclose_top_block: loss: {e}")))?;
    let value = match value {
        Some(v) => v,
        None => data0 + p.net.weight_penalty(p.loss.l2),
    };
    if ws.c.shape() != (dh, n) {
        ws.c = DMatrix::zeros(dh, n);
    }
    gemm(&mut ws.c, p.w2, Transpose::Yes, &ws.grad, Transpose::No)?;
    // Per-hidden-unit constants (step 2): wa_j = max_k|W_jk| + ā max_k|V_jk|,
    // bb_j = |b_j| + ā|β_j|, cm_j = max_k |W2_kj|.
    ws.col.clear();
    ws.col.resize(4 * n + 3 * dh + 5 * kk + 2, 0.0);
    let (eps_c, rest) = ws.col.split_at_mut(n);
    let (dzs, rest) = rest.split_at_mut(n);
    let (qb, rest) = rest.split_at_mut(n);
    let (ysb, rest) = rest.split_at_mut(n);
    let (wa, rest) = rest.split_at_mut(dh);
    let (bb, rest) = rest.split_at_mut(dh);
    let (cm, rest) = rest.split_at_mut(dh);
    let (rkb, rest) = rest.split_at_mut(kk);
    let (lob, rest) = rest.split_at_mut(kk);
    let (eb, rest) = rest.split_at_mut(kk);
    let (pre, suf) = rest.split_at_mut(kk + 1);
    for j in 0..dh {
        let (mut mw, mut mv) = (0.0f64, 0.0f64);
        for c in 0..nin {
            mw = mw.max(p.w[(j, c)].abs());
            mv = mv.max(p.v[j + c * dh].abs());
        }
        wa[j] = ua(mw, um(abar, mv));
        bb[j] = ua(p.b[j].abs(), um(abar, p.beta[j].abs()));
        cm[j] = (0..kk).map(|k| p.w2[(k, j)].abs()).fold(0.0, f64::max);
    }
    let (mut m1, mut m2, mut rowsum) = (0.0f64, 0.0f64, 0.0f64);
    for k in 0..kk {
        let (mut s1, mut s2, mut s3) = (0.0, 0.0, 0.0);
        for j in 0..dh {
            let a = p.w2[(k, j)].abs();
            s1 = ua(s1, um(a, wa[j]));
            s2 = ua(s2, um(a, bb[j]));
            s3 = ua(s3, a);
        }
        (m1, m2, rowsum) = (m1.max(s1), m2.max(s2), rowsum.max(s3));
    }
    let rw = wa.iter().fold(0.0, |s, x| ua(s, *x));
    let rb = bb.iter().fold(0.0, |s, x| ua(s, *x));
    let w2max = cm.iter().copied().fold(0.0, f64::max);
    let b2max = p.b2.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    // ||W2||_2 <= min(||W2||_F, sqrt(||W2||_1 ||W2||_inf)).
    let nb2 = super::terms::norm2_sq_upper(p.w2, rowsum);
    // Step 1: c bounds |Ẑ - Z'| and |Z - Z'| relative to G (apply_step, the driver's
    // GEMM + bias, the given products with the check's 2γ).
    let g4 = gamma(4, u);
    let gn = gamma(nin + 1, u);
    let cdev = ua(g4, um(gn, ua(3.0, g4)));
    let gd = gamma(dh + 1, u);
    let gk = gamma(kk, u);
    let ln_k = up(kf.ln());
    let l = LIBM_ULPS;
    let geps_p = gamma(2 * l as usize + kk + 2, u);
    // Plain sums of `d` (or `2d`: `d` products and `d` additions) nonnegative terms,
    // then one inflation to an upper bound of the exact sum.
    let (ops_d, ops_2d, ops_n) = (UpOps::new(dh), UpOps::new(2 * dh), UpOps::new(nin));
    // Step 4: per sample, the bound on ||ĝ_s - g_s||_1 and the gemm_tr term.
    for s in 0..n {
        let ys: f64 = (0..kk).fold(0.0, |a, k| ua(a, target_at(p.targets, k, s).abs()));
        ysb[s] = ys;
        let act1 = ops_d.apply(ws.act.column(s).iter().sum::<f64>());
        let dz = ua(um(gd, ua(um(w2max, act1), b2max)), (dh as f64 + 2.0) * et);
        eps_c[s] = grad_error(&ws.logits, &ws.grad, s, ys, dz, w, geps_p, gk);
        dzs[s] = dz;
    }
    // Steps 2, 3, 5: one pass over the d x N entries.
    let kn = knobs();
    let (mut lin, mut labs) = (0.0f64, 0.0f64);
    if ws.pm.shape() != (dh, n) {
        ws.pm = DMatrix::zeros(dh, n);
    }
    let (mut slope_err, mut err_d, mut lsum) = (0.0, 0.0, 0.0);
    // The unweighted sum of the per-sample magnitudes (nets sums before its product by
    // 1/N; review19's finding 1).
    let mut lraw = 0.0f64;
    for s in 0..n {
        let ys = ysb[s];
        let alpha_s = ops_n.apply(p.a_in.column(s).iter().map(|x| x.abs()).sum::<f64>());
        let (mut z1, mut p1, mut q, mut sc) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        let (zc, pc, cc) = (p.z0.column(s), p.pd.column(s), ws.c.column(s));
        let mut pmc = ws.pm.column_mut(s);
        for j in 0..dh {
            let (z, pv, c) = (zc[j], pc[j], cc[j]);
            z1 += z.abs();
            p1 += pv.abs();
            sc += cm[j] * pv.abs();
            // The signs of t_hi and t_lo (directed) decide the branches below; `sure_t`
            // stands in for them when it can.
            let (sure, tp) = sure_t(z, pv, abar);
            if sure && z != 0.0 && (z > 0.0) == (tp > 0.0) {
                // No kink on [0, ā] (z and t have one sign): active iff z > 0, and the
                // chord, the tangent and ΔA(ā)/ā are all `x` below. Branch-free; the
                // same values as the general path (an added ±0 leaves q, lin, labs).
                let x = if z > 0.0 { pv } else { 0.0 };
                q += x * x;
                pmc[j] = x.abs();
                let t = c * x;
                lin += t;
                labs += t.abs();
                continue;
            }
            let t_hi = if sure { tp } else { ua(z, um(abar, pv)) };
            // Active somewhere on [0, ā] unless both ends are <= 0 (ΔA ≡ 0 then).
            if z > 0.0 || t_hi > 0.0 {
                q += pv * pv;
                pmc[j] = pv.abs();
            } else {
                pmc[j] = 0.0;
            }
            if c == 0.0 {
                continue;
            }
            let x = if c > 0.0 && !kn.tangent_everywhere {
                // Chord: an upper bound of ΔA(ā)/ā, which is p (both ends active), 0
                // (both inactive), -z/ā (z > 0 >= t) or t/ā <= p (z <= 0 < t), with
                // t = z + ā p in [t_lo, t_hi].
                if z > 0.0 {
                    let t_lo = if sure { tp } else { dn(z + dn(abar * pv)) };
                    if t_lo > 0.0 {
                        pv
                    } else if t_hi <= 0.0 {
                        up(-z / abar)
                    } else {
                        pv.max(up(-z / abar))
                    }
                } else if t_hi <= 0.0 {
                    0.0
                } else {
                    // The directed t_hi's value (tp only stood in for its sign).
                    pv.min(up(ua(z, um(abar, pv)) / abar)).max(0.0)
                }
            } else if z > 0.0 {
                pv
            } else if z < 0.0 {
                0.0
            } else {
                pv.max(0.0)
            };
            let t = c * x;
            lin += t;
            labs += t.abs();
        }
        let (z1, p1, sc, q) = (
            ops_d.apply(z1),
            ops_d.apply(p1),
            ops_2d.apply(sc),
            ops_2d.apply(q),
        );
        // |C - Ĉ|_js <= cm_j eps_c[s] + K η (the gemm_tr's underflow).
        slope_err = ua(slope_err, ua(um(eps_c[s], sc), um(kf * et, p1)));
        qb[s] = q;
        // Step 6: the per-sample deviations of the logits and the loss.
        let ez = um(
            et,
            ua(ua(alpha_s, 1.0), um(nin as f64 + 1.0, ua(3.0, abar))),
        );
        let dex = ua(um(cdev, ua(um(alpha_s, m1), m2)), um(rowsum, ez));
        let s_s = ua(
            ua(ua(z1, um(abar, p1)), um(cdev, ua(um(alpha_s, rw), rb))),
            um(dh as f64, ez),
        );
        let mag = ua(um(w2max, s_s), b2max);
        let dlt = ua(ua(dex, um(gd, mag)), (dh as f64 + 2.0) * et);
        let zm = ua(um(mag, 1.0 + 2.0 * gd), (dh as f64 + 2.0) * et);
        let drv = driver_ce(ys, zm, kk, ln_k);
        err_d = ua(err_d, um(w, ua(um(2.0 * ys, dlt), drv)));
        let mag = um(ys, ua(ua(um(2.0, zm), ln_k), 1.0));
        lsum = ua(lsum, um(w, mag));
        lraw = ua(lraw, mag);
    }
    // `labs` = fl Σ|fl(Ĉ x)| over the d N entries (d N products, d N additions), so
    // `UpOps(2 d N)` bounds the exact Σ|Ĉ x|; the d N products may underflow, by at most
    // η/16 each: `d N η` more.
    let labs = UpOps::new(2 * dh * n).apply(labs);
    let lin_hi = ua(
        ua(lin, um(gamma(dh * n + 1, u), labs)),
        (dh * n) as f64 * et,
    );
    // Step 6, quadratic term: R = |W2| (|P'| ∘ active) bounds |δ_s(a)| / a per logit.
    super::abs_into(&mut ws.absw2, p.w2);
    if ws.r.shape() != (kk, n) {
        ws.r = DMatrix::zeros(kk, n);
    }
    gemm(&mut ws.r, &ws.absw2, Transpose::No, &ws.pm, Transpose::No)?;
    let rf = up(1.0 + 2.0 * gamma(dh + 1, u));
    let r_eta = (dh as f64 + 1.0) * et;
    let exp_f = dn(1.0 - 2.0 * l * u);
    let mut quad = 0.0f64;
    for s in 0..n {
        let ys = ysb[s];
        for (k, r) in rkb.iter_mut().enumerate() {
            *r = ua(um(ws.r[(k, s)], rf), r_eta);
        }
        let boh = um(um(0.25, nb2), qb[s]);
        let zc = ws.logits.column(s);
        let qs = quad_sample(zc, rkb, dzs[s], abar, boh, (lob, eb, pre, suf), exp_f, et);
        quad = ua(quad, um(um(w, ys), qs));
    }
    // Step 7: the penalty, over every penalised tensor (the direction lives on the block).
    let blocks: [(&[f64], &[f64], bool); 2] = [
        (p.w.as_slice(), p.v, p.w_penalised),
        (p.b.as_slice(), p.beta, p.b_penalised),
    ];
    let pen = penalty_terms(p.net, p.loss.l2, abar, blocks);
    let sums = sums_term(p.targets, p.loss.kind, n, kk, lsum, pen.pen_max, value);
    let err = ua(ua(err_d, pen.pe), sums);
    let mut slack = um(2.0, err);
    if kn.zero_slack {
        slack = 0.0;
    }
    let slope = ua(ua(lin_hi, slope_err), pen.slope);
    let curvature = ua(quad, pen.curv);
    if !(slack.is_finite()
        && slope.is_finite()
        && curvature.is_finite()
        && super::terms::unweighted_sum_finite(lraw, n, kk))
    {
        slack = f64::INFINITY;
    }
    Ok(Raw {
        value,
        slope,
        curvature,
        slack,
    })
}
