//! #13 defect 1 and its class: every registered solver's saved state is mutated field by
//! field (drop an array element, add one, NaN, negative count, wrong type) and resumed.
//! Each mutation must give a typed error from the driver or a result bit-identical to
//! the unmutated resume; never a panic, never a silently different run.

use std::panic::{AssertUnwindSafe, catch_unwind};

use autodiff::Reduction;
use nalgebra::DMatrix;
use nets::{Dataset, Loss, LossKind, Targets};
use serde_json::Value;
use solvers::nmf::{BetaNmfConfig, NmfProblem};
use solvers::{Budget, CheckpointV1, Driver, MemoryStore, NetProblem, Problem, Solver, Status};

use bench_suite::problems::HiddenActivation;
use bench_suite::runner::{Factory, SolverCtx, initial_factors, initial_network, solver_registry};

/// A JSON path and a mutated copy of the state.
type Mutation = (String, Value);

/// Every mutation of `v`: arrays lose their last element / gain a copy of it; numbers
/// become null (how serde_json writes NaN), -1 and u64::MAX (for counts) and a string; objects lose
/// nothing (a missing field is the "drop" of an object). Long numeric arrays only have
/// their first and last element's value mutated (their length is mutated anyway).
fn mutations(v: &Value) -> Vec<Mutation> {
    fn walk(root: &Value, path: &mut Vec<PathStep>, here: &Value, out: &mut Vec<Mutation>) {
        let put = |label: &str, new: Value, path: &[PathStep], out: &mut Vec<Mutation>| {
            let mut m = root.clone();
            *locate(&mut m, path) = new;
            out.push((format!("{}:{label}", show(path)), m));
        };
        match here {
            Value::Array(a) => {
                let mut shorter = a.clone();
                if shorter.pop().is_some() {
                    put("drop", Value::Array(shorter), path, out);
                }
                let mut longer = a.clone();
                longer.push(a.last().cloned().unwrap_or(Value::from(0)));
                put("add", Value::Array(longer), path, out);
                put("wrong-type", Value::from("x"), path, out);
                let numeric = a.iter().all(Value::is_number);
                for (i, x) in a.iter().enumerate() {
                    if numeric && a.len() > 3 && i != 0 && i + 1 != a.len() {
                        continue;
                    }
                    path.push(PathStep::Index(i));
                    walk(root, path, x, out);
                    path.pop();
                }
            }
            Value::Object(o) => {
                for (k, x) in o {
                    let mut without = o.clone();
                    without.remove(k);
                    put(
                        &format!("drop-field-{k}"),
                        Value::Object(without),
                        path,
                        out,
                    );
                    path.push(PathStep::Key(k.clone()));
                    walk(root, path, x, out);
                    path.pop();
                }
            }
            Value::Number(n) => {
                put("nan", Value::Null, path, out);
                put("wrong-type", Value::from("x"), path, out);
                if n.is_u64() {
                    put("negative", Value::from(-1), path, out);
                    put("huge", Value::from(u64::MAX), path, out);
                }
            }
            Value::Bool(_) => put("wrong-type", Value::from(3), path, out),
            Value::String(_) => put("wrong-type", Value::from(3), path, out),
            Value::Null => put("wrong-type", Value::from("x"), path, out),
        }
    }
    // The whole state replaced (null is what some solvers save before init).
    let mut out = vec![
        ("/:null".to_string(), Value::Null),
        ("/:wrong-type".to_string(), Value::from("x")),
    ];
    walk(v, &mut Vec::new(), v, &mut out);
    out
}

#[derive(Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn show(path: &[PathStep]) -> String {
    path.iter()
        .map(|s| match s {
            PathStep::Key(k) => format!("/{k}"),
            PathStep::Index(i) => format!("/{i}"),
        })
        .collect()
}

fn locate<'a>(v: &'a mut Value, path: &[PathStep]) -> &'a mut Value {
    path.iter().fold(v, |v, s| match s {
        PathStep::Key(k) => &mut v[k.as_str()],
        PathStep::Index(i) => &mut v[*i],
    })
}

/// Objective bits and sample counts of every record: what "bit-identical" compares.
fn fingerprint(o: &solvers::RunOutcome) -> Vec<(u64, u64)> {
    o.trace
        .records
        .iter()
        .map(|r| (r.objective.to_bits(), r.samples_seen))
        .collect()
}

