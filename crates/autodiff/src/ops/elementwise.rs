//! Elementwise ops: binary (add, sub, mul, div), scalar (add, mul), negation, the
//! activations and elementary functions, and the bias broadcast `A + b 1^T`.
//!
//! Stable forms: `sigmoid(x) = 1 / (1 + e^-x)` for `x >= 0` and `e^x / (1 + e^x)` for
//! `x < 0` (no overflow of `e^|x|`); `softplus(x) = max(x, 0) + ln(1 + e^-|x|)`.

use super::{acc1, acc2, acc3};
use crate::backward::Grads;
use crate::op::{Binary, Op, Unary};
use crate::{AutodiffError, Real, Result, Tape, Var};
use nalgebra::DMatrix;

/// Logistic function in its overflow-free form.
#[inline]
pub fn sigmoid<T: Real>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

/// `ln(1 + e^x)` in its overflow-free form `max(x, 0) + ln(1 + e^-|x|)`.
#[inline]
pub fn softplus<T: Real>(x: T) -> T {
    let z = T::zero();
    (if x > z { x } else { z }) + (-x.abs()).exp().ln_1p()
}

impl<T: Real> Unary<T> {
    fn name(&self) -> &'static str {
        match self {
            Unary::Exp => "exp",
            Unary::Log => "log",
            Unary::Sqrt => "sqrt",
            Unary::Abs => "abs",
            Unary::Square => "square",
            Unary::Powf(_) => "powf",
            Unary::Relu => "relu",
            Unary::LeakyRelu(_) => "leaky_relu",
            Unary::Elu(_) => "elu",
            Unary::Sigmoid => "sigmoid",
            Unary::Tanh => "tanh",
            Unary::Softplus => "softplus",
            Unary::AddScalar(_) => "add_scalar",
            Unary::MulScalar(_) => "mul_scalar",
            Unary::Neg => "neg",
        }
    }

    /// `y = f(x)`.
    #[inline]
    fn apply(self, x: T) -> T {
        let z = T::zero();
        match self {
            Unary::Exp => x.exp(),
            Unary::Log => x.ln(),
            Unary::Sqrt => x.sqrt(),
            Unary::Abs => x.abs(),
            Unary::Square => x * x,
            Unary::Powf(p) => x.powf(p),
            // NaN-carrying: `x <= 0` is false for NaN (`if x > 0` would return 0).
            Unary::Relu => {
                if x <= z {
                    z
                } else {
                    x
                }
            }
            Unary::LeakyRelu(s) => {
                if x > z {
                    x
                } else {
                    s * x
                }
            }
            Unary::Elu(a) => {
                if x > z {
                    x
                } else {
                    a * x.exp_m1()
                }
            }
            Unary::Sigmoid => sigmoid(x),
            Unary::Tanh => x.tanh(),
            Unary::Softplus => softplus(x),
            Unary::AddScalar(c) => x + c,
            Unary::MulScalar(c) => c * x,
            Unary::Neg => -x,
        }
    }

    /// `ys = f(xs)` entrywise, with the hot maps in their own loops (the match is taken
    /// once, not per entry, so the loops vectorise).
    fn apply_slice(self, xs: &[T], ys: &mut [T]) {
        fn map<T: Copy>(xs: &[T], ys: &mut [T], f: impl Fn(T) -> T) {
            ys.iter_mut().zip(xs).for_each(|(y, &x)| *y = f(x));
        }
        let z = T::zero();
        match self {
            Unary::Relu => map(xs, ys, |x| if x <= z { z } else { x }),
            Unary::LeakyRelu(s) => map(xs, ys, |x| if x > z { x } else { s * x }),
            Unary::Square => map(xs, ys, |x| x * x),
            Unary::AddScalar(c) => map(xs, ys, |x| x + c),
            Unary::MulScalar(c) => map(xs, ys, |x| c * x),
            Unary::Neg => map(xs, ys, |x| -x),
            Unary::Sigmoid => map(xs, ys, sigmoid),
            Unary::Tanh => map(xs, ys, |x| x.tanh()),
            Unary::Exp => map(xs, ys, |x| x.exp()),
            k => map(xs, ys, |x| k.apply(x)),
        }
    }

    /// `f'(x)` expressed through `x` and `y = f(x)` (whichever is cheaper and stable).
    /// At kinks (relu, leaky relu, elu, abs at 0) the right derivative for relu-like
    /// maps is not used: we take the left one (0 for relu, `slope` for leaky relu,
    /// `alpha` for elu, 0 for abs), a valid subgradient.
    #[inline]
    fn derivative(self, x: T, y: T) -> T {
        let (z, one) = (T::zero(), T::one());
        match self {
            Unary::Exp => y,
            Unary::Log => one / x,
            Unary::Sqrt => T::of(0.5) / y,
            Unary::Abs => {
                if x > z {
                    one
                } else if x < z {
                    -one
                } else {
                    z
                }
            }
            Unary::Square => x + x,
            Unary::Powf(p) => p * x.powf(p - one),
            Unary::Relu => {
                if x > z {
                    one
                } else {
                    z
                }
            }
            Unary::LeakyRelu(s) => {
                if x > z {
                    one
                } else {
                    s
                }
            }
            Unary::Elu(a) => {
                if x > z {
                    one
                } else {
                    y + a
                }
            }
            Unary::Sigmoid => y * (one - y),
            Unary::Tanh => one - y * y,
            Unary::Softplus => sigmoid(x),
            Unary::AddScalar(_) => one,
            Unary::MulScalar(c) => c,
            Unary::Neg => -one,
        }
    }
}

