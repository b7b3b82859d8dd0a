//! `cargo xtask compare`: run solvers x problems x seeds under equal budgets and write
//! `results.json`, `report.md` and SVG plots into a new directory (see
//! `bench_suite::runner` and `cargo xtask compare --help`).
//!
//! Exit codes: 0 success (even if some runs diverged or failed: they are reported),
//! 2 bad arguments (unknown solver/problem names, invalid values), 1 other errors
//! (e.g. the output directory cannot be written), 3 every run failed (the results are
//! still written, so the errors can be read), 130 interrupted by Ctrl-C / SIGINT (the
//! partial run directory is removed).

use std::process::ExitCode;

use bench_suite::BenchError;
use bench_suite::memory::CountingAllocator;
use bench_suite::problems::registry;
use bench_suite::report::format_summary_table;
use bench_suite::runner::{CompareArgs, list_text, run, solver_registry};
use clap::Parser;

/// Counts heap bytes so each run's peak memory can be reported (runs are sequential).
#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

fn main() -> ExitCode {
    let args = CompareArgs::parse();
    if args.list {
        match args.suite.as_deref() {
            None => print!("{}", list_text(&registry(), &solver_registry())),
            Some("papers") => print!("{}", bench_suite::papers::papers_list_text()),
            Some(other) => {
                eprintln!("strata-compare: unknown suite `{other}` (valid: papers)");
                return ExitCode::from(2);
            }
        }
        return ExitCode::SUCCESS;
    }
    if let Err(e) = bench_suite::partial::install_interrupt_cleanup() {
        eprintln!("strata-compare: warning: {e}");
    }
    let start = std::time::Instant::now();
    let outcome = if args.distributed {
        let comm = match bench_suite::runner::distributed::world() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("strata-compare: {e}");
                return ExitCode::from(2);
            }
        };
        bench_suite::runner::distributed::run_distributed(
            &args,
            &registry(),
            &solver_registry(),
            comm,
        )
    } else {
        run(&args).map(Some)
    };
    match outcome {
        // Ranks other than 0 of a distributed run write nothing.
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(out)) => {
            print!("{}", format_summary_table(&out.results));
            println!(
                "\nreport: {}\nresults: {}\n({} runs in {:.1} s)",
                out.outputs.report_md.display(),
                out.outputs.results_json.display(),
                out.results.runs.len(),
                start.elapsed().as_secs_f64()
            );
            if bench_suite::runner::limits::every_run_failed(&out.results) {
                eprintln!("strata-compare: every run failed (see the errors in the report)");
                return ExitCode::from(3);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("strata-compare: {e}");
            match e {
                BenchError::UnknownName { .. } | BenchError::InvalidArgument { .. } => {
                    ExitCode::from(2)
                }
                _ => ExitCode::from(1),
            }
        }
    }
}
