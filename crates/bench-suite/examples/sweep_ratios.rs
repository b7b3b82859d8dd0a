//! The cost of one sweep (one `Solver::step`) of every structured solver as a multiple of
//! one full-batch gradient-descent step on the same problem, measured in one run, f64,
//! one thread (issue #14; the table in `docs/PERFORMANCE.md`).
//!
//! Times are this thread's CPU time (`/proc/thread-self/schedstat`, nanoseconds on a
//! CPU), so a shared machine inflates them less than wall time; the wall time is printed
//! beside it. Every solver starts from the runner's initial network for seed 0, runs
//! `init` and one warm-up sweep untimed, then sweeps until `--min-time` seconds of CPU
//! time (at least `--min-sweeps`, at most `--max-sweeps`); the figure is the mean per
//! sweep. The GD step (registry entry `gd`) is measured the same way before the solvers
//! and again after them; the ratio uses the mean of the two.
//!
//! Run: `cargo run --release -p bench-suite --example sweep_ratios`
//! Options: `--problems digits-mlp,digits-mlp-deep,mnist-synth` `--solvers a,b`
//! `--min-time 2` `--min-sweeps 2` `--max-sweeps 50` `--threads 1`.
//!
//! `mnist-synth` is an MNIST-shaped synthetic problem: 784-128-10 ReLU MLP, softmax
//! cross-entropy, 10 000 training samples of 10 Gaussian blobs in 784 dimensions.

mod common;

use std::time::Instant;

use bench_suite::runner::{Factory, NetProblem, SolverCtx, SolverEntry, solver_registry};
use common::cpu_ns;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::{Context, Counters, Solver};

struct Settings {
    problems: Vec<String>,
    solvers: Option<Vec<String>>,
    min_time: f64,
    min_sweeps: usize,
    max_sweeps: usize,
    threads: usize,
    cli: common::Opts,
}

fn parse() -> Settings {
    let cli = common::Opts::parse(
        USAGE,
        &[
            "--problems",
            "--solvers",
            "--min-time",
            "--min-sweeps",
            "--max-sweeps",
            "--threads",
        ],
        &[],
        false,
    );
    let list = |s: String| s.split(',').map(str::to_string).collect::<Vec<_>>();
    Settings {
        problems: list(
            cli.get("--problems")
                .unwrap_or("digits-mlp,digits-mlp-deep,mnist-synth".into()),
        ),
        solvers: cli.get("--solvers").map(list),
        min_time: cli.num("--min-time", 2.0),
        min_sweeps: cli.num("--min-sweeps", 2),
        max_sweeps: cli.num("--max-sweeps", 50),
        threads: cli.num("--threads", 1),
        cli,
    }
}

const USAGE: &str = "usage: sweep_ratios [--problems digits-mlp,digits-mlp-deep,mnist-synth] \
[--solvers a,b] [--min-time 2] [--min-sweeps 2] [--max-sweeps 50] [--threads 1]";

struct Timing {
    cpu: f64,
    wall: f64,
    sweeps: usize,
}

/// Builds `name` on a fresh copy of the problem, runs init and one warm-up sweep, then
/// times sweeps.
fn time_solver(
    entry: &SolverEntry,
    make: &dyn Fn() -> NetProblem<f64>,
    loss: nets::LossKind,
    o: &Settings,
) -> Result<Timing, String> {
    let Factory::Network { f64: factory, .. } = entry.factory else {
        return Err("not a network solver".into());
    };
    let ctx_in = SolverCtx {
        loss: Some(loss),
        ..Default::default()
    };
    let mut solver = factory(&ctx_in).map_err(|e| e.to_string())?.solver;
    let mut p = make();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut counters = Counters::default();
    let mut ctx = Context {
        rng: &mut rng,
        counters: &mut counters,
        iteration: 0,
        threads: o.threads,
    };
    solver.init(&mut p, &mut ctx).map_err(|e| e.to_string())?;
    ctx.iteration = 1;
    solver.step(&mut p, &mut ctx).map_err(|e| e.to_string())?;
    let (c0, w0) = (cpu_ns(), Instant::now());
    let mut n = 0;
    while n < o.min_sweeps || ((cpu_ns() - c0) as f64 * 1e-9 < o.min_time && n < o.max_sweeps) {
        ctx.iteration += 1;
        solver.step(&mut p, &mut ctx).map_err(|e| e.to_string())?;
        n += 1;
    }
    Ok(Timing {
        cpu: (cpu_ns() - c0) as f64 * 1e-9 / n as f64,
        wall: w0.elapsed().as_secs_f64() / n as f64,
        sweeps: n,
    })
}

fn main() {
    let o = parse();
    let reg = solver_registry();
    let solvers = o
        .solvers
        .clone()
        .unwrap_or_else(|| common::default_solvers(&reg));
    let gd = reg.iter().find(|e| e.name == "gd").expect("gd entry");
    println!(
        "# sweep / full-batch GD step, f64, {} thread(s), CPU time (wall in brackets)",
        o.threads
    );
    for pname in &o.problems {
        let (train, net, loss) = common::problem(&o.cli, pname);
        let threads = o.threads;
        let make = || common::make(&train, &net, loss, threads);
        let gd0 = time_solver(gd, &make, loss.kind, &o).expect("gd");
        let mut rows = Vec::new();
        for s in &solvers {
            let Some(entry) = reg.iter().find(|e| e.name == s) else {
                rows.push((s.clone(), Err(format!("no registry entry `{s}`"))));
                continue;
            };
            rows.push((s.clone(), time_solver(entry, &make, loss.kind, &o)));
        }
        let gd1 = time_solver(gd, &make, loss.kind, &o).expect("gd");
        let gd_cpu = 0.5 * (gd0.cpu + gd1.cpu);
        let gd_wall = 0.5 * (gd0.wall + gd1.wall);
        println!(
            "\n## {pname} ({} samples), GD step {:.3} ms CPU [{:.3} ms wall] (before {:.3}, after {:.3})",
            train.len(),
            gd_cpu * 1e3,
            gd_wall * 1e3,
            gd0.cpu * 1e3,
            gd1.cpu * 1e3
        );
        println!("| solver | sweep / GD step (CPU) | [wall] | sweep ms (CPU) | sweeps timed |");
        println!("|---|---|---|---|---|");
        for (s, t) in rows {
            match t {
                Ok(t) => println!(
                    "| {s} | {:.2}x | [{:.2}x] | {:.2} | {} |",
                    t.cpu / gd_cpu,
                    t.wall / gd_wall,
                    t.cpu * 1e3,
                    t.sweeps
                ),
                Err(e) => println!("| {s} | error: {e} | | | |"),
            }
        }
    }
}
