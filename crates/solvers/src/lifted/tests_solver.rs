//! Solver-level tests of the lifted network: steps through the [`Solver`] interface,
//! checkpoint and resume, f32 sweeps (moved from `tests.rs`, unchanged).

use nets::{Activation, Init, LossKind, Sequential, Targets};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::tests::fixture;
use super::*;

fn net_problem(seed: u64) -> crate::NetProblem<f64> {
    let f = fixture(&[5, 8, 6, 3], 40, LossKind::SoftmaxCrossEntropy, seed);
    crate::NetProblem::new(f.net, f.loss, nets::Dataset::new(f.x, f.y).unwrap(), None).unwrap()
}

type StepOut = (f64, f64, Vec<(String, f64)>);

fn steps(
    s: &mut Lifted<f64>,
    p: &mut crate::NetProblem<f64>,
    k: u64,
    c: &mut crate::Counters,
) -> Vec<StepOut> {
    use crate::{Problem, Solver};
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    (1..=k)
        .map(|it| {
            let mut ctx = crate::Context {
                rng: &mut rng,
                counters: c,
                iteration: it,
                threads: 1,
            };
            let r = s.step(p, &mut ctx).unwrap();
            (r.surrogate.unwrap(), p.evaluate().objective, r.extras)
        })
        .collect()
}

#[test]
fn solver_steps_decrease_the_surrogate_and_write_the_network() {
    // The default (Newton-CG hidden weights blocks, 5 evaluations) and round 3's.
    solver_steps_check(LiftedConfig {
        lambda: 0.5,
        ..Default::default()
    });
    solver_steps_check(LiftedConfig {
        lambda: 0.5,
        ..LiftedConfig::round3()
    });
}

fn solver_steps_check(cfg: LiftedConfig) {
    use crate::{Problem, Solver};
    let fista = cfg.weights_method == WeightsMethod::Fista;
    let mut p = net_problem(10);
    let f0 = p.evaluate().objective;
    let mut s = cfg.build::<f64>().unwrap();
    let mut c = crate::Counters::default();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    s.init(
        &mut p,
        &mut crate::Context {
            rng: &mut rng,
            counters: &mut c,
            iteration: 0,
            threads: 1,
        },
    )
    .unwrap();
    assert_eq!(c.samples_seen, 40);
    let tally0 = super::blocks::tally::read();
    let out = steps(&mut s, &mut p, 6, &mut c);
    let mut prev = f0 + 0.0; // J at init equals the true objective (rho = 0)
    for (j, _, _) in &out {
        assert!(*j <= prev + 1e-10, "surrogate rose: {prev} -> {j}");
        prev = *j;
    }
    assert!(out[5].0 < 0.9 * f0, "{f0} -> {:?}", out[5].0);
    // One data pass (40 samples) at init, then one per evaluation of a block objective
    // (each touches all samples through its layer): a forward per value, a forward and a
    // backward per value-and-gradient. The evaluations are counted by the blocks
    // themselves (`blocks::tally`), independently of the solver's counters.
    let extra = |e: &[(String, f64)], k: &str| e.iter().find(|(n, _)| n == k).unwrap().1;
    let reported: f64 = out
        .iter()
        .map(|(_, _, e)| extra(e, "inner_iterations") + extra(e, "backtracking_trials"))
        .sum();
    let (values, grads) = super::blocks::tally::read();
    let (values, grads) = (values - tally0.0, grads - tally0.1);
    assert!(grads > 6 * 10, "{grads} inner iterations in 6 sweeps");
    // 3 layers: 5 blocks per sweep, each solve starts with one value; every FISTA
    // iteration makes at least one trial (Newton's Hessian products make none).
    assert!(values >= 6 * 5, "{values} values, {grads} gradients");
    if fista {
        assert!(
            values >= grads + 6 * 5,
            "{values} values, {grads} gradients"
        );
    }
    assert_eq!((c.forward, c.backward), (1 + values + grads, grads));
    assert_eq!(c.samples_seen, 40 * (c.forward + c.backward));
    assert_eq!(c.inner_solves, reported as u64);
    assert_eq!(c.inner_solves, values - 6 * 5 + grads);
    let names: Vec<&str> = out[0].2.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "viol_l1",
        "viol_rel_l1",
        "viol_l2",
        "lambda_l1",
        "lambda_l2",
        "rho",
        "inner_iterations",
    ] {
        assert!(names.contains(&want), "missing {want} in {names:?}");
    }
    // The network holds the solver's weights.
    let st = s.state().unwrap();
    assert_eq!(p.net.dense(2).unwrap().weight, st.layers[2][0]);
}

#[test]
fn lifted_checkpoint_resume_is_bit_identical() {
    use crate::{Problem, Solver};
    let cfg = LiftedConfig {
        lambda: 0.5,
        ..Default::default()
    };
    let mut p1 = net_problem(11);
    let mut s1 = cfg.clone().build::<f64>().unwrap();
    let mut c = crate::Counters::default();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    s1.init(
        &mut p1,
        &mut crate::Context {
            rng: &mut rng,
            counters: &mut c,
            iteration: 0,
            threads: 1,
        },
    )
    .unwrap();
    steps(&mut s1, &mut p1, 2, &mut c);
    let (state, params) = (s1.save_state(), p1.save_params());
    let a = steps(&mut s1, &mut p1, 2, &mut c);
    let mut p2 = net_problem(11);
    p2.load_params(&params).unwrap();
    let mut s2 = cfg.build::<f64>().unwrap();
    s2.load_state(&state).unwrap();
    let b = steps(&mut s2, &mut p2, 2, &mut c);
    assert_eq!(a, b);
}

#[test]
fn f32_sweep_is_monotone_up_to_rounding() {
    f32_sweep_check(WeightsMethod::Fista, 50);
    f32_sweep_check(WeightsMethod::NewtonCg, 5);
}

fn f32_sweep_check(method: WeightsMethod, cap: usize) {
    let f = fixture(&[5, 8, 3], 30, LossKind::SoftmaxCrossEntropy, 12);
    let net32: Sequential<f32> = {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        Sequential::mlp(&[5, 8, 3], Activation::Relu, Init::HeNormal, &mut rng).unwrap()
    };
    let x32 = f.x.map(|v| v as f32);
    let y32 = match &f.y {
        Targets::Labels { labels, classes } => Targets::Labels {
            labels: labels.clone(),
            classes: *classes,
        },
        Targets::Dense(m) => Targets::Dense(m.map(|v| v as f32)),
    };
    let mut st = LiftedState::from_forward(&net32, &f.loss, &x32, vec![1.0], 0.0).unwrap();
    st.weights_method = method;
    let mut prev = st.objective(&x32, &y32, &f.loss, 1).unwrap();
    let j0 = prev;
    for _ in 0..5 {
        st.sweep(&x32, &y32, &f.loss, 1e-3, cap, 1, &mut |s, id, _| {
            let j = s.objective(&x32, &y32, &f.loss, 1)?;
            assert!(
                j <= prev + 1e-5 * (1.0 + prev.abs()),
                "{id:?}: {prev} -> {j}"
            );
            prev = j;
            Ok(())
        })
        .unwrap();
    }
    assert!(prev < j0);
}
