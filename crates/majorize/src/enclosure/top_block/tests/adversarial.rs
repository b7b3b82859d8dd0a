//! Adversarial cases of the floating-point argument (review, session 15): each aims at
//! one constant of the slack and checks the bound against a rigorous reference.

use nalgebra::{DMatrix, DVector};
use nets::{Activation, Dense, Layer, Loss, LossKind, Reduction, Sequential, Targets};

use super::{TCase, dd, dd_add};

/// The ulp of a positive normal `x`.
fn ulp(x: f64) -> f64 {
    let e = ((x.to_bits() >> 52) & 0x7ff) as i32 - 1075;
    2f64.powi(e)
}

/// The per-sample sum over the K outputs in nets' cross-entropy
/// (`Σ_k y_k (lse - z_k)`, K - 1 roundings) must be charged: `γ_{N+4}` on the sums
/// covers only the sum over samples. One sample, `W2 = 0` (the logits are `b2`, so the
/// layer-error terms of the slack are small), K = 1025, soft targets `y_0 = 0`,
/// `y_k = 2^-10` (a probability vector; every product exact), logits `b2_0 = 512` (so
/// nets' lse is exactly 512) and `b2_k = 512 - t_k` with `t_k ≈ 1100` chosen greedily so
/// that every addition of the driver's sum rounds down by almost half an ulp. The exact
/// `phi(0) >= Σ y_k t_k` (double-double; the exact lse is above 512) then exceeds
/// `value + slack` when the sum over the outputs is not charged.
#[test]
fn cross_entropy_sum_over_outputs_is_charged() {
    let (k, big, t0) = (1025usize, 512.0f64, 1100.0f64);
    let y = 2f64.powi(-10);
    let (mut s, mut ts) = (0.0f64, vec![0.0f64]);
    for _ in 1..k {
        let t = if s < 4096.0 {
            t0
        } else {
            // s + t = g + U/2 - 2^-42 (g = fl(s + t0), U its ulp): rounds down to g.
            let g = s + t0;
            let uu = ulp(g);
            (g - s) + (0.5 * uu - 2f64.powi(-42))
        };
        ts.push(t);
        s += t;
    }
    let mut b2 = DVector::from_element(k, 0.0);
    b2[0] = big;
    for (i, t) in ts.iter().enumerate().skip(1) {
        b2[i] = big - t;
        assert_eq!(big - b2[i], *t, "z_k must give t_k exactly");
    }
    let mut targets = DMatrix::from_element(k, 1, y);
    targets[(0, 0)] = 0.0;
    let l0 = Dense::new(
        DMatrix::from_element(1, 1, 0.7),
        DVector::from_element(1, 0.1),
    )
    .unwrap();
    let l1 = Dense::new(DMatrix::zeros(k, 1), b2.clone()).unwrap();
    let layers: Vec<Box<dyn Layer<f64>>> =
        vec![Box::new(l0), Box::new(Activation::Relu), Box::new(l1)];
    let net = Sequential::from_layers(layers).unwrap();
    let x = DMatrix::from_element(1, 1, 1.0);
    let mut dir = DVector::zeros(net.num_params());
    let wi = net.param_span(0, "weight").unwrap();
    let bi = net.param_span(0, "bias").unwrap();
    dir[wi.offset] = -0.3;
    dir[bi.offset] = 0.2;
    let c = TCase::ce(
        net,
        Reduction::Sum,
        0.0,
        x,
        Targets::Dense(targets),
        dir,
        1.0,
    );
    // A rigorous lower bound of the exact phi(0): Σ y_k (512 - z_k) exactly (each term
    // y t_k is a float; double-double sum), and the exact lse exceeds 512.
    let mut exact = dd(0.0);
    for t in &ts[1..] {
        exact = dd_add(exact, dd(y * t));
    }
    let exact_lo = exact.0 + exact.1;
    let r0 = c.record(0.0);
    let shortfall = exact_lo - r0;
    for value in [Some(r0), None] {
        let b = c.bound(value).unwrap();
        assert_eq!(b.value, r0);
        let ub0 = b.upper_bound(0.0).unwrap();
        assert!(
            exact_lo <= ub0 && shortfall <= b.slack,
            "exact phi(0) >= {exact_lo:e} > bound(0) {ub0:e}: the record is {shortfall:e} \
             below it, slack {:e} ({:.2}x)",
            b.slack,
            shortfall / b.slack
        );
    }
    // The construction works: the driver's sum is below the exact one by many ulps.
    assert!(shortfall > 1e-11, "{shortfall:e}");
}

