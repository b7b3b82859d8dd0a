//! Multi-rank checks and measurements over real MPI (cargo feature `mpi`); run under
//! `mpirun -np P`:
//!
//! ```text
//! cargo build --release -p solvers --features mpi --example mpi_ranks
//! mpirun --allow-run-as-root --oversubscribe -np 3 target/release/examples/mpi_ranks check
//! mpirun ... -np 2 target/release/examples/mpi_ranks scaling [N] [ITERS]
//! mpirun ... -np 2 target/release/examples/mpi_ranks soak SECONDS
//! ```
//!
//! * `check`: on every rank, runs L-BFGS, full-batch Adam with a fixed batch order,
//!   Taylor ADMM, dlADMM and beta-NMF (MM) sharded over the P ranks, and compares each final
//!   objective with the same run on one process (computed on every rank): relative
//!   difference <= 1e-9, and identical on every rank. Prints `N passed, N failed` on
//!   rank 0 and exits non-zero on any failure.
//! * `scaling`: time per iteration and bytes sent per iteration per rank for Taylor
//!   ADMM, dlADMM (code defaults) and full-batch gradient descent on an MNIST-shaped synthetic problem
//!   (784-128-10, N samples, default 10 000), printed by rank 0 as one table row each.
//! * `soak`: all-reduces in a loop for SECONDS (the test that killing one rank ends
//!   the others).

use std::sync::Arc;
use std::time::Instant;

use autodiff::Reduction;
use majorize::nmf::Rule;
use nalgebra::DMatrix;
use nets::{Activation, Dataset, Init, Loss, LossKind, Sequential, Targets};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::admm::{DlAdmm, DlAdmmConfig, OutputLoss, TaylorAdmm, TaylorConfig};
use solvers::comm::{Comm, LocalComm, MpiComm, allreduce_sum_f64};
use solvers::distributed::{
    DistributedBetaNmf, DistributedDlAdmm, DistributedTaylorAdmm, ShardedNetProblem,
    ShardedNmfProblem,
};
use solvers::first_order::{AdamConfig, SgdConfig};
use solvers::lbfgs::LbfgsConfig;
use solvers::nmf::BetaNmfConfig;
use solvers::{Batching, Budget, Driver, NetProblem, Solver};

fn blobs(d: usize, k: usize, n: usize, hidden: usize, seed: u64) -> NetProblem<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = DMatrix::zeros(d, n);
    let mut labels = Vec::with_capacity(n);
    for j in 0..n {
        let c = (j * 7 + 3) % k;
        for i in 0..d {
            let u: f64 = rand::RngExt::random::<f64>(&mut rng) - 0.5;
            x[(i, j)] = u + if i % k == c { 1.0 } else { 0.0 };
        }
        labels.push(c);
    }
    let data = Dataset::new(x, Targets::Labels { labels, classes: k }).unwrap();
    let net =
        Sequential::mlp(&[d, hidden, k], Activation::Relu, Init::HeUniform, &mut rng).unwrap();
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean).with_l2(1e-4);
    NetProblem::new(net, loss, data, None).unwrap()
}

fn final_objective<P: solvers::Problem, S: Solver<P>>(p: &mut P, s: &mut S, b: Budget) -> f64 {
    let out = Driver::new(b).seed(3).run(p, s).expect("valid run");
    out.trace.records.last().map_or(f64::NAN, |r| r.objective)
}

fn check(comm: Arc<dyn Comm>) -> bool {
    let taylor = TaylorConfig {
        output_loss: OutputLoss::Problem,
        warm_start: 3,
        ..Default::default()
    };
    let adam = || {
        AdamConfig {
            lr: 0.01,
            batching: Batching::mini(32),
            ..Default::default()
        }
        .build::<f64>()
        .unwrap()
    };
    let mut results: Vec<(&str, f64, f64)> = Vec::new();
    let make = || blobs(20, 4, 401, 16, 7);
    let budget = Budget::iterations(10);
    results.push((
        "lbfgs",
        final_objective(
            &mut make(),
            &mut LbfgsConfig::default().build::<f64>().unwrap(),
            budget,
        ),
        final_objective(
            &mut ShardedNetProblem::new(make(), Arc::clone(&comm)).unwrap(),
            &mut LbfgsConfig::default().build::<f64>().unwrap(),
            budget,
        ),
    ));
    results.push((
        "adam",
        final_objective(&mut make(), &mut adam(), Budget::epochs(5.0)),
        final_objective(
            &mut ShardedNetProblem::new(make(), Arc::clone(&comm)).unwrap(),
            &mut adam(),
            Budget::epochs(5.0),
        ),
    ));
    results.push((
        "admm-taylor",
        final_objective(
            &mut make(),
            &mut TaylorAdmm::<f64>::new(taylor.clone()).unwrap(),
            budget,
        ),
        final_objective(
            &mut ShardedNetProblem::new(make(), Arc::clone(&comm)).unwrap(),
            &mut DistributedTaylorAdmm::<f64>::new(taylor).unwrap(),
            budget,
        ),
    ));
    results.push((
        "dladmm",
        final_objective(
            &mut make(),
            &mut DlAdmm::<f64>::new(DlAdmmConfig::default()).unwrap(),
            budget,
        ),
        final_objective(
            &mut ShardedNetProblem::new(make(), Arc::clone(&comm)).unwrap(),
            &mut DistributedDlAdmm::<f64>::new(DlAdmmConfig::default()).unwrap(),
            budget,
        ),
    ));
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut u = || 0.1 + rand::RngExt::random::<f64>(&mut rng);
    let v = DMatrix::from_fn(12, 97, |_, _| u());
    let w = DMatrix::from_fn(12, 4, |_, _| u());
    let h = DMatrix::from_fn(4, 97, |_, _| u());
    let cfg = BetaNmfConfig {
        beta: 1.0,
        rule: Rule::Mm,
        ..Default::default()
    };
    results.push((
        "nmf-mm",
        final_objective(
            &mut solvers::nmf::NmfProblem::new(v.clone(), w.clone(), h.clone(), &cfg).unwrap(),
            &mut solvers::nmf::BetaNmf::new(cfg).unwrap(),
            Budget::iterations(50),
        ),
        final_objective(
            &mut ShardedNmfProblem::new(v, w, h, &cfg, Arc::clone(&comm)).unwrap(),
            &mut DistributedBetaNmf::new(cfg).unwrap(),
            Budget::iterations(50),
        ),
    ));
    // Every rank must hold the same distributed result: compare with rank 0's.
    let mut ok = 0;
    let mut bad = 0;
    for (name, single, dist) in &results {
        let mut both = [*dist];
        let p = comm.size() as f64;
        allreduce_sum_f64(&*comm, &mut both[..1]).unwrap();
        let same_everywhere = both[0] == p * dist;
        let rel = (single - dist).abs() / single.abs();
        let pass = rel <= 1e-9 && same_everywhere;
        if comm.rank() == 0 {
            println!(
                "{} {name}: {} ranks: single {single:.15e}, distributed {dist:.15e}, rel {rel:.2e}",
                if pass { "ok  " } else { "FAIL" },
                comm.size()
            );
        }
        if pass {
            ok += 1;
        } else {
            bad += 1;
        }
    }
    if comm.rank() == 0 {
        println!("{ok} passed, {bad} failed");
    }
    bad == 0
}

