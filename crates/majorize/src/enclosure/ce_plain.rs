//! Softmax cross-entropy of one sample for one direction (`k = 1`) in plain `f64`, with
//! one a-priori rounding-error term per output coefficient instead of outward rounding
//! after every operation. The rule (module `loss`) is unchanged; only how its numbers are
//! computed differs. `loss1::ce_k1` takes this path for every sample that passes the
//! guard below and the outward-rounded interval path otherwise.
//!
//! # Rounding argument
//!
//! Standard model (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed.,
//! §2.2, Lemma 3.1): `fl(a op b) = (a op b)(1 + δ)`, `|δ| <= u = 2⁻⁵³`, plus an absolute
//! error `<= 2⁻¹⁰⁷⁵` for a product that underflows (sums that underflow are exact);
//! `γ_n = nu/(1 - nu)`. `exp` and `ln` are within `L u` relative (`L = fp::LIBM_ULPS = 8`)
//! plus `η = fp::eta` absolute (module `fp`). `K <= 1024` logits; `Y = Σ|y_j|`.
//!
//! **Guard.** Every input (`c0, c1, qm, qr, e` of the `K` logits, the targets) is finite
//! with magnitude `<= 2⁶⁴`, and `ᾱ <= 2³²`; otherwise the sample takes the interval path.
//! Then nothing overflows, and an underflowed product (error `<= 2⁻¹⁰⁷⁵`) is multiplied
//! afterwards by at most three factors `<= 2⁷⁵` each; with at most `50 K` products per
//! sample every underflow contribution is below `Θ = 2⁻⁸⁰⁰`, which is added to each
//! output term once. (With rounding switched off by the mutation knob, `u`, `η` and `Θ`
//! are 0.)
//!
//! **Ranges.** `d̂lo = (min(0, c1 ᾱ) + min(0, (qm - qr) a2)) - e` with `a2 = up(ᾱ²)`: three
//! nonpositive terms, each exact term times at most four factors `(1 + δ)`, so
//! `d̂lo ∈ dlo [1 - γ₄, 1 + γ₄]` and `dlo >= d̂lo/(1 - γ₄) >= d̂lo (1 + 6u)` (no
//! cancellation). The code takes `dn(dn(d̂lo (1 + 6u)) - η)`; `dhi` symmetrically. These
//! are outer ends of the logit's shift over the box (`α² ∈ [0, a2]`).
//!
//! **Exponentials.** `t̂_j = fl(c0_j - mx) = t_j (1 + δ)`, `ê_j = exp(t̂_j)`. Since
//! `|e^{t̂} - e^t| <= 1.01 u |t| e^t <= 0.372 u` (`|t| e^t <= 1/e` for `t <= 0`):
//! `|ê_j - e_j| <= L u e_j + 0.38 u` (η absorbed). Relative form, used for the rigorous
//! bounds that feed `p̄`: when `ê_j > 0`, `|t̂_j| <= 750` and
//! `e_j ∈ [ê_j (1 - ρ_E) - 2η, ê_j (1 + ρ_E) + 2η]`, `ρ_E = (L + 760) u`; when `ê_j = 0`,
//! `e_j ∈ [0, η]`.
//!
//! **Sum, log, softmax.** `s = Σ e_j >= 1` (the maximal logit contributes `e⁰ = 1`), so
//! absolute errors are relative ones: `|ŝ - s| <= ε_s s`, `ε_s = (2K + L + 1) u`
//! (`L u s + 0.38 K u` from the terms, `γ_{K-1}` from the sum). `p̂_j = fl(ê_j fl(1/ŝ))`:
//! `|p̂_j - p_j| <= u ((2K + 2L + 4) p̂_j + 0.4)`. `l̂ = ln ŝ`:
//! `|l̂ - ln s| <= (L + 1) u |l̂| + (2K + L + 2) u` (`ln` of `ŝ >= 1 - ε_s` within `L u`,
//! and `|ln ŝ - ln s| <= ε_s/(1 - ε_s)`).
//!
//! **Degree 0.** `V = σ (mx + ln s) - Σ y_j c0_j`, `σ = Σ y_j`. With `Λ̂ = fl(mx + l̂)`,
//! `V̂ = fl(fl(σ̂ Λ̂) - fl(Σ y_j c0_j))`:
//! `|V̂ - V| <= u (|V̂| + (K + 2) Y |Λ̂| + Y ((L + 1) |l̂| + 2K + L + 2) + (K + 1) Σ|y_j c0_j|)`
//! (the roundings of the product and the difference, `|σ̂ - σ| <= γ_{K-1} Y`, the
//! rounding of `Λ̂`, the log above, `γ_K` for `Σ y_j c0_j`).
//!
//! **Degree 1 and the linear part of degree 2.** `coef_j = σ p_j - y_j`, computed
//! `ĉ_j = fl(fl(σ̂ p̂_j) - y_j)`: `|ĉ_j - coef_j| <= D_j = u ((3K + 2L + 6) Y p̂_j + |y_j| + 0.4 Y)`.
//! For `G = Σ coef_j x_j` (`x = c1` or `qm`), `|fl(Σ ĉ_j x_j) - G| <= Σ D_j |x_j| + γ_K Σ |ĉ_j x_j|`.
//! So the **per-entry a-priori term** is `w_j = D_j + (K + 1) u |ĉ_j| + η (1 + Y)` (the
//! last term: underflow in `p̂_j` and `σ̂ p̂_j`), and the outputs are `fl(Σ ĉ_j c1_j) ± Σ w_j |c1_j|`
//! (plus `K η` for the products' own underflow, inside `Θ`), `fl(Σ ĉ_j qm_j) ± (Σ w_j |qm_j| + Σ (|ĉ_j| + w_j) qr_j)`,
//! and the degree-0 radius `Σ (|ĉ_j| + w_j) e_j` (upper bounds of `Σ |coef_j| qr_j`, `Σ |coef_j| e_j`).
//!
//! **Remainder.** `U = ½ Σ_{j≠c} p̄_j (δ_j - δ_c)²` with `δ_j - δ_c = Dm α + Dq α² + ρ`,
//! `Dm = c1_j - c1_c`, `Dq = [qm_j - qm_c ± (qr_j + qr_c)]`, `|ρ| <= de = e_j + e_c`.
//! `p̄_j` is computed as before, with directed rounding, from the rigorous `e_j` bounds and
//! range ends above. The degree-2 part `c2 = max(0, Dm² + sup(Dq · t))`, `t = 2 Dm [0, ᾱ] +
//! Dq [0, a2]`, is a max of polynomials in the inputs in which every monomial carries at
//! most 8 rounding factors (`(qm_j - qm_c) - (qr_j + qr_c)`: 2; `· a2`: 3; `t`: 4;
//! `Dq · t`: 7; `+ Dm²`: 8); `max` and `min(0, ·)` are 1-Lipschitz, so
//! `|ĉ2 - c2| <= γ₈ M2 + 2η(1 + |Dq|)` with the absolute-value polynomial
//! `M2 = |Dm|² + |Dq| (2 |Dm| ᾱ + |Dq| a2)`, `|Dq| = |qm_j - qm_c| + qr_j + qr_c`, taken
//! at the leaves `Dm`, `qm_j - qm_c`, `qr_j + qr_c`: each is one rounded operation, so
//! its computed value is its exact value times one factor `(1 + δ)` (counted in the 8),
//! and its exact absolute value is at most the computed one times `1 + u` (counted by
//! the inflation below). The code adds `9 u M2` (`>= γ₈ M2`). The
//! degree-0 part `de (2 |d0| + de)`, `|d0| <= |Dm| ᾱ + |Dq| a2`, is a nonnegative
//! expression. The remainder enters as `σ [0, ½ Σ p̄_j (ĉ2_j + 9 u M2_j + ...)]` in degree
//! 2 (the lower end 0 is exact: `½ δᵀ H δ >= 0`) and `|σ| ½ Σ p̄_j de (2|d0| + de)` in degree 0.
//!
//! **Sums of nonnegative terms.** Every radius above is a nonnegative expression of
//! nonnegative data computed in at most `2K + 13` (degree 0: `2K + 8`) operations along
//! any chain (`Y` takes `K - 1`, the sum over entries another `K - 1`), so
//! `fp::UpOps` (`x (1 + 2γ_{m+1}) + (m + 1) η`, rounded up) bounds its exact value. The
//! midpoint ± radius is then added to the accumulators with outward rounding
//! (`Iv::mid_rad`), once per sample.
//!
//! Tests: tests/ce_plain.rs (mutation: dropping the a-priori terms is caught on
//! shift-invariant cases whose exact value is known; agreement with the interval rule),
//! and every end-to-end soundness test with `k = 1` and cross-entropy.

