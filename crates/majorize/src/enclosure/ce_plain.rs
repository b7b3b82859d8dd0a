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
//! with magnitude `<= 2⁶⁴`, the radii `qr, e` are `>= 0`, and `ᾱ <= 2³²`; otherwise the
//! sample takes the interval path. Then nothing overflows, and an underflowed product
//! (error `<= 2⁻¹⁰⁷⁵`) is multiplied afterwards by at most three factors `<= 2⁷⁵` each;
//! with at most `50 K` products per sample every underflow contribution is below
//! `2⁻⁸⁰⁰`. The absolute `η`-terms of `w_j` and of the remainder's `ĉ2_j` (below) are not
//! added inside the loops, where a subnormal operand would send every multiplication
//! through the slow microcode path of common x86 cores; summed over a sample they are below
//! `2⁻⁹²⁰` (`K η (1 + Y) 2⁶⁴ <= 2¹⁰ 2⁻¹⁰⁷¹ 2⁷⁵ 2⁶⁴`, and `K η (1 + 2⁶⁶)`). So
//! `Θ = 2⁻⁷⁹⁹ = 2 · 2⁻⁸⁰⁰` is added to each output term once. The other absolute margins of
//! the hot loops are multiples of `τ = 2⁻¹⁰⁰⁰ >= η` (a normal number, for the same reason).
//! (With rounding switched off by the mutation knob, `u`, `η`, `τ` and `Θ` are 0, and the
//! cubic below is never used.)
//!
//! **Ranges.** `lô = (min(0, c1 ᾱ) + min(0, (qm - qr) a2)) - e` with `a2 = up(ᾱ²)`: three
//! nonpositive terms, each exact term times at most four factors `(1 + δ)` (no
//! cancellation), plus `<= 2 · 2⁻¹⁰⁷⁵` from the two products' underflow, so the exact lower
//! end satisfies `lo >= lô (1 + 4.01u) - η/2`. The code takes `dlo = fl(fl(lô F_R) - 2τ)`,
//! `F_R = 1 + 8u`, with no directed rounding: since `lô <= 0`,
//! `fl(lô F_R) <= lô F_R (1 - u) + 2⁻¹⁰⁷⁵` and `fl(x - 2τ) <= (x - 2τ)(1 - u)`, so
//! `dlo <= lô F_R (1 - u)² - τ <= lô (1 + 4.01u) - η/2 <= lo` (`F_R (1 - u)² >= 1 + 5.9u`).
//! `dhi = fl(fl(hî F_R) + 2τ) >= hi` symmetrically. These are outer ends of the logit's
//! shift over the box (`α² ∈ [0, a2]`); `dlo < 0 < dhi`.
//!
//! **Exponentials.** `t̂_j = fl(c0_j - mx) = t_j (1 + δ)`, `ê_j = exp(t̂_j)`. For
//! `|t| <= 2⁴⁶` (so `u |t| <= 2⁻⁷`), `|e^{t̂} - e^t| = e^t |e^{t̂ - t} - 1| <= 1.01 u |t| e^t
//! <= 0.372 u` (`|t| e^t <= 1/e` for `t <= 0`); for `t < -2⁴⁶` both `e^t` and `e^{t̂}` are
//! below `e^{-2⁴⁵}`, far below `0.372 u`, so the same bound holds (the step through
//! `1.01 u |t| e^t` does not). With libm: `|ê_j - e_j| <= L u e_j + 0.38 u` (η absorbed).
//! Relative form, used for the rigorous bounds that feed `p̄`: when `ê_j > 0`,
//! `|t̂_j| <= 750` and `e_j ∈ [ê_j (1 - ρ_E) - 2η, ê_j (1 + ρ_E) + 2η]`, `ρ_E = (L + 760) u`;
//! when `ê_j = 0`, `e_j ∈ [0, η]`.
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
//! last term: underflow in `p̂_j` and `σ̂ p̂_j`; it is inside `Θ`, see "Guard", so the code
//! computes `w_j` without it), and the outputs are `fl(Σ ĉ_j c1_j) ± Σ w_j |c1_j|`
//! (plus `K η` for the products' own underflow, inside `Θ`), `fl(Σ ĉ_j qm_j) ± (Σ w_j |qm_j| + Σ (|ĉ_j| + w_j) qr_j)`,
//! and the degree-0 radius `Σ (|ĉ_j| + w_j) e_j` (upper bounds of `Σ |coef_j| qr_j`, `Σ |coef_j| e_j`).
//!
//! **Remainder.** `U = ½ Σ_{j≠c} p̄_j (δ_j - δ_c)²` with `δ_j - δ_c = Dm α + Dq α² + ρ`,
//! `Dm = c1_j - c1_c`, `Dq = [qm_j - qm_c ± (qr_j + qr_c)]`, `|ρ| <= de = e_j + e_c`.
//!
//! *The bound `p̄_j`.* `sup_box p_j = 1 / (1 + Σ_{i≠j} exp(z_i,lo - z_j,hi))`, and
//! `exp(z_i,lo - z_j,hi) >= E_i exp(-dhi_j) / e_j` with `E_i = exp(t_i + dlo_i)`, so
//! `sup p_j <= e_j / (e_j + O_j G_j)`, `O_j = Σ_{i≠j} E_i`, `G_j = exp(-dhi_j)`; this is
//! increasing in `e_j` and decreasing in `O_j`, `G_j`, so any upper `n >= e_j` and lower
//! `o <= O_j`, `g <= G_j` (all `>= 0`) give `sup p_j <= n / (n + o g)`: one division, and
//! only exponentials of nonpositive numbers, so nothing overflows. All of it in plain `f64`:
//! - `m_i`, the computed lower exponential: for `w = dlo_i ∈ [-¼, 0]`, `m_i = fl(ê_i P)`
//!   with `P = fl(1 + w + w²/2 + w³/6 - 32u) <= e^w` (Taylor with a nonnegative remainder;
//!   the cubic's own rounding is below `16u`, module `loss`); then
//!   `E_i = e_i e^w >= m_i (1 - ρ_E - u) - 3η`. For `w < -¼`, `m_i = exp(â)` with
//!   `â = fl(t̂_i + w)`: both addends are nonpositive, so `â` is the exact `t_i + w` times two
//!   factors `(1 + δ)`, `t_i + w >= â (1 + 2.01u)`, and when `|â| <= 746`
//!   `E_i >= m_i (1 - (L + 1500) u) - η` (below, `m_i <= η` and this is trivial). Both: `E_i >= m_i (1 - ρ_L) - 3η`,
//!   `ρ_L = (L + 1510) u`.
//! - `o`: `Ô_j = fl(pre_j + suf_{j+1})` from plain prefix and suffix sums of the `m_i`, at
//!   most `K - 1` roundings on nonnegative numbers, so `O_j >= Ô_j (1 - ρ_O) - 3Kη`,
//!   `ρ_O = ρ_L + (K - 1) u`; the code takes `o = max(0, fl(fl(Ô_j F_O) - 4Kτ))` with
//!   `F_O = (1 - ρ_O)(1 - 3u)` rounded down (then `fl(Ô F_O) <= Ô F_O (1 + u) + 2⁻¹⁰⁷⁵`, and
//!   the subtraction's `(1 + u)` is absorbed by `F_O`'s `3u` and `τ >= η`).
//! - `g`: `ĝ` is the same cubic at `-dhi_j` (`<= G_j` outright) or `exp(-dhi_j)` (within
//!   `L u` and `η`), so `G_j >= ĝ (1 - L u) - η`; `g = max(0, fl(fl(ĝ F_G) - 2τ))`,
//!   `F_G = (1 - L u)(1 - 3u)` rounded down.
//! - `n = fl(fl(ê_j F_N) + 3τ) >= ê_j (1 + ρ_E) + 2η >= e_j`, `F_N = (1 + ρ_E)(1 + 3u)`
//!   rounded up (`fl(y) >= y (1 - u) - 2⁻¹⁰⁷⁵`); `n >= 3τ > 0`.
//! - `q̂ = fl(n / fl(n + fl(o g)))`. When the computed denominator is `>= 2⁻⁹⁰⁰`, the exact
//!   one `D` is `>= 2⁻⁹⁰¹`, the underflow of `o g` (`<= 2⁻¹⁰⁷⁵`) is below `2⁻¹⁷³ D`, and
//!   `n / D <= q̂ (1 + 3.02u) + 2⁻¹⁰⁷⁴`; the code takes
//!   `p̄_j = min(1, fl(fl(q̂ (1 + 6u)) + τ))`, which is at least that. Otherwise `p̄_j = 1`.
//!
//! - *Tiny factors.* When some `ê_j`, `Ô_j` or `ĝ` of the sample is below `2⁻⁹⁰⁰`, the
//!   absolute margins can swamp a ratio of two tiny numbers (a logit `700` below the
//!   maximum with a shift of `700`: `p̄_j` should be about `e⁻⁷⁰⁰`), so every `p̄_j` of that
//!   sample is also computed as the interval path's pairwise
//!   `1 / (1 + Σ_{i≠j} exp(z_i,lo - z_j,hi))`, rounded outward, and the smaller bound kept.
//!
//! These are the interval path's `p̄_j` up to a few ulps (that path rounds each operation
//! outward and takes the product of `1/ex_hi` and the cubic, then `1/(1 + sl)`).
//!
//! *The polynomial part.* The degree-2 part `c2 = max(0, Dm² + sup(Dq · t))`,
//! `t = 2 Dm [0, ᾱ] + Dq [0, a2]`, is a max of polynomials in the inputs in which every
//! monomial carries at most 8 rounding factors (`(qm_j - qm_c) - (qr_j + qr_c)`: 2; `· a2`:
//! 3; `t`: 4; `Dq · t`: 7; `+ Dm²`: 8); `max` and `min(0, ·)` are 1-Lipschitz, so
//! `|ĉ2 - c2| <= γ₈ M2 + 2η(1 + |Dq|)` with the absolute-value polynomial
//! `M2 = |Dm|² + |Dq| (2 |Dm| ᾱ + |Dq| a2)`, `|Dq| = |qm_j - qm_c| + qr_j + qr_c`, taken
//! at the leaves `Dm`, `qm_j - qm_c`, `qr_j + qr_c`: each is one rounded operation, so
//! its computed value is its exact value times one factor `(1 + δ)` (counted in the 8),
//! and its exact absolute value is at most the computed one times `1 + u` (counted by
//! the inflation below). The code adds `9 u M2` (`>= γ₈ M2`); the `2η(1 + |Dq|)` is inside
//! `Θ` ("Guard"). The degree-0 part `de (2 |d0| + de)`, `|d0| <= |Dm| ᾱ + |Dq| a2`, is a
//! nonnegative expression. The remainder enters as `σ [0, ½ Σ p̄_j (ĉ2_j + 9 u M2_j)]` in
//! degree 2 (the lower end 0 is exact: `½ δᵀ H δ >= 0`) and
//! `|σ| ½ Σ p̄_j de (2|d0| + de)` in degree 0.
//!
//! **Sums of nonnegative terms.** Every radius above is a nonnegative expression of
//! nonnegative data computed in at most `2K + 13` (degree 0: `2K + 8`) operations along
//! any chain (`Y` takes `K - 1`, the sum over entries another `K - 1`), so
//! `fp::UpOps` (`x (1 + 2γ_{m+1}) + (m + 1) η`, rounded up) bounds its exact value. The
//! midpoint ± radius is then added to the accumulators with outward rounding
//! (`Iv::mid_rad`), once per sample.
//!
//! **Cost.** No directed rounding (`next_up`/`next_down`) and no subnormal operand in the
//! per-logit loops, one division per logit, and one libm `exp` per logit plus one per
//! range end outside `[-¼, 0]`. Measured on digits-mlp (docs/MAJORIZE.md §4(f)).
//!
//! Tests: tests/ce_plain.rs (mutation: dropping the a-priori terms, or only the radii of
//! `qr`, `e` or the remainder, is caught on shift-invariant cases whose exact value is
//! known; the guard's fallback to the interval path is sound), tests/fast.rs (agreement
//! with the interval rule, from above and below), and every end-to-end soundness test with
//! `k = 1` and cross-entropy.

