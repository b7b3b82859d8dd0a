//! `loss_and_grad_outputs`: the same value and gradient as `loss_and_grad`, and the
//! recorded layer outputs are the forward pass's intermediates.

use super::{rng, unif};
use crate::{
    Activation, Init, Loss, LossKind, Reduction, Sequential, Targets, loss_and_grad,
    loss_and_grad_outputs,
};
use autodiff::Tape;
use nalgebra::DMatrix;

#[test]
fn outputs_are_the_layers_intermediates() {
    let mut r = rng(71);
    let net =
        Sequential::<f64>::mlp(&[5, 7, 4], Activation::Relu, Init::HeUniform, &mut r).unwrap();
    let x = DMatrix::from_fn(5, 9, |_, _| unif(&mut r, -2.0, 2.0));
    let t = Targets::Labels {
        labels: (0..9).map(|i| i % 4).collect(),
        classes: 4,
    };
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean).with_l2(1e-3);
    let mut g_ref = vec![0.0; net.num_params()];
    let v_ref = loss_and_grad(&net, &loss, &x, &t, &mut Tape::new(), &mut g_ref).unwrap();
    let mut tape = Tape::new();
    let mut g = vec![0.0; net.num_params()];
    let mut outs = Vec::new();
    loss_and_grad_outputs(&net, &loss, &x, &t, &mut tape, &mut g, &mut outs).unwrap();
    let v = loss_and_grad_outputs(&net, &loss, &x, &t, &mut tape, &mut g, &mut outs).unwrap();
    assert_eq!(v, v_ref);
    assert_eq!(g, g_ref);
    // Dense, ReLU, dense: three outputs (the first call's entries were cleared).
    assert_eq!(outs.len(), 3);
    let d = net.layers()[0].as_dense().unwrap();
    let z1 = &d.weight * &x + DMatrix::from_fn(7, 9, |i, _| d.bias[i]);
    let got = tape.value(outs[0]);
    assert_eq!(got.shape(), (7, 9));
    for (a, b) in got.iter().zip(z1.iter()) {
        assert!((a - b).abs() <= 1e-13 * (1.0 + b.abs()), "{a} vs {b}");
    }
    let a1 = tape.value(outs[1]);
    for (a, z) in a1.iter().zip(got.iter()) {
        assert_eq!(*a, z.max(0.0));
    }
    let logits = net.predict(&x).unwrap();
    assert_eq!(tape.value(outs[2]), &logits);
}
