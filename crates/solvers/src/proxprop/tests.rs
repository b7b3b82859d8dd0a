use nalgebra::DMatrix;
use nets::{Activation, Dataset, Init, Loss, LossKind, Reduction, Sequential, Targets};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::{Context, Counters, NetProblem, Problem, Solver, SolverError};

fn randm(r: usize, c: usize, rng: &mut ChaCha8Rng) -> DMatrix<f64> {
    DMatrix::from_fn(r, c, |_, _| rng.random::<f64>() * 2.0 - 1.0)
}

/// `G Ab^T` split as (G A^T, G 1).
fn plain_grad(a: &DMatrix<f64>, g: &DMatrix<f64>) -> (DMatrix<f64>, Vec<f64>) {
    (
        g * a.transpose(),
        (0..g.nrows()).map(|i| g.row(i).sum()).collect(),
    )
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let d: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let n: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    d / n.max(1e-300)
}

fn solve(a: &DMatrix<f64>, g: &DMatrix<f64>, tau: f64, how: ProxSolve) -> (Vec<f64>, usize) {
    let mut lp = LinearProx::default();
    let mut dw = DMatrix::zeros(0, 0);
    let mut db = vec![0.0; g.nrows()];
    let k = lp.solve(a, g, tau, how, &mut dw, &mut db, 1).unwrap();
    let mut v = dw.as_slice().to_vec();
    v.extend(db);
    (v, k)
}

#[test]
fn exact_step_solves_the_proximal_problem() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (din, dout, b, tau) = (5, 3, 9, 0.7);
    let a = randm(din, b, &mut rng);
    let g = randm(dout, b, &mut rng);
    let w0 = randm(dout, din, &mut rng);
    let b0 = randm(dout, 1, &mut rng);
    let (d, k) = solve(&a, &g, tau, ProxSolve::Exact);
    assert_eq!(k, 1);
    let dw = DMatrix::from_column_slice(dout, din, &d[..dout * din]);
    let db = DMatrix::from_column_slice(dout, 1, &d[dout * din..]);
    // theta_new = theta_old - D; prox objective gradient at theta_new must vanish.
    let (w1, b1) = (&w0 - &dw, &b0 - &db);
    let ones = DMatrix::from_element(1, b, 1.0);
    let z0 = &w0 * &a + &b0 * &ones;
    let zt = &z0 - &g;
    let r = &w1 * &a + &b1 * &ones - zt;
    let gw = &r * a.transpose() + (&w1 - &w0) / tau;
    let gb = &r * ones.transpose() + (&b1 - &b0) / tau;
    assert!(
        gw.norm() < 1e-10 && gb.norm() < 1e-10,
        "{} {}",
        gw.norm(),
        gb.norm()
    );
}

