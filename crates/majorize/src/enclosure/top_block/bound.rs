//! The arithmetic of the top block's chord/tangent bound (docs/MAJORIZE.md, "The top
//! block's chord/tangent bound", steps 1-7; the step numbers below refer to it). All in
//! f64. The long sums (over the `d` hidden units per sample, over the `d x N` entries)
//! are plain f64 sums of nonnegative terms followed by one rigorous inflation
//! ([`UpOps`]: `x (1 + 2γ_{m+1}) + (m + 1)η` for `m` operations); short sums and the
//! per-sample error terms are accumulated with `up` (round to nearest, then one ulp
//! up); signed sums get one a-priori `γ_m Σ|·|` term; directed rounding is kept where
//! it decides a branch (the chord cases, "active somewhere") or bounds an exponential.

use nalgebra::DMatrix;
use nets::Targets;

use super::{Parts, TopBlockWorkspace};
use crate::enclosure::api::OP;
use crate::enclosure::fp::{LIBM_ULPS, U64, UpOps, dn, eta, gamma, up, up_ops};
use crate::error::{MajorizeError, Result};

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
    let w = p.loss.sample_weight(n);
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
    ws.logits.gemm(1.0, p.w2, &ws.act, 0.0);
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
    ws.c.gemm_tr(1.0, p.w2, &ws.grad, 0.0);
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
    let fro = p.w2.iter().fold(0.0, |s, x| ua(s, um(*x, *x)));
    let col1 = (0..dh)
        .map(|j| (0..kk).fold(0.0, |s, k| ua(s, p.w2[(k, j)].abs())))
        .fold(0.0, f64::max);
    let nb2 = fro.min(um(col1, rowsum));
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
        lsum = ua(lsum, um(w, um(ys, ua(ua(um(2.0, zm), ln_k), 1.0))));
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
    super::copy_into(&mut ws.absw2, p.w2);
    ws.absw2.apply(|x| *x = x.abs());
    if ws.r.shape() != (kk, n) {
        ws.r = DMatrix::zeros(kk, n);
    }
    ws.r.gemm(1.0, &ws.absw2, &ws.pm, 0.0);
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
    let sums = sums_term(p.targets, n, kk, lsum, pen.pen_max, value);
    let err = ua(ua(err_d, pen.pe), sums);
    let mut slack = um(2.0, err);
    if kn.zero_slack {
        slack = 0.0;
    }
    let slope = ua(ua(lin_hi, slope_err), pen.slope);
    let curvature = ua(quad, pen.curv);
    if !(slack.is_finite() && slope.is_finite() && curvature.is_finite()) {
        slack = f64::INFINITY;
    }
    Ok(Raw {
        value,
        slope,
        curvature,
        slack,
    })
}

/// Step 5: the penalty's exact slope `l2 <W, V>` (rounded up with its `γ`), curvature
/// `(l2/2)‖V‖²`, its largest value on `[0, ā]` and the driver's error `pe` (over every
/// parameter of `net`; `blocks` = the moving tensors and their directions, `true` where
/// penalised).
pub(crate) struct PenaltyTerms {
    pub(crate) slope: f64,
    pub(crate) curv: f64,
    pub(crate) pen_max: f64,
    pub(crate) pe: f64,
}

/// [`PenaltyTerms`] of `net` with L2 weight `l2` on `[0, abar]`.
pub(crate) fn penalty_terms(
    net: &nets::Sequential<f64>,
    l2: f64,
    abar: f64,
    blocks: [(&[f64], &[f64], bool); 2],
) -> PenaltyTerms {
    let (u, et) = (U64, eta(U64));
    let g4 = gamma(4, u);
    let (mut sw2, mut nparams) = (0.0f64, 0usize);
    for layer in net.layers() {
        for t in (0..layer.num_param_tensors()).filter_map(|i| layer.param(i)) {
            nparams += t.values.len();
            if t.penalised {
                sw2 = t.values.iter().fold(sw2, |a, x| ua(a, um(*x, *x)));
            }
        }
    }
    let (mut wv, mut swv, mut sv2) = (0.0f64, 0.0f64, 0.0f64);
    let m_pen: usize = blocks.iter().map(|(_, v, _)| v.len()).sum();
    for (x, v, pen) in blocks {
        if !pen {
            continue;
        }
        for (a, b) in x.iter().zip(v) {
            wv += a * b;
            swv = ua(swv, um(a.abs(), b.abs()));
            sv2 = ua(sv2, um(*b, *b));
        }
    }
    let dot_hi = ua(wv, um(gamma(m_pen + 1, u), swv));
    let pslope = um(l2, dot_hi);
    let pcurv = um(0.5 * l2, sv2);
    let sm = ua(ua(sw2, um(2.0 * abar, swv)), um(um(abar, abar), sv2));
    let f1 = up(1.0 + g4);
    let fac = up(um(um(f1, f1), up(1.0 + gamma(nparams + 6, u))) - 1.0);
    let pen_max = um(0.5 * l2, sm);
    let pe = ua(um(pen_max, fac), nparams as f64 * et);
    PenaltyTerms {
        slope: pslope,
        curv: pcurv,
        pen_max,
        pe,
    }
}

