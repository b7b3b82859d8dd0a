use super::{all_activations, rng, unif};
use crate::prox::{
    WeightedProx, prox_is_closed_form, prox_objective, prox_weighted, prox_weighted_matrix,
};
use crate::{Activation, NetsError};
use nalgebra::DMatrix;

/// The prox's definition, `g (a - h(z))^2 + b (z - m)^2`, written here rather than
/// read from [`prox_objective`]: the numeric prox minimises `prox_objective` itself, so
/// for the numeric activations a brute force over that function would not see it wrong
/// (only the closed-form activations would).
fn definition(h: &Activation, z: f64, a: f64, m: f64, g: f64, b: f64) -> f64 {
    let r = a - h.apply(z);
    g * r * r + b * (z - m) * (z - m)
}

/// Brute force: 20 001-point grid on a wide interval, then golden-section refinement
/// around the best grid point.
fn brute(h: &Activation, a: f64, m: f64, g: f64, b: f64) -> (f64, f64) {
    let phi = |z: f64| definition(h, z, a, m, g, b);
    let r = (phi(m) / b).sqrt() + 1.0;
    let n = 20_000;
    let step = 2.0 * r / n as f64;
    let mut best = (m, phi(m));
    for i in 0..=n {
        let z = m - r + step * i as f64;
        let v = phi(z);
        if v < best.1 {
            best = (z, v);
        }
    }
    let (mut lo, mut hi) = (best.0 - step, best.0 + step);
    let gr = 0.5 * (5f64.sqrt() - 1.0);
    for _ in 0..200 {
        let c = hi - gr * (hi - lo);
        let d = lo + gr * (hi - lo);
        if phi(c) < phi(d) {
            hi = d;
        } else {
            lo = c;
        }
    }
    let z = 0.5 * (lo + hi);
    if phi(z) < best.1 { (z, phi(z)) } else { best }
}

#[test]
fn prox_returns_the_true_minimiser() {
    let mut r = rng(11);
    let mut numeric_cases = 0;
    for h in all_activations() {
        for case in 0..60 {
            let scale = if case % 2 == 0 { 1.0 } else { 5.0 };
            let a = unif(&mut r, -2.0, 2.0) * scale;
            let m = unif(&mut r, -2.0, 2.0) * scale;
            let g = [1.0, 10.0, 0.3][case % 3];
            let b = [1.0, 0.05, 4.0][case % 3];
            let z = prox_weighted(&h, a, m, g, b).unwrap();
            let (zb, vb) = brute(&h, a, m, g, b);
            let v = definition(&h, z, a, m, g, b);
            assert_eq!(prox_objective(&h, zb, a, m, g, b), vb, "{h:?}");
            assert!(
                v <= vb + 1e-10 * (1.0 + vb),
                "{h:?} a={a} m={m} g={g} b={b}: prox {z} ({v}) vs brute {zb} ({vb})"
            );
            // Unless two basins tie, the minimisers agree.
            if (v - vb).abs() < 1e-12 * (1.0 + vb) || prox_is_closed_form(&h) {
                let second_basin = {
                    let far = if zb > z {
                        z + 0.5 * (zb - z)
                    } else {
                        zb + 0.5 * (z - zb)
                    };
                    definition(&h, far, a, m, g, b) > v + 1e-9
                };
                if second_basin && (z - zb).abs() > 1e-6 {
                    // Two separated global minima with equal value: both are valid.
                    continue;
                }
                assert!(
                    (z - zb).abs() < 1e-6 * (1.0 + zb.abs()),
                    "{h:?}: {z} vs {zb}"
                );
            }
            if !prox_is_closed_form(&h) {
                numeric_cases += 1;
            }
        }
    }
    assert!(numeric_cases > 100);
}

#[test]
fn relu_closed_form_matches_the_bcd_case_analysis() {
    // relu_prox(a, c, g) of ALGORITHMS.md 4.2, written out case by case.
    let reference = |a: f64, c: f64, g: f64| -> f64 {
        if a + g * c < 0.0 {
            c.min(0.0)
        } else if c >= 0.0 || a * (g - (g * (g + 1.0)).sqrt()) <= g * c {
            (a + g * c) / (1.0 + g)
        } else {
            c
        }
    };
    let mut r = rng(12);
    for _ in 0..2000 {
        let (a, c, g) = (
            unif(&mut r, -3.0, 3.0),
            unif(&mut r, -3.0, 3.0),
            unif(&mut r, 0.01, 5.0),
        );
        let z = prox_weighted(&Activation::Relu, a, c, 1.0, g).unwrap();
        let zr = reference(a, c, g);
        let (v, vr) = (
            prox_objective(&Activation::Relu, z, a, c, 1.0, g),
            prox_objective(&Activation::Relu, zr, a, c, 1.0, g),
        );
        assert!(
            (v - vr).abs() < 1e-12 * (1.0 + v),
            "a={a} c={c} g={g}: {z} ({v}) vs {zr} ({vr})"
        );
    }
    // A hand case: a = 1, m = 0.5, gamma = beta = 1: z = (1 + 0.5)/2 = 0.75.
    assert!((prox_weighted(&Activation::Relu, 1.0, 0.5, 1.0, 1.0).unwrap() - 0.75).abs() < 1e-15);
    // a = -1 pulls relu(z) down: z = min(m, 0).
    assert_eq!(
        prox_weighted(&Activation::Relu, -1.0, 0.5, 1.0, 1.0).unwrap(),
        0.0
    );
}

