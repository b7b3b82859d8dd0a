//! The gradient-side measurements of issue #14, on an MNIST-shaped synthetic problem
//! (784-256-256-10 ReLU MLP, softmax cross-entropy with mean reduction, 784-d inputs):
//!
//! * `grad`: one full-batch gradient (`NetProblem::value_grad(None)`: forward, backward,
//!   loss) on `--n` samples (default 60 000), f32 and f64, at `--threads` (default 1);
//! * `batch`: one mini-batch gradient of 1024 samples (gather + forward + backward);
//! * `fixed`: the same step on a fixed batch (a 1024-sample problem's full-batch
//!   gradient: the batch is one contiguous matrix, copied onto the tape as a whole), what
//!   a benchmark that feeds one pre-sliced batch times;
//! * `epoch`: `--epochs` Adam epochs (default 1; batch 128, shuffled) through the
//!   [`Driver`], once per evaluation cadence of `--eval-every` (data passes,
//!   comma-separated, 0 = after every step; default 0), against the sum of its steps
//!   as the driver itself times them (`wall_time_s` of the last record), split into
//!   the evaluations (timed by a wrapper of the problem) and the rest (the driver's own
//!   bookkeeping), and the same epochs in a bare loop of `Solver::step` (no evaluation)
//!   against as many batch-128 gradients alone.
//!
//! * `sums`: the ADMM W-step's sample sums (`A A^T`, `Z A^T`, row sums; the
//!   data-parallel part of Taylor ADMM and dlADMM) of a 784 x `--n` input `A` and a
//!   256 x `--n` `Z`, f32 and f64, at `--threads`.
//!
//! Times: wall, this thread's CPU time (`/proc/thread-self/schedstat`) and the whole
//! process's CPU time (`/proc/self/stat`, all threads; 10 ms resolution), best of
//! `--reps` (default 3). With `--threads 2` compare the wall times of two runs on idle
//! cores; on a loaded machine only the process CPU time is meaningful.
//!
//! Run: `cargo run --release -p solvers --example core_speed -- grad --threads 1`
//! (parts: `grad`, `batch`, `fixed`, `epoch`, `sums`; several may be given; default all).

use std::time::Instant;

use autodiff::{Real, Reduction};
use nalgebra::DMatrix;
use nets::{Activation, Dataset, Init, Loss, LossKind, Sequential, Targets};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::first_order::AdamConfig;
use solvers::{
    Batching, Budget, Context, Counters, Differentiable, Driver, EvalCadence, NetProblem, Problem,
    Solver,
};

/// Nanoseconds this thread has spent on a CPU.
fn thread_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Seconds of CPU (user + system) of the whole process, all threads.
fn process_cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the ')'.
    (ticks(11) + ticks(12)) / 100.0
}

/// A problem whose evaluations (the Driver's measurement of the true objective, not
/// charged to the solver) are timed, wall and thread CPU, so that one Driver run splits
/// into its steps (the Driver's `wall_time_s`), its evaluations and the rest (the
/// Driver's own bookkeeping: records, cadence, budget checks).
struct TimedEval<P> {
    inner: P,
    evals: u32,
    wall: f64,
    cpu: f64,
    /// Wall and thread CPU seconds inside `value_grad` (the batch gradients, with the
    /// gather of the batch columns) and inside `set_params`.
    grad: (f64, f64),
    set: (f64, f64),
}

impl<P> TimedEval<P> {
    fn new(inner: P) -> Self {
        TimedEval {
            inner,
            evals: 0,
            wall: 0.0,
            cpu: 0.0,
            grad: (0.0, 0.0),
            set: (0.0, 0.0),
        }
    }
}

/// Runs `f`, adding its wall and thread CPU seconds to `acc`.
fn timed<R>(acc: &mut (f64, f64), f: impl FnOnce() -> R) -> R {
    let (w0, t0) = (Instant::now(), thread_ns());
    let r = f();
    acc.0 += w0.elapsed().as_secs_f64();
    acc.1 += (thread_ns() - t0) as f64 * 1e-9;
    r
}

impl<P: Problem> Problem for TimedEval<P> {
    fn evaluate(&mut self) -> solvers::Evaluation {
        let (w0, t0) = (Instant::now(), thread_ns());
        let e = self.inner.evaluate();
        self.wall += w0.elapsed().as_secs_f64();
        self.cpu += (thread_ns() - t0) as f64 * 1e-9;
        self.evals += 1;
        e
    }
    fn num_samples(&self) -> usize {
        self.inner.num_samples()
    }
    fn save_params(&self) -> serde_json::Value {
        self.inner.save_params()
    }
    fn load_params(&mut self, v: &serde_json::Value) -> Result<(), solvers::SolverError> {
        self.inner.load_params(v)
    }
}

