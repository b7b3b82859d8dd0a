//! Central finite differences of every `Objective::gradient` and `Surrogate::gradient`
//! of the crate's catalogue (rules, compositions, curvature bounds, beta-divergence
//! column, AGD square loss), at anchors and at points away from them.
//!
//! `check_surrogate` compares a surrogate's gradient at its anchor with the
//! objective's own `gradient`, so a wrong objective gradient that the surrogate reuses
//! (most builders take `g0` from it) passes that check unseen; and away from the anchor
//! the surrogate's gradient (which the generic inner solve follows) is never compared
//! with anything. Here both are compared with differences of their own values.

mod common;

use common::*;
use majorize::agd::AgdSquareLoss;
use majorize::beta::BetaColumn;
use majorize::prelude::*;
use majorize::quadratic::{DescentLemma, LinearLoss, LinearModelLoss};
use majorize::rules::{
    AffineComposition, AmGm, BlockSeparable, DynPart, HalfSquaredNorm, Jensen, Scaled, Sum, Tangent,
};
use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// Relative tolerance of the comparison (errors of correct gradients measured here are
/// below 1e-8; a dropped or sign-flipped term gives errors of order 1).
const TOL: f64 = 1e-6;

/// `max_i |a_i - n_i| / max(|a_i|, |n_i|, 1)` with `n_i` the central difference of
/// `value` at `x` along `e_i`, step `h = eps^(1/3) max(1, |x_i|)`; also returns the
/// largest `|a_i|` (the caller checks the gradient is not trivially zero).
fn fd_error(
    value: &dyn Fn(&DVector<f64>) -> f64,
    analytic: &DVector<f64>,
    x: &DVector<f64>,
) -> (f64, f64) {
    let step = f64::EPSILON.cbrt();
    let mut worst: f64 = 0.0;
    for i in 0..x.len() {
        let h = step * x[i].abs().max(1.0);
        let (mut xp, mut xm) = (x.clone(), x.clone());
        xp[i] += h;
        xm[i] -= h;
        let n = (value(&xp) - value(&xm)) / (xp[i] - xm[i]);
        let a = analytic[i];
        let rel = (a - n).abs() / a.abs().max(n.abs()).max(1.0);
        worst = worst.max(if rel.is_nan() { f64::INFINITY } else { rel });
    }
    (worst, analytic.amax())
}

/// Gradient error of the objective at `x`.
fn objective_error<O: Objective<f64> + ?Sized>(o: &O, x: &DVector<f64>) -> (f64, f64) {
    let mut g = DVector::zeros(x.len());
    o.gradient(x, &mut g).unwrap();
    fd_error(&|p| o.value(p).unwrap(), &g, x)
}

/// Gradient error of the surrogate built at `y`, evaluated at `x`.
fn surrogate_error<B: SurrogateBuilder<f64> + ?Sized>(
    b: &B,
    y: &DVector<f64>,
    x: &DVector<f64>,
) -> (f64, f64) {
    let s = b.build(y).unwrap();
    let mut g = DVector::zeros(x.len());
    s.gradient(x, &mut g).unwrap();
    fd_error(&|p| s.value(p).unwrap(), &g, x)
}

/// Checks the objective at `y` and `x`, and the surrogate built at `y` at `y` and `x`.
/// `name` labels failures. Every gradient must have an entry above 1e-3, so a vanishing
/// gradient cannot pass by the floor of the relative error.
fn check_all<P>(
    name: &str,
    p: &P,
    y: &DVector<f64>,
    x: &DVector<f64>,
) -> std::result::Result<(), TestCaseError>
where
    P: Objective<f64> + SurrogateBuilder<f64>,
{
    for (what, (err, gmax)) in [
        ("objective at the anchor", objective_error(p, y)),
        ("objective away from it", objective_error(p, x)),
        ("surrogate at its anchor", surrogate_error(p, y, y)),
        ("surrogate away from it", surrogate_error(p, y, x)),
    ] {
        prop_assert!(err <= TOL, "{}: {} gradient error {:e}", name, what, err);
        prop_assert!(
            gmax > 1e-3,
            "{}: {} gradient vanishes ({:e})",
            name,
            what,
            gmax
        );
    }
    Ok(())
}

