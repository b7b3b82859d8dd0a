//! dlADMM's layer maps and residuals from the cached products `W_l A_{l-1}`, each in one
//! pass over the columns (issue #14: the copy-then-add-bias of nalgebra's column
//! operations, a branch per entry and the bias step's row sums walked across the
//! column-major storage were a fifth of a digits-mlp sweep).
//!
//! Every entry takes the same operations as before the fusion (`p + b`, then `z - (p + b)`,
//! then `+ U / rho` for the output layer; the bias step's sums over the samples in the
//! order of the samples), so the results are unchanged bit for bit.

use autodiff::{Real, Transpose};

use super::{DlAdmm, not_init};
use crate::SolverError;
use crate::admm::lifted::Residuals;
use crate::linalg::{ensure_shape, gemm};

impl<T: Real> DlAdmm<T> {
    /// Makes `prods[l] = W_l A_{l-1}` current (computed only when `W_l` or `A_{l-1}`
    /// changed since it was last computed).
    fn product(
        &mut self,
        l: usize,
        x: &nalgebra::DMatrix<T>,
        threads: usize,
    ) -> Result<(), SolverError> {
        let vars = self.vars.as_ref().ok_or_else(not_init)?;
        let l_count = vars.layers();
        if self.prod_valid.len() != l_count {
            self.prod_valid = vec![false; l_count];
            self.prods
                .resize_with(l_count, || nalgebra::DMatrix::zeros(0, 0));
        }
        if !self.prod_valid[l] {
            let (w, input) = (&vars.w[l], vars.input(x, l));
            let p = &mut self.prods[l];
            ensure_shape(p, w.nrows(), input.ncols());
            gemm(p, 1.0, w, Transpose::No, input, Transpose::No, 0.0, threads)?;
            self.prod_valid[l] = true;
        }
        Ok(())
    }

    /// Marks `W_l A_{l-1}` as changed.
    pub(super) fn invalidate(&mut self, l: usize) {
        if let Some(v) = self.prod_valid.get_mut(l) {
            *v = false;
        }
    }

    /// `scratch <- W_l A_{l-1} + b_l 1^T` (the product from the cache).
    pub(super) fn affine_cached(
        &mut self,
        l: usize,
        x: &nalgebra::DMatrix<T>,
        threads: usize,
    ) -> Result<(), SolverError> {
        self.product(l, x, threads)?;
        let vars = self.vars.as_ref().ok_or_else(not_init)?;
        let (p, b) = (&self.prods[l], vars.b[l].as_slice());
        shape_pair(
            &mut self.scratch,
            &mut self.scratch_alt,
            p.nrows(),
            p.ncols(),
        );
        let k = p.nrows().max(1);
        for (oc, pc) in self
            .scratch
            .as_mut_slice()
            .chunks_exact_mut(k)
            .zip(p.as_slice().chunks_exact(k))
        {
            for ((o, &pi), &bi) in oc.iter_mut().zip(pc).zip(b) {
                *o = pi + bi;
            }
        }
        Ok(())
    }

    /// `scratch <- Z_l - W_l A_{l-1} - b_l (+ U / rho for the output layer)`.
    pub(super) fn residual_into(
        &mut self,
        l: usize,
        x: &nalgebra::DMatrix<T>,
        threads: usize,
    ) -> Result<(), SolverError> {
        self.product(l, x, threads)?;
        let vars = self.vars.as_ref().ok_or_else(not_init)?;
        let last = l + 1 == vars.layers();
        let (p, b, z) = (&self.prods[l], vars.b[l].as_slice(), &vars.z[l]);
        shape_pair(
            &mut self.scratch,
            &mut self.scratch_alt,
            p.nrows(),
            p.ncols(),
        );
        let k = p.nrows().max(1);
        let cols = self
            .scratch
            .as_mut_slice()
            .chunks_exact_mut(k)
            .zip(p.as_slice().chunks_exact(k))
            .zip(z.as_slice().chunks_exact(k));
        if last {
            let inv_rho = T::of(1.0 / self.rho);
            for (((oc, pc), zc), uc) in cols.zip(self.u.as_slice().chunks_exact(k)) {
                for ((((o, &pi), &bi), &zi), &ui) in oc.iter_mut().zip(pc).zip(b).zip(zc).zip(uc) {
                    *o = (zi - (pi + bi)) + ui * inv_rho;
                }
            }
        } else {
            for ((oc, pc), zc) in cols {
                for (((o, &pi), &bi), &zi) in oc.iter_mut().zip(pc).zip(b).zip(zc) {
                    *o = zi - (pi + bi);
                }
            }
        }
        Ok(())
    }

