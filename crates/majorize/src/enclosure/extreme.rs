//! The ends of `T`'s range, which the relative error bounds of the main argument
//! (Higham's `γ_n`, the libm bounds) exclude: **underflow** to subnormals, whose errors
//! are absolute (up to the smallest subnormal `η_T` per operation, however small the
//! exact result), and **overflow** to infinity, after which the driver computes `inf` or
//! NaN while the enclosure (in f64) is still finite. Counterexamples found in review
//! (tests/enclosure_adversarial.rs): `α v` underflowing in [`super::apply_step`] and
//! amplified by a huge input; a GEMM product underflowing in the forward pass and
//! amplified by a huge next-layer weight; `α v = 1e39` overflowing in f32; a subnormal
//! L2 coefficient whose half is inexact.
//!
//! The terms, from a-priori magnitude bounds over the whole box (`M_0 = max |x|`, per
//! dense layer `R = max_r sum_c (|W| + sum_i ᾱ_i |V_i|)`, `B = max_r (|b| + sum_i ᾱ_i |v_b,i|)`,
//! `M_l = R M_{l-1} + B`, activations by their range and Lipschitz constant `L`):
//!
//! * overflow: if any weight `|w| + Σ ᾱ|v|`, any `M_l`, the loss or the penalty can reach
//!   `MAX_T / 16`, the enclosure is returned with an infinite upper bound (valid, useless:
//!   the caller shrinks its trust region);
//! * underflow: an absolute error bound `e_l` on every activation entry, with
//!   `e_l = L (R e_{l-1} + (c + 2) η_T + 2 k η_T (c M_{l-1} + 1)) + 4 η_T` (the GEMM's
//!   `c` products and bias addition, each off by at most `η_T` when subnormal; the
//!   `2k` roundings of each weight in `apply_step`, each off by at most `η_T`, times the
//!   inputs; the activation's few operations), then through the loss's Lipschitz
//!   constant per sample (`Σ_k |∂ℓ/∂z_k|` over the range) plus `8 K η_T` for its own
//!   operations, summed over samples with the reduction's weight. Twice that is added to
//!   the slack. For normal-range data these terms are of order `1e-40` (f32) or
//!   `1e-300` (f64).
//! * a nonzero `l2` below `2^-1021` is refused (then `l2 / 2` is exact, as the penalty
//!   enclosure assumes).

use autodiff::Real;
use nalgebra::DVector;
use nets::{Activation, Loss, LossKind, Reduction, Sequential};

use super::api::Step;
use super::fp::up;
use crate::error::{MajorizeError, Result};

/// What the extremes of the range add to an enclosure.
pub(crate) enum Extreme {
    /// No overflow is possible on the box; add this absolute amount to the slack.
    Finite(f64),
    /// The driver may overflow somewhere on the box: the upper bound must be infinite.
    Overflow,
}

/// `η_T`, the smallest positive subnormal of `T`, and `MAX_T`.
fn range_of<T: Real>() -> (f64, f64) {
    if T::dtype_name() == "f32" {
        (f64::from(f32::from_bits(1)), f64::from(f32::MAX))
    } else {
        (f64::from_bits(1), f64::MAX)
    }
}

/// `x < limit`, false for NaN.
fn fits(x: f64, limit: f64) -> bool {
    x < limit
}

/// Refuses a nonzero L2 coefficient whose half is not exact.
pub(crate) fn check_l2(loss: &Loss) -> Result<()> {
    if loss.l2 != 0.0 && loss.l2 < 2f64.powi(-1021) {
        return Err(MajorizeError::InvalidParameter {
            name: "l2",
            value: loss.l2,
            reason: "a nonzero L2 coefficient must be >= 2^-1021 (so that l2/2 is exact, \
                     as the penalty enclosure assumes); use 0 or a normal value",
        });
    }
    Ok(())
}

