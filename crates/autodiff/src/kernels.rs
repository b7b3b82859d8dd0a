//! Dense matrix products: the one strided GEMM wrapper every product in the workspace
//! goes through.
//!
//! [`gemm_into`] computes `C <- alpha * op(A) * op(B) + beta * C` with the `gemm` crate
//! (0.19). A transposed operand is passed by swapping its row and column strides, so no
//! transpose is ever materialised and nalgebra's slow dot-product paths (`tr_mul`,
//! `gemm_tr`, about 10 GFLOP/s) are never used. Note that `gemm::gemm` itself names its
//! scalars the other way round (`dst = alpha * dst + beta * lhs * rhs`); the translation
//! happens in exactly one place, `gemm_raw`, the crate's only `unsafe` code besides the
//! target-feature calls of [`crate::simd`].
//!
//! Degenerate shapes never reach `gemm`: an empty output is a no-op and an inner
//! dimension `k = 0` gives `beta * C` (or zeros when `beta = 0`). As in BLAS, `beta = 0`
//! means `C` is not read, so whatever it held (even NaN) is overwritten.

use crate::{AutodiffError, Real, Result, Transpose};
use nalgebra::DMatrix;
use std::any::TypeId;
use std::cell::Cell;

/// Products with `m * n * k` below this many multiply-adds run on one thread even
/// when more are allowed: threading overhead dominates below it (STYLE.md B1).
pub const PARALLEL_THRESHOLD: usize = 1 << 21;

/// The most threads a product (and a [`crate::Tape`]) uses: larger requests are clamped
/// to it. `gemm`'s rayon parallelism splits the work into as many parts as it is asked
/// for, so `usize::MAX` threads never finished a 300 x 300 product.
pub const MAX_THREADS: usize = 1024;

thread_local! {
    static IN_GEMM: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread is currently inside the `gemm` crate's kernel.
///
/// For allocation-counting tests only: `gemm` 0.19 allocates small packing workspaces
/// (and a flag vector) on every blocked call, which the tape cannot pool because the
/// crate takes no caller-provided workspace. A counting allocator can use this to tell
/// those apart from allocations of the tape itself.
#[doc(hidden)]
pub fn inside_gemm() -> bool {
    IN_GEMM.with(|c| c.get())
}

/// Sets the [`inside_gemm`] flag for its lifetime (also cleared on unwinding).
struct GemmFlag;

impl GemmFlag {
    fn set() -> Self {
        IN_GEMM.with(|c| c.set(true));
        GemmFlag
    }
}

impl Drop for GemmFlag {
    fn drop(&mut self) {
        IN_GEMM.with(|c| c.set(false));
    }
}

/// A read-only strided view of `op(M)`: `rows x cols`, element `(i, j)` at
/// `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
struct View<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, T> View<'a, T> {
    /// The view of `op(m)` for a column-major matrix: transposing swaps the strides.
    fn of(m: &'a DMatrix<T>, t: Transpose) -> Self {
        let (r, c) = m.shape();
        match t {
            Transpose::No => View {
                data: m.as_slice(),
                rows: r,
                cols: c,
                rs: 1,
                cs: r,
            },
            Transpose::Yes => View {
                data: m.as_slice(),
                rows: c,
                cols: r,
                rs: r,
                cs: 1,
            },
        }
    }

    /// Whether every element of the view lies inside `data` (the safety condition of
    /// [`gemm_raw`]).
    fn in_bounds(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        let last = (self.rows - 1).checked_mul(self.rs).and_then(|a| {
            (self.cols - 1)
                .checked_mul(self.cs)
                .and_then(|b| a.checked_add(b))
        });
        matches!(last, Some(l) if l < self.data.len())
    }

    #[inline]
    fn at(&self, i: usize, j: usize) -> T
    where
        T: Copy,
    {
        self.data[i * self.rs + j * self.cs]
    }
}

/// `C <- alpha * op(A) * op(B) + beta * C` through the `gemm` crate.
///
/// `op(X)` is `X` or `X^T` according to `ta`/`tb` (strides are swapped, nothing is
/// copied). `threads <= 1` runs on the calling thread; otherwise products with at least
/// [`PARALLEL_THRESHOLD`] multiply-adds use `gemm`'s rayon parallelism with that many
/// threads (at most [`MAX_THREADS`]). With `beta = 0`, `C` is only written. Errors (without touching `C`) when
/// the inner dimensions differ or `C` is not `rows(op(A)) x cols(op(B))`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_into<T: Real>(
    c: &mut DMatrix<T>,
    alpha: T,
    a: &DMatrix<T>,
    ta: Transpose,
    b: &DMatrix<T>,
    tb: Transpose,
    beta: T,
    threads: usize,
) -> Result<()> {
    let av = View::of(a, ta);
    let bv = View::of(b, tb);
    if av.cols != bv.rows {
        return Err(AutodiffError::ShapeMismatch {
            op: "gemm_into",
            lhs_name: "op(a)",
            lhs: (av.rows, av.cols),
            rhs_name: "op(b)",
            rhs: (bv.rows, bv.cols),
            expected: "columns of op(a) must equal rows of op(b)",
        });
    }
    if c.shape() != (av.rows, bv.cols) {
        return Err(AutodiffError::ShapeMismatch {
            op: "gemm_into",
            lhs_name: "c",
            lhs: c.shape(),
            rhs_name: "op(a) op(b)",
            rhs: (av.rows, bv.cols),
            expected: "c must have the shape of the product",
        });
    }
    gemm_views(c, alpha, av, bv, beta, threads)
}

