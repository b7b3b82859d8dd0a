//! Hostile inputs to the public API (review4): each call must return a typed error
//! naming the problem, never panic, abort on a huge allocation, or hang.

use majorize::MajorizeError;
use majorize::agd::{AgdSquareLoss, agd_init, agd_step, deep_relative_trust_bound, spectral_norm};
use majorize::enclosure::QuadraticEnclosure;
use majorize::last_layer::{GramFactor, least_squares_step, one_hot};
use majorize::nmf::{NmfConfig, NmfWorkspace, update_h};
use majorize::quadratic::{IsotropicQuadratic, LinearLoss, LinearModelLoss};
use majorize::rules::{BlockSeparable, HalfSquaredNorm};
use majorize::{InnerSolve, Objective, Surrogate, SurrogateBuilder};
use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;

fn is_too_large<T: std::fmt::Debug>(r: Result<T, MajorizeError>, op: &str) {
    match r {
        Err(MajorizeError::TooLarge { op: o, limit, .. }) => {
            assert_eq!(o, op);
            assert_eq!(limit, majorize::MAX_ENTRIES);
        }
        other => panic!("{op}: expected TooLarge, got {other:?}"),
    }
}

/// Sizes given by the caller are checked against `MAX_ENTRIES` (and for overflow) before
/// anything is allocated; each case below panicked on overflow or aborted the process.
#[test]
fn huge_sizes_are_refused_before_allocating() {
    let big = 1usize << 40;
    is_too_large(one_hot::<f64>(&[0], usize::MAX), "one_hot");
    is_too_large(one_hot::<f64>(&[0, 1], 1 << 30), "one_hot");
    // A d x 0 input holds no data but asks for a d x d Gram matrix.
    let wide = DMatrix::<f64>::zeros(big, 0);
    is_too_large(GramFactor::new(&wide, true, 1.0), "GramFactor::new");
    is_too_large(
        LinearModelLoss::new(LinearLoss::LeastSquares, wide.clone(), wide.clone()),
        "LinearModelLoss::new",
    );
    is_too_large(NmfWorkspace::<f64>::new(big, big, 1), "NmfWorkspace::new");
    is_too_large(NmfWorkspace::<f64>::new(2, 2, 1 << 20), "NmfWorkspace::new");
    // A rank-2^33 problem with no data: the Gram buffer K x K would be 2^66 entries.
    let v = DMatrix::<f64>::zeros(0, 0);
    let (w, mut h) = (DMatrix::zeros(0, 1 << 33), DMatrix::zeros(1 << 33, 0));
    let mut ws = NmfWorkspace::new(1, 1, 1).unwrap();
    is_too_large(
        update_h(&v, &w, &mut h, &NmfConfig::new(1.0), &mut ws),
        "NmfWorkspace::new",
    );
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    is_too_large(
        agd_init::<f64, _>(&[1 << 20, 1 << 20], &mut rng),
        "agd_init",
    );
    is_too_large(agd_init::<f64, _>(&[usize::MAX, 2], &mut rng), "agd_init");
    let x = DMatrix::<f64>::zeros(1, 1);
    is_too_large(
        AgdSquareLoss::new(vec![1, 1 << 33, 1 << 33, 1], x.clone(), x),
        "AgdSquareLoss::new",
    );
    // BlockSeparable's dimension saturates: the length check fails, nothing overflows.
    let b = BlockSeparable::<f64>::new(vec![
        Box::new(HalfSquaredNorm::new(usize::MAX)),
        Box::new(HalfSquaredNorm::new(2)),
    ]);
    assert_eq!(b.dim(), usize::MAX);
    assert!(matches!(
        b.value(&DVector::zeros(2)),
        Err(MajorizeError::Shape { .. })
    ));
}

/// nalgebra's SVD never returns on a NaN or infinite entry: `spectral_norm` and the AGD
/// surrogate hung forever; they now return `NonFinite`.
#[test]
fn svd_of_non_finite_input_is_refused() {
    for bad in [f64::NAN, f64::INFINITY] {
        let m = DMatrix::from_element(3, 3, bad);
        assert!(matches!(
            spectral_norm(&m),
            Err(MajorizeError::NonFinite {
                op: "spectral_norm",
                ..
            })
        ));
        let x = DMatrix::from_element(2, 3, 1.0);
        let l = AgdSquareLoss::new(vec![2, 2], x, DMatrix::zeros(2, 3)).unwrap();
        let s = l.build(&DVector::from_element(4, 0.5)).unwrap();
        assert!(matches!(
            s.value(&DVector::from_element(4, bad)),
            Err(MajorizeError::NonFinite {
                op: "AgdSurrogate",
                ..
            })
        ));
        assert!(l.build(&DVector::from_element(4, bad)).is_err());
    }
    assert_eq!(spectral_norm(&DMatrix::<f64>::zeros(0, 3)).unwrap(), 0.0);
}

