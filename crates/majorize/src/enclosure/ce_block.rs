//! The plain-`f64` cross-entropy rule of `ce_plain` (its module doc holds the rule and the
//! rounding argument) for a whole block of samples at once, in passes over the samples of
//! the block: the inputs are transposed to structure-of-arrays, so each pass's inner loop
//! runs over samples and vectorises, and every logit is exponentiated with
//! `expo::exp_nonpos` (no libm call) in one pass. Per sample the operations, and the order
//! of every sum over the logits, are those the argument counts.

use super::ce_plain::{BIG, D_MIN, Plain, Term, plain_knobs};
use super::expo::exp_nonpos;
use super::fp::{Iv, LIBM_ULPS, U64, UpOps, dn, gamma, up};
use super::loss::exp_iv;
use super::scalar1::Acc1;

mod scratch;
pub(crate) use scratch::{Block, with_block};

/// A block's logits: `K x N` column-major (sample `n`'s logits at `n K .. (n + 1) K`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Logits<'a> {
    pub(crate) c0: &'a [f64],
    pub(crate) c1: &'a [f64],
    pub(crate) qm: &'a [f64],
    pub(crate) qr: &'a [f64],
    pub(crate) e: &'a [f64],
    pub(crate) y: &'a [f64],
}

/// `sup_box p_j <= 1 / (1 + Σ_{i≠j} exp(z_i,lo - z_j,hi))` with every operation rounded
/// outward, as on the interval path (its fallback when a factor of `n / (n + o g)` is tiny).
fn pairwise(c0: &[f64], dlo: &[f64], dhi: &[f64], j: usize) -> f64 {
    let zhi = up(c0[j] + dhi[j]);
    let mut sl = 0.0;
    for i in 0..c0.len() {
        if i != j {
            let t = dn(dn(c0[i] + dlo[i]) - zhi);
            sl = dn(sl + exp_iv(Iv::point(t)).lo);
        }
    }
    up(1.0 / dn(1.0 + sl)).min(1.0)
}

#[inline(always)]
fn min0(x: f64) -> f64 {
    if x < 0.0 { x } else { 0.0 }
}

#[inline(always)]
fn max0(x: f64) -> f64 {
    if x > 0.0 { x } else { 0.0 }
}

/// `|x| <= 2⁶⁴` (false for NaN).
#[inline(always)]
fn small(x: f64) -> bool {
    x.abs() <= BIG
}

/// `0 <= x <= 2⁶⁴` (false for NaN).
#[inline(always)]
fn radius(x: f64) -> bool {
    (0.0..=BIG).contains(&x)
}

/// The remainder's two terms of logit `j` against the maximal logit `c` (module doc,
/// "The polynomial part"): `(ĉ2_j + 9 u M2_j, de (2 |d0| + de))`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn rem_terms(
    p: &Plain,
    c1: f64,
    qm: f64,
    qr: f64,
    e: f64,
    c1c: f64,
    qmc: f64,
    qrc: f64,
    ec: f64,
) -> (f64, f64) {
    let (a, a2) = (p.a, p.a2);
    let dm = c1 - c1c;
    let dqm = qm - qmc;
    let dqr = qr + qrc;
    let (dql, dqh) = (dqm - dqr, dqm + dqr);
    let lin = dm * a;
    let tlo = 2.0 * min0(lin) + min0(dql * a2);
    let thi = 2.0 * max0(lin) + max0(dqh * a2);
    let sup = (dql * tlo).max(dql * thi).max(dqh * tlo).max(dqh * thi);
    let c2 = max0(dm * dm + sup);
    // Absolute-value polynomial at the leaves `Dm`, `qm_j - qm_c`, `qr_j + qr_c` (each
    // computed with one rounding relative to its own exact value; module doc).
    let mdm = dm.abs();
    let mdq = dqm.abs() + dqr;
    let m2 = mdm * mdm + mdq * (2.0 * mdm * a + mdq * a2);
    let de = e + ec;
    (c2 + 9.0 * p.ua * m2, de * (2.0 * (mdm * a + mdq * a2) + de))
}

