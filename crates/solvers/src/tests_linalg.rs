//! Tests of `linalg` (the dense kernels and solves of the solvers).

use super::*;

/// `lambda_max_psd` on a Gram `W W^T` whose all-ones image is exactly zero (the
/// columns of `W` sum to zero, exactly representable): the estimate is the largest
/// eigenvalue, not 0 (MAC skipped Z-steps with the old 0 on AMD machines, where
/// the rounding of `g 1` gave exactly 0); ordinary matrices keep the all-ones start.
#[test]
fn lambda_max_psd_restarts_when_the_ones_vector_is_in_the_null_space() {
    // 3 x 5, every column sums to 0 exactly (small integers).
    let w = DMatrix::<f64>::from_row_slice(
        3,
        5,
        &[
            1.0, -2.0, 3.0, 0.5, -1.0, -3.0, 1.0, -1.0, 0.25, 4.0, 2.0, 1.0, -2.0, -0.75, -3.0,
        ],
    );
    for j in 0..5 {
        assert_eq!(w.column(j).sum(), 0.0);
    }
    let g = &w * w.transpose();
    assert_eq!((&g * DVector::from_element(3, 1.0)).norm(), 0.0);
    let want = g.clone().symmetric_eigen().eigenvalues.max();
    let got = lambda_max_psd(&g, 30);
    assert!(want > 1.0, "{want}");
    assert!((got - want).abs() <= 1e-10 * want, "{got} vs {want}");
    // Zero and empty matrices: 0; non-finite: not finite.
    assert_eq!(lambda_max_psd(&DMatrix::<f64>::zeros(4, 4), 30), 0.0);
    assert_eq!(lambda_max_psd(&DMatrix::<f64>::zeros(0, 0), 30), 0.0);
    let mut bad = g.clone();
    bad[(1, 1)] = f64::NAN;
    assert!(!lambda_max_psd(&bad, 30).is_finite());
    // A generic PSD matrix: the estimate matches the eigenvalue.
    let b = DMatrix::<f64>::from_fn(6, 4, |i, j| ((i * 7 + j * 3) % 11) as f64 - 5.0);
    let g = &b * b.transpose();
    let want = g.clone().symmetric_eigen().eigenvalues.max();
    let got = lambda_max_psd(&g, 200);
    assert!((got - want).abs() <= 1e-9 * want, "{got} vs {want}");
}

#[test]
fn row_wise_cholesky_solve_matches_nalgebra_and_ignores_the_upper_triangle() {
    let mut ws = Vec::new();
    for (n, m) in [(1, 1), (5, 1), (37, 11), (65, 128), (129, 10)] {
        // A well-conditioned SPD matrix B B^T + n I and a right-hand side.
        let b = DMatrix::<f64>::from_fn(n, n, |i, j| ((i * 7 + j * 3) % 11) as f64 - 5.0);
        let a = &b * b.transpose() + DMatrix::identity(n, n) * n as f64;
        let rhs = DMatrix::<f64>::from_fn(n, m, |i, j| ((i * 5 + j * 13) % 17) as f64 - 8.0);
        let chol = nalgebra::Cholesky::new(a.clone()).unwrap();
        let mut want = rhs.clone();
        chol.solve_mut(&mut want);
        // Garbage above the diagonal must not be read.
        let mut l = chol.l();
        for j in 1..n {
            for i in 0..j {
                l[(i, j)] = f64::NAN;
            }
        }
        let mut got = rhs.clone();
        cholesky_solve_rows(&l, &mut got, &mut ws);
        let err = (&got - &want).abs().max();
        assert!(err <= 1e-13 * want.abs().max(), "n {n} m {m}: {err:e}");
        // And it solves the system: A X = rhs.
        let res = (&a * &got - &rhs).abs().max();
        assert!(
            res <= 1e-11 * rhs.abs().max().max(1.0),
            "n {n} m {m}: residual {res:e}"
        );
    }
}

#[test]
fn gram_sym_is_the_full_product_up_to_rounding_and_exactly_symmetric() {
    let mut ws = GramScratch::default();
    let mut c = DMatrix::zeros(0, 0);
    // Row counts below, at and above the blocked threshold, not multiples of the
    // block; sample counts below and above one chunk (with a partial last chunk).
    for (d, n) in [(5, 7), (64, 3), (70, 1500), (129, 2100), (128, 1024)] {
        let a = DMatrix::<f64>::from_fn(d, n, |i, j| {
            ((i * 31 + j * 17) % 23) as f64 * 0.25 - 2.0 + (i as f64) * 1e-3
        });
        let mut full = DMatrix::zeros(d, d);
        gemm(
            &mut full,
            0.5,
            &a,
            Transpose::No,
            &a,
            Transpose::Yes,
            0.0,
            1,
        )
        .unwrap();
        gram_sym(&mut c, 0.5, &a, 1, &mut ws).unwrap();
        assert_eq!(c.shape(), (d, d));
        let scale = full.abs().max();
        let err = (&c - &full).abs().max();
        assert!(
            err <= 1e-13 * scale,
            "d {d} n {n}: error {err:e} of {scale:e}"
        );
        assert_eq!(c, c.transpose(), "d {d} n {n}: not symmetric");
    }
    // No samples: the zero matrix.
    let a = DMatrix::<f64>::zeros(70, 0);
    gram_sym(&mut c, 1.0, &a, 1, &mut ws).unwrap();
    assert!(c.shape() == (70, 70) && c.iter().all(|&v| v == 0.0));
}