/// Least-squares targets and a bias were not checked: NaN came back as the loss and the
/// new weights, with `Ok`.
#[test]
fn non_finite_last_layer_targets_and_bias_are_refused() {
    let a = DMatrix::from_fn(2, 5, |i, j| (i * 3 + j * j) as f64);
    let mut w = DMatrix::zeros(1, 2);
    let mut b = DVector::zeros(1);
    let y = DMatrix::from_element(1, 5, f64::NAN);
    let r = least_squares_step(&a, &y, &mut w, Some(&mut b), 1.0);
    assert!(
        matches!(r, Err(MajorizeError::NonFinite { what: "Y", .. })),
        "{r:?}"
    );
    let y = DMatrix::zeros(1, 5);
    let mut b = DVector::from_element(1, f64::INFINITY);
    let r = least_squares_step(&a, &y, &mut w, Some(&mut b), 1.0);
    assert!(
        matches!(r, Err(MajorizeError::NonFinite { what: "b", .. })),
        "{r:?}"
    );
    assert_eq!(w, DMatrix::zeros(1, 2));
}

/// `agd_step` checked a layer's bias length only when it reached that layer: earlier
/// layers were already moved when it returned the error.
#[test]
fn agd_step_error_leaves_weights_untouched() {
    let mut ws = vec![
        DMatrix::from_element(2, 2, 1.0),
        DMatrix::from_element(1, 2, 1.0),
    ];
    let before = ws.clone();
    let mut bs = vec![DVector::zeros(2), DVector::zeros(3)];
    let gb = vec![DVector::from_element(2, 1.0), DVector::zeros(1)];
    let gw = [
        DMatrix::from_element(2, 2, 1.0),
        DMatrix::from_element(1, 2, 1.0),
    ];
    let r = agd_step(&mut ws, Some(&mut bs), &gw, Some(&gb), 1.0);
    assert!(matches!(r, Err(MajorizeError::Shape { .. })), "{r:?}");
    assert_eq!(ws, before);
    assert_eq!(bs[0], DVector::zeros(2));
}

