//! CPU-time cost of one certified-MM step against one full-batch Adam step (issue #11,
//! "a safe-adam step takes <= 3x an Adam full-batch step"), with the parts of a
//! safe-adam step timed separately: the gradient (`nets::loss_and_grad`, as the solver
//! calls it), the base-point objective (`Sequential::objective`), and one enclosure
//! (`enclose_with`, k = 1 and k = L, with a kept workspace).
//!
//! Times are this thread's CPU time (`/proc/thread-self/schedstat`), so a shared machine
//! inflates them less than wall time. The solvers are timed in interleaved rounds (Adam,
//! safe-adam, safe-layerwise, parts; repeated `--rounds` times) and each figure is the
//! minimum over rounds of the mean per call within a round; the ratios use figures of the
//! same run. The criterion bench `certified_step` measures the same steps in wall time.
//!
//! Run: `cargo run --release -p bench-suite --example certified_cost`
//! Options: `--problems digits-mlp,digits-softplus-mse` `--rounds 5` `--secs 0.3`
//! `--f32` (also measure f32).

mod common;

use autodiff::{Real, Tape};
use bench_suite::problems::{BuildOptions, ProblemData, ProblemKind, find_problem};
use bench_suite::runner::initial_network;
use common::cpu_ns;
use majorize::enclosure::{EnclosureRequest, EnclosureWorkspace, enclose_with};
use nalgebra::DVector;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::certified::CertifiedConfig;
use solvers::first_order::AdamConfig;
use solvers::{Batching, Context, Counters, NetProblem, Solver};

fn problem<T: Real>(opts: &common::Opts, name: &str) -> NetProblem<T> {
    let spec = find_problem(name).unwrap_or_else(|e| opts.fail(&e.to_string()));
    let ProblemKind::Network {
        widths,
        hidden,
        loss,
        ..
    } = &spec.kind
    else {
        opts.fail(&format!("{name} is not a network problem"))
    };
    let train = match spec.build::<T>(0, &BuildOptions::from_env()) {
        Ok(ProblemData::Supervised { train, .. }) => train,
        Ok(_) => opts.fail(&format!("{name} is not supervised")),
        Err(e) => opts.fail(&format!("{name}: {e}")),
    };
    let net = initial_network::<T>(widths, *hidden, 0)
        .unwrap_or_else(|e| opts.fail(&format!("{name}: {e}")));
    NetProblem::new(net, loss.to_nets(), train, None)
        .unwrap_or_else(|e| opts.fail(&format!("{name}: {e}")))
}

/// Mean CPU seconds per call of `f` over about `secs` seconds of CPU time (at least 2 calls).
fn time(secs: f64, mut f: impl FnMut()) -> f64 {
    let c0 = cpu_ns();
    let mut n = 0u32;
    while n < 2 || ((cpu_ns() - c0) as f64 * 1e-9) < secs {
        f();
        n += 1;
    }
    (cpu_ns() - c0) as f64 * 1e-9 / f64::from(n)
}

struct Stepper<T: Real> {
    name: &'static str,
    solver: Box<dyn Solver<NetProblem<T>>>,
    problem: NetProblem<T>,
    rng: ChaCha8Rng,
    counters: Counters,
}

impl<T: Real> Stepper<T> {
    fn new(
        name: &'static str,
        solver: Box<dyn Solver<NetProblem<T>>>,
        problem: NetProblem<T>,
    ) -> Self {
        let mut s = Stepper {
            name,
            solver,
            problem,
            rng: ChaCha8Rng::seed_from_u64(0),
            counters: Counters::default(),
        };
        s.with_ctx(|solver, p, ctx| solver.init(p, ctx).expect("init"));
        // A few steps first, so the trust region has adapted (steady state).
        for _ in 0..5 {
            s.step();
        }
        s
    }
    fn with_ctx<R>(
        &mut self,
        f: impl FnOnce(&mut dyn Solver<NetProblem<T>>, &mut NetProblem<T>, &mut Context) -> R,
    ) -> R {
        let mut ctx = Context {
            rng: &mut self.rng,
            counters: &mut self.counters,
            iteration: 0,
            threads: 1,
        };
        f(self.solver.as_mut(), &mut self.problem, &mut ctx)
    }
    fn step(&mut self) {
        self.with_ctx(|s, p, ctx| std::hint::black_box(s.step(p, ctx).expect("step")));
    }
}

