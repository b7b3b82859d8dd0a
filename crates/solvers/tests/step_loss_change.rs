//! `Solver::step` of the ADMM engines on a problem whose loss (and, in one case, data
//! set) is not the one the solver was prepared with: the step must prepare from the
//! problem's own loss and data (`sync_problem`), exactly as a fresh solver restored from
//! the same state and stepped on the same problem does (its `prepare` reads
//! `problem.loss`). Found in the session-18 review: after 87ec56c a new data set was
//! re-prepared with the loss kept from the last `prepare`, and a new loss alone was
//! never noticed.

use nalgebra::DMatrix;
use nets::{Activation, Dataset, Init, Loss, LossKind, Reduction, Sequential, Targets};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::admm::{DlAdmm, DlAdmmConfig, OutputLoss, TaylorAdmm, TaylorConfig};
use solvers::*;

const N: usize = 40;

fn data(xs: usize) -> Dataset<f64> {
    let x = DMatrix::from_fn(3, N, |i, j| ((i * 7 + j * 3 + 5 * xs) as f64 * 0.41).sin());
    let y = DMatrix::from_fn(2, N, |i, j| ((i + 2 * j + 3 * xs) as f64 * 0.23).cos());
    Dataset::new(x, Targets::Dense(y)).unwrap()
}

fn net() -> Sequential<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    Sequential::mlp(&[3, 6, 5, 2], Activation::Relu, Init::HeNormal, &mut rng).unwrap()
}

fn loss(l2: f64) -> Loss {
    let mut l = Loss::new(LossKind::Mse, Reduction::Mean);
    l.l2 = l2;
    l
}

fn check<S: Solver<NetProblem<f64>>>(name: &str, new_data: bool, make: impl Fn() -> S) {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut counters = Counters::default();
    let mut ctx = Context {
        rng: &mut rng,
        counters: &mut counters,
        iteration: 0,
        threads: 1,
    };
    let mut pa = NetProblem::new(net(), loss(0.0), data(0), None).unwrap();
    let mut a = make();
    a.init(&mut pa, &mut ctx).unwrap();
    for _ in 0..2 {
        a.step(&mut pa, &mut ctx).unwrap();
    }
    // The next problem: another L2 weight, the current weights, and other data (or
    // the same data set, `pa.train`'s clone keeping its identity).
    let next = || if new_data { data(1) } else { pa.train.clone() };
    let mut pb = NetProblem::new(pa.net.clone(), loss(0.5), next(), None).unwrap();
    let mut pb2 = NetProblem::new(pa.net.clone(), loss(0.5), next(), None).unwrap();
    let mut fresh = make();
    fresh.load_state(&a.save_state()).unwrap();
    let want = fresh.step(&mut pb2, &mut ctx).unwrap();
    let got = a.step(&mut pb, &mut ctx).unwrap();
    let bits = |p: &NetProblem<f64>| -> Vec<u64> {
        p.net.flat_params().iter().map(|v| v.to_bits()).collect()
    };
    let differ = bits(&pb)
        .iter()
        .zip(bits(&pb2))
        .filter(|(x, y)| **x != *y)
        .count();
    assert_eq!(
        differ, 0,
        "{name}: {differ} weights differ from a fresh solver prepared with the problem's loss \
         (surrogate {:?} vs {:?})",
        got.surrogate, want.surrogate
    );
}

fn taylor() -> TaylorAdmm<f64> {
    TaylorAdmm::new(TaylorConfig {
        output_loss: OutputLoss::LeastSquares,
        warm_start: 1,
        ..Default::default()
    })
    .unwrap()
}

fn dladmm() -> DlAdmm<f64> {
    DlAdmm::new(DlAdmmConfig::default()).unwrap()
}

#[test]
fn taylor_step_on_new_data_and_loss_uses_the_problems_loss() {
    check("admm-taylor", true, taylor);
}

#[test]
fn taylor_step_on_a_new_loss_alone_uses_it() {
    check("admm-taylor, same data", false, taylor);
}

#[test]
fn dladmm_step_on_new_data_and_loss_uses_the_problems_loss() {
    check("dladmm", true, dladmm);
}

#[test]
fn dladmm_step_on_a_new_loss_alone_uses_it() {
    check("dladmm, same data", false, dladmm);
}
