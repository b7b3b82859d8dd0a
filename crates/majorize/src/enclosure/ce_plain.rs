//! Softmax cross-entropy of one sample for one direction (`k = 1`) in plain `f64`, with
//! one a-priori rounding-error term per output coefficient instead of outward rounding
//! after every operation. The rule (module `loss`) is unchanged; only how its numbers are
//! computed differs. `loss1::ce_k1` takes this path for every sample that passes the
//! guard below and the outward-rounded interval path otherwise. The computation runs a
//! whole block of samples at once (module `ce_block`); per sample it does the operations
//! counted below.
//!
//! # Rounding argument
//!
//! Standard model (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed.,
//! §2.2, Lemma 3.1): `fl(a op b) = (a op b)(1 + δ)`, `|δ| <= u = 2⁻⁵³`, plus an absolute
//! error `<= 2⁻¹⁰⁷⁵` for a product that underflows (sums that underflow are exact);
//! `γ_n = nu/(1 - nu)`. `ln` (libm) is within `L u` relative (`L = fp::LIBM_ULPS = 8`)
//! plus `η = fp::eta = 2⁻¹⁰⁷¹` absolute (module `fp`). `exp` is our own
//! `expo::exp_nonpos`, called only on nonpositive arguments: within
//! `expo::EXP_ULPS u = 2.5 u <= L u` relative for arguments `>= -708`, and 0 below, where
//! `e^x < η_E = 2⁻¹⁰²¹` (module `expo` proves both). So everything said of libm's `exp`
//! below holds with `η_E` in place of `η`; every absolute term `η_E` enters is absorbed in
//! a multiple of `u` (as `η` was) or of `τ = 2⁻¹⁰⁰⁰ >= 2²¹ η_E`, and in the "Guard" sums
//! `K η_E (1 + Y) 2⁶⁴ <= 2⁻⁸⁷²` is still far below `2⁻⁸⁰⁰`. `K <= 1024` logits;
//! `Y = Σ|y_j|`.
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
//! `1.01 u |t| e^t` does not). So `|ê_j - e_j| <= L u e_j + 0.38 u` (`η_E` absorbed).
//! Relative form, used for the rigorous bounds that feed `p̄`: when `ê_j > 0`,
//! `|t̂_j| <= 708` and `e_j ∈ [ê_j (1 - ρ_E) - 2η, ê_j (1 + ρ_E) + 2η]`, `ρ_E = (L + 760) u`;
//! when `ê_j = 0`, `e_j ∈ [0, η_E]`.
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
//!   factors `(1 + δ)`, `t_i + w >= â (1 + 2.01u)`, and when `â >= -708`
//!   `E_i >= m_i (1 - (L + 1500) u)` (below, `m_i = 0` and this is trivial). Both: `E_i >= m_i (1 - ρ_L) - 3η`,
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
//! any chain (`Y` takes `K - 1`, the sum over entries another `K - 1`), so its exact value
//! is at most `x (1 + 2γ_{m+1}) + (m + 1) η` (as `fp::UpOps`). The code computes
//! `r = fl(fl(x F_m) + 2Θ)` with `F_m = (1 + 2γ_{m+1})(1 + 5u)` rounded up: the two
//! roundings lose at most `(1 - u)²`, which `1 + 5u` more than repays, and a product's
//! underflow (`<= 2⁻¹⁰⁷⁵`) plus `(m + 1) η` plus the `Θ` this radius must carry are below
//! `2Θ (1 - u)`; so `r` is at least the sample's term plus `Θ`, with no directed rounding.
//! The remainder's `σ [0, U]` uses `|σ| <= S = fl(fl(|σ̂| + r_σ)(1 + 5u))` (two roundings)
//! and the term `h = fl(fl(fl(S U)(1 + 5u)) + 2Θ) >= S U` (three roundings, two
//! underflows), entering as `[0, h]` where `fl(σ̂ - r_σ) >= 0` (then `σ >= 0`: the
//! difference of two floats rounds to 0 only when it is 0), `[-h, 0]` where
//! `fl(σ̂ + r_σ) <= 0`, and `[-h, h]` otherwise; in degree 0, `S U0`.
//!
//! **Sums over a block.** The midpoints `m_n` and the radii `r_n` of the samples of a block
//! that pass the guard (the others contribute exact zeros) are summed in plain `f64`:
//! `M̂ = fl(Σ m_n)`, `Â = fl(Σ |m_n|)`, `R̂ = fl(Σ r_n)`, `N - 1` additions each. Then
//! `|M̂ - Σ m_n| <= γ_N Σ |m_n|` and the exact `Σ |m_n|`, `Σ r_n` are at most `UpOps`
//! (`m = N + 1`) of `Â`, `R̂` (Higham, §4.2), so `Σ_n [m_n ± r_n] ⊆ M̂ ± (UpOps(R̂) +
//! γ_{N+1} UpOps(Â))`, rounded up, which is added to the accumulator once per block with
//! outward rounding (`Iv::mid_rad`); the remainder's `[Σ -h, Σ h]` and the degree-0 radius
//! likewise through `UpOps`. (With rounding switched off every factor is 1 and every
//! margin 0.)
//!
//! **Cost.** No directed rounding (`next_up`/`next_down`) and no subnormal operand in the
//! per-logit loops, one division per logit, no libm call per logit (three
//! `expo::exp_nonpos` per logit: `ê_j`, `m_j`, `ĝ_j`, the cubic selected where it
//! applies), one libm `ln` per sample. Module `ce_block` runs these loops over the samples
//! of a block, so they vectorise (AVX-512F / AVX2 chosen at run time, the same bits).
//! Measured on digits-mlp (docs/MAJORIZE.md §4(f)).
//!
//! Tests: tests/expo.rs (the `exp` and its error budget), tests/ce_block.rs (the
//! dispatched kernel equals the portable one bit for bit; a reused scratch equals a fresh
//! one), tests/ce_plain.rs (mutation: dropping the a-priori terms, or only the radii of
//! `qr`, `e` or the remainder, is caught on shift-invariant cases whose exact value is
//! known; the guard's fallback to the interval path is sound), tests/fast.rs (agreement
//! with the interval rule, from above and below), and every end-to-end soundness test with
//! `k = 1` and cross-entropy.

