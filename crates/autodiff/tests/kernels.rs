//! The GEMM wrapper against a naive triple loop: random shapes including degenerate
//! ones (k = 0, empty outputs, 1 x n, n x 1), all transpose combinations, and
//! alpha/beta combinations including beta = 0 over a NaN-filled output.

use autodiff::kernels::{gemm_into, matmul};
use autodiff::{AutodiffError, Transpose};
use nalgebra::DMatrix;
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn op(m: &DMatrix<f64>, t: Transpose) -> DMatrix<f64> {
    match t {
        Transpose::No => m.clone(),
        Transpose::Yes => m.transpose(),
    }
}

/// alpha * op(a) op(b) + beta * c, one dot product at a time, in f64.
fn naive(
    c: &DMatrix<f64>,
    alpha: f64,
    a: &DMatrix<f64>,
    ta: Transpose,
    b: &DMatrix<f64>,
    tb: Transpose,
    beta: f64,
) -> DMatrix<f64> {
    let (a, b) = (op(a, ta), op(b, tb));
    DMatrix::from_fn(a.nrows(), b.ncols(), |i, j| {
        let mut s = 0.0;
        for p in 0..a.ncols() {
            s += a[(i, p)] * b[(p, j)];
        }
        let old = if beta == 0.0 { 0.0 } else { beta * c[(i, j)] };
        alpha * s + old
    })
}

fn random(r: usize, c: usize, rng: &mut ChaCha8Rng) -> DMatrix<f64> {
    DMatrix::from_fn(r, c, |_, _| rng.random_range(-1.0..1.0))
}

fn stored(rows: usize, cols: usize, t: Transpose) -> (usize, usize) {
    match t {
        Transpose::No => (rows, cols),
        Transpose::Yes => (cols, rows),
    }
}

fn tr(b: bool) -> Transpose {
    if b { Transpose::Yes } else { Transpose::No }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn gemm_into_equals_naive_loop(
        m in 0usize..20, n in 0usize..20, k in 0usize..20,
        ta in any::<bool>(), tb in any::<bool>(),
        ab in 0usize..16, seed in any::<u64>(),
    ) {
        let alphas = [1.0, 0.0, -0.5, 2.5];
        let (alpha, beta) = (alphas[ab % 4], alphas[ab / 4]);
        let (ta, tb) = (tr(ta), tr(tb));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (ar, ac) = stored(m, k, ta);
        let (br, bc) = stored(k, n, tb);
        let a = random(ar, ac, &mut rng);
        let b = random(br, bc, &mut rng);
        let mut c = if beta == 0.0 {
            DMatrix::from_element(m, n, f64::NAN)
        } else {
            random(m, n, &mut rng)
        };
        let want = naive(&c, alpha, &a, ta, &b, tb, beta);
        gemm_into(&mut c, alpha, &a, ta, &b, tb, beta, 1).unwrap();
        let err = (&c - &want).abs().max();
        prop_assert!(err <= 1e-13 * (k as f64 + 1.0), "err {} for m={} n={} k={}", err, m, n, k);
        // f32 through the same path, compared with the f64 result.
        let (a32, b32) = (a.map(|x| x as f32), b.map(|x| x as f32));
        let mut c32 = DMatrix::<f32>::from_element(m, n, f32::NAN);
        gemm_into(&mut c32, alpha as f32, &a32, ta, &b32, tb, 0.0, 1).unwrap();
        let want0 = naive(&c, alpha, &a, ta, &b, tb, 0.0);
        let err32 = (c32.map(|x| x as f64) - want0).abs().max();
        prop_assert!(err32 <= 1e-5 * (k as f64 + 1.0), "f32 err {}", err32);
    }
}

#[test]
fn blocked_and_threaded_paths_match_the_loop() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // Large enough for gemm's packed path and, with 2 threads, above the 2^21
    // multiply-add threshold for rayon parallelism (this test is about threads).
    for (m, n, k, threads) in [
        (67, 45, 130, 1),
        (130, 131, 129, 2),
        (1, 300, 40, 1),
        (300, 1, 40, 1),
    ] {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let (ta, tb) = (tr(ta), tr(tb));
            let (ar, ac) = stored(m, k, ta);
            let (br, bc) = stored(k, n, tb);
            let a = random(ar, ac, &mut rng);
            let b = random(br, bc, &mut rng);
            let c0 = random(m, n, &mut rng);
            let want = naive(&c0, 0.75, &a, ta, &b, tb, -1.5);
            let mut c = c0.clone();
            gemm_into(&mut c, 0.75, &a, ta, &b, tb, -1.5, threads).unwrap();
            assert!(
                (&c - &want).abs().max() < 1e-12,
                "{m}x{n}x{k} {ta:?} {tb:?} t={threads}"
            );
        }
    }
}

#[test]
fn degenerate_shapes_and_matmul_convenience() {
    // k = 0: C <- beta C, or zeros when beta = 0 (even over NaN).
    let a = DMatrix::<f64>::zeros(3, 0);
    let b = DMatrix::<f64>::zeros(0, 2);
    let mut c = DMatrix::from_element(3, 2, 4.0);
    gemm_into(&mut c, 1.0, &a, Transpose::No, &b, Transpose::No, 0.5, 1).unwrap();
    assert_eq!(c, DMatrix::from_element(3, 2, 2.0));
    let mut c = DMatrix::from_element(3, 2, f64::NAN);
    gemm_into(&mut c, 1.0, &a, Transpose::No, &b, Transpose::No, 0.0, 1).unwrap();
    assert_eq!(c, DMatrix::zeros(3, 2));
    // Empty outputs are fine.
    let r = matmul(
        &DMatrix::<f32>::zeros(0, 4),
        Transpose::No,
        &DMatrix::zeros(4, 5),
        Transpose::No,
    );
    assert_eq!(r.unwrap().shape(), (0, 5));
    // 1 x n times n x 1 and the outer product.
    let u = DMatrix::from_row_slice(1, 3, &[1.0, 2.0, 3.0]);
    let dot = matmul(&u, Transpose::No, &u, Transpose::Yes).unwrap();
    assert_eq!(dot[(0, 0)], 14.0);
    let outer = matmul(&u, Transpose::Yes, &u, Transpose::No).unwrap();
    assert_eq!(outer, u.transpose() * &u);
}

#[test]
fn shape_errors_leave_the_output_untouched() {
    let a = DMatrix::<f64>::zeros(2, 3);
    let mut c = DMatrix::from_element(2, 2, 1.0);
    let e = gemm_into(&mut c, 1.0, &a, Transpose::No, &a, Transpose::No, 0.0, 1).unwrap_err();
    assert!(matches!(
        e,
        AutodiffError::ShapeMismatch {
            op: "gemm_into",
            ..
        }
    ));
    assert_eq!(
        e.to_string(),
        "gemm_into: shape mismatch: op(a) is 2x3 but op(b) is 2x3 (columns of op(a) must equal rows of op(b))"
    );
    let e = gemm_into(&mut c, 1.0, &a, Transpose::Yes, &a, Transpose::No, 0.0, 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "gemm_into: shape mismatch: c is 2x2 but op(a) op(b) is 3x3 (c must have the shape of the product)"
    );
    assert_eq!(c, DMatrix::from_element(2, 2, 1.0));
}
