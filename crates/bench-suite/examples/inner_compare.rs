//! Outer results of dlADMM and the lifted network under different inner solvers (issue
//! #14): runs each variant a fixed number of sweeps through the `Driver` (seed 0, one
//! thread, f64) and prints the true training objective after given sweep counts and
//! after given data passes (the last record whose `epochs` is within the pass budget),
//! plus the mean sweep CPU time and data passes per sweep.
//!
//! ```sh
//! cargo run --release -p bench-suite --example inner_compare -- --problems digits-mlp,spirals --sweeps 40
//! ```
//!
//! Variants (`--variants a,b`): `dladmm-pg` (the reference code's prox-gradient output
//! block), `dladmm-newton` (exact per-sample Newton prox), `lifted-default`
//! (`LiftedConfig::default()`: since round 4 of issue #14 5 inner iterations, hidden
//! weights blocks by Newton-CG, tolerance 1e-3, estimate halved), `lifted-round3`
//! (`LiftedConfig::round3()`: 50 iterations, FISTA everywhere),
//! `lifted-<cap>[-<tol>][-warm|-cold][-euclid][-newton|-fista]` for a cap of inner
//! iterations, optionally another tolerance, the warm (carried) or halved (cold, default)
//! Lipschitz estimate, without the blocks' curvature bounds (`euclid`:
//! `LiftedConfig::curvature_bounds = false`, the Euclidean inner FISTA from before issue
//! #14's metric), and the hidden weights blocks' method (`newton`:
//! `WeightsMethod::NewtonCg`, `fista`: `WeightsMethod::Fista`).

mod common;

use common::cpu_ns;
use solvers::admm::{DlAdmm, DlAdmmConfig, ZlSolver};
use solvers::lifted::{LiftedConfig, WeightsMethod};
use solvers::{Budget, Driver, NetProblem, Solver};

const USAGE: &str = "usage: inner_compare [--problems digits-mlp,spirals] [--sweeps 40] \
[--variants dladmm-pg,dladmm-newton,lifted-50,lifted-default] [--at-sweeps 1,5,10,20,40] \
[--at-passes 20,50,100,200,400]";

/// The solver of a variant name (module doc), or what is wrong with the name.
fn variant(name: &str) -> Result<Box<dyn Solver<NetProblem<f64>>>, String> {
    let built = |r: Result<Box<dyn Solver<NetProblem<f64>>>, solvers::SolverError>| {
        r.map_err(|e| format!("variant {name}: {e}"))
    };
    match name {
        "dladmm-pg" => built(
            DlAdmm::<f64>::new(DlAdmmConfig {
                zl_solver: ZlSolver::reference(),
                ..DlAdmmConfig::default()
            })
            .map(|s| Box::new(s) as _),
        ),
        "dladmm-newton" => built(
            DlAdmm::<f64>::new(DlAdmmConfig {
                zl_solver: ZlSolver::Newton,
                ..DlAdmmConfig::default()
            })
            .map(|s| Box::new(s) as _),
        ),
        "dladmm-default" => {
            built(DlAdmm::<f64>::new(DlAdmmConfig::default()).map(|s| Box::new(s) as _))
        }
        "lifted-default" => built(
            LiftedConfig::default()
                .build::<f64>()
                .map(|s| Box::new(s) as _),
        ),
        "lifted-round3" => built(
            LiftedConfig::round3()
                .build::<f64>()
                .map(|s| Box::new(s) as _),
        ),
        other => {
            // lifted-<cap>[-<tol>][-warm|-cold]
            let parts: Vec<&str> = other
                .strip_prefix("lifted-")
                .ok_or_else(|| format!("unknown variant {other}"))?
                .split('-')
                .collect();
            let mut cfg = LiftedConfig {
                inner_max_iters: parts[0]
                    .parse()
                    .map_err(|_| format!("variant {other}: `{}` is not a cap", parts[0]))?,
                ..LiftedConfig::default()
            };
            for p in &parts[1..] {
                if *p == "cold" {
                    cfg.warm_step = false;
                } else if *p == "warm" {
                    cfg.warm_step = true;
                } else if *p == "euclid" {
                    cfg.curvature_bounds = false;
                } else if *p == "newton" {
                    cfg.weights_method = WeightsMethod::NewtonCg;
                } else if *p == "fista" {
                    cfg.weights_method = WeightsMethod::Fista;
                } else {
                    cfg.inner_tol = p
                        .parse()
                        .map_err(|_| format!("variant {other}: `{p}` is not a tolerance"))?;
                }
            }
            built(cfg.build::<f64>().map(|s| Box::new(s) as _))
        }
    }
}

fn main() {
    let opts = common::Opts::parse(
        USAGE,
        &[
            "--problems",
            "--sweeps",
            "--variants",
            "--at-sweeps",
            "--at-passes",
        ],
        &[],
        false,
    );
    let problems = opts
        .get("--problems")
        .unwrap_or("digits-mlp,spirals".into());
    let sweeps: u64 = opts.num("--sweeps", 40);
    let variants = opts
        .get("--variants")
        .unwrap_or("dladmm-pg,dladmm-newton,lifted-50,lifted-default".into());
    for v in variants.split(',') {
        if let Err(msg) = variant(v) {
            opts.fail(&msg);
        }
    }
    let at_sweeps: Vec<u64> = opts.list("--at-sweeps", "1,5,10,20,40");
    let at_passes: Vec<f64> = opts.list("--at-passes", "20,50,100,200,400");
    print!("| problem | variant | passes/sweep | inner evals/sweep | CPU ms/sweep |");
    for s in &at_sweeps {
        print!(" obj @ {s} sweeps |");
    }
    for p in &at_passes {
        print!(" obj @ {p} passes |");
    }
    println!();
    for pname in problems.split(',') {
        let (train, net, loss) = common::problem(&opts, pname);
        for v in variants.split(',') {
            let mut solver = variant(v).unwrap_or_else(|m| opts.fail(&m));
            let mut p = common::make(&train, &net, loss, 1);
            let t0 = cpu_ns();
            let out = Driver::new(Budget::iterations(sweeps))
                .seed(0)
                .run(&mut p, &mut solver)
                .expect("run");
            let cpu = (cpu_ns() - t0) as f64 * 1e-6;
            let rec = &out.trace.records;
            let last = rec.last().expect("records");
            let done = last.iteration.max(1) as f64;
            // dlADMM: output-block iterations; lifted: inner iterations + trials.
            let inner: f64 = rec
                .iter()
                .flat_map(|r| r.extras.iter())
                .filter(|(k, _)| {
                    ["output_inner", "inner_iterations", "backtracking_trials"]
                        .contains(&k.as_str())
                })
                .map(|(_, x)| x)
                .sum();
            print!(
                "| {pname} | {v} | {:.1} | {:.1} | {:.1} |",
                (last.epochs - rec[0].epochs) / done,
                inner / done,
                cpu / done
            );
            for s in &at_sweeps {
                match rec.iter().find(|r| r.iteration == *s) {
                    Some(r) => print!(" {:.5} |", r.objective),
                    None => print!(" - |"),
                }
            }
            for pb in &at_passes {
                let r = rec.iter().rev().find(|r| r.epochs <= *pb);
                match r {
                    Some(r) if last.epochs >= *pb => print!(" {:.5} |", r.objective),
                    _ => print!(" - |"),
                }
            }
            println!();
            eprintln!("{pname}/{v}: status {:?}", out.status);
        }
    }
}
