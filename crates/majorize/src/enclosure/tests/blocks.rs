//! Batches larger than one block of samples (`sweep::BLOCK`): the engine runs the models
//! block by block and adds the blocks' accumulators, so these cases check that every
//! sample is counted once (the slope against the tape) and that the bound still holds.

use autodiff::{Real, Tape};
use nalgebra::{DMatrix, DVector};
use nets::{Activation, LossKind, Targets};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::super::*;
use super::{ACTS, Case, random_case, violations};

/// Samples in the large cases: two full blocks and a partial one.
const N: usize = 2 * super::super::sweep::BLOCK + 37;

/// `random_case(seed)` with `N` samples: the case's columns tiled, each copy shifted by a
/// small random amount (so the blocks differ), and the targets tiled with them.
fn many_samples<T: Real>(seed: u64, act: Option<Activation>, kind: Option<LossKind>) -> Case<T> {
    let mut c = random_case::<T>(seed, act, kind);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xb10c);
    let (d, n0) = c.x.shape();
    c.x = DMatrix::from_fn(d, N, |i, j| {
        let v = c.x[(i, j % n0)].to_f64();
        T::of(v + 0.1 * (2.0 * rng.random::<f64>() - 1.0))
    });
    c.y = match &c.y {
        Targets::Labels { labels, classes } => Targets::Labels {
            labels: (0..N).map(|j| labels[j % n0]).collect(),
            classes: *classes,
        },
        Targets::Dense(m) => Targets::Dense(DMatrix::from_fn(m.nrows(), N, |i, j| m[(i, j % n0)])),
    };
    c
}

/// The bound holds at the box's corners and random points on batches of several blocks,
/// for every activation and loss, f64 and f32.
#[test]
fn bound_holds_across_blocks() {
    let mut cases = 0;
    for (ai, act) in ACTS.iter().enumerate() {
        for (ki, kind) in [
            LossKind::Mse,
            LossKind::SoftmaxCrossEntropy,
            LossKind::Logistic,
        ]
        .into_iter()
        .enumerate()
        {
            let seed = 9000 + 10 * ai as u64 + ki as u64;
            let c = many_samples::<f64>(seed, Some(*act), Some(kind));
            let e = enclose(&c.request()).unwrap();
            let (bad, worst) = violations(&c, &e, seed, 6);
            assert_eq!(bad, 0, "f64 {act:?} {kind:?}: {worst}");
            let c = many_samples::<f32>(seed, Some(*act), Some(kind));
            let e = enclose(&c.request()).unwrap();
            let (bad, worst) = violations(&c, &e, seed, 6);
            assert_eq!(bad, 0, "f32 {act:?} {kind:?}: {worst}");
            cases += 2;
        }
    }
    assert_eq!(cases, 36);
}

/// Every sample is counted once: along `-grad F` the enclosure's slope equals the tape's
/// `-|grad F|²` to rounding (a block dropped or counted twice moves it by about a third).
#[test]
fn slope_counts_every_block_once() {
    for (i, act) in [Activation::Tanh, Activation::Softplus, Activation::Relu]
        .into_iter()
        .enumerate()
    {
        for kind in [
            LossKind::Mse,
            LossKind::SoftmaxCrossEntropy,
            LossKind::Logistic,
        ] {
            let mut c = many_samples::<f64>(700 + i as u64, Some(act), Some(kind));
            let mut grad = vec![0.0; c.net.num_params()];
            nets::loss_and_grad(&c.net, &c.loss, &c.x, &c.y, &mut Tape::new(), &mut grad).unwrap();
            c.dirs = vec![DVector::from_iterator(grad.len(), grad.iter().map(|g| -*g))];
            c.amax = vec![1e-3];
            let g_tape: f64 = -c.dirs[0].norm_squared();
            let e = enclose(&c.request()).unwrap();
            assert!(g_tape < 0.0, "{act:?} {kind:?}: zero gradient");
            assert!(
                (e.gradient[0] - g_tape).abs() <= 1e-9 * g_tape.abs(),
                "{act:?} {kind:?}: slope {} vs tape {g_tape}",
                e.gradient[0]
            );
        }
    }
}
