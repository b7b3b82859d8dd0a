//! End to end through the runner's library entry point (what `strata-compare` calls):
//! tiny budgets, small problems.

mod common;

use std::path::Path;

use bench_suite::BenchError;
use bench_suite::problems::registry;
use bench_suite::results::{ResultsFile, RunStatus, validate_results};
use bench_suite::runner::{CompareArgs, run, run_with, solver_registry};
use clap::Parser;
use serde_json::Value;
use solvers::first_order::SgdConfig;
use solvers::{Context, NetProblem, Solver, SolverError, StepReport};

fn args(extra: &[&str], out: &Path) -> CompareArgs {
    let mut v = vec!["strata-compare", "--no-progress", "--out"];
    let out = out.to_str().unwrap().to_string();
    v.push(&out);
    v.extend_from_slice(extra);
    CompareArgs::parse_from(v)
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn tiny_comparison_writes_valid_results_report_and_plots() {
    let root = common::temp_dir("compare-e2e");
    let a = args(
        &[
            "--problems",
            "digits-mlp,nmf-spectrogram-kl",
            "--solvers",
            "adam,lbfgs,nmf-mm,nmf-me",
            "--epochs",
            "6",
            "--time-budget",
            "0",
        ],
        &root,
    );
    let out = run(&a).unwrap();
    assert!(out.dir.starts_with(&root));
    let json = read(&out.outputs.results_json);
    validate_results(&json).unwrap();
    let results = ResultsFile::from_json_str(&json.to_string()).unwrap();
    let names: Vec<(&str, &str)> = results
        .runs
        .iter()
        .map(|r| (r.problem.as_str(), r.solver.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("digits-mlp", "adam"),
            ("digits-mlp", "lbfgs"),
            ("nmf-spectrogram-kl", "nmf-mm"),
            ("nmf-spectrogram-kl", "nmf-me"),
        ]
    );
    for r in &results.runs {
        assert_eq!(
            r.status,
            RunStatus::BudgetExhausted {
                which: Some("epochs".into())
            },
            "{}",
            r.solver
        );
        let (first, last) = (&r.trace[0], r.last().unwrap());
        // 6 data passes: 3 Adam epochs (forward + backward), L-BFGS's init (2) and
        // its trials (2 each), 2 NMF iterations (4 each); a step may overshoot.
        assert!(last.epochs >= 6.0 && last.epochs < 10.0, "{}", last.epochs);
        assert!(last.objective < first.objective, "{}", r.solver);
        assert!(!r.tuned);
        assert!(r.hyperparameters.contains_key("solver"));
    }
    // Equal start: the same initial objective for every solver of a problem.
    assert_eq!(
        results.runs[0].trace[0].objective,
        results.runs[1].trace[0].objective
    );
    assert_eq!(
        results.runs[2].trace[0].objective,
        results.runs[3].trace[0].objective
    );
    assert_eq!(results.runs[0].hyperparameters["lr"], 1e-3);
    assert_eq!(results.runs[2].hyperparameters["beta"], 1.0);
    let budgets = &results.metadata.problem_budgets;
    assert_eq!(budgets["digits-mlp"].max_epochs, Some(6.0));
    assert_eq!(budgets["digits-mlp"].max_wall_time_s, None);
    // Report and plots.
    let report = std::fs::read_to_string(&out.outputs.report_md).unwrap();
    assert!(report.contains("## digits-mlp") && report.contains("## nmf-spectrogram-kl"));
    assert!(report.contains("| adam |") && report.contains("| nmf-me |"));
    assert_eq!(out.outputs.plots.len(), 3 + 2); // digits: + test accuracy
    for p in &out.outputs.plots {
        let svg = std::fs::read_to_string(out.dir.join(&p.relative_path)).unwrap();
        assert!(svg.starts_with("<svg") || svg.contains("<svg"), "{:?}", p);
        let link = p.relative_path.to_string_lossy().replace('\\', "/");
        assert!(report.contains(&link), "{link}");
    }
    // A second run never overwrites the first.
    let again = run(&a).unwrap();
    assert_ne!(again.dir, out.dir);
    assert!(out.outputs.results_json.exists());
}

/// Removes what legitimately differs between two identical runs: timings, timestamps,
/// memory (the counting allocator is shared by concurrently running tests) and the
/// command line.
fn strip(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in [
                "wall_time_s",
                "total_wall_time_s",
                "started_unix_s",
                "peak_memory_bytes",
                "command_line",
                "lr_grid_total_wall_time_s",
            ] {
                m.remove(k);
            }
            m.values_mut().for_each(strip);
        }
        Value::Array(a) => a.iter_mut().for_each(strip),
        _ => {}
    }
}

#[test]
fn same_seed_and_one_thread_give_identical_results() {
    let root = common::temp_dir("compare-det");
    let a = args(
        &[
            "--problems",
            "spirals,nmf-spectrogram-is",
            "--solvers",
            "sgd-momentum,inna,nmf-heuristic",
            "--seeds",
            "3,",
            "--epochs",
            "2",
            "--time-budget",
            "0",
            "--threads",
            "1",
        ],
        &root,
    );
    let (r1, r2) = (run(&a).unwrap(), run(&a).unwrap());
    let (mut j1, mut j2) = (
        read(&r1.outputs.results_json),
        read(&r2.outputs.results_json),
    );
    assert_eq!(j1["runs"].as_array().unwrap().len(), 3);
    assert_eq!(j1["metadata"]["seeds"], serde_json::json!([3]));
    strip(&mut j1);
    strip(&mut j2);
    assert_eq!(j1, j2);
    // Timings were there before stripping.
    assert!(r1.results.runs[0].trace[1].wall_time_s > 0.0);
}

