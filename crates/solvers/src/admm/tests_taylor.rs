//! Tests of the Taylor et al. engine (block descent, planted teacher, errors, threads).

use autodiff::Reduction;
use nalgebra::{DMatrix, DVector};
use nets::{Activation, Dataset, Init, Loss, LossKind, Sequential, Targets};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::linalg::{SampleSums, SumsWork, sample_sums};
use super::*;
use crate::SolverError;

pub(crate) fn gauss(rng: &mut ChaCha8Rng, r: usize, c: usize) -> DMatrix<f64> {
    let mut m = DMatrix::zeros(r, c);
    for v in m.iter_mut() {
        let (a, _) = nets::init::normal_pair(rng);
        *v = a;
    }
    m
}

pub(crate) fn net(widths: &[usize], seed: u64) -> Sequential<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Sequential::mlp(widths, Activation::Relu, Init::HeNormal, &mut rng).unwrap()
}

/// A planted 2-layer ReLU teacher `d0 -> hid -> out` with nonzero biases and
/// noise-free targets.
pub(crate) fn teacher_data(d0: usize, hid: usize, out: usize, n: usize) -> Dataset<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut t = net(&[d0, hid, out], 99);
    for l in 0..2 {
        let d = t.dense_mut(l).unwrap();
        let bl = d.bias.len();
        d.bias = DVector::from_iterator(bl, gauss(&mut rng, bl, 1).iter().map(|v| 0.3 * v));
    }
    let x = gauss(&mut rng, d0, n);
    let y = t.predict(&x).unwrap();
    Dataset::new(x, Targets::Dense(y)).unwrap()
}

fn j_never_increases(cfg: TaylorConfig, loss: Loss, data: &Dataset<f64>, widths: &[usize]) {
    let n0 = net(widths, 3);
    let mut s = TaylorAdmm::new(cfg).unwrap();
    s.initialize(&n0, &loss, data).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (k, n) = s.multiplier().shape();
    *s.multiplier_mut() = gauss(&mut rng, k, n) * 0.7;
    let mut prev = s.augmented_objective(data, 1).unwrap();
    let mut checked = 0;
    for sweep in 0..4 {
        for block in s.blocks() {
            s.run_block(block, data, 1).unwrap();
            let j = s.augmented_objective(data, 1).unwrap();
            assert!(
                j <= prev + 1e-10 * prev.abs().max(1.0),
                "sweep {sweep} block {block:?}: J rose from {prev} to {j}"
            );
            prev = j;
            checked += 1;
        }
    }
    assert!(checked >= 4 * 7);
}

#[test]
fn augmented_objective_with_multiplier_never_increases_blockwise() {
    let data = teacher_data(4, 6, 3, 50);
    let widths = [4, 7, 5, 3];
    // Least squares, with and without an L2 term (Mean reduction rescales it).
    for l2 in [0.0, 0.3] {
        let cfg = TaylorConfig {
            output_loss: OutputLoss::LeastSquares,
            ..TaylorConfig::default()
        };
        let loss = Loss::new(LossKind::Mse, Reduction::Mean).with_l2(l2);
        j_never_increases(cfg, loss, &data, &widths);
    }
    // The full-Lagrangian option (not in the paper): J includes -<Lambda, m_L>.
    let cfg = TaylorConfig {
        output_loss: OutputLoss::LeastSquares,
        full_lagrangian: true,
        ..TaylorConfig::default()
    };
    j_never_increases(
        cfg,
        Loss::new(LossKind::Mse, Reduction::Sum),
        &data,
        &widths,
    );
    // The problem's loss (MSE via the nets prox), other gamma / beta.
    let cfg = TaylorConfig {
        output_loss: OutputLoss::Problem,
        gamma: 2.0,
        beta: 5.0,
        ..TaylorConfig::default()
    };
    j_never_increases(
        cfg,
        Loss::new(LossKind::Mse, Reduction::Sum),
        &data,
        &widths,
    );
    // Hinge on one-hot labels, and softmax CE via Newton prox.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x = gauss(&mut rng, 4, 60);
    let labels: Vec<usize> = (0..60).map(|i| (i * 7 + i / 3) % 3).collect();
    let cls = Dataset::new(x, Targets::Labels { labels, classes: 3 }).unwrap();
    let cfg = TaylorConfig::default();
    j_never_increases(
        cfg,
        Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean),
        &cls,
        &widths,
    );
    let cfg = TaylorConfig {
        output_loss: OutputLoss::Problem,
        ..TaylorConfig::default()
    };
    j_never_increases(
        cfg,
        Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean),
        &cls,
        &widths,
    );
}