/// The module doc's terms for the request's network, data, directions and box.
#[allow(clippy::too_many_arguments)]
///
/// `below`: dense layers before `plan` that the driver does not evaluate (a sweep from a
/// kept activation, whose directions are zero there); only their weights' magnitudes
/// enter, through the penalty's overflow check.
pub(crate) fn extreme_terms<T: Real>(
    net: &Sequential<T>,
    below: &[Step],
    plan: &[Step],
    inputs: &nalgebra::DMatrix<T>,
    y_abs_max: f64,
    loss: &Loss,
    directions: &[DVector<T>],
    amax: &[f64],
) -> Extreme {
    let (eta, t_max) = range_of::<T>();
    let limit = t_max / 16.0;
    let k = directions.len() as f64;
    let n = inputs.ncols().max(1) as f64;
    let mut m = abs_max(inputs.as_slice());
    let mut e = 0.0f64;
    let mut w_max = 0.0f64;
    let grow = |x: f64| up(x * (1.0 + 1e-12));
    for step in below {
        let Step::Dense(li) = *step else { continue };
        match layer_max(net, li, directions, amax, limit) {
            Some(wm) => w_max = w_max.max(wm),
            None => return Extreme::Overflow,
        }
    }
    for step in plan {
        match *step {
            Step::Dense(li) => {
                let info = |name: &str| net.param_span(li, name);
                let (Some(wi), Some(bi)) = (info("weight"), info("bias")) else {
                    return Extreme::Overflow;
                };
                let Some(d) = net.layers().get(li).and_then(|l| l.as_dense()) else {
                    return Extreme::Overflow;
                };
                let (rows, cols) = (wi.rows, wi.cols);
                let Some((r_max, wm)) = row_sums(
                    d.weight.as_slice(),
                    rows,
                    cols,
                    directions,
                    wi.offset,
                    amax,
                    limit,
                ) else {
                    return Extreme::Overflow;
                };
                w_max = w_max.max(wm);
                let mut b_max = 0.0f64;
                for r in 0..bi.rows {
                    let mut a = d.bias[r].to_f64().abs();
                    for (dir, am) in directions.iter().zip(amax) {
                        a = up(a + up(am * dir[bi.offset + r].to_f64().abs()));
                    }
                    b_max = b_max.max(a);
                }
                w_max = w_max.max(b_max);
                let c = cols as f64;
                let delta = up(up((c + 2.0) * eta) + up(2.0 * k * eta * up(c * m + 1.0)));
                e = grow(up(r_max * e) + delta);
                m = grow(up(r_max * m) + b_max);
            }
            Step::Act(a) => {
                let (lip, range) = match a {
                    Activation::Identity | Activation::Relu => (1.0, m),
                    Activation::LeakyRelu { slope } => {
                        let s = slope.abs().max(1.0);
                        (s, up(s * m))
                    }
                    Activation::Tanh => (1.0, m.min(1.0)),
                    Activation::Sigmoid => (0.25, 1.0),
                    Activation::Softplus => (1.0, up(m + std::f64::consts::LN_2)),
                    Activation::Elu { alpha } => {
                        (alpha.abs().max(1.0), up(m * alpha.abs().max(1.0)))
                    }
                };
                e = up(up(lip * e) + 4.0 * eta);
                m = range;
            }
        }
        if !fits(m, limit) || !e.is_finite() {
            return Extreme::Overflow;
        }
    }
    let out_k = match plan.iter().rev().find_map(|s| match s {
        Step::Dense(li) => net.param_span(*li, "weight"),
        Step::Act(_) => None,
    }) {
        Some(p) => p.rows as f64,
        None => return Extreme::Overflow,
    };
    let yb = y_abs_max;
    // Per sample: Lipschitz sum over outputs, and the largest loss value.
    let (lip, value_max) = match loss.kind {
        LossKind::Mse => {
            let r = up(m + yb);
            (up(out_k * r), up(0.5 * out_k * up(r * r)))
        }
        LossKind::SoftmaxCrossEntropy => {
            let ysum = up(out_k * yb);
            (
                up(1.0 + ysum),
                up(up(1.0 + ysum) * up(2.0 * m + out_k.ln() + 1.0)),
            )
        }
        LossKind::Logistic => (
            up(out_k * up(1.0 + yb)),
            up(out_k * up(up(1.0 + yb) * up(m + std::f64::consts::LN_2))),
        ),
        LossKind::MulticlassHinge => return Extreme::Overflow,
    };
    let samples = match loss.reduction {
        Reduction::Mean => 1.0,
        Reduction::Sum => n,
    };
    if !fits(up(value_max * samples), limit) {
        return Extreme::Overflow;
    }
    if loss.l2 != 0.0 {
        // The driver sums the penalty in f64: bound it with the largest weight.
        let count = net
            .layers()
            .iter()
            .flat_map(|l| (0..l.num_param_tensors()).filter_map(|i| l.param(i)))
            .filter(|p| p.penalised)
            .map(|p| p.rows * p.cols)
            .sum::<usize>() as f64;
        if !fits(up(loss.l2 * count * up(w_max * w_max)), f64::MAX / 16.0) {
            return Extreme::Overflow;
        }
    }
    let per_sample = up(up(lip * e) + 8.0 * out_k * eta);
    let pen = if loss.l2 != 0.0 {
        4.0 * f64::from_bits(1) * loss.l2.max(1.0)
    } else {
        0.0
    };
    Extreme::Finite(up(2.0 * up(up(samples * per_sample) + pen)))
}

