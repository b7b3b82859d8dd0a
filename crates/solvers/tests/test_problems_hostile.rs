//! Hostile sizes and data for the `testing` problems (review4): typed errors, never an
//! overflow panic or an allocation abort.

use solvers::SolverError;
use solvers::testing::{LeastSquares, Logistic};

/// `d * N` overflowed (debug panic) in `new`, and `random` reserved `d * n` entries and
/// drew `d` of them before any check (`random(2^33, 1)` asks for 64 GiB); NaN data was
/// accepted and gave a NaN objective.
#[test]
fn test_problems_refuse_huge_sizes_and_non_finite_data() {
    let mut rng = rand::rng();
    let big = 1usize << 33;
    let cases: Vec<(&str, Result<(), SolverError>)> = vec![
        (
            "ls new overflow",
            LeastSquares::<f64>::new(usize::MAX, vec![], vec![1.0, 2.0], 0.0).map(|_| ()),
        ),
        (
            "ls random overflow",
            LeastSquares::<f64>::random(usize::MAX, 2, 0.0, &mut rng).map(|_| ()),
        ),
        (
            "ls random huge",
            LeastSquares::<f64>::random(big, 1, 0.0, &mut rng).map(|_| ()),
        ),
        (
            "lg new overflow",
            Logistic::<f64>::new(usize::MAX, vec![], vec![1.0, -1.0], 0.0).map(|_| ()),
        ),
        (
            "lg random huge",
            Logistic::<f64>::random(big, 1, 0.0, &mut rng).map(|_| ()),
        ),
    ];
    for (name, r) in cases {
        match r {
            Err(SolverError::InvalidConfig { .. }) => {}
            other => panic!("{name}: expected InvalidConfig, got {other:?}"),
        }
    }
    let nan = f64::NAN;
    let cases: Vec<(&str, Result<(), SolverError>)> = vec![
        (
            "ls NaN a",
            LeastSquares::new(2, vec![1.0, nan], vec![1.0], 0.0).map(|_| ()),
        ),
        (
            "ls Inf y",
            LeastSquares::new(1, vec![1.0], vec![f64::INFINITY], 0.0).map(|_| ()),
        ),
        (
            "lg NaN x",
            Logistic::new(2, vec![nan, 1.0], vec![1.0], 0.0).map(|_| ()),
        ),
    ];
    for (name, r) in cases {
        match r {
            Err(SolverError::NonFinite(m)) => assert!(m.contains("is not finite"), "{m}"),
            other => panic!("{name}: expected NonFinite, got {other:?}"),
        }
    }
    // Ordinary sizes still work.
    assert!(LeastSquares::<f64>::random(3, 4, 0.1, &mut rng).is_ok());
    assert!(Logistic::<f64>::random(3, 4, 0.1, &mut rng).is_ok());
}
