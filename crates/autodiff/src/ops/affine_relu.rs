//! The dense layer with a ReLU, `relu(W X + b 1^T)`, as one tape node.
//!
//! Forward: the product is written into the node's own output and one pass adds the
//! bias and clamps, `y_ij = max(fl(fl(W X)_ij + b_i), 0)` (the pre-activation is never
//! stored: `y > 0` exactly where `z > 0`, which is all the backward needs). Backward:
//! `dZ = g (.) [y > 0]` is written into the node's scratch buffer in the pass that
//! reads the upstream gradient `g`, the bias gradient `db = dZ 1` is summed in the same
//! pass (one thread), then `dW = dZ X^T` and `dX = W^T dZ`.
//!
//! Every entry is computed by the same operations in the same order as
//! `relu(affine(W, X, b))` (two nodes), so values and gradients are bit-identical to it
//! (tested below for f32 and f64, one and two threads): the clamp is `if z <= 0 { 0 }
//! else { z }` as in `Unary::Relu` (a NaN is carried, `-0` gives `+0`), the mask `y > 0`
//! equals `z > 0` (false for NaN and `-0` on both sides), and `db` adds the columns of
//! `dZ` in column order as `bias_backward` does.

use crate::backward::Grads;
use crate::{Real, Result, Tape, Transpose, Var};
use nalgebra::DMatrix;

impl<T: Real> Tape<T> {
    /// `max(W X + b 1^T, 0)` entrywise: a dense layer followed by a ReLU (`W` is `d_out
    /// x d_in`, `X` is `d_in x N`, `b` a `d_out x 1` column), recorded as one node. One
    /// pass over the `d_out x N` output adds the bias and clamps (instead of a bias pass
    /// and a ReLU pass over two buffers), and the backward applies the ReLU mask and
    /// sums the bias gradient in the pass that reads the upstream gradient.
    /// Bit-identical to `relu(affine(W, X, b))` (values and gradients); the subgradient
    /// at the kink is 0, as for [`Tape::relu`]. Errors as [`Tape::affine`].
    pub fn affine_relu(&mut self, w: Var, x: Var, b: Var) -> Result<Var> {
        self.dense_node(w, x, b, true)
    }
}