/// The largest weight or bias magnitude `|w| + Σ ᾱ_i |v_i|` of dense layer `li` over the
/// box (rounded up), as the main loop of [`extreme_terms`] computes it; `None` when it
/// may overflow or the layer is missing.
fn layer_max<T: Real>(
    net: &Sequential<T>,
    li: usize,
    directions: &[DVector<T>],
    amax: &[f64],
    limit: f64,
) -> Option<f64> {
    let (wi, bi) = (net.param_span(li, "weight")?, net.param_span(li, "bias")?);
    let d = net.layers().get(li).and_then(|l| l.as_dense())?;
    let (_, wm) = row_sums(
        d.weight.as_slice(),
        wi.rows,
        wi.cols,
        directions,
        wi.offset,
        amax,
        limit,
    )?;
    let mut m = wm;
    for r in 0..bi.rows {
        let mut a = d.bias[r].to_f64().abs();
        for (dir, am) in directions.iter().zip(amax) {
            a = up(a + up(am * dir[bi.offset + r].to_f64().abs()));
        }
        m = m.max(a);
    }
    fits(m, limit).then_some(m)
}

/// `max |x|` over a slice, ignoring NaN (as a fold with `f64::max`; 0 for an empty or
/// all-NaN slice). Four independent accumulators, so the compare chain is not one long
/// dependency; the result does not depend on the order (a maximum).
fn abs_max<T: Real>(x: &[T]) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut chunks = x.chunks_exact(4);
    for ch in &mut chunks {
        for (a, v) in acc.iter_mut().zip(ch) {
            let v = v.to_f64().abs();
            *a = if v > *a { v } else { *a };
        }
    }
    let mut m = 0.0f64;
    for v in chunks
        .remainder()
        .iter()
        .map(|v| v.to_f64().abs())
        .chain(acc)
    {
        m = if v > m { v } else { m };
    }
    m
}

/// Rows per block of [`row_sums`] (their partial sums live on the stack).
const ROW_BLOCK: usize = 64;

