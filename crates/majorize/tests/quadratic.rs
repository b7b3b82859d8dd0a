//! Curvature bounds and last-layer MM steps, checked with the public checker.

mod common;

use common::*;
use majorize::last_layer::{
    GramFactor, least_squares_step, logistic_step, one_hot, softmax_ce_step, softmax_ce_step_labels,
};
use majorize::prelude::*;
use majorize::quadratic::{DescentLemma, LinearLoss, LinearModelLoss};
use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;
use rand::RngExt;

fn targets(kind: LinearLoss, r: &mut rand_chacha::ChaCha8Rng, k: usize, n: usize) -> DMatrix<f64> {
    match kind {
        LinearLoss::LeastSquares => gauss_mat(r, k, n, 1.0),
        LinearLoss::Logistic => uniform_mat(r, k, n, 0.0, 1.0),
        LinearLoss::SoftmaxCrossEntropy => {
            let labels: Vec<usize> = (0..n).map(|_| r.random_range(0..k)).collect();
            one_hot(&labels, k).unwrap()
        }
    }
}

fn check_linear(kind: LinearLoss, seed: u64, ridge: f64) -> CheckReport {
    let mut r = rng(seed);
    let (d, k, n) = (3, 4, 9);
    let a = gauss_mat(&mut r, d, n, 1.0);
    let y = targets(kind, &mut r, k, n);
    let f = LinearModelLoss::new(kind, a, y)
        .unwrap()
        .with_ridge(ridge)
        .unwrap();
    check_surrogate(
        &f,
        &f,
        &mut r,
        |r| gauss_vec(r, d * k, 1.0),
        |r, y| {
            let s = 10f64.powf(r.random_range(-3.0..1.0));
            y + gauss_vec(r, d * k, s)
        },
        &CheckConfig::default(),
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn linear_model_bounds_hold(seed in any::<u64>(), ridge in prop_oneof![Just(0.0), 0.01f64..2.0]) {
        for kind in [LinearLoss::LeastSquares, LinearLoss::Logistic, LinearLoss::SoftmaxCrossEntropy] {
            let rep = check_linear(kind, seed, ridge);
            prop_assert!(rep.passes(1e-10), "{kind:?}: {:?}", rep.worst());
            prop_assert_eq!(rep.anchors_checked, 8);
        }
    }
}

/// f(x) = sum_i log(1 + exp(c_i^T x)) - y_i c_i^T x, L = ||C||_2^2 / 4.
struct Logreg {
    c: DMatrix<f64>,
    y: DVector<f64>,
}

impl Objective<f64> for Logreg {
    fn dim(&self) -> usize {
        self.c.ncols()
    }
    fn value(&self, x: &DVector<f64>) -> majorize::Result<f64> {
        let z = &self.c * x;
        Ok(z.iter()
            .zip(self.y.iter())
            .map(|(z, y)| z.max(0.0) + (-z.abs()).exp().ln_1p() - y * z)
            .sum())
    }
    fn gradient(&self, x: &DVector<f64>, g: &mut DVector<f64>) -> majorize::Result<()> {
        let z = &self.c * x;
        let r = DVector::from_fn(z.len(), |i, _| 1.0 / (1.0 + (-z[i]).exp()) - self.y[i]);
        g.copy_from(&(self.c.transpose() * r));
        Ok(())
    }
}

fn logreg(seed: u64) -> (Logreg, f64) {
    let mut r = rng(seed);
    let c = gauss_mat(&mut r, 12, 4, 1.0);
    let y = DVector::from_fn(12, |_, _| f64::from(r.random::<bool>()));
    let l = c.clone().singular_values().max().powi(2) / 4.0;
    (Logreg { c, y }, l)
}

fn descent_report(seed: u64, l_factor: f64) -> CheckReport {
    let (f, l) = logreg(seed);
    let b = DescentLemma::new(&f, l * l_factor).unwrap();
    let mut r = rng(seed ^ 0xabc);
    check_surrogate(
        &f,
        &b,
        &mut r,
        |r| gauss_vec(r, 4, 2.0),
        |r, y| y + gauss_vec(r, 4, 3.0),
        &CheckConfig::default(),
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn descent_lemma_holds(seed in any::<u64>()) {
        let rep = descent_report(seed, 1.0);
        prop_assert!(rep.passes(1e-10), "{:?}", rep.worst());
    }
}

#[test]
fn checker_catches_a_halved_curvature_bound() {
    // The logistic-regression Hessian C^T diag(s(1-s)) C reaches 1/4 ||C||^2 near
    // x = 0 along the top singular direction; with L/2 (and even L/4 of the true bound,
    // which is what L/2 on the 1/4 constant gives) the quadratic dips below f.
    let (f, l) = logreg(7);
    let bad = DescentLemma::new(&f, l / 20.0).unwrap();
    let mut r = rng(1);
    let rep = check_surrogate(
        &f,
        &bad,
        &mut r,
        |r| gauss_vec(r, 4, 0.1),
        |r, y| y + gauss_vec(r, 4, 2.0),
        &CheckConfig::default(),
    )
    .unwrap();
    let worst = rep.worst().unwrap();
    assert_eq!(worst.condition, Condition::Majorization);
    assert!(worst.relative > 1e-3, "{worst:?}");
    assert_eq!(worst.anchor.len(), 4);
    assert!(!rep.passes(1e-10));
    // Touching and tangency still hold for the wrong bound: only majorization fails.
    assert!(rep.touching.as_ref().is_none_or(|v| v.relative < 1e-12));
    assert!(rep.tangency.as_ref().is_none_or(|v| v.relative < 1e-12));
}

#[test]
fn checker_catches_halved_least_squares_curvature() {
    // Least squares with curvature A A^T / 2 (as an isotropic bound: L = lambda_max / 2).
    let mut r = rng(3);
    let a = gauss_mat(&mut r, 5, 3, 1.0);
    let y = gauss_vec(&mut r, 5, 1.0);
    struct Ls(DMatrix<f64>, DVector<f64>);
    impl Objective<f64> for Ls {
        fn dim(&self) -> usize {
            self.0.ncols()
        }
        fn value(&self, x: &DVector<f64>) -> majorize::Result<f64> {
            Ok((&self.0 * x - &self.1).norm_squared() / 2.0)
        }
        fn gradient(&self, x: &DVector<f64>, g: &mut DVector<f64>) -> majorize::Result<()> {
            g.copy_from(&(self.0.transpose() * (&self.0 * x - &self.1)));
            Ok(())
        }
    }
    let f = Ls(a.clone(), y);
    let l = a.singular_values().max().powi(2);
    let good = DescentLemma::new(&f, l).unwrap();
    let bad = DescentLemma::new(&f, l / 2.0).unwrap();
    let cfg = CheckConfig {
        anchors: 4,
        points_per_anchor: 32,
        ..Default::default()
    };
    let rep_good = check_surrogate(
        &f,
        &good,
        &mut rng(4),
        |r| gauss_vec(r, 3, 1.0),
        |r, y| y + gauss_vec(r, 3, 1.0),
        &cfg,
    )
    .unwrap();
    assert!(rep_good.passes(1e-10), "{:?}", rep_good.worst());
    let rep_bad = check_surrogate(
        &f,
        &bad,
        &mut rng(4),
        |r| gauss_vec(r, 3, 1.0),
        |r, y| y + gauss_vec(r, 3, 1.0),
        &cfg,
    )
    .unwrap();
    let w = rep_bad
        .majorization
        .as_ref()
        .expect("halved curvature must violate majorization");
    assert!(w.relative > 0.01, "{w:?}");
    // The minimiser of the halved bound overshoots: f can increase there.
    assert_eq!(rep_bad.worst().unwrap().condition, Condition::Majorization);
}

fn lsq_setup(seed: u64, bias: bool) -> (DMatrix<f64>, DMatrix<f64>, DMatrix<f64>, DVector<f64>) {
    let mut r = rng(seed);
    let (d, k, n) = (4, 3, 20);
    let a = gauss_mat(&mut r, d, n, 1.0);
    let y = gauss_mat(&mut r, k, n, 1.0);
    let w = gauss_mat(&mut r, k, d, 1.0);
    let b = if bias {
        gauss_vec(&mut r, k, 1.0)
    } else {
        DVector::zeros(k)
    };
    (a, y, w, b)
}

fn loss_with_bias(
    kind: LinearLoss,
    a: &DMatrix<f64>,
    y: &DMatrix<f64>,
    w: &DMatrix<f64>,
    b: &DVector<f64>,
) -> f64 {
    let ab = a.clone().insert_row(a.nrows(), 1.0);
    let wb = w.clone().insert_column(w.ncols(), 0.0);
    let mut wb = wb;
    wb.set_column(w.ncols(), b);
    let f = LinearModelLoss::new(kind, ab, y.clone()).unwrap();
    f.value(&DVector::from_column_slice(wb.as_slice())).unwrap()
}

#[test]
fn least_squares_step_is_the_normal_equations_solution() {
    let (a, y, mut w, mut b) = lsq_setup(11, true);
    least_squares_step(&a, &y, &mut w, Some(&mut b), 0.0).unwrap();
    // Optimality: the gradient [ (WA + b1^T - Y) A^T, (WA + b 1^T - Y) 1 ] vanishes.
    let mut z = &w * &a;
    for j in 0..z.ncols() {
        for i in 0..z.nrows() {
            z[(i, j)] += b[i];
        }
    }
    let r = z - &y;
    let gw = &r * a.transpose();
    let gb = r.column_sum();
    assert!(gw.norm() < 1e-10, "{}", gw.norm());
    assert!(gb.norm() < 1e-10, "{}", gb.norm());
}

#[test]
fn last_layer_steps_decrease_and_match_the_surrogate_minimiser() {
    for kind in [
        LinearLoss::LeastSquares,
        LinearLoss::Logistic,
        LinearLoss::SoftmaxCrossEntropy,
    ] {
        let mut r = rng(21);
        let (d, k, n) = (4, 3, 25);
        let a = gauss_mat(&mut r, d, n, 1.0);
        let y = targets(kind, &mut r, k, n);
        let mut w = gauss_mat(&mut r, k, d, 0.5);
        let mut b = gauss_vec(&mut r, k, 0.5);
        let factor = GramFactor::new(&a, true, 1e-3).unwrap();
        let mut prev = loss_with_bias(kind, &a, &y, &w, &b);
        for it in 0..30 {
            let before = factor.step(kind, &a, &y, &mut w, Some(&mut b)).unwrap();
            assert!(
                (before - prev).abs() <= 1e-10 * prev.abs().max(1.0),
                "{kind:?} it {it}: {before} vs {prev}"
            );
            let now = loss_with_bias(kind, &a, &y, &w, &b);
            assert!(
                now <= prev * (1.0 + 1e-12),
                "{kind:?} it {it}: {prev} -> {now}"
            );
            prev = now;
        }
        // Without bias: one step equals the closed-form minimiser of the Kronecker surrogate.
        let mut w1 = gauss_mat(&mut r, k, d, 0.5);
        let f = LinearModelLoss::new(kind, a.clone(), y.clone())
            .unwrap()
            .with_ridge(1e-3)
            .unwrap();
        let x0 = DVector::from_column_slice(w1.as_slice());
        let m = f
            .build(&x0)
            .unwrap()
            .minimize(&InnerSolve::default())
            .unwrap();
        assert_eq!(m.kind, MinimizerKind::ClosedForm);
        let fun: StepFn = match kind {
            LinearLoss::LeastSquares => least_squares_step,
            LinearLoss::Logistic => logistic_step,
            LinearLoss::SoftmaxCrossEntropy => softmax_ce_step,
        };
        fun(&a, &y, &mut w1, None, 1e-3).unwrap();
        let diff = (DVector::from_column_slice(w1.as_slice()) - &m.point).norm();
        assert!(diff < 1e-10, "{kind:?}: {diff}");
    }
}

#[test]
fn softmax_step_is_boehning_formula_and_labels_agree() {
    let mut r = rng(5);
    let (d, k, n) = (3, 4, 15);
    let a = gauss_mat(&mut r, d, n, 1.0);
    let labels: Vec<usize> = (0..n).map(|i| i % k).collect();
    let y = one_hot::<f64>(&labels, k).unwrap();
    let w0 = gauss_mat(&mut r, k, d, 1.0);
    // W - 2 (P - Y) A^T (A A^T)^{-1}
    let z = &w0 * &a;
    let mut p = z.clone();
    for j in 0..n {
        let m = z.column(j).max();
        let s: f64 = z.column(j).iter().map(|v| (v - m).exp()).sum();
        for i in 0..k {
            p[(i, j)] = (z[(i, j)] - m).exp() / s;
        }
    }
    let g = (&p - &y) * a.transpose();
    let expect = &w0 - 2.0 * g * (&a * a.transpose()).try_inverse().unwrap();
    let mut w = w0.clone();
    softmax_ce_step_labels(&a, &labels, &mut w, None, 0.0).unwrap();
    assert!((&w - &expect).norm() < 1e-10 * expect.norm());
    // The update keeps 1^T dW = 0.
    let dw = &w - &w0;
    assert!(dw.row_sum().norm() < 1e-10);
}

#[test]
fn last_layer_errors_are_typed() {
    let (a, y, mut w, mut b) = lsq_setup(1, true);
    let bad_y = DMatrix::<f64>::zeros(3, 7);
    assert!(matches!(
        least_squares_step(&a, &bad_y, &mut w, Some(&mut b), 0.0),
        Err(MajorizeError::Shape { .. })
    ));
    let mut short_b = DVector::zeros(2);
    assert!(matches!(
        least_squares_step(&a, &y, &mut w, Some(&mut short_b), 0.0),
        Err(MajorizeError::Shape { .. })
    ));
    // Rank-deficient Gram without ridge.
    let a2 = DMatrix::from_fn(4, 20, |i, j| if i == 3 { 0.0 } else { (i + j) as f64 });
    assert!(matches!(
        least_squares_step(&a2, &y, &mut w, None, 0.0),
        Err(MajorizeError::NotPositiveDefinite { .. })
    ));
    assert!(least_squares_step(&a2, &y, &mut w, None, 1e-3).is_ok());
    let mut nan_a = a.clone();
    nan_a[(0, 0)] = f64::NAN;
    assert!(matches!(
        logistic_step(&nan_a, &y, &mut w, None, 0.0),
        Err(MajorizeError::NonFinite { .. })
    ));
    // Logistic targets outside [0, 1], softmax targets not on the simplex.
    assert!(matches!(
        logistic_step(&a, &(&y * 5.0), &mut w, None, 0.0),
        Err(MajorizeError::Domain { .. })
    ));
    assert!(matches!(
        softmax_ce_step(&a, &y, &mut w, None, 0.0),
        Err(MajorizeError::Negative { .. }) | Err(MajorizeError::Domain { .. })
    ));
    assert!(matches!(
        softmax_ce_step_labels(&a, &[9; 20], &mut w, None, 0.0),
        Err(MajorizeError::Domain { .. })
    ));
    assert!(matches!(
        GramFactor::new(&a, false, -1.0),
        Err(MajorizeError::InvalidParameter { .. })
    ));
}

use majorize::MajorizeError;

type StepFn = fn(
    &DMatrix<f64>,
    &DMatrix<f64>,
    &mut DMatrix<f64>,
    Option<&mut DVector<f64>>,
    f64,
) -> majorize::Result<f64>;
