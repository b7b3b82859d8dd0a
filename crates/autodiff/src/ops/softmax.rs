//! Column-wise (per-sample) log-softmax and the softmax cross-entropy losses.
//!
//! Log-softmax is computed in the shifted form `y_k = (z_k - m) - ln sum_j e^(z_j - m)`
//! with `m = max_j z_j`, so no exponential overflows and `y` is finite for every finite
//! input (the log-sum-exp trick).

use crate::backward::Grads;
use crate::op::Op;
use crate::{AutodiffError, Real, Reduction, Result, Tape, Var};
use nalgebra::DMatrix;

/// Writes the log-softmax of every column of the `k x n` column-major `x` into `out`.
pub(crate) fn log_softmax_cols<T: Real>(x: &[T], k: usize, out: &mut [T]) {
    if k == 0 {
        return;
    }
    for (zc, yc) in x.chunks_exact(k).zip(out.chunks_exact_mut(k)) {
        let m = zc.iter().fold(zc[0], |m, &v| if v > m { v } else { m });
        let s = zc.iter().fold(T::zero(), |s, &v| s + (v - m).exp());
        let lse = s.ln();
        yc.iter_mut().zip(zc).for_each(|(y, &z)| *y = (z - m) - lse);
    }
}

/// `1` for [`Reduction::Sum`], `1/N` for [`Reduction::Mean`] (error when `N = 0`).
pub(crate) fn reduction_scale<T: Real>(
    op: &'static str,
    r: Reduction,
    shape: (usize, usize),
) -> Result<T> {
    match r {
        Reduction::Sum => Ok(T::one()),
        Reduction::Mean if shape.1 == 0 => Err(AutodiffError::EmptyMean { op, shape }),
        Reduction::Mean => Ok(T::one() / T::of(shape.1 as f64)),
    }
}

/// Checks that there is one label per column and each is a valid row index.
pub(crate) fn check_labels(
    op: &'static str,
    labels: &[usize],
    shape: (usize, usize),
) -> Result<()> {
    if labels.len() != shape.1 {
        return Err(AutodiffError::LabelCount {
            op,
            labels: labels.len(),
            samples: shape.1,
        });
    }
    if let Some((sample, &label)) = labels.iter().enumerate().find(|(_, l)| **l >= shape.0) {
        return Err(AutodiffError::LabelOutOfRange {
            op,
            label,
            sample,
            classes: shape.0,
        });
    }
    Ok(())
}

impl<T: Real> Tape<T> {
    /// Column-wise (per sample) log-softmax over the rows (classes):
    /// `y_kn = z_kn - ln sum_j e^(z_jn)`, in the shifted stable form.
    pub fn log_softmax(&mut self, a: Var) -> Result<Var> {
        let ia = self.check("log_softmax", a)?;
        let (k, n) = self.values[ia].shape();
        let out = self.push(Op::LogSoftmax(ia), k, n, self.needs_grad[ia]);
        let (ins, y) = self.io(out.index);
        log_softmax_cols(ins[ia].as_slice(), k, y.as_mut_slice());
        Ok(out)
    }

    /// Softmax cross-entropy of `K x N` logits against integer labels (one per column):
    /// `sum_n (ln sum_k e^(z_kn) - z_{y_n n})`, divided by `N` for [`Reduction::Mean`].
    /// Result 1x1. Errors on a label count other than `N` or a label `>= K`.
    pub fn softmax_cross_entropy_labels(
        &mut self,
        logits: Var,
        labels: &[usize],
        r: Reduction,
    ) -> Result<Var> {
        const OP: &str = "softmax_cross_entropy_labels";
        let iz = self.check(OP, logits)?;
        let shape = self.values[iz].shape();
        check_labels(OP, labels, shape)?;
        let scale = reduction_scale(OP, r, shape)?;
        let op = Op::CrossEntropyLabels { logits: iz, scale };
        let out = self.push(op, 1, 1, self.needs_grad[iz]);
        let i = out.index;
        let (k, _) = shape;
        let logp = &mut self.aux[i];
        crate::tape::ensure_shape(logp, shape.0, shape.1);
        log_softmax_cols(self.values[iz].as_slice(), k, logp.as_mut_slice());
        let ls = logp.as_slice();
        let total = labels
            .iter()
            .enumerate()
            .fold(T::zero(), |s, (n, &y)| s - ls[n * k + y]);
        self.labels[i].clear();
        self.labels[i].extend_from_slice(labels);
        self.values[i][(0, 0)] = total * scale;
        Ok(out)
    }

