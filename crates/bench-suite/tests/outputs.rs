//! Results schema, report, plots and output directories.

mod common;

use std::collections::BTreeMap;

use bench_suite::outdir::{create_run_dir, create_run_dir_at, timestamp_label, write_atomic};
use bench_suite::report::{format_summary_table, render_report, write_outputs};
use bench_suite::results::{
    BudgetSpec, ResultsFile, RunMetadata, RunResult, RunStatus, SCHEMA_VERSION, TraceRecord,
    validate_results,
};
use bench_suite::{BenchError, analysis};
use common::temp_dir;
use serde_json::json;

fn record(it: u64, epochs: f64, t: f64, obj: f64, acc: Option<f64>) -> TraceRecord {
    TraceRecord {
        iteration: it,
        epochs,
        samples_seen: Some((epochs * 1438.0) as u64),
        wall_time_s: t,
        objective: obj,
        surrogate: Some(obj * 1.1),
        train_accuracy: acc,
        test_objective: Some(obj * 1.2),
        test_accuracy: acc,
        forward: it * 10,
        backward: it * 10,
        inner_solves: it,
        extras: BTreeMap::from([("step".to_string(), 0.1)]),
    }
}

fn run(solver: &str, seed: u64, objs: &[f64], dt: f64, status: RunStatus) -> RunResult {
    RunResult {
        problem: "digits-mlp".into(),
        solver: solver.into(),
        seed,
        status,
        trace: objs
            .iter()
            .enumerate()
            .map(|(i, &o)| {
                record(
                    i as u64,
                    i as f64,
                    i as f64 * dt,
                    o,
                    Some(0.5 + 0.04 * i as f64),
                )
            })
            .collect(),
        peak_memory_bytes: Some(1_500_000 + seed),
        total_wall_time_s: objs.len() as f64 * dt * 1.5,
        hyperparameters: BTreeMap::from([("lr".to_string(), json!(0.01))]),
        tuned: false,
        tuning: None,
        trained_objective: None,
        classification: None,
    }
}

fn example() -> ResultsFile {
    let budget = || RunStatus::BudgetExhausted {
        which: Some("epochs".into()),
    };
    let mut nmf = run(
        "mu",
        0,
        &[10.0, 5.0, 2.0],
        0.01,
        RunStatus::Completed {
            reason: Some("tolerance".into()),
        },
    );
    nmf.problem = "nmf-spectrogram-is".into();
    for r in &mut nmf.trace {
        r.test_accuracy = None;
        r.train_accuracy = None;
    }
    ResultsFile {
        schema_version: SCHEMA_VERSION,
        metadata: RunMetadata {
            strata_version: "0.1.0".into(),
            git_commit: Some("abc123".into()),
            dtype: "f32".into(),
            threads: 1,
            seeds: vec![0, 1],
            budget: BudgetSpec {
                max_epochs: Some(5.0),
                max_wall_time_s: None,
                max_iterations: None,
            },
            command_line: vec!["strata-compare".into(), "--seeds".into(), "2".into()],
            started_unix_s: 1.7e9,
            memory_method: "counting_allocator".into(),
            problem_budgets: Default::default(),
            ranks: 1,
            eval_every_passes: None,
        },
        runs: vec![
            run("adam", 0, &[2.3, 1.0, 0.5, 0.3, 0.2], 0.1, budget()),
            run("adam", 1, &[2.3, 1.1, 0.6, 0.35, 0.25], 0.1, budget()),
            run(
                "layerwise-mm",
                0,
                &[2.3, 0.8, 0.25, 0.1, 0.05],
                0.3,
                budget(),
            ),
            run(
                "layerwise-mm",
                1,
                &[2.3, 0.7, f64::NAN],
                0.3,
                RunStatus::Diverged {
                    reason: "objective NaN".into(),
                },
            ),
            RunResult {
                trace: vec![],
                peak_memory_bytes: None,
                ..run(
                    "admm",
                    0,
                    &[],
                    0.1,
                    RunStatus::Skipped {
                        reason: "not applicable".into(),
                    },
                )
            },
            nmf,
        ],
    }
}

#[test]
fn example_results_validate_and_round_trip() {
    let r = example();
    let text = r.to_json_string().unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    validate_results(&value).unwrap();
    // The NaN objective is written as null and read back as NaN.
    assert!(value["runs"][3]["trace"][2]["objective"].is_null());
    assert_eq!(value["runs"][0]["status"]["kind"], "budget_exhausted");
    let back = ResultsFile::from_json_str(&text).unwrap();
    assert!(back.runs[3].trace[2].objective.is_nan());
    assert_eq!(back.runs[0], r.runs[0]);
    assert_eq!(back.metadata, r.metadata);
}

