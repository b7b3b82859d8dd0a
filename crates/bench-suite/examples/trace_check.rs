//! Before/after check for speed work on the structured solvers (issue #14): runs every
//! structured solver a fixed number of iterations through the `Driver` (seed 0, one
//! thread, f64) and writes the true-objective and surrogate traces as JSON, or compares
//! them with a file written earlier and prints the largest relative difference per solver.
//!
//! ```sh
//! # on the commit before the change
//! cargo run --release -p bench-suite --example trace_check -- --write /tmp/before.json
//! # after it
//! cargo run --release -p bench-suite --example trace_check -- --compare /tmp/before.json
//! ```
//!
//! Options: `--problems digits-mlp,digits-mlp-deep,mnist-synth-small` `--solvers a,b`
//! `--iterations 6` `--tol 1e-10` (`--compare` exits with status 1 when a solver's
//! trace differs by more than `tol` relative, or is missing).

mod common;

use std::collections::BTreeMap;

use bench_suite::runner::{Factory, SolverCtx, solver_registry};
use solvers::{Budget, Driver};

type Traces = BTreeMap<String, Vec<Option<f64>>>;

const USAGE: &str = "usage: trace_check [--problems digits-mlp,digits-mlp-deep,mnist-synth-small] \
[--solvers a,b] [--iterations 6] [--tol 1e-10] [--write FILE | --compare FILE]";

fn main() {
    let opts = common::Opts::parse(
        USAGE,
        &[
            "--problems",
            "--solvers",
            "--iterations",
            "--tol",
            "--write",
            "--compare",
        ],
        &[],
        false,
    );
    let get = |k: &str| opts.get(k);
    let problems =
        get("--problems").unwrap_or("digits-mlp,digits-mlp-deep,mnist-synth-small".into());
    let iterations: u64 = opts.num("--iterations", 6);
    let tol: f64 = opts.num("--tol", 1e-10);
    // The file to compare with is read before anything runs (a bad path or file ends the
    // example at once).
    let before: Option<Traces> = get("--compare").map(|path| {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| opts.fail(&format!("cannot read {path}: {e}")));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| opts.fail(&format!("{path} is not a trace file: {e}")))
    });
    let reg = solver_registry();
    let solvers = get("--solvers").map_or_else(
        || common::default_solvers(&reg),
        |v| v.split(',').map(str::to_string).collect(),
    );
    let mut traces = Traces::new();
    for pname in problems.split(',') {
        let (train, net, loss) = common::problem(&opts, pname);
        for s in &solvers {
            let Some(entry) = reg.iter().find(|e| e.name == s) else {
                eprintln!("no registry entry `{s}`");
                continue;
            };
            let Factory::Network { f64: factory, .. } = entry.factory else {
                continue;
            };
            let ctx = SolverCtx {
                loss: Some(loss.kind),
                ..Default::default()
            };
            let mut solver = factory(&ctx).expect("solver").solver;
            let mut p = common::make(&train, &net, loss, 1);
            let out = Driver::new(Budget::iterations(iterations))
                .seed(0)
                .run(&mut p, &mut solver)
                .expect("run");
            let rec = &out.trace.records;
            traces.insert(
                format!("{pname}/{s}/objective"),
                rec.iter().map(|r| Some(r.objective)).collect(),
            );
            traces.insert(
                format!("{pname}/{s}/surrogate"),
                rec.iter().map(|r| r.surrogate).collect(),
            );
            eprintln!(
                "{pname}/{s}: {} records, status {:?}",
                rec.len(),
                out.status
            );
        }
    }
    if let Some(path) = get("--write") {
        let json = serde_json::to_string_pretty(&traces).expect("traces serialise");
        if let Err(e) = std::fs::write(&path, json) {
            eprintln!("cannot write {path}: {e}");
            std::process::exit(1);
        }
        println!("wrote {} traces to {path}", traces.len());
    } else if let (Some(path), Some(before)) = (get("--compare"), before) {
        let mut bad = 0;
        for (k, now) in &traces {
            let Some(was) = before.get(k) else {
                println!("{k}: not in {path}");
                continue;
            };
            let mut worst = 0.0f64;
            let mut mismatch = was.len() != now.len();
            for (a, b) in was.iter().zip(now) {
                match (a, b) {
                    (Some(a), Some(b)) => {
                        let d = (a - b).abs() / a.abs().max(b.abs()).max(f64::MIN_POSITIVE);
                        if d.is_nan() && !(a.is_nan() && b.is_nan()) {
                            mismatch = true;
                        } else if d > worst {
                            worst = d;
                        }
                    }
                    (None, None) => {}
                    _ => mismatch = true,
                }
            }
            let ok = !mismatch && worst <= tol;
            if !ok {
                bad += 1;
            }
            println!(
                "{k}: max relative difference {worst:.2e}{}{}",
                if mismatch {
                    " (length or presence differs)"
                } else {
                    ""
                },
                if ok { "" } else { "  <-- DIFFERS" }
            );
        }
        if bad > 0 {
            println!("{bad} trace(s) differ by more than {tol:e}");
            std::process::exit(1);
        }
        println!("all traces agree to {tol:e} relative");
    } else {
        println!("{}", serde_json::to_string_pretty(&traces).expect("json"));
    }
}