/// NaN or infinite inputs of three public builders propagated silently: the isotropic
/// quadratic's minimiser and values became NaN, the deep-relative-trust bound returned
/// NaN (or a negative "bound" from a negative norm), and `agd_step` wrote NaN weights on.
/// Each now returns a typed error naming the input, and `agd_step` writes nothing.
#[test]
fn non_finite_builder_inputs_are_refused() {
    let ok = DVector::from_vec(vec![1.0, 2.0]);
    let nan = DVector::from_vec(vec![1.0, f64::NAN]);
    let iq = |a: &DVector<f64>, f0: f64, g: &DVector<f64>| {
        IsotropicQuadratic::new(a.clone(), f0, g.clone(), 1.0)
    };
    assert!(iq(&ok, 0.0, &ok).is_ok());
    for (r, what) in [
        (iq(&nan, 0.0, &ok), "anchor"),
        (iq(&ok, f64::INFINITY, &ok), "f0"),
        (iq(&ok, 0.0, &nan), "g0"),
    ] {
        assert!(
            matches!(r, Err(MajorizeError::NonFinite { what: w, .. }) if w == what),
            "{what}: {r:?}"
        );
    }

    assert_eq!(
        deep_relative_trust_bound(&[1.0, 2.0], &[0.5, 0.0], 3.0),
        Ok(3.0)
    );
    let r = deep_relative_trust_bound(&[1.0, f64::NAN], &[0.5, 0.0], 3.0);
    assert!(
        matches!(
            r,
            Err(MajorizeError::NonFinite {
                what: "w_norms",
                row: 1,
                ..
            })
        ),
        "{r:?}"
    );
    let r = deep_relative_trust_bound(&[1.0, 2.0], &[0.5, 0.0], f64::INFINITY);
    assert!(
        matches!(r, Err(MajorizeError::NonFinite { what: "x_norm", .. })),
        "{r:?}"
    );
    let r = deep_relative_trust_bound(&[1.0, 2.0], &[-0.5, 0.0], 3.0);
    assert!(
        matches!(
            r,
            Err(MajorizeError::Negative {
                what: "dw_norms",
                row: 0,
                ..
            })
        ),
        "{r:?}"
    );

    let mut ws = vec![DMatrix::from_element(2, 2, 1.0)];
    ws[0][(1, 0)] = f64::NAN;
    let gw = [DMatrix::from_element(2, 2, 1.0)];
    let r = agd_step(&mut ws, None, &gw, None, 1.0);
    assert!(
        matches!(
            r,
            Err(MajorizeError::NonFinite {
                what: "W",
                row: 1,
                col: 0,
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(ws[0][(0, 0)], 1.0);
    let mut ws = vec![DMatrix::from_element(2, 2, 1.0)];
    let mut bs = vec![DVector::from_vec(vec![0.0, f64::NEG_INFINITY])];
    let gb = vec![DVector::from_element(2, 1.0)];
    let r = agd_step(&mut ws, Some(&mut bs), &gw, Some(&gb), 1.0);
    assert!(
        matches!(
            r,
            Err(MajorizeError::NonFinite {
                what: "bias",
                row: 1,
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(ws[0], DMatrix::from_element(2, 2, 1.0));
}

/// `QuadraticEnclosure` has public fields; one built by hand with disagreeing sizes made
/// `upper_bound`, `lower_bound`, the surrogate's gradient and minimiser index out of
/// bounds.
#[test]
fn inconsistent_enclosure_fields_are_refused() {
    let e = QuadraticEnclosure::<f64> {
        value: 1.0,
        gradient: vec![1.0, 2.0],
        quad_lower: DMatrix::zeros(1, 1),
        quad_upper: DMatrix::zeros(1, 1),
        slack: 0.0,
        alpha_max: vec![1.0, 1.0],
    };
    assert!(matches!(
        e.upper_bound(&[0.5, 0.5]),
        Err(MajorizeError::Shape { .. })
    ));
    assert!(matches!(
        e.lower_bound(&[0.5, 0.5]),
        Err(MajorizeError::Shape { .. })
    ));
    let mut g = DVector::zeros(2);
    let s = e.surrogate();
    assert!(matches!(
        s.gradient(&DVector::zeros(2), &mut g),
        Err(MajorizeError::Shape { .. })
    ));
    let one = QuadraticEnclosure::<f64> {
        value: 1.0,
        gradient: vec![1.0],
        quad_lower: DMatrix::zeros(1, 1),
        quad_upper: DMatrix::zeros(0, 0),
        slack: 0.0,
        alpha_max: vec![],
    };
    assert!(matches!(
        one.surrogate().minimize(&InnerSolve::default()),
        Err(MajorizeError::Shape { .. })
    ));
}

/// A user-written block whose surrogate's minimiser has the wrong length.
struct BadBlock;

struct BadSurrogate(DVector<f64>);

impl Objective<f64> for BadBlock {
    fn dim(&self) -> usize {
        2
    }
    fn value(&self, _x: &DVector<f64>) -> majorize::Result<f64> {
        Ok(0.0)
    }
    fn gradient(&self, _x: &DVector<f64>, g: &mut DVector<f64>) -> majorize::Result<()> {
        g.fill(0.0);
        Ok(())
    }
}

impl Surrogate<f64> for BadSurrogate {
    fn anchor(&self) -> &DVector<f64> {
        &self.0
    }
    fn value(&self, _x: &DVector<f64>) -> majorize::Result<f64> {
        Ok(0.0)
    }
    fn gradient(&self, _x: &DVector<f64>, g: &mut DVector<f64>) -> majorize::Result<()> {
        g.fill(0.0);
        Ok(())
    }
    fn minimize(&self, _inner: &InnerSolve) -> majorize::Result<majorize::Minimizer<f64>> {
        Ok(majorize::Minimizer {
            point: DVector::zeros(5),
            kind: majorize::MinimizerKind::ClosedForm,
        })
    }
}

impl SurrogateBuilder<f64> for BadBlock {
    type Surrogate = BadSurrogate;
    fn build(&self, anchor: &DVector<f64>) -> majorize::Result<BadSurrogate> {
        Ok(BadSurrogate(anchor.clone()))
    }
}

/// `BlockSurrogate::minimize` copied each block's minimiser into its rows unchecked:
/// a user block returning a point of the wrong length made nalgebra panic.
#[test]
fn block_minimiser_of_wrong_length_is_refused() {
    let b = BlockSeparable::<f64>::new(vec![Box::new(HalfSquaredNorm::new(1)), Box::new(BadBlock)]);
    let s = b.build(&DVector::from_element(3, 1.0)).unwrap();
    let r = s.minimize(&InnerSolve::default());
    assert!(matches!(r, Err(MajorizeError::Shape { .. })), "{r:?}");
}