use super::fp::{Iv, LIBM_ULPS, U64, UpOps, dn, eta, fmin, rounding, up};
use super::loss::{exp_iv, exp_lower_w};
use super::scalar1::Acc1;

#[cfg(test)]
use std::cell::Cell;

/// Largest input magnitude the plain path accepts (`2⁶⁴`).
const BIG: f64 = 18_446_744_073_709_551_616.0;
/// Largest trust-region end the plain path accepts (`2³²`).
const AMAX_BIG: f64 = 4_294_967_296.0;
/// Most logits the plain path accepts.
const K_MAX: usize = 1024;

/// Test-only knobs of the plain path.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PlainKnobs {
    /// Factor on every a-priori rounding-error term (1 is the only sound value).
    pub(crate) apriori: f64,
    /// Add the driver's evaluation error of the loss (off only in tests that check
    /// containment of the exact value).
    pub(crate) driver: bool,
    /// Take the plain path at all (off: every sample takes the interval path).
    pub(crate) plain: bool,
}

const PLAIN_SOUND: PlainKnobs = PlainKnobs {
    apriori: 1.0,
    driver: true,
    plain: true,
};

#[cfg(test)]
thread_local! {
    static PLAIN_KNOBS: Cell<PlainKnobs> = const { Cell::new(PLAIN_SOUND) };
}

