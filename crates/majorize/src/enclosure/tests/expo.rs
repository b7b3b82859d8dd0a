//! `expo::exp_nonpos` against a double-double `exp`, its error budget recomputed, and
//! checks that a truncated polynomial or a halved error constant is caught.

use super::super::expo::{
    COEF, EXP_FLUSH, EXP_ULPS, X_FLUSH, exp_nonpos, exp_nonpos_with, poly, reduce,
};
use super::super::fp::{LIBM_ULPS, U64};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A double-double number `hi + lo` (`|lo| <= ulp(hi)/2`).
#[derive(Clone, Copy, Debug)]
struct Dd {
    hi: f64,
    lo: f64,
}

fn two_sum(a: f64, b: f64) -> Dd {
    let s = a + b;
    let bb = s - a;
    let lo = (a - (s - bb)) + (b - bb);
    Dd { hi: s, lo }
}

fn add(a: Dd, b: Dd) -> Dd {
    let s = two_sum(a.hi, b.hi);
    let lo = s.lo + a.lo + b.lo;
    two_sum(s.hi, lo)
}

fn mul(a: Dd, b: Dd) -> Dd {
    let p = a.hi * b.hi;
    let e = a.hi.mul_add(b.hi, -p);
    let lo = e + (a.hi * b.lo + a.lo * b.hi);
    two_sum(p, lo)
}

fn div_int(a: Dd, d: f64) -> Dd {
    let q = a.hi / d;
    let r = add(
        a,
        Dd {
            hi: -q * d,
            lo: -(q.mul_add(d, -(q * d))),
        },
    );
    two_sum(q, r.hi / d)
}

fn dd(x: f64) -> Dd {
    Dd { hi: x, lo: 0.0 }
}

/// `ln 2` in double-double.
const LN2: Dd = Dd {
    hi: std::f64::consts::LN_2,
    lo: 2.319_046_813_846_299_6e-17,
};

/// `e^r` for `|r| <= 0.36` in double-double (Taylor to degree 30, relative error below
/// `2⁻¹⁰⁰`).
fn exp_dd_reduced(r: Dd) -> Dd {
    let mut term = dd(1.0);
    let mut sum = dd(1.0);
    for i in 1..=30 {
        term = div_int(mul(term, r), i as f64);
        sum = add(sum, term);
    }
    sum
}

/// `e^x` for `x ∈ [-745, 0]` in double-double, `(hi, lo)` scaled back to `f64` as a pair
/// (accurate to far below `u` relative wherever `e^x` is normal).
fn exp_dd(x: f64) -> (f64, f64) {
    let k = (x / std::f64::consts::LN_2).round();
    let kl = mul(dd(k), LN2);
    let r = add(
        dd(x),
        Dd {
            hi: -kl.hi,
            lo: -kl.lo,
        },
    );
    let e = exp_dd_reduced(r);
    let s = 2f64.powi(k as i32);
    (e.hi * s, e.lo * s)
}

/// Relative error of `f(x)` against the double-double `e^x`, in units of `u`.
fn rel_err(v: f64, x: f64) -> f64 {
    let (h, l) = exp_dd(x);
    ((v - h) - l).abs() / h / U64
}

/// Arguments: random in `[X_FLUSH, 0]`, near the reduction's boundaries `(k + ½) ln 2`,
/// near 0 and near `X_FLUSH`.
fn points(n: usize) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut xs = Vec::with_capacity(n + 4000);
    for _ in 0..n {
        xs.push(rng.random_range(X_FLUSH..=0.0));
    }
    for k in 0..1021 {
        let b = -(k as f64 + 0.5) * std::f64::consts::LN_2;
        for d in [-1e-9, -1e-15, 0.0, 1e-15, 1e-9] {
            let x = b + d * b.abs().max(1.0);
            if (X_FLUSH..=0.0).contains(&x) {
                xs.push(x);
            }
        }
    }
    for i in 0..500 {
        xs.push(-(i as f64) * 1e-3);
        xs.push(-f64::from(i) * 1e-17);
        xs.push(X_FLUSH + f64::from(i) * 1e-3);
    }
    xs.push(X_FLUSH);
    xs.push(-f64::MIN_POSITIVE);
    xs.push(-5e-324);
    xs
}