/// Edge shapes and trust regions: K = 1 and 2, N = 1 and 3, one or three hidden units,
/// every pre-activation exactly 0 (`W = 0`, `b = 0`: each ReLU sits on its kink and the
/// direction decides), `ā` from 1e-300 to 1e12, sum and mean, labels and soft targets
/// whose sum is not 1. Record and double-double `psi` under the bound at every point
/// (or an infinite slack), `|phi(0) - value| <= slack`.
#[test]
fn edge_shapes_on_the_kink_and_extreme_regions() {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(15);
    let (mut checked, mut infinite) = (0usize, 0usize);
    for k in [1usize, 2] {
        for n in [1usize, 3] {
            for dh in [1usize, 3] {
                for (ci, amax) in [1e-300, 1e-8, 1.0, 1e12].into_iter().enumerate() {
                    let d0 = 2;
                    let x = DMatrix::from_fn(d0, n, |_, _| 2.0 * rng.random::<f64>() - 1.0);
                    let l0 = Dense::new(DMatrix::zeros(dh, d0), DVector::zeros(dh)).unwrap();
                    let w2 = DMatrix::from_fn(k, dh, |_, _| 4.0 * rng.random::<f64>() - 2.0);
                    let b2 = DVector::from_fn(k, |_, _| rng.random::<f64>());
                    let layers: Vec<Box<dyn Layer<f64>>> = vec![
                        Box::new(l0),
                        Box::new(Activation::Relu),
                        Box::new(Dense::new(w2, b2).unwrap()),
                    ];
                    let net = Sequential::from_layers(layers).unwrap();
                    let mut dir = DVector::zeros(net.num_params());
                    for i in 0..dh * d0 + dh {
                        dir[i] = 2.0 * rng.random::<f64>() - 1.0;
                    }
                    let y = if ci % 2 == 0 {
                        Targets::Labels {
                            labels: (0..n).map(|s| s % k).collect(),
                            classes: k,
                        }
                    } else {
                        Targets::Dense(DMatrix::from_fn(k, n, |_, _| {
                            3.0 * rng.random::<f64>() - 1.0
                        }))
                    };
                    let c = TCase {
                        net,
                        loss: Loss {
                            kind: LossKind::SoftmaxCrossEntropy,
                            reduction: if n == 1 {
                                Reduction::Sum
                            } else {
                                Reduction::Mean
                            },
                            l2: if ci == 2 { 0.1 } else { 0.0 },
                        },
                        x: x.clone(),
                        y,
                        layer: 0,
                        input: x,
                        dir,
                        amax,
                    };
                    let r0 = c.record(0.0);
                    for value in [Some(r0), None] {
                        let b = c.bound(value).unwrap();
                        assert!(b.slack >= 0.0 && b.curvature >= 0.0, "{b:?}");
                        if !b.slack.is_finite() {
                            infinite += 1;
                            continue;
                        }
                        assert!((c.accurate(0.0) - b.value).abs() <= b.slack, "{b:?}");
                        for a in super::points(&b) {
                            let ub = b.upper_bound(a).unwrap();
                            for x in [c.record(a), c.accurate(a)] {
                                assert!(
                                    x <= ub,
                                    "k {k} n {n} d {dh} ā {amax:e} a {a:e}: {x:e} > {ub:e}"
                                );
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    eprintln!("edge shapes: {checked} comparisons, {infinite} infinite slacks");
    assert!(checked > 2000, "{checked}");
}

/// The sign of `Ĉ` decided by rounding: the rows of `W2` agree up to 1e-14 relative, so
/// the exact `C = W2ᵀ g` (with `Σ_k g_k = 0` for labels) is of order 1e-14 and the
/// computed one is partly noise; the chord/tangent choice then follows the noise and
/// only the `|C - Ĉ| |P'|` term keeps the slope an upper bound. Large regions (up to
/// 1e6) make any slope error visible against the slack. Near-kink pre-activations.
#[test]
fn rounding_decides_the_sign_of_c() {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
    let (mut checked, mut worst) = (0usize, f64::INFINITY);
    for case in 0..40 {
        let (d0, dh, k, n) = (4, 8, 5, 20);
        let x = DMatrix::from_fn(d0, n, |_, _| 2.0 * rng.random::<f64>() - 1.0);
        let w = DMatrix::from_fn(dh, d0, |_, _| 2.0 * rng.random::<f64>() - 1.0);
        let mut b = DVector::from_fn(dh, |_, _| 0.2 * rng.random::<f64>() - 0.1);
        for j in 0..dh / 2 {
            let s = rng.random_range(0..n);
            b[j] = -(w.row(j) * x.column(s))[0];
        }
        let row = DVector::from_fn(dh, |_, _| 4.0 * rng.random::<f64>() - 2.0);
        let w2 = DMatrix::from_fn(k, dh, |_, j| {
            row[j] * (1.0 + 1e-14 * (2.0 * rng.random::<f64>() - 1.0))
        });
        let b2 = DVector::from_fn(k, |_, _| 1e-3 * rng.random::<f64>());
        let net = super::relu_net(w, b, w2, b2);
        let mut dir = DVector::zeros(net.num_params());
        for i in 0..dh * d0 + dh {
            dir[i] = 2.0 * rng.random::<f64>() - 1.0;
        }
        let c = TCase::ce(
            net,
            Reduction::Mean,
            0.0,
            x,
            Targets::Labels {
                labels: (0..n).map(|s| (s + case) % k).collect(),
                classes: k,
            },
            dir,
            [1.0, 1e3, 1e6][case % 3],
        );
        let r0 = c.record(0.0);
        let b = c.bound(Some(r0)).unwrap();
        assert!(b.slack.is_finite(), "{b:?}");
        let (n, w) = c.assert_under(&b, super::points(&b), &format!("case {case}"));
        (checked, worst) = (checked + n, worst.min(w));
    }
    eprintln!("sign of C by rounding: {checked} comparisons, smallest (bound - x)/slack {worst}");
}

/// The loss side at scale: N = 300 samples, logits of order ±700 (softmax saturated both
/// ways; `exp` of the shifted logits underflows), soft targets with negative entries
/// (cancelling terms in the driver's sums), mean and sum, `ā` from 1e-14 to 1. The record
/// under the bound at every point.
#[test]
fn saturated_logits_and_signed_soft_targets_at_scale() {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
    let (mut checked, mut worst) = (0usize, f64::INFINITY);
    for case in 0..12 {
        let (d0, dh, k, n) = (5, 12, 7, 300);
        let x = DMatrix::from_fn(d0, n, |_, _| 2.0 * rng.random::<f64>() - 1.0);
        let w = DMatrix::from_fn(dh, d0, |_, _| 2.0 * rng.random::<f64>() - 1.0);
        let b = DVector::from_fn(dh, |_, _| 0.5 * rng.random::<f64>() - 0.1);
        let w2 = DMatrix::from_fn(k, dh, |_, _| 200.0 * (2.0 * rng.random::<f64>() - 1.0));
        let b2 = DVector::from_fn(k, |_, _| 300.0 * (2.0 * rng.random::<f64>() - 1.0));
        let net = super::relu_net(w, b, w2, b2);
        let mut dir = DVector::zeros(net.num_params());
        for i in 0..dh * d0 + dh {
            dir[i] = 2.0 * rng.random::<f64>() - 1.0;
        }
        let y = DMatrix::from_fn(k, n, |_, _| 2.0 * rng.random::<f64>() - 0.7);
        let c = TCase {
            net,
            loss: Loss {
                kind: LossKind::SoftmaxCrossEntropy,
                reduction: if case % 2 == 0 {
                    Reduction::Mean
                } else {
                    Reduction::Sum
                },
                l2: if case % 3 == 0 { 1e-3 } else { 0.0 },
            },
            x: x.clone(),
            y: Targets::Dense(y),
            layer: 0,
            input: x,
            dir,
            amax: 10f64.powi(-((case * 13) % 15)),
        };
        let r0 = c.record(0.0);
        for value in [Some(r0), None] {
            let b = c.bound(value).unwrap();
            assert!(b.slack.is_finite(), "{b:?}");
            for a in super::points(&b) {
                let ub = b.upper_bound(a).unwrap();
                let x = c.record(a);
                assert!(
                    x <= ub,
                    "case {case} a {a:e}: record {x:e} > {ub:e} ({b:?})"
                );
                worst = worst.min((ub - x) / b.slack);
                checked += 1;
            }
        }
    }
    eprintln!("saturated at scale: {checked} comparisons, smallest (bound - record)/slack {worst}");
}
