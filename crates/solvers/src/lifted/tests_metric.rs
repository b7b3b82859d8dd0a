//! Tests of the weights-block metric (issue #14): it bounds the block's Hessian, the
//! preconditioned inner solve reaches the same minimiser as the Euclidean one, and
//! sweeps stay monotone with it on and off.

use nalgebra::DMatrix;
use nets::{Loss, LossKind, Reduction, Targets};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::blocks::{Metric, Term, WBlock};
use super::inner::{Apg, SmoothBlock};
use super::metric::weights_metric_inverse;

fn randm(r: usize, c: usize, rng: &mut ChaCha8Rng) -> DMatrix<f64> {
    DMatrix::from_fn(r, c, |_, _| rng.random::<f64>() * 2.0 - 1.0)
}

/// The metric itself, `M = c Ã Ã^T + ridge diag(1, .., 1, 0)`, without jitter.
fn metric_dense(a: &DMatrix<f64>, c: f64, ridge: f64) -> DMatrix<f64> {
    let (d, n) = a.shape();
    let mut at = DMatrix::from_element(d + 1, n, 1.0);
    at.rows_mut(0, d).copy_from(a);
    let mut m = &at * at.transpose() * c;
    for i in 0..d {
        m[(i, i)] += ridge;
    }
    m
}

fn losses() -> Vec<(Loss, Targets<f64>, usize)> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let n = 12;
    vec![
        (
            Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean),
            Targets::Labels {
                labels: (0..n).map(|i| i % 4).collect(),
                classes: 4,
            },
            4,
        ),
        (
            Loss::new(LossKind::Mse, Reduction::Sum),
            Targets::Dense(randm(3, n, &mut rng)),
            3,
        ),
        (
            Loss::new(LossKind::Logistic, Reduction::Mean),
            Targets::Dense(randm(2, n, &mut rng).map(|v| 0.5 * (v + 1.0))),
            2,
        ),
    ]
}

#[test]
fn metric_inverse_inverts_the_metric_up_to_its_jitter() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let a = randm(5, 30, &mut rng);
    let (mut gram, mut minv) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
    weights_metric_inverse(&a, 0.3, 0.2, &mut gram, &mut minv, 1).unwrap();
    let m = metric_dense(&a, 0.3, 0.2);
    let prod = &m * &minv;
    let err = (prod - DMatrix::<f64>::identity(6, 6)).abs().max();
    // The jitter is sqrt(eps) relative to the mean diagonal.
    assert!(err < 1e-6, "M M^-1 - I = {err}");
    assert!(err > 0.0);
}

/// The descent lemma in the metric: `f(D + E) <= f(D) + <g, E> + (1/2) tr(E M E^T)` for
/// random anchors and directions of every scale, for the hidden penalty and each
/// smooth loss. The bound is tight for the quadratic part of the ReLU penalty (all
/// pre-activations positive), so it cannot hold by a wide margin only.
#[test]
fn metric_majorizes_every_weights_block() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let n = 12;
    let a = randm(4, n, &mut rng);
    let xnext = randm(3, n, &mut rng).map(f64::abs);
    let mut cases: Vec<(Term<f64>, usize, &str)> = vec![(
        Term::Hidden {
            x_next: &xnext,
            lam: 0.7 / n as f64,
        },
        3,
        "hidden",
    )];
    let ls = losses();
    for (loss, y, k) in &ls {
        cases.push((Term::Output { loss, targets: y }, *k, "output"));
    }
    let mut worst_ratio: f64 = 0.0;
    for (term, k, what) in cases {
        let s = match term {
            Term::Output { loss, .. } => loss.sample_weight(n),
            Term::Hidden { .. } => 1.0,
        };
        let c = term.curvature(s).unwrap();
        let ridge = 0.05;
        let m = metric_dense(&a, c, ridge);
        let (mut v, mut gv) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
        let mut blk = WBlock {
            a: &a,
            term,
            ridge,
            v: &mut v,
            gv: &mut gv,
            threads: 1,
            metric: None,
        };
        for trial in 0..40 {
            let scale = 10f64.powi(trial % 5 - 2);
            let d = [randm(k, 4, &mut rng) * 2.0, randm(k, 1, &mut rng)];
            let e = [randm(k, 4, &mut rng) * scale, randm(k, 1, &mut rng) * scale];
            let mut g = [DMatrix::zeros(k, 4), DMatrix::zeros(k, 1)];
            let f0 = blk.value_grad(&d, &mut g).unwrap();
            let moved = [&d[0] + &e[0], &d[1] + &e[1]];
            let f1 = blk.value(&moved).unwrap();
            let lin = g[0].dot(&e[0]) + g[1].dot(&e[1]);
            let mut ecat = DMatrix::zeros(k, 5);
            ecat.columns_mut(0, 4).copy_from(&e[0]);
            ecat.column_mut(4).copy_from(&e[1]);
            let quad = 0.5 * (&ecat * &m * ecat.transpose()).trace();
            assert!(
                f1 <= f0 + lin + quad + 1e-12 * (1.0 + f0.abs()),
                "{what} trial {trial}: f(D+E) = {f1} > {} (lin {lin}, quad {quad})",
                f0 + lin + quad
            );
            if quad > 1e-12 {
                worst_ratio = worst_ratio.max((f1 - f0 - lin) / quad);
            }
        }
    }
    // Some direction uses a good part of the bound (it is not vacuous).
    assert!(
        worst_ratio > 0.5,
        "largest curvature / bound = {worst_ratio}"
    );
}

