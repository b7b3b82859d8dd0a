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
            "--seeds",
            "1",
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
                "solver_time_s",
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
            "--seeds",
            "1",
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
fn tune_on_spirals_tunes_every_applicable_solver_on_a_validation_split() {
    // What `cargo xtask compare --tune --problems spirals` does, with one seed and a
    // one-pass budget to keep the test short (the grid has its default 5 points).
    let root = common::temp_dir("compare-tune");
    let a = args(
        &[
            "--tune",
            "--problems",
            "spirals",
            "--seeds",
            "1",
            "--epochs",
            "1",
            "--time-budget",
            "0.5",
        ],
        &root,
    );
    let out = run(&a).unwrap();
    let json = read(&out.outputs.results_json);
    validate_results(&json).unwrap();
    let runs = &out.results.runs;
    let quick: Vec<&str> = solver_registry()
        .iter()
        .filter(|e| e.quick && e.family != bench_suite::problems::SolverFamily::Nmf)
        .map(|e| e.name)
        .collect();
    assert_eq!(runs.len(), quick.len());
    for r in runs {
        let t = r.tuning.as_ref().expect("every run records its search");
        let decl = bench_suite::runner::tune::declaration(&r.solver).unwrap();
        if decl.tune.is_empty() {
            // Parameter-free (last-layer MM): defaults, said why.
            assert!(!r.tuned && t.not_tuned_reason.is_some(), "{}", r.solver);
            continue;
        }
        assert!(r.tuned, "{}", r.solver);
        // Five grid points, plus two beyond the edge when the first choice sat at one.
        let first = bench_suite::runner::tune::select(&t.validation_objectives[..5], 2);
        let first_edge = match first {
            0 if t.validation_objectives[0].is_some() => Some("low"),
            4 if t.validation_objectives[4].is_some() => Some("high"),
            _ => None,
        };
        assert_eq!(t.extended.as_deref(), first_edge, "{}", r.solver);
        let n = 5 + if first_edge.is_some() { 2 } else { 0 };
        assert_eq!(t.grid.len(), n, "{}", r.solver);
        assert_eq!(t.validation_objectives.len(), n);
        assert_eq!(t.scale_factors.len(), n);
        assert_eq!(t.candidate_status.len(), n);
        // The extension continues the grid's log spacing beyond the edge.
        match first_edge {
            Some("low") => assert!((t.scale_factors[6] - 0.01).abs() < 1e-12),
            Some(_) => assert!((t.scale_factors[6] - 100.0).abs() < 1e-9),
            None => {}
        }
        // `at_edge` flags a final choice at the smallest / largest factor tried.
        let f = &t.scale_factors;
        let c = f[t.chosen_index];
        let finite = t.validation_objectives[t.chosen_index].is_some();
        let lo = f.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = f.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let want = match () {
            _ if !finite => None,
            _ if c == lo => Some("low"),
            _ if c == hi => Some("high"),
            _ => None,
        };
        assert_eq!(t.at_edge.as_deref(), want, "{}", r.solver);
        assert_eq!(t.validation_fraction, 0.2);
        // The chosen values are the grid point with the lowest finite validation
        // objective, and the reported run used them.
        let best = t
            .validation_objectives
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i, v)))
            .min_by(|x, y| x.1.total_cmp(&y.1));
        if let Some((i, _)) = best {
            assert_eq!(t.chosen_index, i, "{}", r.solver);
        }
        assert_eq!(t.chosen, t.grid[t.chosen_index]);
        let hp = serde_json::to_value(&r.hyperparameters).unwrap();
        for (ptr, v) in &t.chosen {
            let got = hp.pointer(ptr).and_then(Value::as_f64).unwrap();
            assert!(
                (got - v).abs() <= 1e-12 * v.abs(),
                "{} {ptr}: {got} vs {v}",
                r.solver
            );
        }
        // The middle grid point is the documented default.
        let mid = &t.grid[2];
        assert!(t.scale_factors[2] == 1.0 && mid.len() == decl.tune.len());
        // Cost: every candidate (five, or seven after an extension) runs one Adam epoch
        // over 80% of the training set; an epoch is 2 data passes (a forward and a
        // backward pass per sample).
        if r.solver == "adam" {
            let k = n as f64;
            assert!(
                t.data_passes > k * 0.8 * 2.0 * 0.99 && t.data_passes < k * 0.8 * 2.0 * 1.5,
                "{}",
                t.data_passes
            );
            assert!(t.wall_time_s > 0.0 && t.solver_time_s > 0.0);
        }
    }
    // Taylor ADMM trains a hinge output on this cross-entropy problem: marked, unranked.
    let taylor = runs.iter().find(|r| r.solver == "admm-taylor").unwrap();
    assert!(
        taylor
            .trained_objective
            .as_deref()
            .unwrap()
            .contains("hinge")
    );
    assert!(
        runs.iter()
            .filter(|r| r.solver != "admm-taylor")
            .all(|r| r.trained_objective.is_none())
    );
    let report = std::fs::read_to_string(&out.outputs.report_md).unwrap();
    assert!(
        report.contains("time incl. tuning (s) | passes incl. tuning"),
        "{report}"
    );
    assert!(
        report.contains("Chosen hyperparameters (per seed"),
        "{report}"
    );
    // Every choice left at an edge is flagged in the report.
    for r in runs {
        if let Some(e) = r.tuning.as_ref().and_then(|t| t.at_edge.as_deref()) {
            assert!(
                report.contains(&format!("(at {e} edge: not bracketed)")),
                "{}",
                r.solver
            );
        }
    }
    assert!(report.contains("| admm-taylor |") && report.contains("† other objective"));
    let profile = &out.outputs.profiles[0].profile;
    assert_eq!(profile.excluded, vec!["admm-taylor".to_string()]);
    assert!(!profile.solvers.contains(&"admm-taylor".to_string()));
}

