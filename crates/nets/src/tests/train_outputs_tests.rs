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

/// `loss_and_grad` records a dense layer followed by a ReLU as one fused tape node
/// (`Layer::forward_tape_relu`); `loss_and_grad_outputs` records them apart. Value and
/// gradient are the same bit for bit, f32 and f64, one and two threads, on a first
/// layer of depth 784 (the GEMM splits it into blocks) and a stack where only some
/// ReLUs follow a dense layer (dense-ReLU-ReLU, dense-tanh, a final ReLU).
#[test]
fn fused_dense_relu_pass_is_bit_identical_to_the_unfused_pass() {
    fn check<T: autodiff::Real>(threads: usize) {
        let mut r = rng(5);
        let (d, n) = (784, 70);
        let mut net = Sequential::<T>::new();
        for layer in [
            Box::new(crate::Dense::init(d, 24, Init::HeUniform, &mut r))
                as Box<dyn crate::Layer<T>>,
            Box::new(Activation::Relu),
            Box::new(Activation::Relu),
            Box::new(crate::Dense::init(24, 16, Init::HeUniform, &mut r)),
            Box::new(Activation::Tanh),
            Box::new(crate::Dense::init(16, 12, Init::HeUniform, &mut r)),
            Box::new(Activation::Relu),
            Box::new(crate::Dense::init(12, 5, Init::HeUniform, &mut r)),
            Box::new(Activation::Relu),
        ] {
            net.push(layer).unwrap();
        }
        let x = DMatrix::from_fn(d, n, |_, _| T::of(unif(&mut r, -2.0, 2.0)));
        let t = Targets::Labels {
            labels: (0..n).map(|i| i % 5).collect(),
            classes: 5,
        };
        let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean).with_l2(1e-3);
        let mut fused_tape = Tape::with_threads(threads);
        let mut g = vec![T::zero(); net.num_params()];
        let v = loss_and_grad(&net, &loss, &x, &t, &mut fused_tape, &mut g).unwrap();
        let mut tape = Tape::with_threads(threads);
        let mut g_ref = vec![T::zero(); net.num_params()];
        let mut outs = Vec::new();
        let v_ref =
            loss_and_grad_outputs(&net, &loss, &x, &t, &mut tape, &mut g_ref, &mut outs).unwrap();
        // Three dense-ReLU pairs fused (the second ReLU of the first pair and the tanh
        // stay apart): three nodes fewer.
        assert_eq!(fused_tape.len() + 3, tape.len());
        let bits = |v: &[T]| v.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>();
        assert_eq!(v.to_f64().to_bits(), v_ref.to_f64().to_bits());
        assert_eq!(
            bits(&g),
            bits(&g_ref),
            "{} threads={threads}",
            T::dtype_name()
        );
        assert!(g.iter().all(|x| x.to_f64().is_finite()) && g.iter().any(|x| *x != T::zero()));
    }
    for threads in [1, 2] {
        check::<f32>(threads);
        check::<f64>(threads);
    }
}