/// A solver that panics in its first step (test only).
struct Panicker;

impl<T: autodiff::Real> Solver<NetProblem<T>> for Panicker {
    fn name(&self) -> String {
        "Panicker".into()
    }
    fn step(&mut self, _: &mut NetProblem<T>, _: &mut Context) -> Result<StepReport, SolverError> {
        panic!("deliberate test panic")
    }
    fn save_state(&self) -> Value {
        Value::Null
    }
    fn load_state(&mut self, _: &Value) -> Result<(), SolverError> {
        Ok(())
    }
}

#[test]
fn diverging_and_panicking_solvers_are_reported_and_the_rest_still_run() {
    let mut solvers = vec![
        bench_suite::net_solver!(
            "sgd-huge-lr",
            Gradient,
            quick,
            "SGD with lr 1e8 (test only)",
            |_| SgdConfig {
                lr: 1e8,
                ..Default::default()
            }
        ),
        bench_suite::net_solver!(
            "panicker",
            Gradient,
            quick,
            "panics (test only)",
            |_| serde_json::json!({}),
            |_c, T| Ok::<_, SolverError>(Panicker)
        ),
    ];
    solvers.extend(solver_registry());
    let root = common::temp_dir("compare-div");
    let a = args(
        &[
            "--problems",
            "spirals",
            "--solvers",
            "sgd-huge-lr,panicker,adam",
            "--epochs",
            "2",
        ],
        &root,
    );
    let out = run_with(&a, &registry(), &solvers).unwrap();
    let runs = &out.results.runs;
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0].solver, "sgd-huge-lr");
    assert!(
        matches!(&runs[0].status, RunStatus::Diverged { .. }),
        "{:?}",
        runs[0].status
    );
    assert_eq!(runs[0].hyperparameters["lr"], 1e8);
    match &runs[1].status {
        RunStatus::Failed { error } => assert!(error.contains("deliberate test panic"), "{error}"),
        s => panic!("expected Failed, got {s:?}"),
    }
    assert!(matches!(runs[2].status, RunStatus::BudgetExhausted { .. }));
    assert!(runs[2].last().unwrap().objective < runs[2].trace[0].objective);
    let report = std::fs::read_to_string(&out.outputs.report_md).unwrap();
    assert!(report.contains("diverged") && report.contains("failed"));
}

#[test]
fn lr_grid_reports_the_best_final_objective_as_tuned() {
    let root = common::temp_dir("compare-grid");
    let a = args(
        &[
            "--problems",
            "spirals",
            "--solvers",
            "adam,lbfgs",
            "--epochs",
            "1",
            "--lr-grid",
            "1e-4,1e-2",
        ],
        &root,
    );
    let out = run(&a).unwrap();
    let adam = &out.results.runs[0];
    assert!(adam.tuned);
    let finals: Vec<f64> = adam.hyperparameters["lr_grid_final_objectives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(finals.len(), 2);
    let best = if finals[0] <= finals[1] { 1e-4 } else { 1e-2 };
    assert_eq!(adam.hyperparameters["lr"], best);
    assert_eq!(adam.last().unwrap().objective, finals[0].min(finals[1]));
    // L-BFGS has no learning rate: run once with its defaults.
    assert!(!out.results.runs[1].tuned);
}

#[test]
fn unknown_names_and_missing_user_data() {
    let root = common::temp_dir("compare-err");
    let e = run(&args(&["--solvers", "adam,nope"], &root)).unwrap_err();
    assert!(matches!(e, BenchError::UnknownName { what: "solver", .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("`nope`") && msg.contains("adam") && msg.contains("nmf-me"),
        "{msg}"
    );
    let e = run(&args(&["--problems", "digits"], &root)).unwrap_err();
    assert!(e.to_string().contains("digits-mlp"), "{e}");
    // Missing MNIST files: skipped with the reason, not a failure.
    let missing = root.join("no-mnist-here");
    let a = args(
        &[
            "--problems",
            "mnist-mlp,spirals",
            "--solvers",
            "adam",
            "--epochs",
            "1",
            "--mnist-dir",
            missing.to_str().unwrap(),
        ],
        &root,
    );
    let out = run(&a).unwrap();
    let r = out
        .results
        .runs
        .iter()
        .find(|r| r.problem == "mnist-mlp")
        .unwrap();
    match &r.status {
        RunStatus::Skipped { reason } => assert!(reason.contains("missing"), "{reason}"),
        s => panic!("expected Skipped, got {s:?}"),
    }
    assert!(r.trace.is_empty());
    let spirals = out
        .results
        .runs
        .iter()
        .find(|r| r.problem == "spirals")
        .unwrap();
    assert!(matches!(spirals.status, RunStatus::BudgetExhausted { .. }));
}

#[test]
fn binary_lists_and_exits_2_on_unknown_names() {
    let bin = env!("CARGO_BIN_EXE_strata-compare");
    let list = std::process::Command::new(bin)
        .arg("--list")
        .output()
        .unwrap();
    assert!(list.status.success());
    let text = String::from_utf8(list.stdout).unwrap();
    for name in [
        "digits-mlp",
        "nmf-spectrogram-euc",
        "adam",
        "lbfgs",
        "nmf-heuristic",
    ] {
        assert!(text.contains(name), "{name} missing from --list");
    }
    let bad = std::process::Command::new(bin)
        .args(["--problems", "nope"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8(bad.stderr).unwrap();
    assert!(
        err.contains("unknown problem `nope`") && err.contains("spirals"),
        "{err}"
    );
}
