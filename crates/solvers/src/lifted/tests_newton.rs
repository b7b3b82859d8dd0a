//! Tests of the semismooth Newton-CG weights solve (round 4 of issue #14): gradient and
//! Hessian products against finite differences, the regularised product against the
//! dense metric, monotone decrease with a truthful reported value, and convergence to
//! the minimiser the FISTA solve reaches.

use nalgebra::DMatrix;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::super::blocks::{Metric, Term, WBlock};
use super::super::inner::Apg;
use super::super::metric::weights_metric_inverse;
use super::*;

fn randm(r: usize, c: usize, rng: &mut ChaCha8Rng) -> DMatrix<f64> {
    DMatrix::from_fn(r, c, |_, _| rng.random::<f64>() * 2.0 - 1.0)
}

/// A hidden block: uncentred inputs, nonnegative targets with zeros, a ridge.
struct Case {
    a: DMatrix<f64>,
    x_next: DMatrix<f64>,
    w: DMatrix<f64>,
    b: DMatrix<f64>,
    lam: f64,
    ridge: f64,
    minv: DMatrix<f64>,
}

fn case(seed: u64, d_in: usize, d_out: usize, n: usize) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let a = randm(d_in, n, &mut rng).map(|v| v.abs() * 2.0 + 0.5);
    let x_next = randm(d_out, n, &mut rng).map(|v| v.max(0.0));
    let w = randm(d_out, d_in, &mut rng);
    let b = randm(d_out, 1, &mut rng);
    let (lam, ridge) = (0.3 / n as f64, 0.05);
    let (mut gram, mut minv) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
    weights_metric_inverse(&a, lam, ridge, &mut gram, &mut minv, 1).unwrap();
    Case {
        a,
        x_next,
        w,
        b,
        lam,
        ridge,
        minv,
    }
}

fn blk(c: &Case) -> HiddenW<'_, f64> {
    HiddenW {
        a: &c.a,
        x_next: &c.x_next,
        lam: c.lam,
        ridge: c.ridge,
        minv: &c.minv,
        threads: 1,
    }
}

/// The block gradient through the Newton code's own passes.
fn grad(b: &HiddenW<'_, f64>, x: &[DMatrix<f64>; 2]) -> [DMatrix<f64>; 2] {
    let (mut v, mut gv) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
    affine_into(&mut v, &x[0], &x[1], b.a, 1).unwrap();
    let mut rows = vec![0.0; v.nrows()];
    b.rows_value(&v, Some(&mut gv), &mut rows);
    let mut g = [x[0].clone(), x[1].clone()];
    b.backward(&gv, &x[0], b.ridge, &mut g).unwrap();
    g
}

/// The case's hidden weights block as the FISTA blocks see it (`metric`: its
/// preconditioner, or `None` for the Euclidean metric).
fn fista_block<'a>(
    c: &'a Case,
    v: &'a mut DMatrix<f64>,
    gv: &'a mut DMatrix<f64>,
    metric: Option<Metric<'a, f64>>,
) -> WBlock<'a, f64> {
    WBlock {
        a: &c.a,
        term: Term::Hidden {
            x_next: &c.x_next,
            lam: c.lam,
        },
        ridge: c.ridge,
        v,
        gv,
        threads: 1,
        metric,
    }
}