fn violation(mutate: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v = serde_json::to_value(example()).unwrap();
    mutate(&mut v);
    match validate_results(&v).unwrap_err() {
        BenchError::Schema { path, message } => format!("{path}: {message}"),
        other => panic!("expected a schema error, got {other}"),
    }
}

#[test]
fn validator_names_the_offending_field() {
    let e = violation(|v| v["schema_version"] = json!(1));
    assert!(e.starts_with("/schema_version"), "{e}");
    let e = violation(|v| {
        v["metadata"].as_object_mut().unwrap().remove("dtype");
    });
    assert!(e.starts_with("/metadata/dtype: missing"), "{e}");
    let e = violation(|v| v["metadata"]["dtype"] = json!("f16"));
    assert!(e.starts_with("/metadata/dtype"), "{e}");
    let e = violation(|v| v["metadata"]["eval_every_passes"] = json!(0.0));
    assert!(e.starts_with("/metadata/eval_every_passes"), "{e}");
    let e = violation(|v| v["metadata"]["eval_every_passes"] = json!("often"));
    assert!(e.starts_with("/metadata/eval_every_passes"), "{e}");
    let e = violation(|v| v["runs"][1]["trace"][2]["forward"] = json!(-3));
    assert!(e.starts_with("/runs/1/trace/2/forward"), "{e}");
    let e = violation(|v| v["runs"][0]["trace"][1]["objective"] = json!("low"));
    assert!(e.starts_with("/runs/0/trace/1/objective"), "{e}");
    let e = violation(|v| v["runs"][0]["status"] = json!({"kind": "exploded"}));
    assert!(e.contains("unknown status `exploded`"), "{e}");
    let e = violation(|v| v["runs"][3]["status"] = json!({"kind": "diverged"}));
    assert!(e.starts_with("/runs/3/status/reason"), "{e}");
    let e = violation(|v| v["runs"][0]["trace"][3]["iteration"] = json!(1));
    assert!(e.contains("iterations must increase"), "{e}");
    let e = violation(|v| v["runs"][2]["tuned"] = json!("no"));
    assert!(e.starts_with("/runs/2/tuned"), "{e}");
    let e = violation(|v| v["runs"][2]["trace"][0]["extras"] = json!({"rho": "big"}));
    assert!(e.starts_with("/runs/2/trace/0/extras/rho"), "{e}");
    // A tuned run must record its search.
    let e = violation(|v| v["runs"][2]["tuned"] = json!(true));
    assert!(e.starts_with("/runs/2/tuning"), "{e}");
    let e = violation(|v| v["runs"][2]["trained_objective"] = json!(3));
    assert!(e.starts_with("/runs/2/trained_objective"), "{e}");
    // The edge flags of a search are "low" or "high".
    let search = |edge: serde_json::Value| {
        json!({
            "parameters": ["/lr"], "scale_factors": [0.1, 1.0, 10.0],
            "grid": [{"/lr": 1e-4}, {"/lr": 1e-3}, {"/lr": 1e-2}],
            "validation_objectives": [1.0, 0.5, 0.2], "candidate_status": ["budget", "budget", "budget"],
            "chosen_index": 2, "chosen": {"/lr": 1e-2}, "validation_fraction": 0.2,
            "selection": "lowest", "wall_time_s": 1.0, "solver_time_s": 1.0,
            "data_passes": 3.0, "at_edge": edge
        })
    };
    let mut ok = serde_json::to_value(example()).unwrap();
    ok["runs"][2]["tuning"] = search(json!("high"));
    validate_results(&ok).unwrap();
    let e = violation(|v| v["runs"][2]["tuning"] = search(json!("middle")));
    assert!(e.starts_with("/runs/2/tuning/at_edge"), "{e}");
}

