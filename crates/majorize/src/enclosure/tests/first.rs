//! `enclose_with_value_first`: the caller's first-layer output (the gradient pass's
//! `W₁x + b₁`) replaces the enclosure's own product; it is checked against the weights.

use autodiff::{Real, Tape};
use nalgebra::DMatrix;
use nets::Activation;

use super::super::*;
use super::{random_case, violations};

/// The tape's first-layer output and value for a case.
fn tape_first<T: Real>(c: &super::Case<T>) -> (T, DMatrix<T>) {
    let mut grad = vec![T::zero(); c.net.num_params()];
    let mut tape = Tape::new();
    let mut outs = Vec::new();
    let v =
        nets::loss_and_grad_outputs(&c.net, &c.loss, &c.x, &c.y, &mut tape, &mut grad, &mut outs)
            .unwrap();
    assert_eq!(outs.len(), c.net.layers().len());
    (v, tape.value(outs[0]).clone())
}

/// With the tape's output the enclosure is the recomputed one up to the rounding of that
/// product (f64: the same bound within 1e-12 relative), and it holds at the box's corners
/// and random points, f64 and f32 (f32 recomputes).
#[test]
fn given_first_layer_keeps_the_bound() {
    let mut ws = EnclosureWorkspace::new();
    for seed in 0..60u64 {
        let c = random_case::<f64>(seed, None, None);
        let (v, first) = tape_first(&c);
        let own = enclose_with_value(&c.request(), v, &mut ws).unwrap();
        let given = enclose_with_value_first(&c.request(), v, &first, &mut ws).unwrap();
        let (bad, worst) = violations(&c, &given, seed, 8);
        assert_eq!(bad, 0, "f64 seed {seed}: {worst}");
        let close =
            |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300) || a == b;
        assert!(
            close(own.slack, given.slack),
            "seed {seed}: slack {} vs {}",
            own.slack,
            given.slack
        );
        for (a, b) in own.quad_upper.iter().zip(given.quad_upper.iter()) {
            assert!(close(*a, *b), "seed {seed}: Q_hi {a} vs {b}");
        }
        let c = random_case::<f32>(seed, None, None);
        let (v, first) = tape_first(&c);
        let own = enclose_with_value(&c.request(), v, &mut ws).unwrap();
        let given = enclose_with_value_first(&c.request(), v, &first, &mut ws).unwrap();
        assert_eq!(own, given, "f32 recomputes the product: seed {seed}");
    }
}

/// A matrix that is not the first layer's output is a typed error naming it: wrong shape,
/// a non-finite entry, a perturbed entry in the first or last column, and a network that
/// does not start with a dense layer.
#[test]
fn wrong_first_layer_output_is_a_typed_error() {
    let c = random_case::<f64>(3, Some(Activation::Relu), None);
    let (v, first) = tape_first(&c);
    let mut ws = EnclosureWorkspace::new();
    let err = |m: &DMatrix<f64>, ws: &mut EnclosureWorkspace| {
        enclose_with_value_first(&c.request(), v, m, ws)
            .unwrap_err()
            .to_string()
    };
    let wide = DMatrix::zeros(first.nrows(), first.ncols() + 1);
    assert!(
        err(&wide, &mut ws).contains("expected"),
        "{}",
        err(&wide, &mut ws)
    );
    let mut nan = first.clone();
    nan[(0, 0)] = f64::NAN;
    assert!(
        err(&nan, &mut ws).contains("first layer output"),
        "{}",
        err(&nan, &mut ws)
    );
    for j in [0, first.ncols() - 1] {
        let mut off = first.clone();
        off[(first.nrows() - 1, j)] += 1e-6 * (1.0 + off[(first.nrows() - 1, j)].abs());
        let e = err(&off, &mut ws);
        assert!(e.contains("not this network's first layer"), "{e}");
    }
    let mut layers: Vec<Box<dyn nets::Layer<f64>>> = vec![Box::new(Activation::Tanh)];
    layers.extend(c.net.layers().iter().map(|l| l.clone_box()));
    let net = nets::Sequential::from_layers(layers).unwrap();
    let mut c2 = c.clone();
    c2.net = net;
    let dirs_ok = c2.dirs.clone();
    c2.dirs = dirs_ok;
    let e = enclose_with_value_first(&c2.request(), v, &first, &mut ws)
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not start with a dense layer"), "{e}");
}
