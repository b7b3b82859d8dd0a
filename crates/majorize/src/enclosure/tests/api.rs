//! The public API: value and slope at 0, typed errors, the surrogate's minimiser, the
//! workspace, a caller-given base value.

use autodiff::{Real, Tape};
use nalgebra::{DMatrix, DVector};
use nets::{Activation, Dense, Layer, Loss, LossKind, Reduction, Sequential, Targets};

use super::super::*;
use super::stats::descent_case;
use super::{Case, random_case, violations};
use crate::Surrogate;

/// Value and one-sided derivative at 0 against nets' objective, the tape gradient and a
/// central finite difference (smooth nets, f64).
#[test]
fn value_and_gradient_at_zero() {
    for (i, act) in [Activation::Tanh, Activation::Sigmoid, Activation::Softplus]
        .iter()
        .enumerate()
    {
        for kind in [
            LossKind::Mse,
            LossKind::SoftmaxCrossEntropy,
            LossKind::Logistic,
        ] {
            let c = descent_case::<f64>(500 + i as u64, *act, kind);
            let e = enclose(&c.request()).unwrap();
            assert_eq!(e.value, c.net.objective(&c.loss, &c.x, &c.y).unwrap());
            let g_tape: f64 = -c.dirs[0].norm_squared();
            let h = 1e-5 / c.dirs[0].norm().max(1e-12);
            let fd = (c.objective_at(&[h]).0 - c.objective_at(&[-h]).0) / (2.0 * h);
            let g = e.gradient[0];
            assert!(
                (g - g_tape).abs() <= 1e-9 * g_tape.abs().max(1.0),
                "{act:?} {kind:?}: {g} vs tape {g_tape}"
            );
            assert!(
                (g - fd).abs() <= 1e-5 * g.abs().max(1.0),
                "{act:?} {kind:?}: {g} vs fd {fd}"
            );
        }
    }
}

fn err_of(c: &Case<f64>) -> String {
    enclose(&c.request()).unwrap_err().to_string()
}

#[test]
fn bad_input_gets_typed_errors() {
    let base = random_case::<f64>(3, Some(Activation::Tanh), Some(LossKind::Mse));
    // ELU layer.
    let mut c = base.clone();
    let w = DMatrix::from_element(2, base.x.nrows(), 0.1);
    c.net = Sequential::from_layers(vec![
        Box::new(Dense::new(w, DVector::zeros(2)).unwrap()) as Box<dyn Layer<f64>>,
        Box::new(Activation::Elu { alpha: 1.0 }),
        Box::new(
            Dense::new(
                DMatrix::from_element(c.net.output_dim().unwrap(), 2, 0.1),
                DVector::zeros(c.net.output_dim().unwrap()),
            )
            .unwrap(),
        ),
    ])
    .unwrap();
    c.dirs = vec![DVector::zeros(c.net.num_params())];
    let m = err_of(&c);
    assert!(m.contains("layer 1 is activation elu"), "{m}");
    // Hinge loss.
    let mut c = base.clone();
    c.loss = Loss::new(LossKind::MulticlassHinge, Reduction::Mean);
    assert!(err_of(&c).contains("multiclass_hinge"));
    // Empty, negative and non-finite boxes.
    for a in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let mut c = base.clone();
        c.amax = vec![a; c.dirs.len()];
        assert!(err_of(&c).contains("alpha_max"), "{a}");
    }
    // Non-finite direction, wrong length, wrong count.
    let mut c = base.clone();
    c.dirs[0][1] = f64::NAN;
    assert_eq!(
        err_of(&c),
        "enclose: non-finite value in direction at (1, 0)"
    );
    let mut c = base.clone();
    c.dirs = vec![DVector::zeros(3)];
    assert!(err_of(&c).contains("direction 0 has length 3"));
    let mut c = base.clone();
    c.amax = vec![1.0, 1.0];
    assert!(err_of(&c).contains("alpha_max has length 2"));
    let mut c = base.clone();
    c.dirs.clear();
    c.amax.clear();
    assert!(err_of(&c).contains("no direction"));
    // Shapes and data.
    let mut c = base.clone();
    c.x = DMatrix::zeros(c.x.nrows() + 1, 2);
    assert!(err_of(&c).contains("input rows"));
    let mut c = base.clone();
    c.x[(0, 0)] = f64::INFINITY;
    assert!(err_of(&c).contains("non-finite value in inputs"));
    let mut c = base.clone();
    c.y = Targets::Dense(DMatrix::zeros(1, 1));
    assert!(matches!(
        enclose(&c.request()),
        Err(crate::MajorizeError::Domain { .. })
    ));
    // Bounds outside the box; apply_step lengths.
    let e = enclose(&base.request()).unwrap();
    assert!(e.upper_bound(&[2.0 * base.amax[0]]).is_err());
    assert!(e.upper_bound(&[-1e-9]).is_err());
    assert!(e.upper_bound(&[0.0, 0.0]).is_err());
    let mut net = base.net.clone();
    assert!(apply_step(&mut net, &[0.0], &base.dirs, &[0.0]).is_err());
    assert!(apply_step(&mut net, &base.net.flat_params(), &base.dirs, &[f64::NAN]).is_err());
}