#[test]
fn default_suite_runs_three_seeds_with_intervals_profile_and_time_to_target() {
    // No flag: the quick suite, 3 seeds.
    let plan = bench_suite::runner::plan(&CompareArgs::default(), &registry(), &solver_registry())
        .unwrap();
    assert_eq!(plan.seeds, vec![0, 1, 2]);
    assert!(plan.problems.iter().all(|p| p.spec.quick));
    // The same report machinery on a small slice (no --seeds: the default 3).
    let root = common::temp_dir("compare-seeds");
    let a = args(
        &[
            "--problems",
            "spirals,nmf-spectrogram-kl",
            "--solvers",
            "adam,sgd-momentum,nmf-mm,nmf-me",
            "--epochs",
            "2",
            "--time-budget",
            "0",
        ],
        &root,
    );
    let out = run(&a).unwrap();
    let runs = &out.results.runs;
    assert_eq!(runs.len(), 4 * 3);
    for (p, s) in [("spirals", "adam"), ("nmf-spectrogram-kl", "nmf-me")] {
        let mut seeds: Vec<u64> = runs
            .iter()
            .filter(|r| r.problem == p && r.solver == s)
            .map(|r| r.seed)
            .collect();
        seeds.sort_unstable();
        assert_eq!(seeds, vec![0, 1, 2], "{p} {s}");
    }
    let report = std::fs::read_to_string(&out.outputs.report_md).unwrap();
    assert!(
        report.contains("75.00% interval for the median"),
        "{report}"
    );
    assert!(report.contains("## Time to target (s)"));
    assert!(
        report.contains("| solver | spirals | nmf-spectrogram-kl |"),
        "{report}"
    );
    // Every row of the spirals table has intervals `m [lo, hi]` on the objective.
    let adam_row = report
        .lines()
        .find(|l| l.starts_with("| adam | budget"))
        .unwrap();
    assert!(adam_row.matches(" [").count() >= 3, "{adam_row}");
    let labels: Vec<&str> = out
        .outputs
        .profiles
        .iter()
        .map(|p| p.profile.label.as_str())
        .collect();
    assert_eq!(labels, ["network", "nmf"]);
    for p in &out.outputs.profiles {
        assert_eq!(p.profile.instances.len(), 3);
        let svg = std::fs::read_to_string(out.dir.join(&p.relative_path)).unwrap();
        assert!(svg.contains("<svg") && svg.contains("performance profile"));
        assert!(report.contains(&p.relative_path.to_string_lossy().replace('\\', "/")));
        // Some solver is fastest on every instance.
        let best_at_1: f64 = (0..p.profile.solvers.len())
            .map(|m| p.profile.rho(m, 1.0))
            .sum();
        assert!(best_at_1 >= 1.0 - 1e-12, "{best_at_1}");
    }
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
            "--seeds",
            "1",
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

#[test]
fn eval_every_records_the_same_values_at_the_grid_and_the_end() {
    // Full-batch GD on spirals: 2 data passes per step; 11 passes = 6 steps (the check
    // before step 6 sees 10 passes). Every 4 passes: records at steps 2, 4 and the
    // last step 6, with the values of the every-step run.
    let run_it = |extra: &[&str], name: &str| {
        let root = common::temp_dir(name);
        let mut a = vec![
            "--problems",
            "spirals",
            "--solvers",
            "gd",
            "--seeds",
            "1",
            "--epochs",
            "11",
            "--time-budget",
            "0",
        ];
        a.extend_from_slice(extra);
        let out = run(&args(&a, &root)).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        out.results
    };
    let dense = run_it(&[], "eval-every-dense");
    let sparse = run_it(&["--eval-every", "4"], "eval-every-sparse");
    assert_eq!(dense.metadata.eval_every_passes, None);
    assert_eq!(sparse.metadata.eval_every_passes, Some(4.0));
    validate_results(&serde_json::to_value(&sparse).unwrap()).unwrap();
    let (d, s) = (&dense.runs[0].trace, &sparse.runs[0].trace);
    let its: Vec<u64> = s.iter().map(|r| r.iteration).collect();
    assert_eq!(its, vec![0, 2, 4, 6]);
    assert_eq!(d.len(), 7);
    for r in s {
        let mut want = d[r.iteration as usize].clone();
        want.wall_time_s = r.wall_time_s;
        assert_eq!(r, &want);
    }
    assert_eq!(dense.runs[0].status, sparse.runs[0].status);
    let bad = args(&["--eval-every", "0"], Path::new("/nonexistent"));
    let e = run(&bad).unwrap_err().to_string();
    assert!(e.contains("eval-every"), "{e}");
}