/// A run's classification metrics and the metadata's rank count are checked like the
/// rest: a ragged confusion matrix (the report and the heatmaps index it as square), a
/// foreign `set` (written into the heatmap's SVG), counts or accuracies out of range,
/// and zero ranks name their field.
#[test]
fn validator_checks_classification_metrics_and_ranks() {
    let metrics = json!({
        "set": "test", "confusion": [[3, 1], [0, 4]], "per_class_accuracy": [0.75, 1.0]
    });
    let mut ok = serde_json::to_value(example()).unwrap();
    ok["runs"][0]["classification"] = metrics.clone();
    ok["metadata"]["ranks"] = json!(2);
    validate_results(&ok).unwrap();
    type Edit<'a> = &'a dyn Fn(&mut serde_json::Value);
    let cases: [(Edit, &str); 7] = [
        (
            &|c| c["confusion"] = json!([[3, 1], [0]]),
            "/runs/0/classification/confusion/1: has 1 entries",
        ),
        (
            &|c| c["confusion"] = json!([]),
            "/runs/0/classification/confusion: must have at least one class",
        ),
        (
            &|c| c["confusion"][0][1] = json!(-1),
            "/runs/0/classification/confusion/0/1: must be a nonnegative integer",
        ),
        (
            &|c| c["confusion"][0][0] = json!(u64::MAX),
            "/runs/0/classification/confusion/0/0: the counts sum beyond 2^53",
        ),
        (
            &|c| c["set"] = json!("<script>"),
            "/runs/0/classification/set",
        ),
        (
            &|c| c["per_class_accuracy"] = json!([0.5]),
            "/runs/0/classification/per_class_accuracy: has 1 entries for 2 classes",
        ),
        (
            &|c| c["per_class_accuracy"][1] = json!(1.5),
            "/runs/0/classification/per_class_accuracy/1",
        ),
    ];
    for (edit, want) in cases {
        let e = violation(|v| {
            v["runs"][0]["classification"] = metrics.clone();
            edit(&mut v["runs"][0]["classification"]);
        });
        assert!(e.starts_with(want), "{e}");
    }
    let e = violation(|v| v["metadata"]["ranks"] = json!(0));
    assert!(e.starts_with("/metadata/ranks: must be at least 1"), "{e}");
    // Built by hand (public fields), a ragged matrix renders without a panic.
    let m = bench_suite::classification::ClassificationMetrics {
        set: "test".into(),
        confusion: vec![vec![u64::MAX, 1], vec![]],
        per_class_accuracy: vec![None],
    };
    assert_eq!(m.accuracy(), Some(1.0));
    assert!(bench_suite::classification::confusion_svg("t", &m).ends_with("</svg>\n"));
}

#[test]
fn analysis_target_and_aggregates() {
    let r = example();
    let summary = analysis::summarize(&r, analysis::TARGET_TAU);
    assert_eq!(summary.len(), 2);
    let p = &summary[0];
    assert_eq!(p.problem, "digits-mlp");
    // Per-seed targets. Seed 0: f_best = 0.05 (layerwise-mm), f_0 = 2.3 -> 0.05 + 0.01
    // * 2.25. Seed 1: layerwise-mm diverged (no finite final), f_best = 0.25 (adam) ->
    // 0.25 + 0.01 * 2.05.
    assert!((p.targets[&0] - 0.0725).abs() < 1e-12, "{:?}", p.targets);
    assert!((p.targets[&1] - 0.2705).abs() < 1e-12, "{:?}", p.targets);
    let adam = &p.solvers[0];
    assert_eq!(adam.solver, "adam");
    assert_eq!(adam.status, "budget");
    let f = adam.final_objective.unwrap();
    assert_eq!((f.median, f.lo, f.hi, f.n), (0.225, 0.2, 0.25, 2));
    assert_eq!(f.coverage, 0.5); // min-max of 2 values: 1 - 2^(1-2)
    // Seed 1 reaches its target at record 4 (0.25 <= 0.2705), seed 0 never: median of
    // {0.4, inf} is infinite, 1 of 2 reached.
    assert_eq!((adam.reached_target, adam.target_runs), (1, 2));
    let t = adam.time_to_target_s.unwrap();
    assert!(t.median.is_infinite() && (t.lo - 0.4).abs() < 1e-12);
    assert_eq!(adam.time_per_epoch_s.unwrap().median, 0.1);
    assert_eq!(adam.peak_memory_bytes, Some(1_500_001));
    assert!((adam.test_accuracy.unwrap().median - 0.66).abs() < 1e-12);
    // Test loss = 1.2 x objective in the example: median of 0.24 and 0.30.
    assert!((adam.test_objective.unwrap().median - 0.27).abs() < 1e-12);
    let mm = &p.solvers[1];
    assert_eq!(mm.status, "1 budget, 1 diverged");
    assert_eq!(mm.final_objective.unwrap().median, 0.05);
    assert_eq!((mm.reached_target, mm.target_runs), (1, 2));
    assert_eq!(mm.epochs_to_target.unwrap().lo, 4.0);
    assert!((mm.time_to_target_s.unwrap().lo - 1.2).abs() < 1e-12);
    let admm = &p.solvers[2];
    assert_eq!(
        (admm.status.as_str(), admm.final_objective, admm.target_runs),
        ("skipped", None, 0)
    );
    assert_eq!(analysis::fmt_sig(Some(0.0725), 4), "0.07250");
    assert_eq!(analysis::fmt_sig(Some(12345.678), 4), "12346");
    assert_eq!(analysis::fmt_sig(Some(1.5e-7), 4), "1.500e-7");
    assert_eq!(analysis::fmt_sig(Some(2.0e6), 3), "2.00e6");
    assert_eq!(analysis::fmt_bytes(Some(1_500_000)), "1.43 MiB");
    assert_eq!(analysis::fmt_bytes(Some(812)), "812 B");
}