    /// `bias_sums <-` the row sums of [`Self::residual_into`]'s matrix (summed in the
    /// order of the samples, in f64), without writing the matrix.
    pub(super) fn residual_sums(
        &mut self,
        l: usize,
        x: &nalgebra::DMatrix<T>,
        threads: usize,
    ) -> Result<(), SolverError> {
        self.product(l, x, threads)?;
        let vars = self.vars.as_ref().ok_or_else(not_init)?;
        let last = l + 1 == vars.layers();
        let (p, b, z) = (&self.prods[l], vars.b[l].as_slice(), &vars.z[l]);
        let k = p.nrows();
        let sums = &mut self.bias_sums;
        sums.clear();
        // `Iterator::sum` of f64 starts from -0.0.
        sums.resize(k, -0.0);
        if k == 0 {
            return Ok(());
        }
        let cols = p
            .as_slice()
            .chunks_exact(k)
            .zip(z.as_slice().chunks_exact(k));
        if last {
            let inv_rho = T::of(1.0 / self.rho);
            for ((pc, zc), uc) in cols.zip(self.u.as_slice().chunks_exact(k)) {
                for ((((s, &pi), &bi), &zi), &ui) in sums.iter_mut().zip(pc).zip(b).zip(zc).zip(uc)
                {
                    *s += ((zi - (pi + bi)) + ui * inv_rho).to_f64();
                }
            }
        } else {
            for (pc, zc) in cols {
                for (((s, &pi), &bi), &zi) in sums.iter_mut().zip(pc).zip(b).zip(zc) {
                    *s += (zi - (pi + bi)).to_f64();
                }
            }
        }
        Ok(())
    }

    /// [`crate::admm::lifted::Lifted::residuals`] from the cached products: per layer
    /// `||W_l A_{l-1} + b_l - Z_l||` and, for hidden layers, `||h(Z_l) - A_l||`, without
    /// writing the differences; the squares are summed per row, then over the rows
    /// ([`row_sq_norm`]'s order).
    pub(super) fn residuals_cached(
        &mut self,
        x: &nalgebra::DMatrix<T>,
        threads: usize,
    ) -> Result<Residuals, SolverError> {
        let mut r = Residuals::default();
        let l_count = self.vars.as_ref().ok_or_else(not_init)?.layers();
        for l in 0..l_count {
            self.product(l, x, threads)?;
            let vars = self.vars.as_ref().ok_or_else(not_init)?;
            let (p, b, z) = (&self.prods[l], vars.b[l].as_slice(), &vars.z[l]);
            let k = p.nrows().max(1);
            let acc = &mut self.row_acc;
            acc.clear();
            acc.resize(k, 0.0);
            for (pc, zc) in p
                .as_slice()
                .chunks_exact(k)
                .zip(z.as_slice().chunks_exact(k))
            {
                for (((s, &pi), &bi), &zi) in acc.iter_mut().zip(pc).zip(b).zip(zc) {
                    let d = ((pi + bi) - zi).to_f64();
                    *s += d * d;
                }
            }
            r.linear.push(acc.iter().sum::<f64>().sqrt());
            if l + 1 < l_count {
                let h = vars.h[l];
                acc.fill(0.0);
                for (zc, ac) in z
                    .as_slice()
                    .chunks_exact(k)
                    .zip(vars.a[l].as_slice().chunks_exact(k))
                {
                    for ((s, &zi), &ai) in acc.iter_mut().zip(zc).zip(ac) {
                        let d = (h.apply(zi) - ai).to_f64();
                        *s += d * d;
                    }
                }
                r.activation.push(acc.iter().sum::<f64>().sqrt());
            }
        }
        Ok(r)
    }

