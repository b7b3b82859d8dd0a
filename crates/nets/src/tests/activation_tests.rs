use super::{all_activations, rng, unif};
use crate::{Activation, Monotonicity};

/// Random points, with extra mass near the kink at 0 and in the tails.
fn points(seed: u64, n: usize) -> Vec<f64> {
    let mut r = rng(seed);
    (0..n)
        .map(|i| match i % 3 {
            0 => unif(&mut r, -1.0, 1.0),
            1 => unif(&mut r, -8.0, 8.0),
            _ => unif(&mut r, -40.0, 40.0),
        })
        .collect()
}

#[test]
fn lipschitz_constant_holds_on_random_pairs_and_is_tight() {
    for h in all_activations() {
        let s = h.structure();
        let p = points(1, 4000);
        let mut best_ratio: f64 = 0.0;
        for w in p.chunks(2) {
            let (x, y) = (w[0], w[1]);
            if x == y {
                continue;
            }
            let ratio = (h.apply(x) - h.apply(y)).abs() / (x - y).abs();
            assert!(
                ratio <= s.lipschitz * (1.0 + 1e-12),
                "{h:?}: ratio {ratio} > {}",
                s.lipschitz
            );
            best_ratio = best_ratio.max(ratio);
        }
        // Tightness: small pairs where |h'| peaks reach the constant.
        for &z in &[-1e-3f64, 1e-3, 0.0, -20.0, 20.0] {
            let d = 1e-7;
            best_ratio = best_ratio.max((h.apply(z + d) - h.apply(z)).abs() / d);
        }
        assert!(
            best_ratio >= 0.999 * s.lipschitz,
            "{h:?}: constant {} not approached ({best_ratio})",
            s.lipschitz
        );
    }
}

#[test]
fn derivative_matches_finite_differences_and_bounds() {
    for h in all_activations() {
        let s = h.structure();
        for z in points(2, 600) {
            let d = h.derivative(z);
            assert!(
                d >= s.derivative_bounds.0 - 1e-15 && d <= s.derivative_bounds.1 + 1e-15,
                "{h:?} h'({z}) = {d}"
            );
            if z.abs() < 1e-4 {
                continue; // kink
            }
            let e = 1e-6;
            let fd = (h.apply(z + e) - h.apply(z - e)) / (2.0 * e);
            assert!(
                (fd - d).abs() < 1e-7 * (1.0 + d.abs()),
                "{h:?} at {z}: fd {fd} vs {d}"
            );
        }
        // Left derivative convention at the kink.
        let left = (h.apply(0.0f64) - h.apply(-1e-9f64)) / 1e-9;
        assert!(
            (h.derivative(0.0f64) - left).abs() < 1e-6,
            "{h:?}: h'(0) is not the left derivative"
        );
    }
}

#[test]
fn second_derivative_bounds_hold_and_are_attained() {
    for h in all_activations() {
        let s = h.structure();
        let Some((lo, hi)) = s.second_derivative_bounds else {
            // Stated non-C^1: h' must jump somewhere (at 0).
            let jump = (h.derivative(1e-9f64) - h.derivative(-1e-9f64)).abs();
            assert!(
                jump > 1e-3,
                "{h:?}: stated a kink but h' is continuous at 0"
            );
            continue;
        };
        // C^1: h' continuous at 0.
        assert!(
            (h.derivative(1e-12f64) - h.derivative(-1e-12f64)).abs() < 1e-9,
            "{h:?}"
        );
        let (mut mn, mut mx) = (f64::INFINITY, f64::NEG_INFINITY);
        for z in points(3, 3000)
            .into_iter()
            .chain((0..4001).map(|i| -10.0 + i as f64 * 0.005))
        {
            let d2 = h.second_derivative(z);
            assert!(
                d2 >= lo - 1e-15 && d2 <= hi + 1e-15,
                "{h:?}: h''({z}) = {d2} outside [{lo}, {hi}]"
            );
            mn = mn.min(d2);
            mx = mx.max(d2);
            if z.abs() > 1e-4 {
                let e = 1e-5;
                let fd = (h.derivative(z + e) - h.derivative(z - e)) / (2.0 * e);
                assert!((fd - d2).abs() < 1e-6, "{h:?} h''({z}): fd {fd} vs {d2}");
            }
        }
        assert!(
            mn <= lo + 1e-4 && mx >= hi - 1e-4,
            "{h:?}: bounds [{lo}, {hi}] not tight ([{mn}, {mx}])"
        );
        // h' is Lipschitz with constant max |h''|.
        let c = lo.abs().max(hi.abs());
        for w in points(4, 2000).chunks(2) {
            let (x, y) = (w[0], w[1]);
            assert!(
                (h.derivative(x) - h.derivative(y)).abs()
                    <= c * (x - y).abs() * (1.0 + 1e-9) + 1e-15,
                "{h:?}"
            );
        }
    }
}