fn scaling(comm: Arc<dyn Comm>, n: usize, iters: u64) {
    let make = || blobs(784, 10, n, 128, 1);
    let taylor = TaylorConfig {
        output_loss: OutputLoss::Problem,
        ..Default::default()
    };
    let mut rows = Vec::new();
    for which in ["admm-taylor", "dladmm", "gd (full batch)"] {
        let mut p = ShardedNetProblem::new(make(), Arc::clone(&comm)).unwrap();
        comm.barrier().unwrap();
        let b0 = comm.bytes_sent();
        let t = Instant::now();
        let out = match which {
            "admm-taylor" => Driver::new(Budget::iterations(iters)).run(
                &mut p,
                &mut DistributedTaylorAdmm::<f64>::new(taylor.clone()).unwrap(),
            ),
            "dladmm" => Driver::new(Budget::iterations(iters)).run(
                &mut p,
                &mut DistributedDlAdmm::<f64>::new(DlAdmmConfig::default()).unwrap(),
            ),
            _ => Driver::new(Budget::iterations(iters))
                .run(&mut p, &mut SgdConfig::gd(0.1).build::<f64>().unwrap()),
        }
        .unwrap();
        let solver_s = out.trace.records.last().map_or(0.0, |r| r.wall_time_s);
        let wall = t.elapsed().as_secs_f64();
        let bytes = (comm.bytes_sent() - b0) as f64 / iters as f64;
        rows.push((which, solver_s / iters as f64, wall, bytes));
    }
    if comm.rank() == 0 {
        for (which, per_iter, wall, bytes) in rows {
            println!(
                "| {which} | {} | {n} | {:.4} | {:.1} | {:.0} |",
                comm.size(),
                per_iter,
                wall,
                bytes
            );
        }
    }
}

fn soak(comm: Arc<dyn Comm>, seconds: f64) {
    let t = Instant::now();
    let mut buf = vec![1.0; 1024];
    while t.elapsed().as_secs_f64() < seconds {
        allreduce_sum_f64(&*comm, &mut buf).unwrap();
        buf.iter_mut().for_each(|v| *v = 1.0);
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let comm: Arc<dyn Comm> = match MpiComm::init() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("mpi_ranks: {e}; falling back to one process");
            Arc::new(LocalComm)
        }
    };
    let usage = |msg: &str| {
        eprintln!(
            "mpi_ranks: {msg}\nusage: mpi_ranks check | scaling [N] [ITERS] | soak [SECONDS]"
        );
        std::process::ExitCode::from(2)
    };
    let words: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    // Every value is checked: a malformed one is a usage error, not a silent default.
    let count = |v: &str| v.parse::<usize>().ok().filter(|c| *c > 0);
    match words.as_slice() {
        ["--help" | "-h"] => {
            println!("usage: mpi_ranks check | scaling [N] [ITERS] | soak [SECONDS]");
        }
        ["check"] => {
            if !check(comm) {
                return std::process::ExitCode::FAILURE;
            }
        }
        ["scaling", rest @ ..] if rest.len() <= 2 => {
            let n = rest.first().map_or(Some(10_000), |v| count(v));
            let iters = rest.get(1).map_or(Some(5), |v| count(v));
            let (Some(n), Some(iters)) = (n, iters) else {
                return usage(&format!("scaling takes positive integers, got {rest:?}"));
            };
            scaling(comm, n, iters as u64);
        }
        ["soak", rest @ ..] if rest.len() <= 1 => {
            let seconds = rest.first().map_or(Some(60.0), |v| {
                v.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0)
            });
            let Some(seconds) = seconds else {
                return usage(&format!("soak takes seconds >= 0, got {rest:?}"));
            };
            soak(comm, seconds);
        }
        _ => return usage(&format!("unexpected arguments {words:?}")),
    }
    std::process::ExitCode::SUCCESS
}
