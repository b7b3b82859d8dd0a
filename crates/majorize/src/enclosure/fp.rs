//! Directed rounding and the floating-point error model of the enclosure engine.
//!
//! All enclosure arithmetic is done in `f64` (whatever the network's scalar type `T`).
//! Every interval endpoint produced by one floating-point operation (round to nearest)
//! is pushed outward by one ulp with `f64::next_down` / `f64::next_up`: the exact result
//! of an operation lies between the rounded result and its neighbour on the far side, so
//! the pushed endpoint bounds it. Nonnegative error bounds are rounded up the same way.
//!
//! Library functions (`exp`, `ln_1p`, `tanh`, `cosh`) are assumed accurate to
//! [`LIBM_ULPS`] units of roundoff (relative error at most `LIBM_ULPS * u`, plus an
//! absolute [`eta`] for results in the subnormal range). glibc documents errors of at
//! most 1-2 ulp (= 2-4 u) for these functions in both `f32` and `f64`, so the assumed 8 u
//! leaves a factor two of margin.

#[cfg(test)]
use std::cell::Cell;

/// The run-time choice of vector extension (`autodiff::simd::widest`).
pub(crate) use autodiff::simd::widest;

/// Unit roundoff of `f64` (`2^-53`).
pub(crate) const U64: f64 = f64::EPSILON / 2.0;

/// Assumed relative accuracy of libm functions, in units of roundoff `u` (see module doc).
pub(crate) const LIBM_ULPS: f64 = 8.0;

#[cfg(test)]
thread_local! {
    /// Test-only knobs (mutation tests): switch outward rounding and every error term off,
    /// or scale the remainder interval of one activation. Absent from non-test builds, so
    /// the library always rounds (and pays no thread-local lookup per operation).
    static KNOBS: Cell<Knobs> = const { Cell::new(SOUND) };
}

/// The only setting outside the mutation tests.
const SOUND: Knobs = Knobs {
    rounding: true,
    remainder_scale: 1.0,
    scaled: None,
    general_only: false,
};

/// Mutation knobs (only the tests change them).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Knobs {
    /// Outward rounding and all floating-point error terms on (the only sound setting).
    pub(crate) rounding: bool,
    /// Factor applied to the remainder interval of the activation named `scaled`.
    pub(crate) remainder_scale: f64,
    /// The activation whose remainder is scaled (`nets::Activation::name`).
    pub(crate) scaled: Option<&'static str>,
    /// Take the general (any `k`) rules even for `k = 1` (tests compare the `k = 1`
    /// fast paths against them); for `k > 1`, form every degree-2 product (no sharing
    /// between pairs with equal operands, `model::dense`) and copy a zero-`Q` model
    /// before the ReLU instead of working in place (`sweep`).
    pub(crate) general_only: bool,
}

/// `true` when the `k = 1` fast paths may be taken (always, outside tests).
#[inline]
pub(crate) fn fast_paths() -> bool {
    !knobs().general_only
}

#[cfg(test)]
pub(crate) fn knobs() -> Knobs {
    KNOBS.with(|k| k.get())
}

#[cfg(not(test))]
#[inline(always)]
pub(crate) fn knobs() -> Knobs {
    SOUND
}

#[cfg(test)]
pub(crate) fn set_knobs(k: Knobs) {
    KNOBS.with(|c| c.set(k));
}

#[inline]
pub(crate) fn rounding() -> bool {
    knobs().rounding
}

const INF_BITS: u64 = 0x7ff0_0000_0000_0000;
const SIGN_BIT: u64 = 0x8000_0000_0000_0000;

/// `x.next_up()` with a one-compare fast path: for `+0` and positive finite `x` the
/// successor is the bit pattern plus one (IEEE 754 orders nonnegative floats like their
/// bits); everything else (negative, infinite, NaN) goes to the standard library.
#[inline(always)]
fn next_up_fast(x: f64) -> f64 {
    let b = x.to_bits();
    if b < INF_BITS {
        f64::from_bits(b + 1)
    } else {
        x.next_up()
    }
}

/// `x.next_down()` with the mirrored fast path for `-0` and negative finite `x`.
#[inline(always)]
fn next_down_fast(x: f64) -> f64 {
    let b = x.to_bits();
    if (SIGN_BIT..SIGN_BIT | INF_BITS).contains(&b) {
        f64::from_bits(b + 1)
    } else {
        x.next_down()
    }
}