/// Surrogate gradient and closed-form minimiser (k = 1) are consistent with the bound.
#[test]
fn surrogate_minimizer_is_best_of_candidates() {
    let c = descent_case::<f64>(9, Activation::Relu, LossKind::SoftmaxCrossEntropy);
    let mut c = c;
    c.amax = vec![1e-3 / c.dirs[0].norm()];
    let e = enclose(&c.request()).unwrap();
    let s = e.surrogate();
    let m = s.minimize(&crate::InnerSolve::default()).unwrap();
    let q = |a: f64| e.upper_bound(&[a]).unwrap();
    for i in 0..=100 {
        let a = c.amax[0] * i as f64 / 100.0;
        assert!(
            q(m.point[0]) <= q(a) + 1e-12 * q(a).abs(),
            "grid point {a} beats the minimiser"
        );
    }
    let mut g = DVector::zeros(1);
    s.gradient(&DVector::zeros(1), &mut g).unwrap();
    assert_eq!(g[0], e.gradient[0]);
}

/// A user-defined layer the engine does not know (doubles its input).
#[derive(Clone, Debug)]
struct Doubler;

impl<T: Real> Layer<T> for Doubler {
    fn kind(&self) -> &str {
        "doubler"
    }
    fn input_dim(&self) -> Option<usize> {
        None
    }
    fn output_dim(&self, d: usize) -> nets::Result<usize> {
        Ok(d)
    }
    fn forward(&self, x: &DMatrix<T>, out: &mut DMatrix<T>) -> nets::Result<()> {
        *out = x * T::of(2.0);
        Ok(())
    }
    fn forward_tape(
        &self,
        ctx: &mut nets::TapeContext<'_, T>,
        input: autodiff::Var,
    ) -> nets::Result<autodiff::Var> {
        Ok(ctx.tape.add(input, input)?)
    }
}

#[test]
fn unknown_layer_is_named() {
    let mut c = random_case::<f64>(4, Some(Activation::Tanh), Some(LossKind::Mse));
    let mut layers: Vec<Box<dyn Layer<f64>>> = c.net.layers().to_vec();
    layers.insert(1, Box::new(Doubler));
    c.net = Sequential::from_layers(layers).unwrap();
    assert_eq!(
        err_of(&c),
        "unsupported configuration: enclose: layer 1 (doubler) is neither a dense layer nor an elementwise activation"
    );
}

/// A workspace reused across calls with different shapes, k and precisions, and with
/// the same shapes but new inputs and directions, gives the same enclosure as a fresh
/// one, bit for bit (buffers are zero-filled before use or overwritten entirely; the
/// kept input model's zero coefficients are never written).
#[test]
fn reused_workspace_gives_identical_results() {
    let mut ws = EnclosureWorkspace::new();
    for seed in [5u64, 8, 13, 21, 34, 55, 89, 144] {
        let c = random_case::<f64>(seed, None, None);
        let fresh = enclose(&c.request()).unwrap();
        let reused = enclose_with(&c.request(), &mut ws).unwrap();
        assert_eq!(fresh, reused, "f64 seed {seed}");
        // Same shapes again: the kept input model and layer operands are reused, with
        // new inputs and directions written over them.
        assert_eq!(fresh, enclose_with(&c.request(), &mut ws).unwrap());
        let mut c2 = c.clone();
        c2.x.iter_mut().for_each(|v| *v = -0.5 * *v + 0.25);
        c2.dirs
            .iter_mut()
            .for_each(|d| d.iter_mut().for_each(|v| *v *= -0.75));
        assert_eq!(
            enclose(&c2.request()).unwrap(),
            enclose_with(&c2.request(), &mut ws).unwrap(),
            "f64 seed {seed}, second inputs"
        );
        let c = random_case::<f32>(seed, None, None);
        assert_eq!(
            enclose(&c.request()).unwrap(),
            enclose_with(&c.request(), &mut ws).unwrap(),
            "f32 seed {seed}"
        );
    }
}

