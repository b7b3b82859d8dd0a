//! The general rules and the majorization-preserving operations, checked with the
//! public checker, and a composed objective minimised by MM.

mod common;

use common::*;
use majorize::prelude::*;
use majorize::quadratic::DescentLemma;
use majorize::rules::{
    AffineComposition, AmGm, BlockSeparable, DynPart, HalfSquaredNorm, Jensen, Scaled, Sum, Tangent,
};
use nalgebra::DVector;
use proptest::prelude::*;
use rand::RngExt;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]
    #[test]
    fn block_separable_combines_closed_form_and_inner_solves(seed in any::<u64>()) {
        block_separable_case(seed);
    }
}

/// q(x) = -sum softplus(x_i): concave.
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

fn no_min() -> CheckConfig {
    CheckConfig {
        check_minimizer: false,
        ..Default::default()
    }
}

type Phi = (fn(f64) -> f64, fn(f64) -> f64);

fn entropy_like() -> Phi {
    (|t| t * t.ln() - t, |t| t.ln())
}

fn inverse() -> Phi {
    (|t| 1.0 / t, |t| -1.0 / (t * t))
}

fn cube() -> Phi {
    (|t| t * t * t, |t| 3.0 * t * t)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn jensen_holds(seed in any::<u64>(), which in 0usize..3) {
        let mut r = rng(seed);
        let a: Vec<f64> = (0..4).map(|i| if i == 2 { 0.0 } else { r.random_range(0.1..2.0) }).collect();
        let phi = [entropy_like(), inverse(), cube()][which];
        let j = Jensen::new(phi, a).unwrap();
        let ones = DVector::from_element(4, 1.0);
        let cfg = if which == 0 { CheckConfig::default() } else { no_min() };
        let rep = check_surrogate(&j, &j, &mut r, |r| log_uniform_vec(r, &ones, 1.0), |r, y| log_uniform_vec(r, y, 1.5), &cfg).unwrap();
        prop_assert!(rep.passes(1e-10), "{:?}", rep.worst());
    }

    #[test]
    fn am_gm_holds(seed in any::<u64>()) {
        let mut r = rng(seed);
        let alpha: Vec<f64> = (0..3).map(|_| r.random_range(0.0..2.0)).collect();
        let m = AmGm::new(r.random_range(0.1..3.0), alpha).unwrap();
        let ones = DVector::from_element(3, 1.0);
        let rep = check_surrogate(&m, &m, &mut r, |r| log_uniform_vec(r, &ones, 1.0), |r, y| log_uniform_vec(r, y, 2.0), &no_min()).unwrap();
        prop_assert!(rep.passes(1e-10), "{:?}", rep.worst());
    }

    #[test]
    fn tangent_of_concave_and_composition_hold(seed in any::<u64>()) {
        let mut r = rng(seed);
        let t = Tangent::new(NegSoftplus(3));
        let rep = check_surrogate(&t, &t, &mut r, |r| gauss_vec(r, 3, 2.0), |r, y| y + gauss_vec(r, 3, 3.0), &no_min()).unwrap();
        prop_assert!(rep.passes(1e-10), "{:?}", rep.worst());

        let a = gauss_mat(&mut r, 4, 3, 1.0);
        let b = gauss_vec(&mut r, 4, 1.0);
        let f = Sum(
            AffineComposition::new(HalfSquaredNorm::new(4), a, b).unwrap(),
            Scaled::new(Tangent::new(NegSoftplus(3)), 0.7).unwrap(),
        );
        let rep = check_surrogate(&f, &f, &mut r, |r| gauss_vec(r, 3, 2.0), |r, y| y + gauss_vec(r, 3, 3.0), &CheckConfig::default()).unwrap();
        prop_assert!(rep.passes(1e-10), "{:?}", rep.worst());
    }
}

