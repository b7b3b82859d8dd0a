use super::{rng, unif};
use crate::fenchel::{
    fenchel_f, fenchel_f_conj, fenchel_penalty, fenchel_penalty_grad, inverse, li2,
};
use crate::{Activation, NetsError};

fn monotone() -> Vec<Activation> {
    vec![
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu { slope: 0.1 },
        Activation::LeakyRelu { slope: 0.0 },
        Activation::Elu { alpha: 1.0 },
        Activation::Elu { alpha: 0.5 },
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softplus,
    ]
}

/// A random point of the (closed) range of h.
fn in_range(h: &Activation, r: &mut rand_chacha::ChaCha8Rng) -> f64 {
    let s = h.structure();
    let lo = s.range.0.max(-6.0);
    let hi = s.range.1.min(6.0);
    unif(r, lo, hi)
}

#[test]
fn dilogarithm_matches_known_values_and_quadrature() {
    let pi2 = std::f64::consts::PI.powi(2);
    let ln2 = std::f64::consts::LN_2;
    assert!((li2(1.0) - pi2 / 6.0).abs() < 1e-15);
    assert!((li2(-1.0) + pi2 / 12.0).abs() < 1e-15);
    assert!((li2(0.5) - (pi2 / 12.0 - ln2 * ln2 / 2.0)).abs() < 1e-15);
    assert_eq!(li2(0.0), 0.0);
    // Quadrature of -ln(1 - t)/t on [0, x] (Simpson, 20 000 panels) at awkward points.
    for x in [-7.5, -1.3, -0.9, 0.3, 0.6, 0.95] {
        let n = 20_000;
        let f = |t: f64| if t == 0.0 { 1.0 } else { -(-t).ln_1p() / t };
        let hstep = x / n as f64;
        let mut s = f(0.0) + f(x);
        for i in 1..n {
            s += f(i as f64 * hstep) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        let q = s * hstep / 3.0;
        assert!(
            (li2(x) - q).abs() < 1e-9,
            "Li2({x}) = {} vs quadrature {q}",
            li2(x)
        );
    }
}

#[test]
fn penalty_is_nonnegative_and_zero_exactly_at_the_activation() {
    let mut r = rng(21);
    for h in monotone() {
        for _ in 0..400 {
            let z = unif(&mut r, -8.0, 8.0);
            let a = in_range(&h, &mut r);
            let b = fenchel_penalty(&h, z, a).unwrap();
            let scale = 1.0 + (z * a).abs() + z * z;
            assert!(b >= -1e-12 * scale, "{h:?}: B({z}, {a}) = {b}");
            // Equality at a = h(z).
            let b0 = fenchel_penalty(&h, z, h.apply(z)).unwrap();
            assert!(b0.abs() <= 1e-12 * scale, "{h:?}: B({z}, h(z)) = {b0}");
            // Strictly positive away from it (B grows at least quadratically for these h).
            let a_far = h.apply(z) + 0.05;
            let bf = fenchel_penalty(&h, z, a_far).unwrap();
            if bf.is_finite() {
                assert!(bf > 1e-6, "{h:?}: B({z}, h(z) + 0.05) = {bf}");
            }
            // a = h(z) is the minimiser over a: B at a nudged point is not smaller.
            let ha = h.apply(z);
            for da in [-1e-3, 1e-3] {
                let v = fenchel_penalty(&h, z, ha + da).unwrap();
                assert!(v >= b0 - 1e-12 * scale, "{h:?}");
            }
        }
        // Outside the domain: +infinity.
        if h.structure().range.0 > f64::NEG_INFINITY {
            assert_eq!(
                fenchel_penalty(&h, 0.3, h.structure().range.0 - 0.1).unwrap(),
                f64::INFINITY,
                "{h:?}"
            );
        }
    }
}

#[test]
fn conjugate_pair_and_gradients_are_consistent() {
    let mut r = rng(22);
    for h in monotone() {
        for _ in 0..100 {
            let z = unif(&mut r, -4.0, 4.0);
            // F*'(z) = h(z) (finite differences).
            let e = 1e-6;
            let d = (fenchel_f_conj(&h, z + e).unwrap() - fenchel_f_conj(&h, z - e).unwrap())
                / (2.0 * e);
            assert!(
                (d - h.apply(z)).abs() < 1e-6,
                "{h:?}: F*'({z}) = {d} vs h = {}",
                h.apply(z)
            );
            // F'(a) = h^{-1}(a) at interior points of the range.
            let a = in_range(&h, &mut r);
            let s = h.structure();
            if a - e > s.range.0 && a + e < s.range.1 && a.abs() > 1e-4 {
                let d = (fenchel_f(&h, a + e).unwrap() - fenchel_f(&h, a - e).unwrap()) / (2.0 * e);
                let inv = inverse(&h, a).unwrap();
                assert!(
                    (d - inv).abs() < 1e-5 * (1.0 + inv.abs()),
                    "{h:?}: F'({a}) = {d} vs {inv}"
                );
                let (gz, ga) = fenchel_penalty_grad(&h, z, a).unwrap();
                assert_eq!(gz, h.apply(z) - a);
                assert_eq!(ga, inv - z);
            }
        }
    }
    // The true conjugate makes F(0) + F*(h^{-1}(0)) = 0 (correction 4): sigmoid, softplus.
    assert!(fenchel_f_conj(&Activation::Sigmoid, -50.0).unwrap() < 1e-20);
    assert!(fenchel_f_conj(&Activation::Softplus, -50.0).unwrap() < 1e-20);
    // ReLU is half the code's `neo`: (1/2)(x^2 - 2 u x + relu(u)^2).
    let (u, x) = (-0.7, 0.4);
    assert!(
        (fenchel_penalty(&Activation::Relu, u, x).unwrap() - 0.5 * (x * x - 2.0 * u * x)).abs()
            < 1e-15
    );
}

#[test]
fn decreasing_activations_are_rejected() {
    let e = fenchel_penalty(&Activation::LeakyRelu { slope: -0.2 }, 0.0, 0.0).unwrap_err();
    assert!(matches!(e, NetsError::Unsupported { .. }));
    assert!(e.to_string().contains("nondecreasing"), "{e}");
    assert!(fenchel_penalty(&Activation::Tanh, f64::NAN, 0.0).is_err());
}
