//! The softmax cross-entropy data term for one direction (`k = 1`) on scalars. Each
//! sample takes the plain-`f64` path of `ce_plain` (one a-priori rounding-error term per
//! output coefficient; its module doc gives the rounding argument) when its inputs pass
//! that module's guard, and otherwise the outward-rounded interval path below, which does
//! the general loop's operations (`loss::data_term`) in the same order. The rule and its
//! derivation are in `loss`.

use nalgebra::DMatrix;

use super::ce_block::{Logits, ce_block, with_block};
use super::ce_plain::{Plain, plain_knobs};
use super::elementwise::Acc;
use super::fp::{Iv, LIBM_ULPS, U64, UpOps, dn, eta, fmax, fmin, gamma, up, up_ops};
use super::loss::{exp_iv, exp_lower_shift, ln_iv};
use super::model::Model;
use super::scalar1::{Acc1, Consts1, ranges};

/// One logit of one sample: its model entry and degree-2 interval.
#[derive(Clone, Copy, Debug)]
struct Logit {
    c0: f64,
    c1: f64,
    q: Iv,
    e: f64,
}

/// `Σ_n ℓ_CE(z_n, y_n)` accumulated into `total` (no reduction weight); returns
/// `Σ max |ℓ|` (the general loop's `abs_sum`).
pub(crate) fn ce_k1(z: &Model, y: &DMatrix<f64>, kc: &Consts1, total: &mut Acc) -> f64 {
    let (rows, cols) = z.c0.shape();
    let (c0s, c1s, qms, qrs, es) = (
        z.c0.as_slice(),
        z.c1[0].as_slice(),
        z.qm[0].as_slice(),
        z.qr[0].as_slice(),
        z.e.as_slice(),
    );
    let mut acc = Acc1 {
        c0: total.c0,
        c1: total.c1[0],
        q: total.q[0],
        e: total.e,
    };
    let mut abs_sum = 0.0;
    let kf = rows as f64;
    let ln_k = kf.ln();
    let blank = Logit {
        c0: 0.0,
        c1: 0.0,
        q: Iv::ZERO,
        e: 0.0,
    };
    // The interval path's per-sample scratch, allocated only when a sample takes it.
    let mut interval_scratch = None;
    let plain = Plain::new(kc.amax(), rows);
    let ops_d = UpOps::new(rows + 12);
    let driver = plain_knobs().driver;
    // The driver's per-sample constants, hoisted (`k η` is subnormal: computed once).
    let (g1, k_eta) = (gamma(1, U64), kf * eta(U64));
    let ys = y.as_slice();
    // Samples that pass the plain path's guard take it, the whole block at once; `done[n]`
    // marks them.
    let mut done = vec![false; if plain.is_some() { cols } else { 0 }];
    if let Some(p) = &plain {
        let l = Logits {
            c0: c0s,
            c1: c1s,
            qm: qms,
            qr: qrs,
            e: es,
            y: ys,
        };
        with_block(|b| {
            ce_block(p, &l, rows, b, &mut acc);
            for n in 0..cols {
                if !b.ok[n] {
                    continue;
                }
                done[n] = true;
                let (zm, ysum) = (b.zm[n], b.ya[n]);
                // Driver's error and Σ max|ℓ| as on the interval path (its m = 8 and 6
                // raised to K + 12 for the plain sums inside zm and ysum).
                if driver {
                    let per =
                        12.0 * zm + (LIBM_ULPS + 8.0) * ln_k + 2.0 * LIBM_ULPS + 4.0 * kf + 8.0;
                    acc.add_e(ops_d.apply(g1 * ysum * per + k_eta));
                }
                abs_sum = up(abs_sum + ops_d.apply(ysum * (2.0 * zm + ln_k + 1.0)));
            }
        });
    }
    for n in 0..cols {
        if done.get(n) == Some(&true) {
            continue;
        }
        let (lg, zbox, ex, elo, suf) = interval_scratch.get_or_insert_with(|| {
            (
                vec![blank; rows],
                vec![Iv::ZERO; rows],
                vec![Iv::ZERO; rows],
                vec![0.0; rows],
                vec![0.0; rows + 1],
            )
        });
        for j in 0..rows {
            let idx = n * rows + j;
            let q = Iv::mid_rad(qms[idx], qrs[idx]);
            let rg = ranges(c1s[idx], q, es[idx], kc);
            lg[j] = Logit {
                c0: c0s[idx],
                c1: c1s[idx],
                q,
                e: es[idx],
            };
            zbox[j] = Iv::point(c0s[idx]).add(rg.d);
        }
        let c = (0..rows)
            .max_by(|&a, &b| lg[a].c0.total_cmp(&lg[b].c0))
            .unwrap_or(0);
        let mx = lg[c].c0;
        let mut s = Iv::ZERO;
        for j in 0..rows {
            let t = Iv::point(lg[j].c0).sub(Iv::point(mx));
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
            yz = yz.add(Iv::point(yj).mul(Iv::point(lg[j].c0)));
        }
        acc.c0 = acc.c0.add(sigma.mul(lse0).sub(yz));
        for j in 0..rows {
            let pj = ex[j].mul(inv_s);
            let coef = sigma.mul(pj).sub(Iv::point(y[(j, n)]));
            acc.add_linear(lg[j].c1, lg[j].q, lg[j].e, coef);
        }
        // Remainder σ θ U (module `loss`), U accumulated in `u`.
        let mut u = Acc1::ZERO;
        for i in 0..rows {
            elo[i] = exp_lower_shift(ex[i].lo, zbox[i].lo, lg[i].c0, || {
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
            let f = exp_lower_shift(inv, lg[j].c0, zbox[j].hi, || {
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
            let mut de = up(lg[j].e + lg[c].e);
            let (dm, dr) = Iv::point(lg[j].c1).sub(Iv::point(lg[c].c1)).to_mid_rad();
            de = up(de + up(dr * kc.amax()));
            let dq = lg[j].q.sub(lg[c].q);
            let rg = ranges(dm, dq, de, kc);
            u.add_square(dm, dq, de, &rg, Iv::new(0.0, up(0.5 * pbar)), kc);
        }
        let h = Iv::new(fmin(u.q.lo, 0.0), fmax(u.q.hi, 0.0));
        acc.q = acc.q.add(sigma.mul(h));
        acc.add_e(up(sigma.mag() * u.e));
        let zm = zbox.iter().map(|b| b.mag()).fold(0.0, f64::max);
        let ysum: f64 = (0..rows).map(|j| y[(j, n)].abs()).sum();
        let per = 12.0 * zm + (LIBM_ULPS + 8.0) * ln_k + 2.0 * LIBM_ULPS + 4.0 * kf + 8.0;
        // `ysum` (rows - 1 roundings) and `ln_k` (libm, LIBM_ULPS ulps) are plain f64: their
        // relative errors are counted as `rows + LIBM_ULPS` more operations.
        let extra = rows + LIBM_ULPS as usize;
        let drv = up_ops(gamma(1, U64) * ysum * per + kf * eta(U64), 8 + extra);
        if driver {
            acc.add_e(drv);
        }
        abs_sum = up(abs_sum + up_ops(ysum * (2.0 * zm + ln_k + 1.0), 6 + extra));
    }
    total.c0 = acc.c0;
    total.c1[0] = acc.c1;
    total.q[0] = acc.q;
    total.e = acc.e;
    abs_sum
}