#[test]
fn penalised_step_solves_the_penalised_proximal_problem() {
    // theta_new = argmin (1/2)||Theta Ab - (Z - G)||^2 + (l2/2)||W||^2
    //                    + (1/(2 tau))||Theta - Theta_old||^2  (bias unpenalised),
    // exactly (Cholesky) and by CG run to convergence.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (din, dout, b, tau, l2) = (5, 3, 9, 0.7, 0.3);
    let a = randm(din, b, &mut rng);
    let g = randm(dout, b, &mut rng);
    let w0 = randm(dout, din, &mut rng);
    let b0 = randm(dout, 1, &mut rng);
    let ones = DMatrix::from_element(1, b, 1.0);
    let zt = &w0 * &a + &b0 * &ones - &g;
    for how in [
        ProxSolve::Exact,
        ProxSolve::Cg {
            iters: 200,
            tol: 1e-14,
        },
    ] {
        let mut lp = LinearProx::default();
        let mut dw = DMatrix::zeros(0, 0);
        let mut db = vec![0.0; dout];
        lp.solve_penalized(&a, &g, tau, Some((l2, &w0)), how, &mut dw, &mut db, 1)
            .unwrap();
        let db = DMatrix::from_column_slice(dout, 1, &db);
        let (w1, b1) = (&w0 - &dw, &b0 - &db);
        let r = &w1 * &a + &b1 * &ones - &zt;
        let gw = &r * a.transpose() + &w1 * l2 + (&w1 - &w0) / tau;
        let gb = &r * ones.transpose() + (&b1 - &b0) / tau;
        assert!(
            gw.norm() < 1e-9 && gb.norm() < 1e-9,
            "{how:?}: {} {}",
            gw.norm(),
            gb.norm()
        );
    }
    // D = 0 exactly where the penalised gradient G Ab^T + l2 [W 0] vanishes: take G with
    // G A^T = -l2 W and G 1 = 0 (G = -l2 W A^+ projected), here by construction.
    let a2 = DMatrix::from_row_slice(2, 4, &[1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0, -1.0]);
    let w = DMatrix::from_row_slice(1, 2, &[0.5, -2.0]);
    // G A^T = -l2 W with G = [g1, -g1, g2, -g2]: 2 g1 = -l2 w1, 2 g2 = -l2 w2.
    let g2 = DMatrix::from_row_slice(1, 4, &[-l2 * 0.25, l2 * 0.25, l2 * 1.0, -l2 * 1.0]);
    let mut lp = LinearProx::default();
    let (mut dw, mut db) = (DMatrix::zeros(0, 0), vec![0.0]);
    lp.solve_penalized(
        &a2,
        &g2,
        tau,
        Some((l2, &w)),
        ProxSolve::Exact,
        &mut dw,
        &mut db,
        1,
    )
    .unwrap();
    assert!(dw.norm() < 1e-14 && db[0].abs() < 1e-14, "{dw} {db:?}");
    // Without the penalty inside the prox (l2 = 0) the same point would move.
    lp.solve(&a2, &g2, tau, ProxSolve::Exact, &mut dw, &mut db, 1)
        .unwrap();
    assert!(dw.norm() > 1e-3);
}

#[test]
fn cg_run_to_convergence_agrees_with_exact() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (din, dout, b) = (6, 4, 20);
    let a = randm(din, b, &mut rng);
    let g = randm(dout, b, &mut rng);
    for tau in [0.05, 1.0, 20.0] {
        let (ex, _) = solve(&a, &g, tau, ProxSolve::Exact);
        let (cg, k) = solve(
            &a,
            &g,
            tau,
            ProxSolve::Cg {
                iters: 200,
                tol: 1e-12,
            },
        );
        assert!(
            k <= din + 1 + 2,
            "CG on a {}-dim system took {k} steps",
            din + 1
        );
        assert!(rel(&cg, &ex) < 1e-8, "tau {tau}: {}", rel(&cg, &ex));
        // One CG step is a per-unit scaled gradient, not the exact step (unless tau tiny).
        let (cg1, k1) = solve(
            &a,
            &g,
            tau,
            ProxSolve::Cg {
                iters: 1,
                tol: 1e-2,
            },
        );
        assert_eq!(k1, 1);
        assert!(rel(&cg1, &ex) > 1e-3, "tau {tau}: cg1 should differ");
    }
}

#[test]
fn small_tau_gives_tau_times_the_gradient() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (a, g) = (randm(4, 7, &mut rng), randm(3, 7, &mut rng));
    let (gw, gb) = plain_grad(&a, &g);
    let mut grad = gw.as_slice().to_vec();
    grad.extend(gb);
    for (tau, bound) in [(1e-2, 0.2), (1e-4, 2e-3), (1e-6, 2e-5)] {
        for how in [
            ProxSolve::Exact,
            ProxSolve::Cg {
                iters: 1,
                tol: 1e-2,
            },
        ] {
            let (d, _) = solve(&a, &g, tau, how);
            let scaled: Vec<f64> = d.iter().map(|v| v / tau).collect();
            let e = rel(&scaled, &grad);
            assert!(e < bound, "tau {tau} {how:?}: relative error {e}");
        }
    }
}

struct Net {
    net: Sequential<f64>,
    loss: Loss,
    x: DMatrix<f64>,
    y: Targets<f64>,
}

