//! L2-regularised logistic regression.

use autodiff::Real;
use rand::Rng;

use super::least_squares::check_batch;
use super::{check_len, normal, params_from_json, params_json};
use crate::{Differentiable, Evaluation, Problem, SolverError};

/// L2-regularised logistic regression with labels in {-1, +1}:
/// `f(w) = (1/N) sum_i log(1 + exp(-y_i w^T x_i)) + (lambda/2) ||w||^2`
/// (strongly convex for lambda > 0; no separate bias: add a constant feature).
/// A mini-batch value is the mean over the batch plus the full penalty.
#[derive(Debug, Clone)]
pub struct Logistic<T: Real> {
    d: usize,
    x: Vec<T>, // d x N column-major
    y: Vec<T>, // +-1
    lambda: T,
    w: Vec<T>,
}

/// log(1 + exp(t)), stable for both signs.
fn softplus<T: Real>(t: T) -> T {
    if t > T::zero() {
        t + (-t).exp().ln_1p()
    } else {
        t.exp().ln_1p()
    }
}

/// 1 / (1 + exp(-t)), stable.
fn sigmoid<T: Real>(t: T) -> T {
    if t >= T::zero() {
        T::one() / (T::one() + (-t).exp())
    } else {
        let e = t.exp();
        e / (T::one() + e)
    }
}

impl<T: Real> Logistic<T> {
    /// A problem from data (`x`: d x N column-major and finite, labels +-1,
    /// `d * N <= MAX_TEST_ENTRIES`) and `lambda >= 0`, starting at w = 0.
    pub fn new(d: usize, x: Vec<T>, y: Vec<T>, lambda: f64) -> Result<Self, SolverError> {
        if d == 0 || y.is_empty() {
            return Err(SolverError::EmptyData(format!(
                "logistic with d = {d}, N = {}",
                y.len()
            )));
        }
        let entries = super::check_size("Logistic", d, y.len())?;
        check_len("logistic data matrix (d*N)", entries, x.len())?;
        super::check_data_finite("Logistic", "data matrix", &x)?;
        if let Some(bad) = y.iter().find(|v| **v != T::one() && **v != -T::one()) {
            return Err(SolverError::config(
                "Logistic",
                "label",
                bad,
                "must be -1 or +1",
            ));
        }
        if !(lambda >= 0.0 && lambda.is_finite()) {
            return Err(SolverError::config(
                "Logistic",
                "lambda",
                lambda,
                "must be finite and >= 0",
            ));
        }
        Ok(Logistic {
            d,
            x,
            y,
            lambda: T::of(lambda),
            w: vec![T::zero(); d],
        })
    }

    /// Random overlapping classes: features N(0, I) with a last constant feature 1,
    /// labels from a noisy linear rule (not separable). `d * n` above
    /// [`super::MAX_TEST_ENTRIES`] is refused before drawing.
    pub fn random<R: Rng + ?Sized>(
        d: usize,
        n: usize,
        lambda: f64,
        rng: &mut R,
    ) -> Result<Self, SolverError> {
        super::check_size("Logistic", d, n)?;
        let wt: Vec<f64> = (0..d).map(|_| normal(rng)).collect();
        let mut x = Vec::with_capacity(d * n);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let mut col: Vec<f64> = (0..d).map(|_| normal(rng)).collect();
            if let Some(last) = col.last_mut() {
                *last = 1.0;
            }
            let t: f64 = col.iter().zip(&wt).map(|(p, q)| p * q).sum::<f64>() + normal(rng);
            x.extend(col.into_iter().map(T::of));
            y.push(if t > 0.0 { T::one() } else { -T::one() });
        }
        Self::new(d, x, y, lambda)
    }

    /// Features (d x N column-major) and labels.
    pub fn data(&self) -> (&[T], &[T]) {
        (&self.x, &self.y)
    }

    /// The penalty weight lambda.
    pub fn lambda(&self) -> f64 {
        self.lambda.to_f64()
    }

    fn margin(&self, i: usize) -> T {
        let col = &self.x[i * self.d..(i + 1) * self.d];
        self.y[i]
            * col
                .iter()
                .zip(&self.w)
                .fold(T::zero(), |s, (p, q)| s + *p * *q)
    }

    fn value_grad_impl(&self, batch: Option<&[usize]>, grad: Option<&mut [T]>) -> T {
        let d = self.d;
        let mut g = grad;
        if let Some(g) = g.as_deref_mut() {
            for (gi, wi) in g.iter_mut().zip(&self.w) {
                *gi = self.lambda * *wi;
            }
        }
        let mut f = T::zero();
        let mut term = |i: usize, scale: T| {
            let m = self.margin(i);
            f += scale * softplus(-m);
            if let Some(g) = g.as_deref_mut() {
                let c = -scale * self.y[i] * sigmoid(-m);
                for (gj, xj) in g.iter_mut().zip(&self.x[i * d..(i + 1) * d]) {
                    *gj += c * *xj;
                }
            }
        };
        match batch {
            Some(b) => {
                let s = T::one() / T::of(b.len() as f64);
                b.iter().for_each(|&i| term(i, s));
            }
            None => {
                let s = T::one() / T::of(self.y.len() as f64);
                (0..self.y.len()).for_each(|i| term(i, s));
            }
        }
        let reg = self.w.iter().fold(T::zero(), |s, v| s + *v * *v);
        f + self.lambda * reg / T::of(2.0)
    }
}

impl<T: Real> Problem for Logistic<T> {
    fn evaluate(&mut self) -> Evaluation {
        let correct = (0..self.y.len())
            .filter(|&i| self.margin(i) > T::zero())
            .count();
        Evaluation {
            objective: self.value_grad_impl(None, None).to_f64(),
            train_accuracy: Some(correct as f64 / self.y.len() as f64),
            ..Default::default()
        }
    }
    fn num_samples(&self) -> usize {
        self.y.len()
    }
    fn save_params(&self) -> serde_json::Value {
        params_json(&self.w)
    }
    fn load_params(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        self.w = params_from_json(v, self.d)?;
        Ok(())
    }
    fn params_finite(&self) -> bool {
        self.w.iter().all(|v| v.finite())
    }
}

impl<T: Real> Differentiable for Logistic<T> {
    type Scalar = T;
    fn dim(&self) -> usize {
        self.d
    }
    fn params(&self, out: &mut [T]) {
        out.iter_mut().zip(&self.w).for_each(|(o, v)| *o = *v);
    }
    fn set_params(&mut self, p: &[T]) -> Result<(), SolverError> {
        check_len("Logistic::set_params", self.d, p.len())?;
        self.w.copy_from_slice(p);
        Ok(())
    }
    fn value_grad(&mut self, batch: Option<&[usize]>, grad: &mut [T]) -> Result<T, SolverError> {
        check_len("Logistic gradient buffer", self.d, grad.len())?;
        check_batch(batch, self.y.len())?;
        Ok(self.value_grad_impl(batch, Some(grad)))
    }
}