#[test]
fn report_plots_and_results_are_written() {
    let root = temp_dir("outputs");
    let dir = create_run_dir(&root, "compare").unwrap();
    let r = example();
    let out = write_outputs(&dir, &r).unwrap();
    let json = std::fs::read_to_string(&out.results_json).unwrap();
    validate_results(&serde_json::from_str(&json).unwrap()).unwrap();
    // digits-mlp: 3 plots; nmf: no accuracy -> 2 plots.
    assert_eq!(out.plots.len(), 5);
    let report = std::fs::read_to_string(&out.report_md).unwrap();
    assert!(report.contains("## digits-mlp"));
    assert!(report.contains("## nmf-spectrogram-is"));
    assert!(
        report.contains(
            "| adam | budget | 0.2250 [0.2000, 0.2500] | 0.2700 [0.2400, 0.3000] | 66.0% | inf [0.400, inf] (1/2) |"
        ),
        "{report}"
    );
    assert!(
        report.contains("| layerwise-mm | 1 budget, 1 diverged | 0.05000 |"),
        "{report}"
    );
    // Sorted by median final objective: layerwise-mm (0.05) before adam (0.225), the
    // skipped run (no objective) last.
    let section = &report[report.find("## digits-mlp").unwrap()..];
    let pos = |s: &str| section.find(s).unwrap();
    assert!(
        pos("| layerwise-mm |") < pos("| adam | budget")
            && pos("| adam | budget") < pos("| admm |")
    );
    assert!(report.contains("inf [1.20, inf] (1/2)"), "{report}");
    assert!(
        report.contains("| admm | skipped | - | - | - | - | - | - | - |"),
        "{report}"
    );
    // Intervals are explained with their real coverage (2 seeds: 50%).
    assert!(
        report.contains("50.00% interval for the median"),
        "{report}"
    );
    assert!(report.contains("## Time to target (s)"), "{report}");
    assert!(report.contains("## Performance profiles"), "{report}");
    assert_eq!(out.profiles.len(), 2); // digits (network) and the NMF problem
    let prof = std::fs::read_to_string(dir.join(&out.profiles[0].relative_path)).unwrap();
    assert!(prof.contains("<svg") && prof.contains("adam") && !prof.contains("NaN"));
    assert!(
        report.contains("![training objective vs epochs](plots/digits-mlp-objective-epochs.svg)")
    );
    for p in &out.plots {
        let svg = std::fs::read_to_string(dir.join(&p.relative_path)).unwrap();
        // plotters puts text content on its own line: normalise whitespace.
        let svg = svg.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        // Balanced text elements (XML-ish well-formedness of what we rely on).
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        assert!(svg.contains("<text"), "SVG text elements");
        if p.problem == "digits-mlp" {
            assert!(
                svg.contains("> adam </text>") && svg.contains("> layerwise-mm </text>"),
                "legend"
            );
        } else {
            assert!(svg.contains("> mu </text>"));
        }
        assert!(
            !svg.contains("NaN"),
            "no NaN coordinates in {:?}",
            p.relative_path
        );
    }
    // No temporary files left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
    let table = format_summary_table(&r);
    assert!(table.lines().count() >= 6);
    assert!(table.contains("layerwise-mm") && table.contains("0.05000"));
    assert!(
        render_report(&r, &[], &[]).contains("Target objective: seed 0: 0.07250; seed 1: 0.2705")
    );
}

#[test]
fn collected_metadata_validates() {
    let meta = RunMetadata::collect(
        bench_suite::problems::Dtype::F64,
        2,
        vec![0, 1, 2],
        BudgetSpec::default(),
    );
    assert_eq!(meta.dtype, "f64");
    assert_eq!(meta.strata_version, env!("CARGO_PKG_VERSION"));
    assert!(!meta.command_line.is_empty());
    assert!(meta.started_unix_s > 1.6e9);
    // The tests run inside the git work tree, but git may be absent: only check shape.
    if let Some(c) = &meta.git_commit {
        assert!(c.len() >= 7 && c.chars().all(|ch| ch.is_ascii_hexdigit()));
    }
    let mut file = ResultsFile::new(meta);
    file.runs.push(RunResult::skipped(
        "mnist-mlp",
        "adam",
        0,
        "data file missing: $STRATA_MNIST_DIR",
    ));
    validate_results(&serde_json::to_value(&file).unwrap()).unwrap();
}

