//! Steady-state allocation: beyond what the gradient oracle itself allocates
//! (`nets::loss_and_grad`, measured here: 8 small allocations per call at the time of
//! writing, inside nets/autodiff), a mini-batch epoch of Adam and an L-BFGS iteration
//! allocate a small constant number of times (the step report's names), not per batch
//! or per parameter. Counted with a global counting allocator (this test binary only).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use autodiff::Reduction;
use nalgebra::DMatrix;
use nets::{Activation, Dataset, Init, Loss, LossKind, Sequential, Targets};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::first_order::AdamConfig;
use solvers::lbfgs::LbfgsConfig;
use solvers::{Batching, Context, Counters, NetProblem, Solver};

struct Counting;

// Per-thread counter: only the test's own thread is counted, never the harness's main
// thread (a process-wide counter made allocation tests fail at random).
thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn bump() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        bump();
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn problem() -> NetProblem<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let n = 100;
    let x = DMatrix::from_fn(5, n, |i, j| ((i * 13 + j * 7) % 17) as f32 / 17.0 - 0.5);
    let labels = (0..n).map(|j| j % 3).collect();
    let data = Dataset::new(x, Targets::Labels { labels, classes: 3 }).unwrap();
    let net =
        Sequential::mlp(&[5, 16, 16, 3], Activation::Relu, Init::HeUniform, &mut rng).unwrap();
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    NetProblem::new(net, loss, data, None).unwrap()
}

fn allocs_in<F: FnMut()>(mut f: F) -> u64 {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

#[test]
fn solver_overhead_per_step_is_a_constant_handful() {
    use solvers::Differentiable;
    let mut p = problem();
    let mut g = vec![0f32; p.dim()];
    let b: Vec<usize> = (0..10).collect();
    for _ in 0..3 {
        p.value_grad(Some(&b), &mut g).unwrap();
    }
    let per_batch = allocs_in(|| {
        p.value_grad(Some(&b), &mut g).unwrap();
    });
    for _ in 0..3 {
        p.value_grad(None, &mut g).unwrap();
    }
    let per_full = allocs_in(|| {
        p.value_grad(None, &mut g).unwrap();
    });
    let mut x = vec![0f32; p.dim()];
    assert_eq!(allocs_in(|| p.params(&mut x)), 0);
    assert_eq!(allocs_in(|| p.set_params(&x).unwrap()), 0);

    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut counters = Counters::default();
    let mut adam = AdamConfig {
        batching: Batching::mini(10),
        ..Default::default()
    }
    .build::<f32>()
    .unwrap();
    let mut ctx = Context {
        rng: &mut rng,
        counters: &mut counters,
        iteration: 0,
        threads: 1,
    };
    adam.init(&mut p, &mut ctx).unwrap();
    adam.step(&mut p, &mut ctx).unwrap(); // warm-up
    let n = allocs_in(|| {
        adam.step(&mut p, &mut ctx).unwrap();
    });
    eprintln!(
        "oracle: {per_batch} allocations per mini-batch call, {per_full} per full-batch call"
    );
    eprintln!("Adam epoch of 10 mini-batches: {n} allocations");
    assert!(
        n <= 10 * per_batch + 6,
        "{n} allocations in one epoch of 10 batches"
    );

    let mut lbfgs = LbfgsConfig::default().build::<f32>().unwrap();
    lbfgs.init(&mut p, &mut ctx).unwrap();
    for _ in 0..12 {
        lbfgs.step(&mut p, &mut ctx).unwrap(); // fill the history (m = 10)
    }
    let evals_before = ctx.counters.forward;
    let n = allocs_in(|| {
        lbfgs.step(&mut p, &mut ctx).unwrap();
    });
    let evals = ctx.counters.forward - evals_before;
    eprintln!("L-BFGS iteration with full history: {n} allocations, {evals} evaluations");
    assert!(evals >= 1);
    assert!(
        n <= evals * per_full + 8,
        "{n} allocations in one L-BFGS iteration"
    );
}