fn block_separable_case(seed: u64) {
    let mut r = rng(seed);
    let j = Jensen::new(entropy_like(), vec![0.5, 1.0]).unwrap();
    let q = DescentLemma::new(HalfSquaredNorm::new(3), 2.0).unwrap();
    let blocks: Vec<Box<dyn DynPart<f64>>> = vec![Box::new(j), Box::new(q)];
    let f = BlockSeparable::new(blocks);
    assert_eq!(Objective::<f64>::dim(&f), 5);
    let rep = check_surrogate(
        &f,
        &f,
        &mut r,
        |r| {
            DVector::from_fn(5, |i, _| {
                if i < 2 {
                    (r.random_range(-1.0..1.0f64)).exp()
                } else {
                    r.random_range(-2.0..2.0)
                }
            })
        },
        |r, y| {
            DVector::from_fn(5, |i, _| {
                if i < 2 {
                    y[i] * (r.random_range(-1.5..1.5f64)).exp()
                } else {
                    y[i] + r.random_range(-3.0..3.0)
                }
            })
        },
        &CheckConfig::default(),
    )
    .unwrap();
    assert!(rep.passes(1e-10), "{:?}", rep.worst());
    // The minimiser: the quadratic block in closed form (y - y/2), the Jensen block by the
    // inner solve (phi' = log vanishes at s x_i / y_i = 1, i.e. x_i = y_i / s).
    let y = DVector::from_vec(vec![1.0, 2.0, 1.0, -2.0, 4.0]);
    let m = f
        .build(&y)
        .unwrap()
        .minimize(&InnerSolve::default())
        .unwrap();
    let s = 0.5 * 1.0 + 1.0 * 2.0;
    let expect = [1.0 / s, 2.0 / s, 0.5, -1.0, 2.0];
    for (i, e) in expect.iter().enumerate() {
        assert!((m.point[i] - e).abs() < 1e-8, "{i}: {} vs {e}", m.point[i]);
    }
    assert!(matches!(
        m.kind,
        MinimizerKind::Inner {
            converged: true,
            ..
        }
    ));
}

#[test]
fn checker_catches_a_tangent_of_a_convex_function() {
    // The tangent is a minorant, not a majorant, of a convex function.
    let t = Tangent::new(HalfSquaredNorm::new(2));
    let rep = check_surrogate(
        &t,
        &t,
        &mut rng(2),
        |r| gauss_vec(r, 2, 1.0),
        |r, y| y + gauss_vec(r, 2, 1.0),
        &no_min(),
    )
    .unwrap();
    let w = rep.majorization.as_ref().unwrap();
    assert_eq!(rep.worst().unwrap().condition, Condition::Majorization);
    assert!(w.relative > 0.1, "{w:?}");
    assert!(w.absolute > 0.0);
}

#[test]
fn composed_mm_is_monotone_and_converges() {
    let mut r = rng(31);
    let a = gauss_mat(&mut r, 6, 3, 1.0);
    let b = gauss_vec(&mut r, 6, 1.0);
    let f = Sum(
        AffineComposition::new(HalfSquaredNorm::new(6), a.clone(), -b.clone()).unwrap(),
        Scaled::new(Tangent::new(NegSoftplus(3)), 0.3).unwrap(),
    );
    let mut x = DVector::zeros(3);
    let mut prev = f.value(&x).unwrap();
    for _ in 0..200 {
        x = f
            .build(&x)
            .unwrap()
            .minimize(&InnerSolve::default())
            .unwrap()
            .point;
        let now = f.value(&x).unwrap();
        assert!(now <= prev + 1e-12 * prev.abs());
        prev = now;
    }
    let mut g = DVector::zeros(3);
    f.gradient(&x, &mut g).unwrap();
    assert!(g.norm() < 1e-8, "stationary: {}", g.norm());
}

#[test]
fn rule_errors_are_typed() {
    use majorize::MajorizeError;
    assert!(matches!(
        Scaled::new(HalfSquaredNorm::new(2), -1.0),
        Err(MajorizeError::InvalidParameter { .. })
    ));
    assert!(matches!(
        Jensen::new(inverse(), vec![1.0, -1.0]),
        Err(MajorizeError::InvalidParameter { .. })
    ));
    assert!(matches!(
        AmGm::new(1.0, vec![0.0, 0.0]),
        Err(MajorizeError::InvalidParameter { .. })
    ));
    let m = AmGm::new(1.0, vec![1.0, 1.0]).unwrap();
    let s = m.build(&DVector::from_vec(vec![1.0, 2.0])).unwrap();
    assert!(matches!(
        s.minimize(&InnerSolve::default()),
        Err(MajorizeError::NoMinimizer(_))
    ));
    assert!(matches!(
        Objective::<f64>::value(&m, &DVector::from_vec(vec![1.0, -2.0])),
        Err(MajorizeError::Domain { .. })
    ));
    let am = AffineComposition::new(
        HalfSquaredNorm::new(2),
        nalgebra::DMatrix::<f64>::zeros(2, 3),
        DVector::zeros(3),
    );
    assert!(matches!(am, Err(MajorizeError::Shape { .. })));
    assert!(matches!(
        Objective::<f64>::value(&HalfSquaredNorm::new(2), &DVector::zeros(3)),
        Err(MajorizeError::Shape { .. })
    ));
}