impl<T: Real> Tape<T> {
    fn binary(&mut self, a: Var, b: Var, kind: Binary, op: &'static str) -> Result<Var> {
        let (ia, ib, (r, c)) = self.same_shape(op, a, b, ("a", "b"))?;
        let needs = self.needs_grad[ia] || self.needs_grad[ib];
        let out = self.push(Op::Binary(ia, ib, kind), r, c, needs);
        let (ins, y) = self.io(out.index);
        let (x1, x2) = (ins[ia].as_slice(), ins[ib].as_slice());
        let it = y.as_mut_slice().iter_mut().zip(x1.iter().zip(x2));
        match kind {
            Binary::Add => it.for_each(|(y, (&p, &q))| *y = p + q),
            Binary::Sub => it.for_each(|(y, (&p, &q))| *y = p - q),
            Binary::Mul => it.for_each(|(y, (&p, &q))| *y = p * q),
            Binary::Div => it.for_each(|(y, (&p, &q))| *y = p / q),
        }
        Ok(out)
    }

    fn unary(&mut self, a: Var, kind: Unary<T>) -> Result<Var> {
        let ia = self.check(kind.name(), a)?;
        let (r, c) = self.values[ia].shape();
        let out = self.push(Op::Unary(ia, kind), r, c, self.needs_grad[ia]);
        let threads = self.threads;
        let (ins, y) = self.io(out.index);
        let xs = ins[ia].as_slice();
        super::par_chunks(threads, y.as_mut_slice(), 1, |off, ys| {
            kind.apply_slice(&xs[off..off + ys.len()], ys)
        });
        Ok(out)
    }

    /// Elementwise `a + b` (same shapes).
    pub fn add(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(a, b, Binary::Add, "add")
    }

    /// Elementwise `a - b` (same shapes).
    pub fn sub(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(a, b, Binary::Sub, "sub")
    }

    /// Elementwise (Hadamard) product `a (.) b` (same shapes).
    pub fn mul(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(a, b, Binary::Mul, "mul")
    }

    /// Elementwise quotient `a / b` (same shapes; a zero in `b` gives inf/NaN, as in
    /// IEEE arithmetic).
    pub fn div(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(a, b, Binary::Div, "div")
    }

    /// `a + c` for a scalar `c`.
    pub fn add_scalar(&mut self, a: Var, c: T) -> Result<Var> {
        self.unary(a, Unary::AddScalar(c))
    }

    /// `c a` for a scalar `c`.
    pub fn mul_scalar(&mut self, a: Var, c: T) -> Result<Var> {
        self.unary(a, Unary::MulScalar(c))
    }