#[cfg(test)]
pub(crate) fn plain_knobs() -> PlainKnobs {
    PLAIN_KNOBS.with(|k| k.get())
}

#[cfg(not(test))]
#[inline(always)]
pub(crate) fn plain_knobs() -> PlainKnobs {
    PLAIN_SOUND
}

#[cfg(test)]
pub(crate) fn set_plain_knobs(k: PlainKnobs) {
    PLAIN_KNOBS.with(|c| c.set(k));
}

#[cfg(test)]
thread_local! {
    /// Samples that took the plain path on this thread (tests check non-vacuity).
    static PLAIN_SAMPLES: Cell<usize> = const { Cell::new(0) };
}

/// Samples that took the plain path on this thread so far (test builds only).
#[cfg(test)]
pub(crate) fn plain_samples() -> usize {
    PLAIN_SAMPLES.with(|c| c.get())
}

/// Per-call constants of the plain path.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plain {
    a: f64,
    a2: f64,
    /// `u` (0 with rounding off), times the a-priori knob.
    ua: f64,
    eta: f64,
    theta: f64,
    kf: f64,
    /// `dn(1 - ρ_E)`, `up(1 + ρ_E)`.
    rho_lo: f64,
    rho_hi: f64,
    /// `1 + 6u` (ranges), 1 with rounding off.
    f6: f64,
    ops_s: UpOps,
    ops_k: UpOps,
}

impl Plain {
    /// `None` when the plain path does not apply to the whole call (`K > 1024`,
    /// `ᾱ` not in `[0, 2³²]`, or the test knob is off).
    pub(crate) fn new(amax: f64, k: usize) -> Option<Plain> {
        let kn = plain_knobs();
        if !(kn.plain && k <= K_MAX && (0.0..=AMAX_BIG).contains(&amax)) {
            return None;
        }
        let on = rounding();
        let u = if on { U64 } else { 0.0 };
        let rho = (LIBM_ULPS + 760.0) * u;
        Some(Plain {
            a: amax,
            a2: up(amax * amax),
            ua: u * kn.apriori,
            eta: eta(U64),
            theta: if on {
                f64::from_bits((1023 - 800) << 52)
            } else {
                0.0
            },
            kf: k as f64,
            rho_lo: dn(1.0 - rho),
            rho_hi: up(1.0 + rho),
            f6: 1.0 + 6.0 * u,
            ops_s: UpOps::new(2 * k + 8),
            ops_k: UpOps::new(2 * k + 13),
        })
    }
}

/// Per-sample scratch (length `K`), reused across samples.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scratch {
    eh: Vec<f64>,
    dlo: Vec<f64>,
    dhi: Vec<f64>,
    elo: Vec<f64>,
    suf: Vec<f64>,
}

impl Scratch {
    pub(crate) fn new(k: usize) -> Scratch {
        Scratch {
            eh: vec![0.0; k],
            dlo: vec![0.0; k],
            dhi: vec![0.0; k],
            elo: vec![0.0; k],
            suf: vec![0.0; k + 1],
        }
    }
}