    /// The adaptive rule's true objective `Sequential::objective` of `problem.net`,
    /// which holds the lifted weights (`write_weights`), with layer 1's product `W_1 X`
    /// taken from the cache: on one thread it is the same GEMM call as
    /// `Dense::forward`'s, so the value is the same bit for bit (one `d_1 x d_0 x N`
    /// GEMM saved per sweep). Layer outputs go to `eval_bufs`. On more threads the
    /// network is evaluated (`objective_buffered`).
    pub(crate) fn true_objective(
        &mut self,
        problem: &crate::NetProblem<T>,
        threads: usize,
    ) -> Result<f64, SolverError> {
        let (loss, x) = (&problem.loss, problem.train.inputs());
        let err = |e: nets::NetsError| SolverError::Problem(format!("dlADMM objective: {e}"));
        if threads > 1 {
            return super::super::dladmm_solver::objective_buffered(problem, &mut self.eval_bufs)
                .map_err(err);
        }
        loss.validate().map_err(err)?;
        self.product(0, x, 1)?;
        let vars = self.vars.as_ref().ok_or_else(not_init)?;
        let l_count = vars.layers();
        let bufs = &mut self.eval_bufs;
        bufs.resize_with(l_count, || nalgebra::DMatrix::zeros(0, 0));
        // bufs[l]: layer l's output, `h` applied in place for a hidden layer (the same
        // operation per entry as the activation layer's forward).
        let (p, b) = (&self.prods[0], vars.b[0].as_slice());
        let cur = &mut bufs[0];
        ensure_shape(cur, p.nrows(), p.ncols());
        let k = p.nrows().max(1);
        for (oc, pc) in cur
            .as_mut_slice()
            .chunks_exact_mut(k)
            .zip(p.as_slice().chunks_exact(k))
        {
            for ((o, &pi), &bi) in oc.iter_mut().zip(pc).zip(b) {
                *o = pi + bi;
            }
        }
        for l in 1..l_count {
            let (done, rest) = bufs.split_at_mut(l);
            let (cur, next) = (&mut done[l - 1], &mut rest[0]);
            let h = vars.h[l - 1];
            for v in cur.as_mut_slice() {
                *v = h.apply(*v);
            }
            let (w, b) = (&vars.w[l], vars.b[l].as_slice());
            ensure_shape(next, w.nrows(), cur.ncols());
            gemm(next, 1.0, w, Transpose::No, cur, Transpose::No, 0.0, 1)?;
            let k = w.nrows().max(1);
            for oc in next.as_mut_slice().chunks_exact_mut(k) {
                for (o, &bi) in oc.iter_mut().zip(b) {
                    *o += bi;
                }
            }
        }
        let cur = &bufs[l_count - 1];
        let data = loss.value(cur, problem.train.targets()).map_err(err)?;
        Ok(T::of(data.to_f64() + problem.net.weight_penalty(loss.l2)).to_f64())
    }
}

/// Gives `m` the shape `r x c` for a caller that overwrites every entry: when it has
/// another shape, `m` and `alt` are swapped first, so two alternating layer shapes keep
/// their buffers (a reshape allocated and zeroed `d x N` entries every time a sweep
/// passed from one layer to the next; issue #14).
pub(super) fn shape_pair<T: Real>(
    m: &mut nalgebra::DMatrix<T>,
    alt: &mut nalgebra::DMatrix<T>,
    r: usize,
    c: usize,
) {
    if m.shape() != (r, c) {
        std::mem::swap(m, alt);
        ensure_shape(m, r, c);
    }
}

/// `||m||_F^2` in f64, summed per row over the columns (one accumulator per row, so the
/// loop vectorises instead of one chain of `d x N` dependent additions), then over the
/// rows in order; `acc` is the accumulators' buffer. The same value as `sq_norm` up to
/// the order of the additions (issue #14: the chained sums were ~10% of a digits-mlp
/// sweep).
pub(super) fn row_sq_norm<T: Real>(m: &nalgebra::DMatrix<T>, acc: &mut Vec<f64>) -> f64 {
    let k = m.nrows().max(1);
    acc.clear();
    acc.resize(k, 0.0);
    for c in m.as_slice().chunks_exact(k) {
        for (s, &v) in acc.iter_mut().zip(c) {
            let v = v.to_f64();
            *s += v * v;
        }
    }
    acc.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::row_sq_norm;
    use crate::linalg::sq_norm;
    use nalgebra::DMatrix;

    /// `row_sq_norm` is `sq_norm` up to the order of the additions.
    #[test]
    fn row_sq_norm_is_sq_norm_to_rounding() {
        let mut acc = vec![7.0; 3];
        for (r, c) in [(1, 1), (10, 37), (128, 9), (3, 0)] {
            let m = DMatrix::from_fn(r, c, |i, j| ((i * 31 + j * 17) % 23) as f64 / 7.0 - 1.3);
            let (a, b) = (row_sq_norm(&m, &mut acc), sq_norm(&m));
            assert!((a - b).abs() <= 1e-14 * b, "{r}x{c}: {a} vs {b}");
        }
    }
}