/// `q(x) = -sum softplus(x_i)` (concave), for the tangent rule.
#[derive(Clone)]
struct NegSoftplus(usize);

impl Objective<f64> for NegSoftplus {
    fn dim(&self) -> usize {
        self.0
    }
    fn value(&self, x: &DVector<f64>) -> majorize::Result<f64> {
        Ok(-x
            .iter()
            .map(|t| t.max(0.0) + (-t.abs()).exp().ln_1p())
            .sum::<f64>())
    }
    fn gradient(&self, x: &DVector<f64>, g: &mut DVector<f64>) -> majorize::Result<()> {
        for i in 0..x.len() {
            g[i] = -1.0 / (1.0 + (-x[i]).exp());
        }
        Ok(())
    }
}

type Phi = (fn(f64) -> f64, fn(f64) -> f64);

/// Convex functions on `(0, inf)` with their derivatives.
const PHIS: [Phi; 3] = [
    (|t| t * t.ln() - t, |t| t.ln()),
    (|t| 1.0 / t, |t| -1.0 / (t * t)),
    (|t| t * t * t, |t| 3.0 * t * t),
];

/// Targets valid for `kind`: any reals (least squares), entries in [0, 1] (logistic),
/// columns on the simplex (softmax).
fn linear_targets(kind: LinearLoss, r: &mut ChaCha8Rng, k: usize, n: usize) -> DMatrix<f64> {
    match kind {
        LinearLoss::LeastSquares => gauss_mat(r, k, n, 1.0),
        LinearLoss::Logistic => uniform_mat(r, k, n, 0.0, 1.0),
        LinearLoss::SoftmaxCrossEntropy => {
            let mut y = uniform_mat(r, k, n, 0.05, 1.0);
            for mut c in y.column_iter_mut() {
                let s = c.sum();
                c /= s;
            }
            y
        }
    }
}

