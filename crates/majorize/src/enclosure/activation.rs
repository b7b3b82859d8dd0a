//! Sharp 1-D Taylor enclosures of the elementwise functions (activations and the
//! softplus inside the logistic loss).
//!
//! For a function `h`, an expansion point `x0` and a range `Y = [a, b]` containing `x0`,
//! the degree-2 enclosure is `h(y) ∈ h(x0) + h'(x0)(y - x0) + [r](y - x0)^2` for all
//! `y ∈ Y`, where `[r]` encloses the remainder ratio
//! `R(y) = (h(y) - h(x0) - h'(x0)(y - x0)) / (y - x0)^2 = ∫_0^1 (1 - t) h''(x0 + t(y - x0)) dt`
//! (`R(x0) = h''(x0)/2`). Rules, all from Streeter & Dillon, "Sharp Taylor polynomial
//! enclosures in one dimension", arXiv:2308.00679 (see also docs/MAJORIZE.md):
//!
//! - **derivative-range fallback** (Lagrange form, always valid): `[r] = ½ h''(Y)`.
//! - **monotone rule**: if `h''` is nondecreasing on `Y`, the integrand grows with `y`
//!   for every `t`, so `R` is nondecreasing and `R(Y) = [R(a), R(b)]` (decreasing:
//!   `[R(b), R(a)]`). Sharp: the bound touches `h` at both ends.
//! - **even-symmetric rule** (softplus: `h''` even, nonincreasing on `[0, ∞)`):
//!   `max R = R(clip(-x0, a, b))`, `min R = min(R(a), R(b))`.
//!
//! Endpoint ratios `R(a), R(b)` are evaluated with a rigorous error bound (cancellation
//! near `x0` makes that bound large) and the result is intersected with the fallback,
//! so a badly conditioned endpoint can only cost sharpness, never soundness.
//! Piecewise-linear functions (ReLU, leaky ReLU) are handled in `propagate` from the kink.

use nets::Activation;

use super::fp::{Iv, LIBM_ULPS, U64, eta, fmax, fmin, rounding};

/// `ln(2 + sqrt 3)`: the critical points `±c` of `sigmoid''` (zeros of `sigmoid'''`),
/// bracketed `[lo, hi]`.
const SIGMOID_CRIT: (f64, f64) = (1.316_957_896_92, 1.316_957_896_93);
/// `atanh(1/sqrt 3)`: critical points of `tanh''`, bracketed.
const TANH_CRIT: (f64, f64) = (0.658_478_948_46, 0.658_478_948_47);
/// `max |sigmoid''| = 1/(6 sqrt 3)`, rounded up.
const SIGMOID_D2_MAX: f64 = 0.096_225_044_864_937_64;
/// `max |tanh''| = 4/(3 sqrt 3)`, rounded up.
const TANH_D2_MAX: f64 = 0.769_800_358_919_501_2;

/// A smooth elementwise function with known second-derivative shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Smooth {
    Sigmoid,
    Tanh,
    Softplus,
}

impl Smooth {
    pub(crate) fn of(a: Activation) -> Option<Smooth> {
        match a {
            Activation::Sigmoid => Some(Smooth::Sigmoid),
            Activation::Tanh => Some(Smooth::Tanh),
            Activation::Softplus => Some(Smooth::Softplus),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Smooth::Sigmoid => "sigmoid",
            Smooth::Tanh => "tanh",
            Smooth::Softplus => "softplus",
        }
    }
}

fn lib() -> f64 {
    if rounding() { LIBM_ULPS * U64 } else { 0.0 }
}

/// `(sigmoid(y), sigmoid(-y))` from one exponential `e = exp(-|y|)`: the larger one is
/// `1/(1 + e)`, the smaller `e/(1 + e)` (for `y = 0` both forms give 1/2 exactly).
/// The pair is enclosed with relative error at most `lib + 3u` (exp, one add, one
/// divide) each, plus `eta` absolute. `e` must be `exp(-|y|)` as computed here.
#[inline]
fn sig_from_e(y: f64, e: f64) -> (Iv, Iv) {
    let (big, small) = (1.0 / (1.0 + e), e / (1.0 + e));
    let (p, m) = if y >= 0.0 { (big, small) } else { (small, big) };
    let rel = lib() + 4.0 * U64;
    (Iv::approx(p, rel, eta(U64)), Iv::approx(m, rel, eta(U64)))
}

/// [`sig_from_e`] with its exponential.
#[inline]
fn sig_pair(y: f64) -> (Iv, Iv) {
    sig_from_e(y, (-y.abs()).exp())
}