/// Adds the cross-entropy model of every sample of the block that passes the guard to
/// `acc` (module doc); `b.ok[n]` says which did (the others are the caller's, for the
/// interval path), and `b.zm`, `b.ya` hold their driver terms. Compiled for AVX-512F or
/// AVX2 when the CPU has them (the same operations in the same order, so the same bits).
pub(crate) fn ce_block(p: &Plain, l: &Logits, k: usize, b: &mut Block, acc: &mut Acc1) {
    super::fp::widest(
        #[inline(always)]
        || ce_block_for(p, l, k, b, acc),
    )
}

/// The block kernel (module doc) with the default code generation.
#[inline(always)]
pub(crate) fn ce_block_for(p: &Plain, l: &Logits, k: usize, b: &mut Block, acc: &mut Acc1) {
    let nn = l.c0.len().checked_div(k).unwrap_or(0);
    b.reserve(k, nn);
    let kn = k * nn;
    // Transpose the inputs.
    for (src, dst) in [
        (l.c0, &mut b.c0),
        (l.c1, &mut b.c1),
        (l.qm, &mut b.qm),
        (l.qr, &mut b.qr),
        (l.e, &mut b.e),
        (l.y, &mut b.y),
    ] {
        // In tiles of 8 samples: each tile's `8 K` inputs are read once, contiguously, and
        // written as 8 contiguous entries of each of the K rows.
        let (src, dst) = (&src[..kn], &mut dst[..kn]);
        for (t, tile) in src.chunks(8 * k).enumerate() {
            let (n0, w) = (8 * t, tile.len() / k);
            for j in 0..k {
                let row = &mut dst[j * nn + n0..j * nn + n0 + w];
                for (i, d) in row.iter_mut().enumerate() {
                    *d = tile[i * k + j];
                }
            }
        }
    }
    let (a, a2) = (p.a, p.a2);
    let (fr, ar) = (p.fr, p.ar);
    // Pass 1: guard, outer ranges of each logit's shift over the box ("Ranges"), and the
    // argmax (the last maximal index, as before).
    {
        let (ok, mx, ci) = (&mut b.ok[..nn], &mut b.mx[..nn], &mut b.ci[..nn]);
        ok.fill(true);
        ci.fill(0.0);
        if k > 0 {
            mx.copy_from_slice(&b.c0[..nn]);
        }
        for j in 0..k {
            let r = j * nn..(j + 1) * nn;
            let (c0, c1, qm, qr, e, y) = (
                &b.c0[r.clone()],
                &b.c1[r.clone()],
                &b.qm[r.clone()],
                &b.qr[r.clone()],
                &b.e[r.clone()],
                &b.y[r.clone()],
            );
            let (dlo, dhi) = (&mut b.dlo[r.clone()], &mut b.dhi[r]);
            let jf = j as f64;
            for n in 0..nn {
                ok[n] &= small(c0[n])
                    & small(c1[n])
                    & small(qm[n])
                    & radius(qr[n])
                    & radius(e[n])
                    & small(y[n]);
                let lin = c1[n] * a;
                let lo = (min0(lin) + min0((qm[n] - qr[n]) * a2)) - e[n];
                let hi = (max0(lin) + max0((qm[n] + qr[n]) * a2)) + e[n];
                dlo[n] = lo * fr - ar;
                dhi[n] = hi * fr + ar;
                let take = c0[n] >= mx[n];
                mx[n] = if take { c0[n] } else { mx[n] };
                ci[n] = if take { jf } else { ci[n] };
            }
        }
    }
    // Pass 2: exponentials (`expo::exp_nonpos`, within EXP_ULPS <= L ulps) and sums.
    {
        let (s, sig, ya, yz, yza) = (
            &mut b.s[..nn],
            &mut b.sig[..nn],
            &mut b.ya[..nn],
            &mut b.yz[..nn],
            &mut b.yza[..nn],
        );
        for v in [&mut *s, &mut *sig, &mut *ya, &mut *yz, &mut *yza] {
            v.fill(0.0);
        }
        let mx = &b.mx[..nn];
        let wmin = p.wmin;
        for j in 0..k {
            let r = j * nn..(j + 1) * nn;
            let (c0, y, dlo, dhi) = (
                &b.c0[r.clone()],
                &b.y[r.clone()],
                &b.dlo[r.clone()],
                &b.dhi[r.clone()],
            );
            let (eh, elo, gh) = (&mut b.eh[r.clone()], &mut b.elo[r.clone()], &mut b.gh[r]);
            for n in 0..nn {
                let t = c0[n] - mx[n];
                let x = exp_nonpos(t);
                eh[n] = x;
                s[n] += x;
                // m_i: e^t times the cubic in dlo_i, or exp(t + dlo_i) ("Remainder").
                let w = dlo[n];
                let ew = exp_nonpos(t + w);
                elo[n] = if w >= wmin { x * p.exp_low(w, ew) } else { ew };
                gh[n] = p.exp_low(-dhi[n], exp_nonpos(-dhi[n]));
                let yj = y[n];
                sig[n] += yj;
                ya[n] += yj.abs();
                let tt = yj * c0[n];
                yz[n] += tt;
                yza[n] += tt.abs();
            }
        }
    }
    // Degree 0, per sample (one libm `ln` each).
    let kf = p.kf;
    let lf = LIBM_ULPS;
    for n in 0..nn {
        let s = b.s[n];
        b.inv[n] = 1.0 / s;
        if !b.ok[n] {
            b.v[n] = 0.0;
            b.e0[n] = 0.0;
            continue;
        }
        let ln_s = s.ln();
        let lse = b.mx[n] + ln_s;
        let (sig, ya) = (b.sig[n], b.ya[n]);
        let v = sig * lse - b.yz[n];
        let e0 = p.ua
            * (v.abs()
                + (kf + 2.0) * ya * lse.abs()
                + ya * ((lf + 1.0) * ln_s.abs() + 2.0 * kf + lf + 2.0)
                + (kf + 1.0) * b.yza[n]);
        b.v[n] = v;
        b.e0[n] = e0;
    }
    // Pass 3: degree 1 and the linear part of degree 2, one a-priori term per entry.
    {
        let cd = 3.0 * kf + 2.0 * lf + 6.0;
        let (g1, w1, gq, wq, rq, re) = (
            &mut b.g1[..nn],
            &mut b.w1[..nn],
            &mut b.gq[..nn],
            &mut b.wq[..nn],
            &mut b.rq[..nn],
            &mut b.re[..nn],
        );
        for v in [&mut *g1, &mut *w1, &mut *gq, &mut *wq, &mut *rq, &mut *re] {
            v.fill(0.0);
        }
        let (inv, sig, ya) = (&b.inv[..nn], &b.sig[..nn], &b.ya[..nn]);
        let ua = p.ua;
        for j in 0..k {
            let r = j * nn..(j + 1) * nn;
            let (eh, y, c1, qm, qr, e) = (
                &b.eh[r.clone()],
                &b.y[r.clone()],
                &b.c1[r.clone()],
                &b.qm[r.clone()],
                &b.qr[r.clone()],
                &b.e[r],
            );
            for n in 0..nn {
                let pj = eh[n] * inv[n];
                let cj = sig[n] * pj - y[n];
                let ca = cj.abs();
                let w = ua * (cd * ya[n] * pj + y[n].abs() + 0.4 * ya[n] + (kf + 1.0) * ca);
                g1[n] += cj * c1[n];
                w1[n] += w * c1[n].abs();
                gq[n] += cj * qm[n];
                wq[n] += w * qm[n].abs();
                let cw = ca + w;
                rq[n] += cw * qr[n];
                re[n] += cw * e[n];
            }
        }
    }
    // Pass 4: suffix sums of the lower exponentials m_i ("Remainder").
    {
        let (suf, elo) = (&mut b.suf[..kn + nn], &b.elo[..kn]);
        suf[kn..].fill(0.0);
        for j in (0..k).rev() {
            let (lo, hi) = suf.split_at_mut((j + 1) * nn);
            let (dst, nxt) = (&mut lo[j * nn..], &hi[..nn]);
            let m = &elo[j * nn..(j + 1) * nn];
            for n in 0..nn {
                dst[n] = nxt[n] + m[n];
            }
        }
    }
    // The maximal logit's coefficients, per sample.
    for n in 0..nn {
        let i = b.ci[n] as usize * nn + n;
        b.c1c[n] = b.c1[i];
        b.qmc[n] = b.qm[i];
        b.qrc[n] = b.qr[i];
        b.ec[n] = b.e[i];
    }
    // Pass 5: p̄_j <= n / (n + o g) (n >= e_j, o <= Σ_{i≠j} exp(z_i,lo - mx),
    // g <= exp(-dhi_j)), one division rounded up a priori, and the remainder's sums; the
    // maximal logit's term is multiplied by 0 (it is not part of the sum).
    {
        let (pre, tiny, u2, u0, zm) = (
            &mut b.pre[..nn],
            &mut b.tiny[..nn],
            &mut b.u2[..nn],
            &mut b.u0[..nn],
            &mut b.zm[..nn],
        );
        for v in [&mut *pre, &mut *u2, &mut *u0, &mut *zm] {
            v.fill(0.0);
        }
        tiny.fill(false);
        let (ci, c1c, qmc, qrc, ec) = (
            &b.ci[..nn],
            &b.c1c[..nn],
            &b.qmc[..nn],
            &b.qrc[..nn],
            &b.ec[..nn],
        );
        for j in 0..k {
            let r = j * nn..(j + 1) * nn;
            let (c0, c1, qm, qr, e, eh, elo, gh, dlo, dhi) = (
                &b.c0[r.clone()],
                &b.c1[r.clone()],
                &b.qm[r.clone()],
                &b.qr[r.clone()],
                &b.e[r.clone()],
                &b.eh[r.clone()],
                &b.elo[r.clone()],
                &b.gh[r.clone()],
                &b.dlo[r.clone()],
                &b.dhi[r.clone()],
            );
            let suf = &b.suf[(j + 1) * nn..(j + 2) * nn];
            let pbs = &mut b.pb[r];
            let jf = j as f64;
            for n in 0..nn {
                let oh = pre[n] + suf[n];
                pre[n] += elo[n];
                let o = max0(oh * p.f_o - p.a_o);
                let g = max0(gh[n] * p.f_g - p.a_g);
                let nv = eh[n] * p.f_n + p.a_n;
                let d = nv + o * g;
                let q = (nv / d) * p.f_p + p.tiny;
                let pb = if (d >= D_MIN) & (q < 1.0) { q } else { 1.0 };
                pbs[n] = pb;
                tiny[n] |= !((eh[n] >= D_MIN) & (oh >= D_MIN) & (gh[n] >= D_MIN));
                let pb = if jf == ci[n] { 0.0 } else { pb };
                let (t2, t0) =
                    rem_terms(p, c1[n], qm[n], qr[n], e[n], c1c[n], qmc[n], qrc[n], ec[n]);
                u2[n] += pb * t2;
                u0[n] += pb * t0;
                zm[n] = zm[n].max(c0[n].abs() + (-dlo[n]).max(dhi[n]));
            }
        }
    }
    // Samples with a tiny factor: also the pairwise form, the smaller bound kept.
    for n in 0..nn {
        if b.ok[n] && b.tiny[n] {
            tiny_sample(p, k, nn, n, b);
        }
    }
    // Outputs: each sample's midpoints and radii in plain f64 with a-priori factors, summed
    // over the block in plain f64, and added to the accumulators once per block, outward
    // (module `ce_plain`, "Sums over a block").
    let drop = plain_knobs().drop;
    let keep = |t: Term| if drop == Some(t) { 0.0 } else { 1.0 };
    let (k_rq, k_re, k_rem) = (keep(Term::Rq), keep(Term::Re), keep(Term::Remainder));
    let (fs, fk, f5, m2) = (p.out_s, p.out_k, p.out_5, p.out_m);
    let kua = kf * p.ua;
    let mut s = [0.0f64; 12];
    for n in 0..nn {
        let on = b.ok[n];
        let sel = |x: f64| if on { x } else { 0.0 };
        let (v, g1, gq) = (b.v[n], b.g1[n], b.gq[n]);
        let r0 = b.e0[n] * fs + m2;
        let r1 = b.w1[n] * fk + m2;
        let rqv = (b.wq[n] + k_rq * b.rq[n]) * fk + m2;
        let rev = (k_re * b.re[n]) * fk + m2;
        let u2 = (0.5 * b.u2[n]) * fk + m2;
        let u0 = (0.5 * b.u0[n]) * fk + m2;
        let sig = b.sig[n];
        let sr = (kua * b.ya[n]) * fk + m2;
        let smag = (sig.abs() + sr) * f5;
        let h2 = k_rem * ((smag * u2) * f5 + m2);
        let h0 = k_rem * ((smag * u0) * f5 + m2);
        // σ's sign where it is certain: σ >= fl(sig - sr) >= 0, or σ <= fl(sig + sr) <= 0.
        let pos = sig - sr >= 0.0;
        let neg = sig + sr <= 0.0;
        s[0] += sel(v);
        s[1] += sel(v.abs());
        s[2] += sel(r0);
        s[3] += sel(g1);
        s[4] += sel(g1.abs());
        s[5] += sel(r1);
        s[6] += sel(gq);
        s[7] += sel(gq.abs());
        s[8] += sel(rqv);
        s[9] += sel(if neg { 0.0 } else { h2 });
        s[10] += sel(if pos { 0.0 } else { h2 });
        s[11] += sel(rev + h0);
    }
    let passed = b.ok[..nn].iter().filter(|&&on| on).count();
    #[cfg(test)]
    for _ in 0..passed {
        super::ce_plain::count_plain();
    }
    if passed == 0 {
        return;
    }
    // Once per block: the sums' own rounding (`γ_N` of the absolute sums for the
    // midpoints, `UpOps` for the nonnegative sums).
    let ops = UpOps::new(nn + 1);
    let g = gamma(nn + 1, U64);
    let rad = |r: f64, a: f64| up(ops.apply(r) + up(g * ops.apply(a)));
    acc.c0 = acc.c0.add(Iv::mid_rad(s[0], rad(s[2], s[1])));
    acc.c1 = acc.c1.add(Iv::mid_rad(s[3], rad(s[5], s[4])));
    acc.q = acc.q.add(Iv::mid_rad(s[6], rad(s[8], s[7])));
    acc.q = acc.q.add(Iv::new(-ops.apply(s[10]), ops.apply(s[9])));
    acc.add_e(ops.apply(s[11]));
}

