//! The activation-size cap ([`crate::MAX_ACTIVATION_BYTES`]) on the forward and the
//! gradient passes.

use super::rng;
use crate::{
    Activation, Init, Loss, LossKind, Reduction, Sequential, Targets, loss_and_grad,
    loss_and_grad_outputs,
};
use autodiff::Tape;
use nalgebra::DMatrix;
use rand_chacha::ChaCha8Rng;

/// A 2-10^6-2 ReLU net: 2 x 10^6 + 2 layer-output entries per sample, so 1073 f64
/// samples fit the cap and 1074 do not.
fn wide_net(r: &mut ChaCha8Rng) -> Sequential<f64> {
    Sequential::<f64>::mlp(&[2, 1_000_000, 2], Activation::Relu, Init::HeUniform, r).unwrap()
}

/// `n` small inputs of width 2.
fn inputs(n: usize) -> DMatrix<f64> {
    DMatrix::from_fn(2, n, |i, j| ((i + j) % 3) as f64)
}

/// The error of 1074 samples through [`wide_net`].
const OVER_THE_CAP: &str = "the layer outputs need 2000002 entries per sample x 1074 samples x 8 bytes, more than MAX_ACTIVATION_BYTES = 17179869184";

/// `predict`, `layer_outputs` and `forward_trace` refuse layer outputs beyond
/// [`crate::MAX_ACTIVATION_BYTES`] before allocating them: a 10^6-wide hidden layer
/// (2 x 10^6 + 2 entries per sample with its ReLU and the 2 outputs) takes 1073 f64
/// samples, not 1074.
#[test]
fn forward_passes_beyond_the_activation_cap_are_errors() {
    let net = wide_net(&mut rng(64));
    assert_eq!(net.predict(&inputs(3)).unwrap().shape(), (2, 3));
    let big = inputs(1074);
    let want = OVER_THE_CAP;
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

/// `loss_and_grad`, `loss_and_grad_outputs` and `loss_and_grad_columns` refuse a pass
/// whose layer outputs exceed [`crate::MAX_ACTIVATION_BYTES`] before recording anything
/// (the same bound as `predict`: 1074 f64 samples through a 10^6-wide hidden layer),
/// and a column list (repeats allowed) whose gathered input alone exceeds it.
#[test]
fn gradient_passes_beyond_the_activation_cap_are_errors() {
    let mut r = rng(65);
    let net = wide_net(&mut r);
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    let targets = |n: usize| Targets::Labels {
        labels: vec![0; n],
        classes: 2,
    };
    let mut g = vec![0.0; net.num_params()];
    let mut tape = Tape::new();
    let want = OVER_THE_CAP;
    let big = inputs(1074);
    let t = targets(1074);
    let mut outs = Vec::new();
    let cols: Vec<usize> = (0..1074).collect();
    for e in [
        loss_and_grad(&net, &loss, &big, &t, &mut tape, &mut g).unwrap_err(),
        loss_and_grad_outputs(&net, &loss, &big, &t, &mut tape, &mut g, &mut outs).unwrap_err(),
        crate::loss_and_grad_columns(&net, &loss, &big, &cols, &t, &mut tape, &mut g).unwrap_err(),
    ] {
        assert!(e.to_string().contains(want), "{e}");
    }
    // Nothing was recorded.
    assert_eq!(tape.len(), 0);
    // A 2^20-row input gathered 2049 times (repeats) is 2^34 + 2^23 bytes, over the
    // cap, while the layer outputs (one unit) are small.
    let rows = 1 << 20;
    let small =
        Sequential::<f64>::mlp(&[rows, 1], Activation::Relu, Init::HeUniform, &mut r).unwrap();
    let x = DMatrix::from_element(rows, 1, 1.0);
    let mut g1 = vec![0.0; small.num_params()];
    let mse = Loss::new(LossKind::Mse, Reduction::Mean);
    let run = |m: usize, tape: &mut Tape<f64>, g1: &mut [f64]| {
        let t1 = Targets::Dense(DMatrix::zeros(1, m));
        crate::loss_and_grad_columns(&small, &mse, &x, &vec![0; m], &t1, tape, g1)
    };
    let e = run(2049, &mut tape, &mut g1).unwrap_err();
    assert!(
        e.to_string()
            .contains("the gathered batch needs 1048576 rows x 2049 columns x 8 bytes"),
        "{e}"
    );
    assert_eq!(tape.len(), 0);
    // Within the cap the pass runs.
    assert!(run(3, &mut tape, &mut g1).unwrap().is_finite());
}
