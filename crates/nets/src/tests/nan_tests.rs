//! A NaN in the data or in the weights is never masked: the loss, its gradient and the
//! network's output carry it, for every activation and loss. `max(NaN, 0)` written as
//! `if z > 0 { z } else { 0 }` (or `f64::max`) returns 0, so a single ReLU layer or a
//! hinge used to turn a NaN input (or a solver's NaN weights) into a finite objective.

use super::{all_activations, rng, unif};
use crate::{Activation, Init, Loss, LossKind, Reduction, Sequential, Targets, loss_and_grad};
use autodiff::{Real, Tape};
use nalgebra::DMatrix;

/// Every loss with targets of the right kind for `k` outputs and `n` samples.
fn losses<T: Real>(k: usize, n: usize) -> Vec<(Loss, Targets<T>)> {
    let labels = Targets::Labels {
        labels: (0..n).map(|j| (j * 5 + 1) % k).collect(),
        classes: k,
    };
    let dense = Targets::Dense(DMatrix::from_fn(k, n, |i, j| {
        T::of(((i + 2 * j) % 5) as f64 / 5.0)
    }));
    let mut out = vec![];
    for red in [Reduction::Mean, Reduction::Sum] {
        out.push((Loss::new(LossKind::Mse, red), dense.clone()));
        out.push((
            Loss::new(LossKind::SoftmaxCrossEntropy, red),
            labels.clone(),
        ));
        out.push((Loss::new(LossKind::Logistic, red), labels.clone()));
        out.push((
            Loss::new(LossKind::MulticlassHinge, red).with_l2(1e-3),
            labels.clone(),
        ));
    }
    out
}

/// `net`'s value, gradient and output on `x` for every loss: the value and the
/// objective are NaN, the gradient and the output of column `col` are not all finite.
fn assert_nan_carried<T: Real>(net: &Sequential<T>, x: &DMatrix<T>, col: usize, what: &str) {
    let out = net.predict(x).unwrap();
    assert!(
        out.column(col).iter().any(|v| !v.to_f64().is_finite()),
        "{what}: the output of sample {col} is finite"
    );
    for (loss, t) in losses::<T>(out.nrows(), x.ncols()) {
        let mut g = vec![T::zero(); net.num_params()];
        let v = loss_and_grad(net, &loss, x, &t, &mut Tape::new(), &mut g).unwrap();
        assert!(v.to_f64().is_nan(), "{what}, {:?}: loss {v:?}", loss.kind);
        assert!(
            g.iter().any(|v| !v.to_f64().is_finite()),
            "{what}, {:?}: the gradient is finite",
            loss.kind
        );
        let obj = net.objective(&loss, x, &t).unwrap();
        assert!(
            obj.to_f64().is_nan(),
            "{what}, {:?}: objective {obj:?}",
            loss.kind
        );
    }
}

fn check<T: Real>() {
    let mut r = rng(5);
    for act in all_activations() {
        let net = Sequential::<T>::mlp(&[4, 6, 5, 3], act, Init::HeUniform, &mut r).unwrap();
        let mut x = DMatrix::from_fn(4, 7, |_, _| T::of(unif(&mut r, -1.0, 1.0)));
        x[(2, 3)] = T::of(f64::NAN);
        assert_nan_carried(&net, &x, 3, &format!("NaN input, {act:?}"));
        let x = x.map(|v| if v.to_f64().is_nan() { T::zero() } else { v });
        let mut bad = net.clone();
        bad.dense_mut(0).unwrap().weight[(1, 2)] = T::of(f64::NAN);
        // The weight feeds every sample; column 3 is checked like any other.
        assert_nan_carried(&bad, &x, 3, &format!("NaN weight, {act:?}"));
    }
}

#[test]
fn a_nan_input_or_weight_is_carried_to_the_loss_f64() {
    check::<f64>();
}

#[test]
fn a_nan_input_or_weight_is_carried_to_the_loss_f32() {
    check::<f32>();
}

#[test]
fn relu_keeps_the_sign_of_zero_and_every_other_value() {
    for z in [
        -1.5,
        -0.0,
        0.0,
        1e-300,
        2.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ] {
        let got = Activation::Relu.apply(z);
        let want = if z > 0.0 { z } else { 0.0 };
        assert_eq!(got.to_bits(), want.to_bits(), "relu({z})");
    }
    assert!(Activation::Relu.apply(f64::NAN).is_nan());
}
