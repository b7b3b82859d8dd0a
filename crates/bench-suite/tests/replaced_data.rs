//! Every registered network solver when the problem's training set is replaced between
//! steps (`NetProblem::train` is a public field; the session-12 review found that a
//! mini-batch pass after such a replacement panicked on the old batch buffer). Solvers
//! that keep per-sample state (ADMM's and BCD's auxiliary variables, the lifted network's
//! activations, block MM's traces) size it at `init`: after the replacement each step
//! must still return `Ok` (a solver that re-sizes its state) or a typed error, never
//! panic, and an `Ok` step must leave finite parameters.

mod common;

use autodiff::Reduction;
use nalgebra::DMatrix;
use nets::{Activation, Dataset, Init, Loss, LossKind, Sequential, Targets};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::{Context, Counters, NetProblem, Problem};

use bench_suite::runner::{Factory, SolverCtx, solver_registry};

fn data(n: usize, d_in: usize, d_out: usize, kind: LossKind, shift: usize) -> Dataset<f64> {
    let x = DMatrix::from_fn(d_in, n, |i, j| {
        ((i * 5 + j * 3 + shift) % 7) as f64 / 7.0 - 0.4
    });
    let targets = match kind {
        LossKind::SoftmaxCrossEntropy => Targets::Labels {
            labels: (0..n).map(|j| (j + shift) % d_out).collect(),
            classes: d_out,
        },
        _ => Targets::Dense(DMatrix::from_fn(d_out, n, |i, j| {
            ((i + 2 * j + shift) % 3) as f64 - 1.0
        })),
    };
    Dataset::new(x, targets).unwrap()
}

/// Steps `solver` `k` times; the first error ends the loop (returned as text).
fn steps(
    solver: &mut dyn solvers::Solver<NetProblem<f64>>,
    p: &mut NetProblem<f64>,
    ctx: &mut Context,
    k: usize,
) -> Result<(), String> {
    for _ in 0..k {
        ctx.iteration += 1;
        solver.step(p, ctx).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[test]
fn every_network_solver_survives_a_replaced_training_set() {
    let widths = [3usize, 5, 4, 2];
    // (samples before, samples after): fewer, more, the same number of other samples.
    let sizes = [(12usize, 7usize), (12, 19), (12, 12)];
    let mut tally = common::Tally::default();
    for entry in solver_registry() {
        let Factory::Network { f64: make, .. } = entry.factory else {
            continue;
        };
        for kind in [LossKind::Mse, LossKind::SoftmaxCrossEntropy] {
            for (n0, n1) in sizes {
                let ctx_build = SolverCtx {
                    loss: Some(kind),
                    ..Default::default()
                };
                let what = format!("{} ({kind:?}), N {n0} -> {n1}", entry.name);
                tally.run(&what, || {
                    let mut rng = ChaCha8Rng::seed_from_u64(3);
                    let net = Sequential::mlp(&widths, Activation::Relu, Init::HeUniform, &mut rng)
                        .unwrap();
                    let loss = Loss::new(kind, Reduction::Mean).with_l2(1e-4);
                    let d_out = widths[widths.len() - 1];
                    let mut p =
                        NetProblem::new(net, loss, data(n0, widths[0], d_out, kind, 0), None)
                            .unwrap();
                    let mut built = make(&ctx_build).map_err(|e| e.to_string())?;
                    let mut counters = Counters::default();
                    let mut ctx = Context {
                        rng: &mut rng,
                        counters: &mut counters,
                        iteration: 0,
                        threads: 1,
                    };
                    built
                        .solver
                        .init(&mut p, &mut ctx)
                        .map_err(|e| e.to_string())?;
                    steps(built.solver.as_mut(), &mut p, &mut ctx, 2)?;
                    p.train = data(n1, widths[0], d_out, kind, 1);
                    steps(built.solver.as_mut(), &mut p, &mut ctx, 2)?;
                    Ok((!p.params_finite()).then(|| "non-finite parameters".to_string()))
                });
            }
        }
    }
    tally.assert_clean(3 * 2 * 15);
}
