//! `Sequential::from_weights`: the network built from (W, b) pairs and activations
//! computes `W2 h(W1 x + b1) + b2`, and every malformed input is a typed error.

use crate::{Activation, NetsError, Sequential};
use nalgebra::{DMatrix, DVector, dmatrix, dvector};

#[test]
fn from_weights_builds_the_mlp_it_is_given() {
    let (w1, b1) = (dmatrix![1.0, -1.0; 0.5, 2.0], dvector![0.0, -1.0]);
    let (w2, b2) = (dmatrix![2.0, 3.0], dvector![0.5]);
    let net = Sequential::<f64>::from_weights(
        &[(w1.clone(), b1.clone()), (w2.clone(), b2.clone())],
        &[Activation::Relu],
    )
    .unwrap();
    // x = (1, 2): W1 x + b1 = (-1, 3.5); relu -> (0, 3.5); 3 * 3.5 + 0.5 = 11.
    let y = net.predict(&dmatrix![1.0; 2.0]).unwrap();
    assert_eq!(y, dmatrix![11.0]);
    let view = net.mlp_view().unwrap();
    assert_eq!(view.widths, vec![2, 2, 1]);
    assert_eq!(view.activations, vec![Activation::Relu]);
    assert_eq!(net.dense(1).unwrap().weight, w2);
    // A single linear layer needs no activation.
    let lin = Sequential::<f64>::from_weights(&[(w1, b1)], &[]).unwrap();
    assert_eq!(
        lin.predict(&dmatrix![1.0; 2.0]).unwrap(),
        dmatrix![-1.0; 3.5]
    );
}

#[test]
fn malformed_weights_are_typed_errors() {
    let l = |r: usize, c: usize, b: usize| (DMatrix::<f64>::zeros(r, c), DVector::zeros(b));
    // Wrong number of activations, or no layers at all.
    for (layers, acts) in [
        (vec![l(2, 3, 2), l(1, 2, 1)], vec![]),
        (vec![l(2, 3, 2)], vec![Activation::Relu]),
        (vec![], vec![]),
    ] {
        let e = Sequential::from_weights(&layers, &acts).unwrap_err();
        assert!(
            matches!(
                e,
                NetsError::Architecture {
                    op: "Sequential::from_weights",
                    ..
                }
            ),
            "{e}"
        );
    }
    // Consecutive widths disagree: W2 takes 3 inputs, W1 outputs 2.
    let e = Sequential::from_weights(&[l(2, 3, 2), l(1, 3, 1)], &[Activation::Tanh]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Sequential::from_weights: shape mismatch: W_2 is 1x3 but W_1 outputs 2 values"
    );
    // A bias of the wrong length.
    let e = Sequential::from_weights(&[l(2, 3, 4)], &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Sequential::from_weights: shape mismatch: layer 1: W is 2x3 but b has length 4"
    );
    // An invalid activation parameter.
    let e = Sequential::from_weights(
        &[l(2, 3, 2), l(1, 2, 1)],
        &[Activation::LeakyRelu { slope: f64::NAN }],
    )
    .unwrap_err();
    assert!(!matches!(e, NetsError::Shape { .. }), "{e}");
}