use super::fp::{Iv, LIBM_ULPS, U64, UpOps, dn, rounding, up};
use super::loss::exp_iv;
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
    /// Drop one radius term (mutation tests; `None` is the only sound value).
    pub(crate) drop: Option<Term>,
}

/// A radius term of the plain path that a mutation test may drop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Term {
    /// `Σ (|ĉ_j| + w_j) qr_j` in degree 2.
    Rq,
    /// `Σ (|ĉ_j| + w_j) e_j` in degree 0.
    Re,
    /// The remainder `σ [0, U]` (degree 2) and its degree-0 part.
    Remainder,
}

pub(crate) const PLAIN_SOUND: PlainKnobs = PlainKnobs {
    apriori: 1.0,
    driver: true,
    plain: true,
    drop: None,
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

#[cfg(test)]
thread_local! {
    /// Samples whose `p̄` also took the pairwise form (tiny factors) on this thread.
    static PAIRWISE_SAMPLES: Cell<usize> = const { Cell::new(0) };
}

/// Samples whose `p̄` also took the pairwise form on this thread so far (test builds only).
#[cfg(test)]
pub(crate) fn pairwise_samples() -> usize {
    PAIRWISE_SAMPLES.with(|c| c.get())
}

/// Samples that took the plain path on this thread so far (test builds only).
#[cfg(test)]
pub(crate) fn plain_samples() -> usize {
    PLAIN_SAMPLES.with(|c| c.get())
}

/// Per-call constants of the plain path (module doc; with rounding switched off by the
/// mutation knob every factor is 1 and every absolute term 0).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plain {
    a: f64,
    a2: f64,
    /// `u` (0 with rounding off), times the a-priori knob.
    ua: f64,
    theta: f64,
    kf: f64,
    /// Ranges: `dlo = lô F_R - A_R`, `dhi = hî F_R + A_R` (`F_R = 1 + 8u`, `A_R = 2η`).
    fr: f64,
    ar: f64,
    /// The cubic lower bound of `exp(w)` is used for `w ∈ [wmin, 0]` (`-1/4`; `+∞`, so
    /// never, with rounding off, as on the interval path), and its margin `32u`.
    wmin: f64,
    c32: f64,
    /// `2⁻¹⁰⁰⁰` (0 with rounding off).
    tiny: f64,
    /// `p̄`'s inputs: `n = ê F_N + 3η`, `o = Ô F_O - 4Kη`, `g = ĝ F_G - 2η`, and
    /// `p̄ = q̂ F_P + η` (module doc, "Remainder").
    f_n: f64,
    a_n: f64,
    f_o: f64,
    a_o: f64,
    f_g: f64,
    a_g: f64,
    f_p: f64,
    ops_s: UpOps,
    ops_k: UpOps,
}