/// One sample's logits (`K` entries each) and targets.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Logits<'a> {
    pub(crate) c0: &'a [f64],
    pub(crate) c1: &'a [f64],
    pub(crate) qm: &'a [f64],
    pub(crate) qr: &'a [f64],
    pub(crate) e: &'a [f64],
    pub(crate) y: &'a [f64],
}

/// What the caller needs for the driver's error and `Σ max |ℓ|`: an upper bound of
/// `max_j |z_j|` over the box and `Σ |y_j|` (computed, nonnegative).
pub(crate) struct SampleOut {
    pub(crate) zm: f64,
    pub(crate) ysum: f64,
}

fn guard(l: &Logits) -> bool {
    let ok = |s: &[f64]| s.iter().all(|x| x.abs() <= BIG);
    ok(l.c0) && ok(l.c1) && ok(l.qm) && ok(l.qr) && ok(l.e) && ok(l.y)
}

/// Adds one sample's cross-entropy model to `acc` (module doc); `None`, with `acc`
/// untouched, when the guard fails.
pub(crate) fn ce_sample(
    p: &Plain,
    l: &Logits,
    sc: &mut Scratch,
    acc: &mut Acc1,
) -> Option<SampleOut> {
    if !guard(l) {
        return None;
    }
    let k = l.c0.len();
    let (a, a2, eta) = (p.a, p.a2, p.eta);
    // Outer ranges of each logit's shift over the box, and the argmax.
    let mut c = 0;
    for j in 0..k {
        let lin = l.c1[j] * a;
        let lo = (lin.min(0.0) + ((l.qm[j] - l.qr[j]) * a2).min(0.0)) - l.e[j];
        let hi = (lin.max(0.0) + ((l.qm[j] + l.qr[j]) * a2).max(0.0)) + l.e[j];
        sc.dlo[j] = dn(dn(lo * p.f6) - eta);
        sc.dhi[j] = up(up(hi * p.f6) + eta);
        if l.c0[j] >= l.c0[c] {
            c = j;
        }
    }
    let mx = l.c0[c];
    // Exponentials, sums, log.
    let mut s = 0.0;
    let (mut sig, mut ya, mut yz, mut yza) = (0.0, 0.0, 0.0, 0.0);
    for j in 0..k {
        let eh = (l.c0[j] - mx).exp();
        sc.eh[j] = eh;
        s += eh;
        let yj = l.y[j];
        sig += yj;
        ya += yj.abs();
        let t = yj * l.c0[j];
        yz += t;
        yza += t.abs();
    }
    let inv = 1.0 / s;
    let ln_s = s.ln();
    let lse = mx + ln_s;
    let v = sig * lse - yz;
    let kf = p.kf;
    let lf = LIBM_ULPS;
    let e0 = p.ua
        * (v.abs()
            + (kf + 2.0) * ya * lse.abs()
            + ya * ((lf + 1.0) * ln_s.abs() + 2.0 * kf + lf + 2.0)
            + (kf + 1.0) * yza);
    acc.c0 = acc.c0.add(Iv::mid_rad(v, up(p.ops_s.apply(e0) + p.theta)));
    // Degree 1 and the linear part of degree 2, one a-priori term per entry.
    let cd = 3.0 * kf + 2.0 * lf + 6.0;
    let (mut g1, mut w1, mut gq, mut wq, mut rq, mut re) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let wabs = 0.4 * ya;
    let weta = eta * (1.0 + ya);
    for j in 0..k {
        let pj = sc.eh[j] * inv;
        let cj = sig * pj - l.y[j];
        let ca = cj.abs();
        let w = p.ua * (cd * ya * pj + l.y[j].abs() + wabs + (kf + 1.0) * ca) + weta;
        g1 += cj * l.c1[j];
        w1 += w * l.c1[j].abs();
        gq += cj * l.qm[j];
        wq += w * l.qm[j].abs();
        let cw = ca + w;
        rq += cw * l.qr[j];
        re += cw * l.e[j];
    }
    acc.c1 = acc.c1.add(Iv::mid_rad(g1, up(p.ops_k.apply(w1) + p.theta)));
    acc.q = acc
        .q
        .add(Iv::mid_rad(gq, up(p.ops_k.apply(wq + rq) + p.theta)));
    acc.add_e(up(p.ops_k.apply(re) + p.theta));
    // Remainder: p̄_j with directed rounding from rigorous bounds of e_j.
    let e_lo = |eh: f64| {
        if eh > 0.0 {
            fmax0(dn(dn(eh * p.rho_lo) - 2.0 * eta))
        } else {
            0.0
        }
    };
    for i in 0..k {
        let dlo = sc.dlo[i];
        sc.elo[i] = exp_lower_w(e_lo(sc.eh[i]), dlo, || {
            let t = dn(dn(l.c0[i] - mx) + dlo);
            exp_iv(Iv::point(t)).lo
        });
    }
    sc.suf[k] = 0.0;
    for i in (0..k).rev() {
        sc.suf[i] = dn(sc.suf[i + 1] + sc.elo[i]);
    }
    let s9u = 9.0 * p.ua;
    let (c1c, qmc, qrc, ec) = (l.c1[c], l.qm[c], l.qr[c], l.e[c]);
    let (mut u2, mut u0) = (0.0, 0.0);
    let mut pre = 0.0;
    for j in 0..k {
        let pre_j = pre;
        pre = dn(pre + sc.elo[j]);
        if j == c {
            continue;
        }
        let eh = sc.eh[j];
        let ex_hi = if eh > 0.0 {
            up(up(eh * p.rho_hi) + 2.0 * eta)
        } else {
            eta
        };
        let inv_hi = if ex_hi.is_finite() && ex_hi > 0.0 {
            dn(1.0 / ex_hi)
        } else {
            0.0
        };
        let dhi = sc.dhi[j];
        let f = exp_lower_w(inv_hi, -dhi, || {
            let t = dn(mx - up(l.c0[j] + dhi));
            exp_iv(Iv::point(t)).lo
        });
        let others = dn(pre_j + sc.suf[j + 1]);
        let mut sl = dn(others * f);
        if !(f.is_finite() && sl.is_finite()) {
            sl = 0.0;
            let zhi = up(l.c0[j] + dhi);
            for i in 0..k {
                if i != j {
                    let t = dn(dn(l.c0[i] + sc.dlo[i]) - zhi);
                    sl = dn(sl + exp_iv(Iv::point(t)).lo);
                }
            }
        }
        let pbar = fmin(up(1.0 / dn(1.0 + sl)), 1.0);
        if pbar == 0.0 {
            continue;
        }
        let dm = l.c1[j] - c1c;
        let dqm = l.qm[j] - qmc;
        let dqr = l.qr[j] + qrc;
        let (dql, dqh) = (dqm - dqr, dqm + dqr);
        let lin = dm * a;
        let tlo = 2.0 * lin.min(0.0) + (dql * a2).min(0.0);
        let thi = 2.0 * lin.max(0.0) + (dqh * a2).max(0.0);
        let sup = (dql * tlo).max(dql * thi).max(dqh * tlo).max(dqh * thi);
        let c2 = (dm * dm + sup).max(0.0);
        // Absolute-value polynomial at the leaves `Dm`, `qm_j - qm_c`, `qr_j + qr_c` (each
        // computed with one rounding relative to its own exact value; module doc).
        let mdm = dm.abs();
        let mdq = dqm.abs() + dqr;
        let m2 = mdm * mdm + mdq * (2.0 * mdm * a + mdq * a2);
        u2 += pbar * ((c2 + s9u * m2) + 2.0 * eta * (1.0 + mdq));
        let de = l.e[j] + ec;
        u0 += pbar * (de * (2.0 * (mdm * a + mdq * a2) + de));
    }
    let u2 = up(p.ops_k.apply(0.5 * u2) + p.theta);
    let u0 = up(p.ops_k.apply(0.5 * u0) + p.theta);
    let sg = Iv::mid_rad(sig, p.ops_k.apply(kf * p.ua * ya));
    acc.q = acc.q.add(sg.mul(Iv::new(0.0, u2)));
    acc.add_e(up(sg.mag() * u0));
    // The driver's terms (caller): |z| over the box and Σ|y|.
    let mut zm = 0.0f64;
    for j in 0..k {
        zm = zm.max(l.c0[j].abs() + (-sc.dlo[j]).max(sc.dhi[j]));
    }
    #[cfg(test)]
    PLAIN_SAMPLES.with(|c| c.set(c.get() + 1));
    Some(SampleOut { zm, ysum: ya })
}

#[inline(always)]
fn fmax0(x: f64) -> f64 {
    if x > 0.0 { x } else { 0.0 }
}
