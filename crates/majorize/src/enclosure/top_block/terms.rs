//! The per-sample and global terms of the top block's bound that the ray bound of lower
//! blocks shares (docs/MAJORIZE.md, "The top block's chord/tangent bound", steps 4-6;
//! moved here from `bound.rs` unchanged).

use nalgebra::DMatrix;
use nets::Targets;

use super::bound::{shifted_exps, sup_softmax, ua, um};
use crate::enclosure::fp::{LIBM_ULPS, U64, dn, eta, gamma, up, up_ops};

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

/// `max_k Σ_j |W_kj|` (`‖W‖_∞`), each row summed with rounding up.
pub(crate) fn row_sum_max(w: &DMatrix<f64>) -> f64 {
    (0..w.nrows())
        .map(|k| w.row(k).iter().fold(0.0, |s, x| ua(s, x.abs())))
        .fold(0.0, f64::max)
}

/// An upper bound of `‖W‖₂²`: `min(‖W‖_F², ‖W‖₁ ‖W‖_∞)`, rounded up, given `rowsum`
/// `>= ‖W‖_∞` ([`row_sum_max`]).
pub(crate) fn norm2_sq_upper(w: &DMatrix<f64>, rowsum: f64) -> f64 {
    let fro = w.iter().fold(0.0, |s, x| ua(s, um(*x, *x)));
    let col1 = (0..w.ncols())
        .map(|j| w.column(j).iter().fold(0.0, |s, x| ua(s, x.abs())))
        .fold(0.0, f64::max);
    fro.min(um(col1, rowsum))
}

/// An upper bound of the exact sample weight (`1` for a sum, `1/N` for a mean), the
/// multiplier of every per-sample nonnegative term of both bounds: `fl(1/N)` may lie up
/// to `u` relative below `1/N`, so a mean takes the next float above it (review
/// rayreview's finding 1; `1/N` exact for `N` a power of two is then one ulp high,
/// harmless).
pub(crate) fn weight_up(loss: &nets::Loss, n: usize) -> f64 {
    let w = loss.sample_weight(n);
    if w == 1.0 { w } else { up(w) }
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
/// roundings on terms of total size <= Y_s (2 z_s + ln K); exact for labels under
/// cross-entropy, whose other terms are exact zeros; squared error sums every output,
/// R4'), over the N samples, the product by fl(1/N) and the penalty. `lsum` bounds the
/// sum over samples of the weighted per-sample magnitudes.
pub(crate) fn sums_term(
    targets: &Targets<f64>,
    kind: nets::LossKind,
    n: usize,
    kk: usize,
    lsum: f64,
    pen_max: f64,
    value: f64,
) -> f64 {
    let k_sum = match (kind, targets) {
        (nets::LossKind::Mse, _) | (_, Targets::Dense(_)) => kk,
        (_, Targets::Labels { .. }) => 0,
    };
    um(
        gamma(n + k_sum + 4, U64),
        ua(ua(lsum, pen_max), value.abs()),
    )
}

/// Whether the driver's sum of the samples' losses (before its product by the sample
/// weight) stays finite: `lraw` bounds the sum of the per-sample magnitudes, inflated by
/// `γ_{N+K}` for the roundings of the sums over the outputs and the samples (review19's
/// finding 1: nets sums the losses before its product by `1/N`). Both bounds make their
/// slack infinite otherwise.
pub(crate) fn unweighted_sum_finite(lraw: f64, n: usize, kk: usize) -> bool {
    um(lraw, up(1.0 + gamma(n + kk, U64))).is_finite()
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
#[allow(clippy::too_many_arguments)]
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
