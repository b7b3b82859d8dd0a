//! Seeded train/test splits and per-feature standardisation.

use autodiff::Real;
use nalgebra::DMatrix;
use rand::Rng;
use rand::seq::SliceRandom;

use crate::BenchError;

fn check_fraction(train_fraction: f64) -> Result<(), BenchError> {
    if !(train_fraction > 0.0 && train_fraction < 1.0) {
        return Err(BenchError::arg(
            "train_fraction",
            format!("must lie strictly between 0 and 1, got {train_fraction}"),
        ));
    }
    Ok(())
}

/// Stratified split: within each class c with n_c samples, a uniformly random subset of
/// `round(train_fraction * n_c)` samples goes to training, the rest to test. Both index
/// lists are then shuffled (so classes are interleaved). Deterministic given the RNG.
pub fn stratified_split<R: Rng + ?Sized>(
    labels: &[usize],
    classes: usize,
    train_fraction: f64,
    rng: &mut R,
) -> Result<(Vec<usize>, Vec<usize>), BenchError> {
    check_fraction(train_fraction)?;
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        let Some(bucket) = by_class.get_mut(l) else {
            return Err(BenchError::arg(
                "labels",
                format!("label {l} at sample {i} is not below {classes} classes"),
            ));
        };
        bucket.push(i);
    }
    let mut train = Vec::new();
    let mut test = Vec::new();
    for mut idx in by_class {
        idx.shuffle(rng);
        let k = (train_fraction * idx.len() as f64).round() as usize;
        train.extend_from_slice(&idx[..k]);
        test.extend_from_slice(&idx[k..]);
    }
    train.shuffle(rng);
    test.shuffle(rng);
    Ok((train, test))
}

/// Unstratified split of `0..n`: a random permutation, the first `round(train_fraction * n)`
/// indices for training.
pub fn random_split<R: Rng + ?Sized>(
    n: usize,
    train_fraction: f64,
    rng: &mut R,
) -> Result<(Vec<usize>, Vec<usize>), BenchError> {
    check_fraction(train_fraction)?;
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(rng);
    let k = (train_fraction * n as f64).round() as usize;
    let test = idx.split_off(k);
    Ok((idx, test))
}

/// The columns `indices` of `m`, in that order. Indices must be below `m.ncols()`.
pub fn take_columns<T: Real>(m: &DMatrix<T>, indices: &[usize]) -> Result<DMatrix<T>, BenchError> {
    if let Some(&bad) = indices.iter().find(|&&i| i >= m.ncols()) {
        return Err(BenchError::arg(
            "indices",
            format!("column {bad} out of range for {} columns", m.ncols()),
        ));
    }
    Ok(m.select_columns(indices))
}

/// Per-feature (row) affine standardisation x -> (x - mean) / std, with the statistics of
/// the data it was fitted on (the TRAINING set). `std` is the population standard
/// deviation (divide by N). Features whose training std is (numerically) zero map to 0
/// everywhere, in training and in test data alike.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    /// Training mean per feature.
    pub mean: Vec<f64>,
    /// Training standard deviation per feature; 0 marks a constant feature.
    pub std: Vec<f64>,
}

impl Standardizer {
    /// Fits on `x` (`d x N`, samples as columns), accumulating in f64 (two passes).
    ///
    /// Overflow-safe: each feature is first divided by its largest magnitude `c`, so the
    /// sums stay within `[-N, N]`; then `mean = c * mean(x / c)` and
    /// `std = c * std(x / c)`, both at most `c` (a feature near 1e200 or `f64::MAX` gets
    /// its true mean and spread instead of `std = inf`, which zeroed it).
    pub fn fit<T: Real>(x: &DMatrix<T>) -> Self {
        let (d, n) = x.shape();
        let nf = n.max(1) as f64;
        let mut mean = vec![0.0; d];
        let mut std = vec![0.0; d];
        for (i, (m, s)) in mean.iter_mut().zip(std.iter_mut()).enumerate() {
            let row = x.row(i);
            let c = row.iter().fold(0.0f64, |a, v| a.max(v.to_f64().abs()));
            let c = if c > 0.0 { c } else { 1.0 };
            let mu_s = row.iter().map(|v| v.to_f64() / c).sum::<f64>() / nf;
            let var_s = row
                .iter()
                .map(|v| (v.to_f64() / c - mu_s).powi(2))
                .sum::<f64>()
                / nf;
            let (mu, sd) = (c * mu_s, c * var_s.sqrt());
            *m = mu;
            *s = if sd <= 1e-10 * (1.0 + mu.abs()) {
                0.0
            } else {
                sd
            };
        }
        Self { mean, std }
    }

    /// Standardises `x` in place. Errors if its row count differs from the fitted one.
    pub fn apply<T: Real>(&self, x: &mut DMatrix<T>) -> Result<(), BenchError> {
        if x.nrows() != self.mean.len() {
            return Err(BenchError::arg(
                "x",
                format!(
                    "has {} features, the standardiser was fitted on {}",
                    x.nrows(),
                    self.mean.len()
                ),
            ));
        }
        for mut col in x.column_iter_mut() {
            for (i, v) in col.iter_mut().enumerate() {
                let s = self.std[i];
                let z = if s == 0.0 {
                    0.0
                } else {
                    let (x, m) = (v.to_f64(), self.mean[i]);
                    // x - m may overflow when both are near f64::MAX; the scaled form
                    // does not when the result itself is representable.
                    let d = (x - m) / s;
                    if d.is_finite() { d } else { x / s - m / s }
                };
                if !T::of(z).finite() {
                    return Err(BenchError::arg(
                        "x",
                        format!(
                            "feature {i}: standardised value {z} is not finite in this precision"
                        ),
                    ));
                }
                *v = T::of(z);
            }
        }
        Ok(())
    }
}
