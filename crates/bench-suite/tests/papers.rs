//! The papers suite: the up-front memory estimate bounds the measured peak, a run over
//! the limit is refused with a typed error before it allocates, and the plan's setups.

use bench_suite::BenchError;
use bench_suite::memory::CountingAllocator;
use bench_suite::papers::{
    check_memory, estimate_peak_bytes, paper_setups, papers_plan, papers_solver_registry,
};
use bench_suite::problems::{
    DataSource, Dtype, HiddenActivation, LossSpec, ProblemKind, ProblemSpec, SolverFamily,
};
use bench_suite::results::RunStatus;
use bench_suite::runner::{CompareArgs, run, run_with};
use clap::Parser;

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("strata-papers-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One test (runs are sequential, so each peak is the run's own): every method with
/// auxiliary variables, the full-batch baselines and the certified solvers, for two
/// iterations on two shapes: blobs 20-96-96-10 (the hidden layers dominate) and blobs
/// 300-8-10 (the input dominates, as in the `certified` setup's 784-128-10, where block
/// MM's input-sized buffers once exceeded the estimate); the estimate must bound the
/// measured peak.
#[test]
fn estimate_bounds_the_measured_peak_of_every_method() {
    let names = [
        "dladmm",
        "admm-taylor",
        "bcd",
        "mac",
        "lifted-fenchel",
        "gd",
        "adam-full",
        "lbfgs",
        "proxprop",
        "adam-b500",
        "safe-adam",
        "safe-layerwise",
        "block-mm",
        "block-mm-safeguarded",
        "block-mm-chord",
        "block-mm-taylor",
        "block-mm-ray-top",
        "last-layer-mm",
    ];
    for widths in [vec![20, 96, 96, 10], vec![300, 8, 10]] {
        check_estimates(&widths, &names);
    }
}

/// Runs `names` on blobs of `widths` (3,000 training, 500 test samples) for two
/// iterations and checks each run's measured peak against its estimate.
fn check_estimates(widths: &[usize], names: &[&str]) {
    let (train, test) = (3000, 500);
    let spec = ProblemSpec {
        name: "blobs-mem".into(),
        description: "memory check".into(),
        kind: ProblemKind::Network {
            widths: widths.to_vec(),
            hidden: HiddenActivation::Relu,
            loss: LossSpec::SoftmaxCrossEntropy,
            l2: None,
            init: Default::default(),
        },
        source: DataSource::Blobs {
            train,
            test,
            dim: widths[0],
            classes: 10,
            spread: 3.0,
            std: 1.0,
        },
        families: SolverFamily::NETWORK.to_vec(),
        quick: false,
    };
    let out = temp_dir(&format!("mem-{}", widths[0]));
    let args = CompareArgs::parse_from([
        "strata-compare",
        "--no-progress",
        "--problems",
        "blobs-mem",
        "--solvers",
        &names.join(","),
        "--epochs",
        "2",
        "--time-budget",
        "0",
        "--seeds",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let res = run_with(&args, &[spec], &papers_solver_registry()).unwrap();
    assert_eq!(res.results.runs.len(), names.len());
    for r in &res.results.runs {
        assert!(
            !matches!(r.status, RunStatus::Failed { .. }),
            "{}: {:?}",
            r.solver,
            r.status
        );
        let peak = r.peak_memory_bytes.expect("counting allocator installed");
        let est = estimate_peak_bytes(&r.solver, widths, train, test, Dtype::F64);
        eprintln!(
            "{widths:?} {:<20} peak {peak:>10} estimate {est:>10}",
            r.solver
        );
        assert!(
            peak <= est,
            "{widths:?} {}: measured {peak} > estimate {est}",
            r.solver
        );
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_run_over_the_limit_is_refused_with_a_typed_error() {
    // dlADMM at full scale, f64: several GiB of auxiliary variables.
    let widths = [784, 1000, 1000, 10];
    let est = estimate_peak_bytes("dladmm", &widths, 60_000, 10_000, Dtype::F64);
    assert!(est > 4 << 30 && est < 24 << 30, "{est}");
    let err =
        check_memory("dladmm", "p", &widths, 60_000, 10_000, Dtype::F64, 1 << 30).unwrap_err();
    assert!(matches!(err, BenchError::MemoryLimit { .. }));
    assert!(
        err.to_string().contains("exceeds the limit of 1.00 GiB"),
        "{err}"
    );
    assert!(check_memory("dladmm", "p", &widths, 60_000, 10_000, Dtype::F64, 24 << 30).is_ok());
    // Through the suite: a tiny limit refuses every run of the setup without running it.
    let args = CompareArgs::parse_from([
        "strata-compare",
        "--suite",
        "papers",
        "--problems",
        "papers-dladmm",
        "--memory-limit-gib",
        "0.001",
    ]);
    let (plan, refused) = papers_plan(&args, 1 << 20).unwrap();
    assert!(plan.problems.is_empty());
    assert_eq!(refused.len(), 5 + 4);
    for r in &refused {
        let RunStatus::Failed { error } = &r.status else {
            panic!("{:?}", r.status)
        };
        assert!(error.contains("estimated peak memory"), "{error}");
        assert!(r.trace.is_empty());
    }
}

#[test]
fn every_setup_solver_is_registered_and_unknown_suites_are_rejected() {
    let reg = papers_solver_registry();
    for s in paper_setups() {
        for n in s.paper_solvers.iter().chain(&s.equal_time_solvers) {
            assert!(reg.iter().any(|e| e.name == *n), "{n}");
        }
    }
    let args = CompareArgs::parse_from(["strata-compare", "--suite", "nope"]);
    let err = run(&args).unwrap_err();
    assert!(matches!(err, BenchError::UnknownName { .. }), "{err}");
    // Plan of one setup: the paper's iteration count, then equal time.
    let args = CompareArgs::parse_from([
        "strata-compare",
        "--suite",
        "papers",
        "--problems",
        "papers-lifted",
        "--time-budget",
        "5",
    ]);
    let (plan, refused) = papers_plan(&args, 24 << 30).unwrap();
    assert!(refused.is_empty());
    let names: Vec<&str> = plan.problems.iter().map(|p| p.spec.name.as_str()).collect();
    assert_eq!(names, ["papers-lifted", "papers-lifted-equal-time"]);
    assert_eq!(plan.problems[0].budget.max_iterations, Some(50));
    assert_eq!(plan.problems[1].budget.max_wall_time_s, Some(5.0));
    assert_eq!(plan.problems[1].budget.max_iterations, None);
    // Only one variant: `-paper-iterations` / `-equal-time` suffixes.
    for (sel, want) in [
        ("papers-bcd-paper-iterations", "papers-bcd"),
        ("papers-bcd-equal-time", "papers-bcd-equal-time"),
    ] {
        let args =
            CompareArgs::parse_from(["strata-compare", "--suite", "papers", "--problems", sel]);
        let (plan, _) = papers_plan(&args, 24 << 30).unwrap();
        let names: Vec<&str> = plan.problems.iter().map(|p| p.spec.name.as_str()).collect();
        assert_eq!(names, [want], "{sel}");
    }
}

/// `papers-bcd-squared` is the BCD setup with the code's squared loss on one-hot labels
/// (same network, weights, penalty and solvers), and selecting `papers-bcd` does not pick it.
#[test]
fn the_bcd_setup_has_a_squared_loss_variant_selected_by_its_own_name() {
    let setups = paper_setups();
    let find = |k: &str| setups.iter().find(|s| s.key == k).unwrap();
    let (ce, sq) = (find("bcd"), find("bcd-squared"));
    assert_eq!(ce.loss, LossSpec::SoftmaxCrossEntropy);
    assert_eq!(sq.loss, LossSpec::Mse);
    assert_eq!(
        (&sq.widths, sq.iterations, sq.l2),
        (&ce.widths, ce.iterations, ce.l2)
    );
    assert_eq!((sq.init, &sq.paper_solvers), (ce.init, &ce.paper_solvers));
    let plan_of = |sel: &str| {
        let args =
            CompareArgs::parse_from(["strata-compare", "--suite", "papers", "--problems", sel]);
        papers_plan(&args, 24 << 30).unwrap().0
    };
    let names = |sel: &str| -> Vec<String> {
        plan_of(sel)
            .problems
            .iter()
            .map(|p| p.spec.name.clone())
            .collect()
    };
    assert_eq!(names("papers-bcd"), ["papers-bcd", "papers-bcd-equal-time"]);
    assert_eq!(
        names("papers-bcd-squared"),
        ["papers-bcd-squared", "papers-bcd-squared-equal-time"]
    );
    let plan = plan_of("papers-bcd-squared-paper-iterations");
    let spec = &plan.problems[0].spec;
    let ProblemKind::Network { loss, l2, .. } = &spec.kind else {
        panic!("not a network problem");
    };
    assert_eq!((*loss, *l2), (LossSpec::Mse, Some(0.0)));
    assert!(
        spec.description.contains("squared error"),
        "{}",
        spec.description
    );
}

#[test]
fn the_default_memory_limit_never_exceeds_the_machines_memory() {
    let limit = bench_suite::papers::default_memory_limit_bytes();
    let constant = (bench_suite::papers::DEFAULT_MEMORY_LIMIT_GIB * (1u64 << 30) as f64) as u64;
    assert!(limit > 0 && limit <= constant, "limit {limit}");
    if let Ok(text) = std::fs::read_to_string("/proc/meminfo") {
        let kib: u64 = text
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .expect("MemTotal in /proc/meminfo");
        assert!(
            limit <= kib * 1024,
            "limit {limit} above MemTotal {kib} KiB"
        );
    }
}

/// `--suite papers --list` lists the papers setups (both variants' problem names, the
/// solvers of each, the objective and init) and the suite's own solvers, not the registry's
/// problems; plain `--list` does not list the setups; an unknown suite exits 2.
#[test]
fn list_with_the_papers_suite_lists_the_setups() {
    let bin = env!("CARGO_BIN_EXE_strata-compare");
    let out = std::process::Command::new(bin)
        .args(["--suite", "papers", "--list"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text, bench_suite::papers::papers_list_text());
    for s in paper_setups() {
        assert!(
            text.contains(&format!("papers-{} ", s.key)),
            "{}: {text}",
            s.key
        );
        let line = format!("paper iterations: {}", s.paper_solvers.join(", "));
        assert!(text.contains(&line), "{line}: {text}");
        let line = format!("equal time: {}", s.equal_time_solvers.join(", "));
        assert!(text.contains(&line), "{line}: {text}");
    }
    for name in [
        "adam-full",
        "adam-b500",
        "sgd-b500",
        "admm-taylor-paper",
        "Glorot-uniform weights, biases 0.1",
    ] {
        assert!(text.contains(name), "{name}: {text}");
    }
    assert!(!text.contains("digits-mlp"), "{text}");
    let plain = std::process::Command::new(bin)
        .arg("--list")
        .output()
        .unwrap();
    let plain = String::from_utf8(plain.stdout).unwrap();
    assert!(plain.contains("digits-mlp") && !plain.contains("papers-dladmm"));
    let bad = std::process::Command::new(bin)
        .args(["--suite", "nope", "--list"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8(bad.stderr)
            .unwrap()
            .contains("unknown suite `nope`")
    );
}
