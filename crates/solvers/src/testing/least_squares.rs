//! Ridge least squares: f(x) = (1/(2N)) sum_i (a_i^T x - y_i)^2 + (lambda/2) ||x||^2.

use autodiff::Real;
use rand::Rng;

use super::{check_len, normal, params_from_json, params_json};
use crate::{Differentiable, Evaluation, Problem, SolverError};

/// Ridge least squares, a strongly convex quadratic with a finite-sum structure:
/// `f(x) = (1/(2N)) sum_i (a_i^T x - y_i)^2 + (lambda/2) ||x||^2`, samples `a_i` the
/// columns of a `d x N` matrix. Minimiser: `(A A^T / N + lambda I) x* = A y / N`.
/// A mini-batch value is the mean over the batch plus the full ridge term.
#[derive(Debug, Clone)]
pub struct LeastSquares<T: Real> {
    d: usize,
    a: Vec<T>, // d x N, column-major (sample i = a[i*d..(i+1)*d])
    y: Vec<T>,
    lambda: T,
    x: Vec<T>,
}

impl<T: Real> LeastSquares<T> {
    /// A problem from data (`a`: d x N column-major, `y`: N targets, all finite,
    /// `d * N <= MAX_TEST_ENTRIES`) and `lambda >= 0`, starting at x = 0.
    pub fn new(d: usize, a: Vec<T>, y: Vec<T>, lambda: f64) -> Result<Self, SolverError> {
        if d == 0 || y.is_empty() {
            return Err(SolverError::EmptyData(format!(
                "least squares with d = {d}, N = {}",
                y.len()
            )));
        }
        let entries = super::check_size("LeastSquares", d, y.len())?;
        check_len("least-squares data matrix (d*N)", entries, a.len())?;
        super::check_data_finite("LeastSquares", "data matrix", &a)?;
        super::check_data_finite("LeastSquares", "targets", &y)?;
        if !(lambda >= 0.0 && lambda.is_finite()) {
            return Err(SolverError::config(
                "LeastSquares",
                "lambda",
                lambda,
                "must be finite and >= 0",
            ));
        }
        Ok(LeastSquares {
            d,
            a,
            y,
            lambda: T::of(lambda),
            x: vec![T::zero(); d],
        })
    }

    /// Random data: a_i ~ N(0, I), y_i = a_i^T x_true + 0.1 noise, x_true ~ N(0, I).
    /// `d * n` above [`super::MAX_TEST_ENTRIES`] is refused before drawing.
    pub fn random<R: Rng + ?Sized>(
        d: usize,
        n: usize,
        lambda: f64,
        rng: &mut R,
    ) -> Result<Self, SolverError> {
        super::check_size("LeastSquares", d, n)?;
        let xt: Vec<f64> = (0..d).map(|_| normal(rng)).collect();
        let mut a = Vec::with_capacity(d * n);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let col: Vec<f64> = (0..d).map(|_| normal(rng)).collect();
            let t: f64 = col.iter().zip(&xt).map(|(p, q)| p * q).sum::<f64>() + 0.1 * normal(rng);
            a.extend(col.into_iter().map(T::of));
            y.push(T::of(t));
        }
        Self::new(d, a, y, lambda)
    }

    /// The data matrix, d x N column-major.
    pub fn data(&self) -> (&[T], &[T]) {
        (&self.a, &self.y)
    }

    /// The ridge weight lambda.
    pub fn lambda(&self) -> f64 {
        self.lambda.to_f64()
    }

    fn value_grad_impl(&self, batch: Option<&[usize]>, grad: Option<&mut [T]>) -> T {
        let d = self.d;
        let mut g = grad;
        if let Some(g) = g.as_deref_mut() {
            for (gi, xi) in g.iter_mut().zip(&self.x) {
                *gi = self.lambda * *xi;
            }
        }
        let mut f = T::zero();
        let mut term = |i: usize, scale: T| {
            let col = &self.a[i * d..(i + 1) * d];
            let r = col
                .iter()
                .zip(&self.x)
                .fold(T::zero(), |s, (p, q)| s + *p * *q)
                - self.y[i];
            f += scale * r * r;
            if let Some(g) = g.as_deref_mut() {
                for (gj, aj) in g.iter_mut().zip(col) {
                    *gj += scale * T::of(2.0) * r * *aj;
                }
            }
        };
        match batch {
            Some(b) => {
                let s = T::one() / T::of(2.0 * b.len() as f64);
                b.iter().for_each(|&i| term(i, s));
            }
            None => {
                let s = T::one() / T::of(2.0 * self.y.len() as f64);
                (0..self.y.len()).for_each(|i| term(i, s));
            }
        }
        let reg = self.x.iter().fold(T::zero(), |s, v| s + *v * *v);
        f + self.lambda * reg / T::of(2.0)
    }
}

impl<T: Real> Problem for LeastSquares<T> {
    fn evaluate(&mut self) -> Evaluation {
        Evaluation::objective(self.value_grad_impl(None, None).to_f64())
    }
    fn num_samples(&self) -> usize {
        self.y.len()
    }
    fn save_params(&self) -> serde_json::Value {
        params_json(&self.x)
    }
    fn load_params(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        self.x = params_from_json(v, self.d)?;
        Ok(())
    }
    fn params_finite(&self) -> bool {
        self.x.iter().all(|v| v.finite())
    }
}

impl<T: Real> Differentiable for LeastSquares<T> {
    type Scalar = T;
    fn dim(&self) -> usize {
        self.d
    }
    fn params(&self, out: &mut [T]) {
        out.iter_mut().zip(&self.x).for_each(|(o, v)| *o = *v);
    }
    fn set_params(&mut self, p: &[T]) -> Result<(), SolverError> {
        check_len("LeastSquares::set_params", self.d, p.len())?;
        self.x.copy_from_slice(p);
        Ok(())
    }
    fn value_grad(&mut self, batch: Option<&[usize]>, grad: &mut [T]) -> Result<T, SolverError> {
        check_len("LeastSquares gradient buffer", self.d, grad.len())?;
        check_batch(batch, self.y.len())?;
        Ok(self.value_grad_impl(batch, Some(grad)))
    }
}

/// Checks that a batch is non-empty and its indices are in range.
pub(crate) fn check_batch(batch: Option<&[usize]>, n: usize) -> Result<(), SolverError> {
    if let Some(b) = batch {
        if b.is_empty() {
            return Err(SolverError::EmptyData("empty mini-batch".into()));
        }
        if let Some(&i) = b.iter().find(|&&i| i >= n) {
            return Err(SolverError::shape(
                "mini-batch index bound",
                format!("< {n}"),
                i,
            ));
        }
    }
    Ok(())
}