/// Runs 2 iterations with a checkpoint, then checks every mutation of the saved solver
/// state against the unmutated resume to iteration 4. Returns failures as text.
fn check_solver<P: Problem>(
    name: &str,
    make_problem: &dyn Fn() -> P,
    make_solver: &dyn Fn() -> Box<dyn Solver<P>>,
) -> Vec<String> {
    let mut store = MemoryStore::default();
    let first = Driver::new(Budget::iterations(2))
        .seed(5)
        .checkpointing(&mut store, 1)
        .run(&mut make_problem(), &mut make_solver())
        .unwrap_or_else(|e| panic!("{name}: first run: {e}"));
    assert!(
        matches!(first.status, Status::BudgetExhausted(_)),
        "{name}: first run ended {:?}",
        first.status
    );
    let cp: CheckpointV1 = store.latest.clone().expect("checkpoint");
    let resume = |cp: CheckpointV1| {
        let mut store = MemoryStore {
            latest: Some(cp),
            saves: 0,
        };
        Driver::new(Budget::iterations(4))
            .seed(5)
            .checkpointing(&mut store, 0)
            .resume(true)
            .run(&mut make_problem(), &mut make_solver())
    };
    let reference = resume(cp.clone()).unwrap_or_else(|e| panic!("{name}: clean resume: {e}"));
    let want = fingerprint(&reference);
    assert_eq!(want.len(), 5, "{name}: {:?}", reference.status);
    let mut failures = Vec::new();
    let muts = mutations(&cp.solver_state);
    println!("{name}: {} mutations", muts.len());
    assert!(!muts.is_empty() || cp.solver_state.is_null(), "{name}");
    for (label, state) in muts {
        let mut bad = cp.clone();
        bad.solver_state = state;
        match catch_unwind(AssertUnwindSafe(|| resume(bad))) {
            Err(_) => failures.push(format!("{name} {label}: PANIC")),
            Ok(Err(_)) => {}
            Ok(Ok(o)) if fingerprint(&o) == want => {}
            Ok(Ok(o)) => failures.push(format!(
                "{name} {label}: resumed without error to a different run ({:?})",
                o.status
            )),
        }
    }
    failures
}

fn net_problem() -> NetProblem<f64> {
    let n = 24;
    let x = DMatrix::from_fn(2, n, |i, j| ((i * 5 + j * 7) % 11) as f64 / 11.0 - 0.5);
    let y = DMatrix::from_fn(1, n, |_, j| (3.0 * x[(0, j)]).sin() * x[(1, j)]);
    let data = Dataset::new(x, Targets::Dense(y)).unwrap();
    let net = initial_network::<f64>(&[2, 5, 4, 1], HiddenActivation::Relu, 3).unwrap();
    NetProblem::new(net, Loss::new(LossKind::Mse, Reduction::Mean), data, None).unwrap()
}

fn nmf_problem(beta: f64) -> NmfProblem<f64> {
    let v = DMatrix::from_fn(6, 8, |i, j| 0.5 + ((i * 3 + j * 5) % 7) as f64);
    let (w, h) = initial_factors(&v, 2, 3).unwrap();
    let cfg = BetaNmfConfig {
        beta,
        ..Default::default()
    };
    NmfProblem::new(v, w, h, &cfg).unwrap()
}

#[test]
fn every_registered_solver_rejects_or_ignores_each_mutation_of_its_saved_state() {
    let mut failures = Vec::new();
    let registry = solver_registry();
    assert!(registry.len() >= 21, "{} solvers", registry.len());
    for entry in &registry {
        let found = match entry.factory {
            Factory::Network { f64: make, .. } => {
                let ctx = SolverCtx {
                    loss: Some(LossKind::Mse),
                    ..Default::default()
                };
                check_solver(entry.name, &net_problem, &|| make(&ctx).unwrap().solver)
            }
            Factory::Nmf { f64: make, .. } => {
                let ctx = SolverCtx {
                    beta: 1.0,
                    ..Default::default()
                };
                check_solver(entry.name, &|| nmf_problem(1.0), &|| {
                    make(&ctx).unwrap().solver
                })
            }
        };
        failures.extend(found);
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_issue_reproduction_adam_with_a_dropped_moment_element_is_an_error() {
    let entry = solver_registry()
        .into_iter()
        .find(|e| e.name == "adam")
        .unwrap();
    let Factory::Network { f64: make, .. } = entry.factory else {
        panic!("adam is a network solver")
    };
    let ctx = SolverCtx::default();
    let mut store = MemoryStore::default();
    Driver::new(Budget::iterations(2))
        .checkpointing(&mut store, 1)
        .run(&mut net_problem(), &mut make(&ctx).unwrap().solver)
        .unwrap();
    let mut cp = store.latest.unwrap();
    let st = &mut cp.solver_state["state"];
    let m = if st.get("m").is_some() {
        &mut st["m"]
    } else {
        &mut st["inner"]["m"]
    };
    m.as_array_mut().expect("Adam's first moment").pop();
    let mut store = MemoryStore {
        latest: Some(cp),
        saves: 0,
    };
    let err = Driver::new(Budget::iterations(4))
        .checkpointing(&mut store, 0)
        .resume(true)
        .run(&mut net_problem(), &mut make(&ctx).unwrap().solver)
        .unwrap_err();
    assert!(err.to_string().contains("/m"), "{err}");
}