fn small_net(seed: u64) -> Net {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let net = Sequential::mlp(&[4, 7, 5, 3], Activation::Relu, Init::HeNormal, &mut rng).unwrap();
    let x = randm(4, 30, &mut rng);
    let y = Targets::Labels {
        labels: (0..30).map(|_| rng.random_range(0..3)).collect(),
        classes: 3,
    };
    Net {
        net,
        loss: Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean).with_l2(1e-3),
        x,
        y,
    }
}

fn direction(n: &Net, rules: &[LayerRule]) -> (Vec<f64>, f64) {
    let layout = FlatLayout::of(&n.net).unwrap();
    let mut out = vec![0.0; layout.len];
    let st = Direction::default()
        .compute(&n.net, &layout, &n.loss, &n.x, &n.y, rules, &mut out, 1)
        .unwrap();
    (out, st.loss)
}

fn objective(net: &Sequential<f64>, n: &Net) -> f64 {
    net.objective(&n.loss, &n.x, &n.y).unwrap()
}

#[test]
fn gradient_rules_reproduce_backprop() {
    let n = small_net(4);
    let (d, loss) = direction(&n, &[LayerRule::Gradient; 3]);
    let mut tape = autodiff::Tape::new();
    let mut g = vec![0.0; n.net.num_params()];
    let f = nets::loss_and_grad(&n.net, &n.loss, &n.x, &n.y, &mut tape, &mut g).unwrap();
    assert!(rel(&d, &g) < 1e-12, "{}", rel(&d, &g));
    assert!((f - loss - n.net.weight_penalty(n.loss.l2)).abs() < 1e-12);
}

#[test]
fn proxprop_direction_is_a_descent_direction() {
    let n = small_net(5);
    let (grad, _) = direction(&n, &[LayerRule::Gradient; 3]);
    let f0 = objective(&n.net, &n);
    for how in [
        ProxSolve::Exact,
        ProxSolve::Cg {
            iters: 1,
            tol: 1e-2,
        },
        ProxSolve::Cg {
            iters: 3,
            tol: 1e-2,
        },
    ] {
        for tau in [0.05, 1.0, 10.0] {
            let rules = [
                LayerRule::Prox(how, tau),
                LayerRule::Prox(how, tau),
                LayerRule::Prox(how, tau),
            ];
            let (d, _) = direction(&n, &rules);
            let dot: f64 = d.iter().zip(&grad).map(|(a, b)| a * b).sum();
            let cos = dot
                / (d.iter().map(|v| v * v).sum::<f64>().sqrt()
                    * grad.iter().map(|v| v * v).sum::<f64>().sqrt());
            assert!(cos > 0.05, "{how:?} tau {tau}: cos {cos}");
            let mut net = n.net.clone();
            let mut p = net.flat_params();
            for (pi, di) in p.iter_mut().zip(&d) {
                *pi -= 1e-3 * di;
            }
            net.params_from_flat(&p).unwrap();
            let f1 = objective(&net, &n);
            assert!(f1 < f0, "{how:?} tau {tau}: {f0} -> {f1}");
        }
    }
}

#[test]
fn network_direction_tends_to_tau_times_gradient() {
    let mut n = small_net(10);
    n.loss.l2 = 0.0;
    let (grad, _) = direction(&n, &[LayerRule::Gradient; 3]);
    for how in [
        ProxSolve::Exact,
        ProxSolve::Cg {
            iters: 1,
            tol: 1e-2,
        },
    ] {
        let tau = 1e-6;
        let (d, _) = direction(&n, &[LayerRule::Prox(how, tau); 3]);
        let scaled: Vec<f64> = d.iter().map(|v| v / tau).collect();
        let e = rel(&scaled, &grad);
        assert!(e < 1e-4, "{how:?}: {e}");
    }
}