/// `2⁻¹⁰⁰⁰`: the absolute margins of the hot loops (normal, unlike `η`, so no
/// subnormal operand ever enters them: subnormal arithmetic takes a slow microcode path on
/// common x86 cores).
const TINY: f64 = f64::from_bits((1023 - 1000) << 52);
/// `Θ = 2⁻⁷⁹⁹`, added to every output term once per sample (module doc, "Guard").
const THETA: f64 = f64::from_bits((1023 - 799) << 52);

/// Smallest denominator `n + o g` for which `p̄` is computed (below it, `p̄ = 1`).
const D_MIN: f64 = f64::from_bits((1023 - 900) << 52);

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
        // A normal stand-in for the subnormal η in the hot loops (module doc, "Guard").
        let tiny = if on { TINY } else { 0.0 };
        let kf = k as f64;
        // ρ_E = (L + 760) u, ρ_L = (L + 1510) u, ρ_O = ρ_L + (K - 1) u, ρ_G = L u.
        let rho_e = (LIBM_ULPS + 760.0) * u;
        let rho_o = (LIBM_ULPS + 1510.0 + kf - 1.0) * u;
        let rho_g = LIBM_ULPS * u;
        let lower = |rho: f64| dn(dn(1.0 - rho) * dn(1.0 - 3.0 * u));
        Some(Plain {
            a: amax,
            a2: up(amax * amax),
            ua: u * kn.apriori,
            theta: if on { THETA } else { 0.0 },
            kf,
            fr: 1.0 + 8.0 * u,
            ar: 2.0 * tiny,
            wmin: if on { -0.25 } else { f64::INFINITY },
            c32: 32.0 * u,
            tiny,
            f_n: up(up(1.0 + rho_e) * up(1.0 + 3.0 * u)),
            a_n: 3.0 * tiny,
            f_o: lower(rho_o),
            a_o: 4.0 * kf * tiny,
            f_g: lower(rho_g),
            a_g: 2.0 * tiny,
            f_p: 1.0 + 6.0 * u,
            ops_s: UpOps::new(2 * k + 8),
            ops_k: UpOps::new(2 * k + 13),
        })
    }

    /// A lower bound of `exp(w)` for `w <= 0`, up to the factor `1 - L u` and `η`
    /// absolute (module doc): the cubic `1 + w + w²/2 + w³/6 - 32u` on `[wmin, 0]`, libm
    /// below.
    #[inline(always)]
    fn exp_neg(&self, w: f64) -> f64 {
        if w >= self.wmin {
            (1.0 + w * (1.0 + w * (0.5 + w * (1.0 / 6.0)))) - self.c32
        } else {
            w.exp()
        }
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
    pb: Vec<f64>,
}