/// `h(y)` enclosed (value computed in f64 with its error bound).
pub(crate) fn value(f: Smooth, y: f64) -> Iv {
    value_d2(f, y).0
}

/// Softplus `max(y, 0) + ln_1p(e)` with `e = exp(-|y|)`: the `ln_1p` argument is in
/// `[0, 1]` where `x / ln(1+x) <= 1/ln 2 < 1.5`, so its relative error is `<= 2.5 lib`;
/// plus the add.
#[inline]
fn softplus_iv(y: f64, e: f64) -> Iv {
    let v = fmax(y, 0.0) + e.ln_1p();
    Iv::approx(v, 3.0 * lib() + 3.0 * U64, 2.0 * eta(U64))
}

/// `(h(y), h'(y))` enclosed, sharing the library calls.
fn value_d1(f: Smooth, y: f64) -> (Iv, Iv) {
    match f {
        Smooth::Sigmoid => {
            let (p, m) = sig_pair(y);
            (p, p.mul(m))
        }
        Smooth::Tanh => {
            let c = Iv::approx(y.cosh(), lib(), eta(U64));
            (
                Iv::approx(y.tanh(), lib(), eta(U64)),
                Iv::point(1.0).mul(recip(c.mul(c))),
            )
        }
        Smooth::Softplus => {
            let e = (-y.abs()).exp();
            (softplus_iv(y, e), sig_from_e(y, e).0)
        }
    }
}

/// `1 / x` for an interval of positive numbers (returns `[0, inf]` otherwise).
fn recip(x: Iv) -> Iv {
    if x.lo > 0.0 {
        Iv::new(super::fp::dn(1.0 / x.hi), super::fp::up(1.0 / x.lo))
    } else {
        Iv::new(0.0, f64::INFINITY)
    }
}

/// `(h(y), h''(y))` enclosed, sharing the library calls: sigmoid'' = s(y)s(-y)tanh(-y/2),
/// tanh'' = -2 tanh(y)/cosh(y)^2, softplus'' = s(y)s(-y) (forms without cancellation).
fn value_d2(f: Smooth, y: f64) -> (Iv, Iv) {
    match f {
        Smooth::Sigmoid => {
            let (p, m) = sig_pair(y);
            let t = Iv::approx((-0.5 * y).tanh(), lib(), eta(U64));
            (p, p.mul(m).mul(t))
        }
        Smooth::Tanh => {
            let t = Iv::approx(y.tanh(), lib(), eta(U64));
            let c = Iv::approx(y.cosh(), lib(), eta(U64));
            (t, t.scale(-2.0).mul(recip(c.mul(c))))
        }
        Smooth::Softplus => {
            let e = (-y.abs()).exp();
            let (p, m) = sig_from_e(y, e);
            (softplus_iv(y, e), p.mul(m))
        }
    }
}

/// `h''(y)` enclosed (see [`value_d2`]).
fn second(f: Smooth, y: f64) -> Iv {
    value_d2(f, y).1
}

/// Range of `h''` over `[a, b]`: endpoint values (`d2a`, `d2b`, enclosures of `h''(a)`,
/// `h''(b)`) plus every interior critical value.
fn second_range(f: Smooth, a: f64, b: f64, d2a: Iv, d2b: Iv) -> Iv {
    let mut r = d2a.hull(d2b);
    let (crit, m) = match f {
        Smooth::Sigmoid => (SIGMOID_CRIT, SIGMOID_D2_MAX),
        Smooth::Tanh => (TANH_CRIT, TANH_D2_MAX),
        Smooth::Softplus => {
            if a <= 0.0 && 0.0 <= b {
                r = r.hull(Iv::point(0.25));
            }
            return r;
        }
    };
    // h'' has its maximum m at -c and its minimum -m at +c.
    if a <= -crit.0 && -crit.1 <= b {
        r = r.hull(Iv::point(m));
    }
    if a <= crit.1 && crit.0 <= b {
        r = r.hull(Iv::point(-m));
    }
    r
}

/// Monotonicity of `h''` on `[a, b]`: `Some(true)` nondecreasing, `Some(false)`
/// nonincreasing, `None` unknown / not monotone.
fn second_monotone(f: Smooth, a: f64, b: f64) -> Option<bool> {
    let crit = match f {
        Smooth::Sigmoid => SIGMOID_CRIT,
        Smooth::Tanh => TANH_CRIT,
        Smooth::Softplus => {
            return if b <= 0.0 {
                Some(true)
            } else if a >= 0.0 {
                Some(false)
            } else {
                None
            };
        }
    };
    // Increasing on (-inf, -c], decreasing on [-c, c], increasing on [c, inf).
    if b <= -crit.1 || a >= crit.1 {
        Some(true)
    } else if a >= -crit.0 && b <= crit.0 {
        Some(false)
    } else {
        None
    }
}