#[test]
fn exp_within_its_bound_against_double_double() {
    let mut worst = (0.0f64, 0.0);
    let xs = points(300_000);
    for &x in &xs {
        let e = rel_err(exp_nonpos(x), x);
        if e > worst.0 {
            worst = (e, x);
        }
    }
    eprintln!(
        "exp_nonpos: max relative error {:.3} u at x = {} over {} points (bound {EXP_ULPS} u)",
        worst.0,
        worst.1,
        xs.len()
    );
    assert!(worst.0 <= EXP_ULPS, "{worst:?}");
    // Not vacuous: the observed error is a sizeable part of the bound.
    assert!(worst.0 > 0.5, "{worst:?}");
    // And libm's, for comparison, is inside the engine's LIBM_ULPS.
    let libm = xs.iter().map(|&x| rel_err(x.exp(), x)).fold(0.0, f64::max);
    eprintln!("libm exp: max relative error {libm:.3} u");
    assert!(libm <= LIBM_ULPS);
}

#[test]
fn exp_special_values() {
    assert_eq!(exp_nonpos(0.0), 1.0);
    assert_eq!(exp_nonpos(-0.0), 1.0);
    assert_eq!(exp_nonpos(-5e-324), 1.0);
    assert_eq!(exp_nonpos(-1e-17), 1.0);
    let at = exp_nonpos(X_FLUSH);
    assert!(at.is_normal() && rel_err(at, X_FLUSH) <= EXP_ULPS, "{at}");
    // Below X_FLUSH: 0, where e^x is below EXP_FLUSH (subnormal results flushed).
    for x in [
        X_FLUSH - 1e-12,
        -708.5,
        -709.0,
        -720.0,
        -745.0,
        -745.2,
        -1e300,
    ] {
        assert_eq!(exp_nonpos(x), 0.0, "{x}");
        assert!(x.exp() < EXP_FLUSH, "{x}");
    }
    assert!((X_FLUSH - 1e-12).exp() < EXP_FLUSH);
    assert_eq!(exp_nonpos(f64::NEG_INFINITY), 0.0);
    assert!(exp_nonpos(f64::NAN).is_nan());
    // Outside the contract: +∞ (an upper bound, never used).
    assert_eq!(exp_nonpos(1e-300), f64::INFINITY);
    assert_eq!(exp_nonpos(800.0), f64::INFINITY);
    assert_eq!(exp_nonpos(f64::INFINITY), f64::INFINITY);
    // Monotone across the reduction's boundaries.
    for k in 1..1021 {
        let b = -(k as f64 + 0.5) * std::f64::consts::LN_2;
        let (l, h) = (b.next_down(), b.next_up());
        assert!(exp_nonpos(l) <= exp_nonpos(b) && exp_nonpos(b) <= exp_nonpos(h));
    }
}

#[test]
fn reduction_is_exact_up_to_the_last_subtraction() {
    // r = fl(x - k LN2_HI - fl(k LN2_LO)) within u |r| + 2⁻⁷⁰ of x - k ln 2, |r| <= ρ.
    let rho = std::f64::consts::LN_2 / 2.0 * (1.0 + 2f64.powi(-40));
    for &x in &points(20_000) {
        let (r, kd, _) = reduce(x);
        assert!(r.abs() <= rho, "{x} {r}");
        let kl = mul(dd(kd), LN2);
        let exact = add(
            dd(x),
            Dd {
                hi: -kl.hi,
                lo: -kl.lo,
            },
        );
        let d = ((r - exact.hi) - exact.lo).abs();
        assert!(d <= U64 * r.abs() + 2f64.powi(-70), "{x}: {d:e}");
    }
}