/// Step 4, the driver's sums: over the K outputs inside each sample's loss (K - 1
/// roundings on terms of total size <= Y_s (2 z_s + ln K); exact for labels, whose other
/// terms are exact zeros), over the N samples, the product by fl(1/N) and the penalty.
pub(crate) fn sums_term(
    targets: &Targets<f64>,
    n: usize,
    kk: usize,
    lsum: f64,
    pen_max: f64,
    value: f64,
) -> f64 {
    let k_sum = match targets {
        Targets::Labels { .. } => 0,
        Targets::Dense(_) => kk,
    };
    um(
        gamma(n + k_sum + 4, U64),
        ua(ua(lsum, pen_max), value.abs()),
    )
}

/// Step 4, one sample's error of the driver's cross-entropy evaluation from its logits
/// (§4(c)): `Y_s γ_1 (12 z_s + (L + 8) ln K + 2L + 4K + 8) + Kη`, rounded up with `8 + K +
/// L` operations counted; `zm >= max |logit|`, `ln_k >= ln K`.
pub(crate) fn driver_ce(ys: f64, zm: f64, kk: usize, ln_k: f64) -> f64 {
    let (u, et, l, kf) = (U64, eta(U64), LIBM_ULPS, kk as f64);
    let per_ce = 2.0 * l + 4.0 * kf + 8.0;
    let per = ua(ua(um(12.0, zm), um(l + 8.0, ln_k)), per_ce);
    up_ops(um(um(gamma(1, u), ys), per) + kf * et, 8 + kk + l as usize)
}

/// Step 6, one sample's bound on `|Ĉ - C|` per unit of `max_k |W2_kj|`: `‖ĝ_s - g_s‖₁ +
/// γ_K ‖ĝ_s‖₁` for nets' gradient `grad` (column `s`) at the computed `logits`, which
/// are within `dz` (∞-norm) of the exact ones; `ys = Σ_k |y_ks|`, `w` the sample weight,
/// `geps_p = γ_{2L+K+2}`, `gk = γ_K`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn grad_error(
    logits: &DMatrix<f64>,
    grad: &DMatrix<f64>,
    s: usize,
    ys: f64,
    dz: f64,
    w: f64,
    geps_p: f64,
    gk: f64,
) -> f64 {
    let (u, et) = (U64, eta(U64));
    let kf = logits.nrows() as f64;
    let zm0 = um(
        logits.column(s).iter().fold(0.0f64, |m, x| m.max(x.abs())),
        1.0 + 2.0 * u,
    );
    let eps_p = ua(ua(geps_p, um(2.0, ua(um(2.0 * u, zm0), dz))), kf * et);
    let eg = um(
        um(w, ys),
        um(ua(ua(eps_p, 2.0 * gk), um(4.0, gamma(4, u))), 1.0 + 4.0 * u),
    );
    let g1 = grad.column(s).iter().fold(0.0, |a, x| ua(a, x.abs()));
    ua(eg, um(gk, g1))
}

/// Step 6, one sample's quadratic factor (to be multiplied by `w Y_s`): the smallest of
/// the Böhning bound `boh`, `¼ Σ_k R_k²` and the variance bound `½ Σ_{j≠c} p̄_j (R_j +
/// R_c)²` over the box `zc ± (dz + ā R)`; `rkb` = the rigorous `R` of the sample, `bufs`
/// = four `K` (`K`, `K`, `K + 1`, `K + 1`... as the caller's split) scratch slices.
pub(crate) fn quad_sample(
    zc: nalgebra::DVectorView<'_, f64>,
    rkb: &[f64],
    dz: f64,
    abar: f64,
    boh: f64,
    bufs: (&mut [f64], &mut [f64], &mut [f64], &mut [f64]),
    exp_f: f64,
    et: f64,
) -> f64 {
    let (lob, eb, pre, suf) = bufs;
    let kk = rkb.len();
    let boh2 = um(0.25, rkb.iter().fold(0.0, |a, r| ua(a, um(*r, *r))));
    // Var_p(δ) <= Σ_{j≠c} p̄_j (δ_j - δ_c)², p̄_j = sup of softmax_j over the box
    // [lo, hi] of the exact logits ± ā R (which contains every Lagrange point ξ_s):
    // p̄_j = 1/(1 + Σ_{i≠j} exp(lo_i - hi_j)), with exp(lo_i - hi_j) =
    // exp(lo_i - M) exp(M - hi_j), M = max_i lo_i, so 2K - 1 exponentials per sample:
    // E_i <= exp(lo_i - M), F_j <= exp(M - hi_j), and prefix and suffix sums of E,
    // everything rounded down. When M is not finite, p̄_j = 1 (always valid).
    let c = (0..kk).fold(0, |m, k| if zc[k] > zc[m] { k } else { m });
    let rad = |k: usize| ua(dz, um(abar, rkb[k]));
    for (k, lo) in lob.iter_mut().enumerate() {
        *lo = dn(zc[k] - rad(k));
    }
    let shift = shifted_exps(lob, eb, pre, suf, exp_f, et);
    let (mut var, mut ok) = (0.0f64, true);
    for j in (0..kk).filter(|j| *j != c) {
        let pbar = sup_softmax(shift, j, || up(zc[j] + rad(j)), pre, suf, exp_f, et);
        let dd = ua(rkb[j], rkb[c]);
        var = ua(var, um(pbar, um(dd, dd)));
        ok &= var.is_finite();
    }
    let vb = if ok { um(0.5, var) } else { f64::INFINITY };
    boh.min(boh2).min(vb)
}
