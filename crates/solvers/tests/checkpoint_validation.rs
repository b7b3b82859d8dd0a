//! #13: a checkpoint is user data. The driver's part (trace, counters, objective, wall
//! time) and the solver's part (every buffer against the problem) are validated on
//! resume; the reproductions give typed errors.

use rand::SeedableRng;
use solvers::first_order::AdamConfig;
use solvers::testing::LeastSquares;
use solvers::{Budget, CheckpointV1, Driver, FileStore, MemoryStore, SolverError};

fn problem(d: usize) -> LeastSquares<f64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    LeastSquares::<f64>::random(d, 20, 0.1, &mut rng).unwrap()
}

fn checkpoint() -> CheckpointV1 {
    let mut store = MemoryStore::default();
    let mut adam = AdamConfig::default().build::<f64>().unwrap();
    Driver::new(Budget::iterations(3))
        .checkpointing(&mut store, 1)
        .run(&mut problem(4), &mut adam)
        .unwrap();
    store.latest.unwrap()
}

fn resume(cp: CheckpointV1, d: usize) -> Result<solvers::RunOutcome, SolverError> {
    let mut store = MemoryStore {
        latest: Some(cp),
        saves: 0,
    };
    let mut adam = AdamConfig::default().build::<f64>().unwrap();
    Driver::new(Budget::iterations(5))
        .checkpointing(&mut store, 0)
        .resume(true)
        .run(&mut problem(d), &mut adam)
}

fn expect_checkpoint_error(cp: CheckpointV1, needle: &str) {
    match resume(cp, 4) {
        Err(SolverError::Checkpoint(m)) => assert!(m.contains(needle), "{m}"),
        other => panic!("expected a checkpoint error naming {needle}, got {other:?}"),
    }
}

#[test]
fn a_clean_resume_still_works() {
    let out = resume(checkpoint(), 4).unwrap();
    assert_eq!(out.trace.records.len(), 6);
}

#[test]
fn an_empty_trace_is_refused() {
    let mut cp = checkpoint();
    cp.trace.records.clear();
    expect_checkpoint_error(cp, "trace is empty");
}

#[test]
fn a_wrapping_samples_seen_is_refused() {
    let mut cp = checkpoint();
    cp.counters.samples_seen = u64::MAX;
    if let Some(r) = cp.trace.records.last_mut() {
        r.samples_seen = u64::MAX;
    }
    expect_checkpoint_error(cp, "samples_seen");
}

#[test]
fn counters_must_match_the_trace() {
    let mut cp = checkpoint();
    cp.counters.forward += 1;
    expect_checkpoint_error(cp, "forward");
    let mut cp = checkpoint();
    cp.iteration += 1;
    expect_checkpoint_error(cp, "iteration");
    let mut cp = checkpoint();
    cp.wall_time_s = -1.0;
    expect_checkpoint_error(cp, "wall time");
}

/// The reproduction, through a `FileStore` file: drop the last element of
/// Adam's first moment `m`.
#[test]
fn a_truncated_adam_moment_in_a_file_is_an_error_not_a_different_run() {
    let dir = std::env::temp_dir().join(format!("strata-cpv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cp.json");
    let mut cp = checkpoint();
    let st = &mut cp.solver_state["state"];
    let m = if st.get("m").is_some() {
        &mut st["m"]
    } else {
        &mut st["inner"]["m"]
    };
    m.as_array_mut().unwrap().pop();
    std::fs::write(&path, serde_json::to_vec(&cp).unwrap()).unwrap();
    let mut adam = AdamConfig::default().build::<f64>().unwrap();
    let err = Driver::new(Budget::iterations(5))
        .checkpointing(FileStore::new(&path), 0)
        .resume(true)
        .run(&mut problem(4), &mut adam)
        .unwrap_err();
    assert!(
        matches!(&err, SolverError::Checkpoint(m) if m.contains("/m") && m.contains("expected 4 elements")),
        "{err}"
    );
    // The same checkpoint on a problem of another dimension is refused too.
    let err = resume(checkpoint(), 5).unwrap_err();
    assert!(
        matches!(
            err,
            SolverError::Checkpoint(_) | SolverError::ShapeMismatch { .. }
        ),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