fn cases(seed: u64, which: usize) -> std::result::Result<(), TestCaseError> {
    let mut r = rng(seed);
    let ones = |n| DVector::from_element(n, 1.0);
    match which {
        0 => {
            let f = HalfSquaredNorm::new(4);
            let y = gauss_vec(&mut r, 4, 1.5);
            check_all("HalfSquaredNorm", &f, &y, &(&y + gauss_vec(&mut r, 4, 1.0)))
        }
        1 => {
            let f = DescentLemma::new(NegSoftplus(3), 0.7).unwrap();
            let y = gauss_vec(&mut r, 3, 2.0);
            check_all("DescentLemma", &f, &y, &(&y + gauss_vec(&mut r, 3, 1.0)))
        }
        2 => {
            let f = Tangent::new(NegSoftplus(3));
            let y = gauss_vec(&mut r, 3, 2.0);
            check_all("Tangent", &f, &y, &(&y + gauss_vec(&mut r, 3, 1.0)))
        }
        3..=5 => {
            let a: Vec<f64> = (0..4).map(|_| r.random_range(0.1..2.0)).collect();
            let f = Jensen::new(PHIS[which - 3], a).unwrap();
            let y = log_uniform_vec(&mut r, &ones(4), 0.7);
            let x = log_uniform_vec(&mut r, &y, 0.5);
            check_all(&format!("Jensen {}", which - 3), &f, &y, &x)
        }
        6 => {
            let alpha: Vec<f64> = (0..3).map(|_| r.random_range(0.2..2.0)).collect();
            let f = AmGm::new(r.random_range(0.5..3.0), alpha).unwrap();
            let y = log_uniform_vec(&mut r, &ones(3), 0.5);
            let x = log_uniform_vec(&mut r, &y, 0.5);
            check_all("AmGm", &f, &y, &x)
        }
        7..=9 => {
            let kind = [
                LinearLoss::LeastSquares,
                LinearLoss::Logistic,
                LinearLoss::SoftmaxCrossEntropy,
            ][which - 7];
            let (k, d, n) = (3, 4, 9);
            let a = gauss_mat(&mut r, d, n, 1.0);
            let yt = linear_targets(kind, &mut r, k, n);
            let f = LinearModelLoss::new(kind, a, yt)
                .unwrap()
                .with_ridge(0.1)
                .unwrap();
            let y = gauss_vec(&mut r, k * d, 0.7);
            let x = &y + gauss_vec(&mut r, k * d, 0.5);
            check_all(&format!("LinearModelLoss {kind:?}"), &f, &y, &x)
        }
        10 => {
            // Every beta of the catalogue's tests, with and without penalties.
            for (i, beta) in [-1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0].into_iter().enumerate() {
                let (l1, l2) = [(0.0, 0.0), (0.3, 0.0), (0.2, 0.7)][i % 3];
                let w = uniform_mat(&mut r, 6, 3, 0.1, 1.5);
                let v = uniform_vec(&mut r, 6, 0.2, 3.0);
                let f = BetaColumn::new(w, v, beta, l1, l2).unwrap();
                let y = log_uniform_vec(&mut r, &ones(3), 0.7);
                let x = log_uniform_vec(&mut r, &y, 0.5);
                check_all(
                    &format!("BetaColumn beta {beta} l1 {l1} l2 {l2}"),
                    &f,
                    &y,
                    &x,
                )?;
            }
            Ok(())
        }
        11 | 12 => {
            let widths = if which == 11 {
                vec![3, 2]
            } else {
                vec![3, 4, 2]
            };
            let n = 5;
            let xd = gauss_mat(&mut r, widths[0], n, 1.0);
            let yd = gauss_mat(&mut r, *widths.last().unwrap(), n, 1.0);
            let dim: usize = widths.windows(2).map(|w| w[0] * w[1]).sum();
            let f = AgdSquareLoss::new(widths.clone(), xd, yd).unwrap();
            let y = gauss_vec(&mut r, dim, 1.0);
            let x = &y + gauss_vec(&mut r, dim, 0.3);
            // The surrogate is not differentiable at its anchor (spectral norms of the
            // step vanish there): its gradient is checked away from it only.
            for (what, (err, gmax)) in [
                ("objective at the anchor", objective_error(&f, &y)),
                ("objective away from it", objective_error(&f, &x)),
                ("surrogate away from it", surrogate_error(&f, &y, &x)),
            ] {
                prop_assert!(
                    err <= TOL,
                    "AGD {:?}: {} gradient error {:e}",
                    widths,
                    what,
                    err
                );
                prop_assert!(gmax > 1e-3, "AGD {:?}: {} gradient vanishes", widths, what);
            }
            Ok(())
        }
        _ => {
            // The compositions: sum, positive scaling, affine map, block-separable.
            let a = gauss_mat(&mut r, 4, 3, 1.0);
            let b = gauss_vec(&mut r, 4, 1.0);
            let f = Sum(
                AffineComposition::new(HalfSquaredNorm::new(4), a, b).unwrap(),
                Scaled::new(Tangent::new(NegSoftplus(3)), 0.7).unwrap(),
            );
            let y = gauss_vec(&mut r, 3, 1.5);
            check_all(
                "Sum/Affine/Scaled",
                &f,
                &y,
                &(&y + gauss_vec(&mut r, 3, 1.0)),
            )?;
            let blocks: Vec<Box<dyn DynPart<f64>>> = vec![
                Box::new(Jensen::new(PHIS[0], vec![0.5, 1.0]).unwrap()),
                Box::new(DescentLemma::new(NegSoftplus(2), 0.5).unwrap()),
            ];
            let f = BlockSeparable::new(blocks);
            let y = DVector::from_fn(4, |i, _| {
                if i < 2 {
                    r.random_range(0.5..2.0)
                } else {
                    r.random_range(-2.0..2.0)
                }
            });
            let x = DVector::from_fn(4, |i, _| {
                y[i] * if i < 2 {
                    r.random_range(0.6..1.6)
                } else {
                    r.random_range(-1.0..1.0)
                }
            });
            check_all("BlockSeparable", &f, &y, &x)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        rng_seed: proptest::test_runner::RngSeed::Fixed(20261207),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]
    #[test]
    fn every_objective_and_surrogate_gradient_matches_finite_differences(
        seed in any::<u64>(),
        which in 0usize..14,
    ) {
        cases(seed, which)?;
    }
}

/// Every case once, on fixed seeds (the property test draws cases at random).
#[test]
fn every_case_once() {
    for which in 0..14 {
        cases(1000 + which as u64, which).unwrap();
    }
}