/// `x.next_up()` for every `x` (NaN, infinities and signed zeros included) without a
/// data-dependent branch: the bit pattern plus one for `+0` and positive `x`, minus one
/// for negative `x`, `1` (the least subnormal) for `-0`, and `x` itself for NaN and
/// `+inf`, chosen by selects (the caller's loop stays free of unpredictable branches
/// when the signs of its operands vary).
#[inline(always)]
pub(crate) fn next_up_select(x: f64) -> f64 {
    let b = x.to_bits();
    let negative = b > SIGN_BIT;
    let step = if negative { b.wrapping_sub(1) } else { b + 1 };
    let step = if b == SIGN_BIT { 1 } else { step };
    let keep = x.is_nan() || b == INF_BITS;
    f64::from_bits(if keep { b } else { step })
}

/// `x.next_down()` for every `x`, without a data-dependent branch: `-next_up(-x)`.
#[inline(always)]
pub(crate) fn next_down_select(x: f64) -> f64 {
    -next_up_select(-x)
}

/// [`up`] without a data-dependent branch ([`next_up_select`]): equal to `up` for every
/// input, for loops over entries whose signs vary.
#[inline]
pub(crate) fn up_select(x: f64) -> f64 {
    if rounding() { next_up_select(x) } else { x }
}

/// [`dn`] without a data-dependent branch ([`next_down_select`]).
#[inline]
pub(crate) fn dn_select(x: f64) -> f64 {
    if rounding() { next_down_select(x) } else { x }
}

/// `x` rounded up by one ulp (identity when rounding is switched off).
#[inline]
pub(crate) fn up(x: f64) -> f64 {
    if rounding() { next_up_fast(x) } else { x }
}

/// `x` rounded down by one ulp.
#[inline]
pub(crate) fn dn(x: f64) -> f64 {
    if rounding() { next_down_fast(x) } else { x }
}

/// `gamma_n = n u / (1 - n u)` (Higham, *Accuracy and Stability of Numerical
/// Algorithms*, 2nd ed., Lemma 3.1) for unit roundoff `u`, rounded up; 0 when rounding
/// is off. `|fl(sum of n products) - exact| <= gamma_n * sum |products|` for any
/// summation order, with or without FMA (ibid. eq. 3.5).
pub(crate) fn gamma(n: usize, u: f64) -> f64 {
    if !rounding() {
        return 0.0;
    }
    let nu = n as f64 * u;
    if nu >= 0.5 {
        return f64::INFINITY;
    }
    up(up(nu) / dn(1.0 - nu))
}

/// Smallest positive subnormal of the type with unit roundoff `u`, times 8: an absolute
/// error allowance per operation for underflow (0 when rounding is off).
pub(crate) fn eta(u: f64) -> f64 {
    if !rounding() {
        0.0
    } else if u > 1e-10 {
        8.0 * f64::from(f32::from_bits(1))
    } else {
        8.0 * f64::from_bits(1)
    }
}

/// An upper bound of the exact value of a nonnegative quantity that was computed by
/// `m` floating-point operations on nonnegative data (`x` the computed value):
/// `x (1 + 2 gamma_{m+1}) + (m + 1) eta`, rounded up.
pub(crate) fn up_ops(x: f64, m: usize) -> f64 {
    if !rounding() {
        return x;
    }
    up(up(x * up(1.0 + 2.0 * gamma(m + 1, U64))) + (m + 1) as f64 * eta(U64))
}

/// [`up_ops`] for a fixed `m` with its constants precomputed: `apply(x)` is
/// `up_ops(x, m)` bit for bit (the same operations on the same numbers), for loops that
/// would otherwise recompute `γ_{m+1}` per call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UpOps {
    f: f64,
    a: f64,
    on: bool,
}

impl UpOps {
    pub(crate) fn new(m: usize) -> UpOps {
        UpOps {
            f: up(1.0 + 2.0 * gamma(m + 1, U64)),
            a: (m + 1) as f64 * eta(U64),
            on: rounding(),
        }
    }
    /// `up_ops(x, m)`.
    #[inline(always)]
    pub(crate) fn apply(self, x: f64) -> f64 {
        if !self.on {
            return x;
        }
        up(up(x * self.f) + self.a)
    }
    /// [`UpOps::apply`] without a data-dependent branch ([`up_select`]): the same bits
    /// for every input, for loops that vectorise.
    #[inline(always)]
    pub(crate) fn apply_select(self, x: f64) -> f64 {
        if !self.on {
            return x;
        }
        up_select(up_select(x * self.f) + self.a)
    }
}