    /// `-a`.
    pub fn neg(&mut self, a: Var) -> Result<Var> {
        self.unary(a, Unary::Neg)
    }

    /// Elementwise `e^a`.
    pub fn exp(&mut self, a: Var) -> Result<Var> {
        self.unary(a, Unary::Exp)
    }

    /// Elementwise natural logarithm (NaN/-inf outside `(0, inf)`, as in IEEE).
    pub fn log(&mut self, a: Var) -> Result<Var> {
        self.unary(a, Unary::Log)
    }

    /// Elementwise square root; derivative `1 / (2 sqrt(a))`.
    pub fn sqrt(&mut self, a: Var) -> Result<Var> {
        self.unary(a, Unary::Sqrt)
    }

    /// Elementwise `|a|`; derivative `sign(a)` (0 at 0).
    pub fn abs(&mut self, a: Var) -> Result<Var> {
        self.unary(a, Unary::Abs)
    }

    /// Elementwise `a^2`.
    pub fn square(&mut self, a: Var) -> Result<Var> {
        self.unary(a, Unary::Square)
    }

    /// Elementwise `a^p`; derivative `p a^(p-1)`.
    pub fn powf(&mut self, a: Var, p: T) -> Result<Var> {
        self.unary(a, Unary::Powf(p))
    }

    /// `max(a, 0)`, NaN for a NaN entry (never masked to 0); derivative 1 for `a > 0`, 0
    /// otherwise (subgradient 0 at the kink).
    pub fn relu(&mut self, a: Var) -> Result<Var> {
        self.unary(a, Unary::Relu)
    }

    /// `a` for `a > 0`, `slope a` otherwise (Maas et al. 2013).
    pub fn leaky_relu(&mut self, a: Var, slope: T) -> Result<Var> {
        self.unary(a, Unary::LeakyRelu(slope))
    }

    /// `a` for `a > 0`, `alpha (e^a - 1)` otherwise (Clevert et al. 2016), computed
    /// with `exp_m1`.
    pub fn elu(&mut self, a: Var, alpha: T) -> Result<Var> {
        self.unary(a, Unary::Elu(alpha))
    }

    /// Logistic `1 / (1 + e^-a)`, overflow-free for any `|a|`.
    pub fn sigmoid(&mut self, a: Var) -> Result<Var> {
        self.unary(a, Unary::Sigmoid)
    }

    /// Hyperbolic tangent; derivative `1 - tanh^2`.
    pub fn tanh(&mut self, a: Var) -> Result<Var> {
        self.unary(a, Unary::Tanh)
    }

    /// `ln(1 + e^a)` as `max(a, 0) + ln(1 + e^-|a|)`; derivative `sigmoid(a)`.
    pub fn softplus(&mut self, a: Var) -> Result<Var> {
        self.unary(a, Unary::Softplus)
    }

    /// `A + b 1^T` with `A` of shape `d x N` and `b` a `d x 1` column: the bias broadcast
    /// over samples (columns).
    pub fn add_bias(&mut self, a: Var, b: Var) -> Result<Var> {
        let ia = self.check("add_bias", a)?;
        let ib = self.check("add_bias", b)?;
        let (sa, sb) = (self.values[ia].shape(), self.values[ib].shape());
        if sb != (sa.0, 1) {
            return Err(AutodiffError::ShapeMismatch {
                op: "add_bias",
                lhs_name: "a",
                lhs: sa,
                rhs_name: "bias",
                rhs: sb,
                expected: "bias must be a column with as many rows as a",
            });
        }
        let needs = self.needs_grad[ia] || self.needs_grad[ib];
        let out = self.push(Op::AddBias(ia, ib), sa.0, sa.1, needs);
        let threads = self.threads;
        let (ins, y) = self.io(out.index);
        let bias = ins[ib].as_slice();
        let xs = ins[ia].as_slice();
        let d = sa.0;
        if d > 0 {
            // Column-aligned chunks: entry (i, j) gets bias i whatever the split.
            super::par_chunks(threads, y.as_mut_slice(), d, |off, ys| {
                for (ycol, acol) in ys.chunks_exact_mut(d).zip(xs[off..].chunks_exact(d)) {
                    ycol.iter_mut()
                        .zip(acol.iter().zip(bias))
                        .for_each(|(y, (&x, &b))| *y = x + b);
                }
            });
        }
        Ok(out)
    }
}

