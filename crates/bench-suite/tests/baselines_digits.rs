//! Acceptance tests of the gradient baselines on the digits data (1,797 8x8 images,
//! 10 classes; standardised, seeded 80/20 split).
//!
//! Data: `bench_suite::data::digits_split` (stratified seeded 80/20 split: 1,438
//! training and 359 test images, standardised with the training statistics).

use std::time::Instant;

use autodiff::{Real, Reduction};
use bench_suite::data::digits_split;
use nets::{Activation, Init, Loss, LossKind, Sequential};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::first_order::{AdamConfig, SgdConfig};
use solvers::lbfgs::LbfgsConfig;
use solvers::{Budget, Driver, NetProblem, Record, Status};

fn mlp_problem<T: Real>(seed: u64) -> NetProblem<T> {
    let (train, test) = digits_split::<T>(seed).unwrap();
    assert_eq!((train.len(), test.len()), (1438, 359));
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 1);
    let net = Sequential::mlp(
        &[64, 128, 128, 10],
        Activation::Relu,
        Init::HeUniform,
        &mut rng,
    )
    .unwrap();
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    NetProblem::new(net, loss, train, Some(test)).unwrap()
}

#[test]
fn adam_defaults_reach_95_percent_test_accuracy_within_30_epochs() {
    let mut p = mlp_problem::<f32>(0);
    let mut adam = AdamConfig::default().build::<f32>().unwrap(); // lr 1e-3, batch 64
    let t = Instant::now();
    // 30 epochs = 60 data passes (each mini-batch gradient is a forward and a backward).
    let out = Driver::new(Budget::epochs(60.0))
        .seed(0)
        .run(&mut p, &mut adam)
        .unwrap();
    let best = out
        .trace
        .records
        .iter()
        .filter_map(|r| r.test_accuracy)
        .fold(0.0, f64::max);
    let last = out.trace.last().unwrap();
    eprintln!(
        "Adam digits: test acc final {:.4} best {:.4}, train loss {:.4e}, {} epochs, solver {:.2}s, total {:.2}s",
        last.test_accuracy.unwrap(),
        best,
        last.objective,
        last.epochs,
        last.wall_time_s,
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        out.status,
        Status::BudgetExhausted(solvers::BudgetKind::Epochs)
    );
    assert_eq!(last.epochs, 60.0);
    assert_eq!(last.forward, 30 * 23); // 1438 samples in batches of 64: 23 per epoch
    assert!(
        last.test_accuracy.unwrap() >= 0.95,
        "final test accuracy {:?}",
        last.test_accuracy
    );
}

/// The last record within `passes` data passes.
fn at_passes(records: &[Record], passes: f64) -> &Record {
    records.iter().rev().find(|r| r.epochs <= passes).unwrap()
}

#[test]
fn lbfgs_beats_gd_at_equal_gradient_evaluations() {
    // Full batch, f64, same initial weights. 50 full gradient evaluations each (L-BFGS
    // counts its initial gradient and every line-search trial). GD gets the best of a
    // small step grid, so L-BFGS is compared with a tuned GD.
    const GRADS: u64 = 50;
    const PASSES: f64 = 2.0 * GRADS as f64; // a gradient is a forward and a backward pass
    let mut p = mlp_problem::<f64>(0);
    let mut lbfgs = LbfgsConfig::default().build::<f64>().unwrap();
    let out = Driver::new(Budget::epochs(PASSES))
        .run(&mut p, &mut lbfgs)
        .unwrap();
    let l = at_passes(&out.trace.records, PASSES);
    for r in out.trace.records.iter().step_by(5) {
        eprintln!(
            "L-BFGS it {:>3} grads {:>3} loss {:.4e} test acc {:.4} extras {:?}",
            r.iteration,
            r.backward,
            r.objective,
            r.test_accuracy.unwrap_or(f64::NAN),
            r.extras
        );
    }
    eprintln!("L-BFGS status {:?}", out.status);
    let mut best_gd = f64::INFINITY;
    for lr in [0.3, 1.0, 3.0] {
        let mut p = mlp_problem::<f64>(0);
        let mut gd = SgdConfig::gd(lr).build::<f64>().unwrap();
        let out = Driver::new(Budget::epochs(PASSES))
            .run(&mut p, &mut gd)
            .unwrap();
        if let Status::Diverged { reason } = &out.status {
            eprintln!("GD lr={lr}: diverged ({reason})");
            continue;
        }
        let g = at_passes(&out.trace.records, PASSES);
        assert_eq!(g.backward, GRADS);
        eprintln!(
            "GD lr={lr}: loss {:.4e} after {} gradients",
            g.objective, g.backward
        );
        best_gd = best_gd.min(g.objective);
    }
    eprintln!(
        "L-BFGS: loss {:.4e} after {} gradients ({} iterations); best GD {:.4e}",
        l.objective, l.backward, l.iteration, best_gd
    );
    assert!(best_gd.is_finite(), "every GD step size diverged");
    assert!(l.backward <= GRADS);
    assert!(
        l.objective < best_gd,
        "L-BFGS {:.4e} vs GD {:.4e}",
        l.objective,
        best_gd
    );
}