/// [`up_ops`] with its factor precomputed, for hot loops: one multiply and one add,
/// without branches (so loops of it vectorise).
///
/// `apply(x) = fl(fl(x F) + A)` with `F >= (1 + 2 gamma_{m+1})(1 + 4u)` and
/// `A = 2 (m + 3) eta`, both rounded up. For `x >= 0` (the computed value of a
/// nonnegative quantity) this is at least `up_ops(x, m)`'s guarantee
/// `x (1 + 2 gamma_{m+1}) + (m + 1) eta`: round to nearest gives
/// `fl(y) >= y (1 - u) - eta/2` (the `eta/2` for the subnormal range), so
/// `fl(fl(x F) + A) >= (x F (1 - u) - eta/2 + A)(1 - u) - eta/2
/// >= x (1 + 2 gamma_{m+1}) + (m + 1) eta`, since `(1 + 4u)(1 - u)^2 >= 1` and
/// `A (1 - u) - eta >= (m + 1) eta`. NaN stays NaN and `+inf` stays `+inf`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Inflate {
    f: f64,
    a: f64,
}

impl Inflate {
    pub(crate) fn new(m: usize) -> Inflate {
        if !rounding() {
            return Inflate { f: 1.0, a: 0.0 };
        }
        Inflate {
            f: up(up(1.0 + 2.0 * gamma(m + 1, U64)) * up(1.0 + 4.0 * U64)),
            a: up(2.0 * (m + 3) as f64 * eta(U64)),
        }
    }
    /// An upper bound of the exact value of a nonnegative quantity computed (as `x`) by
    /// `m` operations on nonnegative data, as [`up_ops`] (see the type's doc).
    #[inline(always)]
    pub(crate) fn apply(self, x: f64) -> f64 {
        x * self.f + self.a
    }
}

/// A closed interval `[lo, hi]` with outward-rounded arithmetic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Iv {
    pub(crate) lo: f64,
    pub(crate) hi: f64,
}

impl Iv {
    pub(crate) const ZERO: Iv = Iv { lo: 0.0, hi: 0.0 };

    #[inline]
    pub(crate) fn point(x: f64) -> Iv {
        Iv { lo: x, hi: x }
    }
    #[inline]
    pub(crate) fn new(lo: f64, hi: f64) -> Iv {
        Iv { lo, hi }
    }
    /// `[m - r, m + r]`, outward.
    #[inline]
    pub(crate) fn mid_rad(m: f64, r: f64) -> Iv {
        let (lo, hi) = (dn(m - r), up(m + r));
        Iv {
            lo: if lo.is_nan() { f64::NEG_INFINITY } else { lo },
            hi: if hi.is_nan() { f64::INFINITY } else { hi },
        }
    }
    /// A value computed with relative error at most `rel` plus absolute `abs`.
    #[inline]
    pub(crate) fn approx(x: f64, rel: f64, abs: f64) -> Iv {
        if x.is_nan() {
            return Iv::new(f64::NEG_INFINITY, f64::INFINITY);
        }
        if x == f64::INFINITY {
            return Iv::new(f64::MAX, f64::INFINITY);
        }
        if x == f64::NEG_INFINITY {
            return Iv::new(f64::NEG_INFINITY, -f64::MAX);
        }
        let r = up(up(x.abs() * rel) + abs);
        Iv::mid_rad(x, r)
    }
    #[inline]
    pub(crate) fn add(self, o: Iv) -> Iv {
        Iv {
            lo: dn(self.lo + o.lo),
            hi: up(self.hi + o.hi),
        }
    }
    #[inline]
    pub(crate) fn sub(self, o: Iv) -> Iv {
        Iv {
            lo: dn(self.lo - o.hi),
            hi: up(self.hi - o.lo),
        }
    }
    #[inline]
    pub(crate) fn mul(self, o: Iv) -> Iv {
        let a = pmul(self.lo, o.lo);
        let b = pmul(self.lo, o.hi);
        let c = pmul(self.hi, o.lo);
        let d = pmul(self.hi, o.hi);
        // `fmin`/`fmax` of the four products, with the NaN test done once: without NaN
        // they are plain compare-selects (one `minsd`/`maxsd` each), the same values bit
        // for bit; with a NaN both ends are NaN, as through `fmin`/`fmax`.
        if a.is_nan() | b.is_nan() | c.is_nan() | d.is_nan() {
            return Iv {
                lo: dn(f64::NAN),
                hi: up(f64::NAN),
            };
        }
        let mn = |x: f64, y: f64| if x < y { x } else { y };
        let mx = |x: f64, y: f64| if x > y { x } else { y };
        Iv {
            lo: dn(mn(mn(a, b), mn(c, d))),
            hi: up(mx(mx(a, b), mx(c, d))),
        }
    }
    /// Product with a point: `self.mul(Iv::point(s))` bit for bit, with two endpoint
    /// products instead of four (the other two are the same numbers again, and
    /// `fmin`/`fmax` of repeated operands are those operands, NaN included).
    #[inline]
    pub(crate) fn scale(self, s: f64) -> Iv {
        let a = pmul(self.lo, s);
        let c = pmul(self.hi, s);
        Iv {
            lo: dn(fmin(a, c)),
            hi: up(fmax(a, c)),
        }
    }
    /// Smallest interval containing both.
    #[inline]
    pub(crate) fn hull(self, o: Iv) -> Iv {
        Iv {
            lo: fmin(self.lo, o.lo),
            hi: fmax(self.hi, o.hi),
        }
    }
    /// Intersection (returns `self` if they do not meet, which only happens on a bug).
    #[inline]
    pub(crate) fn meet(self, o: Iv) -> Iv {
        let lo = fmax(self.lo, o.lo);
        let hi = fmin(self.hi, o.hi);
        if lo <= hi { Iv { lo, hi } } else { self }
    }
    /// `max |x|` over the interval.
    #[inline]
    pub(crate) fn mag(self) -> f64 {
        fmax(self.lo.abs(), self.hi.abs())
    }
    /// Midpoint and an upper bound of the radius: `self ⊆ [m - r, m + r]`.
    #[inline]
    pub(crate) fn to_mid_rad(self) -> (f64, f64) {
        let m = 0.5 * self.lo + 0.5 * self.hi;
        let r = fmax(up(self.hi - m), up(m - self.lo));
        (m, r)
    }
}