/// Backward of the elementwise binary ops (rules in `backward.rs`).
pub(crate) fn binary_backward<T: Real>(
    grads: &mut Grads<'_, T>,
    g: &DMatrix<T>,
    kind: Binary,
    a: usize,
    va: &DMatrix<T>,
    b: usize,
    vb: &DMatrix<T>,
) {
    let gs = g.as_slice();
    let (xa, xb) = (va.as_slice(), vb.as_slice());
    if let Some((ga, first)) = grads.slot(a, va.shape()) {
        let d = ga.as_mut_slice();
        match kind {
            Binary::Add | Binary::Sub => acc1(d, first, gs, |g| g),
            Binary::Mul => acc2(d, first, gs, xb, |g, q| g * q),
            Binary::Div => acc2(d, first, gs, xb, |g, q| g / q),
        }
    }
    if let Some((gb, first)) = grads.slot(b, vb.shape()) {
        let d = gb.as_mut_slice();
        match kind {
            Binary::Add => acc1(d, first, gs, |g| g),
            Binary::Sub => acc1(d, first, gs, |g| -g),
            Binary::Mul => acc2(d, first, gs, xa, |g, p| g * p),
            Binary::Div => acc3(d, first, gs, xa, xb, |g, p, q| -g * p / (q * q)),
        }
    }
}

/// Backward of the unary maps: `dx = g f'(x)` (entrywise, split over `threads`).
pub(crate) fn unary_backward<T: Real>(
    grads: &mut Grads<'_, T>,
    g: &DMatrix<T>,
    kind: Unary<T>,
    a: usize,
    x: &DMatrix<T>,
    y: &DMatrix<T>,
    threads: usize,
) {
    if let Some((ga, first)) = grads.slot(a, x.shape()) {
        super::par_chunks(threads, ga.as_mut_slice(), 1, |off, d| {
            let r = off..off + d.len();
            let (gs, xs, ys) = (
                &g.as_slice()[r.clone()],
                &x.as_slice()[r.clone()],
                &y.as_slice()[r],
            );
            unary_backward_chunk(d, first, kind, gs, xs, ys)
        });
    }
}

/// `d (=|+=) g f'(x)` on matching chunks.
fn unary_backward_chunk<T: Real>(
    d: &mut [T],
    first: bool,
    kind: Unary<T>,
    gs: &[T],
    xs: &[T],
    ys: &[T],
) {
    let (z, one) = (T::zero(), T::one());
    match kind {
        // Cheap special cases kept branch-light for the hot activations.
        Unary::Relu => acc2(d, first, gs, xs, |g, x| if x > z { g } else { z }),
        Unary::LeakyRelu(s) => acc2(d, first, gs, xs, |g, x| if x > z { g } else { s * g }),
        Unary::Sigmoid => acc2(d, first, gs, ys, |g, y| g * y * (one - y)),
        Unary::Tanh => acc2(d, first, gs, ys, |g, y| g * (one - y * y)),
        Unary::Exp => acc2(d, first, gs, ys, |g, y| g * y),
        Unary::Square => acc2(d, first, gs, xs, |g, x| g * (x + x)),
        Unary::AddScalar(_) => acc1(d, first, gs, |g| g),
        Unary::Neg => acc1(d, first, gs, |g| -g),
        Unary::MulScalar(c) => acc1(d, first, gs, |g| c * g),
        _ => acc3(d, first, gs, xs, ys, |g, x, y| g * kind.derivative(x, y)),
    }
}

/// Backward of `A + b 1^T`: `dA = g` (split over `threads`), `db = g 1` (sum of each
/// row of `g`, on the calling thread in column order).
pub(crate) fn add_bias_backward<T: Real>(
    grads: &mut Grads<'_, T>,
    g: &DMatrix<T>,
    a: usize,
    b: usize,
    threads: usize,
) {
    let (d, n) = g.shape();
    let gs = g.as_slice();
    if let Some((ga, first)) = grads.slot(a, (d, n)) {
        super::par_chunks(threads, ga.as_mut_slice(), 1, |off, dst| {
            acc1(dst, first, &gs[off..off + dst.len()], |g| g)
        });
    }
    bias_backward(grads, g, b);
}

