//! Matrix product `C = op(A) op(B)` on the tape.

use crate::backward::Grads;
use crate::kernels::gemm_into;
use crate::op::Op;
use crate::{AutodiffError, Real, Result, Tape, Transpose, Var};
use nalgebra::DMatrix;

fn flip(t: Transpose) -> Transpose {
    match t {
        Transpose::No => Transpose::Yes,
        Transpose::Yes => Transpose::No,
    }
}

fn op_shape(s: (usize, usize), t: Transpose) -> (usize, usize) {
    match t {
        Transpose::No => s,
        Transpose::Yes => (s.1, s.0),
    }
}

impl<T: Real> Tape<T> {
    /// `op(A) op(B)` where `op` is the identity or the transpose (never materialised:
    /// the GEMM kernel reads the operand with swapped strides). Needs
    /// `cols(op(A)) = rows(op(B))`.
    pub fn matmul(&mut self, a: Var, ta: Transpose, b: Var, tb: Transpose) -> Result<Var> {
        let ia = self.check("matmul", a)?;
        let ib = self.check("matmul", b)?;
        let sa = op_shape(self.values[ia].shape(), ta);
        let sb = op_shape(self.values[ib].shape(), tb);
        if sa.1 != sb.0 {
            return Err(AutodiffError::ShapeMismatch {
                op: "matmul",
                lhs_name: "op(a)",
                lhs: sa,
                rhs_name: "op(b)",
                rhs: sb,
                expected: "columns of op(a) must equal rows of op(b)",
            });
        }
        let needs = self.needs_grad[ia] || self.needs_grad[ib];
        let out = self.push(
            Op::MatMul {
                a: ia,
                ta,
                b: ib,
                tb,
            },
            sa.0,
            sb.1,
            needs,
        );
        let threads = self.threads;
        let (ins, c) = self.io(out.index);
        gemm_into(c, T::one(), &ins[ia], ta, &ins[ib], tb, T::zero(), threads)?;
        Ok(out)
    }

    /// `W X + b 1^T`: a dense layer (`W` is `d_out x d_in`, `X` is `d_in x N`, `b` a
    /// `d_out x 1` column), recorded as one node: the product is written into the
    /// output and the bias added in place (no second `d_out x N` buffer), and the
    /// backward needs no copy of the upstream gradient: `dW = g X^T`, `dX = W^T g`,
    /// `db = g 1`. Bit-identical to `add_bias(matmul(W, X), b)` (the same roundings in
    /// the same order). Seeding the GEMM's output with the bias (`C <- W X + C`) was
    /// tried first: it moves the same memory (a fill pass instead of an add pass) and
    /// changes the rounding whenever the GEMM splits the depth into several blocks.
    pub fn affine(&mut self, w: Var, x: Var, b: Var) -> Result<Var> {
        self.dense_node(w, x, b, false)
    }

    /// The node of [`Tape::affine`] (`relu = false`) or [`Tape::affine_relu`]
    /// (`relu = true`): shape checks, the GEMM into the node's output, then one pass
    /// that adds the bias (and clamps, `if z <= 0 { 0 } else { z }`, NaN carried as in
    /// `Unary::Relu`) while the output is in cache. Every entry is `fl(fl(W X)_ij +
    /// b_i)` (clamped), as in `add_bias(matmul(W, X), b)` (then `relu`), bit for bit.
    pub(super) fn dense_node(&mut self, w: Var, x: Var, b: Var, relu: bool) -> Result<Var> {
        let op = if relu { "affine_relu" } else { "affine" };
        let iw = self.check(op, w)?;
        let ix = self.check(op, x)?;
        let ib = self.check(op, b)?;
        let (sw, sx, sb) = (
            self.values[iw].shape(),
            self.values[ix].shape(),
            self.values[ib].shape(),
        );
        if sw.1 != sx.0 {
            return Err(AutodiffError::ShapeMismatch {
                op,
                lhs_name: "w",
                lhs: sw,
                rhs_name: "x",
                rhs: sx,
                expected: "columns of w must equal rows of x",
            });
        }
        if sb != (sw.0, 1) {
            return Err(AutodiffError::ShapeMismatch {
                op,
                lhs_name: "w",
                lhs: sw,
                rhs_name: "bias",
                rhs: sb,
                expected: "bias must be a column with as many rows as w",
            });
        }
        let needs = self.needs_grad[iw] || self.needs_grad[ix] || self.needs_grad[ib];
        let (w, x, b) = (iw, ix, ib);
        let node = if relu {
            Op::AffineRelu { w, x, b }
        } else {
            Op::Affine { w, x, b }
        };
        let out = self.push(node, sw.0, sx.1, needs);
        let threads = self.threads;
        let (ins, c) = self.io(out.index);
        gemm_into(
            c,
            T::one(),
            &ins[iw],
            Transpose::No,
            &ins[ix],
            Transpose::No,
            T::zero(),
            threads,
        )?;
        let d = sw.0;
        if d > 0 {
            let bias = ins[ib].as_slice();
            let z = T::zero();
            // Column-aligned chunks: entry (i, j) gets bias i whatever the split.
            super::par_chunks(threads, c.as_mut_slice(), d, |_, cs| {
                for col in cs.chunks_exact_mut(d) {
                    if relu {
                        col.iter_mut().zip(bias).for_each(|(y, &b)| {
                            let s = *y + b;
                            *y = if s <= z { z } else { s };
                        });
                    } else {
                        col.iter_mut().zip(bias).for_each(|(y, &b)| *y += b);
                    }
                }
            });
        }
        Ok(out)
    }
}

