//! Op families: each file holds the recording methods of [`crate::Tape`] for its ops
//! (shape checks and forward), their backward kernels (called from the one match in
//! `backward.rs`), and their tests.

pub(crate) mod elementwise;
pub(crate) mod losses;
pub(crate) mod matmul;
pub(crate) mod reductions;
pub(crate) mod softmax;

use crate::{AutodiffError, Real, Result, Tape, Var};

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
