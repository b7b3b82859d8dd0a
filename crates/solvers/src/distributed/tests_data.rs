//! The distributed ADMM wrappers on a local shard replaced between steps (the shard is
//! crate-private: this is how a future re-sharding would look). The wrappers run
//! `prepare` only after a restore and otherwise hand the shard to the engine's
//! `iterate`, which handles a changed data set (`admm::TaylorAdmm::iterate`); before
//! that fix the Taylor wrapper kept fitting the old shard's targets.

use std::sync::Arc;

use nalgebra::DMatrix;
use nets::{Activation, Dataset, Init, Loss, LossKind, Reduction, Sequential, Targets};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{DistributedDlAdmm, DistributedTaylorAdmm, ShardedNetProblem};
use crate::admm::{DlAdmmConfig, OutputLoss, TaylorConfig};
use crate::comm::LocalComm;
use crate::{Context, Counters, NetProblem, Solver, SolverError};

const N: usize = 30;

fn data(n: usize, ys: usize) -> Dataset<f64> {
    let x = DMatrix::from_fn(3, n, |i, j| ((i * 5 + j * 3) as f64 * 0.37).sin());
    let y = DMatrix::from_fn(2, n, |i, j| ((i + 2 * j + 3 * ys) as f64 * 0.29).cos());
    Dataset::new(x, Targets::Dense(y)).unwrap()
}

fn sharded(net: Sequential<f64>, train: Dataset<f64>) -> ShardedNetProblem<f64> {
    let loss = Loss::new(LossKind::Mse, Reduction::Mean);
    let full = NetProblem::new(net, loss, train, None).unwrap();
    ShardedNetProblem::new(full, Arc::new(LocalComm)).unwrap()
}

fn net() -> Sequential<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    Sequential::mlp(&[3, 5, 2], Activation::Relu, Init::HeNormal, &mut rng).unwrap()
}

fn bits(p: &ShardedNetProblem<f64>) -> Vec<u64> {
    p.net().flat_params().iter().map(|v| v.to_bits()).collect()
}

/// Two steps on the old shard, then two on `new` (swapped in) against a fresh wrapper
/// restored from the same state on a problem built with `new`, bit for bit; returns
/// the swapped step's error if it has one.
fn swapped<S: Solver<ShardedNetProblem<f64>>>(
    make: impl Fn() -> S,
    new: Dataset<f64>,
) -> Result<(), SolverError> {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut counters = Counters::default();
    let mut ctx = Context {
        rng: &mut rng,
        counters: &mut counters,
        iteration: 1,
        threads: 1,
    };
    let (mut a, mut pa) = (make(), sharded(net(), data(N, 0)));
    a.init(&mut pa, &mut ctx).unwrap();
    for _ in 0..2 {
        a.step(&mut pa, &mut ctx).unwrap();
    }
    let mut fresh = make();
    fresh.load_state(&a.save_state()).unwrap();
    let mut pb = sharded(pa.net().clone(), new.clone());
    pa.local.train = new;
    // Two steps: the targets reach the weights through `Z_L` one sweep later.
    for k in 0..2 {
        let got = a.step(&mut pa, &mut ctx)?.surrogate.unwrap();
        let want = fresh.step(&mut pb, &mut ctx).unwrap().surrogate.unwrap();
        assert_eq!(bits(&pa), bits(&pb), "weights after swapped step {k}");
        assert_eq!(
            got.to_bits(),
            want.to_bits(),
            "surrogate of swapped step {k}"
        );
    }
    Ok(())
}

fn taylor() -> DistributedTaylorAdmm<f64> {
    let c = TaylorConfig {
        output_loss: OutputLoss::LeastSquares,
        warm_start: 1,
        ..Default::default()
    };
    DistributedTaylorAdmm::new(c).unwrap()
}

fn dladmm() -> DistributedDlAdmm<f64> {
    DistributedDlAdmm::new(DlAdmmConfig::default()).unwrap()
}

#[test]
fn a_swapped_shard_is_prepared_as_a_fresh_solver_would() {
    swapped(taylor, data(N, 1)).unwrap();
    swapped(dladmm, data(N, 1)).unwrap();
}

#[test]
fn a_swapped_shard_of_another_n_is_a_typed_error() {
    for r in [
        swapped(taylor, data(N + 4, 1)),
        swapped(dladmm, data(N + 4, 1)),
    ] {
        assert!(
            matches!(&r, Err(SolverError::ShapeMismatch { what, .. }) if what.contains("samples")),
            "{r:?}"
        );
    }
}
