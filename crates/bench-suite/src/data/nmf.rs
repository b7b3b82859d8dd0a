//! Seeded synthetic nonnegative matrices for beta-NMF: low-rank `W H` observed through
//! Poisson noise (the generative model of KL-NMF, beta = 1) or multiplicative Gamma noise
//! (the generative model of Itakura-Saito NMF, beta = 0; Fevotte, Bertin & Durrieu 2009,
//! Neural Computation 21(3), section 3).
//!
//! Samples drawn with `rand_distr` 0.6 (`Poisson`, `Gamma`); their sampling algorithms
//! may change across `rand_distr` versions, so bit-identical data needs the pinned
//! version of the workspace lockfile.

use autodiff::Real;
use nalgebra::DMatrix;
use rand::{Rng, RngExt};
use rand_distr::{Gamma, Poisson};

use crate::BenchError;

/// The observation noise of [`synthetic_nmf`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NmfNoise {
    /// No noise: `V = V*` exactly (rank-K, so zero loss is reachable).
    None,
    /// `V_fn ~ Poisson(V*_fn)`, with `V*` scaled to have mean `mean` (counts; larger
    /// means relatively less noise). Zeros occur: fine for beta >= 1.
    Poisson {
        /// Mean of `V*` over all entries.
        mean: f64,
    },
    /// `V_fn = V*_fn * G_fn`, `G_fn ~ Gamma(shape, scale = 1/shape)` (mean 1, variance
    /// 1/shape), with `V*` scaled to mean 1. Strictly positive: fine for beta <= 0.
    Gamma {
        /// Gamma shape alpha (> 0).
        shape: f64,
    },
}

/// A synthetic NMF instance: the data and the factors it was built from.
#[derive(Clone, Debug, PartialEq)]
pub struct NmfInstance<T: Real> {
    /// The observed nonnegative data `V`, `rows x cols`.
    pub v: DMatrix<T>,
    /// The true (scaled) dictionary `W*`, `rows x rank`.
    pub w_true: DMatrix<T>,
    /// The true activations `H*`, `rank x cols`.
    pub h_true: DMatrix<T>,
}

/// Builds `V* = W* H*` with entries of `W*` (drawn first, column-major) and `H*` (then)
/// i.i.d. Exponential(1) = Gamma(1, 1), rescales `W*` so that `V*` has the mean the
/// noise model asks for, draws the noise entry by entry (column-major), and finally
/// applies `max(v, floor)` (use `floor > 0` with beta <= 0 when the noise can give zeros).
pub fn synthetic_nmf<T: Real, R: Rng + ?Sized>(
    rows: usize,
    cols: usize,
    rank: usize,
    noise: NmfNoise,
    floor: f64,
    rng: &mut R,
) -> Result<NmfInstance<T>, BenchError> {
    if rows == 0 || cols == 0 || rank == 0 {
        return Err(BenchError::arg(
            "rows/cols/rank",
            format!("must be positive, got {rows} x {cols}, rank {rank}"),
        ));
    }
    super::check_entries("rows/cols", rows, cols)?;
    crate::runner::limits::check_factor_entries(rank, rows, cols)?;
    if !(floor.is_finite() && floor >= 0.0) {
        return Err(BenchError::arg(
            "floor",
            format!("must be >= 0, got {floor}"),
        ));
    }
    let exp1 = Gamma::new(1.0, 1.0).map_err(|e| BenchError::arg("gamma", e.to_string()))?;
    let mut w: DMatrix<f64> = DMatrix::from_fn(rows, rank, |_, _| rng.sample(exp1));
    let h: DMatrix<f64> = DMatrix::from_fn(rank, cols, |_, _| rng.sample(exp1));
    let target_mean = match noise {
        NmfNoise::Poisson { mean } => {
            if !(mean.is_finite() && mean > 0.0) {
                return Err(BenchError::arg("mean", format!("must be > 0, got {mean}")));
            }
            mean
        }
        NmfNoise::Gamma { shape } => {
            if !(shape.is_finite() && shape > 0.0) {
                return Err(BenchError::arg(
                    "shape",
                    format!("must be > 0, got {shape}"),
                ));
            }
            1.0
        }
        NmfNoise::None => 1.0,
    };
    let v_clean = &w * &h;
    let current = v_clean.mean();
    if !(current.is_finite() && current > 0.0) {
        return Err(BenchError::arg("rank", "degenerate factors (zero mean)"));
    }
    w *= target_mean / current;
    let v_clean = v_clean * (target_mean / current);
    let mut v = v_clean.clone();
    match noise {
        NmfNoise::None => {}
        NmfNoise::Poisson { .. } => {
            for x in v.iter_mut() {
                // lambda > 0 since Exponential draws are > 0 almost surely; guard anyway.
                let lambda = x.max(1e-300);
                let p =
                    Poisson::new(lambda).map_err(|e| BenchError::arg("poisson", e.to_string()))?;
                *x = rng.sample(p);
            }
        }
        NmfNoise::Gamma { shape } => {
            let g = Gamma::new(shape, 1.0 / shape)
                .map_err(|e| BenchError::arg("gamma", e.to_string()))?;
            for x in v.iter_mut() {
                *x *= rng.sample(g);
            }
        }
    }
    Ok(NmfInstance {
        v: v.map(|x| T::of(x.max(floor))),
        w_true: w.map(T::of),
        h_true: h.map(T::of),
    })
}
