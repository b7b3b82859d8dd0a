use nalgebra::DMatrix;
use nets::{Activation, Init, Loss, LossKind, Reduction, Sequential, Targets};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::blocks::{Term, WBlock, XBlock, affine_into, relu_penalty_sum};
use super::inner::{Apg, SmoothBlock};
use super::*;
use crate::SolverError;

fn randm(r: usize, c: usize, rng: &mut ChaCha8Rng) -> DMatrix<f64> {
    DMatrix::from_fn(r, c, |_, _| rng.random::<f64>() * 2.0 - 1.0)
}

pub(super) struct Fixture {
    pub(super) net: Sequential<f64>,
    pub(super) x: DMatrix<f64>,
    pub(super) y: Targets<f64>,
    pub(super) loss: Loss,
}

pub(super) fn fixture(widths: &[usize], n: usize, kind: LossKind, seed: u64) -> Fixture {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let net = Sequential::mlp(widths, Activation::Relu, Init::HeNormal, &mut rng).unwrap();
    let x = randm(widths[0], n, &mut rng);
    let k = *widths.last().unwrap();
    let y = match kind {
        LossKind::Mse => Targets::Dense(randm(k, n, &mut rng)),
        _ => Targets::Labels {
            labels: (0..n).map(|_| rng.random_range(0..k)).collect(),
            classes: k,
        },
    };
    Fixture {
        net,
        x,
        y,
        loss: Loss::new(kind, Reduction::Mean).with_l2(1e-3),
    }
}

/// The lifted objective through nets' Fenchel penalty (an independent code path).
fn reference_objective(st: &LiftedState<f64>, f: &Fixture) -> f64 {
    let l_count = st.num_layers();
    let s = f.loss.sample_weight(f.x.ncols());
    let mut total = 0.0;
    for l in 0..l_count {
        let a = if l == 0 { &f.x } else { &st.x[l - 1] };
        let mut u = &st.layers[l][0] * a;
        for mut c in u.column_iter_mut() {
            c += &st.layers[l][1].column(0);
        }
        total += if l + 1 == l_count {
            f.loss.value(&u, &f.y).unwrap()
        } else {
            st.lambdas[l]
                * s
                * nets::fenchel::fenchel_penalty_sum(&Activation::Relu, &u, &st.x[l]).unwrap()
        };
        total += 0.5 * st.ridge * st.layers[l][0].norm_squared();
    }
    total
}

#[test]
fn relu_penalty_matches_nets_fenchel_penalty() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let u = randm(4, 7, &mut rng) * 3.0;
    let x = randm(4, 7, &mut rng).map(|v| v.abs() * 2.0);
    let ours = relu_penalty_sum(&u, &x);
    let theirs = nets::fenchel::fenchel_penalty_sum(&Activation::Relu, &u, &x).unwrap();
    assert!(
        (ours - theirs).abs() <= 1e-12 * (1.0 + theirs.abs()),
        "{ours} vs {theirs}"
    );
    assert!(ours > 0.1);
    // zero at x = relu(u)
    let r = u.map(|v| v.max(0.0));
    assert!(relu_penalty_sum(&u, &r).abs() < 1e-12);
}

fn fd_check<B: SmoothBlock<f64>>(block: &mut B, x: &[DMatrix<f64>]) {
    let mut g: Vec<DMatrix<f64>> = x
        .iter()
        .map(|m| DMatrix::zeros(m.nrows(), m.ncols()))
        .collect();
    let f0 = block.value_grad(x, &mut g).unwrap();
    assert!((f0 - block.value(x).unwrap()).abs() < 1e-12 * (1.0 + f0.abs()));
    let h = 1e-6;
    let mut xp = x.to_vec();
    let mut worst: f64 = 0.0;
    for p in 0..x.len() {
        for i in 0..x[p].len() {
            let orig = xp[p][i];
            xp[p][i] = orig + h;
            let fp = block.value(&xp).unwrap();
            xp[p][i] = orig - h;
            let fm = block.value(&xp).unwrap();
            xp[p][i] = orig;
            let fd = (fp - fm) / (2.0 * h);
            worst = worst.max((fd - g[p][i]).abs() / (1e-6 + fd.abs().max(g[p][i].abs())));
        }
    }
    assert!(worst < 1e-5, "worst relative gradient error {worst}");
}

