//! Seeded synthetic supervised problems: teacher-student regression, spirals, blobs.
//!
//! Every generator draws from the caller's RNG only, in a fixed documented order, so
//! the same seed gives bit-identical data.

use std::f64::consts::PI;

use autodiff::Real;
use nalgebra::{DMatrix, DVector};
use nets::{Dataset, Targets};
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

use crate::BenchError;

fn normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    rng.sample::<f64, _>(StandardNormal)
}

/// A fixed random MLP used as the teacher of teacher-student regression:
/// `f(x) = W_L tanh(... tanh(W_1 x + b_1) ...) + b_L`, linear output.
///
/// Weights are drawn `N(0, 1/fan_in)` (LeCun normal, so hidden pre-activations have unit
/// variance for standard normal inputs), biases `N(0, 0.1^2)`. A student with the same
/// widths and tanh hidden activations can represent it exactly, so the global minimum of
/// the training loss is 0.
#[derive(Clone, Debug, PartialEq)]
pub struct TeacherMlp {
    /// `W_l`, `d_l x d_{l-1}`.
    pub weights: Vec<DMatrix<f64>>,
    /// `b_l`, length `d_l`.
    pub biases: Vec<DVector<f64>>,
}

impl TeacherMlp {
    /// Draws a teacher with the given widths `[d_0, ..., d_L]` (at least two), weights
    /// first layer first, each matrix column-major, then its bias.
    pub fn random<R: Rng + ?Sized>(widths: &[usize], rng: &mut R) -> Result<Self, BenchError> {
        if widths.len() < 2 || widths.contains(&0) {
            return Err(BenchError::arg(
                "widths",
                format!("need at least two positive widths, got {widths:?}"),
            ));
        }
        // Every matrix is checked before any is drawn: a mistyped width is an error,
        // not an abort on a failed allocation.
        let mut total = 0usize;
        for w in widths.windows(2) {
            super::check_entries("widths", w[1], w[0])?;
            total = total.saturating_add(w[1] * w[0]);
        }
        if total > super::MAX_DATA_ENTRIES {
            return Err(BenchError::arg(
                "widths",
                format!(
                    "the teacher's weights have {total} entries, more than MAX_DATA_ENTRIES = {}",
                    super::MAX_DATA_ENTRIES
                ),
            ));
        }
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for w in widths.windows(2) {
            let scale = 1.0 / (w[0] as f64).sqrt();
            weights.push(DMatrix::from_fn(w[1], w[0], |_, _| scale * normal(rng)));
            biases.push(DVector::from_fn(w[1], |_, _| 0.1 * normal(rng)));
        }
        Ok(Self { weights, biases })
    }

    /// Input dimension d_0.
    pub fn input_dim(&self) -> usize {
        self.weights.first().map_or(0, |w| w.ncols())
    }

