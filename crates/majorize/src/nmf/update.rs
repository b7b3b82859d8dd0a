//! The strata-mode multiplicative updates and the objective (conventions in the parent
//! module's doc).

use autodiff::Real;
use nalgebra::DMatrix;

use super::{NmfConfig, NmfWorkspace, Rule, check_shapes, sklearn};
use crate::beta::EntrySurrogate;
use crate::error::Result;
use crate::prod::gemm;
use autodiff::Transpose;

/// How `y^e` is computed for a fixed exponent: integer powers by multiplication and
/// half-integer ones through a square root avoid the general `pow` (the dominant cost
/// of an update for beta not in {1, 2}).
#[derive(Clone, Copy)]
pub(super) enum Power {
    Int(i32),
    HalfInt(i32),
    General(f64),
}

impl Power {
    pub(super) fn of(e: f64) -> Self {
        if e.fract() == 0.0 && e.abs() <= 8.0 {
            Power::Int(e as i32)
        } else if (2.0 * e).fract() == 0.0 && e.abs() <= 8.0 {
            Power::HalfInt((e - 0.5) as i32)
        } else {
            Power::General(e)
        }
    }
    #[inline]
    pub(super) fn apply<T: Real>(self, y: T) -> T {
        match self {
            Power::Int(k) => y.powi(k),
            Power::HalfInt(k) => y.powi(k) * y.sqrt(),
            Power::General(e) => y.powf(T::of(e)),
        }
    }
}

/// `ws.a = V o (WH)^(beta-2)` and `ws.b = (WH)^(beta-1)` (`beta = 1`: only
/// `ws.a = V ./ WH`), from `ws.wh`, with `WH` raised to at least `EPS^2`.
fn fill_ab<T: Real>(v: &DMatrix<T>, ws: &mut NmfWorkspace<T>, beta: f64) {
    let floor = T::EPS * T::EPS;
    let e2 = Power::of(beta - 2.0);
    let (wh, a, b) = (ws.wh.as_slice(), ws.a.as_mut_slice(), ws.b.as_mut_slice());
    let v = v.as_slice();
    if beta == 1.0 {
        for ((a, &x), &y) in a.iter_mut().zip(v).zip(wh) {
            *a = x / y.max(floor);
        }
    } else {
        for (((a, b), &x), &y) in a.iter_mut().zip(b.iter_mut()).zip(v).zip(wh) {
            let y = y.max(floor);
            let t = e2.apply(y);
            *a = x * t;
            *b = t * y;
        }
    }
}

fn factor(config: &NmfConfig, e: &EntrySurrogate) -> f64 {
    match config.rule {
        Rule::Mm => e.mm().0,
        Rule::Heuristic => e.heuristic(),
        Rule::Me => e.me_relaxed(config.me_theta).0,
    }
}

/// One update of `H` (all entries at once) with `W` fixed: `H <- H o factor(N, D)`
/// (module doc of [`crate::nmf`]). Checks shapes and the configuration; the data checks
/// of [`super::validate_inputs`] are the caller's (once, before iterating).
pub fn update_h<T: Real>(
    v: &DMatrix<T>,
    w: &DMatrix<T>,
    h: &mut DMatrix<T>,
    config: &NmfConfig,
    ws: &mut NmfWorkspace<T>,
) -> Result<()> {
    config.validate()?;
    check_shapes("nmf::update_h", v, w, h)?;
    ws.ensure(v.nrows(), v.ncols(), w.ncols())?;
    if config.sklearn_compatible {
        return sklearn::update_h(v, w, h, config, ws);
    }
    let beta = config.beta;
    let (k, n) = h.shape();
    if beta == 2.0 {
        gemm(&mut ws.num_h, w, Transpose::Yes, v, Transpose::No)?;
        gemm(&mut ws.gram, w, Transpose::Yes, w, Transpose::No)?;
        gemm(&mut ws.den_h, &ws.gram, Transpose::No, h, Transpose::No)?;
    } else {
        gemm(&mut ws.wh, w, Transpose::No, h, Transpose::No)?;
        fill_ab(v, ws, beta);
        gemm(&mut ws.num_h, w, Transpose::Yes, &ws.a, Transpose::No)?;
        if beta == 1.0 {
            for c in 0..k {
                ws.sums[c] = w.column(c).sum();
            }
        } else {
            gemm(&mut ws.den_h, w, Transpose::Yes, &ws.b, Transpose::No)?;
        }
    }
    let p = &config.penalties;
    for j in 0..n {
        for c in 0..k {
            let d = if beta == 1.0 {
                ws.sums[c]
            } else {
                ws.den_h[(c, j)]
            };
            let hv = h[(c, j)];
            let e = EntrySurrogate::new(
                beta,
                ws.num_h[(c, j)].to_f64(),
                d.to_f64(),
                hv.to_f64(),
                p.l1_h,
                p.l2_h,
            );
            h[(c, j)] = hv * T::of(factor(config, &e));
        }
    }
    Ok(())
}

/// One update of `W` with `H` fixed (the mirror image of [`update_h`] on
/// `V^T ~ H^T W^T`).
pub fn update_w<T: Real>(
    v: &DMatrix<T>,
    w: &mut DMatrix<T>,
    h: &DMatrix<T>,
    config: &NmfConfig,
    ws: &mut NmfWorkspace<T>,
) -> Result<()> {
    update_w_reduced(v, w, h, config, ws, &mut |_| Ok(()))
}