impl Scratch {
    pub(crate) fn new(k: usize) -> Scratch {
        Scratch {
            eh: vec![0.0; k],
            dlo: vec![0.0; k],
            dhi: vec![0.0; k],
            elo: vec![0.0; k],
            suf: vec![0.0; k + 1],
            pb: vec![0.0; k],
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

/// Adds one sample's cross-entropy model to `acc` (module doc); `None`, with `acc`
/// untouched, when the guard fails.
pub(crate) fn ce_sample(
    p: &Plain,
    l: &Logits,
    sc: &mut Scratch,
    acc: &mut Acc1,
) -> Option<SampleOut> {
    let k = l.c0.len();
    let (c0, c1, qm, qr, e, y) = (
        l.c0,
        &l.c1[..k],
        &l.qm[..k],
        &l.qr[..k],
        &l.e[..k],
        &l.y[..k],
    );
    let (eh, dlo, dhi, elo) = (
        &mut sc.eh[..k],
        &mut sc.dlo[..k],
        &mut sc.dhi[..k],
        &mut sc.elo[..k],
    );
    let suf = &mut sc.suf[..=k];
    let pb = &mut sc.pb[..k];
    let (a, a2) = (p.a, p.a2);
    // Guard, outer ranges of each logit's shift over the box ("Ranges"), and the argmax,
    // in one branch-free pass (a NaN fails the guard).
    let mut ok = true;
    let mut c = 0;
    for j in 0..k {
        ok &= small(c0[j]) & small(c1[j]) & small(qm[j]) & radius(qr[j]) & radius(e[j]);
        ok &= small(y[j]);
        let lin = c1[j] * a;
        let lo = (min0(lin) + min0((qm[j] - qr[j]) * a2)) - e[j];
        let hi = (max0(lin) + max0((qm[j] + qr[j]) * a2)) + e[j];
        dlo[j] = lo * p.fr - p.ar;
        dhi[j] = hi * p.fr + p.ar;
        if c0[j] >= c0[c] {
            c = j;
        }
    }
    if !ok {
        return None;
    }
    let mx = c0[c];
    // Exponentials, sums, log.
    let mut s = 0.0;
    let (mut sig, mut ya, mut yz, mut yza) = (0.0, 0.0, 0.0, 0.0);
    for j in 0..k {
        let x = (c0[j] - mx).exp();
        eh[j] = x;
        s += x;
        let yj = y[j];
        sig += yj;
        ya += yj.abs();
        let t = yj * c0[j];
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
    for j in 0..k {
        let pj = eh[j] * inv;
        let cj = sig * pj - y[j];
        let ca = cj.abs();
        let w = p.ua * (cd * ya * pj + y[j].abs() + wabs + (kf + 1.0) * ca);
        g1 += cj * c1[j];
        w1 += w * c1[j].abs();
        gq += cj * qm[j];
        wq += w * qm[j].abs();
        let cw = ca + w;
        rq += cw * qr[j];
        re += cw * e[j];
    }
    let drop = plain_knobs().drop;
    if drop == Some(Term::Rq) {
        rq = 0.0;
    }
    if drop == Some(Term::Re) {
        re = 0.0;
    }
    acc.c1 = acc.c1.add(Iv::mid_rad(g1, up(p.ops_k.apply(w1) + p.theta)));
    acc.q = acc
        .q
        .add(Iv::mid_rad(gq, up(p.ops_k.apply(wq + rq) + p.theta)));
    acc.add_e(up(p.ops_k.apply(re) + p.theta));
    // Remainder ("Remainder" in the module doc): m_i, lower bounds (up to one factor
    // applied to their sums) of exp(c0_i - mx + dlo_i).
    for i in 0..k {
        let w = dlo[i];
        elo[i] = if w >= p.wmin {
            eh[i] * p.exp_neg(w)
        } else {
            ((c0[i] - mx) + w).exp()
        };
    }
    suf[k] = 0.0;
    for i in (0..k).rev() {
        suf[i] = suf[i + 1] + elo[i];
    }
    // p̄_j <= n / (n + o g): n >= e_j, o <= Σ_{i≠j} exp(z_i,lo - mx), g <= exp(-dhi_j);
    // one division, rounded up a priori. (Computed for every j, c included, in a loop of
    // its own so that the divisions pipeline; p̄_c is not used.)
    let mut pre = 0.0;
    let mut tiny_factor = false;
    for j in 0..k {
        let oh = pre + suf[j + 1];
        pre += elo[j];
        let gh = p.exp_neg(-dhi[j]);
        let o = max0(oh * p.f_o - p.a_o);
        let g = max0(gh * p.f_g - p.a_g);
        let n = eh[j] * p.f_n + p.a_n;
        let d = n + o * g;
        let q = (n / d) * p.f_p + p.tiny;
        pb[j] = if d >= D_MIN && q < 1.0 { q } else { 1.0 };
        tiny_factor |= !(eh[j] >= D_MIN && oh >= D_MIN && gh >= D_MIN);
    }
    if tiny_factor {
        // Where a factor is below 2⁻⁹⁰⁰ the product form loses the ratio of two tiny numbers
        // (the absolute margins dominate): the interval path's pairwise sum instead.
        #[cfg(test)]
        PAIRWISE_SAMPLES.with(|c| c.set(c.get() + 1));
        // (Both are upper bounds; rare, so every j takes the smaller.)
        for j in 0..k {
            if j != c {
                pb[j] = pb[j].min(pairwise(c0, dlo, dhi, j));
            }
        }
    }
    let (c1c, qmc, qrc, ec) = (c1[c], qm[c], qr[c], e[c]);
    let s9u = 9.0 * p.ua;
    let (mut u2, mut u0) = (0.0, 0.0);
    for j in 0..k {
        if j == c {
            continue;
        }
        let pbar = pb[j];
        let dm = c1[j] - c1c;
        let dqm = qm[j] - qmc;
        let dqr = qr[j] + qrc;
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
        u2 += pbar * (c2 + s9u * m2);
        let de = e[j] + ec;
        u0 += pbar * (de * (2.0 * (mdm * a + mdq * a2) + de));
    }
    let u2 = up(p.ops_k.apply(0.5 * u2) + p.theta);
    let u0 = up(p.ops_k.apply(0.5 * u0) + p.theta);
    let sg = Iv::mid_rad(sig, p.ops_k.apply(kf * p.ua * ya));
    if drop != Some(Term::Remainder) {
        acc.q = acc.q.add(sg.mul(Iv::new(0.0, u2)));
        acc.add_e(up(sg.mag() * u0));
    }
    // The driver's terms (caller): |z| over the box and Σ|y|.
    let mut zm = 0.0f64;
    for j in 0..k {
        zm = zm.max(c0[j].abs() + (-dlo[j]).max(dhi[j]));
    }
    #[cfg(test)]
    PLAIN_SAMPLES.with(|c| c.set(c.get() + 1));
    Some(SampleOut { zm, ysum: ya })
}