use super::expo::EXP_ULPS;
use super::fp::{LIBM_ULPS, U64, dn, gamma, rounding, up};

#[cfg(test)]
use std::cell::Cell;

// The argument below assumes libm's error bound `L u` for `exp` (module doc).
const _: () = assert!(EXP_ULPS <= LIBM_ULPS);

/// Largest input magnitude the plain path accepts (`2⁶⁴`).
pub(super) const BIG: f64 = 18_446_744_073_709_551_616.0;
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

/// Counts one sample that took the plain path (test builds only).
#[cfg(test)]
pub(super) fn count_plain() {
    PLAIN_SAMPLES.with(|c| c.set(c.get() + 1));
}

/// Counts one sample whose `p̄` also took the pairwise form (test builds only).
#[cfg(test)]
pub(super) fn count_pairwise() {
    PAIRWISE_SAMPLES.with(|c| c.set(c.get() + 1));
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
    pub(super) a: f64,
    pub(super) a2: f64,
    /// `u` (0 with rounding off), times the a-priori knob.
    pub(super) ua: f64,
    pub(super) kf: f64,
    /// Ranges: `dlo = lô F_R - A_R`, `dhi = hî F_R + A_R` (`F_R = 1 + 8u`, `A_R = 2η`).
    pub(super) fr: f64,
    pub(super) ar: f64,
    /// `2⁻¹⁰⁰⁰` (0 with rounding off).
    pub(super) tiny: f64,
    /// The cubic lower bound of `exp(w)` is used for `w ∈ [wmin, 0]` (`-1/4`; `+∞`, so
    /// never, with rounding off, as on the interval path), and its margin `32u`.
    pub(super) wmin: f64,
    pub(super) c32: f64,
    /// `p̄`'s inputs: `n = ê F_N + 3η`, `o = Ô F_O - 4Kη`, `g = ĝ F_G - 2η`, and
    /// `p̄ = q̂ F_P + η` (module doc, "Remainder").
    pub(super) f_n: f64,
    pub(super) a_n: f64,
    pub(super) f_o: f64,
    pub(super) a_o: f64,
    pub(super) f_g: f64,
    pub(super) a_g: f64,
    pub(super) f_p: f64,
    /// Per-sample radii in plain f64 (module doc, "Sums over a block"):
    /// `fl(fl(x F) + M)` with `F` = `UpOps`'s factor times `1 + 5u`, `M = 2Θ`, and
    /// `1 + 5u` for the products of two upper bounds.
    pub(super) out_s: f64,
    pub(super) out_k: f64,
    pub(super) out_5: f64,
    pub(super) out_m: f64,
}

/// `2⁻¹⁰⁰⁰`: the absolute margins of the hot loops (normal, unlike `η`, so no
/// subnormal operand ever enters them: subnormal arithmetic takes a slow microcode path on
/// common x86 cores).
const TINY: f64 = f64::from_bits((1023 - 1000) << 52);
/// `Θ = 2⁻⁷⁹⁹`, added to every output term once per sample (module doc, "Guard").
const THETA: f64 = f64::from_bits((1023 - 799) << 52);

/// Smallest denominator `n + o g` for which `p̄` is computed (below it, `p̄ = 1`).
pub(super) const D_MIN: f64 = f64::from_bits((1023 - 900) << 52);

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
            kf,
            fr: 1.0 + 8.0 * u,
            ar: 2.0 * tiny,
            tiny,
            wmin: if on { -0.25 } else { f64::INFINITY },
            c32: 32.0 * u,
            f_n: up(up(1.0 + rho_e) * up(1.0 + 3.0 * u)),
            a_n: 3.0 * tiny,
            f_o: lower(rho_o),
            a_o: 4.0 * kf * tiny,
            f_g: lower(rho_g),
            a_g: 2.0 * tiny,
            f_p: 1.0 + 6.0 * u,
            out_s: if on {
                up(up(1.0 + 2.0 * gamma(2 * k + 9, U64)) * up(1.0 + 5.0 * u))
            } else {
                1.0
            },
            out_k: if on {
                up(up(1.0 + 2.0 * gamma(2 * k + 14, U64)) * up(1.0 + 5.0 * u))
            } else {
                1.0
            },
            out_5: if on { up(1.0 + 5.0 * u) } else { 1.0 },
            out_m: if on { 2.0 * THETA } else { 0.0 },
        })
    }

    /// A lower bound of `e^w` for `w <= 0`, up to the factor `1 - L u` and `η_E` absolute
    /// (module doc), `ex = exp_nonpos(w)` given: the cubic `1 + w + w²/2 + w³/6 - 32u` on
    /// `[wmin, 0]` (as the interval path), `ex` below. Branch free.
    #[inline(always)]
    pub(super) fn exp_low(&self, w: f64, ex: f64) -> f64 {
        let cubic = (1.0 + w * (1.0 + w * (0.5 + w * (1.0 / 6.0)))) - self.c32;
        if w >= self.wmin { cubic } else { ex }
    }
}