impl<P: Differentiable> Differentiable for TimedEval<P> {
    type Scalar = P::Scalar;
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn params(&self, out: &mut [P::Scalar]) {
        self.inner.params(out)
    }
    fn set_params(&mut self, p: &[P::Scalar]) -> Result<(), solvers::SolverError> {
        let inner = &mut self.inner;
        timed(&mut self.set, || inner.set_params(p))
    }
    fn value_grad(
        &mut self,
        batch: Option<&[usize]>,
        grad: &mut [P::Scalar],
    ) -> Result<P::Scalar, solvers::SolverError> {
        let inner = &mut self.inner;
        timed(&mut self.grad, || inner.value_grad(batch, grad))
    }
}

#[derive(Clone, Copy, Debug)]
struct Times {
    wall: f64,
    thread: f64,
    process: f64,
}

/// Best-of-`reps` times of `f` (by wall time).
fn time(reps: usize, mut f: impl FnMut()) -> Times {
    let mut best = Times {
        wall: f64::INFINITY,
        thread: 0.0,
        process: 0.0,
    };
    for _ in 0..reps {
        let (w0, t0, p0) = (Instant::now(), thread_ns(), process_cpu());
        f();
        let t = Times {
            wall: w0.elapsed().as_secs_f64(),
            thread: (thread_ns() - t0) as f64 * 1e-9,
            process: process_cpu() - p0,
        };
        if t.wall < best.wall {
            best = t;
        }
    }
    best
}

/// `n` samples of 10 Gaussian blobs in 784-d (centres uniform in [-1, 1], std 1), and
/// the 784-256-256-10 ReLU network (He uniform, seed 0).
fn problem<T: Real>(n: usize, threads: usize) -> NetProblem<T> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (d, k) = (784, 10);
    let centres = DMatrix::<f64>::from_fn(d, k, |_, _| 2.0 * nets::init::uniform01(&mut rng) - 1.0);
    let labels: Vec<usize> = (0..n).map(|j| j % k).collect();
    let mut x = DMatrix::<T>::zeros(d, n);
    for j in 0..n {
        for i in 0..d {
            let (z, _) = nets::init::normal_pair(&mut rng);
            x[(i, j)] = T::of(centres[(i, labels[j])] + z);
        }
    }
    let data = Dataset::new(x, Targets::Labels { labels, classes: k }).expect("data");
    let net = Sequential::mlp(
        &[d, 256, 256, k],
        Activation::Relu,
        Init::HeUniform,
        &mut rng,
    )
    .expect("net");
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    NetProblem::new(net, loss, data, None)
        .expect("problem")
        .with_threads(threads)
}

fn grad<T: Real>(n: usize, threads: usize, reps: usize) {
    let mut p = problem::<T>(n, threads);
    let mut g = vec![T::zero(); p.dim()];
    p.value_grad(None, &mut g).expect("grad"); // warm-up: tape buffers
    let t = time(reps, || {
        std::hint::black_box(p.value_grad(None, &mut g).expect("grad"));
    });
    println!(
        "grad {} N={n} threads={threads}: wall {:.3} s, thread CPU {:.3} s, process CPU {:.2} s",
        T::dtype_name(),
        t.wall,
        t.thread,
        t.process
    );
}

fn sums<T: Real>(n: usize, threads: usize, reps: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut draw =
        |rows: usize| DMatrix::<T>::from_fn(rows, n, |_, _| T::of(nets::init::uniform01(&mut rng)));
    let (a, z) = (draw(784), draw(256));
    // Each timed call keeps one workspace (and pool) for `INNER` reductions, as a solver
    // does across its iterations; the times are per reduction.
    const INNER: usize = 5;
    let t = time(reps, || {
        let r = solvers::admm::bench_sample_sums(&a, &z, threads, INNER).expect("sums");
        std::hint::black_box(r);
    });
    let per = INNER as f64;
    println!(
        "sums {} N={n} threads={threads}: wall {:.4} s, thread CPU {:.4} s, process CPU {:.3} s (per reduction)",
        T::dtype_name(),
        t.wall / per,
        t.thread / per,
        t.process / per
    );
}

