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

/// A user layer that calls itself a ReLU (`as_activation`) but owns a parameter: the
/// fusion must not skip it (its parameter would go unregistered). Its forward is a
/// ReLU; the parameter is registered and unused (zero gradient).
#[derive(Clone, Debug)]
struct ReluWithParam(DMatrix<f64>);

impl crate::Layer<f64> for ReluWithParam {
    fn kind(&self) -> &str {
        "relu_with_param"
    }
    fn input_dim(&self) -> Option<usize> {
        None
    }
    fn output_dim(&self, d: usize) -> crate::Result<usize> {
        Ok(d)
    }
    fn forward(&self, x: &DMatrix<f64>, out: &mut DMatrix<f64>) -> crate::Result<()> {
        *out = x.map(|v| v.max(0.0));
        Ok(())
    }
    fn forward_tape(
        &self,
        ctx: &mut crate::TapeContext<'_, f64>,
        input: autodiff::Var,
    ) -> crate::Result<autodiff::Var> {
        ctx.param(&self.0);
        Ok(ctx.tape.relu(input)?)
    }
    fn num_param_tensors(&self) -> usize {
        1
    }
    fn param(&self, i: usize) -> Option<crate::ParamRef<'_, f64>> {
        (i == 0).then(|| crate::ParamRef {
            name: "p",
            rows: 1,
            cols: 1,
            values: self.0.as_slice(),
            penalised: false,
        })
    }
    fn as_activation(&self) -> Option<Activation> {
        Some(Activation::Relu)
    }
}

#[test]
fn a_relu_layer_with_parameters_is_not_fused_away() {
    let mut r = rng(8);
    let mut net = Sequential::<f64>::new();
    net.push(Box::new(crate::Dense::init(4, 6, Init::HeUniform, &mut r)))
        .unwrap();
    net.push(Box::new(ReluWithParam(DMatrix::from_element(1, 1, 0.5))))
        .unwrap();
    net.push(Box::new(crate::Dense::init(6, 3, Init::HeUniform, &mut r)))
        .unwrap();
    let x = DMatrix::from_fn(4, 5, |_, _| unif(&mut r, -2.0, 2.0));
    let t = Targets::Labels {
        labels: vec![0, 1, 2, 0, 1],
        classes: 3,
    };
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Sum);
    let mut g = vec![0.0; net.num_params()];
    let v = loss_and_grad(&net, &loss, &x, &t, &mut Tape::new(), &mut g).unwrap();
    let mut g_ref = vec![0.0; net.num_params()];
    let mut outs = Vec::new();
    let v_ref = loss_and_grad_outputs(&net, &loss, &x, &t, &mut Tape::new(), &mut g_ref, &mut outs)
        .unwrap();
    assert_eq!((v, &g), (v_ref, &g_ref));
    // The unused parameter (after W1 and b1) has a zero gradient.
    assert_eq!(g[4 * 6 + 6], 0.0);
}
