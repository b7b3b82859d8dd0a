//! The entrywise part of one MAC Z-step trial (issue #14: the hot loop of a MAC sweep on
//! narrow networks), written so that the compiler can vectorize it for the closed-form
//! (piecewise-linear) activations.
//!
//! For every entry `k` of `Z_l` (see [`super::MacState`]'s Z-step): with
//! `t = a0 - gamma_k / lc` the majorizer's target for `h(z)` and `m` the layer's own
//! output,
//!
//! ```text
//! z_new = argmin_z  lc (t - h(z))^2 + mu (z - m)^2      (nets::prox::prox_weighted)
//! ```
//!
//! kept only if it is not worse than the old `z` on that objective (a guard for the
//! numeric prox), and `a_new = h(z_new)`.

use autodiff::Real;
use nets::Activation;
use nets::prox::{ClosedProx, WeightedProx};

use crate::SolverError;

/// Old values and fixed inputs of the entries of one Z-step.
pub(super) struct Entries<'a, T: Real> {
    /// `h(Z_old)`.
    pub a0: &'a [T],
    /// `Z_old`.
    pub z0: &'a [T],
    /// The layer's own output `W_l h(Z_{l-1}) + b_l`.
    pub m: &'a [T],
    /// `W_{l+1}^T G`, the gradient of the term above in `h(Z_l)`.
    pub gamma: &'a [T],
}

/// Writes `z_new`, `h(z_new)` into `z`, `a` and `h(z_new)` in f64 into `a_f64`.
/// Errors like `prox_weighted` (the first non-finite entry) and then leaves `z`, `a`
/// partly written.
#[allow(clippy::too_many_arguments)]
pub(super) fn update<T: Real>(
    h: Activation,
    lc: f64,
    mu: f64,
    e: &Entries<'_, T>,
    z: &mut [T],
    a: &mut [T],
    a_f64: &mut Vec<f64>,
    layer: usize,
) -> Result<(), SolverError> {
    let err = |e: nets::NetsError| SolverError::Problem(format!("MAC Z_{layer} step: {e}"));
    let prox = WeightedProx::new(&h, lc, mu).map_err(err)?;
    a_f64.resize(z.len(), 0.0);
    if let Some(cf) = prox.closed_form()
        && closed_dispatch(h, cf, lc, mu, e, z, a, a_f64)
    {
        return Ok(());
    }
    for (k, ((z_out, a_out), af)) in z
        .iter_mut()
        .zip(a.iter_mut())
        .zip(a_f64.iter_mut())
        .enumerate()
    {
        let (a_old, zk, mk) = (e.a0[k].to_f64(), e.z0[k].to_f64(), e.m[k].to_f64());
        let t = a_old - e.gamma[k].to_f64() / lc;
        let psi = |z: f64| {
            let r = t - h.apply(z);
            lc * r * r + mu * (z - mk) * (z - mk)
        };
        let cand = prox.eval(t, mk).map_err(err)?;
        let znew = if psi(cand) <= psi(zk) { cand } else { zk };
        *z_out = T::of(znew);
        *af = h.apply(znew);
        *a_out = T::of(*af);
    }
    Ok(())
}

/// [`closed_for`] compiled for the widest vector unit the CPU has (checked at run time):
/// AVX-512F or AVX2 on x86-64, else the build's baseline (SSE2 there: 2 doubles per
/// instruction). Only the instruction set differs: every entry takes the same IEEE
/// operations in the same order (Rust never contracts a multiply and an add into an FMA),
/// so the results are bit for bit those of the baseline loop (issue #14: the loop was
/// ~15% of a MAC sweep on digits at 2 lanes).
#[allow(clippy::too_many_arguments)]
fn closed_dispatch<T: Real>(
    h: Activation,
    cf: ClosedProx,
    lc: f64,
    mu: f64,
    e: &Entries<'_, T>,
    z: &mut [T],
    a: &mut [T],
    a_f64: &mut [f64],
) -> bool {
    autodiff::simd::widest(
        #[inline(always)]
        || closed_for(h, cf, lc, mu, e, z, a, a_f64),
    )
}

/// [`closed`] with the activation fixed at compile time for ReLU and the identity
/// (`Activation::X.apply` with a constant variant compiles to the branch-free map).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn closed_for<T: Real>(
    h: Activation,
    cf: ClosedProx,
    lc: f64,
    mu: f64,
    e: &Entries<'_, T>,
    z: &mut [T],
    a: &mut [T],
    a_f64: &mut [f64],
) -> bool {
    match h {
        Activation::Relu => closed(|v| Activation::Relu.apply(v), cf, lc, mu, e, z, a, a_f64),
        Activation::Identity => closed(
            |v| Activation::Identity.apply(v),
            cf,
            lc,
            mu,
            e,
            z,
            a,
            a_f64,
        ),
        _ => closed(|v| h.apply(v), cf, lc, mu, e, z, a, a_f64),
    }
}