/// The hoisted-check form returns exactly what the per-entry map returns, errors
/// included (issue #14: the loops of ADMM, BCD and MAC use it).
#[test]
fn weighted_prox_is_prox_weighted_bit_for_bit() {
    let mut r = rng(5);
    let mut hs = all_activations();
    hs.push(Activation::Elu { alpha: 0.0 });
    for h in hs {
        for (g, b) in [(1.0, 1.0), (10.0, 0.05), (0.3, 4.0), (0.0, 2.0)] {
            let p = WeightedProx::new(&h, g, b).unwrap();
            for _ in 0..40 {
                let (a, m) = (unif(&mut r, -6.0, 6.0), unif(&mut r, -6.0, 6.0));
                let want = prox_weighted(&h, a, m, g, b).unwrap();
                assert_eq!(p.eval(a, m).unwrap().to_bits(), want.to_bits(), "{h:?}");
            }
            for (a, m) in [(f64::NAN, 0.0), (0.0, f64::INFINITY)] {
                let want = prox_weighted(&h, a, m, g, b).unwrap_err().to_string();
                assert_eq!(p.eval(a, m).unwrap_err().to_string(), want);
            }
        }
    }
    for (g, b) in [(-1.0, 1.0), (1.0, 0.0), (f64::NAN, 1.0)] {
        let want = prox_weighted(&Activation::Relu, 0.5, 0.5, g, b).unwrap_err();
        let got = WeightedProx::new(&Activation::Relu, g, b).unwrap_err();
        assert_eq!(got.to_string(), want.to_string());
    }
    let bad = Activation::LeakyRelu { slope: f64::NAN };
    assert!(WeightedProx::new(&bad, 1.0, 1.0).is_err());
}

#[test]
fn prox_matrix_and_errors() {
    let h = Activation::Tanh;
    let a = DMatrix::from_row_slice(2, 2, &[0.5f32, -0.2, 0.9, 0.0]);
    let m = DMatrix::from_row_slice(2, 2, &[0.1f32, 0.3, -1.0, 2.0]);
    let mut out = DMatrix::zeros(0, 0);
    prox_weighted_matrix(&h, &a, &m, 10.0, 1.0, &mut out).unwrap();
    for i in 0..4 {
        let z = prox_weighted(&h, a[i] as f64, m[i] as f64, 10.0, 1.0).unwrap();
        assert_eq!(out[i], z as f32);
    }
    let bad = DMatrix::<f32>::zeros(3, 2);
    assert!(matches!(
        prox_weighted_matrix(&h, &a, &bad, 1.0, 1.0, &mut out),
        Err(NetsError::Shape { .. })
    ));
    let e = prox_weighted(&h, 0.0, 0.0, 1.0, 0.0).unwrap_err();
    assert!(e.to_string().contains("beta"), "{e}");
    let e = prox_weighted(&h, f64::NAN, 0.0, 1.0, 1.0).unwrap_err();
    assert!(e.to_string().contains("a = NaN"), "{e}");
    assert!(
        prox_weighted(&h, 0.0, 0.0, -1.0, 1.0)
            .unwrap_err()
            .to_string()
            .contains("gamma")
    );
    // gamma = 0: the minimiser is m.
    assert_eq!(prox_weighted(&h, 3.0, 0.25, 0.0, 1.0).unwrap(), 0.25);
}

#[test]
fn relu_prox_matches_the_dladmm_z_step() {
    // dlADMM (ALGORITHMS.md 3.2), gamma = beta = 1: z1 = min(m, 0), z2 = max((m + a)/2, 0),
    // keep the one with the smaller (z - m)^2 + (a - relu(z))^2.
    let mut r = rng(13);
    for _ in 0..2000 {
        let (a, m) = (unif(&mut r, -3.0, 3.0), unif(&mut r, -3.0, 3.0));
        let f = |z: f64| (z - m) * (z - m) + (a - z.max(0.0)) * (a - z.max(0.0));
        let (z1, z2) = (m.min(0.0), ((m + a) / 2.0).max(0.0));
        let want = if f(z1) <= f(z2) { z1 } else { z2 };
        let z = prox_weighted(&Activation::Relu, a, m, 1.0, 1.0).unwrap();
        assert!((f(z) - f(want)).abs() < 1e-14, "a={a} m={m}: {z} vs {want}");
    }
}
