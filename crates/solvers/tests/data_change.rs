//! A training set replaced between steps (by another of the same shape) must not be
//! served from the caches a solver derived from the old one (`X X^T`, factorizations,
//! kept products). The caches were keyed by the inputs' address and shape, and a data
//! set dropped and rebuilt in its place can get the old address back from the allocator;
//! the solvers now also key them by `Dataset::id` (`solvers::linalg::DataStamp`).
//!
//! Each solver runs twice from the same start: once with the new data set built in the
//! old one's buffers (`Dataset::into_parts`, refilled: the old address, a new id), once
//! with the old one kept alive so the new one lands elsewhere (every address-keyed cache
//! misses). The step after the replacement must be bit for bit the same. (Until session
//! 18 the first copy dropped the old data set and relied on the allocator to hand its
//! buffer back; under parallel test threads it sometimes did not, and the test failed
//! its own vacuity check.)

use nalgebra::DMatrix;
use nets::{Activation, Dataset, Init, Loss, LossKind, Reduction, Sequential, Targets};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::admm::{DlAdmm, DlAdmmConfig, OutputLoss, TaylorAdmm, TaylorConfig};
use solvers::bcd::BcdConfig;
use solvers::lifted::LiftedConfig;
use solvers::mac::MacConfig;
use solvers::*;

const N: usize = 40;

fn data(seed: usize) -> Dataset<f64> {
    let x = DMatrix::from_fn(3, N, |i, j| {
        ((i * 7 + j * 3 + 5 * seed) as f64 * 0.41).sin()
    });
    let y = DMatrix::from_fn(2, N, |i, j| ((i + j + seed) as f64 * 0.23).cos());
    Dataset::new(x, Targets::Dense(y)).unwrap()
}

fn problem() -> NetProblem<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let net = Sequential::mlp(&[3, 6, 5, 2], Activation::Relu, Init::HeNormal, &mut rng).unwrap();
    NetProblem::new(
        net,
        Loss::new(LossKind::Mse, Reduction::Mean),
        data(0),
        None,
    )
    .unwrap()
}

fn params(p: &NetProblem<f64>) -> Vec<u64> {
    p.net.flat_params().iter().map(|v| v.to_bits()).collect()
}

/// Runs the two copies of `make()`'s solver; returns whether the replaced data set got
/// the old address back (otherwise this solver's check could not have failed).
fn check<S: Solver<NetProblem<f64>>>(name: &str, make: impl Fn() -> S) -> bool {
    let (mut pa, mut pb) = (problem(), problem());
    let (mut sa, mut sb) = (make(), make());
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut counters = Counters::default();
    let mut ctx = Context {
        rng: &mut rng,
        counters: &mut counters,
        iteration: 1,
        threads: 1,
    };
    sa.init(&mut pa, &mut ctx).unwrap();
    sb.init(&mut pb, &mut ctx).unwrap();
    for _ in 0..2 {
        sa.step(&mut pa, &mut ctx).unwrap();
        sb.step(&mut pb, &mut ctx).unwrap();
    }
    assert_eq!(params(&pa), params(&pb), "{name}: the copies differ before");
    let at = pa.train.inputs().as_ptr();
    // The new data set (data(2)'s values) in the old one's input buffer.
    let new = data(2);
    let old = std::mem::replace(&mut pa.train, data(1));
    let (mut x, _) = old.into_parts();
    x.copy_from(new.inputs());
    pa.train = Dataset::new(x, new.targets().clone()).unwrap();
    let same_address = pa.train.inputs().as_ptr() == at;
    let kept_alive = std::mem::replace(&mut pb.train, data(2));
    assert_ne!(pb.train.inputs().as_ptr(), kept_alive.inputs().as_ptr());
    for k in 0..2 {
        let ra = sa.step(&mut pa, &mut ctx).unwrap();
        let rb = sb.step(&mut pb, &mut ctx).unwrap();
        assert_eq!(
            params(&pa),
            params(&pb),
            "{name}: step {k} after the data set was replaced (same address: {same_address})"
        );
        assert_eq!(
            ra.surrogate.map(f64::to_bits),
            rb.surrogate.map(f64::to_bits),
            "{name}: step {k}"
        );
    }
    drop(kept_alive);
    same_address
}

/// `check`, which must have seen the old address reused: otherwise it could not have
/// failed (`into_parts` keeps the buffer, so it always is).
fn check_reused<S: Solver<NetProblem<f64>>>(name: &str, make: impl Fn() -> S) {
    assert!(
        check(name, make),
        "{name}: the new data set did not land at the old address; the check is vacuous"
    );
}

#[test]
fn admm_taylor_drops_its_caches_for_a_replaced_data_set() {
    check_reused("admm-taylor", || {
        TaylorAdmm::<f64>::new(TaylorConfig {
            output_loss: OutputLoss::LeastSquares,
            ..Default::default()
        })
        .unwrap()
    });
}

#[test]
fn dladmm_drops_its_caches_for_a_replaced_data_set() {
    check_reused("dladmm", || {
        DlAdmm::<f64>::new(DlAdmmConfig::default()).unwrap()
    });
}

#[test]
fn bcd_drops_its_caches_for_a_replaced_data_set() {
    check_reused("bcd", || BcdConfig::default().build::<f64>().unwrap());
}

#[test]
fn mac_drops_its_caches_for_a_replaced_data_set() {
    check_reused("mac", || MacConfig::default().build::<f64>().unwrap());
}

#[test]
fn lifted_drops_its_caches_for_a_replaced_data_set() {
    check_reused("lifted", || LiftedConfig::default().build::<f64>().unwrap());
}
