//! The cheap paths of `bound.rs` (session 15, `chordfast`) against their directed-rounding
//! definitions: the plain sign of `t = z + ā p` outside its margin, and the clamped lower
//! bound of `exp` used by the shifted variance bound.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::super::bound::{exp_lo, sure_t};
use super::gauss;
use crate::enclosure::fp::{LIBM_ULPS, U64, dn, eta, up};

/// Wherever `sure_t` is sure, its `t̂` has the sign of the directed `t_hi` and `t_lo`
/// (so the branches are those of the directed code). Cases aimed at the margin:
/// `ā p = -z (1 + k u)` for `|k| <= 40`, magnitudes from 1e-310 (subnormal) to 1e300,
/// and random unrelated pairs. Checked once with the margin set to 0 (`t̂ != 0`) and
/// once to `4e-16 (|z| + |ā p|)` (no absolute term): both fail here (a `t_lo` of
/// -5e-324 under a positive `t̂` of 1e-208; a subnormal `t̂` of -5e-324 under a positive
/// `t_hi`).
#[test]
fn plain_sign_of_t_agrees_with_directed_rounding() {
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let (mut sure, mut unsure) = (0usize, 0usize);
    for i in 0..400_000 {
        let mag = 10f64.powf(rng.random_range(-310.0..300.0));
        let z = gauss(&mut rng) * mag;
        let abar = 10f64.powf(rng.random_range(-14.0..12.0));
        let pv = if i % 4 == 3 {
            gauss(&mut rng) * mag / abar
        } else {
            let k = rng.random_range(-40i32..=40);
            -z / abar * (1.0 + f64::from(k) * U64)
        };
        if !(pv.is_finite() && (abar * pv).is_finite()) {
            continue;
        }
        let (ok, tp) = sure_t(z, pv, abar);
        if !ok {
            unsure += 1;
            continue;
        }
        sure += 1;
        let t_hi = up(z + up(abar * pv));
        let t_lo = dn(z + dn(abar * pv));
        assert!(
            (tp > 0.0) == (t_hi > 0.0) && (tp > 0.0) == (t_lo > 0.0),
            "z {z:e} p {pv:e} ā {abar:e}: t̂ {tp:e}, t_hi {t_hi:e}, t_lo {t_lo:e}"
        );
    }
    eprintln!("sure {sure}, left to directed rounding {unsure}");
    assert!(sure > 100_000 && unsure > 100_000);
    assert!(!sure_t(f64::NAN, 1.0, 1.0).0);
    assert!(!sure_t(1.0, f64::MAX, 10.0).0);
}

/// `exp_lo(x)` is a finite lower bound of `exp(y)` for every `y >= x`: 0 for NaN and
/// below -745, at most `exp(min(x, 709))` elsewhere, and within `2Lu` of it (relative)
/// on the normal range (so the shift loses nothing there).
#[test]
fn exp_lower_bound_is_finite_and_below_exp() {
    let (f, et) = (dn(1.0 - 2.0 * LIBM_ULPS * U64), eta(U64));
    for x in [f64::NAN, f64::NEG_INFINITY, -1e300, -746.0, -745.5] {
        assert_eq!(exp_lo(x, f, et), 0.0, "{x}");
    }
    let mut x = -745.0;
    while x <= 1000.0 {
        let e = exp_lo(x, f, et);
        let r = x.min(709.0).exp();
        assert!(e.is_finite() && e >= 0.0 && e <= r, "{x}: {e:e} vs {r:e}");
        if (-700.0..=709.0).contains(&x) {
            assert!(e >= r * (1.0 - 1e-14), "{x}: {e:e} vs {r:e}");
        }
        x += 0.37;
    }
    assert!(exp_lo(f64::INFINITY, f, et) > 8e307);
}