/// Backward of `C = W X + b 1^T` with upstream gradient `g = dC`: the product's rules
/// (`dW = g X^T`, `dX = W^T g`, see [`backward`]) on `g` itself, and `db = g 1`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn affine_backward<T: Real>(
    grads: &mut Grads<'_, T>,
    g: &DMatrix<T>,
    w: usize,
    vw: &DMatrix<T>,
    x: usize,
    vx: &DMatrix<T>,
    b: usize,
    threads: usize,
) -> Result<()> {
    backward(
        grads,
        g,
        w,
        Transpose::No,
        vw,
        x,
        Transpose::No,
        vx,
        threads,
    )?;
    super::elementwise::bias_backward(grads, g, b);
    Ok(())
}

/// Backward of `C = op(A) op(B)` with upstream gradient `g = dC`:
/// `d op(A) = dC op(B)^T` and `d op(B) = op(A)^T dC`, written for the stored
/// (untransposed) operands:
/// `dA = dC op(B)^T` or, if `A` is used transposed, `dA = op(B) dC^T`;
/// `dB = op(A)^T dC` or, if `B` is used transposed, `dB = dC^T op(A)`.
/// Each is one `gemm_into` with `beta = 0` on the first contribution and `1` after.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<T: Real>(
    grads: &mut Grads<'_, T>,
    g: &DMatrix<T>,
    a: usize,
    ta: Transpose,
    va: &DMatrix<T>,
    b: usize,
    tb: Transpose,
    vb: &DMatrix<T>,
    threads: usize,
) -> Result<()> {
    let one = T::one();
    if let Some((ga, first)) = grads.slot(a, va.shape()) {
        let beta = if first { T::zero() } else { one };
        match ta {
            Transpose::No => gemm_into(ga, one, g, Transpose::No, vb, flip(tb), beta, threads)?,
            Transpose::Yes => gemm_into(ga, one, vb, tb, g, Transpose::Yes, beta, threads)?,
        }
    }
    if let Some((gb, first)) = grads.slot(b, vb.shape()) {
        let beta = if first { T::zero() } else { one };
        match tb {
            Transpose::No => gemm_into(gb, one, va, flip(ta), g, Transpose::No, beta, threads)?,
            Transpose::Yes => gemm_into(gb, one, g, Transpose::Yes, va, ta, beta, threads)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::dmatrix;

    #[test]
    fn forward_and_gradients_of_all_transpose_combinations() {
        // f = sum(op(A) op(B)); df/dop(A) = 1 op(B)^T etc., checked by hand formulas.
        let a = dmatrix![1.0, 2.0; 3.0, 4.0; 5.0, 6.0]; // 3x2
        let b = dmatrix![1.0, -1.0, 2.0; 0.5, 0.0, 1.0]; // 2x3
        for (ta, tb, am, bm) in [
            (Transpose::No, Transpose::No, a.clone(), b.clone()),
            (Transpose::Yes, Transpose::No, a.transpose(), b.clone()),
            (Transpose::No, Transpose::Yes, a.clone(), b.transpose()),
            (Transpose::Yes, Transpose::Yes, a.transpose(), b.transpose()),
        ] {
            let mut t = Tape::<f64>::new();
            let va = t.param(&am);
            let vb = t.param(&bm);
            let c = t.matmul(va, ta, vb, tb).unwrap();
            assert_eq!(t.value(c), &(&a * &b));
            let s = t.sum_all(c).unwrap();
            t.backward(s).unwrap();
            // d sum(A B)/dA = 1 B^T, /dB = A^T 1.
            let ones = DMatrix::from_element(3, 3, 1.0);
            let da = &ones * b.transpose();
            let db = a.transpose() * &ones;
            let want_a = if ta == Transpose::Yes {
                da.transpose()
            } else {
                da
            };
            let want_b = if tb == Transpose::Yes {
                db.transpose()
            } else {
                db
            };
            assert_eq!(t.grad(va).unwrap(), &want_a);
            assert_eq!(t.grad(vb).unwrap(), &want_b);
        }
    }

    #[test]
    fn same_operand_twice_accumulates() {
        // f = sum(X^T X) = sum_ij (x_i . x_j) = ||X 1||^2, df/dX = 2 (X 1) 1^T.
        let x = dmatrix![1.0, 2.0; -1.0, 0.5];
        let mut t = Tape::<f64>::new();
        let v = t.param(&x);
        let c = t.matmul(v, Transpose::Yes, v, Transpose::No).unwrap();
        let s = t.sum_all(c).unwrap();
        t.backward(s).unwrap();
        let r = &x * DMatrix::from_element(2, 1, 1.0);
        let want = 2.0 * &r * DMatrix::from_element(1, 2, 1.0);
        assert!((t.grad(v).unwrap() - want).abs().max() < 1e-14);
    }

    /// `affine(W, X, b)` is `add_bias(matmul(W, X), b)`: value and all three gradients
    /// (exact on these small integers), and a bias of the wrong shape is an error.
    #[test]
    fn affine_is_matmul_plus_bias() {
        let w = dmatrix![1.0, -2.0, 0.5; 3.0, 0.0, -1.0]; // 2x3
        let x = dmatrix![1.0, 2.0, -1.0, 0.0; 0.5, -1.0, 2.0, 1.0; -2.0, 1.0, 0.0, 3.0]; // 3x4
        let b = dmatrix![10.0; -20.0];
        let s = dmatrix![1.0, 2.0, 3.0, 4.0; -1.0, 0.5, 2.0, -3.0]; // weights of the sum
        let run = |fused: bool| {
            let mut t = Tape::<f64>::new();
            let (vw, vx, vb) = (t.param(&w), t.param(&x), t.param(&b));
            let z = if fused {
                t.affine(vw, vx, vb).unwrap()
            } else {
                let p = t.matmul(vw, Transpose::No, vx, Transpose::No).unwrap();
                t.add_bias(p, vb).unwrap()
            };
            let c = t.constant(&s);
            let m = t.mul(z, c).unwrap();
            let f = t.sum_all(m).unwrap();
            t.backward(f).unwrap();
            let g = |v| t.grad(v).unwrap().clone();
            (t.value(z).clone(), g(vw), g(vx), g(vb))
        };
        let (fused, plain) = (run(true), run(false));
        assert_eq!(fused.0, &w * &x + DMatrix::from_fn(2, 4, |i, _| b[i]));
        assert_eq!(fused, plain);
        assert_eq!(fused.3, dmatrix![10.0; -1.5]);
        let mut t = Tape::<f32>::new();
        let (vw, vx) = (
            t.param(&DMatrix::zeros(2, 3)),
            t.param(&DMatrix::zeros(3, 4)),
        );
        let bad = t.param(&DMatrix::zeros(3, 1));
        assert_eq!(
            t.affine(vw, vx, bad).unwrap_err().to_string(),
            "affine: shape mismatch: w is 2x3 but bias is 3x1 (bias must be a column with as many rows as w)"
        );
        assert!(t.affine(vw, vw, bad).is_err());
    }

    /// Bit-identical to `add_bias(matmul(W, X), b)` on a depth the GEMM splits into
    /// blocks (784, f32 and f64), one and two threads: value and gradients.
    #[test]
    fn affine_is_bit_identical_to_matmul_then_bias() {
        fn check<T: Real>(threads: usize) {
            let (m, k, n) = (24, 784, 40);
            let w = DMatrix::from_fn(m, k, |i, j| {
                T::of(((i * 31 + j * 17) % 101) as f64 / 37.0 - 1.3)
            });
            let x = DMatrix::from_fn(k, n, |i, j| {
                T::of(((i * 7 + j * 13) % 89) as f64 / 29.0 - 1.1)
            });
            let b = DMatrix::from_fn(m, 1, |i, _| T::of(i as f64 / 3.0 - 3.7));
            let run = |fused: bool| {
                let mut t = Tape::<T>::with_threads(threads);
                let (vw, vx, vb) = (t.param(&w), t.param(&x), t.param(&b));
                let z = if fused {
                    t.affine(vw, vx, vb).unwrap()
                } else {
                    let p = t.matmul(vw, Transpose::No, vx, Transpose::No).unwrap();
                    t.add_bias(p, vb).unwrap()
                };
                let h = t.tanh(z).unwrap();
                let f = t.sum_all(h).unwrap();
                t.backward(f).unwrap();
                let bits =
                    |m: &DMatrix<T>| m.iter().map(|v| v.to_f64().to_bits()).collect::<Vec<_>>();
                let g = |v| bits(t.grad(v).unwrap());
                (bits(t.value(z)), g(vw), g(vx), g(vb))
            };
            assert!(
                run(true) == run(false),
                "{} threads={threads}",
                T::dtype_name()
            );
        }
        for threads in [1, 2] {
            check::<f32>(threads);
            check::<f64>(threads);
        }
    }

    #[test]
    fn inner_dimension_mismatch_is_an_error() {
        let mut t = Tape::<f32>::new();
        let a = t.param(&DMatrix::zeros(2, 3));
        let b = t.param(&DMatrix::zeros(2, 3));
        let e = t.matmul(a, Transpose::No, b, Transpose::No).unwrap_err();
        assert_eq!(
            e.to_string(),
            "matmul: shape mismatch: op(a) is 2x3 but op(b) is 2x3 (columns of op(a) must equal rows of op(b))"
        );
        assert!(t.matmul(a, Transpose::No, b, Transpose::Yes).is_ok());
    }
}