/// Backward of `Y = relu(W X + b 1^T)` with upstream gradient `g = dY`: `dZ = g (.)
/// [y > 0]` into `dz` (the node's pooled scratch), `db += dZ 1` (columns in order),
/// then the product's rules `dW = dZ X^T`, `dX = W^T dZ` ([`super::matmul::backward`]).
/// With one thread the mask and the bias sum share one pass over `g`; with more, the
/// mask is split over the threads and the bias sum follows on the calling thread (the
/// same additions in the same order either way).
#[allow(clippy::too_many_arguments)]
pub(crate) fn affine_relu_backward<T: Real>(
    grads: &mut Grads<'_, T>,
    g: &DMatrix<T>,
    y: &DMatrix<T>,
    dz: &mut DMatrix<T>,
    w: usize,
    vw: &DMatrix<T>,
    x: usize,
    vx: &DMatrix<T>,
    b: usize,
    threads: usize,
) -> Result<()> {
    let (d, n) = y.shape();
    crate::tape::ensure_shape(dz, d, n);
    let z = T::zero();
    let (gs, ys) = (g.as_slice(), y.as_slice());
    let mask = |dst: &mut [T], off: usize| {
        let r = off..off + dst.len();
        dst.iter_mut()
            .zip(gs[r.clone()].iter().zip(&ys[r]))
            .for_each(|(o, (&g, &y))| *o = if y > z { g } else { z });
    };
    let fused_bias = threads <= 1 || dz.len() < super::PAR_MIN_ENTRIES;
    match grads.slot(b, (d, 1)) {
        Some((gb, first)) if fused_bias && d > 0 => {
            let db = gb.as_mut_slice();
            if first {
                db.fill(z);
            }
            let cols = dz.as_mut_slice().chunks_exact_mut(d);
            for (col, (gc, yc)) in cols.zip(gs.chunks_exact(d).zip(ys.chunks_exact(d))) {
                for (o, (s, (&g, &y))) in col.iter_mut().zip(db.iter_mut().zip(gc.iter().zip(yc))) {
                    let v = if y > z { g } else { z };
                    *o = v;
                    *s += v;
                }
            }
        }
        _ => {
            super::par_chunks(threads, dz.as_mut_slice(), 1, |off, c| mask(c, off));
            super::elementwise::bias_backward(grads, dz, b);
        }
    }
    super::matmul::backward(
        grads,
        dz,
        w,
        Transpose::No,
        vw,
        x,
        Transpose::No,
        vx,
        threads,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{GradCheckConfig, check_tape_gradient};
    use nalgebra::dmatrix;

    /// Values and gradients bit for bit against `relu(affine(W, X, b))`, on a depth the
    /// GEMM splits into blocks (784), f32 and f64, one and two threads, with a loss
    /// whose upstream gradient differs per entry and is nonzero where the ReLU cuts it;
    /// `extra` adds a second use of the bias so its gradient is accumulated (`first =
    /// false`) on both paths.
    #[test]
    fn affine_relu_is_bit_identical_to_affine_then_relu() {
        fn check<T: Real>(threads: usize, n: usize, extra: bool) {
            let (m, k) = (24, 784);
            let w = DMatrix::from_fn(m, k, |i, j| {
                T::of(((i * 31 + j * 17) % 101) as f64 / 37.0 - 1.3)
            });
            let x = DMatrix::from_fn(k, n, |i, j| {
                T::of(((i * 7 + j * 13) % 89) as f64 / 29.0 - 1.1)
            });
            let b = DMatrix::from_fn(m, 1, |i, _| T::of(i as f64 / 3.0 - 3.7));
            let s = DMatrix::from_fn(m, n, |i, j| T::of(((i + 2 * j) % 7) as f64 - 3.5));
            let run = |fused: bool| {
                let mut t = Tape::<T>::with_threads(threads);
                let (vw, vx, vb) = (t.param(&w), t.param(&x), t.param(&b));
                let y = if fused {
                    t.affine_relu(vw, vx, vb).unwrap()
                } else {
                    let z = t.affine(vw, vx, vb).unwrap();
                    t.relu(z).unwrap()
                };
                // sum(S (.) tanh(Y)): the upstream gradient is nonzero everywhere,
                // also where the mask cuts it.
                let h = t.tanh(y).unwrap();
                let c = t.constant(&s);
                let p = t.mul(h, c).unwrap();
                let mut f = t.sum_all(p).unwrap();
                if extra {
                    let q = t.square(vb).unwrap();
                    let q = t.sum_all(q).unwrap();
                    f = t.add(f, q).unwrap();
                }
                t.backward(f).unwrap();
                let bits =
                    |m: &DMatrix<T>| m.iter().map(|v| v.to_f64().to_bits()).collect::<Vec<_>>();
                let g = |v| bits(t.grad(v).unwrap());
                (bits(t.value(y)), g(vw), g(vx), g(vb))
            };
            let (fused, plain) = (run(true), run(false));
            // Both branches of the ReLU occur.
            assert!(fused.0.contains(&0) && fused.0.iter().any(|&v| v != 0));
            assert!(
                fused == plain,
                "{} threads={threads} n={n} extra={extra}",
                T::dtype_name()
            );
        }
        // n = 40: below the parallel threshold (one fused pass); n = 3000: 72 000
        // entries, split over two threads (mask in parallel, bias sum after).
        for threads in [1, 2] {
            for n in [40, 3000] {
                for extra in [false, true] {
                    check::<f32>(threads, n, extra);
                    check::<f64>(threads, n, extra);
                }
            }
        }
    }

    /// Finite differences on all three operands (entries kept away from the kink),
    /// f64, one and two threads; hand-checked values and subgradient at an exact zero.
    #[test]
    fn affine_relu_gradient_matches_finite_differences() {
        let w = dmatrix![0.7, -0.4, 0.25; -0.3, 0.9, 0.5];
        let x = dmatrix![1.0, -0.5, 0.3, 2.0; 0.4, 1.5, -1.2, 0.1; -0.8, 0.2, 0.6, -0.7];
        let b = dmatrix![0.05; -0.1];
        let s = dmatrix![1.0, -2.0, 0.5, 3.0; -1.5, 0.25, 2.0, -0.75];
        for threads in [1, 2] {
            let rep = check_tape_gradient(
                |t, p| {
                    t.set_threads(threads);
                    let y = t.affine_relu(p[0], p[1], p[2])?;
                    let sv = t.constant(&s);
                    let q = t.mul(y, sv)?;
                    let q = t.mul(q, y)?;
                    t.sum_all(q)
                },
                &[w.clone(), x.clone(), b.clone()],
                &GradCheckConfig::default(),
            )
            .unwrap();
            assert_eq!(rep.checked, 6 + 12 + 2);
            assert!(rep.passes(1e-6), "{threads} threads: {rep}");
        }
        // y = relu([1 -1; 2 0] [1; 1] + [0; -2]) = relu([0; 0]) and relu of 1, -3.
        let mut t = Tape::<f64>::new();
        let vw = t.param(&dmatrix![1.0, -1.0; 2.0, 0.0]);
        let vx = t.param(&dmatrix![1.0, 2.0; 1.0, -1.0]);
        let vb = t.param(&dmatrix![0.0; -2.0]);
        let y = t.affine_relu(vw, vx, vb).unwrap();
        assert_eq!(t.value(y), &dmatrix![0.0, 3.0; 0.0, 2.0]);
        let f = t.sum_all(y).unwrap();
        t.backward(f).unwrap();
        // Mask [0 1; 0 1]: db = [1; 1], dW = mask X^T = [2 -1; 2 -1], dX = W^T mask.
        assert_eq!(t.grad(vb).unwrap(), &dmatrix![1.0; 1.0]);
        assert_eq!(t.grad(vw).unwrap(), &dmatrix![2.0, -1.0; 2.0, -1.0]);
        assert_eq!(t.grad(vx).unwrap(), &dmatrix![0.0, 3.0; 0.0, -1.0]);
    }

    #[test]
    fn affine_relu_shape_errors_name_the_operand() {
        let mut t = Tape::<f32>::new();
        let vw = t.param(&DMatrix::zeros(2, 3));
        let vx = t.param(&DMatrix::zeros(3, 4));
        let bad = t.param(&DMatrix::zeros(3, 1));
        assert_eq!(
            t.affine_relu(vw, vx, bad).unwrap_err().to_string(),
            "affine_relu: shape mismatch: w is 2x3 but bias is 3x1 (bias must be a column with as many rows as w)"
        );
        assert_eq!(
            t.affine_relu(vw, vw, bad).unwrap_err().to_string(),
            "affine_relu: shape mismatch: w is 2x3 but x is 2x3 (columns of w must equal rows of x)"
        );
    }
}