#[test]
fn newton_gradient_and_hessian_products_match_finite_differences() {
    let c = case(11, 4, 3, 30);
    let b = blk(&c);
    let x = [c.w.clone(), c.b.clone()];
    let g = grad(&b, &x);
    let mut v = DMatrix::zeros(0, 0);
    let h = 1e-6;
    let mut worst: f64 = 0.0;
    for k in 0..2 {
        for i in 0..x[k].len() {
            let mut xp = x.clone();
            xp[k][i] += h;
            let fp = b.value(&xp, &mut v).unwrap();
            xp[k][i] -= 2.0 * h;
            let fm = b.value(&xp, &mut v).unwrap();
            let fd = (fp - fm) / (2.0 * h);
            worst = worst.max((fd - g[k][i]).abs() / (1e-8 + fd.abs().max(g[k][i].abs())));
        }
    }
    assert!(worst < 1e-5, "worst relative gradient error {worst}");

    // Generalized Hessian product (mu = 0) against differences of the gradient; the
    // step is far below the smallest |V| entry, so the mask does not change.
    affine_into(&mut v, &x[0], &x[1], b.a, 1).unwrap();
    let vmin = v.iter().map(|t| t.abs()).fold(f64::INFINITY, f64::min);
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let p = [randm(3, 4, &mut rng), randm(3, 1, &mut rng)];
    let (mut qp, mut wq) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
    let mut hp = [DMatrix::zeros(3, 4), DMatrix::zeros(3, 1)];
    b.hess_prod(&v, &p, 0.0, &mut qp, &mut wq, &mut hp).unwrap();
    let e = 1e-3 * vmin / 10.0;
    assert!(e > 0.0);
    let xp = [&x[0] + &p[0] * e, &x[1] + &p[1] * e];
    let xm = [&x[0] - &p[0] * e, &x[1] - &p[1] * e];
    let (gp, gm) = (grad(&b, &xp), grad(&b, &xm));
    let mut worst: f64 = 0.0;
    for k in 0..2 {
        for i in 0..hp[k].len() {
            let fd = (gp[k][i] - gm[k][i]) / (2.0 * e);
            worst = worst.max((fd - hp[k][i]).abs() / (1e-10 + fd.abs().max(hp[k][i].abs())));
        }
    }
    assert!(worst < 1e-5, "worst relative Hessian-product error {worst}");
    // Not a trivial check: the mask is mixed.
    let active = v.iter().filter(|t| **t > 0.0).count();
    assert!(active > 0 && active < v.len(), "{active} of {}", v.len());

    // The regularised product adds mu times the metric's product p M.
    let mu = 0.25;
    let mut hr = [DMatrix::zeros(3, 4), DMatrix::zeros(3, 1)];
    b.hess_prod(&v, &p, mu, &mut qp, &mut wq, &mut hr).unwrap();
    let (d, n) = c.a.shape();
    let mut at = DMatrix::from_element(d + 1, n, 1.0);
    at.rows_mut(0, d).copy_from(&c.a);
    let mut m = &at * at.transpose() * c.lam;
    for i in 0..d {
        m[(i, i)] += c.ridge;
    }
    let mut pc = DMatrix::zeros(3, d + 1);
    pc.columns_mut(0, d).copy_from(&p[0]);
    pc.column_mut(d).copy_from(&p[1].column(0));
    let pm = &pc * &m;
    for k in 0..2 {
        let want = |r: usize, col: usize| {
            let cc = if k == 0 { col } else { d };
            hp[k][(r, col)] + mu * pm[(r, cc)]
        };
        for r in 0..3 {
            for col in 0..hr[k].ncols() {
                let (got, w) = (hr[k][(r, col)], want(r, col));
                assert!(
                    (got - w).abs() <= 1e-12 * (1.0 + w.abs()),
                    "regularised product {got} vs {w}"
                );
            }
        }
    }
}

#[test]
fn newton_solve_is_monotone_and_reports_the_true_value() {
    let c = case(21, 6, 5, 80);
    let b = blk(&c);
    let mut v = DMatrix::zeros(0, 0);
    let x0 = [c.w.clone(), c.b.clone()];
    let f0 = b.value(&x0, &mut v).unwrap();
    let mut newton = Newton::default();
    let mut prev_best = f0;
    for cap in [1usize, 2, 3, 5, 8, 13, 30] {
        let mut x = vec![c.w.clone(), c.b.clone()];
        let st = newton.solve(&b, &mut x, 1e-12, cap).unwrap();
        let fresh = b.value(&[x[0].clone(), x[1].clone()], &mut v).unwrap();
        assert!(st.iterations <= cap, "cap {cap}: {st:?}");
        assert!((st.start - f0).abs() <= 1e-13 * f0.abs(), "{st:?} vs {f0}");
        assert!(st.end <= st.start, "cap {cap}: {st:?}");
        assert!(
            (fresh - st.end).abs() <= 1e-12 * (1.0 + fresh.abs()),
            "cap {cap}: reported {} vs fresh {fresh}",
            st.end
        );
        if cap >= 2 {
            assert!(st.end < f0, "cap {cap}: no decrease {st:?}");
        }
        prev_best = prev_best.min(st.end);
    }
    assert!(prev_best < 0.99 * f0, "{prev_best} vs {f0}");
    // Warm start from a solved point: stays put (to rounding), still monotone.
    let mut x = vec![c.w.clone(), c.b.clone()];
    let st = newton.solve(&b, &mut x, 1e-10, 500).unwrap();
    // 1e-10 is at rounding level for this block: it ends stalled or converged, not at
    // its budget.
    assert!(st.converged || st.stalled, "{st:?}");
    let again = newton.solve(&b, &mut x, 1e-3, 50).unwrap();
    assert!(again.end <= again.start, "{again:?}");
    assert!(
        (again.end - st.end).abs() <= 1e-12 * st.end.abs(),
        "{again:?} vs {st:?}"
    );
}

