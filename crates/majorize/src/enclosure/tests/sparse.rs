//! The sparse degree-2 path of the dense rule (`sparse`): ReLU nets whose hidden layer
//! has few kinks over the box take it. It must be taken on such nets, keep the bound,
//! agree with the GEMM path up to its Hölder term, and a dropped term must be caught.

use autodiff::Real;
use nalgebra::{DMatrix, DVector};
use nets::{Activation, Dense, Layer, Loss, LossKind, Reduction, Sequential, Targets};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::super::sparse::{SparseKnob, set_sparse_knob, sparse_taken};
use super::super::*;
use super::{Case, gauss, violations};

/// A `d-h-c` ReLU net (two dense layers, so the second one's input is a ReLU of a
/// non-constant model) with cross-entropy on `n` samples, one direction of relative
/// size `dir_scale` and `ᾱ = 1`: with a small `dir_scale` only a few hidden entries can
/// reach their kink over the box. Some samples sit exactly at kinks (zero biases and a
/// zero input column), the rest near them.
fn relu_case<T: Real>(seed: u64, n: usize, dir_scale: f64) -> Case<T> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (d, h, c) = (12, 40, 6);
    let mut layers: Vec<Box<dyn Layer<T>>> = Vec::new();
    for (din, dout, last) in [(d, h, false), (h, c, true)] {
        let s = 1.5 / (din as f64).sqrt();
        let w = DMatrix::from_fn(dout, din, |_, _| T::of(gauss(&mut rng) * s));
        let b = DVector::from_fn(dout, |_, _| {
            if seed.is_multiple_of(2) {
                T::zero()
            } else {
                T::of(0.3 * gauss(&mut rng))
            }
        });
        layers.push(Box::new(Dense::new(w, b).unwrap()));
        if !last {
            layers.push(Box::new(Activation::Relu));
        }
    }
    let net = Sequential::from_layers(layers).unwrap();
    let mut x = DMatrix::from_fn(d, n, |_, _| T::of(2.0 * rng.random::<f64>() - 1.0));
    x.column_mut(0).fill(T::zero());
    let y = Targets::Labels {
        labels: (0..n).map(|_| rng.random_range(0..c)).collect(),
        classes: c,
    };
    let p = net.num_params();
    let dir = DVector::from_fn(p, |_, _| T::of(dir_scale * gauss(&mut rng)));
    Case {
        net,
        loss: Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean),
        x,
        y,
        dirs: vec![dir],
        amax: vec![T::one()],
        smooth: false,
    }
}

fn enclose_counted<T: Real>(c: &Case<T>) -> (QuadraticEnclosure<T>, usize) {
    let before = sparse_taken();
    let mut ws = EnclosureWorkspace::new();
    let e = enclose_with(&c.request(), &mut ws).unwrap();
    (e, sparse_taken() - before)
}

/// Cases with a few kinks take the sparse path (once per block of samples) and the
/// bound holds at the box's corner and random points, f64 and f32; with a large step
/// (many kinks) the scan falls back to the GEMMs.
#[test]
fn sparse_path_is_taken_and_sound() {
    set_sparse_knob(SparseKnob::Auto);
    let mut taken = 0;
    for seed in 0..8u64 {
        let c = relu_case::<f64>(seed, 300, 0.01);
        let (e, t) = enclose_counted(&c);
        let (bad, worst) = violations(&c, &e, seed, 24);
        assert_eq!(bad, 0, "f64 seed {seed}: {worst}");
        taken += t;
        let c = relu_case::<f32>(seed, 300, 0.01);
        let (e, t) = enclose_counted(&c);
        let (bad, worst) = violations(&c, &e, seed, 24);
        assert_eq!(bad, 0, "f32 seed {seed}: {worst}");
        taken += t;
    }
    assert!(taken >= 12, "the sparse path was taken {taken} times of 16");
    let c = relu_case::<f64>(3, 300, 1.0);
    let (e, t) = enclose_counted(&c);
    assert_eq!(t, 0, "a step reaching most kinks must keep the GEMM path");
    assert_eq!(violations(&c, &e, 3, 24).0, 0);
}

/// The sparse path changes only the degree-2 radius's rounding term (Hölder instead of
/// a product) and the order of the midpoint sums: value and slope are the same bits,
/// and the upper curvature agrees with the GEMM path's to 1e-9 relative.
#[test]
fn sparse_path_matches_gemm_path() {
    for seed in 0..6u64 {
        let c = relu_case::<f64>(seed, 300, 0.01);
        set_sparse_knob(SparseKnob::Off);
        let (dense, t) = enclose_counted(&c);
        assert_eq!(t, 0);
        set_sparse_knob(SparseKnob::Auto);
        let (sparse, t) = enclose_counted(&c);
        assert!(t > 0, "seed {seed}: sparse path not taken");
        assert_eq!(dense.value.to_bits(), sparse.value.to_bits());
        assert_eq!(dense.gradient[0].to_bits(), sparse.gradient[0].to_bits());
        let (qd, qs) = (dense.quad_upper[(0, 0)], sparse.quad_upper[(0, 0)]);
        assert!(qd.is_finite() && qd > 0.0, "seed {seed}: curvature {qd}");
        assert!(
            (qs - qd).abs() <= 1e-9 * qd.abs(),
            "seed {seed}: sparse {qs:e} against GEMM {qd:e}"
        );
        let (ld, ls) = (dense.quad_lower[(0, 0)], sparse.quad_lower[(0, 0)]);
        assert!((ls - ld).abs() <= 1e-9 * ld.abs().max(qd.abs()));
    }
}

/// Mutation: the sparse radius without the input's `qr` (the kinks' remainders) is
/// caught by the bound check.
#[test]
fn dropped_kink_radius_is_caught() {
    set_sparse_knob(SparseKnob::DropQr);
    let mut found = 0;
    let mut taken = 0;
    for seed in 0..40u64 {
        let c = relu_case::<f64>(seed, 300, 0.01);
        let (e, t) = enclose_counted(&c);
        taken += t;
        found += violations(&c, &e, seed, 24).0;
        if found > 0 {
            break;
        }
    }
    set_sparse_knob(SparseKnob::Auto);
    assert!(taken > 0);
    assert!(found > 0, "dropping the kinks' radius went unnoticed");
}
