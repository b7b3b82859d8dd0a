//! The general softmax cross-entropy rule of [`super::loss::data_term`] for a small
//! number `K` of directions known at compile time (session 11, issue #14: safe-layerwise
//! on digits-mlp has `k = L = 2`).
//!
//! Per sample (module doc of [`super::loss`]): `σ lse(z) - yᵀz` with the Taylor expansion
//! of the max-shifted log-sum-exp at `c0`, and the remainder `σ θ U`, `θ ∈ [0, 1]`,
//! `U = ½ Σ_{j≠c} p̄_j (δ_j - δ_c)²`, `p̄_j = 1 / (1 + Σ_{i≠j} exp(z_i,lo - z_j,hi))`.
//! The code is the general rule's, line for line: the same floating-point operations on
//! the same operands in the same order, so the enclosure is the same bit for bit
//! (tests/fast.rs, `small_k_paths_match_the_general_rules`). What differs is only the
//! storage: each logit's coefficients sit in a fixed-size [`ElemN`] (no `Vec` per entry,
//! the model's buffers resolved to slices once), the accumulators are [`AccN`], and the
//! per-class scratch is reused across samples.

use nalgebra::DMatrix;

use super::elementwise::kn::{AccN, BoxN, ColsN, ElemN, add_square_n, note_small_k, ranges_n};
use super::fp::{Iv, LIBM_ULPS, U64, UpOps, dn, eta, fmax, fmin, gamma, up};
use super::loss::{DataModel, exp_iv, exp_lower_shift, ln_iv};
use super::model::Model;

/// The cross-entropy data term for `K` directions (no reduction weight), or `None` when
/// `z` does not have `K` directions (the caller then runs the general rule).
pub(super) fn ce_n<const K: usize>(z: &Model, y: &DMatrix<f64>, amax: &[f64]) -> Option<DataModel> {
    let amax: &[f64; K] = amax.try_into().ok()?;
    let (rows, cols) = z.c0.shape();
    let zc = ColsN::<_, K>::of(z)?;
    let bx = BoxN::<K>::new(amax);
    let mut total = AccN::<K>::ZERO;
    let mut abs_sum = 0.0;
    let mut els = vec![ElemN::<K>::ZERO; rows];
    let mut zbox = vec![Iv::ZERO; rows];
    let kf = rows as f64;
    let ln_k = kf.ln();
    let mut ex = vec![Iv::ZERO; rows];
    let mut elo = vec![0.0; rows];
    let mut suf = vec![0.0; rows + 1];
    let drv_on = super::ce_plain::plain_knobs().driver;
    // `up_ops(·, m)` for the two per-sample bounds below, constants computed once.
    let extra = rows + LIBM_ULPS as usize;
    let (drv_ops, abs_ops) = (UpOps::new(8 + extra), UpOps::new(6 + extra));
    let (g1, eta64) = (gamma(1, U64), eta(U64));
    for n in 0..cols {
        for j in 0..rows {
            els[j] = zc.load(n * rows + j);
            let rg = ranges_n(&els[j], &bx);
            zbox[j] = Iv::point(els[j].c0).add(rg.d);
        }
        let c = (0..rows)
            .max_by(|&a, &b| els[a].c0.total_cmp(&els[b].c0))
            .unwrap_or(0);
        let mx = els[c].c0;
        let mut s = Iv::ZERO;
        for j in 0..rows {
            let t = Iv::point(els[j].c0).sub(Iv::point(mx));
            ex[j] = exp_iv(t);
            s = s.add(ex[j]);
        }
        let lse0 = Iv::point(mx).add(ln_iv(s));
        let inv_s = Iv::new(dn(1.0 / s.hi), up(1.0 / s.lo));
        let ycol = &y.as_slice()[n * rows..(n + 1) * rows];
        let mut sigma = Iv::ZERO;
        let mut yz = Iv::ZERO;
        for j in 0..rows {
            let yj = ycol[j];
            sigma = sigma.add(Iv::point(yj));
            yz = yz.add(Iv::point(yj).mul(Iv::point(els[j].c0)));
        }
        total.c0 = total.c0.add(sigma.mul(lse0).sub(yz));
        for j in 0..rows {
            let pj = ex[j].mul(inv_s);
            let coef = sigma.mul(pj).sub(Iv::point(ycol[j]));
            total.add_linear(&els[j], coef);
        }
        let mut u_acc = AccN::<K>::ZERO;
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
            let (ej, ec) = (&els[j], &els[c]);
            let mut diff = ElemN::<K>::ZERO;
            diff.e = up(ej.e + ec.e);
            for i in 0..K {
                let d = Iv::point(ej.c1[i]).sub(Iv::point(ec.c1[i]));
                let (m, r) = d.to_mid_rad();
                diff.c1[i] = m;
                diff.e = up(diff.e + up(r * amax[i]));
            }
            for a in 0..K {
                for b in 0..K {
                    diff.q[a][b] = ej.q[a][b].sub(ec.q[a][b]);
                }
            }
            let rg = ranges_n(&diff, &bx);
            let d0 = add_square_n(
                &diff,
                &rg,
                Iv::new(0.0, up(0.5 * pbar)),
                &mut u_acc.q,
                bx.sq,
            );
            u_acc.add_e(d0);
        }
        for a in 0..K {
            for b in 0..K {
                let q = u_acc.q[a][b];
                let h = Iv::new(fmin(q.lo, 0.0), fmax(q.hi, 0.0));
                total.q[a][b] = total.q[a][b].add(sigma.mul(h));
            }
        }
        total.add_e(up(sigma.mag() * u_acc.e));
        // Driver: nets evaluates in f64 from the T logits (the general rule's constants).
        let zm = zbox.iter().map(|b| b.mag()).fold(0.0, f64::max);
        let ysum: f64 = ycol.iter().map(|v| v.abs()).sum();
        let per = 12.0 * zm + (LIBM_ULPS + 8.0) * ln_k + 2.0 * LIBM_ULPS + 4.0 * kf + 8.0;
        let drv = drv_ops.apply(g1 * ysum * per + kf * eta64);
        if drv_on {
            total.add_e(drv);
        }
        abs_sum = up(abs_sum + abs_ops.apply(ysum * (2.0 * zm + ln_k + 1.0)));
        note_small_k();
    }
    Some(DataModel {
        acc: total.to_acc(),
        abs_sum,
    })
}