#[test]
fn without_the_multiplier_term_the_objective_can_rise() {
    // Correction 1 of ALGORITHMS.md: y = 1, m = 0.5, beta = 1, Lambda = -3: the output
    // step moves z from 1 to 2; (1/2)(z - y)^2 + beta (z - m)^2 alone goes 0.25 -> 2.75
    // (least squares has a 1/2 here, unlike the note's example), while the objective
    // with <z, Lambda> falls.
    let (y, m, beta, lam) = (1.0f64, 0.5, 1.0, -3.0);
    let z0 = 1.0;
    let z1 = (y - lam + 2.0 * beta * m) / (1.0 + 2.0 * beta);
    let f = |z: f64| 0.5 * (z - y) * (z - y) + beta * (z - m) * (z - m);
    assert!(f(z1) > f(z0));
    assert!(f(z1) + lam * z1 < f(z0) + lam * z0);
}

#[test]
fn dead_relu_unit_is_handled_by_the_ridge() {
    // Hidden unit 0 dead on every sample: its row of A is 0, A A^T singular.
    let data = teacher_data(3, 4, 2, 30);
    let mut n0 = net(&[3, 5, 2], 4);
    {
        let d = n0.dense_mut(0).unwrap();
        d.weight.row_mut(0).fill(0.0);
        d.bias[0] = -1.0;
    }
    let mut s = TaylorAdmm::new(TaylorConfig {
        output_loss: OutputLoss::LeastSquares,
        ..TaylorConfig::default()
    })
    .unwrap();
    s.initialize(&n0, &Loss::new(LossKind::Mse, Reduction::Sum), &data)
        .unwrap();
    assert_eq!(s.lifted().unwrap().a[0].row(0).amax(), 0.0);
    let info = s.iterate(&data, 1).unwrap();
    let w = &s.lifted().unwrap().w[1];
    assert!(w.iter().all(|v| v.is_finite()));
    // The dead unit's outgoing weights stay put (proximal ridge, zero data).
    let w0 = n0.dense(1).unwrap().weight.column(0).clone_owned();
    assert!((w.column(0) - w0).amax() < 1e-6);
    assert!(info.augmented.is_finite());
}

/// Planted teacher 5-8-2 (biases, noise-free targets), N = 60. Honest outcome: a
/// student of the teacher's width (8) stalls at a feasible point with loss 0.26 (the
/// multiplier freezes the fit, see docs/ADMM.md); an over-parameterised student (64
/// hidden units >= N) with a 60-iteration warm start reaches the thresholds.
#[test]
fn planted_teacher_is_recovered_least_squares() {
    let data = teacher_data(5, 8, 2, 60);
    let loss = Loss::new(LossKind::Mse, Reduction::Mean);
    let run = |hid: usize, warm: u64, iters: usize| {
        let student = net(&[5, hid, 2], 21);
        let mut s = TaylorAdmm::new(TaylorConfig {
            output_loss: OutputLoss::LeastSquares,
            warm_start: warm,
            ..TaylorConfig::default()
        })
        .unwrap();
        s.initialize(&student, &loss, &data).unwrap();
        let mut info = TaylorStepInfo::default();
        for _ in 0..iters {
            info = s.iterate(&data, 1).unwrap();
        }
        let mut trained = student.clone();
        s.write_weights(&mut trained).unwrap();
        let obj = trained
            .objective(&loss, data.inputs(), data.targets())
            .unwrap();
        eprintln!(
            "taylor teacher hid {hid}: loss {obj:e}, r_lin {:e}, r_act {:e}, dual {:e}",
            info.residuals.linear_total(),
            info.residuals.activation_total(),
            info.dual_residual
        );
        (obj, info)
    };
    let (obj, info) = run(64, 60, 3000);
    assert!(obj <= 1e-4, "training loss {obj}");
    assert!(info.residuals.linear_total() <= 1e-6);
    assert!(info.residuals.activation_total() <= 1e-6);
    // Full-Lagrangian option, teacher width (reported in docs/ADMM.md).
    let student = net(&[5, 8, 2], 21);
    let mut s = TaylorAdmm::new(TaylorConfig {
        output_loss: OutputLoss::LeastSquares,
        full_lagrangian: true,
        ..TaylorConfig::default()
    })
    .unwrap();
    s.initialize(&student, &loss, &data).unwrap();
    let mut fi = TaylorStepInfo::default();
    for _ in 0..1500 {
        fi = s.iterate(&data, 1).unwrap();
    }
    let mut tr = student.clone();
    s.write_weights(&mut tr).unwrap();
    let fobj = tr.objective(&loss, data.inputs(), data.targets()).unwrap();
    eprintln!(
        "taylor teacher hid 8 full-Lagrangian: loss {fobj:e}, r_lin {:e}, r_act {:e}",
        fi.residuals.linear_total(),
        fi.residuals.activation_total()
    );
    assert!(
        fobj > 1e-2,
        "full-Lagrangian now fits the narrow student: update docs ({fobj})"
    );
    // Teacher width: feasible (residuals vanish) but the loss stays high.
    let (obj8, info8) = run(8, 10, 1500);
    assert!(info8.residuals.linear_total() <= 1e-6);
    assert!(
        obj8 > 1e-2,
        "the narrow student now fits: update docs/ADMM.md ({obj8})"
    );
}