#[test]
fn block_gradients_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (d0, d1, d2, n) = (3, 4, 3, 6);
    let a = randm(d0, n, &mut rng);
    // keep x away from the kink region of relu(v): fine for smooth-extension FD
    let xn = randm(d1, n, &mut rng).map(|v| v.abs());
    let w = randm(d1, d0, &mut rng);
    let b = randm(d1, 1, &mut rng);
    let (mut v, mut gv) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean);
    let y = Targets::Labels {
        labels: vec![0, 1, 2, 0, 1, 2],
        classes: 3,
    };
    let mut wb = WBlock {
        a: &a,
        term: Term::Hidden {
            x_next: &xn,
            lam: 0.7,
        },
        ridge: 0.3,
        v: &mut v,
        gv: &mut gv,
        threads: 1,
        metric: None,
    };
    fd_check(&mut wb, &[w.clone(), b.clone()]);
    let w2 = randm(d2, d1, &mut rng);
    let b2 = randm(d2, 1, &mut rng);
    let mut wo = WBlock {
        a: &xn,
        term: Term::Output {
            loss: &loss,
            targets: &y,
        },
        ridge: 0.1,
        v: &mut v,
        gv: &mut gv,
        threads: 1,
        metric: None,
    };
    fd_check(&mut wo, &[w2.clone(), b2.clone()]);
    let mut u = DMatrix::zeros(0, 0);
    affine_into(&mut u, &w, &b, &a, 1).unwrap();
    let mut xb = XBlock {
        u: &u,
        lam_own: 0.5,
        w_next: &w2,
        b_next: &b2,
        term: Term::Output {
            loss: &loss,
            targets: &y,
        },
        v: &mut v,
        gv: &mut gv,
        threads: 1,
    };
    fd_check(&mut xb, std::slice::from_ref(&xn));
    let x3 = randm(d2, n, &mut rng).map(|v| v.abs());
    let mut xh = XBlock {
        u: &u,
        lam_own: 0.5,
        w_next: &w2,
        b_next: &b2,
        term: Term::Hidden {
            x_next: &x3,
            lam: 2.0,
        },
        v: &mut v,
        gv: &mut gv,
        threads: 1,
    };
    fd_check(&mut xh, std::slice::from_ref(&xn));
}

#[test]
fn inner_solve_reaches_the_constrained_minimiser() {
    // X block to a tight tolerance: projected-gradient KKT residual ~ 0.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (d0, d1, d2, n) = (3, 5, 3, 8);
    let a = randm(d0, n, &mut rng);
    let (w, b) = (randm(d1, d0, &mut rng), randm(d1, 1, &mut rng));
    let (w2, b2) = (randm(d2, d1, &mut rng) * 2.0, randm(d2, 1, &mut rng));
    let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Sum);
    let y = Targets::Labels {
        labels: (0..n).map(|i| i % 3).collect(),
        classes: 3,
    };
    let mut u = DMatrix::zeros(0, 0);
    affine_into(&mut u, &w, &b, &a, 1).unwrap();
    let (mut v, mut gv) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
    let mut blk = XBlock {
        u: &u,
        lam_own: 0.2,
        w_next: &w2,
        b_next: &b2,
        term: Term::Output {
            loss: &loss,
            targets: &y,
        },
        v: &mut v,
        gv: &mut gv,
        threads: 1,
    };
    let mut x = vec![u.map(|z| z.max(0.0))];
    let mut lip = 1.0;
    let st = Apg::default()
        .solve(&mut blk, &mut x, &mut lip, 0.5, None, 1e-9, 5000)
        .unwrap();
    // A tolerance of 1e-9 sits at rounding level here: the solve may end stalled (no
    // further decrease) rather than converged; either way before its budget.
    assert!(st.converged || st.stalled, "{st:?}");
    assert!(st.end < st.start, "{st:?}");
    let mut g = vec![DMatrix::zeros(d1, n)];
    blk.value_grad(&x, &mut g).unwrap();
    // KKT for x >= 0: g = 0 where x > 0, g >= 0 where x = 0.
    let mut worst: f64 = 0.0;
    for (&xi, &gi) in x[0].iter().zip(g[0].iter()) {
        worst = worst.max(if xi > 0.0 { gi.abs() } else { (-gi).max(0.0) });
    }
    assert!(worst < 1e-6, "KKT residual {worst}");
    assert!(
        x[0].iter().any(|&v| v == 0.0),
        "some constraint should be active"
    );
}

