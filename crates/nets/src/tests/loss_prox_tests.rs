use super::{rng, unif};
use crate::loss_prox::{admm_to_prox, hinge_output_step, logistic_prox, mse_prox, softmax_ce_prox};
use crate::{Loss, LossKind, NetsError, Reduction, Targets};
use nalgebra::DMatrix;

/// Brute-force 1-D minimiser: fine grid on [c - w, c + w] then golden section.
fn brute1(f: &dyn Fn(f64) -> f64, c: f64, w: f64) -> f64 {
    let n = 20_000;
    let step = 2.0 * w / n as f64;
    let mut best = (c, f(c));
    for i in 0..=n {
        let z = c - w + step * i as f64;
        if f(z) < best.1 {
            best = (z, f(z));
        }
    }
    let (mut lo, mut hi) = (best.0 - step, best.0 + step);
    let g = 0.5 * (5f64.sqrt() - 1.0);
    for _ in 0..200 {
        let a = hi - g * (hi - lo);
        let b = lo + g * (hi - lo);
        if f(a) < f(b) {
            hi = b;
        } else {
            lo = a;
        }
    }
    0.5 * (lo + hi)
}

#[test]
fn scalar_proxes_match_brute_force() {
    let mut r = rng(51);
    for _ in 0..200 {
        let (y, v, t) = (
            unif(&mut r, -2.0, 2.0),
            unif(&mut r, -5.0, 5.0),
            unif(&mut r, 0.05, 5.0),
        );
        let f = |z: f64| 0.5 * (z - y) * (z - y) + (z - v) * (z - v) / (2.0 * t);
        let z = mse_prox(y, v, t);
        assert!((z - brute1(&f, v, 10.0)).abs() < 1e-6);
        let yb = unif(&mut r, 0.0, 1.0);
        let f = |z: f64| crate::activation::softplus(z) - yb * z + (z - v) * (z - v) / (2.0 * t);
        let z = logistic_prox(yb, v, t).unwrap();
        let zb = brute1(&f, v, 10.0);
        assert!((z - zb).abs() < 1e-6, "logistic: {z} vs {zb}");
        assert!(f(z) <= f(zb) + 1e-13);
    }
}

#[test]
fn hinge_output_step_matches_brute_force() {
    let mut r = rng(52);
    for i in 0..400 {
        let y = i % 2 == 0;
        let (m, lam, beta) = (
            unif(&mut r, -3.0, 3.0),
            unif(&mut r, -3.0, 3.0),
            unif(&mut r, 0.05, 5.0),
        );
        let ell = |z: f64| if y { (1.0 - z).max(0.0) } else { z.max(0.0) };
        let f = |z: f64| ell(z) + lam * z + beta * (z - m) * (z - m);
        let z = hinge_output_step(y, m, lam, beta).unwrap();
        let zb = brute1(&f, m, 40.0);
        assert!(
            f(z) <= f(zb) + 1e-12,
            "y={y} m={m} lam={lam} beta={beta}: {z} ({}) vs {zb} ({})",
            f(z),
            f(zb)
        );
        assert!((z - zb).abs() < 1e-5, "{z} vs {zb}");
    }
    // The correction-1 example: y = 1, m = 0.5, beta = 1, lambda = -3 moves z to 2.
    assert_eq!(hinge_output_step(true, 0.5, -3.0, 1.0).unwrap(), 2.0);
    assert!(hinge_output_step(true, 0.5, 0.0, 0.0).is_err());
    // ADMM form = prox form.
    let (v, t) = admm_to_prox(0.7, 0.4, 2.0);
    let direct = (0.7 * 4.0 - 0.4 + 0.3) / (1.0 + 4.0); // MSE: z - y + lam + 2 beta (z - m) = 0, y = 0.3
    assert!((mse_prox(0.3, v, t) - direct).abs() < 1e-15);
}

#[test]
fn softmax_ce_prox_is_the_minimiser() {
    let mut r = rng(53);
    for k in [2usize, 3, 6] {
        for trial in 0..30 {
            let t = [0.1, 1.0, 20.0][trial % 3];
            let mut y = vec![0.0; k];
            y[trial % k] = 1.0;
            let v: Vec<f64> = (0..k).map(|_| unif(&mut r, -6.0, 6.0)).collect();
            let mut z = vec![0.0; k];
            let mut work = vec![0.0; 3 * k];
            let iters = softmax_ce_prox(&y, &v, t, &mut z, &mut work).unwrap();
            assert!(iters < 40, "{iters} Newton steps");
            let obj = |z: &[f64]| {
                let lse = z.iter().map(|x| x.exp()).sum::<f64>().ln();
                let ce: f64 = y.iter().zip(z).map(|(a, b)| a * (lse - b)).sum();
                ce + z
                    .iter()
                    .zip(&v)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>()
                    / (2.0 * t)
            };
            // Gradient descent with step 1/L (L = 1/2 + 1/t) reaches the same point.
            let mut w = v.clone();
            let step = 1.0 / (0.5 + 1.0 / t);
            for _ in 0..20_000 {
                let lse = w.iter().map(|x| x.exp()).sum::<f64>().ln();
                let g: Vec<f64> = (0..k)
                    .map(|i| (w[i] - lse).exp() - y[i] + (w[i] - v[i]) / t)
                    .collect();
                for i in 0..k {
                    w[i] -= step * g[i];
                }
            }
            let dist = z
                .iter()
                .zip(&w)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                .sqrt();
            assert!(dist < 1e-8, "K={k} t={t}: Newton {z:?} vs GD {w:?}");
            assert!(obj(&z) <= obj(&w) + 1e-13);
        }
    }
    let mut z = vec![0.0; 2];
    let e = softmax_ce_prox(&[1.0, 0.0], &[0.0, 0.0], 1.0, &mut z, &mut [0.0; 3]).unwrap_err();
    assert!(matches!(e, NetsError::Shape { .. }), "{e}");
}

