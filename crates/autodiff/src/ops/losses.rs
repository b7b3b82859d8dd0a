//! Losses on `K x N` predictions/logits (samples are columns), each returning a 1x1
//! node: mean squared error, binary cross-entropy on logits, and the Weston-Watkins
//! multiclass hinge. `Reduction::Mean` divides by the number of samples `N`.

use super::softmax::{check_labels, reduction_scale};
use super::{acc1, acc2};
use crate::backward::Grads;
use crate::op::Op;
use crate::ops::elementwise::{sigmoid, softplus};
use crate::{Real, Reduction, Result, Tape, Var};
use nalgebra::DMatrix;

impl<T: Real> Tape<T> {
    /// Squared error `(1/2) sum_{k,n} (p_kn - t_kn)^2`, divided by `N` for
    /// [`Reduction::Mean`] (so the mean form is `1/(2N) ||P - T||_F^2`). Result 1x1.
    /// A gradient flows into `target` too if it is a param.
    pub fn mse(&mut self, pred: Var, target: Var, r: Reduction) -> Result<Var> {
        let (ip, it, shape) = self.same_shape("mse", pred, target, ("pred", "target"))?;
        let scale = reduction_scale("mse", r, shape)?;
        let needs = self.needs_grad[ip] || self.needs_grad[it];
        let op = Op::Mse {
            pred: ip,
            target: it,
            scale,
        };
        let out = self.push(op, 1, 1, needs);
        let (ins, y) = self.io(out.index);
        let half = T::of(0.5);
        let total = ins[ip]
            .as_slice()
            .iter()
            .zip(ins[it].as_slice())
            .fold(T::zero(), |s, (&p, &t)| s + (p - t) * (p - t));
        y[(0, 0)] = half * total * scale;
        Ok(out)
    }

    /// Binary cross-entropy on logits, targets in `[0, 1]`, summed over outputs:
    /// `sum_{k,n} -t ln sigmoid(z) - (1 - t) ln(1 - sigmoid(z)) = sum softplus(z) - t z`
    /// (the stable form), divided by `N` for [`Reduction::Mean`]. Result 1x1.
    pub fn bce_with_logits(&mut self, logits: Var, targets: Var, r: Reduction) -> Result<Var> {
        const OP: &str = "bce_with_logits";
        let (iz, it, shape) = self.same_shape(OP, logits, targets, ("logits", "targets"))?;
        let scale = reduction_scale(OP, r, shape)?;
        let needs = self.needs_grad[iz] || self.needs_grad[it];
        let op = Op::BceLogits {
            logits: iz,
            targets: it,
            scale,
        };
        let out = self.push(op, 1, 1, needs);
        let (ins, y) = self.io(out.index);
        let total = ins[iz]
            .as_slice()
            .iter()
            .zip(ins[it].as_slice())
            .fold(T::zero(), |s, (&z, &t)| s + softplus(z) - t * z);
        y[(0, 0)] = total * scale;
        Ok(out)
    }

    /// Weston-Watkins multiclass hinge (Weston & Watkins 1999):
    /// `sum_n sum_{j != y_n} max(0, 1 + z_jn - z_{y_n n})`, divided by `N` for
    /// [`Reduction::Mean`]. Result 1x1. Subgradient: an active margin (`> 0`) adds 1 to
    /// `z_j` and -1 to `z_y`; margins exactly at 0 count as inactive. A NaN margin is
    /// carried into the value and its gradient entries (never dropped as inactive).
    pub fn multiclass_hinge(&mut self, logits: Var, labels: &[usize], r: Reduction) -> Result<Var> {
        const OP: &str = "multiclass_hinge";
        let iz = self.check(OP, logits)?;
        let shape = self.values[iz].shape();
        check_labels(OP, labels, shape)?;
        let scale = reduction_scale(OP, r, shape)?;
        let out = self.push(Op::Hinge { logits: iz, scale }, 1, 1, self.needs_grad[iz]);
        let i = out.index;
        let k = shape.0;
        let z = self.values[iz].as_slice();
        let mut total = T::zero();
        for (n, &y) in labels.iter().enumerate() {
            let col = &z[n * k..(n + 1) * k];
            let zy = col[y];
            for (j, &zj) in col.iter().enumerate() {
                let m = T::one() + zj - zy;
                if j != y && (m > T::zero() || m.to_f64().is_nan()) {
                    total += m;
                }
            }
        }
        self.labels[i].clear();
        self.labels[i].extend_from_slice(labels);
        self.values[i][(0, 0)] = total * scale;
        Ok(out)
    }
}