fn run<T: Real>(opts: &common::Opts, pname: &str, rounds: usize, secs: f64) {
    let adam = AdamConfig {
        batching: Batching::Full,
        ..Default::default()
    };
    let mut steppers: Vec<Stepper<T>> = vec![
        Stepper::new(
            "adam (full batch)",
            Box::new(adam.build::<T>().unwrap()),
            problem::<T>(opts, pname),
        ),
        Stepper::new(
            "safe-adam",
            Box::new(CertifiedConfig::safe_adam().build::<T>().unwrap()),
            problem::<T>(opts, pname),
        ),
        Stepper::new(
            "safe-layerwise",
            Box::new(CertifiedConfig::safe_layerwise().build::<T>().unwrap()),
            problem::<T>(opts, pname),
        ),
    ];
    // Parts of a step, on the initial network with the negative gradient as direction.
    let p = problem::<T>(opts, pname);
    let dim = p.net.num_params();
    let mut grad = vec![T::zero(); dim];
    let mut tape = Tape::new();
    let lg = |p: &NetProblem<T>, tape: &mut Tape<T>, grad: &mut [T]| {
        nets::loss_and_grad(
            &p.net,
            &p.loss,
            p.train.inputs(),
            p.train.targets(),
            tape,
            grad,
        )
        .expect("grad")
    };
    lg(&p, &mut tape, &mut grad);
    let dir = DVector::from_iterator(dim, grad.iter().map(|g| -*g));
    let dirs1 = vec![dir.clone()];
    let layers: Vec<(usize, usize)> = {
        let mut v: Vec<(usize, usize)> = Vec::new();
        for q in p.net.param_layout() {
            match v.last_mut() {
                Some((l, e)) if *l == q.layer => *e = q.offset + q.rows * q.cols,
                _ => v.push((q.layer, q.offset + q.rows * q.cols)),
            }
        }
        v
    };
    let mut dirs_l = Vec::new();
    let mut start = 0;
    for &(_, end) in &layers {
        let mut d = DVector::zeros(dim);
        d.rows_mut(start, end - start)
            .copy_from(&dir.rows(start, end - start));
        dirs_l.push(d);
        start = end;
    }
    let a1 = vec![T::of(1e-3)];
    let al = vec![T::of(1e-3); dirs_l.len()];
    let mut ws = EnclosureWorkspace::new();

    let mut best = vec![f64::INFINITY; steppers.len() + 4];
    for _ in 0..rounds {
        for (i, s) in steppers.iter_mut().enumerate() {
            best[i] = best[i].min(time(secs, || s.step()));
        }
        let b = steppers.len();
        best[b] = best[b].min(time(secs, || {
            lg(&p, &mut tape, &mut grad);
        }));
        best[b + 1] = best[b + 1].min(time(secs, || {
            std::hint::black_box(
                p.net
                    .objective(&p.loss, p.train.inputs(), p.train.targets())
                    .unwrap(),
            );
        }));
        for (slot, dirs, amax) in [(b + 2, &dirs1, &a1), (b + 3, &dirs_l, &al)] {
            let req = EnclosureRequest {
                net: &p.net,
                loss: &p.loss,
                inputs: p.train.inputs(),
                targets: p.train.targets(),
                directions: dirs,
                alpha_max: amax,
            };
            best[slot] = best[slot].min(time(secs, || {
                std::hint::black_box(enclose_with(&req, &mut ws).unwrap());
            }));
        }
    }
    let adam_t = best[0];
    println!(
        "\n## {pname}, {} ({} samples), CPU time per call, min over {rounds} rounds",
        T::dtype_name(),
        p.train.len()
    );
    println!("| what | ms (CPU) | / Adam full-batch step |");
    println!("|---|---|---|");
    let mut names: Vec<String> = steppers
        .iter()
        .map(|s| format!("{} step", s.name))
        .collect();
    names.push("loss_and_grad (forward + backward)".into());
    names.push("Sequential::objective (forward)".into());
    names.push("enclose_with, k = 1".into());
    names.push(format!("enclose_with, k = {}", dirs_l.len()));
    for (i, n) in names.iter().enumerate() {
        println!("| {n} | {:.3} | {:.2}x |", best[i] * 1e3, best[i] / adam_t);
    }
}

const USAGE: &str = "usage: certified_cost [--problems digits-mlp,digits-softplus-mse] \
[--rounds 5] [--secs 0.3] [--f32]";

fn main() {
    let opts = common::Opts::parse(
        USAGE,
        &["--problems", "--rounds", "--secs"],
        &["--f32"],
        false,
    );
    let problems: Vec<String> = opts
        .get("--problems")
        .unwrap_or("digits-mlp,digits-softplus-mse".into())
        .split(',')
        .map(str::to_string)
        .collect();
    let rounds: usize = opts.num("--rounds", 5);
    let secs: f64 = opts.num("--secs", 0.3);
    let f32_too = opts.flag("--f32");
    for pname in &problems {
        // The problem's kind and data are checked before any timing starts.
        let _ = problem::<f64>(&opts, pname);
    }
    println!("# certified-MM step cost, one thread, CPU time");
    for pname in &problems {
        run::<f64>(&opts, pname, rounds, secs);
        if f32_too {
            run::<f32>(&opts, pname, rounds, secs);
        }
    }
}