/// The batch-1024 step on a fixed, contiguous batch: `value_grad(None)` of a problem of
/// exactly 1024 samples (no gather of scattered columns).
fn fixed<T: Real>(threads: usize, reps: usize) {
    let mut p = problem::<T>(1024, threads);
    let mut g = vec![T::zero(); p.dim()];
    p.value_grad(None, &mut g).expect("grad");
    let steps = 50;
    let t = time(reps, || {
        for _ in 0..steps {
            std::hint::black_box(p.value_grad(None, &mut g).expect("grad"));
        }
    });
    println!(
        "batch-1024 gradient on a fixed batch {} threads={threads}: wall {:.2} ms, thread CPU {:.2} ms per step",
        T::dtype_name(),
        t.wall / steps as f64 * 1e3,
        t.thread / steps as f64 * 1e3
    );
}

fn batch<T: Real>(threads: usize, reps: usize) {
    let mut p = problem::<T>(10_240, threads);
    let mut g = vec![T::zero(); p.dim()];
    let idx: Vec<usize> = (0..1024).map(|j| (j * 7919) % 10_240).collect();
    p.value_grad(Some(&idx), &mut g).expect("grad");
    let steps = 50;
    let t = time(reps, || {
        for _ in 0..steps {
            std::hint::black_box(p.value_grad(Some(&idx), &mut g).expect("grad"));
        }
    });
    println!(
        "batch-1024 gradient {} threads={threads}: wall {:.2} ms, thread CPU {:.2} ms per step",
        T::dtype_name(),
        t.wall / steps as f64 * 1e3,
        t.thread / steps as f64 * 1e3
    );
}

fn epoch(n: usize, threads: usize, epochs: u64, cadences: &[f64]) {
    let adam = || {
        AdamConfig {
            batching: Batching::mini(128),
            ..Default::default()
        }
        .build::<f32>()
        .expect("adam")
    };
    // Through the driver: `epochs` Adam epochs (one step each = 2 data passes), once
    // with an evaluation after every step and once per sparse cadence (0 = every step).
    let mut steps = 0;
    let mut driver_walls = Vec::new();
    for &k in cadences {
        let cadence = if k > 0.0 {
            EvalCadence::Passes(k)
        } else {
            EvalCadence::EveryStep
        };
        let mut p = TimedEval::new(problem::<f32>(n, threads));
        let (w0, t0) = (Instant::now(), thread_ns());
        let out = Driver::new(Budget::iterations(epochs))
            .threads(threads)
            .evaluate_every(cadence)
            .run(&mut p, &mut adam())
            .expect("run");
        let (wall, cpu) = (w0.elapsed().as_secs_f64(), (thread_ns() - t0) as f64 * 1e-9);
        let last = out.trace.last().expect("records");
        steps = last.iteration as usize;
        driver_walls.push((cadence, wall, cpu));
        let own = wall - p.wall - last.wall_time_s;
        println!(
            "Adam via Driver, N={n}, batch 128, {steps} epochs, evaluation {cadence:?}: {} records; \
             wall {wall:.3} s (thread CPU {cpu:.3} s); sum of steps as timed by the driver \
             {:.3} s; driver wall / sum of steps {:.3}\n  of which {} evaluations: wall {:.3} s \
             (thread CPU {:.3} s), {:.3} x the steps; the rest (driver bookkeeping): {own:.4} s, \
             (driver wall - evaluations) / sum of steps {:.4}",
            out.trace.records.len(),
            last.wall_time_s,
            wall / last.wall_time_s,
            p.evals,
            p.wall,
            p.cpu,
            p.wall / last.wall_time_s,
            (wall - p.wall) / last.wall_time_s
        );
        println!(
            "  inside the steps (same run): batch gradients with their gather {:.3} s wall \
             ({:.3} s CPU), set_params {:.3} s ({:.3} s CPU); steps / batch gradients {:.3} \
             (wall), the rest being the update rule, the shuffle and the flat-parameter copies",
            p.grad.0,
            p.grad.1,
            p.set.0,
            p.set.1,
            last.wall_time_s / p.grad.0
        );
    }
    // One evaluation (what the driver adds per record) against one full-batch gradient.
    let mut p = problem::<f32>(n, threads);
    let mut g = vec![0.0f32; p.dim()];
    let first = time(1, || {
        std::hint::black_box(solvers::Problem::evaluate(&mut p));
    });
    let e = time(2, || {
        std::hint::black_box(solvers::Problem::evaluate(&mut p));
    });
    println!(
        "first Problem::evaluate of a fresh problem: thread CPU {:.3} s",
        first.thread
    );
    let fg = time(2, || {
        std::hint::black_box(p.value_grad(None, &mut g).expect("grad"));
    });
    println!(
        "one Problem::evaluate: thread CPU {:.3} s; one full-batch gradient {:.3} s",
        e.thread, fg.thread
    );
    // The same steps in a bare loop (init, then `steps` calls of Solver::step).
    let mut p = problem::<f32>(n, threads);
    let mut s = adam();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut counters = Counters::default();
    let mut ctx = Context {
        rng: &mut rng,
        counters: &mut counters,
        iteration: 0,
        threads,
    };
    let (w0, t0) = (Instant::now(), thread_ns());
    s.init(&mut p, &mut ctx).expect("init");
    for it in 1..=steps as u64 {
        ctx.iteration = it;
        s.step(&mut p, &mut ctx).expect("step");
    }
    let (bw, bc) = (w0.elapsed().as_secs_f64(), (thread_ns() - t0) as f64 * 1e-9);
    // The gradients alone: one fixed batch of 128, as many as the epoch has batches.
    let mut p = problem::<f32>(n, threads);
    let mut g = vec![0.0f32; p.dim()];
    let idx: Vec<usize> = (0..128).collect();
    let batches = n.div_ceil(128) * steps;
    let (w1, t1) = (Instant::now(), thread_ns());
    for _ in 0..batches {
        std::hint::black_box(p.value_grad(Some(&idx), &mut g).expect("grad"));
    }
    let (gw, gc) = (w1.elapsed().as_secs_f64(), (thread_ns() - t1) as f64 * 1e-9);
    println!(
        "{batches} batch-128 gradients alone: wall {gw:.3} s (thread CPU {gc:.3} s); bare epoch / gradients {:.2} (wall), {:.2} (thread CPU)",
        bw / gw,
        bc / gc
    );
    println!("same {steps} steps in a bare loop: wall {bw:.3} s (thread CPU {bc:.3} s)");
    for (cadence, wall, cpu) in driver_walls {
        println!(
            "  driver ({cadence:?}) / bare loop: {:.3} (wall), {:.3} (thread CPU)",
            wall / bw,
            cpu / bc
        );
    }
}