/// For one dense layer (weights `w`, column-major `rows x cols`; the directions' entries
/// of this weight start at `offset`): `(max_r Σ_c a_rc, max_rc a_rc)` with
/// `a_rc = |w_rc| + Σ_i up(ᾱ_i |v_i,rc|)`, every sum rounded up, each row's sum taken in
/// column order; `None` if some `up(ᾱ_i |v_i,rc|)` reaches `limit` (or is NaN).
///
/// The walk is column by column over blocks of rows (the storage order of `w` and of
/// the directions), so the loads are contiguous; every row still sums its columns in
/// increasing order, so the result equals a row-by-row walk bit for bit.
fn row_sums<T: Real>(
    w: &[T],
    rows: usize,
    cols: usize,
    directions: &[DVector<T>],
    offset: usize,
    amax: &[f64],
    limit: f64,
) -> Option<(f64, f64)> {
    let mut r_max = 0.0f64;
    let mut w_max = 0.0f64;
    let mut sums = [0.0f64; ROW_BLOCK];
    let mut r0 = 0;
    while r0 < rows {
        let nr = ROW_BLOCK.min(rows - r0);
        let sums = &mut sums[..nr];
        sums.fill(0.0);
        for c in 0..cols {
            let col = c * rows + r0;
            for (r, s) in sums.iter_mut().enumerate() {
                let mut a = w[col + r].to_f64().abs();
                for (dir, am) in directions.iter().zip(amax) {
                    let step = up(am * dir[offset + col + r].to_f64().abs());
                    if !fits(step, limit) {
                        return None;
                    }
                    a = up(a + step);
                }
                w_max = w_max.max(a);
                *s = up(*s + a);
            }
        }
        for s in sums.iter() {
            r_max = r_max.max(*s);
        }
        r0 += nr;
    }
    Some((r_max, w_max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The row-by-row walk [`row_sums`] replaces (its definition, written out).
    fn row_sums_by_rows(
        w: &[f64],
        rows: usize,
        cols: usize,
        dirs: &[DVector<f64>],
        offset: usize,
        amax: &[f64],
        limit: f64,
    ) -> Option<(f64, f64)> {
        let (mut r_max, mut w_max) = (0.0f64, 0.0f64);
        for r in 0..rows {
            let mut s = 0.0f64;
            for c in 0..cols {
                let j = c * rows + r;
                let mut a = w[j].abs();
                for (d, am) in dirs.iter().zip(amax) {
                    let step = up(am * d[offset + j].abs());
                    if !fits(step, limit) {
                        return None;
                    }
                    a = up(a + step);
                }
                w_max = w_max.max(a);
                s = up(s + a);
            }
            r_max = r_max.max(s);
        }
        Some((r_max, w_max))
    }

    /// Blocked column-major walk = row-by-row walk, bit for bit, across block boundaries
    /// (up to 150 rows: two full blocks and a partial one), with NaN weights, zero and
    /// overflowing directions; and `abs_max` = the `f64::max` fold, NaN ignored.
    #[test]
    fn blocked_walks_equal_their_definitions() {
        for seed in 0..60u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (rows, cols) = (rng.random_range(1..150usize), rng.random_range(1..9usize));
            let k = rng.random_range(0..3usize);
            let offset = rng.random_range(0..5usize);
            let val = |rng: &mut ChaCha8Rng| match rng.random_range(0..20) {
                0 => f64::NAN,
                1 => 0.0,
                2 if seed % 7 == 0 => 1e300,
                _ => rng.random::<f64>() * 4.0 - 2.0,
            };
            let w: Vec<f64> = (0..rows * cols).map(|_| val(&mut rng)).collect();
            let dirs: Vec<DVector<f64>> = (0..k)
                .map(|_| DVector::from_fn(offset + rows * cols, |_, _| val(&mut rng)))
                .collect();
            let amax: Vec<f64> = (0..k).map(|_| rng.random::<f64>()).collect();
            let limit = f64::MAX / 16.0;
            let got = row_sums(&w, rows, cols, &dirs, offset, &amax, limit);
            let want = row_sums_by_rows(&w, rows, cols, &dirs, offset, &amax, limit);
            let bits = |x: Option<(f64, f64)>| x.map(|(a, b)| (a.to_bits(), b.to_bits()));
            assert_eq!(bits(got), bits(want), "seed {seed}: {got:?} vs {want:?}");
            let m = abs_max(&w);
            let fold = w.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            assert_eq!(m.to_bits(), fold.to_bits(), "seed {seed}");
        }
        assert_eq!(abs_max::<f64>(&[]), 0.0);
        assert_eq!(abs_max(&[f64::NAN; 5]), 0.0);
        assert_eq!(abs_max(&[-3.0f32, 1.0, f32::NAN, 2.0, -0.5]), 3.0);
    }
}