#[test]
fn monotonicity_range_and_piecewise_linearity() {
    for h in all_activations() {
        let s = h.structure();
        let p = points(5, 4000);
        let mut violated = false;
        for w in p.chunks(2) {
            let (x, y) = if w[0] < w[1] {
                (w[0], w[1])
            } else {
                (w[1], w[0])
            };
            if x == y {
                continue;
            }
            match s.monotonicity {
                Monotonicity::StrictlyIncreasing if y - x > 1e-3 && x > -30.0 && y < 30.0 => {
                    assert!(
                        h.apply(x) < h.apply(y),
                        "{h:?} not strictly increasing at {x} {y}"
                    )
                }
                Monotonicity::StrictlyIncreasing | Monotonicity::NonDecreasing => {
                    assert!(
                        h.apply(x) <= h.apply(y),
                        "{h:?} not nondecreasing at {x} {y}"
                    )
                }
                Monotonicity::NotMonotone => violated |= h.apply(x) > h.apply(y),
            }
            for v in [h.apply(x), h.apply(y)] {
                assert!(
                    v >= s.range.0 && v <= s.range.1,
                    "{h:?}: {v} outside {:?}",
                    s.range
                );
            }
        }
        if s.monotonicity == Monotonicity::NotMonotone {
            assert!(
                violated,
                "{h:?}: stated not monotone but no violation found"
            );
        }
        if s.monotonicity == Monotonicity::NonDecreasing {
            assert_eq!(
                h.apply(-1.0f64),
                h.apply(-2.0f64),
                "{h:?}: stated flat piece missing"
            );
        }
        // Range ends are approached.
        let ends = [h.apply(-700.0f64), h.apply(700.0f64), h.apply(0.0f64)];
        let lo_hit = if s.range.0.is_finite() {
            ends.iter().any(|v| (v - s.range.0).abs() < 1e-9)
        } else {
            h.apply(-1e6f64).min(h.apply(1e6f64)) < -1e4
        };
        let hi_hit = if s.range.1.is_finite() {
            ends.iter().any(|v| (v - s.range.1).abs() < 1e-9)
        } else {
            h.apply(-1e6f64).max(h.apply(1e6f64)) > 1e4
        };
        assert!(
            lo_hit && hi_hit,
            "{h:?}: range {:?} not approached ({ends:?})",
            s.range
        );
        // Piecewise linear through 0: h(2z) = 2 h(z) on both sides; otherwise some curvature.
        let pl = [-3.0f64, -0.5, 0.7, 4.0]
            .iter()
            .all(|&z| (h.apply(2.0 * z) - 2.0 * h.apply(z)).abs() < 1e-12);
        assert_eq!(pl, s.piecewise_linear, "{h:?}: piecewise_linear flag");
    }
}

#[test]
fn stable_forms_do_not_overflow() {
    for z in [-1000.0f64, -50.0, 0.0, 50.0, 1000.0] {
        for h in all_activations() {
            assert!(
                h.apply(z).is_finite() && h.derivative(z).is_finite(),
                "{h:?} at {z}"
            );
        }
    }
    assert_eq!(Activation::Softplus.apply(1000.0f64), 1000.0);
    assert_eq!(Activation::Sigmoid.apply(-1000.0f64), 0.0);
    assert!((Activation::Softplus.apply(0.0f64) - std::f64::consts::LN_2).abs() < 1e-16);
    assert!((Activation::Softplus.apply(-30.0f32) - (-30.0f32).exp()).abs() < 1e-18);
    // f32 evaluations agree with f64 ones to f32 precision.
    for z in [-3.0f32, -0.2, 0.4, 2.0] {
        for h in all_activations() {
            let a = h.apply(z) as f64;
            let b = h.apply(z as f64);
            assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{h:?}");
        }
    }
}

#[test]
fn validate_rejects_nan_parameters() {
    let e = Activation::LeakyRelu { slope: f64::NAN }
        .validate()
        .unwrap_err();
    assert!(e.to_string().contains("slope"), "{e}");
    assert!(
        Activation::Elu {
            alpha: f64::INFINITY
        }
        .validate()
        .unwrap_err()
        .to_string()
        .contains("alpha")
    );
    assert!(Activation::Tanh.validate().is_ok());
}