/// Endpoint product with `0 * inf = 0` (interval convention: the sets are bounded
/// where the endpoint is zero).
#[inline]
fn pmul(a: f64, b: f64) -> f64 {
    if a == 0.0 || b == 0.0 { 0.0 } else { a * b }
}

/// `min` that propagates NaN (so a NaN never silently disappears from a bound).
#[inline]
pub(crate) fn fmin(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a < b {
        a
    } else {
        b
    }
}

/// `max` that propagates NaN.
#[inline]
pub(crate) fn fmax(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a > b {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod next_tests {
    use super::{
        INF_BITS, SIGN_BIT, next_down_fast, next_down_select, next_up_fast, next_up_select,
    };

    /// The fast successor functions agree with the standard library bit for bit.
    #[test]
    fn fast_next_matches_std() {
        let xs = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            f64::from_bits(1),
            -f64::from_bits(1),
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e-300,
            -3.5e200,
            0.1,
        ];
        for x in xs {
            assert_eq!(next_up_fast(x).to_bits(), x.next_up().to_bits(), "up {x:e}");
            assert_eq!(
                next_down_fast(x).to_bits(),
                x.next_down().to_bits(),
                "down {x:e}"
            );
        }
        assert!(next_up_fast(f64::NAN).is_nan());
        assert!(next_down_fast(f64::NAN).is_nan());
    }

    /// The select (branch-free) successors agree with the standard library bit for bit:
    /// on the special values (signed zeros, subnormals, the largest finite, infinities,
    /// NaNs of either sign) and on 10^6 random bit patterns (every class, either sign).
    #[test]
    fn select_next_matches_std() {
        use rand::{RngExt, SeedableRng};
        let special = [
            0u64,
            SIGN_BIT,
            1,
            SIGN_BIT | 1,
            INF_BITS - 1,
            SIGN_BIT | (INF_BITS - 1),
            INF_BITS,
            SIGN_BIT | INF_BITS,
            INF_BITS | 1,
            SIGN_BIT | INF_BITS | 1,
            u64::MAX,
            0x0010_0000_0000_0000,
            0x000f_ffff_ffff_ffff,
        ];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
        let random = (0..1_000_000).map(|_| rng.random::<u64>());
        let (mut nans, mut checked) = (0, 0);
        for b in special.into_iter().chain(random) {
            let x = f64::from_bits(b);
            let (u, d) = (next_up_select(x), next_down_select(x));
            if x.is_nan() {
                assert!(u.is_nan() && d.is_nan(), "{b:#x}");
                nans += 1;
                continue;
            }
            assert_eq!(u.to_bits(), x.next_up().to_bits(), "up {b:#x}");
            assert_eq!(d.to_bits(), x.next_down().to_bits(), "down {b:#x}");
            checked += 1;
        }
        assert!(
            nans >= 4 && checked > 990_000,
            "{nans} NaNs, {checked} checked"
        );
    }
}
