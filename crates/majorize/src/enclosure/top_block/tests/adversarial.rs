//! Adversarial cases of the floating-point argument (review, session 15): each aims at
//! one constant of the slack and checks the bound against a rigorous reference.

use nalgebra::{DMatrix, DVector};
use nets::{Activation, Dense, Layer, Loss, LossKind, Reduction, Sequential, Targets};

use super::super::super::*;
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
    let c = TCase {
        net,
        loss: Loss {
            kind: LossKind::SoftmaxCrossEntropy,
            reduction: Reduction::Sum,
            l2: 0.0,
        },
        x: x.clone(),
        y: Targets::Dense(targets),
        layer: 0,
        input: x,
        dir,
        amax: 1.0,
    };
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
