//! Statuses through the runner: MAC on spirals (which rose from 1.22 to 262 in round 1
//! and was reported `budget`) is `diverged` exactly when it rises past 10x its start, and the
//! lifted network on the tanh teacher-student problem is `skipped`, "not applicable".

mod common;

use std::path::Path;

use bench_suite::results::RunStatus;
use bench_suite::runner::{CompareArgs, run};
use clap::Parser;

fn args(extra: &[&str], out: &Path) -> CompareArgs {
    let mut v = vec!["strata-compare", "--no-progress", "--out"];
    let out = out.to_str().unwrap().to_string();
    v.push(&out);
    v.extend_from_slice(extra);
    CompareArgs::parse_from(v)
}

#[test]
fn mac_on_spirals_is_diverged_iff_it_rises_past_10x_its_start() {
    // Round 1 (no penalty): MAC rose from 1.2194 to 262 and was reported `budget`; with
    // the 10x rule it stopped `diverged` at 33.87 (iteration 2). Since spirals carries
    // the L2 penalty 1e-4 (problems::CLASSIFICATION_L2) the start is 1.2324 and MAC no
    // longer rises on seed 0; what must hold either way is the rule itself.
    let root = common::temp_dir("status-mac-spirals");
    let a = args(
        &[
            "--problems",
            "spirals",
            "--solvers",
            "mac",
            "--seeds",
            "1",
            "--time-budget",
            "0",
        ],
        &root,
    );
    let out = run(&a).unwrap();
    let r = &out.results.runs[0];
    let f0 = r.trace[0].objective;
    let peak = r.trace.iter().map(|t| t.objective).fold(f64::MIN, f64::max);
    eprintln!(
        "MAC spirals: f0 {f0}, peak {peak}, status {:?}, {} records",
        r.status,
        r.trace.len()
    );
    assert!((f0 - 1.2324).abs() < 1e-3, "{f0}");
    let diverged = matches!(r.status, RunStatus::Diverged { .. });
    assert_eq!(diverged, peak > 10.0 * f0, "{:?}, peak {peak}", r.status);
    if diverged {
        // The run stopped at the first record past the limit.
        assert!(
            r.trace[..r.trace.len() - 1]
                .iter()
                .all(|t| t.objective <= 10.0 * f0)
        );
    }
}

#[test]
fn lifted_on_tanh_layers_is_skipped_not_applicable() {
    let root = common::temp_dir("status-lifted-tanh");
    let a = args(
        &[
            "--problems",
            "teacher-student",
            "--solvers",
            "lifted-fenchel",
            "--seeds",
            "1",
            "--epochs",
            "1",
        ],
        &root,
    );
    let out = run(&a).unwrap();
    let r = &out.results.runs[0];
    let RunStatus::Skipped { reason } = &r.status else {
        panic!("{:?}", r.status)
    };
    assert!(
        reason.starts_with("not applicable: Lifted: activation tanh"),
        "{reason}"
    );
}
