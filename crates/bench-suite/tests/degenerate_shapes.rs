//! Every registered network solver on networks of degenerate shape (the class of the
//! session-11 review's defects: a zero-width layer built with
//! `Sequential::from_weights` panicked in the enclosure and in certified block MM):
//! a hidden layer of width zero or one, one training sample, one input feature, with a
//! least-squares and a cross-entropy loss. Each run of a few iterations through the
//! `Driver` must end `Ok` or with a typed error; a panic is a failure, and so is a
//! returned objective that is not finite when the run says it succeeded.

mod common;

use autodiff::Reduction;
use nalgebra::{DMatrix, DVector};
use nets::{Activation, Dataset, Loss, LossKind, Sequential, Targets};
use solvers::{Budget, Driver, NetProblem};

use bench_suite::runner::{Factory, SolverCtx, solver_registry};

/// A net `widths[0] - ... - widths[L]` with ReLU hidden layers and small deterministic
/// weights (any width may be 0).
fn net(widths: &[usize]) -> Sequential<f64> {
    let layers: Vec<(DMatrix<f64>, DVector<f64>)> = widths
        .windows(2)
        .enumerate()
        .map(|(l, w)| {
            let m = DMatrix::from_fn(w[1], w[0], |i, j| {
                ((i * 7 + j * 3 + l) % 5) as f64 * 0.2 - 0.4
            });
            let b = DVector::from_fn(w[1], |i, _| 0.05 * i as f64);
            (m, b)
        })
        .collect();
    let acts = vec![Activation::Relu; widths.len() - 2];
    Sequential::from_weights(&layers, &acts).unwrap()
}

fn problem(widths: &[usize], n: usize, kind: LossKind) -> NetProblem<f64> {
    let (d_in, d_out) = (widths[0], widths[widths.len() - 1]);
    let x = DMatrix::from_fn(d_in, n, |i, j| ((i * 5 + j * 3) % 7) as f64 / 7.0 - 0.4);
    let targets = match kind {
        LossKind::SoftmaxCrossEntropy => Targets::Labels {
            labels: (0..n).map(|j| j % d_out).collect(),
            classes: d_out,
        },
        _ => Targets::Dense(DMatrix::from_fn(d_out, n, |i, j| {
            ((i + 2 * j) % 3) as f64 - 1.0
        })),
    };
    let data = Dataset::new(x, targets).unwrap();
    let loss = Loss::new(kind, Reduction::Mean).with_l2(1e-4);
    NetProblem::new(net(widths), loss, data, None).unwrap()
}

#[test]
fn every_network_solver_survives_degenerate_shapes() {
    let shapes: [(&[usize], usize); 6] = [
        (&[3, 0, 2], 8),
        (&[3, 4, 0, 2], 8),
        (&[3, 1, 2], 8),
        (&[3, 4, 2], 1),
        (&[1, 1, 2], 5),
        (&[3, 1, 1, 2], 6),
    ];
    let mut tally = common::Tally::default();
    for entry in solver_registry() {
        let Factory::Network { f64: make, .. } = entry.factory else {
            continue;
        };
        for kind in [LossKind::Mse, LossKind::SoftmaxCrossEntropy] {
            for (widths, n) in shapes {
                let ctx = SolverCtx {
                    loss: Some(kind),
                    ..Default::default()
                };
                let what = format!("{} on {widths:?}, N = {n}, {kind:?}", entry.name);
                tally.run(&what, || {
                    let mut p = problem(widths, n, kind);
                    let mut built = make(&ctx).map_err(|e| e.to_string())?;
                    let out = Driver::new(Budget::iterations(3))
                        .run(&mut p, &mut built.solver)
                        .map_err(|e| e.to_string())?;
                    Ok(match out.trace.records.last().map(|r| r.objective) {
                        Some(f) if !f.is_finite() => Some(format!("finished with objective {f}")),
                        _ => None,
                    })
                });
            }
        }
    }
    tally.assert_clean(6 * 2 * 15);
}