fn check_monotone(kind: LossKind, seed: u64, precondition: bool) {
    check_monotone_with(kind, seed, precondition, WeightsMethod::Fista);
}

fn check_monotone_with(kind: LossKind, seed: u64, precondition: bool, method: WeightsMethod) {
    let f = fixture(&[5, 8, 6, 3], 40, kind, seed);
    let mut st = LiftedState::from_forward(&f.net, &f.loss, &f.x, vec![0.5, 2.0], 0.01).unwrap();
    st.curvature_bounds = precondition;
    st.weights_method = method;
    let j0 = reference_objective(&st, &f);
    let ours = st.objective(&f.x, &f.y, &f.loss, 1).unwrap();
    assert!(
        (ours - j0).abs() < 1e-12 * (1.0 + j0.abs()),
        "{ours} vs {j0}"
    );
    // At the forward initialisation J = true objective + (rho/2)||W||^2.
    let true_obj = f.net.objective(&f.loss, &f.x, &f.y).unwrap();
    let wsq: f64 = st.layers.iter().map(|p| p[0].norm_squared()).sum();
    assert!(
        (j0 - true_obj - 0.005 * wsq).abs() < 1e-10,
        "{j0} vs {true_obj}"
    );
    let mut prev = j0;
    let mut blocks = 0usize;
    let mut seen = Vec::new();
    let fx = &f;
    for _ in 0..4 {
        let mut hook = |s: &mut LiftedState<f64>, id: BlockId, inner: &InnerStats| {
            let j = reference_objective(s, fx);
            assert!(
                j <= prev + 1e-10 * (1.0 + prev.abs()),
                "{id:?}: J went from {prev} to {j}"
            );
            assert!(inner.end <= inner.start, "{id:?}: {inner:?}");
            assert!(
                s.x.iter().all(|m| m.iter().all(|v| *v >= 0.0)),
                "{id:?}: X < 0"
            );
            prev = j;
            blocks += 1;
            seen.push(id);
            Ok(())
        };
        st.sweep(&f.x, &f.y, &f.loss, 1e-4, 200, 1, &mut hook)
            .unwrap();
    }
    assert_eq!(blocks, 4 * 5);
    assert_eq!(
        &seen[..5],
        &[
            BlockId::Weights(3),
            BlockId::Activations(2),
            BlockId::Weights(2),
            BlockId::Activations(1),
            BlockId::Weights(1)
        ]
    );
    assert!(prev < 0.9 * j0, "J should decrease clearly: {j0} -> {prev}");
}

#[test]
fn lifted_objective_never_increases_across_blocks_softmax() {
    check_monotone(LossKind::SoftmaxCrossEntropy, 4, true);
    check_monotone(LossKind::SoftmaxCrossEntropy, 4, false);
}

#[test]
fn lifted_objective_never_increases_across_blocks_mse() {
    check_monotone(LossKind::Mse, 5, true);
    check_monotone(LossKind::Mse, 5, false);
}

#[test]
fn lifted_objective_never_increases_across_blocks_newton_weights() {
    for seed in [4, 6, 7] {
        check_monotone_with(
            LossKind::SoftmaxCrossEntropy,
            seed,
            true,
            WeightsMethod::NewtonCg,
        );
    }
    check_monotone_with(LossKind::Mse, 5, true, WeightsMethod::NewtonCg);
}

