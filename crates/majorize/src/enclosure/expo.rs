//! `exp` of a nonpositive number in plain `f64` with a proven a-priori error bound, written
//! so that a loop over a slice of arguments vectorises (no call, no branch, no table):
//! the cross-entropy's plain path (`ce_plain`) exponentiates every logit of a block in one
//! pass with it instead of calling libm once per logit.
//!
//! # Algorithm
//!
//! For `x ∈ [X_FLUSH, 0]`, `X_FLUSH = -708`:
//! 1. `k = round(x / ln 2)`: `z = fl(fl(x · INV_LN2) + 1.5·2⁵²)` rounds to an integer
//!    (the ulp at `2⁵²` is 1), `kd = fl(z - 1.5·2⁵²) = k` exactly, and the low bits of
//!    `z`'s representation are `k` (two's complement).
//! 2. `r = fl(fl(x - kd·LN2_HI) - fl(kd·LN2_LO))` (Cody & Waite's two-part `ln 2`):
//!    `LN2_HI` has 32 significant bits, so `kd·LN2_HI` is exact for `|k| <= 2¹⁰`;
//!    `x - kd·LN2_HI` is exact as well (for `k = 0` trivially; otherwise `|x| >= 0.34` and
//!    `|kd·LN2_HI| >= 0.69`, so both are multiples of `2⁻⁵⁴` while the difference is below
//!    `0.35 < 2⁵³·2⁻⁵⁴`).
//! 3. `p = fl(1 + fl(r + fl(fl(r·r) · Q(r))))`, `Q(r) = Σ_{i=2}^{13} c_i r^{i-2}` by
//!    Horner, `c_i = fl(1/i!)` (the degree-13 Taylor polynomial of `e^r`).
//! 4. `result = p · 2^k`, the power of two built from the exponent bits
//!    (`((bits(z) + 1023) << 52)`); `k ∈ [-1021, 0]`, so `2^k` and the product are normal
//!    and the product is exact.
//!
//! For `x < X_FLUSH` (and `x = -∞`) the result is 0, for `x > 0` it is `+∞` (callers never
//! pass one), and `NaN` gives `NaN`.
//!
//! # Error bound
//!
//! Claim: for `x ∈ [X_FLUSH, 0]`, `|exp_nonpos(x) - e^x| <= EXP_ULPS · u · e^x` with
//! `EXP_ULPS = 2.5`, `u = 2⁻⁵³`; for `x < X_FLUSH`, `0 <= e^x < 2⁻¹⁰²¹ = EXP_FLUSH`
//! (absolute error below `EXP_FLUSH`, no relative bound). So the function is within the
//! `fp::LIBM_ULPS = 8` relative error and, with `η_E = EXP_FLUSH` in place of `η`, the
//! absolute error the enclosure engine assumes of libm's `exp`.
//!
//! Proof (each part relative to `e^r`, which is `>= e^{-ρ} = 0.7071`):
//! - *Reduction.* `|fl(x · INV_LN2) - x/ln 2| <= 2.01 u |x| / ln 2 < 2⁻⁴²` for `|x| <= 708`,
//!   so `|r| <= ρ = (ln 2 / 2)(1 + 2⁻⁴⁰)`. The exact `x - k ln 2` differs from
//!   `x - kd·LN2_HI - kd·LN2_LO` by `|k| |LN2_HI + LO - ln 2| < 2¹⁰ 2⁻⁸⁶`, from the rounded
//!   product by `u |k LN2_LO| < 2⁻⁸⁵`, and the last subtraction adds `u |r| <= 0.3466 u`:
//!   `e^{r̂} = e^r (1 + θ)` with `|θ| <= 0.3466 u + 2⁻⁷⁴`.
//! - *Truncation and coefficients.* `Σ_{i>=14} ρ^i/i! + u Σ_{i=3}^{13} ρ^i/i!`, relative
//!   `<= 0.065 u`.
//! - *Horner.* With `Q_i = c_i + r Q_{i+1}` (`Q_13 = c_13`) and `a_i` the bound of the
//!   computed `Q_i`'s absolute error in units of `u`: `a_13 = 0`,
//!   `a_i = ρ a_{i+1} + ρ Q_{i+1}(ρ) + Q_i(ρ)` to first order (the product's rounding, the
//!   sum's rounding, the inherited error; all coefficients are positive, so
//!   `|Q_i(r)| <= Q_i(ρ)`), which gives `a_2 = 0.702`, `Q_2(ρ) = 0.5632`. Then
//!   `h = fl(fl(r·r) Q̂)` is within `ρ² (2 Q_2(ρ) + a_2) u <= 0.220 u` of `r² Q(r)`,
//!   relative `<= 0.311 u`.
//! - *The two additions.* `u |r + h| + u |1 + r + h|`, relative `<= (1 + max_r |1 - e^{-r}|) u
//!   = 1.4143 u` (`|r + h| = |e^r - 1|` up to the errors above).
//!
//! Sum: `0.3466 + 0.065 + 0.311 + 1.4143 = 2.137`, and the second-order terms (products of
//! the `(1 + δ)` factors) stay far below `0.3`, so `EXP_ULPS = 2.5` holds. The scaling by
//! `2^k` is exact. The test `tests/expo.rs` recomputes this budget (the Horner recursion
//! included) and checks `EXP_ULPS` against it, checks the polynomial's truncation error in
//! double-double arithmetic, and compares the function with a double-double `exp` at
//! about 300,000 points, the ends of the range included (largest error seen: 1.47 u).

