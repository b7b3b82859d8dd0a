//! Op families: each file holds the recording methods of [`crate::Tape`] for its ops
//! (shape checks and forward), their backward kernels (called from the one match in
//! `backward.rs`), and their tests.

pub(crate) mod affine_relu;
pub(crate) mod elementwise;
pub(crate) mod losses;
pub(crate) mod matmul;
pub(crate) mod reductions;
pub(crate) mod softmax;

use crate::{AutodiffError, Real, Result, Tape, Var};

/// Entries below which element-wise work stays on the calling thread (splitting a
/// small matrix costs more than it saves).
pub(crate) const PAR_MIN_ENTRIES: usize = 1 << 16;

/// Runs `f(offset, chunk)` over `dst` cut into `threads` contiguous chunks (lengths a
/// multiple of `align`, e.g. the column length d, except the last), on rayon's global
/// pool when `threads > 1` and `dst` has at least [`PAR_MIN_ENTRIES`] entries, else
/// once on the calling thread with offset 0. Only for entrywise maps (entry i of the
/// output depends on entry i of the inputs, or on its row for a column-aligned split):
/// every entry is computed by the same operations whatever the split, so the result is
/// bit-identical for every thread count. Called from the tape's sequential sweep, never
/// from inside a pool (no nesting): the products run on the same pool, one at a time.
pub(crate) fn par_chunks<T: Real>(
    threads: usize,
    dst: &mut [T],
    align: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    use rayon::prelude::*;
    let n = dst.len();
    if threads <= 1 || n < PAR_MIN_ENTRIES || align == 0 {
        f(0, dst);
        return;
    }
    let chunk = n.div_ceil(threads).div_ceil(align) * align;
    dst.par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(k, c)| f(k * chunk, c));
}

/// Writes (`first`) or adds the constant `v` into every entry of `dst`.
#[inline]
pub(crate) fn acc_const<T: Real>(dst: &mut [T], first: bool, v: T) {
    if first {
        dst.fill(v);
    } else {
        dst.iter_mut().for_each(|d| *d += v);
    }
}

/// Writes (`first`) or adds `f(a_i)` into `dst`.
#[inline]
pub(crate) fn acc1<T: Real>(dst: &mut [T], first: bool, a: &[T], f: impl Fn(T) -> T) {
    if first {
        dst.iter_mut().zip(a).for_each(|(d, &x)| *d = f(x));
    } else {
        dst.iter_mut().zip(a).for_each(|(d, &x)| *d += f(x));
    }
}

/// Writes (`first`) or adds `f(a_i, b_i)` into `dst`.
#[inline]
pub(crate) fn acc2<T: Real>(dst: &mut [T], first: bool, a: &[T], b: &[T], f: impl Fn(T, T) -> T) {
    if first {
        dst.iter_mut()
            .zip(a.iter().zip(b))
            .for_each(|(d, (&x, &y))| *d = f(x, y));
    } else {
        dst.iter_mut()
            .zip(a.iter().zip(b))
            .for_each(|(d, (&x, &y))| *d += f(x, y));
    }
}

/// Writes (`first`) or adds `f(a_i, b_i, c_i)` into `dst`.
#[inline]
pub(crate) fn acc3<T: Real>(
    dst: &mut [T],
    first: bool,
    a: &[T],
    b: &[T],
    c: &[T],
    f: impl Fn(T, T, T) -> T,
) {
    if first {
        dst.iter_mut()
            .zip(a.iter().zip(b.iter().zip(c)))
            .for_each(|(d, (&x, (&y, &z)))| *d = f(x, y, z));
    } else {
        dst.iter_mut()
            .zip(a.iter().zip(b.iter().zip(c)))
            .for_each(|(d, (&x, (&y, &z)))| *d += f(x, y, z));
    }
}

impl<T: Real> Tape<T> {
    /// Validates two operands of an elementwise op and returns their common shape.
    pub(crate) fn same_shape(
        &self,
        op: &'static str,
        a: Var,
        b: Var,
        names: (&'static str, &'static str),
    ) -> Result<(usize, usize, (usize, usize))> {
        let ia = self.check(op, a)?;
        let ib = self.check(op, b)?;
        let (sa, sb) = (self.values[ia].shape(), self.values[ib].shape());
        if sa != sb {
            return Err(AutodiffError::ShapeMismatch {
                op,
                lhs_name: names.0,
                lhs: sa,
                rhs_name: names.1,
                rhs: sb,
                expected: "both must have the same shape",
            });
        }
        Ok((ia, ib, sa))
    }
}