#[test]
fn every_run_gets_a_new_directory() {
    let root = temp_dir("unique");
    let a = create_run_dir_at(&root, "compare", 1_700_000_000).unwrap();
    let b = create_run_dir_at(&root, "compare", 1_700_000_000).unwrap();
    assert_ne!(a, b);
    assert_eq!(timestamp_label(1_700_000_000), "20231114-221320");
    assert!(a.ends_with("compare-20231114-221320-1"));
    assert!(b.ends_with("compare-20231114-221320-2"));
    write_atomic(&a.join("x.txt"), b"first").unwrap();
    write_atomic(&a.join("x.txt"), b"second").unwrap();
    assert_eq!(std::fs::read_to_string(a.join("x.txt")).unwrap(), "second");
    let c = create_run_dir(&root, "compare").unwrap();
    let d = create_run_dir(&root, "compare").unwrap();
    assert_ne!(c, d);
    assert!(c.is_dir() && d.is_dir());
    assert!(create_run_dir(&root, "a/b").is_err());
}

#[test]
fn monotone_methods_that_rise_are_flagged_and_others_are_not() {
    let mut r = example();
    // block-mm promises a monotone decrease (runner::tune::DECLARATIONS); adam does not.
    let mut mm = run(
        "block-mm",
        0,
        &[2.3, 1.0, 1.0 + 1e-6, 0.5],
        0.1,
        RunStatus::Completed { reason: None },
    );
    let flat = run(
        "bcd",
        0,
        &[2.3, 1.0, 1.0 + 1e-11, 0.5],
        0.1,
        RunStatus::Completed { reason: None },
    );
    let adam = run(
        "adam",
        2,
        &[2.3, 1.0, 1.5, 0.5],
        0.1,
        RunStatus::Completed { reason: None },
    );
    mm.seed = 1;
    r.runs.extend([mm, flat, adam]);
    let s = analysis::summarize(&r, analysis::TARGET_TAU);
    let row = |n: &str| s[0].solvers.iter().find(|x| x.solver == n).unwrap().clone();
    let v = row("block-mm").monotone_violations;
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].0, v[0].1), (1, 1));
    assert!((v[0].2 - 1e-6).abs() < 1e-12);
    assert!(
        row("bcd").monotone_violations.is_empty(),
        "1e-11 relative is within 1e-10"
    );
    assert!(
        row("adam").monotone_violations.is_empty(),
        "adam promises nothing"
    );
    let report = render_report(&r, &[], &[]);
    assert!(
        report.contains("| block-mm | completed ⚠ objective rose |"),
        "{report}"
    );
    assert!(report.contains("⚠ `block-mm` promises a monotone decrease but its true objective rose: seed 1: 1 increase(s), largest 1.00e-6 relative"), "{report}");
    assert!(!report.contains("`adam` promises"));
    // The f32 scale note appears in f32 runs only.
    r.metadata.dtype = "f64".into();
    assert!(!render_report(&r, &[], &[]).contains("This run is in f32"));
    r.metadata.dtype = "f32".into();
    let report = render_report(&r, &[], &[]);
    assert!(
        report.contains("This run is in f32 (machine epsilon 1.192e-7)"),
        "{report}"
    );
}

#[test]
fn performance_profile_ratios_of_the_example() {
    let r = example();
    let profiles = bench_suite::profile::profiles(&r, analysis::TARGET_TAU);
    let net = profiles.iter().find(|p| p.label == "network").unwrap();
    assert_eq!(net.solvers, ["adam", "layerwise-mm", "admm"]);
    assert_eq!(net.instances.len(), 2);
    // Seed 0: only layerwise-mm reaches (1.2 s); seed 1: only adam (0.4 s); admm skipped.
    assert_eq!(net.ratios[0], [f64::INFINITY, 1.0]);
    assert_eq!(net.ratios[1], [1.0, f64::INFINITY]);
    assert!(net.ratios[2].iter().all(|x| x.is_infinite()));
    assert_eq!(net.rho(0, 1.0), 0.5);
    assert_eq!(net.rho(2, 1e9), 0.0);
    let svg = bench_suite::profile::render_profile(net).unwrap();
    assert!(svg.contains("layerwise-mm") && !svg.contains("NaN"));
}