/// Allocating convenience: returns `op(A) * op(B)` (single-threaded).
pub fn matmul<T: Real>(
    a: &DMatrix<T>,
    ta: Transpose,
    b: &DMatrix<T>,
    tb: Transpose,
) -> Result<DMatrix<T>> {
    let av = View::of(a, ta);
    let bv = View::of(b, tb);
    let mut c = DMatrix::zeros(av.rows, bv.cols);
    gemm_into(&mut c, T::one(), a, ta, b, tb, T::zero(), 1)?;
    Ok(c)
}

/// Shape-checked core shared by the public entry points: handles the degenerate shapes
/// and picks the parallelism, then hands over to [`gemm_raw`].
fn gemm_views<T: Real>(
    c: &mut DMatrix<T>,
    alpha: T,
    a: View<'_, T>,
    b: View<'_, T>,
    beta: T,
    threads: usize,
) -> Result<()> {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 || alpha == T::zero() {
        if beta == T::zero() {
            c.fill(T::zero());
        } else if beta != T::one() {
            c.iter_mut().for_each(|x| *x *= beta);
        }
        return Ok(());
    }
    let is_f32 = TypeId::of::<T>() == TypeId::of::<f32>();
    let is_f64 = TypeId::of::<T>() == TypeId::of::<f64>();
    if !(is_f32 || is_f64) {
        // `gemm` only knows f32/f64 (and complex/f16); any other `Real` takes the loop.
        naive_views(c, alpha, a, b, beta);
        return Ok(());
    }
    if !(a.in_bounds() && b.in_bounds()) {
        return Err(AutodiffError::InvalidArgument {
            op: "gemm_into",
            what: "strided view out of bounds (internal error)".into(),
        });
    }
    let par = if threads <= 1 || m.saturating_mul(n).saturating_mul(k) < PARALLEL_THRESHOLD {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(threads.min(MAX_THREADS))
    };
    gemm_raw(c.as_mut_slice(), m, n, k, alpha, a, b, beta, par);
    Ok(())
}

/// The crate's only `unsafe` code besides [`crate::simd`]: one call of `gemm::gemm`.
///
/// Computes `c <- alpha * A * B + beta * c` for a column-major `m x n` buffer `c`.
/// Safety argument: `c` is an exclusive slice of exactly `m * n` elements (column stride
/// `m`, row stride 1); `a` and `b` are shared slices whose strided `m x k` and `k x n`
/// views were checked with `View::in_bounds` by the caller; the borrow checker guarantees
/// `c` aliases neither; `m, n, k >= 1`; `T` is `f32` or `f64` (checked by the caller),
/// the types `gemm` dispatches on. `gemm` computes `dst = g_alpha * dst + g_beta * lhs *
/// rhs` and skips reading `dst` when `read_dst` is false, so our `(alpha, beta)` map to
/// its `(beta, alpha)` and `read_dst = beta != 0` gives BLAS semantics for `beta = 0`.
#[allow(unsafe_code, clippy::too_many_arguments)]
fn gemm_raw<T: Real>(
    c: &mut [T],
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: View<'_, T>,
    b: View<'_, T>,
    beta: T,
    par: gemm::Parallelism,
) {
    debug_assert_eq!(c.len(), m * n);
    debug_assert!(a.rows == m && a.cols == k && b.rows == k && b.cols == n);
    let _flag = GemmFlag::set();
    // SAFETY: see the function documentation; every pointer/stride pair describes memory
    // inside a live slice of the right mutability for the duration of the call.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            m as isize,
            1,
            beta != T::zero(),
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            beta,
            alpha,
            false,
            false,
            false,
            par,
        );
    }
}

/// Reference triple loop (also the path for `Real` types `gemm` does not know).
fn naive_views<T: Real>(c: &mut DMatrix<T>, alpha: T, a: View<'_, T>, b: View<'_, T>, beta: T) {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    for j in 0..n {
        for i in 0..m {
            let mut s = T::zero();
            for p in 0..k {
                s += a.at(i, p) * b.at(p, j);
            }
            let old = if beta == T::zero() {
                T::zero()
            } else {
                beta * c[(i, j)]
            };
            c[(i, j)] = alpha * s + old;
        }
    }
}
