//! The driver: checkpoint/resume bit-identity, divergence, failure, determinism,
//! budgets, observers, accounting, trace JSON.

mod common;

use std::time::Duration;

use common::*;
use solvers::first_order::{AdamConfig, SgdConfig};
use solvers::lbfgs::LbfgsConfig;
use solvers::observer::{EarlyStopping, FnObserver};
use solvers::testing::{LeastSquares, Logistic};
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

#[test]
fn resumed_adam_minibatch_run_is_bit_identical() {
    // Uninterrupted: 12 epochs, checkpointing every 5 (saving must not perturb the run).
    let mut p = logistic();
    let mut store_full = MemoryStore::default();
    let full = Driver::new(Budget::iterations(12))
        .seed(3)
        .checkpointing(&mut store_full, 5)
        .run(&mut p, &mut adam_mini())
        .unwrap();
    assert_eq!(full.status, Status::BudgetExhausted(BudgetKind::Iterations));
    assert_eq!(full.trace.records.len(), 13);

    // Interrupted after 5 iterations (checkpoint at 5), resumed by fresh objects.
    let mut store = MemoryStore::default();
    let mut p1 = logistic();
    Driver::new(Budget::iterations(5))
        .seed(3)
        .checkpointing(&mut store, 5)
        .run(&mut p1, &mut adam_mini())
        .unwrap();
    assert_eq!(store.latest.as_ref().unwrap().iteration, 5);
    let mut p2 = logistic(); // fresh parameters: overwritten from the checkpoint
    let resumed = Driver::new(Budget::iterations(12))
        .seed(999) // the seed is irrelevant on resume: the RNG state is restored
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
fn resumed_lbfgs_run_through_a_file_is_bit_identical() {
    let dir = std::env::temp_dir().join(format!("strata-solvers-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lbfgs.json");
    let _ = std::fs::remove_file(&path);
    let lbfgs = || {
        LbfgsConfig {
            grad_tol: 0.0,
            ..Default::default()
        }
        .build::<f64>()
        .unwrap()
    };

    let mut p = logistic();
    let full = Driver::new(Budget::iterations(8))
        .run(&mut p, &mut lbfgs())
        .unwrap();
    assert_eq!(full.status, Status::BudgetExhausted(BudgetKind::Iterations));

    let mut p1 = logistic();
    Driver::new(Budget::iterations(3))
        .checkpointing(FileStore::new(&path), 0)
        .run(&mut p1, &mut lbfgs())
        .unwrap();
    assert!(path.exists());
    let mut p2 = logistic();
    let resumed = Driver::new(Budget::iterations(8))
        .checkpointing(FileStore::new(&path), 0)
        .resume(true)
        .run(&mut p2, &mut lbfgs())
        .unwrap();
    assert_eq!(resumed.trace.without_time(), full.trace.without_time());
    assert_eq!(resumed.counters, full.counters);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resume_refuses_a_checkpoint_of_another_solver() {
    let mut store = MemoryStore::default();
    let mut p = logistic();
    Driver::new(Budget::iterations(2))
        .checkpointing(&mut store, 1)
        .run(&mut p, &mut adam_mini())
        .unwrap();
    let mut gd = SgdConfig::gd(0.1).build::<f64>().unwrap();
    let err = Driver::new(Budget::iterations(4))
        .checkpointing(&mut store, 1)
        .resume(true)
        .run(&mut p, &mut gd)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "checkpoint error: checkpoint is for solver \"Adam(lr=0.05, betas=(0.9, 0.999), eps=0.00000001)[batch=8]\", not \"SGD(lr=0.1)[full]\""
    );
}

#[test]
fn huge_learning_rate_diverges_and_keeps_the_trace() {
    let mut p = least_squares();
    let out = Driver::new(Budget::iterations(1000))
        .run(&mut p, &mut SgdConfig::gd(1e3).build::<f64>().unwrap())
        .unwrap();
    let Status::Diverged { reason } = &out.status else {
        panic!("status {:?}", out.status)
    };
    assert!(reason.starts_with("objective "), "{reason}");
    let n = out.trace.records.len();
    assert!((2..10).contains(&n), "{n} records");
    assert!(out.trace.records[n - 1].objective > 10.0 * out.trace.records[0].objective);

    // Adam's steps are bounded by lr, so lr = 1e4 blows the objective up past the rule.
    let mut p = logistic();
    let mut adam = AdamConfig {
        lr: 1e4,
        batching: Batching::Full,
        ..Default::default()
    }
    .build::<f64>()
    .unwrap();
    let out = Driver::new(Budget::iterations(100))
        .run(&mut p, &mut adam)
        .unwrap();
    assert!(
        matches!(out.status, Status::Diverged { .. }),
        "{:?}",
        out.status
    );
    // The trace of a diverged run survives a JSON round trip.
    let json = out.trace.to_json();
    let back: Trace = serde_json::from_str(&json).unwrap();
    assert_eq!(back.to_json(), json);
}

#[test]
fn nan_objective_is_divergence() {
    // A NaN objective is caught even with the blow-up test disabled.
    let rule = DivergenceRule {
        blowup_factor: f64::INFINITY,
        check_params: true,
    };
    let mut p = least_squares();
    let out = Driver::new(Budget::iterations(3000))
        .divergence(rule)
        .run(&mut p, &mut SgdConfig::gd(1e3).build::<f64>().unwrap())
        .unwrap();
    let Status::Diverged { reason } = &out.status else {
        panic!("status {:?}", out.status)
    };
    assert!(
        reason == "objective is inf" || reason == "objective is NaN",
        "{reason}"
    );
    assert!(!out.trace.last().unwrap().objective.is_finite());
}

/// A solver that fails at its third step.
struct Faulty;
impl Solver<LeastSquares<f64>> for Faulty {
    fn name(&self) -> String {
        "Faulty".into()
    }
    fn step(
        &mut self,
        _: &mut LeastSquares<f64>,
        ctx: &mut Context,
    ) -> Result<StepReport, SolverError> {
        if ctx.iteration == 3 {
            return Err(SolverError::Problem("boom at 3".into()));
        }
        ctx.counters.inner_solves += 2;
        Ok(StepReport::new()
            .with_surrogate(ctx.iteration as f64)
            .with("rho", 0.5))
    }
    fn save_state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    fn load_state(&mut self, _: &serde_json::Value) -> Result<(), SolverError> {
        Ok(())
    }
}

#[test]
fn solver_error_gives_failed_with_trace() {
    let mut p = least_squares();
    let out = Driver::new(Budget::iterations(10))
        .run(&mut p, &mut Faulty)
        .unwrap();
    assert_eq!(
        out.status,
        Status::Failed {
            error: "problem error: boom at 3".into()
        }
    );
    assert_eq!(out.trace.records.len(), 3); // iterations 0, 1, 2
    let r = &out.trace.records[2];
    assert_eq!(
        (r.surrogate, r.inner_solves, r.extras.clone()),
        (Some(2.0), 4, vec![("rho".to_string(), 0.5)])
    );
}

#[test]
fn same_seed_same_trace_different_seed_different_trace() {
    let run_seed = |seed| {
        let mut p = logistic();
        Driver::new(Budget::iterations(6))
            .seed(seed)
            .run(&mut p, &mut adam_mini())
            .unwrap()
            .trace
            .without_time()
    };
    let a = run_seed(5);
    assert_eq!(a, run_seed(5));
    assert_ne!(a, run_seed(6));
}

#[test]
fn epoch_budget_and_exact_pass_counting() {
    // N = 60, batch 8: 8 batches per epoch (the last of 4), 8 forward/backward passes.
    let mut p = logistic();
    let out = Driver::new(Budget::epochs(3.0))
        .run(&mut p, &mut adam_mini())
        .unwrap();
    assert_eq!(out.status, Status::BudgetExhausted(BudgetKind::Epochs));
    let last = out.trace.last().unwrap();
    assert_eq!(
        (last.iteration, last.epochs, last.samples_seen),
        (3, 3.0, 180)
    );
    assert_eq!(
        (last.forward, last.backward, last.inner_solves),
        (24, 24, 0)
    );
    let r0 = &out.trace.records[0];
    assert_eq!((r0.iteration, r0.epochs, r0.forward), (0, 0.0, 0));

    // L-BFGS: one full-batch evaluation at init, then one per line-search trial.
    let mut p = logistic();
    let out = Driver::new(Budget::epochs(6.0))
        .run(&mut p, &mut LbfgsConfig::default().build::<f64>().unwrap())
        .unwrap();
    assert_eq!(out.status, Status::BudgetExhausted(BudgetKind::Epochs));
    for r in &out.trace.records {
        assert_eq!(r.forward, r.backward);
        assert_eq!(r.samples_seen, 60 * r.forward);
        assert_eq!(
            r.inner_solves + 1,
            r.forward,
            "every evaluation but init is a trial"
        );
    }
    assert!(out.trace.last().unwrap().epochs >= 6.0);
}

#[test]
fn target_objective_budget_stops_at_first_crossing() {
    let mut p = least_squares();
    let mut gd = SgdConfig::gd(0.5).build::<f64>().unwrap();
    let fstar = {
        let mut q = least_squares();
        run(
            &mut q,
            &mut SgdConfig::gd(0.5).build::<f64>().unwrap(),
            3000,
        );
        q.evaluate().objective
    };
    let target = fstar + 1e-6;
    let out = Driver::new(Budget::iterations(10_000).with_target(target))
        .run(&mut p, &mut gd)
        .unwrap();
    assert_eq!(
        out.status,
        Status::BudgetExhausted(BudgetKind::TargetObjective)
    );
    let recs = &out.trace.records;
    assert!(recs[recs.len() - 1].objective <= target);
    assert!(recs[recs.len() - 2].objective > target);
}

/// A least-squares problem whose evaluation is slow (to check it is not charged).
struct SlowEval(LeastSquares<f64>);
impl Problem for SlowEval {
    fn evaluate(&mut self) -> Evaluation {
        std::thread::sleep(Duration::from_millis(20));
        self.0.evaluate()
    }
    fn num_samples(&self) -> usize {
        self.0.num_samples()
    }
    fn save_params(&self) -> serde_json::Value {
        self.0.save_params()
    }
    fn load_params(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        self.0.load_params(v)
    }
}
impl Differentiable for SlowEval {
    type Scalar = f64;
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn params(&self, out: &mut [f64]) {
        self.0.params(out)
    }
    fn set_params(&mut self, p: &[f64]) -> Result<(), SolverError> {
        self.0.set_params(p)
    }
    fn value_grad(&mut self, b: Option<&[usize]>, g: &mut [f64]) -> Result<f64, SolverError> {
        self.0.value_grad(b, g)
    }
}

#[test]
fn time_budget_counts_solver_time_only() {
    // Evaluation sleeps 20 ms per record, the solver is fast: after 10 iterations the
    // wall-clock time is >= 200 ms, the recorded solver time far below.
    let mut p = SlowEval(least_squares());
    let out = Driver::new(Budget::iterations(10))
        .run(&mut p, &mut SgdConfig::gd(0.1).build::<f64>().unwrap())
        .unwrap();
    let t = out.trace.last().unwrap().wall_time_s;
    assert!(t < 0.05, "solver time {t} s includes evaluation");

    // A time budget stops the run once the solver time reaches it.
    let mut p = least_squares();
    let mut gd = SgdConfig::gd(0.1).build::<f64>().unwrap();
    let out = Driver::new(Budget::time(Duration::from_millis(30)))
        .run(&mut p, &mut gd)
        .unwrap();
    assert_eq!(out.status, Status::BudgetExhausted(BudgetKind::WallTime));
    let recs = &out.trace.records;
    assert!(recs.last().unwrap().wall_time_s >= 0.03);
    assert!(recs[recs.len() - 2].wall_time_s < 0.03);
    assert!(
        recs.windows(2)
            .all(|w| w[1].wall_time_s >= w[0].wall_time_s)
    );
}

#[test]
fn observers_fire_at_their_frequency_and_can_stop() {
    let mut seen = Vec::new();
    let mut p = least_squares();
    let mut gd = SgdConfig::gd(0.1).build::<f64>().unwrap();
    let out = Driver::new(Budget::iterations(10))
        .observe(
            FnObserver(|_: &str, r: &Record| {
                seen.push(r.iteration);
                Control::Continue
            }),
            Frequency::Every(3),
        )
        .run(&mut p, &mut gd)
        .unwrap();
    assert_eq!(out.trace.records.len(), 11);
    assert_eq!(seen, vec![0, 3, 6, 9]);

    // Early stopping: a step so small the objective cannot improve by 1e-3.
    let mut p = least_squares();
    let mut gd = SgdConfig::gd(1e-9).build::<f64>().unwrap();
    let out = Driver::new(Budget::iterations(100))
        .observe(EarlyStopping::new(4, 1e-3, false), Frequency::Always)
        .run(&mut p, &mut gd)
        .unwrap();
    assert!(
        matches!(out.status, Status::Stopped { .. }),
        "{:?}",
        out.status
    );
    assert_eq!(out.trace.records.len(), 5); // iteration 0 sets the best, 4 without improvement
}

#[test]
fn batch_steps_follow_the_epoch_sequence_and_resume_mid_epoch() {
    use solvers::first_order::StepUnit;
    // N = 60, batch 8: 8 batches per epoch. 16 steps of 3 batches = 6 epochs exactly.
    let fine = || {
        AdamConfig {
            lr: 0.05,
            batching: Batching::mini(8),
            ..Default::default()
        }
        .build::<f64>()
        .unwrap()
        .with_step_unit(StepUnit::Batches(3))
        .unwrap()
    };
    let mut pe = logistic();
    Driver::new(Budget::iterations(6))
        .seed(4)
        .run(&mut pe, &mut adam_mini())
        .unwrap();
    let mut pf = logistic();
    let full = Driver::new(Budget::iterations(16))
        .seed(4)
        .run(&mut pf, &mut fine())
        .unwrap();
    assert_eq!(full.trace.last().unwrap().epochs, 6.0);
    assert_eq!(full.trace.records[1].forward, 3);
    assert_eq!(pf.save_params(), pe.save_params());

    // Interrupt at step 5 (15 batches: in the middle of the second epoch), resume.
    let mut store = MemoryStore::default();
    let mut p1 = logistic();
    Driver::new(Budget::iterations(5))
        .seed(4)
        .checkpointing(&mut store, 0)
        .run(&mut p1, &mut fine())
        .unwrap();
    let mut p2 = logistic();
    let resumed = Driver::new(Budget::iterations(16))
        .checkpointing(&mut store, 0)
        .resume(true)
        .run(&mut p2, &mut fine())
        .unwrap();
    assert_eq!(resumed.trace.without_time(), full.trace.without_time());
    assert_eq!(
        AdamConfig::default()
            .build::<f64>()
            .unwrap()
            .with_step_unit(StepUnit::Batches(0))
            .unwrap_err()
            .to_string(),
        "invalid FirstOrder config: batches per step = 0 must be >= 1"
    );
}