/// The remainder ratio `R(y)` around `x0` with slope `s` (an enclosure of `h'(x0)`),
/// enclosed with its floating-point error; `hy` encloses `h(y)`, `d2y` (used only when
/// `y = x0`) encloses `h''(y)`.
fn ratio(x0: f64, h0: Iv, s: Iv, y: f64, hy: Iv, d2y: impl FnOnce() -> Iv) -> Iv {
    if y == x0 {
        return d2y().scale(0.5);
    }
    let d = Iv::point(y).sub(Iv::point(x0));
    let num = hy.sub(h0).sub(s.mul(d));
    let d2 = d.mul(d);
    if d2.lo <= 0.0 {
        return Iv::new(f64::NEG_INFINITY, f64::INFINITY);
    }
    let q = num.mul(recip(d2));
    if q.lo.is_nan() || q.hi.is_nan() {
        Iv::new(f64::NEG_INFINITY, f64::INFINITY)
    } else {
        q
    }
}

/// A 1-D enclosure `h(y) ∈ h0 + s (y - x0) + r (y - x0)²` on `[a, b]`, and
/// `hmax >= max |h|` over `[a, b]` (for the driver's error term).
#[derive(Clone, Copy, Debug)]
pub(crate) struct OneD {
    pub(crate) h0: Iv,
    pub(crate) s: Iv,
    pub(crate) r: Iv,
    pub(crate) hmax: f64,
    /// An enclosure of `h(b)`.
    pub(crate) hb: Iv,
}

/// The 1-D enclosure of a smooth function around `x0` on `[a, b]` (`a <= x0 <= b`):
/// `h(x0)`, `h'(x0)` and `[r]`, each an interval containing the exact quantity. Each of
/// `x0`, `a`, `b` costs one set of library calls (shared between `h`, `h'`, `h''`).
pub(crate) fn smooth_enclosure(f: Smooth, x0: f64, a: f64, b: f64) -> OneD {
    let (h0, s) = value_d1(f, x0);
    let (ha, d2a) = value_d2(f, a);
    let (hb, d2b) = value_d2(f, b);
    let fallback = second_range(f, a, b, d2a, d2b).scale(0.5);
    let finite = a.is_finite() && b.is_finite() && x0.is_finite();
    let sharp = match (f, second_monotone(f, a, b)) {
        _ if !finite => None,
        (_, Some(inc)) => {
            let ra = ratio(x0, h0, s, a, ha, || d2a);
            let rb = ratio(x0, h0, s, b, hb, || d2b);
            // Nondecreasing R: [R(a), R(b)] (each endpoint enclosed, so take the outer ends).
            if inc {
                Some(Iv::new(ra.lo, rb.hi))
            } else {
                Some(Iv::new(rb.lo, ra.hi))
            }
        }
        (Smooth::Softplus, None) => {
            let ra = ratio(x0, h0, s, a, ha, || d2a);
            let rb = ratio(x0, h0, s, b, hb, || d2b);
            let ym = fmin(fmax(-x0, a), b);
            let rm = if ym == a {
                ra
            } else if ym == b {
                rb
            } else {
                ratio(x0, h0, s, ym, value(f, ym), || second(f, ym))
            };
            Some(Iv::new(fmin(ra.lo, rb.lo), rm.hi))
        }
        _ => None,
    };
    let mut r = match sharp {
        Some(iv) if iv.lo <= iv.hi => iv.meet(fallback),
        _ => fallback,
    };
    let k = super::fp::knobs();
    if k.scaled == Some(f.name()) {
        r = Iv::new(r.lo * k.remainder_scale, r.hi * k.remainder_scale);
    }
    OneD {
        h0,
        s,
        r,
        hmax: fmax(ha.mag(), hb.mag()),
        hb,
    }
}

/// Relative accuracy (in units of the driver's roundoff `u_T`) of the driver's `T`
/// evaluation of `h` (nets' forms): tanh one libm call; sigmoid exp + add + divide;
/// softplus as in [`value`].
pub(crate) fn driver_rel(f: Smooth) -> f64 {
    match f {
        Smooth::Tanh => LIBM_ULPS,
        Smooth::Sigmoid => LIBM_ULPS + 4.0,
        Smooth::Softplus => 3.0 * LIBM_ULPS + 3.0,
    }
}