#[test]
fn weights_round_trip_and_violations_start_at_zero() {
    let f = fixture(&[4, 6, 3], 10, LossKind::SoftmaxCrossEntropy, 6);
    let mut st = LiftedState::from_forward(&f.net, &f.loss, &f.x, vec![1.0], 0.0).unwrap();
    let v = st.violations(&f.x, 1).unwrap();
    assert_eq!(v.len(), 1);
    assert!(v[0].0 < 1e-12);
    st.layers[0][0][(0, 0)] += 1.0;
    let mut net = f.net.clone();
    st.write_weights(&mut net).unwrap();
    assert_eq!(
        net.dense(0).unwrap().weight[(0, 0)],
        st.layers[0][0][(0, 0)]
    );
    let v = st.violations(&f.x, 1).unwrap();
    assert!(v[0].0 > 1e-3);
}

#[test]
fn config_errors_name_the_parameter() {
    let msg = |c: LiftedConfig| c.validate().unwrap_err().to_string();
    assert_eq!(
        msg(LiftedConfig {
            lambda: 0.0,
            ..Default::default()
        }),
        "invalid Lifted config: lambda = 0 must be finite and > 0"
    );
    assert_eq!(
        msg(LiftedConfig {
            rho: -1.0,
            ..Default::default()
        }),
        "invalid Lifted config: rho = -1 must be finite and >= 0"
    );
    assert_eq!(
        msg(LiftedConfig {
            inner_tol: 1.5,
            ..Default::default()
        }),
        "invalid Lifted config: inner_tol = 1.5 must be in (0, 1)"
    );
    assert_eq!(
        msg(LiftedConfig {
            inner_max_iters: 0,
            ..Default::default()
        }),
        "invalid Lifted config: inner_max_iters = 0 must be >= 1"
    );
    assert_eq!(
        msg(LiftedConfig {
            sweeps_per_step: 0,
            ..Default::default()
        }),
        "invalid Lifted config: sweeps_per_step = 0 must be >= 1"
    );
    assert_eq!(
        msg(LiftedConfig {
            layer_lambdas: Some(vec![1.0, f64::NAN]),
            ..Default::default()
        }),
        "invalid Lifted config: layer_lambdas = NaN must all be finite and > 0"
    );
    assert!(LiftedConfig::default().validate().is_ok());
}

#[test]
fn unsupported_networks_and_losses_are_typed_errors() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let net =
        Sequential::<f64>::mlp(&[3, 4, 2], Activation::Tanh, Init::HeNormal, &mut rng).unwrap();
    let loss = Loss::new(LossKind::Mse, Reduction::Mean);
    let e = check_network(&net, &loss).unwrap_err();
    assert_eq!(
        e,
        SolverError::NotApplicable(
            "Lifted: activation tanh is not supported (the lifted solver encodes ReLU hidden layers only)"
                .into()
        )
    );
    assert_eq!(
        e.to_string(),
        "not applicable: Lifted: activation tanh is not supported (the lifted solver encodes ReLU hidden layers only)"
    );
    let net =
        Sequential::<f64>::mlp(&[3, 4, 2], Activation::Relu, Init::HeNormal, &mut rng).unwrap();
    let hinge = Loss::new(LossKind::MulticlassHinge, Reduction::Mean);
    assert!(matches!(
        check_network(&net, &hinge),
        Err(SolverError::NotApplicable(m)) if m.contains("multiclass_hinge")
    ));
    let x = DMatrix::zeros(3, 5);
    let e = LiftedState::from_forward(&net, &loss, &x, vec![1.0, 1.0], 0.0).unwrap_err();
    assert!(e.to_string().contains("layer_lambdas"), "{e}");
}

#[test]
fn non_finite_data_is_an_error_not_nan_weights() {
    let mut f = fixture(&[3, 4, 2], 6, LossKind::Mse, 8);
    f.x[(0, 0)] = f64::NAN;
    // forward_trace accepts the NaN; the first block must refuse it.
    let mut st = LiftedState::from_forward(&f.net, &f.loss, &f.x, vec![1.0], 0.0).unwrap();
    let e = st
        .sweep(&f.x, &f.y, &f.loss, 1e-3, 10, 1, &mut |_, _, _| Ok(()))
        .unwrap_err();
    assert!(matches!(e, SolverError::NonFinite(_)), "{e}");
}
