//! Sums and means: over all entries (1x1), per row (m x 1, over the columns/samples)
//! and per column (1 x n, over the rows).

use crate::backward::Grads;
use crate::op::{Axis, Op};
use crate::{AutodiffError, Real, Result, Tape, Var};
use nalgebra::DMatrix;

impl<T: Real> Tape<T> {
    fn reduce(&mut self, a: Var, axis: Axis, mean: bool, op: &'static str) -> Result<Var> {
        let ia = self.check(op, a)?;
        let (m, n) = self.values[ia].shape();
        let (count, shape) = match axis {
            Axis::All => (m * n, (1, 1)),
            Axis::PerRow => (n, (m, 1)),
            Axis::PerCol => (m, (1, n)),
        };
        let scale = if mean {
            if count == 0 {
                return Err(AutodiffError::EmptyMean { op, shape: (m, n) });
            }
            T::one() / T::of(count as f64)
        } else {
            T::one()
        };
        let out = self.push(
            Op::Reduce(ia, axis, scale),
            shape.0,
            shape.1,
            self.needs_grad[ia],
        );
        let (ins, y) = self.io(out.index);
        let x = ins[ia].as_slice();
        let ys = y.as_mut_slice();
        match axis {
            Axis::All => ys[0] = x.iter().fold(T::zero(), |s, &v| s + v) * scale,
            Axis::PerRow => {
                ys.fill(T::zero());
                if m > 0 {
                    for col in x.chunks_exact(m) {
                        ys.iter_mut().zip(col).for_each(|(s, &v)| *s += v);
                    }
                }
                ys.iter_mut().for_each(|s| *s *= scale);
            }
            Axis::PerCol => {
                for (j, s) in ys.iter_mut().enumerate() {
                    *s = x[j * m..(j + 1) * m].iter().fold(T::zero(), |s, &v| s + v) * scale;
                }
            }
        }
        Ok(out)
    }

    /// Sum of all entries (1x1).
    pub fn sum_all(&mut self, a: Var) -> Result<Var> {
        self.reduce(a, Axis::All, false, "sum_all")
    }

    /// Mean of all entries (1x1); errors on an empty input.
    pub fn mean_all(&mut self, a: Var) -> Result<Var> {
        self.reduce(a, Axis::All, true, "mean_all")
    }

    /// Sum of each row over its columns: `A 1` (m x 1), e.g. a sum over samples.
    pub fn sum_per_row(&mut self, a: Var) -> Result<Var> {
        self.reduce(a, Axis::PerRow, false, "sum_per_row")
    }

    /// Mean of each row over its columns (m x 1); errors when there are no columns.
    pub fn mean_per_row(&mut self, a: Var) -> Result<Var> {
        self.reduce(a, Axis::PerRow, true, "mean_per_row")
    }

    /// Sum of each column over its rows: `1^T A` (1 x n), e.g. a per-sample total.
    pub fn sum_per_col(&mut self, a: Var) -> Result<Var> {
        self.reduce(a, Axis::PerCol, false, "sum_per_col")
    }

    /// Mean of each column over its rows (1 x n); errors when there are no rows.
    pub fn mean_per_col(&mut self, a: Var) -> Result<Var> {
        self.reduce(a, Axis::PerCol, true, "mean_per_col")
    }
}

/// Backward of `scale * sum over axis`: every entry of `A` receives `scale` times the
/// upstream gradient of the output entry it was summed into.
pub(crate) fn backward<T: Real>(
    grads: &mut Grads<'_, T>,
    g: &DMatrix<T>,
    a: usize,
    shape: (usize, usize),
    axis: Axis,
    scale: T,
) {
    let Some((ga, first)) = grads.slot(a, shape) else {
        return;
    };
    let (m, n) = shape;
    if m == 0 || n == 0 {
        return;
    }
    let gs = g.as_slice();
    let d = ga.as_mut_slice();
    for (j, col) in d.chunks_exact_mut(m).enumerate() {
        match axis {
            Axis::All => super::acc_const(col, first, gs[0] * scale),
            Axis::PerRow => super::acc1(col, first, &gs[..m], |g| g * scale),
            Axis::PerCol => super::acc_const(col, first, gs[j] * scale),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Tape;
    use nalgebra::dmatrix;

    #[test]
    fn sums_and_means_by_hand() {
        let mut t = Tape::<f64>::new();
        let a = t.param(&dmatrix![1.0, 2.0, 3.0; 4.0, 5.0, 6.0]);
        let r = [
            t.sum_all(a).unwrap(),
            t.mean_all(a).unwrap(),
            t.sum_per_row(a).unwrap(),
            t.mean_per_row(a).unwrap(),
            t.sum_per_col(a).unwrap(),
            t.mean_per_col(a).unwrap(),
        ];
        assert_eq!(t.value(r[0]), &dmatrix![21.0]);
        assert_eq!(t.value(r[1]), &dmatrix![3.5]);
        assert_eq!(t.value(r[2]), &dmatrix![6.0; 15.0]);
        assert_eq!(t.value(r[3]), &dmatrix![2.0; 5.0]);
        assert_eq!(t.value(r[4]), &dmatrix![5.0, 7.0, 9.0]);
        assert_eq!(t.value(r[5]), &dmatrix![2.5, 3.5, 4.5]);
        // Gradient of mean_per_row with seed (1, 2): each row's entries get seed / 3.
        t.vjp(r[3], &dmatrix![1.0; 2.0]).unwrap();
        let third = 1.0 / 3.0;
        assert_eq!(
            t.grad(a).unwrap(),
            &dmatrix![third, third, third; 2.0 * third, 2.0 * third, 2.0 * third]
        );
        // Gradient of sum_per_col with seed (1, 0, -1) broadcasts down the columns.
        t.vjp(r[4], &dmatrix![1.0, 0.0, -1.0]).unwrap();
        assert_eq!(
            t.grad(a).unwrap(),
            &dmatrix![1.0, 0.0, -1.0; 1.0, 0.0, -1.0]
        );
    }
}