/// Newton-CG and the preconditioned FISTA solve reach the same minimiser of a hidden
/// weights block (strongly convex in W through the ridge).
#[test]
fn newton_reaches_the_fista_minimiser() {
    let c = case(31, 5, 4, 60);
    let b = blk(&c);
    let mut x_newton = vec![c.w.clone(), c.b.clone()];
    let sn = Newton::default()
        .solve(&b, &mut x_newton, 1e-9, 2_000)
        .unwrap();
    assert!(sn.converged, "{sn:?}");

    let (mut v, mut gv) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
    let (mut gcat, mut pcat) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
    let mut img = std::array::from_fn(|_| DMatrix::zeros(0, 0));
    let metric = Some(Metric {
        minv: &c.minv,
        gcat: &mut gcat,
        pcat: &mut pcat,
        img: &mut img,
    });
    let mut wb = fista_block(&c, &mut v, &mut gv, metric);
    let mut x_fista = vec![c.w.clone(), c.b.clone()];
    let mut lip = 1.0;
    let sf = Apg::default()
        .solve(
            &mut wb,
            &mut x_fista,
            &mut lip,
            0.5,
            Some(1.0),
            1e-9,
            200_000,
        )
        .unwrap();
    assert!(sf.converged, "{sf:?}");
    assert!(
        (sn.end - sf.end).abs() <= 1e-10 * (1.0 + sf.end.abs()),
        "{} vs {}",
        sn.end,
        sf.end
    );
    let diff = (&x_newton[0] - &x_fista[0])
        .abs()
        .max()
        .max((&x_newton[1] - &x_fista[1]).abs().max());
    assert!(diff < 1e-5, "minimisers differ by {diff}");
    // Newton's end point is stationary: its gradient is tiny against the start's.
    let g0 = grad(&b, &[c.w.clone(), c.b.clone()]);
    let g1 = grad(&b, &[x_newton[0].clone(), x_newton[1].clone()]);
    let norm = |g: &[DMatrix<f64>; 2]| (g[0].norm_squared() + g[1].norm_squared()).sqrt();
    assert!(
        norm(&g1) <= 1e-8 * norm(&g0),
        "{} vs {}",
        norm(&g1),
        norm(&g0)
    );
}

/// A zero-width hidden layer (buildable with `Sequential::from_weights`, user data):
/// sweeps with either weights method run (no panic) and do not increase the objective;
/// the Newton blocks of width 0 (`d_out = 0`) and on an empty input (`d_in = 0`) are
/// both reached.
#[test]
fn zero_width_hidden_layer_does_not_panic() {
    use crate::lifted::{LiftedState, WeightsMethod};
    use nets::{Activation, Loss, LossKind, Reduction, Sequential, Targets};
    let mut rng = ChaCha8Rng::seed_from_u64(41);
    let widths = [5usize, 0, 4, 3];
    let layers: Vec<(DMatrix<f64>, nalgebra::DVector<f64>)> = (0..3)
        .map(|l| {
            (
                randm(widths[l + 1], widths[l], &mut rng),
                nalgebra::DVector::from_element(widths[l + 1], 0.1),
            )
        })
        .collect();
    let net = Sequential::from_weights(&layers, &[Activation::Relu, Activation::Relu]).unwrap();
    let n = 12;
    let x = randm(5, n, &mut rng);
    let y = Targets::Dense(randm(3, n, &mut rng));
    let loss = Loss::new(LossKind::Mse, Reduction::Mean).with_l2(1e-3);
    for method in [WeightsMethod::NewtonCg, WeightsMethod::Fista] {
        let mut st = LiftedState::from_forward(&net, &loss, &x, vec![1.0, 1.0], 0.0).unwrap();
        st.weights_method = method;
        let j0 = st.objective(&x, &y, &loss, 1).unwrap();
        let s = st
            .sweep(&x, &y, &loss, 1e-3, 5, 1, &mut |_, _, _| Ok(()))
            .unwrap();
        assert_eq!(s.blocks, 5, "{method:?}: {s:?}");
        let j1 = st.objective(&x, &y, &loss, 1).unwrap();
        assert!(
            j1 <= j0 + 1e-12 * (1.0 + j0.abs()),
            "{method:?}: {j0} -> {j1}"
        );
    }
}

/// With a tolerance of 0 (never met unless the gradient vanishes exactly) and budgets far
/// beyond what the block needs, both inner methods end because no step decreases the
/// block objective any more: each reports `stalled`, not `converged` (they reported
/// `converged` before session 12), and the sweep statistics keep the two apart.
#[test]
fn a_solve_stopped_at_rounding_is_stalled_not_converged() {
    let c = case(41, 5, 4, 60);
    let b = blk(&c);
    let mut x = vec![c.w.clone(), c.b.clone()];
    let sn = Newton::default().solve(&b, &mut x, 0.0, 500).unwrap();
    assert!(sn.stalled && !sn.converged, "{sn:?}");
    assert!(sn.iterations < 500, "Newton-CG ran out its budget: {sn:?}");
    let g = grad(&b, &[x[0].clone(), x[1].clone()]);
    assert!(
        g[0].norm() + g[1].norm() > 0.0,
        "the gradient vanished exactly"
    );

    let (mut v, mut gv) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
    let mut wb = fista_block(&c, &mut v, &mut gv, None);
    let mut xf = vec![c.w.clone(), c.b.clone()];
    let mut lip = 1.0;
    let sf = Apg::default()
        .solve(&mut wb, &mut xf, &mut lip, 0.5, None, 0.0, 1_000_000)
        .unwrap();
    assert!(sf.stalled && !sf.converged, "{sf:?}");
    assert!(
        sf.iterations < 1_000_000,
        "FISTA ran out its budget: {sf:?}"
    );
}