/// The loop of [`update`] with the closed-form prox; the same arithmetic, entry by
/// entry. Returns false when an input was not finite (the caller then redoes the
/// entries through the checked path, which reports the error).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn closed<T: Real>(
    hf: impl Fn(f64) -> f64 + Copy,
    cf: ClosedProx,
    lc: f64,
    mu: f64,
    e: &Entries<'_, T>,
    z: &mut [T],
    a: &mut [T],
    a_f64: &mut [f64],
) -> bool {
    let mut ok = true;
    let n = z.len();
    let (a0, z0, m, g) = (&e.a0[..n], &e.z0[..n], &e.m[..n], &e.gamma[..n]);
    let (a, a_f64) = (&mut a[..n], &mut a_f64[..n]);
    for k in 0..n {
        let (a_old, zk, mk) = (a0[k].to_f64(), z0[k].to_f64(), m[k].to_f64());
        let t = a_old - g[k].to_f64() / lc;
        ok &= t.is_finite() & mk.is_finite();
        let psi = |z: f64| {
            let r = t - hf(z);
            lc * r * r + mu * (z - mk) * (z - mk)
        };
        let cand = cf.eval(t, mk);
        let znew = if psi(cand) <= psi(zk) { cand } else { zk };
        z[k] = T::of(znew);
        let an = hf(znew);
        a_f64[k] = an;
        a[k] = T::of(an);
    }
    ok
}

/// Lanes of the sums below: entry `k` goes into partial sum `k % LANES`, and the
/// partial sums are added in lane order at the end. Independent partial sums let the
/// loops run at the vector unit's throughput instead of one add's latency per entry
/// (issue #14); they round differently from one running sum (relative differences of
/// order `LANES u`, far below the Z-step's test tolerance `64 u (1 + |phi0|)`).
const LANES: usize = 8;

/// `(sum_k gamma_k (a_k - a0_k), sum_k (a_k - a0_k)^2)` in [`LANES`] partial sums (the
/// linear and quadratic terms of the majorizer at the new point).
pub(super) fn model_terms<T: Real>(gamma: &[T], a0: &[T], a_new: &[f64]) -> (f64, f64) {
    let mut lin = [0.0f64; LANES];
    let mut quad = [0.0f64; LANES];
    let lane = |(lin, quad): (&mut f64, &mut f64), ((g, a0), an): ((&T, &T), &f64)| {
        let da = an - a0.to_f64();
        *lin += g.to_f64() * da;
        *quad += da * da;
    };
    let (mut gc, mut ac, mut nc) = (
        gamma.chunks_exact(LANES),
        a0.chunks_exact(LANES),
        a_new.chunks_exact(LANES),
    );
    for ((g, a), an) in (&mut gc).zip(&mut ac).zip(&mut nc) {
        lin.iter_mut()
            .zip(quad.iter_mut())
            .zip(g.iter().zip(a).zip(an))
            .for_each(|(acc, x)| lane(acc, x));
    }
    lin.iter_mut()
        .zip(quad.iter_mut())
        .zip(
            gc.remainder()
                .iter()
                .zip(ac.remainder())
                .zip(nc.remainder()),
        )
        .for_each(|(acc, x)| lane(acc, x));
    (lin.iter().sum(), quad.iter().sum())
}

/// The hidden term on a layer's output: writes `g = mu (lin - z)` (entrywise in T) and
/// returns `sum_k (lin_k - z_k)^2` in f64, in [`LANES`] partial sums. `g` is rebuilt
/// from its storage without zero-filling it first.
pub(super) fn hidden_term<T: Real>(
    lin: &nalgebra::DMatrix<T>,
    z: &nalgebra::DMatrix<T>,
    mu: f64,
    g: &mut nalgebra::DMatrix<T>,
) -> f64 {
    let (rows, cols) = lin.shape();
    let mut buf: Vec<T> = std::mem::replace(g, nalgebra::DMatrix::zeros(0, 0))
        .data
        .into();
    buf.clear();
    buf.reserve(rows * cols);
    let tm = T::of(mu);
    let mut sq = [0.0f64; LANES];
    let mut lane = |s: &mut f64, (&l, &z): (&T, &T)| {
        let d = l - z;
        let df = d.to_f64();
        *s += df * df;
        buf.push(d * tm);
    };
    let (mut lc, mut zc) = (
        lin.as_slice().chunks_exact(LANES),
        z.as_slice()[..rows * cols].chunks_exact(LANES),
    );
    for (l, z) in (&mut lc).zip(&mut zc) {
        sq.iter_mut()
            .zip(l.iter().zip(z))
            .for_each(|(s, x)| lane(s, x));
    }
    sq.iter_mut()
        .zip(lc.remainder().iter().zip(zc.remainder()))
        .for_each(|(s, x)| lane(s, x));
    *g = nalgebra::DMatrix::from_vec(rows, cols, buf);
    sq.iter().sum()
}

/// `dst <- src`, keeping `dst`'s storage when the shapes agree.
pub(super) fn copy_into<T: Real>(dst: &mut nalgebra::DMatrix<T>, src: &nalgebra::DMatrix<T>) {
    crate::linalg::fit(dst, src.nrows(), src.ncols());
    dst.copy_from(src);
}
