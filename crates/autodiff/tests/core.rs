//! End-to-end checks of the tape: a small MLP against finite differences, vjp,
//! reuse after reset, and every misuse error with its message.

use autodiff::gradcheck::{GradCheckConfig, check_tape_gradient};
use autodiff::{AutodiffError, Reduction, Tape, Transpose};
use nalgebra::{DMatrix, dmatrix};

fn mat(r: usize, c: usize, seed: u64) -> DMatrix<f64> {
    // Deterministic pseudo-random entries in (-1, 1) without an RNG dependency.
    DMatrix::from_fn(r, c, |i, j| {
        let h = (seed ^ ((i * 131 + j * 7919) as u64)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((h >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    })
}

#[test]
fn mlp_with_cross_entropy_matches_finite_differences() {
    let x = mat(4, 6, 1);
    let labels = [0, 2, 1, 1, 0, 2];
    let params = [mat(5, 4, 2), mat(5, 1, 3), mat(3, 5, 4), mat(3, 1, 5)];
    for (hidden, loss) in [(0, 0), (1, 1), (2, 0), (0, 2)] {
        let r = check_tape_gradient(
            |t, p| {
                let xv = t.constant(&x);
                let z1 = t.matmul(p[0], Transpose::No, xv, Transpose::No)?;
                let z1 = t.add_bias(z1, p[1])?;
                let a1 = match hidden {
                    0 => t.tanh(z1)?,
                    1 => t.sigmoid(z1)?,
                    _ => t.softplus(z1)?,
                };
                let z2 = t.matmul(p[2], Transpose::No, a1, Transpose::No)?;
                let z2 = t.add_bias(z2, p[3])?;
                match loss {
                    0 => t.softmax_cross_entropy_labels(z2, &labels, Reduction::Mean),
                    1 => {
                        let y = t.constant(&mat(3, 6, 9));
                        t.mse(z2, y, Reduction::Sum)
                    }
                    _ => {
                        let s = t.sum_all(z2)?;
                        t.mean_all(s)
                    }
                }
            },
            &params,
            &GradCheckConfig::default(),
        )
        .unwrap();
        assert!(r.passes(1e-7), "hidden {hidden} loss {loss}: {r}");
    }
}

#[test]
fn vjp_with_a_seed_and_grad_of_intermediate_nodes() {
    // y = W x; vjp with seed s gives dW = s x^T, dx = W^T s.
    let mut t = Tape::<f64>::new();
    let w = t.param(&dmatrix![1.0, 2.0; 3.0, 4.0; 5.0, 6.0]);
    let x = t.param(&dmatrix![1.0; -1.0]);
    let y = t.matmul(w, Transpose::No, x, Transpose::No).unwrap();
    let s = dmatrix![1.0; 0.0; 2.0];
    t.vjp(y, &s).unwrap();
    assert_eq!(t.grad(w).unwrap(), &(&s * dmatrix![1.0, -1.0]));
    assert_eq!(t.grad(x).unwrap(), &dmatrix![11.0; 14.0]);
    assert_eq!(t.grad(y).unwrap(), &s);
    // A second backward replaces (not adds to) the gradients.
    t.vjp(y, &s).unwrap();
    assert_eq!(t.grad(x).unwrap(), &dmatrix![11.0; 14.0]);
}

#[test]
fn leaves_from_slices_take_column_ranges() {
    // Columns 1..3 of a 2x4 column-major matrix are one contiguous slice.
    let x = dmatrix![1.0, 2.0, 3.0, 4.0; 5.0, 6.0, 7.0, 8.0];
    let mut t = Tape::<f64>::new();
    let c = t.constant_from_slice(2, 2, &x.as_slice()[2..6]).unwrap();
    assert_eq!(t.value(c), &dmatrix![2.0, 3.0; 6.0, 7.0]);
    let b = t.param_from_slice(2, 1, &[0.5, -0.5]).unwrap();
    let y = t.add_bias(c, b).unwrap();
    let s = t.sum_all(y).unwrap();
    t.backward(s).unwrap();
    assert_eq!(t.grad(b).unwrap(), &dmatrix![2.0; 2.0]);
    assert!(t.grad(c).is_none());
}

#[test]
fn constant_columns_gathers_scattered_columns() {
    // Columns 3, 0, 3 of a 2x4 matrix (repeats allowed), reused after a reset.
    let x = dmatrix![1.0, 2.0, 3.0, 4.0; 5.0, 6.0, 7.0, 8.0];
    let mut t = Tape::<f64>::new();
    for _ in 0..2 {
        t.reset();
        let c = t.constant_columns(&x, &[3, 0, 3]).unwrap();
        assert_eq!(t.value(c), &dmatrix![4.0, 1.0, 4.0; 8.0, 5.0, 8.0]);
        assert!(!t.requires_grad(c));
    }
    let e = t.constant_columns(&x, &[1, 4]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "constant_columns: invalid argument: column 4 of a 2x4 matrix"
    );
    let none = t.constant_columns(&x, &[]).unwrap();
    assert_eq!(t.shape(none), (2, 0));
}

#[test]
fn reset_reuses_and_gives_identical_results() {
    let mut t = Tape::<f32>::new();
    let mut first = None;
    for _ in 0..3 {
        t.reset();
        let w = t.param(&dmatrix![0.5f32, -0.25; 1.0, 2.0]);
        let x = t.constant(&dmatrix![1.0f32, 2.0, 3.0; -1.0, 0.0, 1.0]);
        let z = t.matmul(w, Transpose::No, x, Transpose::No).unwrap();
        let a = t.relu(z).unwrap();
        let l = t
            .softmax_cross_entropy_labels(a, &[0, 1, 1], Reduction::Mean)
            .unwrap();
        t.backward(l).unwrap();
        let got = (t.scalar(l).unwrap(), t.grad(w).unwrap().clone());
        if let Some(f) = &first {
            assert_eq!(f, &got);
        } else {
            first = Some(got);
        }
    }
}

#[test]
fn misuse_errors_name_the_problem() {
    let mut t = Tape::<f64>::new();
    let a = t.param(&DMatrix::zeros(2, 3));
    let b = t.param(&DMatrix::zeros(3, 2));
    // Shape mismatch in an elementwise op.
    let e = t.add(a, b).unwrap_err();
    assert!(matches!(e, AutodiffError::ShapeMismatch { op: "add", .. }));
    assert_eq!(
        e.to_string(),
        "add: shape mismatch: a is 2x3 but b is 3x2 (both must have the same shape)"
    );
    // Backward from a non-scalar.
    let e = t.backward(a).unwrap_err();
    assert_eq!(
        e.to_string(),
        "backward: output is 2x3, not a 1x1 scalar (use vjp with a seed of that shape)"
    );
    // Seed of the wrong shape.
    let e = t.vjp(a, &DMatrix::zeros(3, 2)).unwrap_err();
    assert_eq!(e.to_string(), "vjp: seed is 3x2 but the output node is 2x3");
    // Var from another tape.
    let mut other = Tape::<f64>::new();
    let o = other.param(&DMatrix::zeros(2, 3));
    let e = t.add(a, o).unwrap_err();
    assert_eq!(e.to_string(), "add: variable #0 belongs to another tape");
    // Stale var after reset.
    t.reset();
    let e = t.relu(a).unwrap_err();
    assert_eq!(
        e.to_string(),
        "relu: variable #0 is stale (recorded before the last reset of this tape)"
    );
    assert_eq!(t.value(a).shape(), (0, 0));
    assert!(t.grad(a).is_none());
    assert!(t.try_value(a).is_err());
    // Leaf from a slice of the wrong length.
    let e = t.constant_from_slice(2, 3, &[1.0; 5]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "constant_from_slice: invalid argument: 5 values given for a 2x3 matrix"
    );
    // Mean over nothing.
    let empty = t.param(&DMatrix::zeros(0, 4));
    let e = t.mean_all(empty).unwrap_err();
    assert_eq!(
        e.to_string(),
        "mean_all: cannot take a mean over an empty 0x4 input"
    );
}

#[test]
fn threaded_tape_matches_single_thread() {
    // This test is about threads: 160^3 multiply-adds exceed the 2^21 threshold, so
    // the 2-thread tape runs gemm on rayon; results agree to rounding.
    let run = |threads: usize| {
        let mut t = Tape::<f64>::with_threads(threads);
        assert_eq!(t.threads(), threads.max(1));
        let a = t.param(&mat(160, 160, 11));
        let b = t.param(&mat(160, 160, 12));
        let c = t.matmul(a, Transpose::Yes, b, Transpose::No).unwrap();
        let s = t.tanh(c).unwrap();
        let l = t.sum_all(s).unwrap();
        t.backward(l).unwrap();
        (t.scalar(l).unwrap(), t.grad(a).unwrap().clone())
    };
    let (l1, g1) = run(1);
    let (l2, g2) = run(2);
    assert!((l1 - l2).abs() < 1e-10 * l1.abs().max(1.0));
    assert!((g1 - g2).abs().max() < 1e-10);
    assert_eq!(Tape::<f32>::with_threads(0).threads(), 1);
}

/// A huge thread count is clamped to `kernels::MAX_THREADS` (review4): with
/// `usize::MAX`, `gemm`'s rayon split of a 300 x 300 product never finished (killed
/// after 10 minutes); 0 is still taken as 1. The product is the exact 300 (all ones).
#[test]
fn huge_thread_counts_are_clamped() {
    let mut t = Tape::<f64>::with_threads(usize::MAX);
    assert_eq!(t.threads(), autodiff::kernels::MAX_THREADS);
    t.set_threads(0);
    assert_eq!(t.threads(), 1);
    t.set_threads(usize::MAX);
    let a = t.param(&DMatrix::from_element(300, 300, 1.0));
    let p = t.matmul(a, Transpose::No, a, Transpose::Yes).unwrap();
    assert_eq!(t.value(p)[(7, 11)], 300.0);
    let mut c = DMatrix::zeros(300, 300);
    let ones = DMatrix::from_element(300, 300, 1.0f64);
    autodiff::kernels::gemm_into(
        &mut c,
        1.0,
        &ones,
        Transpose::No,
        &ones,
        Transpose::No,
        0.0,
        usize::MAX,
    )
    .unwrap();
    assert_eq!(c[(299, 0)], 300.0);
}
