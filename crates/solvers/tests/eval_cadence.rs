//! The driver's evaluation cadence (issue #14): a sparse cadence records the initial
//! point, the grid of data passes, checkpoints, convergence and the end of the run,
//! with the same values as an every-step run, and resumes bit for bit.

mod common;

use common::*;
use solvers::first_order::{AdamConfig, SgdConfig};
use solvers::lbfgs::LbfgsConfig;
use solvers::testing::Logistic;
use solvers::*;

fn adam_mini() -> impl Solver<Logistic<f64>> {
    AdamConfig {
        lr: 0.05,
        batching: Batching::mini(8),
        ..Default::default()
    }
    .build::<f64>()
    .unwrap()
}

fn iterations(out: &RunOutcome) -> Vec<u64> {
    out.trace.records.iter().map(|r| r.iteration).collect()
}

#[test]
fn sparse_records_are_the_every_step_records_at_the_grid_and_the_end() {
    // An Adam step is one epoch = 2 data passes; every 6 passes = every 3 steps.
    let mut dense_p = logistic();
    let dense = Driver::new(Budget::iterations(7))
        .seed(4)
        .run(&mut dense_p, &mut adam_mini())
        .unwrap();
    let mut p = logistic();
    let sparse = Driver::new(Budget::iterations(7))
        .seed(4)
        .evaluate_every(EvalCadence::Passes(6.0))
        .run(&mut p, &mut adam_mini())
        .unwrap();
    assert_eq!(
        sparse.status,
        Status::BudgetExhausted(BudgetKind::Iterations)
    );
    assert_eq!(iterations(&sparse), vec![0, 3, 6, 7]);
    let dense_t = dense.trace.without_time();
    for r in &sparse.trace.without_time() {
        assert_eq!(r, &dense_t[r.iteration as usize]);
    }
    // Evaluation changes nothing in the run: same counters, same weights handed back.
    assert_eq!(sparse.counters, dense.counters);
    assert_eq!(p.save_params(), dense_p.save_params());
    // The final record holds the exact objective of the weights handed back.
    assert_eq!(
        sparse.trace.last().unwrap().objective,
        p.evaluate().objective
    );
}

#[test]
fn an_epoch_budget_ends_with_a_record_of_the_last_step() {
    // 9 passes: the check before step 5 (10 passes seen) stops the run; the grid of
    // 4 passes fires after steps 2 and 4; step 5 is recorded as the end.
    let mut p = logistic();
    let out = Driver::new(Budget::epochs(9.0))
        .evaluate_every(EvalCadence::Passes(4.0))
        .run(&mut p, &mut adam_mini())
        .unwrap();
    assert_eq!(out.status, Status::BudgetExhausted(BudgetKind::Epochs));
    assert_eq!(iterations(&out), vec![0, 2, 4, 5]);
    assert_eq!(out.trace.last().unwrap().epochs, 10.0);
}

#[test]
fn resumed_sparse_run_is_bit_identical() {
    let mut p = logistic();
    let mut store_full = MemoryStore::default();
    let full = Driver::new(Budget::iterations(12))
        .seed(3)
        .evaluate_every(EvalCadence::Passes(6.0))
        .checkpointing(&mut store_full, 5)
        .run(&mut p, &mut adam_mini())
        .unwrap();
    // Grid 3, 6, 9, 12; checkpoints at 5 and 10 are evaluated too.
    assert_eq!(iterations(&full), vec![0, 3, 5, 6, 9, 10, 12]);

    let mut store = MemoryStore::default();
    let mut p1 = logistic();
    Driver::new(Budget::iterations(5))
        .seed(3)
        .evaluate_every(EvalCadence::Passes(6.0))
        .checkpointing(&mut store, 5)
        .run(&mut p1, &mut adam_mini())
        .unwrap();
    let mut p2 = logistic();
    let resumed = Driver::new(Budget::iterations(12))
        .evaluate_every(EvalCadence::Passes(6.0))
        .checkpointing(&mut store, 5)
        .resume(true)
        .run(&mut p2, &mut adam_mini())
        .unwrap();
    assert_eq!(resumed.status, full.status);
    assert_eq!(resumed.trace.without_time(), full.trace.without_time());
    assert_eq!(resumed.counters, full.counters);
    assert_eq!(p2.save_params(), p.save_params());
}

#[test]
fn convergence_is_recorded_whatever_the_cadence() {
    let lbfgs = || {
        LbfgsConfig {
            grad_tol: 1e-8,
            ..Default::default()
        }
        .build::<f64>()
        .unwrap()
    };
    let mut p = logistic();
    let dense = Driver::new(Budget::iterations(500))
        .run(&mut p, &mut lbfgs())
        .unwrap();
    assert!(
        matches!(dense.status, Status::Converged { .. }),
        "{:?}",
        dense.status
    );
    let mut p = logistic();
    let sparse = Driver::new(Budget::iterations(500))
        .evaluate_every(EvalCadence::Passes(1e6))
        .run(&mut p, &mut lbfgs())
        .unwrap();
    assert_eq!(sparse.status, dense.status);
    let last = dense.trace.without_time().last().unwrap().clone();
    assert_eq!(iterations(&sparse), vec![0, last.iteration]);
    assert_eq!(sparse.trace.without_time()[1], last);
}

#[test]
fn divergence_is_caught_at_the_next_record() {
    let mut p = least_squares();
    let out = Driver::new(Budget::iterations(1000))
        .evaluate_every(EvalCadence::Passes(8.0))
        .run(&mut p, &mut SgdConfig::gd(1e3).build::<f64>().unwrap())
        .unwrap();
    assert!(
        matches!(out.status, Status::Diverged { .. }),
        "{:?}",
        out.status
    );
    // Full-batch GD: 2 passes per step, so records every 4 steps.
    let its = iterations(&out);
    assert!(its.iter().all(|i| i % 4 == 0), "{its:?}");
    let n = out.trace.records.len();
    assert!(out.trace.records[n - 1].objective > 10.0 * out.trace.records[0].objective);
}

#[test]
fn a_bad_cadence_is_a_budget_error() {
    let mut p = logistic();
    let err = Driver::new(Budget::iterations(3))
        .evaluate_every(EvalCadence::Passes(0.0))
        .run(&mut p, &mut adam_mini())
        .unwrap_err();
    assert!(matches!(err, SolverError::InvalidBudget(_)), "{err}");
}
