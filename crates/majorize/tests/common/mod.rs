//! Shared helpers of the integration tests.
#![allow(dead_code)]

use nalgebra::{DMatrix, DVector};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn normal(r: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - r.random::<f64>();
    let u2: f64 = r.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

pub fn gauss_vec(r: &mut ChaCha8Rng, n: usize, s: f64) -> DVector<f64> {
    DVector::from_fn(n, |_, _| s * normal(r))
}

pub fn gauss_mat(r: &mut ChaCha8Rng, m: usize, n: usize, s: f64) -> DMatrix<f64> {
    DMatrix::from_fn(m, n, |_, _| s * normal(r))
}

pub fn uniform_mat(r: &mut ChaCha8Rng, m: usize, n: usize, lo: f64, hi: f64) -> DMatrix<f64> {
    DMatrix::from_fn(m, n, |_, _| lo + (hi - lo) * r.random::<f64>())
}

pub fn uniform_vec(r: &mut ChaCha8Rng, n: usize, lo: f64, hi: f64) -> DVector<f64> {
    DVector::from_fn(n, |_, _| lo + (hi - lo) * r.random::<f64>())
}

/// Log-uniform positive vector: exp(U(-s, s)) * base.
pub fn log_uniform_vec(r: &mut ChaCha8Rng, base: &DVector<f64>, s: f64) -> DVector<f64> {
    DVector::from_fn(base.len(), |i, _| {
        base[i] * (s * (2.0 * r.random::<f64>() - 1.0)).exp()
    })
}
