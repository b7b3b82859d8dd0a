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

/// A number beyond the float's range deserialises to infinity (1e39 in f32): the
/// parameters restored by `load_params` are checked finite before they are set, for a
/// network problem and the least-squares test problem (through a resume).
#[test]
fn parameters_beyond_the_float_range_are_refused_on_resume() {
    use nets::{Activation, Dataset, Init, Loss, LossKind, Reduction, Sequential, Targets};
    use solvers::{NetProblem, Problem};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let net =
        Sequential::<f32>::mlp(&[2, 3, 1], Activation::Relu, Init::HeUniform, &mut rng).unwrap();
    let data = Dataset::new(
        nalgebra::DMatrix::from_fn(2, 4, |i, j| (i + j) as f32),
        Targets::Dense(nalgebra::DMatrix::zeros(1, 4)),
    )
    .unwrap();
    let mut p =
        NetProblem::new(net, Loss::new(LossKind::Mse, Reduction::Mean), data, None).unwrap();
    let before = p.net.flat_params();
    let mut v = p.save_params();
    v[1] = serde_json::json!(1e39);
    let err = p.load_params(&v).unwrap_err();
    assert!(
        matches!(&err, SolverError::Checkpoint(m) if m.contains("`params[1]` is not finite")),
        "{err}"
    );
    assert_eq!(p.net.flat_params(), before, "nothing is set");

    let f = majorize::rules::HalfSquaredNorm::new(3);
    let g = majorize::quadratic::DescentLemma::new(f, 1.0).unwrap();
    let x0 = nalgebra::DVector::<f32>::from_element(3, 1.0);
    let mut sp = solvers::mm::SurrogateProblem::new(f, g, x0.clone()).unwrap();
    let mut v = sp.save_params();
    v[2] = serde_json::json!(1e39);
    let err = sp.load_params(&v).unwrap_err();
    assert!(
        matches!(&err, SolverError::Checkpoint(m) if m.contains("`x[2]` is not finite")),
        "{err}"
    );
    assert_eq!(sp.point(), &x0, "nothing is set");

    let mut ls = {
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        LeastSquares::<f32>::random(4, 20, 0.1, &mut r).unwrap()
    };
    let mut store = MemoryStore::default();
    let mut adam = AdamConfig::default().build::<f32>().unwrap();
    Driver::new(Budget::iterations(2))
        .checkpointing(&mut store, 1)
        .run(&mut ls, &mut adam)
        .unwrap();
    let mut cp = store.latest.unwrap();
    cp.problem_params[0] = serde_json::json!(-1e39);
    let mut store = MemoryStore {
        latest: Some(cp),
        saves: 0,
    };
    let err = Driver::new(Budget::iterations(4))
        .checkpointing(&mut store, 0)
        .resume(true)
        .run(&mut ls, &mut adam)
        .unwrap_err();
    assert!(
        matches!(&err, SolverError::Checkpoint(m) if m.contains("`params[0]` is not finite")),
        "{err}"
    );
}

/// Review 3: a checkpoint path that is not a regular file is refused before reading
/// (`/dev/zero` never ends: `fs::read` grew its buffer until the allocation failed).
#[cfg(unix)]
#[test]
fn a_device_as_checkpoint_file_is_an_error_not_an_endless_read() {
    use solvers::CheckpointStore;
    let e = FileStore::new("/dev/zero").load().unwrap_err();
    assert!(
        matches!(&e, SolverError::Checkpoint(m) if m == "reading /dev/zero: not a regular file"),
        "{e}"
    );
}

/// Review 3: `FileStore::save` wrote through the fixed temporary name `<path>.tmp`,
/// replacing a user's file of that name (and racing a second store on the same path).
/// It now writes through a fresh, exclusively created name and touches no other file.
#[test]
fn saving_a_checkpoint_leaves_other_files_alone() {
    use solvers::CheckpointStore;
    let dir = std::env::temp_dir().join(format!("strata-cpv-tmp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cp.json");
    let mine = dir.join("cp.json.tmp");
    std::fs::write(&mine, b"the user's notes").unwrap();
    let cp = checkpoint();
    let mut store = FileStore::new(&path);
    store.save(&cp).unwrap();
    store.save(&cp).unwrap();
    assert_eq!(std::fs::read(&mine).unwrap(), b"the user's notes");
    assert_eq!(store.load().unwrap().unwrap(), cp);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["cp.json", "cp.json.tmp"],
        "no temporary file is left"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A fresh run (no `resume`) whose `FileStore` path already exists is refused before it
/// starts, so its first save cannot replace an earlier run's checkpoint or a file given
/// by mistake (review 3's note: the first save replaced it). Resuming continues the
/// checkpoint; a missing path starts fresh either way.
#[test]
fn a_fresh_run_does_not_replace_an_existing_file() {
    let dir = std::env::temp_dir().join(format!("strata-cpv-fresh-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |path: &std::path::Path, resume: bool| {
        let mut adam = AdamConfig::default().build::<f64>().unwrap();
        Driver::new(Budget::iterations(3))
            .checkpointing(FileStore::new(path), 1)
            .resume(resume)
            .run(&mut problem(4), &mut adam)
    };
    // Another file at the path: untouched, the run refused.
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, b"the user's notes").unwrap();
    let err = run(&notes, false).unwrap_err();
    assert!(
        matches!(&err, SolverError::Checkpoint(m) if m.contains("already exists") && m.contains("notes.txt")),
        "{err}"
    );
    assert_eq!(std::fs::read(&notes).unwrap(), b"the user's notes");
    // An earlier run's checkpoint: refused fresh, continued with resume.
    let cp = dir.join("cp.json");
    run(&cp, true).unwrap();
    let before = std::fs::read(&cp).unwrap();
    assert!(run(&cp, false).is_err());
    assert_eq!(std::fs::read(&cp).unwrap(), before);
    run(&cp, true).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