#[test]
fn network_exact_and_converged_cg_agree() {
    let n = small_net(6);
    let ex = [LayerRule::Prox(ProxSolve::Exact, 0.5); 3];
    let cg = [LayerRule::Prox(
        ProxSolve::Cg {
            iters: 100,
            tol: 1e-12,
        },
        0.5,
    ); 3];
    let (a, _) = direction(&n, &ex);
    let (b, _) = direction(&n, &cg);
    assert!(rel(&b, &a) < 1e-8, "{}", rel(&b, &a));
}

fn problem(seed: u64) -> NetProblem<f64> {
    let n = small_net(seed);
    NetProblem::new(n.net, n.loss, Dataset::new(n.x, n.y).unwrap(), None).unwrap()
}

fn run(
    solver: &mut ProxProp<f64>,
    p: &mut NetProblem<f64>,
    steps: u64,
    rng: &mut ChaCha8Rng,
    c: &mut Counters,
) -> Vec<f64> {
    let mut out = Vec::new();
    for it in 1..=steps {
        let mut ctx = Context {
            rng,
            counters: c,
            iteration: it,
            threads: 1,
        };
        solver.step(p, &mut ctx).unwrap();
        out.push(p.evaluate().objective);
    }
    out
}

#[test]
fn sgd_lr1_proxprop_trains_and_counts() {
    let mut p = problem(7);
    let f0 = p.evaluate().objective;
    let cfg = ProxPropConfig {
        batch_size: 10,
        mode: ProxMode::Exact,
        outer: Outer::Sgd {
            lr: 1.0,
            momentum: 0.0,
            nesterov: false,
        },
        ..Default::default()
    };
    let mut s = cfg.build::<f64>().unwrap();
    let (mut rng, mut c) = (ChaCha8Rng::seed_from_u64(1), Counters::default());
    {
        let mut ctx = Context {
            rng: &mut rng,
            counters: &mut c,
            iteration: 0,
            threads: 1,
        };
        s.init(&mut p, &mut ctx).unwrap();
    }
    let objs = run(&mut s, &mut p, 20, &mut rng, &mut c);
    assert!(objs[19] < 0.8 * f0, "{f0} -> {objs:?}");
    // 20 epochs of 3 batches (30 samples): one forward + one backward pass per batch.
    assert_eq!(c.samples_seen, 2 * 20 * 30);
    assert_eq!((c.forward, c.backward), (20 * 3, 20 * 3));
    // Exact mode: one Cholesky per hidden layer per batch (output layer plain).
    assert_eq!(c.inner_solves, 20 * 3 * 2);
}

#[test]
fn cg_steps_count_a_forward_and_a_backward_pass_each() {
    // The trace's counters against the products `M P` tallied where they happen
    // (`linear::tally`): 3 layers, prox on the 2 hidden ones, 3 CG steps at most each.
    let mut p = problem(7);
    let cfg = ProxPropConfig {
        batch_size: 10,
        mode: ProxMode::Cg { iters: 3 },
        ..Default::default()
    };
    let mut s = cfg.build::<f64>().unwrap();
    let (mut rng, mut c) = (ChaCha8Rng::seed_from_u64(1), Counters::default());
    {
        let mut ctx = Context {
            rng: &mut rng,
            counters: &mut c,
            iteration: 0,
            threads: 1,
        };
        s.init(&mut p, &mut ctx).unwrap();
    }
    let t0 = super::linear::tally::read();
    run(&mut s, &mut p, 4, &mut rng, &mut c);
    let products = super::linear::tally::read() - t0;
    // 4 epochs of 3 batches: one forward and one backward each, plus the CG steps.
    let batches = 4 * 3;
    assert!(
        products >= batches * 2 && products <= batches * 2 * 3,
        "{products}"
    );
    assert_eq!(
        (c.forward, c.backward),
        (batches + products, batches + products)
    );
    assert_eq!(c.samples_seen, 10 * (c.forward + c.backward));
    assert_eq!(c.inner_solves, products);
}