    /// The teacher's output for inputs `x` (`d_0 x N`), computed in f64.
    pub fn forward<T: Real>(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, BenchError> {
        if x.nrows() != self.input_dim() {
            return Err(BenchError::arg(
                "x",
                format!(
                    "has {} rows, the teacher takes {}",
                    x.nrows(),
                    self.input_dim()
                ),
            ));
        }
        let mut a = x.map(|v| v.to_f64());
        let last = self.weights.len() - 1;
        for (l, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            let mut z = w * &a;
            for mut col in z.column_iter_mut() {
                col += b;
            }
            a = if l == last { z } else { z.map(f64::tanh) };
        }
        Ok(a.map(T::of))
    }
}

/// Teacher-student regression data: `n` inputs `x ~ N(0, I_{input_dim})` (drawn column by
/// column), targets `teacher(X) + noise_std * eps` with `eps ~ N(0, 1)` drawn after all
/// inputs. The teacher is any function (e.g. a [`TeacherMlp`], or a `nets` network's
/// `predict`) mapping `input_dim x n` to `d_out x n`.
pub fn teacher_student<T, R, F>(
    input_dim: usize,
    n: usize,
    noise_std: f64,
    mut teacher: F,
    rng: &mut R,
) -> Result<Dataset<T>, BenchError>
where
    T: Real,
    R: Rng + ?Sized,
    F: FnMut(&DMatrix<T>) -> Result<DMatrix<T>, BenchError>,
{
    if !(noise_std.is_finite() && noise_std >= 0.0) {
        return Err(BenchError::arg(
            "noise_std",
            format!("must be finite and >= 0, got {noise_std}"),
        ));
    }
    super::check_entries("input_dim/n", input_dim, n)?;
    let x = DMatrix::from_fn(input_dim, n, |_, _| T::of(normal(rng)));
    let mut y = teacher(&x)?;
    if y.ncols() != n {
        return Err(BenchError::arg(
            "teacher",
            format!("returned {} columns for {n} inputs", y.ncols()),
        ));
    }
    if noise_std > 0.0 {
        for v in y.iter_mut() {
            *v += T::of(noise_std * normal(rng));
        }
    }
    Ok(Dataset::new(x, Targets::Dense(y))?)
}

/// 3-armed (in general `classes`-armed) spirals in 2-D.
///
/// Sample i has class `i mod classes`; it draws `t ~ U(0, 1)` then `eps ~ N(0, 1)`, and sits
/// at radius `t` and angle `2 pi k / classes + 2 pi turns t + noise eps`. With
/// `noise = 0.1` and `turns = 1` the arms are cleanly separable by a small MLP but not by
/// a linear model.
pub fn spirals<T: Real, R: Rng + ?Sized>(
    n: usize,
    classes: usize,
    turns: f64,
    noise: f64,
    rng: &mut R,
) -> Result<Dataset<T>, BenchError> {
    if classes < 2 {
        return Err(BenchError::arg(
            "classes",
            format!("need >= 2, got {classes}"),
        ));
    }
    for (name, v) in [("turns", turns), ("noise", noise)] {
        if !v.is_finite() {
            return Err(BenchError::arg(name, format!("must be finite, got {v}")));
        }
    }
    super::check_entries("n", 2, n)?;
    let mut x = DMatrix::zeros(2, n);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let k = i % classes;
        let t: f64 = rng.random();
        let theta =
            2.0 * PI * k as f64 / classes as f64 + 2.0 * PI * turns * t + noise * normal(rng);
        x[(0, i)] = T::of(t * theta.cos());
        x[(1, i)] = T::of(t * theta.sin());
        labels.push(k);
    }
    Ok(Dataset::new(x, Targets::Labels { labels, classes })?)
}

/// Centres of Gaussian blobs: `classes` points uniform in `[-spread, spread]^dim`,
/// drawn centre by centre. `dim x classes` at most [`super::MAX_DATA_ENTRIES`] entries
/// (checked before allocating).
pub fn blob_centers<R: Rng + ?Sized>(
    dim: usize,
    classes: usize,
    spread: f64,
    rng: &mut R,
) -> Result<DMatrix<f64>, BenchError> {
    super::check_entries("dim/classes", dim, classes)?;
    Ok(DMatrix::from_fn(dim, classes, |_, _| {
        spread * (2.0 * rng.random::<f64>() - 1.0)
    }))
}

/// Gaussian blobs around given centres (`dim x classes`): sample i has class
/// `i mod classes` and input `centre_k + std * eps`, `eps ~ N(0, I)`.
pub fn blobs<T: Real, R: Rng + ?Sized>(
    centers: &DMatrix<f64>,
    n: usize,
    std: f64,
    rng: &mut R,
) -> Result<Dataset<T>, BenchError> {
    let classes = centers.ncols();
    if classes < 2 {
        return Err(BenchError::arg("centers", "need at least two centres"));
    }
    if !(std.is_finite() && std >= 0.0) {
        return Err(BenchError::arg(
            "std",
            format!("must be finite and >= 0, got {std}"),
        ));
    }
    if let Some(v) = centers.iter().find(|v| !v.is_finite()) {
        return Err(BenchError::arg(
            "centers",
            format!("has a non-finite entry {v}"),
        ));
    }
    let dim = centers.nrows();
    super::check_entries("dim/n", dim, n)?;
    let mut x = DMatrix::zeros(dim, n);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let k = i % classes;
        for r in 0..dim {
            x[(r, i)] = T::of(centers[(r, k)] + std * normal(rng));
        }
        labels.push(k);
    }
    Ok(Dataset::new(x, Targets::Labels { labels, classes })?)
}