#[test]
fn output_prox_matches_the_scalar_maps() {
    let v = DMatrix::from_column_slice(3, 2, &[0.2, -1.0, 2.0, 0.0, 0.5, -0.3]);
    let lab = Targets::Labels {
        labels: vec![2, 0],
        classes: 3,
    };
    let mut out = DMatrix::zeros(0, 0);
    Loss::new(LossKind::Mse, Reduction::Sum)
        .output_prox(&lab, &v, 0.5, &mut out)
        .unwrap();
    assert!((out[(2, 0)] - mse_prox(1.0, 2.0, 0.5)).abs() < 1e-15);
    assert!((out[(1, 0)] - mse_prox(0.0, -1.0, 0.5)).abs() < 1e-15);
    Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Sum)
        .output_prox(&lab, &v, 0.5, &mut out)
        .unwrap();
    let mut z = vec![0.0; 3];
    softmax_ce_prox(
        &[1.0, 0.0, 0.0],
        &[0.0, 0.5, -0.3],
        0.5,
        &mut z,
        &mut [0.0; 9],
    )
    .unwrap();
    for i in 0..3 {
        assert!((out[(i, 1)] - z[i]).abs() < 1e-15);
    }
    Loss::new(LossKind::Logistic, Reduction::Sum)
        .output_prox(&lab, &v, 0.5, &mut out)
        .unwrap();
    assert!((out[(0, 1)] - logistic_prox(1.0, 0.0, 0.5).unwrap()).abs() < 1e-15);
    let e = Loss::new(LossKind::MulticlassHinge, Reduction::Sum)
        .output_prox(&lab, &v, 0.5, &mut out)
        .unwrap_err();
    assert!(e.to_string().contains("hinge_output_step"), "{e}");
}

/// Regression (found by the dlADMM speed work): with 10 classes, |v| up to 8 and large
/// `t` (dlADMM's `1/rho` reaches 1e6), Newton used to cycle between two points, one of
/// them uphill, because a halved gradient norm was accepted without looking at the
/// objective; 3 in 4 draws failed at t = 100. Every draw must now converge to a
/// stationary point below the objective at `v`.
#[test]
fn softmax_ce_prox_converges_for_ten_classes_and_large_t() {
    let mut r = rng(97);
    let k = 10;
    for t in [1e-2, 1.0, 1e2, 1e4, 1e6, 1e8] {
        for trial in 0..100 {
            let mut y = vec![0.0; k];
            y[trial % k] = 1.0;
            let v: Vec<f64> = (0..k).map(|_| unif(&mut r, -8.0, 8.0)).collect();
            let mut z = vec![0.0; k];
            let mut work = vec![0.0; 3 * k];
            let iters = softmax_ce_prox(&y, &v, t, &mut z, &mut work)
                .unwrap_or_else(|e| panic!("t = {t}, v = {v:?}: {e}"));
            assert!(iters <= 30, "t = {t}: {iters} Newton steps");
            let mx = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let se: f64 = z.iter().map(|x| (x - mx).exp()).sum();
            let grad_sq: f64 = (0..k)
                .map(|i| {
                    let g = (z[i] - mx).exp() / se - y[i] + (z[i] - v[i]) / t;
                    g * g
                })
                .sum();
            // The documented stopping rule: t ||g|| <= NEWTON_TOL (1 + ||z||_inf), or ||g||
            // at rounding level (for large t the first is below what f64 can resolve).
            let gn = grad_sq.sqrt();
            let zmax = z.iter().fold(0.0f64, |a, x| a.max(x.abs()));
            assert!(
                t * gn <= 1e-12 * (1.0 + zmax) || gn <= 1e-13,
                "t = {t}: gradient norm {gn}"
            );
            let obj = |w: &[f64]| {
                let m = w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + w.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
                let ce: f64 = y.iter().zip(w).map(|(a, b)| a * (lse - b)).sum();
                ce + w
                    .iter()
                    .zip(&v)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>()
                    / (2.0 * t)
            };
            assert!(obj(&z) <= obj(&v), "t = {t}: objective rose");
        }
    }
}