/// Backward of MSE: `dp = s (p - t)`, `dt = -s (p - t)`.
pub(crate) fn mse_backward<T: Real>(
    grads: &mut Grads<'_, T>,
    s: T,
    pred: usize,
    p: &DMatrix<T>,
    target: usize,
    t: &DMatrix<T>,
) {
    let (ps, ts) = (p.as_slice(), t.as_slice());
    if let Some((gp, first)) = grads.slot(pred, p.shape()) {
        acc2(gp.as_mut_slice(), first, ps, ts, |p, t| s * (p - t));
    }
    if let Some((gt, first)) = grads.slot(target, t.shape()) {
        acc2(gt.as_mut_slice(), first, ps, ts, |p, t| s * (t - p));
    }
}

/// Backward of BCE with logits: `dz = s (sigmoid(z) - t)`, `dt = -s z`.
pub(crate) fn bce_backward<T: Real>(
    grads: &mut Grads<'_, T>,
    s: T,
    logits: usize,
    z: &DMatrix<T>,
    targets: usize,
    t: &DMatrix<T>,
) {
    let (zs, ts) = (z.as_slice(), t.as_slice());
    if let Some((gz, first)) = grads.slot(logits, z.shape()) {
        acc2(gz.as_mut_slice(), first, zs, ts, |z, t| {
            s * (sigmoid(z) - t)
        });
    }
    if let Some((gt, first)) = grads.slot(targets, t.shape()) {
        acc1(gt.as_mut_slice(), first, zs, |z| -s * z);
    }
}

/// Backward of the multiclass hinge: per active margin `1 + z_j - z_y > 0`,
/// `dz_j += s` and `dz_y -= s`.
pub(crate) fn hinge_backward<T: Real>(
    grads: &mut Grads<'_, T>,
    s: T,
    logits: usize,
    z: &DMatrix<T>,
    labels: &[usize],
) {
    let (k, n) = z.shape();
    let Some((gz, first)) = grads.slot(logits, (k, n)) else {
        return;
    };
    if first {
        gz.fill(T::zero());
    }
    if k == 0 {
        return;
    }
    let cols = gz
        .as_mut_slice()
        .chunks_exact_mut(k)
        .zip(z.as_slice().chunks_exact(k));
    for ((d, col), &y) in cols.zip(labels) {
        let zy = col[y];
        for j in 0..k {
            let m = T::one() + col[j] - zy;
            if j != y && m > T::zero() {
                d[j] += s;
                d[y] -= s;
            } else if j != y && m.to_f64().is_nan() {
                d[j] += m;
                d[y] += m;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::dmatrix;

    #[test]
    fn mse_is_half_squared_error_over_samples() {
        let mut t = Tape::<f64>::new();
        let p = t.param(&dmatrix![1.0, 2.0; 3.0, 4.0]);
        let y = t.constant(&dmatrix![0.0, 2.0; 1.0, 1.0]);
        let l = t.mse(p, y, Reduction::Mean).unwrap();
        // (1/2)(1 + 0 + 4 + 9) / 2 samples = 3.5
        assert_eq!(t.scalar(l).unwrap(), 3.5);
        t.backward(l).unwrap();
        assert_eq!(t.grad(p).unwrap(), &dmatrix![0.5, 0.0; 1.0, 1.5]);
        let l = t.mse(p, y, Reduction::Sum).unwrap();
        assert_eq!(t.scalar(l).unwrap(), 7.0);
    }

    #[test]
    fn bce_with_logits_by_hand_and_at_1000() {
        let mut t = Tape::<f64>::new();
        let z = t.param(&dmatrix![0.0, 1000.0, -1000.0]);
        let y = t.constant(&dmatrix![1.0, 0.0, 0.0]);
        let l = t.bce_with_logits(z, y, Reduction::Sum).unwrap();
        // ln 2 + 1000 + 0
        assert_eq!(t.scalar(l).unwrap(), 2f64.ln() + 1000.0);
        t.backward(l).unwrap();
        assert_eq!(t.grad(z).unwrap(), &dmatrix![-0.5, 1.0, 0.0]);
    }

    #[test]
    fn hinge_by_hand() {
        // Column 0: z = (2, 1.5, -1), y = 0: margins 0.5 (active), -2 -> loss 0.5.
        // Column 1: z = (0, 0, 3), y = 1: margins 1, 4 -> loss 5.
        let mut t = Tape::<f64>::new();
        let z = t.param(&dmatrix![2.0, 0.0; 1.5, 0.0; -1.0, 3.0]);
        let l = t.multiclass_hinge(z, &[0, 1], Reduction::Mean).unwrap();
        assert_eq!(t.scalar(l).unwrap(), 2.75);
        t.backward(l).unwrap();
        assert_eq!(
            t.grad(z).unwrap(),
            &dmatrix![-0.5, 0.5; 0.5, -1.0; 0.0, 0.5]
        );
        let e = t.multiclass_hinge(z, &[0, 7], Reduction::Mean).unwrap_err();
        assert_eq!(
            e.to_string(),
            "multiclass_hinge: label 7 of sample 1 is out of range for 3 classes"
        );
    }
}