    /// Softmax cross-entropy against soft or one-hot targets `t` (`K x N`):
    /// `sum_n sum_k t_kn (ln sum_j e^(z_jn) - z_kn)`, divided by `N` for
    /// [`Reduction::Mean`]. Result 1x1. A gradient also flows into `t` if it is a param.
    pub fn softmax_cross_entropy(
        &mut self,
        logits: Var,
        targets: Var,
        r: Reduction,
    ) -> Result<Var> {
        const OP: &str = "softmax_cross_entropy";
        let (iz, it, shape) = self.same_shape(OP, logits, targets, ("logits", "targets"))?;
        let scale = reduction_scale(OP, r, shape)?;
        let needs = self.needs_grad[iz] || self.needs_grad[it];
        let op = Op::CrossEntropySoft {
            logits: iz,
            targets: it,
            scale,
        };
        let out = self.push(op, 1, 1, needs);
        let i = out.index;
        let logp = &mut self.aux[i];
        crate::tape::ensure_shape(logp, shape.0, shape.1);
        log_softmax_cols(self.values[iz].as_slice(), shape.0, logp.as_mut_slice());
        let total = logp
            .as_slice()
            .iter()
            .zip(self.values[it].as_slice())
            .fold(T::zero(), |s, (&lp, &t)| s - t * lp);
        self.values[i][(0, 0)] = total * scale;
        Ok(out)
    }
}

/// Backward of log-softmax: per column `dz = g - softmax(z) (1^T g)`, with
/// `softmax(z) = e^y`.
pub(crate) fn log_softmax_backward<T: Real>(
    grads: &mut Grads<'_, T>,
    g: &DMatrix<T>,
    a: usize,
    y: &DMatrix<T>,
) {
    let (k, n) = y.shape();
    let Some((ga, first)) = grads.slot(a, (k, n)) else {
        return;
    };
    if k == 0 {
        return;
    }
    let cols = ga.as_mut_slice().chunks_exact_mut(k).zip(
        g.as_slice()
            .chunks_exact(k)
            .zip(y.as_slice().chunks_exact(k)),
    );
    for (d, (gc, yc)) in cols {
        let sg = gc.iter().fold(T::zero(), |s, &v| s + v);
        super::acc2(d, first, gc, yc, |g, y| g - y.exp() * sg);
    }
}

/// Backward of the label cross-entropy: `dz = s (softmax(z) - onehot(y))` where `s`
/// is the upstream gradient times the reduction scale.
pub(crate) fn ce_labels_backward<T: Real>(
    grads: &mut Grads<'_, T>,
    s: T,
    logits: usize,
    logp: &DMatrix<T>,
    labels: &[usize],
) {
    let (k, n) = logp.shape();
    let Some((gz, first)) = grads.slot(logits, (k, n)) else {
        return;
    };
    if k == 0 {
        return;
    }
    let cols = gz
        .as_mut_slice()
        .chunks_exact_mut(k)
        .zip(logp.as_slice().chunks_exact(k));
    for ((d, lp), &y) in cols.zip(labels) {
        super::acc1(d, first, lp, |l| s * l.exp());
        d[y] -= s;
    }
}

