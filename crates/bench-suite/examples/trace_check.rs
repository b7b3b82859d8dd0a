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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let problems =
        get("--problems").unwrap_or("digits-mlp,digits-mlp-deep,mnist-synth-small".into());
    let iterations: u64 = get("--iterations").map_or(6, |v| v.parse().expect("--iterations"));
    let tol: f64 = get("--tol").map_or(1e-10, |v| v.parse().expect("--tol"));
    let reg = solver_registry();
    let solvers = get("--solvers").map_or_else(
        || common::default_solvers(&reg),
        |v| v.split(',').map(str::to_string).collect(),
    );
    let mut traces = Traces::new();
    for pname in problems.split(',') {
        let (train, net, loss) = common::problem(pname);
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
        std::fs::write(&path, serde_json::to_string_pretty(&traces).expect("json")).expect("write");
        println!("wrote {} traces to {path}", traces.len());
    } else if let Some(path) = get("--compare") {
        let before: Traces =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
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
