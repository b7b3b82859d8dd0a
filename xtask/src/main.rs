//! `cargo xtask`: the project's task runner (the cargo-xtask pattern).
//!
//! It stays tiny and dependency-free: each task either runs cargo itself or forwards to
//! a release-built binary of `bench-suite`, so everything measured is an optimised build.
//!
//! - `cargo xtask compare [ARGS]`: solvers x problems x seeds; tables, JSON and plots.
//! - `cargo xtask nmf [ARGS]`: beta-NMF of a user's CSV matrix.
//! - `cargo xtask ci`: the workspace steps of `.ci/run` (tests, fmt, clippy); `.ci/run`
//!   also runs the release certified-MM test, the Python package and the MPI checks.

use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <compare|nmf|ci> [ARGS...]
  compare   run solvers x problems x seeds and write results.json, report.md and plots
            (pass --help after it for its options)
  nmf       factorise a nonnegative CSV matrix with beta-NMF (pass --help for options)
  ci        run the workspace tests, the rustfmt check and clippy (the Rust steps of
            .ci/run; CI also runs the release certified-MM test, Python and MPI)";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(task) = args.next() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest: Vec<String> = args.collect();
    match task.as_str() {
        "compare" => run_bench_bin("strata-compare", &rest),
        "nmf" => run_bench_bin("strata-nmf", &rest),
        "ci" => run_ci(),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("unknown task `{other}`\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()))
}

/// Builds and runs a `bench-suite` binary in release mode, forwarding the arguments.
fn run_bench_bin(bin: &str, args: &[String]) -> ExitCode {
    let status = cargo()
        .args([
            "run",
            "--quiet",
            "--release",
            "--package",
            "bench-suite",
            "--bin",
            bin,
            "--",
        ])
        .args(args)
        .status();
    exit_code(status)
}

/// The CI steps, in the order `.ci/run` runs them.
fn run_ci() -> ExitCode {
    let steps: [&[&str]; 3] = [
        &["test", "--workspace"],
        &["fmt", "--all", "--", "--check"],
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    ];
    for step in steps {
        eprintln!("xtask ci: cargo {}", step.join(" "));
        let code = exit_code(cargo().args(step).status());
        if code != ExitCode::SUCCESS {
            return code;
        }
    }
    ExitCode::SUCCESS
}

fn exit_code(status: std::io::Result<std::process::ExitStatus>) -> ExitCode {
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(s.code().map_or(1, |c| c.clamp(1, 255) as u8)),
        Err(e) => {
            eprintln!("xtask: could not run cargo: {e}");
            ExitCode::from(1)
        }
    }
}