/// Recomputes sample `n`'s remainder sums with `p̄_j = min(n / (n + o g), pairwise)`
/// (module doc, "Tiny factors"), in the same order as pass 5.
#[cold]
fn tiny_sample(p: &Plain, k: usize, nn: usize, n: usize, b: &mut Block) {
    #[cfg(test)]
    super::ce_plain::count_pairwise();
    let [c0, dlo, dhi] = &mut b.col;
    for j in 0..k {
        c0[j] = b.c0[j * nn + n];
        dlo[j] = b.dlo[j * nn + n];
        dhi[j] = b.dhi[j * nn + n];
    }
    let c = b.ci[n] as usize;
    let (mut u2, mut u0) = (0.0, 0.0);
    for j in 0..k {
        let i = j * nn + n;
        let pb = if j == c {
            0.0
        } else {
            b.pb[i].min(pairwise(&c0[..k], &dlo[..k], &dhi[..k], j))
        };
        let (t2, t0) = rem_terms(
            p, b.c1[i], b.qm[i], b.qr[i], b.e[i], b.c1c[n], b.qmc[n], b.qrc[n], b.ec[n],
        );
        u2 += pb * t2;
        u0 += pb * t0;
    }
    b.u2[n] = u2;
    b.u0[n] = u0;
}
