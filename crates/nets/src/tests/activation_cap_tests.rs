//! The activation-size cap ([`crate::MAX_ACTIVATION_BYTES`]) on the forward passes.

use super::rng;
use crate::{Activation, Init, Sequential};
use nalgebra::DMatrix;

/// `predict`, `layer_outputs` and `forward_trace` refuse layer outputs beyond
/// [`crate::MAX_ACTIVATION_BYTES`] before allocating them: a 10^6-wide hidden layer
/// (2 x 10^6 + 2 entries per sample with its ReLU and the 2 outputs) takes 1073 f64
/// samples, not 1074.
#[test]
fn forward_passes_beyond_the_activation_cap_are_errors() {
    let mut r = rng(64);
    let net = Sequential::<f64>::mlp(
        &[2, 1_000_000, 2],
        Activation::Relu,
        Init::HeUniform,
        &mut r,
    )
    .unwrap();
    let x = |n: usize| DMatrix::from_fn(2, n, |i, j| ((i + j) % 3) as f64);
    assert_eq!(net.predict(&x(3)).unwrap().shape(), (2, 3));
    let big = x(1074);
    let want = "the layer outputs need 2000002 entries per sample x 1074 samples x 8 bytes, more than MAX_ACTIVATION_BYTES = 17179869184";
    for e in [
        net.predict(&big).unwrap_err(),
        net.layer_outputs(&big).unwrap_err(),
        net.forward_trace(&big).unwrap_err(),
    ] {
        assert!(e.to_string().contains(want), "{e}");
    }
}

/// A width a layer refuses is that layer's error, not a claimed overflow of the entry
/// count (the message said "more than usize::MAX entries per sample").
#[test]
fn activation_check_reports_a_refused_width_as_the_layers_error() {
    let net = Sequential::<f64>::mlp(&[3, 4, 2], Activation::Tanh, Init::HeUniform, &mut rng(65))
        .unwrap();
    net.check_activation_bytes("test", 3, 10).unwrap();
    let e = net.check_activation_bytes("test", 5, 10).unwrap_err();
    let text = e.to_string();
    assert!(!text.contains("usize::MAX"), "{text}");
    assert!(matches!(e, crate::NetsError::Shape { .. }), "{text}");
    assert!(text.contains('5') && text.contains('3'), "{text}");
}