#[test]
fn checkpoint_resume_is_bit_identical() {
    let cfg = ProxPropConfig {
        batch_size: 8,
        outer: Outer::adam(1e-2),
        ..Default::default()
    };
    let mut p1 = problem(8);
    let mut s1 = cfg.clone().build::<f64>().unwrap();
    let (mut rng, mut c) = (ChaCha8Rng::seed_from_u64(2), Counters::default());
    {
        let mut ctx = Context {
            rng: &mut rng,
            counters: &mut c,
            iteration: 0,
            threads: 1,
        };
        s1.init(&mut p1, &mut ctx).unwrap();
    }
    run(&mut s1, &mut p1, 2, &mut rng, &mut c);
    let (state, params, rng_saved) = (s1.save_state(), p1.save_params(), rng.clone());
    let a = run(&mut s1, &mut p1, 2, &mut rng, &mut c);
    let mut p2 = problem(8);
    p2.load_params(&params).unwrap();
    let mut s2 = cfg.build::<f64>().unwrap();
    s2.load_state(&state).unwrap();
    let mut rng2 = rng_saved;
    let b = run(&mut s2, &mut p2, 2, &mut rng2, &mut c);
    assert_eq!(a, b);
}

#[test]
fn config_errors_name_the_parameter() {
    let msg = |c: ProxPropConfig| c.validate().unwrap_err().to_string();
    assert_eq!(
        msg(ProxPropConfig {
            tau_prox: 0.0,
            ..Default::default()
        }),
        "invalid ProxProp config: tau_prox = 0 must be finite and > 0"
    );
    assert_eq!(
        msg(ProxPropConfig {
            mode: ProxMode::Cg { iters: 0 },
            ..Default::default()
        }),
        "invalid ProxProp config: cg iters = 0 must be >= 1"
    );
    assert_eq!(
        msg(ProxPropConfig {
            batch_size: 0,
            ..Default::default()
        }),
        "invalid ProxProp config: batch_size = 0 must be >= 1"
    );
    assert_eq!(
        msg(ProxPropConfig {
            outer: Outer::Sgd {
                lr: 1.0,
                momentum: 0.0,
                nesterov: true
            },
            ..Default::default()
        }),
        "invalid ProxProp config: momentum = 0 must be > 0 with Nesterov"
    );
    assert_eq!(
        msg(ProxPropConfig {
            outer: Outer::adam(f64::NAN),
            ..Default::default()
        }),
        "invalid ProxProp config: lr = NaN must be finite and > 0"
    );
    assert_eq!(
        msg(ProxPropConfig {
            cg_tol: 0.0,
            ..Default::default()
        }),
        "invalid ProxProp config: cg_tol = 0 must be in (0, 1)"
    );
}

#[test]
fn divergence_is_an_error_not_nan_weights() {
    // A huge plain-gradient step on MSE with huge targets overflows: typed error.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let net = Sequential::mlp(&[3, 5, 2], Activation::Relu, Init::HeNormal, &mut rng).unwrap();
    let x = randm(3, 10, &mut rng) * 1e3;
    let y = Targets::Dense(randm(2, 10, &mut rng) * 1e30);
    let mut p = NetProblem::new(
        net,
        Loss::new(LossKind::Mse, Reduction::Sum),
        Dataset::new(x, y).unwrap(),
        None,
    )
    .unwrap();
    let cfg = ProxPropConfig {
        mode: ProxMode::Gradient,
        batch_size: 10,
        outer: Outer::Sgd {
            lr: 1e10,
            momentum: 0.0,
            nesterov: false,
        },
        ..Default::default()
    };
    let mut s = cfg.build::<f64>().unwrap();
    let mut c = Counters::default();
    let mut ctx = Context {
        rng: &mut rng,
        counters: &mut c,
        iteration: 0,
        threads: 1,
    };
    s.init(&mut p, &mut ctx).unwrap();
    let mut err = None;
    for _ in 0..20 {
        if let Err(e) = s.step(&mut p, &mut ctx) {
            err = Some(e);
            break;
        }
    }
    assert!(matches!(err, Some(SolverError::NonFinite(_))), "{err:?}");
    assert!(p.net.flat_params().iter().all(|v| v.is_finite()));
}