const USAGE: &str = "usage: core_speed [grad] [batch] [fixed] [epoch] [sums] [--n N] \
[--threads T] [--reps R] [--epochs E] [--eval-every C1,C2,...]";

/// Prints `msg` and the usage, then exits with status 2 (a bad command line).
fn usage_error(msg: &str) -> ! {
    eprintln!("core_speed: {msg}\n{USAGE}");
    std::process::exit(2)
}

/// The command line: parts to run and the options, every argument checked (an unknown
/// part or option, a missing or malformed value, or a zero count exits with the usage).
struct Args {
    parts: Vec<String>,
    n: usize,
    threads: usize,
    reps: usize,
    epochs: u64,
    cadences: Vec<f64>,
}

fn parse_args() -> Args {
    let mut a = Args {
        parts: Vec::new(),
        n: 60_000,
        threads: 1,
        reps: 3,
        epochs: 1,
        cadences: vec![0.0],
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .unwrap_or_else(|| usage_error(&format!("{name} needs a value")))
        };
        let count = |name: &str, v: String| -> usize {
            match v.parse() {
                Ok(c) if c > 0 => c,
                _ => usage_error(&format!("{name} must be a positive integer, got {v:?}")),
            }
        };
        match arg.as_str() {
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            "grad" | "batch" | "fixed" | "epoch" | "sums" => a.parts.push(arg),
            "--n" => a.n = count("--n", value("--n")),
            "--threads" => a.threads = count("--threads", value("--threads")),
            "--reps" => a.reps = count("--reps", value("--reps")),
            "--epochs" => a.epochs = count("--epochs", value("--epochs")) as u64,
            "--eval-every" => {
                let v = value("--eval-every");
                a.cadences = v
                    .split(',')
                    .map(|c| match c.parse::<f64>() {
                        Ok(x) if x.is_finite() && x >= 0.0 => x,
                        _ => {
                            usage_error(&format!("--eval-every takes data passes >= 0, got {c:?}"))
                        }
                    })
                    .collect();
            }
            other => usage_error(&format!("unknown argument {other:?}")),
        }
    }
    a
}

fn main() {
    let Args {
        parts,
        n,
        threads,
        reps,
        epochs,
        cadences,
    } = parse_args();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let all = parts.is_empty();
    if all || parts.contains(&"grad") {
        grad::<f32>(n, threads, reps);
        grad::<f64>(n, threads, reps);
    }
    if all || parts.contains(&"batch") {
        batch::<f32>(threads, reps);
    }
    if all || parts.contains(&"fixed") {
        fixed::<f32>(threads, reps);
    }
    if all || parts.contains(&"epoch") {
        epoch(n, threads, epochs, &cadences);
    }
    if all || parts.contains(&"sums") {
        sums::<f32>(n, threads, reps);
        sums::<f64>(n, threads, reps);
    }
}