/// Largest `|P(r) - e^r| / e^r` in units of `u` over `|r| <= ρ`, with `P = 1 + r + r² Q`
/// and `Q`'s `f64` coefficients `c`, evaluated in double-double (no rounding of its own).
fn truncation_err(c: &[f64]) -> f64 {
    let rho = std::f64::consts::LN_2 / 2.0 * (1.0 + 2f64.powi(-40));
    let mut worst = 0.0f64;
    for i in 0..=2000 {
        let r = -rho + 2.0 * rho * f64::from(i) / 2000.0;
        let mut q = dd(c[c.len() - 1]);
        for &ci in c[..c.len() - 1].iter().rev() {
            q = add(dd(ci), mul(dd(r), q));
        }
        let p = add(dd(1.0), add(dd(r), mul(mul(dd(r), dd(r)), q)));
        let e = exp_dd_reduced(dd(r));
        let d = add(
            p,
            Dd {
                hi: -e.hi,
                lo: -e.lo,
            },
        );
        worst = worst.max(d.hi.abs() / e.hi / U64);
    }
    worst
}

/// The module doc's budget, recomputed: truncation and coefficients, Horner (the `a_i`
/// recursion), the two additions, the reduction.
fn budget() -> f64 {
    let rho = std::f64::consts::LN_2 / 2.0 * (1.0 + 2f64.powi(-40));
    let fact = |i: u32| (1..=i).map(f64::from).product::<f64>();
    // Q_i(ρ) for i = 2..=13 and the Horner error a_i (units of u, first order, inflated).
    let mut qv = [0.0; 15];
    qv[13] = 1.0 / fact(13);
    for i in (2..13).rev() {
        qv[i] = 1.0 / fact(i as u32) + rho * qv[i + 1];
    }
    let mut a = [0.0; 15];
    for i in (2..13).rev() {
        a[i] = 1.001 * (rho * a[i + 1] + rho * qv[i + 1] + qv[i]);
    }
    let emin = (-rho).exp();
    let horner = 1.001 * rho * rho * (2.0 * qv[2] + a[2]) / emin;
    let trunc = truncation_err(&COEF);
    // u |r + h| + u |1 + r + h| relative to e^r, with r + h = e^r - 1.
    let adds = 1.0 + (rho.exp() - 1.0).max(1.0 - (-rho).exp());
    trunc + horner + adds + rho
}

#[test]
fn error_constant_matches_its_derivation() {
    let b = budget();
    eprintln!("exp_nonpos budget {b:.4} u, constant {EXP_ULPS} u");
    assert!(b <= EXP_ULPS - 0.3, "budget {b} (second-order margin 0.3)");
    // (`EXP_ULPS <= LIBM_ULPS` is a compile-time assertion in `ce_plain`.)
    // A halved constant is caught by the assertion above.
    assert!(b > EXP_ULPS / 2.0);
}

#[test]
fn truncated_polynomial_is_caught() {
    let full = truncation_err(&COEF);
    // The budget allows 0.065 u for truncation and coefficients.
    assert!(full <= 0.065, "{full}");
    // Degree 12 instead of 13: about 2.1 u, far outside.
    let cut = truncation_err(&COEF[..11]);
    assert!(cut > 1.0, "{cut}");
    // And the function with degree 11 leaves EXP_ULPS (about 80 u near |r| = ρ).
    let worst = points(50_000)
        .iter()
        .map(|&x| rel_err(exp_nonpos_with(x, &COEF[..10]), x))
        .fold(0.0, f64::max);
    assert!(worst > 10.0 * EXP_ULPS, "{worst}");
    // The production function is the full polynomial.
    for x in [-0.3, -1.0, -100.0] {
        assert_eq!(exp_nonpos(x), exp_nonpos_with(x, &COEF));
    }
    let (r, _, _) = reduce(-0.3);
    assert_eq!(poly(r), exp_nonpos(-0.3));
}