/// [`update_w`] for data whose columns are split over several processes: the sums over
/// columns that the `W` update needs (`num = (V o (WH)^(beta-2)) H^T` and the
/// denominator `(WH)^(beta-1) H^T`, or `H H^T` for beta = 2, or the row sums of `H` for
/// beta = 1) are first computed on the local columns, then handed to `reduce` (which
/// must replace each buffer by its sum over all processes, the same on every process),
/// then the update is applied; every process ends with the same `W`. With a no-op
/// `reduce` this is exactly [`update_w`]. In scikit-learn mode `reduce` is never called
/// (scikit-learn's update is single-process only; distributed callers reject that mode).
pub fn update_w_reduced<T: Real>(
    v: &DMatrix<T>,
    w: &mut DMatrix<T>,
    h: &DMatrix<T>,
    config: &NmfConfig,
    ws: &mut NmfWorkspace<T>,
    reduce: &mut dyn FnMut(&mut [T]) -> Result<()>,
) -> Result<()> {
    config.validate()?;
    check_shapes("nmf::update_w", v, w, h)?;
    ws.ensure(v.nrows(), v.ncols(), w.ncols())?;
    let beta = config.beta;
    if config.sklearn_compatible {
        return sklearn::update_w(v, w, h, config, ws);
    }
    let (f, k) = w.shape();
    if beta == 2.0 {
        gemm(&mut ws.num_w, v, Transpose::No, h, Transpose::Yes)?;
        gemm(&mut ws.gram, h, Transpose::No, h, Transpose::Yes)?;
        reduce(ws.num_w.as_mut_slice())?;
        reduce(ws.gram.as_mut_slice())?;
        gemm(&mut ws.den_w, w, Transpose::No, &ws.gram, Transpose::No)?;
    } else {
        gemm(&mut ws.wh, w, Transpose::No, h, Transpose::No)?;
        fill_ab(v, ws, beta);
        gemm(&mut ws.num_w, &ws.a, Transpose::No, h, Transpose::Yes)?;
        reduce(ws.num_w.as_mut_slice())?;
        if beta == 1.0 {
            for c in 0..k {
                ws.sums[c] = h.row(c).sum();
            }
            reduce(ws.sums.as_mut_slice())?;
        } else {
            gemm(&mut ws.den_w, &ws.b, Transpose::No, h, Transpose::Yes)?;
            reduce(ws.den_w.as_mut_slice())?;
        }
    }
    let p = &config.penalties;
    for c in 0..k {
        for i in 0..f {
            let d = if beta == 1.0 {
                ws.sums[c]
            } else {
                ws.den_w[(i, c)]
            };
            let wv = w[(i, c)];
            let e = EntrySurrogate::new(
                beta,
                ws.num_w[(i, c)].to_f64(),
                d.to_f64(),
                wv.to_f64(),
                p.l1_w,
                p.l2_w,
            );
            w[(i, c)] = wv * T::of(factor(config, &e));
        }
    }
    Ok(())
}

/// One iteration: [`update_w`] then [`update_h`] (in scikit-learn mode with its
/// zeroing of entries below f64 epsilon after each).
pub fn iterate<T: Real>(
    v: &DMatrix<T>,
    w: &mut DMatrix<T>,
    h: &mut DMatrix<T>,
    config: &NmfConfig,
    ws: &mut NmfWorkspace<T>,
) -> Result<()> {
    update_w(v, w, h, config, ws)?;
    update_h(v, w, h, config, ws)
}

/// The exact beta-divergence `D_beta(V | W H) = sum d_beta(v | [WH])` in f64
/// ([`crate::beta::divergence`] per entry; `+inf` or NaN if `WH` has zeros where the
/// divergence needs positive values).
pub fn divergence<T: Real>(
    v: &DMatrix<T>,
    w: &DMatrix<T>,
    h: &DMatrix<T>,
    beta: f64,
    ws: &mut NmfWorkspace<T>,
) -> Result<f64> {
    check_shapes("nmf::divergence", v, w, h)?;
    ws.ensure(v.nrows(), v.ncols(), w.ncols())?;
    gemm(&mut ws.wh, w, Transpose::No, h, Transpose::No)?;
    Ok((0..v.len())
        .map(|i| crate::beta::divergence(v[i].to_f64(), ws.wh[i].to_f64(), beta))
        .sum())
}

/// The objective the updates decrease: the divergence (scikit-learn's masked form
/// [`sklearn::sklearn_divergence`] in scikit-learn mode) plus the penalties.
pub fn objective<T: Real>(
    v: &DMatrix<T>,
    w: &DMatrix<T>,
    h: &DMatrix<T>,
    config: &NmfConfig,
    ws: &mut NmfWorkspace<T>,
) -> Result<f64> {
    config.validate()?;
    let d = if config.sklearn_compatible {
        sklearn::sklearn_divergence(v, w, h, config.beta, ws)?
    } else {
        divergence(v, w, h, config.beta, ws)?
    };
    Ok(d + config.penalties.value(w, h))
}