/// Below this argument the result is flushed to 0 (`e^x < 2⁻¹⁰²¹` there).
pub(crate) const X_FLUSH: f64 = -708.0;
/// Absolute error bound of a flushed result (`2⁻¹⁰²¹ > e^{-708}`).
#[cfg(test)]
pub(crate) const EXP_FLUSH: f64 = f64::from_bits((1023 - 1021) << 52);
/// Relative error bound of [`exp_nonpos`] on `[X_FLUSH, 0]`, in units of `u = 2⁻⁵³`.
pub const EXP_ULPS: f64 = 2.5;

/// `1 / ln 2`, rounded.
const INV_LN2: f64 = std::f64::consts::LOG2_E;
/// `ln 2` to 32 significant bits (fdlibm's split).
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
/// `ln 2 - LN2_HI`, rounded.
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
/// `1.5 · 2⁵²`: adding it rounds to an integer.
const SHIFT: f64 = 6_755_399_441_055_744.0;

/// `fl(1/i!)` for `i = 2..=13` (index `i - 2`).
pub(crate) const COEF: [f64; 12] = [
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
    1.0 / 40320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
];

/// The reduced argument `r` and `k` (as `f64`) and the bits of `z` (module doc, steps 1-2).
#[inline(always)]
pub(crate) fn reduce(x: f64) -> (f64, f64, u64) {
    let z = x * INV_LN2 + SHIFT;
    let kd = z - SHIFT;
    let r = (x - kd * LN2_HI) - kd * LN2_LO;
    (r, kd, z.to_bits())
}

/// `e^r` for `|r| <= ρ` (module doc, step 3).
#[cfg(test)]
pub(crate) fn poly(r: f64) -> f64 {
    poly_with(r, &COEF)
}

/// `1 + r + r² Q(r)` with `Q`'s coefficients `c` (`c[0]` of `r⁰`) by Horner; the tests
/// also pass a truncated `c` to check that their checks catch it.
#[inline(always)]
pub(crate) fn poly_with(r: f64, c: &[f64]) -> f64 {
    let last = c.len() - 1;
    let mut q = c[last];
    for i in (0..last).rev() {
        q = c[i] + r * q;
    }
    1.0 + (r + (r * r) * q)
}

/// `e^x` for `x <= 0` within `EXP_ULPS · u` relative on `[X_FLUSH, 0]`, 0 below `X_FLUSH`
/// (absolute error `< EXP_FLUSH`), `+∞` for `x > 0`, `NaN` for `NaN` (module doc). Branch
/// free, so loops over slices vectorise. Public (re-exported as
/// `majorize::enclosure::exp_nonpos`) for the solvers' softmax kernels (issue #14).
#[inline(always)]
pub fn exp_nonpos(x: f64) -> f64 {
    exp_nonpos_with(x, &COEF)
}

/// [`exp_nonpos`] with the coefficients `c` of [`poly_with`] (tests).
#[inline(always)]
pub(crate) fn exp_nonpos_with(x: f64, c: &[f64]) -> f64 {
    let (r, _, zb) = reduce(x);
    let scale = f64::from_bits(zb.wrapping_add(1023) << 52);
    let v = poly_with(r, c) * scale;
    let v = if x < X_FLUSH { 0.0 } else { v };
    if x > 0.0 { f64::INFINITY } else { v }
}