/// `enclose_with_value` with the tape's value (what a solver has from its gradient pass)
/// or a perturbed one: the bound still holds off the anchor, the objective at 0 lies in
/// `value ± slack`, and a non-finite value is a typed error.
#[test]
fn caller_value_keeps_the_bound() {
    let mut ws = EnclosureWorkspace::new();
    for seed in 0..60u64 {
        for rel in [0.0, 1e-9] {
            let c = random_case::<f64>(seed, None, None);
            let mut grad = vec![0.0; c.net.num_params()];
            let f = nets::loss_and_grad(&c.net, &c.loss, &c.x, &c.y, &mut Tape::new(), &mut grad)
                .unwrap();
            let v = f * (1.0 + rel);
            let e = enclose_with_value(&c.request(), v, &mut ws).unwrap();
            assert_eq!(e.value, v);
            let (n, w) = violations(&c, &e, seed, 4);
            assert_eq!(n, 0, "seed {seed} rel {rel}: {w}");
            let (f0, d0) = c.objective_at(&[0.0; 8][..c.dirs.len()]);
            for x in [f0, d0] {
                assert!(
                    (x - v).abs() <= e.slack,
                    "seed {seed}: {x} vs {v} ± {}",
                    e.slack
                );
            }
            let c = random_case::<f32>(seed, None, None);
            let mut grad = vec![0.0f32; c.net.num_params()];
            let f = nets::loss_and_grad(&c.net, &c.loss, &c.x, &c.y, &mut Tape::new(), &mut grad)
                .unwrap();
            let e = enclose_with_value(&c.request(), f, &mut ws).unwrap();
            let (n, w) = violations(&c, &e, seed, 4);
            assert_eq!(n, 0, "f32 seed {seed}: {w}");
        }
    }
    let c = random_case::<f64>(1, None, None);
    let m = enclose_with_value(&c.request(), f64::NAN, &mut ws)
        .unwrap_err()
        .to_string();
    assert!(m.contains("objective at the base point is NaN"), "{m}");
}

/// A dense layer of width zero (buildable with `Sequential::from_weights`) is user data:
/// every entry point returns a typed error instead of panicking in the sweep's
/// per-column loops (`chunks_exact(0)`), for one and for several directions, with a
/// zero-width hidden layer and a zero-width input.
#[test]
fn zero_width_layers_get_typed_errors() {
    // (d_in, hidden): a zero-width hidden layer, then a zero-width input.
    for (d_in, hidden) in [(3usize, 0usize), (0, 4)] {
        let w1 = DMatrix::<f64>::from_element(hidden, d_in, 0.3);
        let b1 = DVector::<f64>::from_element(hidden, 0.1);
        let w2 = DMatrix::<f64>::from_element(2, hidden, -0.2);
        let b2 = DVector::<f64>::from_element(2, 0.5);
        let net = Sequential::from_weights(&[(w1, b1), (w2, b2)], &[Activation::Relu]).unwrap();
        let n = 7;
        let x = DMatrix::<f64>::from_fn(d_in, n, |i, j| (i + 2 * j) as f64 * 0.1 - 0.3);
        let y = Targets::Dense(DMatrix::<f64>::from_element(2, n, 0.25));
        let loss = Loss::new(LossKind::Mse, Reduction::Mean);
        let p = net.num_params();
        for k in [1usize, 2] {
            let dirs: Vec<DVector<f64>> = (0..k)
                .map(|i| DVector::from_fn(p, |j, _| 0.1 * (i + j + 1) as f64))
                .collect();
            let amax = vec![0.1; k];
            let req = EnclosureRequest {
                net: &net,
                loss: &loss,
                inputs: &x,
                targets: &y,
                directions: &dirs,
                alpha_max: &amax,
            };
            let err = enclose(&req).unwrap_err().to_string();
            assert!(err.contains("zero"), "({d_in}, {hidden}), k = {k}: {err}");
        }
    }
}