#[test]
fn bad_hyperparameters_are_typed_errors() {
    let e = TaylorAdmm::<f64>::new(TaylorConfig {
        gamma: 0.0,
        ..TaylorConfig::default()
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid TaylorAdmm config: gamma = 0 must be finite and > 0"
    );
    let e = TaylorAdmm::<f64>::new(TaylorConfig {
        beta: -1.0,
        ..TaylorConfig::default()
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid TaylorAdmm config: beta = -1 must be finite and > 0"
    );
    let e = TaylorAdmm::<f64>::new(TaylorConfig {
        ridge: f64::NAN,
        ..TaylorConfig::default()
    })
    .unwrap_err();
    assert!(matches!(
        e,
        SolverError::InvalidConfig { param: "ridge", .. }
    ));
}

#[test]
fn non_finite_data_stops_with_an_error() {
    let mut data = teacher_data(3, 4, 2, 20);
    let mut x = data.inputs().clone();
    x[(1, 3)] = 1e250;
    data = Dataset::new(x, data.targets().clone()).unwrap();
    let mut s = TaylorAdmm::new(TaylorConfig {
        output_loss: OutputLoss::LeastSquares,
        ..TaylorConfig::default()
    })
    .unwrap();
    s.initialize(
        &net(&[3, 4, 2], 1),
        &Loss::new(LossKind::Mse, Reduction::Sum),
        &data,
    )
    .unwrap();
    let e = s.iterate(&data, 1).unwrap_err();
    assert!(matches!(e, SolverError::NonFinite(_)), "{e}");
}

#[test]
fn sample_sums_are_reproducible_per_thread_count() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let a = gauss(&mut rng, 6, 1000);
    let z = gauss(&mut rng, 3, 1000);
    let run = |t: usize| {
        let mut w = SumsWork::default();
        let mut s = SampleSums::default();
        sample_sums(&a, &z, t, &mut w, &mut s).unwrap();
        s
    };
    let (s1, s2, s2b) = (run(1), run(2), run(2));
    assert_eq!(s2.gram, s2b.gram);
    assert_eq!(s2.cross, s2b.cross);
    assert_eq!(s2.a_sum, s2b.a_sum);
    assert!((&s1.gram - &s2.gram).amax() < 1e-10);
    assert!((&s1.cross - &s2.cross).amax() < 1e-10);
    let direct = &a * a.transpose();
    assert!((&s1.gram - direct).amax() < 1e-10);
    let zs: f64 = z.row(2).sum();
    assert!((s2.z_sum[2] - zs).abs() < 1e-10);
}

#[test]
fn two_thread_runs_are_bit_identical_and_match_one_thread() {
    // N = 700 > 2 chunks of 256 columns, so the 2-thread path really splits.
    let data = teacher_data(4, 6, 2, 700);
    let loss = Loss::new(LossKind::Mse, Reduction::Mean);
    let run = |threads: usize| {
        let mut s = TaylorAdmm::new(TaylorConfig {
            output_loss: OutputLoss::LeastSquares,
            warm_start: 1,
            ..TaylorConfig::default()
        })
        .unwrap();
        s.initialize(&net(&[4, 9, 2], 5), &loss, &data).unwrap();
        for _ in 0..3 {
            s.iterate(&data, threads).unwrap();
        }
        s.lifted().unwrap().w.clone()
    };
    let (a, b, c) = (run(2), run(2), run(1));
    assert_eq!(a, b);
    for (x, y) in a.iter().zip(&c) {
        assert!((x - y).amax() < 1e-8);
    }
}

/// One layer (a linear model), least-squares output. Telescoping the multiplier steps
/// (`m_k = P Z_{k-1}`, P the projection on the row space of `[X; 1^T]`) gives the fixed
/// point `Z* = (P Y + beta P Z_w) / (1 + beta)`, `Z_w` the output when the multiplier
/// starts (derived here, see docs/ADMM.md): without a warm start Taylor's scheme
/// converges to the average of the initial and the least-squares predictions
/// (beta = 1), not to the least-squares fit; a 60-iteration warm start (contraction
/// 2/3 per iteration) gives the least-squares fit.
#[test]
fn single_layer_fixed_point_depends_on_the_warm_start() {
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let x = gauss(&mut rng, 3, 40);
    let y = gauss(&mut rng, 2, 40);
    let data = Dataset::new(x.clone(), Targets::Dense(y.clone())).unwrap();
    let loss = Loss::new(LossKind::Mse, Reduction::Sum);
    let n0 = net(&[3, 2], 2);
    let z0 = n0.predict(&x).unwrap();
    let mut xt = DMatrix::from_element(4, 40, 1.0);
    xt.rows_mut(0, 3).copy_from(&x);
    let g = &xt * xt.transpose();
    let wb = (g.cholesky().unwrap().solve(&(&xt * y.transpose()))).transpose();
    let py = &wb * &xt;
    let run = |warm: u64| {
        let mut s = TaylorAdmm::new(TaylorConfig {
            output_loss: OutputLoss::LeastSquares,
            warm_start: warm,
            ..TaylorConfig::default()
        })
        .unwrap();
        s.initialize(&n0, &loss, &data).unwrap();
        for _ in 0..400 {
            s.iterate(&data, 1).unwrap();
        }
        let mut out = n0.clone();
        s.write_weights(&mut out).unwrap();
        out.predict(&x).unwrap()
    };
    let expected = (&py + &z0) * 0.5;
    let got = run(0);
    assert!(
        (&got - &expected).amax() < 1e-6,
        "{}",
        (&got - &expected).amax()
    );
    assert!((&got - &py).amax() > 1e-2);
    let got = run(60);
    assert!((&got - &py).amax() < 1e-6, "{}", (&got - &py).amax());
    // The full-Lagrangian option reaches the least-squares fit without a warm start.
    let mut s = TaylorAdmm::new(TaylorConfig {
        output_loss: OutputLoss::LeastSquares,
        warm_start: 0,
        full_lagrangian: true,
        ..TaylorConfig::default()
    })
    .unwrap();
    s.initialize(&n0, &loss, &data).unwrap();
    for _ in 0..400 {
        s.iterate(&data, 1).unwrap();
    }
    let mut out = n0.clone();
    s.write_weights(&mut out).unwrap();
    let got = out.predict(&x).unwrap();
    assert!((&got - &py).amax() < 1e-6, "{}", (&got - &py).amax());
}

#[test]
fn data_passes_match_the_evaluations_that_touch_the_samples() {
    // The trace's counters against `taylor::tally`, noted where the samples are touched:
    // every layer map over the samples is a forward pass, every W-step's sums over the
    // samples and every A-step's product with the transposed weights a backward pass.
    use super::taylor::tally;
    use crate::{Budget, BudgetKind, Driver, NetProblem, Status};
    let (n, iters) = (30u64, 6u64);
    let data = teacher_data(4, 6, 3, n as usize);
    // A_1 takes the narrow-layer path (2 * 5 < 12), A_2 the other one.
    let widths = [4, 12, 5, 3];
    let l = 3u64;
    let cases = [
        (OutputLoss::LeastSquares, false),
        (OutputLoss::LeastSquares, true),
        (OutputLoss::Problem, false),
    ];
    for (output_loss, full_lagrangian) in cases {
        let cfg = TaylorConfig {
            output_loss,
            full_lagrangian,
            warm_start: 2,
            ..TaylorConfig::default()
        };
        let loss = Loss::new(LossKind::Mse, Reduction::Mean).with_l2(1e-3);
        let mut problem = NetProblem::new(net(&widths, 5), loss, data.clone(), None).unwrap();
        let mut s = TaylorAdmm::new(cfg).unwrap();
        let t0 = tally::read();
        let out = Driver::new(Budget::iterations(iters))
            .run(&mut problem, &mut s)
            .unwrap();
        let t1 = tally::read();
        let [maps, sums, transposed, report] = std::array::from_fn(|i| t1[i] - t0[i]);
        assert!(
            matches!(out.status, Status::BudgetExhausted(BudgetKind::Iterations)),
            "{:?}",
            out.status
        );
        let c = out.counters;
        assert_eq!(c.forward, maps, "{output_loss:?} full={full_lagrangian}");
        assert_eq!(c.backward, sums + transposed);
        assert_eq!(c.samples_seen, n * (maps + sums + transposed));
        // The algorithm's structure: the initial forward pass and L Z-steps per
        // iteration; L W-steps and L - 1 A-steps.
        assert_eq!(maps, 1 + iters * l);
        assert_eq!((sums, transposed), (iters * l, iters * (l - 1)));
        // The augmented objective is evaluated once per iteration for the step report
        // and is not a data pass.
        assert_eq!(report, iters);
        for r in &out.trace.records {
            let k = r.iteration;
            assert_eq!((r.forward, r.backward), (1 + k * l, k * (2 * l - 1)));
            assert_eq!(r.epochs, (r.forward + r.backward) as f64);
        }
    }
}