/// Backward of the soft-target cross-entropy:
/// `dz = s ((1^T t) softmax(z) - t)`, `dt = -s log_softmax(z)`.
pub(crate) fn ce_soft_backward<T: Real>(
    grads: &mut Grads<'_, T>,
    s: T,
    logits: usize,
    targets: usize,
    t: &DMatrix<T>,
    logp: &DMatrix<T>,
) {
    let (k, n) = logp.shape();
    if k == 0 {
        return;
    }
    if let Some((gz, first)) = grads.slot(logits, (k, n)) {
        let cols = gz.as_mut_slice().chunks_exact_mut(k).zip(
            logp.as_slice()
                .chunks_exact(k)
                .zip(t.as_slice().chunks_exact(k)),
        );
        for (d, (lp, tc)) in cols {
            let mass = tc.iter().fold(T::zero(), |a, &v| a + v);
            super::acc2(d, first, lp, tc, |l, t| s * (mass * l.exp() - t));
        }
    }
    if let Some((gt, first)) = grads.slot(targets, (k, n)) {
        super::acc1(gt.as_mut_slice(), first, logp.as_slice(), |l| -s * l);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::dmatrix;

    #[test]
    fn cross_entropy_on_a_3x2_example_by_hand() {
        // Column 0: z = (1, 2, 3), label 2. Column 1: z = (0, 0, 0), label 0.
        let z = dmatrix![1.0, 0.0; 2.0, 0.0; 3.0, 0.0];
        let mut t = Tape::<f64>::new();
        let v = t.param(&z);
        let l = t
            .softmax_cross_entropy_labels(v, &[2, 0], Reduction::Mean)
            .unwrap();
        let e = [1f64.exp(), 2f64.exp(), 3f64.exp()];
        let s0: f64 = e.iter().sum();
        let want = ((s0.ln() - 3.0) + 3f64.ln()) / 2.0;
        assert!((t.scalar(l).unwrap() - want).abs() < 1e-15);
        t.backward(l).unwrap();
        let g = t.grad(v).unwrap();
        let want_g = dmatrix![
            e[0] / s0 / 2.0, (1.0 / 3.0 - 1.0) / 2.0;
            e[1] / s0 / 2.0, 1.0 / 6.0;
            (e[2] / s0 - 1.0) / 2.0, 1.0 / 6.0
        ];
        assert!((g - want_g).abs().max() < 1e-15);
        // The one-hot form agrees exactly in value and gradient.
        let mut t2 = Tape::<f64>::new();
        let v2 = t2.param(&z);
        let oh = t2.constant(&dmatrix![0.0, 1.0; 0.0, 0.0; 1.0, 0.0]);
        let l2 = t2.softmax_cross_entropy(v2, oh, Reduction::Mean).unwrap();
        assert!((t2.scalar(l2).unwrap() - want).abs() < 1e-15);
        t2.backward(l2).unwrap();
        assert!((t2.grad(v2).unwrap() - t.grad(v).unwrap()).abs().max() < 1e-15);
    }

    #[test]
    fn huge_logits_stay_finite() {
        let z = dmatrix![1000.0, -1000.0; -1000.0, 1000.0];
        let mut t = Tape::<f64>::new();
        let v = t.param(&z);
        let l = t
            .softmax_cross_entropy_labels(v, &[1, 1], Reduction::Sum)
            .unwrap();
        // Column 0 is confidently wrong (loss 2000), column 1 right (loss 0).
        assert_eq!(t.scalar(l).unwrap(), 2000.0);
        t.backward(l).unwrap();
        assert_eq!(t.grad(v).unwrap(), &dmatrix![1.0, 0.0; -1.0, 0.0]);
        let ls = t.log_softmax(v).unwrap();
        assert_eq!(t.value(ls), &dmatrix![0.0, -2000.0; -2000.0, 0.0]);
    }

    #[test]
    fn label_errors_name_the_problem() {
        let mut t = Tape::<f32>::new();
        let v = t.param(&DMatrix::zeros(3, 2));
        let e = t
            .softmax_cross_entropy_labels(v, &[0, 3], Reduction::Sum)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "softmax_cross_entropy_labels: label 3 of sample 1 is out of range for 3 classes"
        );
        let e = t
            .softmax_cross_entropy_labels(v, &[0], Reduction::Sum)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "softmax_cross_entropy_labels: 1 labels given for 2 samples (columns)"
        );
        let empty = t.param(&DMatrix::zeros(3, 0));
        let e = t
            .softmax_cross_entropy_labels(empty, &[], Reduction::Mean)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "softmax_cross_entropy_labels: cannot take a mean over an empty 3x0 input"
        );
    }
}