/// The bias part of the backward of `A + b 1^T` (and of `W X + b 1^T`): `db += g 1`,
/// the sum of each row of `g`, on the calling thread in column order.
pub(crate) fn bias_backward<T: Real>(grads: &mut Grads<'_, T>, g: &DMatrix<T>, b: usize) {
    let d = g.nrows();
    let gs = g.as_slice();
    if let Some((gb, first)) = grads.slot(b, (d, 1)) {
        let db = gb.as_mut_slice();
        if first {
            db.fill(T::zero());
        }
        if d > 0 {
            for col in gs.chunks_exact(d) {
                db.iter_mut().zip(col).for_each(|(s, &x)| *s += x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::dmatrix;

    fn grad_of(
        f: impl Fn(&mut Tape<f64>, Var) -> Var,
        x: &DMatrix<f64>,
    ) -> (DMatrix<f64>, DMatrix<f64>) {
        let mut t = Tape::new();
        let v = t.param(x);
        let y = f(&mut t, v);
        let s = t.sum_all(y).unwrap();
        t.backward(s).unwrap();
        (t.value(y).clone(), t.grad(v).unwrap().clone())
    }

    #[test]
    fn stable_forms_at_plus_minus_1000_are_finite() {
        let x = dmatrix![-1000.0, 1000.0, 0.0];
        let (y, g) = grad_of(|t, v| t.sigmoid(v).unwrap(), &x);
        assert_eq!(y, dmatrix![0.0, 1.0, 0.5]);
        assert_eq!(g, dmatrix![0.0, 0.0, 0.25]);
        let (y, g) = grad_of(|t, v| t.softplus(v).unwrap(), &x);
        assert_eq!(y, dmatrix![0.0, 1000.0, 2f64.ln()]);
        assert_eq!(g, dmatrix![0.0, 1.0, 0.5]);
        let (y, g) = grad_of(|t, v| t.tanh(v).unwrap(), &x);
        assert_eq!(y, dmatrix![-1.0, 1.0, 0.0]);
        assert_eq!(g, dmatrix![0.0, 0.0, 1.0]);
        let (y, g) = grad_of(|t, v| t.elu(v, 1.0).unwrap(), &x);
        assert_eq!(y, dmatrix![-1.0, 1000.0, 0.0]);
        assert_eq!(g, dmatrix![0.0, 1.0, 1.0]);
        // f32 too.
        let mut t = Tape::<f32>::new();
        let v = t.param(&dmatrix![-1000.0f32, 1000.0]);
        let y = t.softplus(v).unwrap();
        let s = t.sum_all(y).unwrap();
        t.backward(s).unwrap();
        assert_eq!(t.value(y), &dmatrix![0.0f32, 1000.0]);
        assert_eq!(t.grad(v).unwrap(), &dmatrix![0.0f32, 1.0]);
    }

    #[test]
    fn hand_checked_activation_values_and_subgradients() {
        let x = dmatrix![-2.0, 0.0, 3.0];
        let (y, g) = grad_of(|t, v| t.relu(v).unwrap(), &x);
        assert_eq!((y, g), (dmatrix![0.0, 0.0, 3.0], dmatrix![0.0, 0.0, 1.0]));
        let (y, g) = grad_of(|t, v| t.leaky_relu(v, 0.1).unwrap(), &x);
        assert_eq!((y, g), (dmatrix![-0.2, 0.0, 3.0], dmatrix![0.1, 0.1, 1.0]));
        let (y, g) = grad_of(|t, v| t.abs(v).unwrap(), &x);
        assert_eq!((y, g), (dmatrix![2.0, 0.0, 3.0], dmatrix![-1.0, 0.0, 1.0]));
        let (y, g) = grad_of(|t, v| t.powf(v, 3.0).unwrap(), &dmatrix![2.0]);
        assert_eq!((y, g), (dmatrix![8.0], dmatrix![12.0]));
    }

    #[test]
    fn binary_ops_and_fan_out() {
        // f = sum(x*x + x/y - y), df/dx = 2x + 1/y, df/dy = -x/y^2 - 1.
        let mut t = Tape::<f64>::new();
        let x = t.param(&dmatrix![1.0, 2.0]);
        let y = t.param(&dmatrix![4.0, -0.5]);
        let xx = t.mul(x, x).unwrap();
        let q = t.div(x, y).unwrap();
        let s1 = t.add(xx, q).unwrap();
        let s2 = t.sub(s1, y).unwrap();
        let f = t.sum_all(s2).unwrap();
        t.backward(f).unwrap();
        assert_eq!(t.grad(x).unwrap(), &dmatrix![2.25, 2.0]);
        assert_eq!(t.grad(y).unwrap(), &dmatrix![-1.0 - 1.0 / 16.0, -1.0 - 8.0]);
    }

    #[test]
    fn add_bias_broadcasts_and_sums_gradient_over_samples() {
        let mut t = Tape::<f64>::new();
        let a = t.param(&dmatrix![1.0, 2.0, 3.0; 4.0, 5.0, 6.0]);
        let b = t.param(&dmatrix![10.0; 20.0]);
        let y = t.add_bias(a, b).unwrap();
        assert_eq!(t.value(y), &dmatrix![11.0, 12.0, 13.0; 24.0, 25.0, 26.0]);
        let w = t.constant(&dmatrix![1.0, 2.0, 3.0; 4.0, 5.0, 6.0]);
        let p = t.mul(y, w).unwrap();
        let f = t.sum_all(p).unwrap();
        t.backward(f).unwrap();
        assert_eq!(t.grad(b).unwrap(), &dmatrix![6.0; 15.0]);
        assert_eq!(t.grad(a).unwrap(), t.value(w));
        assert!(t.grad(w).is_none());
        let bad = t.param(&dmatrix![1.0, 2.0]);
        let e = t.add_bias(a, bad).unwrap_err();
        assert_eq!(
            e.to_string(),
            "add_bias: shape mismatch: a is 2x3 but bias is 1x2 (bias must be a column with as many rows as a)"
        );
    }

    #[test]
    fn split_elementwise_ops_are_bit_identical_to_one_thread() {
        // 100 x 1000 = 1e5 entries >= PAR_MIN_ENTRIES, so 2 and 3 threads split the
        // bias add, the activations and their backward passes (3 threads: chunks not
        // a multiple of the split, column-aligned for the bias).
        let (d, n) = (100, 1000);
        let a = DMatrix::from_fn(d, n, |i, j| ((i * 7 + j * 13) % 17) as f64 / 8.0 - 1.0);
        let b = DMatrix::from_fn(d, 1, |i, _| i as f64 / 50.0 - 1.0);
        let w = DMatrix::from_fn(d, n, |i, j| ((i + 3 * j) % 5) as f64 - 2.0);
        let run = |threads: usize| {
            let mut t = Tape::<f64>::with_threads(threads);
            let (pa, pb) = (t.param(&a), t.param(&b));
            let z = t.add_bias(pa, pb).unwrap();
            let h = t.relu(z).unwrap();
            let s = t.tanh(h).unwrap();
            let c = t.constant(&w);
            let p = t.mul(s, c).unwrap();
            let f = t.sum_all(p).unwrap();
            t.backward(f).unwrap();
            (
                t.value(s).clone(),
                t.grad(pa).unwrap().clone(),
                t.grad(pb).unwrap().clone(),
            )
        };
        let one = run(1);
        assert!(one.1.iter().any(|&g| g != 0.0) && one.0.iter().any(|&v| v > 0.0));
        for threads in [2, 3] {
            let many = run(threads);
            let bits = |m: &DMatrix<f64>| m.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&many.0), bits(&one.0), "values, {threads} threads");
            assert_eq!(bits(&many.1), bits(&one.1), "dA, {threads} threads");
            assert_eq!(bits(&many.2), bits(&one.2), "db, {threads} threads");
        }
    }
}