/// The preconditioned solve (with its kept pre-activation images) and the Euclidean one
/// reach the same minimiser of a strongly convex weights block (softmax output, ridge) to
/// a tight tolerance, the preconditioned one in fewer iterations on badly scaled inputs.
#[test]
fn preconditioned_solve_reaches_the_euclidean_minimiser_in_fewer_iterations() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (d, k, n) = (6, 4, 50);
    // Badly scaled, uncentred inputs (like pixels or ReLU activations).
    let mut a = randm(d, n, &mut rng).map(|v| v.abs() * 3.0 + 1.0);
    a.row_mut(0).scale_mut(10.0);
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    let y = Targets::Labels {
        labels: (0..n).map(|i| (i * 7) % k).collect(),
        classes: k,
    };
    let ridge = 1e-2;
    let solve = |pre: bool| {
        let (mut v, mut gv) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
        let (mut gram, mut minv) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
        let (mut gcat, mut pcat) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
        let mut img = std::array::from_fn(|_| DMatrix::zeros(0, 0));
        let term = Term::Output {
            loss: &loss,
            targets: &y,
        };
        let metric = if pre {
            let c = term.curvature(loss.sample_weight(n)).unwrap();
            weights_metric_inverse(&a, c, ridge, &mut gram, &mut minv, 1).unwrap();
            Some(Metric {
                minv: &minv,
                gcat: &mut gcat,
                pcat: &mut pcat,
                img: &mut img,
            })
        } else {
            None
        };
        let mut blk = WBlock {
            a: &a,
            term,
            ridge,
            v: &mut v,
            gv: &mut gv,
            threads: 1,
            metric,
        };
        let mut x = vec![DMatrix::zeros(k, d), DMatrix::zeros(k, 1)];
        let mut lip = 1.0;
        let st = Apg::default()
            .solve(
                &mut blk,
                &mut x,
                &mut lip,
                0.5,
                pre.then_some(1.0),
                1e-8,
                20_000,
            )
            .unwrap();
        // The solve's last value (from its kept images when preconditioned) equals a
        // fresh evaluation: the images do not drift.
        let fresh = blk.value(&x).unwrap();
        assert!(
            (fresh - st.end).abs() <= 1e-13 * (1.0 + fresh.abs()),
            "{fresh} vs {}",
            st.end
        );
        let mut g = vec![DMatrix::zeros(k, d), DMatrix::zeros(k, 1)];
        blk.value_grad(&x, &mut g).unwrap();
        let gnorm = (g[0].norm_squared() + g[1].norm_squared()).sqrt();
        (x, st, gnorm)
    };
    let (xe, se, ge) = solve(false);
    let (xp, sp, gp) = solve(true);
    // Both end before their budgets, tolerance met or stalled at rounding (the gradient
    // norms are checked next).
    assert!(
        (se.converged || se.stalled) && (sp.converged || sp.stalled),
        "{se:?} {sp:?}"
    );
    assert!(ge < 1e-6 && gp < 1e-6, "gradients {ge} {gp}");
    let diff = (&xe[0] - &xp[0])
        .abs()
        .max()
        .max((&xe[1] - &xp[1]).abs().max());
    assert!(diff < 1e-4, "minimisers differ by {diff}");
    assert!((se.end - sp.end).abs() < 1e-10, "{} vs {}", se.end, sp.end);
    assert!(
        2 * sp.iterations < se.iterations,
        "preconditioned {} vs Euclidean {} iterations",
        sp.iterations,
        se.iterations
    );
}

/// With the curvature bounds the X blocks' step search starts at most at their Lipschitz
/// bound `lam s + c ||W_next||_2^2 <= lam s + c ||W_next||_F^2`, not at the initial
/// estimate 1 (far above the curvature of a mean-reduced X block, ~1/N), so they make
/// real steps from the first sweep; without them the estimate stays near 1/2.
#[test]
fn x_blocks_start_their_step_search_at_the_lipschitz_bound() {
    use super::{BlockId, InnerStats, LiftedState};
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (n, widths) = (60, [4usize, 7, 3]);
    let net = nets::Sequential::mlp(
        &widths,
        nets::Activation::Relu,
        nets::Init::HeNormal,
        &mut rng,
    )
    .unwrap();
    let x = randm(4, n, &mut rng);
    let y = Targets::Labels {
        labels: (0..n).map(|i| i % 3).collect(),
        classes: 3,
    };
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    for bounds in [true, false] {
        let mut st = LiftedState::from_forward(&net, &loss, &x, vec![1.0], 0.0).unwrap();
        st.curvature_bounds = bounds;
        let mut seen = None;
        let mut hook = |s: &mut LiftedState<f64>, id: BlockId, inner: &InnerStats| {
            if id == BlockId::Activations(1) {
                let w = &s.layers[1][0];
                let bound = (1.0 + 0.5 * w.norm_squared()) / n as f64;
                seen = Some((inner.lipschitz, bound));
            }
            Ok(())
        };
        st.sweep(&x, &y, &loss, 1e-3, 50, 1, &mut hook).unwrap();
        let (lip, bound) = seen.unwrap();
        if bounds {
            assert!(lip <= 2.0 * bound, "estimate {lip} above 2 x bound {bound}");
        } else {
            assert!(
                lip >= 0.25,
                "Euclidean estimate {lip} (carried from 1, halved)"
            );
        }
    }
}
