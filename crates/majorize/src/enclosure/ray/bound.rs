//! Steps R3-R5 of the ray bound (docs/MAJORIZE.md, "The ray bound of a lower block"):
//! the chord/tangent terms at the last hidden layer's band, the deviation of the record
//! and of the exact objective from the anchored reference `ψ` through the layers above,
//! and the assembly. The shared pieces are the top block's (`top_block::terms`); the
//! squared-error loss's own terms (R3', R4') are in `mse`.

use autodiff::Transpose;
use nalgebra::DMatrix;

use nets::LossKind;

use super::sums::{self, SampleSums, SumBounds};
use super::{Parts, RayWorkspace, band, mse};
use crate::enclosure::api::OP;
use crate::enclosure::fp::{LIBM_ULPS, U64, dn, eta, gamma, up};
use crate::enclosure::top_block::bound::{Raw, check_targets, target_at, ua, um};
use crate::enclosure::top_block::terms::{
    driver_ce, grad_error, norm2_sq_upper, penalty_terms, quad_sample, row_sum_max, sums_term,
    unweighted_sum_finite, weight_up,
};
use crate::error::{MajorizeError, Result};
use crate::prod::gemm;

#[cfg(test)]
thread_local! {
    /// Test-only mutation knobs (absent from non-test builds).
    pub(crate) static KNOBS: std::cell::Cell<Knobs> = const { std::cell::Cell::new(Knobs {
        no_above_dev: false,
        tangent_for_chord: false,
        mse_half_curvature: false,
        mse_no_loss_dev: false,
        uncentred_r: false,
        centred_no_rad: false,
    }) };
}

/// Mutation knobs of the tests: drop the deviation terms of the layers above the block
/// (R4, `k >= 1`); use the tangent where the ReLU band needs the chord (R2); squared
/// error: halve the quadratic term (R3', as if the Hessian were `I/2`), drop the loss's
/// deviation at the logits (R4', `dev`); `R` by `|W_m| M` alone, as before session 19
/// (`uncentred_r`, a sound comparison point), or by the centre alone without its radius
/// (`centred_no_rad`, unsound).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Knobs {
    pub(crate) no_above_dev: bool,
    pub(crate) tangent_for_chord: bool,
    pub(crate) mse_half_curvature: bool,
    pub(crate) mse_no_loss_dev: bool,
    pub(crate) uncentred_r: bool,
    pub(crate) centred_no_rad: bool,
}

#[cfg(test)]
fn knobs() -> Knobs {
    KNOBS.with(|k| k.get())
}

#[cfg(not(test))]
#[inline(always)]
fn knobs() -> Knobs {
    Knobs::default()
}

fn infinite(value: f64) -> Raw {
    Raw {
        value,
        slope: 0.0,
        curvature: 0.0,
        slack: f64::INFINITY,
    }
}

/// The bound (module doc of `ray`; steps R1-R5 in the comments).
pub(crate) fn ray_bound(p: &Parts<'_>, value: Option<f64>, ws: &mut RayWorkspace) -> Result<Raw> {
    let m = p.above.len();
    let out = p.above[m - 1];
    let (kk, dh) = out.weight.shape();
    let (nin, n) = p.a_in.shape();
    let abar = p.alpha_max;
    check_targets(p.targets, kk, n)?;
    let kf = kk as f64;
    let (u, et) = (U64, eta(U64));
    let w = weight_up(p.loss, n);
    let kn = knobs();
    let mse = p.loss.kind == LossKind::Mse;
    let value_given = value.is_some();
    // R1, R2: anchors and band. The value at a = 0 from the anchored logits Ẑ0_m.
    let outcome = band::band(p, ws, kn.tangent_for_chord)?;
    if ws.grad.shape() != (kk, n) {
        ws.grad = DMatrix::zeros(kk, n);
    }
    let value = match (value, outcome) {
        (Some(v), _) => v,
        (None, band::Band::NoAnchors) => {
            return Err(MajorizeError::NonFinite {
                op: OP,
                what: "forward pass from the block",
                row: 0,
                col: 0,
            });
        }
        (None, _) => {
            let data0 = p
                .loss
                .value_and_output_grad(&ws.zh[m - 1], p.targets, &mut ws.grad)
                .map_err(|e| MajorizeError::Unsupported(format!("enclose_ray: loss: {e}")))?;
            data0 + p.net.weight_penalty(p.loss.l2)
        }
    };
    if outcome != band::Band::Fine {
        return Ok(infinite(value));
    }
    if value_given {
        p.loss
            .value_and_output_grad(&ws.zh[m - 1], p.targets, &mut ws.grad)
            .map_err(|e| MajorizeError::Unsupported(format!("enclose_ray: loss: {e}")))?;
    }
    let logits = &ws.zh[m - 1];
    if ws.c.shape() != (dh, n) {
        ws.c = DMatrix::zeros(dh, n);
    }
    // Ĉ = fl(W_mᵀ ĝ): its error bound (γ_K per entry) holds for any summation order.
    gemm(
        &mut ws.c,
        &out.weight,
        Transpose::Yes,
        &ws.grad,
        Transpose::No,
    )?;
    // The output layer's cm_j = max_k |W_m,kj| (the slope error's factor, R3).
    ws.cm.clear();
    ws.cm.extend((0..dh).map(|j| {
        (0..kk)
            .map(|k| out.weight[(k, j)].abs())
            .fold(0.0, f64::max)
    }));
    // R3, linear term: Σ Ĉ x, x = sU where Ĉ > 0 and sL where Ĉ < 0; M = max(|sL|, |sU|);
    // with each sample's sums of M, M², cm M and |A| (one vectorised pass, `sums`).
    if ws.mtop.shape() != (dh, n) {
        ws.mtop = DMatrix::zeros(dh, n);
    }
    ws.sums.clear();
    ws.sums.resize(n, SampleSums::default());
    let (lin, labs) = sums::band_sums(
        (
            ws.c.as_slice(),
            ws.sl[m - 1].as_slice(),
            ws.su[m - 1].as_slice(),
        ),
        &ws.cm,
        p.a_in.as_slice(),
        ws.mtop.as_mut_slice(),
        &mut ws.sums,
    );
    let lin_hi = sums::linear_upper(lin, labs, dh * n);
    // R3, quadratic: R = |W_m| M (one product, inflated per entry below).
    if ws.r.shape() != (kk, n) {
        ws.r = DMatrix::zeros(kk, n);
    }
    gemm(
        &mut ws.r,
        &ws.absw[m - 1],
        Transpose::No,
        &ws.mtop,
        Transpose::No,
    )?;
    // R3, centred (session 19): the last hidden layer's band as centre and radius, `W_m σ
    // ∈ μ ± rad` for every σ in [sL, sU] (R2's dense step, two K x N products), so
    // `|δ_k| <= a (|μ_k| + rad_k)` too: far tighter than `|W_m| M` where the band is
    // narrow and `W_m`'s terms cancel. Overwrites sL, sU (not read below).
    if !kn.uncentred_r {
        for b in [&mut ws.rmu, &mut ws.rrad] {
            if b.shape() != (kk, n) {
                *b = DMatrix::zeros(kk, n);
            }
        }
        band::dense_step(
            &out.weight,
            &ws.absw[m - 1],
            (&mut ws.sl[m - 1], &mut ws.su[m - 1]),
            (&mut ws.rmu, &mut ws.rrad),
        )?;
    }
    // Constants of the output layer and of each layer above (R4): ω_k, ρ_k, β_k.
    let nb2 = norm2_sq_upper(&out.weight, row_sum_max(&out.weight));
    // The block (step 1 of the top block): wa_max, bb_max, cdev.
    let dblk = p.w.nrows();
    let (mut wamax, mut bbmax) = (0.0f64, 0.0f64);
    for j in 0..dblk {
        let (mut mw, mut mv) = (0.0f64, 0.0f64);
        for c in 0..nin {
            mw = mw.max(p.w[(j, c)].abs());
            mv = mv.max(p.v[j + c * dblk].abs());
        }
        wamax = wamax.max(ua(mw, um(abar, mv)));
        bbmax = bbmax.max(ua(p.b[j].abs(), um(abar, p.beta[j].abs())));
    }
    let g4 = gamma(4, u);
    let cdev = ua(g4, um(gamma(nin + 1, u), ua(3.0, g4)));
    let gk = gamma(kk, u);
    let geps_p = gamma(2 * LIBM_ULPS as usize + kk + 2, u);
    let ln_k = up(kf.ln());
    let rf = up(1.0 + 2.0 * gamma(dh + 1, u));
    let r_eta = (dh as f64 + 1.0) * et;
    let exp_f = dn(1.0 - 2.0 * LIBM_ULPS * u);
    let bounds = SumBounds::new(dh, nin);
    // One buffer: (ω_k, ρ_k, β_k) per layer above, then the K-sized scratch of the
    // per-sample quadratic factor (taken after the last `?`, so an error keeps it in `ws`).
    let mut lay = std::mem::take(&mut ws.col2);
    lay.clear();
    for k in 1..=m {
        let wk = &p.above[k - 1];
        let om = wk.weight.iter().fold(0.0f64, |a, x| a.max(x.abs()));
        let bm = wk.bias.iter().fold(0.0f64, |a, x| a.max(x.abs()));
        lay.extend([om, row_sum_max(&wk.weight), bm]);
    }
    let kbuf = 5 * kk + 2;
    let base = lay.len();
    lay.resize(base + kbuf, 0.0);
    let (consts, scratch) = lay.split_at_mut(base);
    let (rkb, rest) = scratch.split_at_mut(kk);
    let (lob, rest) = rest.split_at_mut(kk);
    let (eb, rest) = rest.split_at_mut(kk);
    let (pre, suf) = rest.split_at_mut(kk + 1);
    let (mut slope_err, mut err_d, mut lsum, mut quad) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    // Σ_s of the per-sample magnitudes without the weight: nets sums the samples' losses
    // before the product by 1/N (review19's finding 1), so that sum must not overflow.
    let mut lraw = 0.0f64;
    for s in 0..n {
        let ys: f64 = if mse {
            0.0
        } else {
            (0..kk).fold(0.0, |a, k| ua(a, target_at(p.targets, k, s).abs()))
        };
        // R3: Ĉ's error (nets' gradient at exactly ψ's logits at 0: dz = 0).
        let eps_c = if mse {
            mse::grad_error(&ws.grad, s)
        } else {
            grad_error(logits, &ws.grad, s, ys, 0.0, w, geps_p, gk)
        };
        let SampleSums { sc, p1, q, alpha } = bounds.apply(ws.sums[s]);
        slope_err = ua(slope_err, ua(um(eps_c, sc), um(kf * et, p1)));
        // R3: quadratic factor over the box Ẑ0_m ± ā R.
        let mut rmax = 0.0f64;
        for (k, r) in rkb.iter_mut().enumerate() {
            *r = ua(um(ws.r[(k, s)], rf), r_eta);
            if !kn.uncentred_r {
                // The smaller of the two rigorous bounds (a NaN centred one is ignored).
                let rad = if kn.centred_no_rad {
                    0.0
                } else {
                    ws.rrad[(k, s)]
                };
                let centred = ua(ws.rmu[(k, s)].abs(), rad);
                if centred < *r {
                    *r = centred;
                }
            }
            rmax = rmax.max(*r);
        }
        let zc = logits.column(s);
        if mse {
            // R3': the exact Hessian w I.
            let qf = if kn.mse_half_curvature { 0.5 } else { 1.0 };
            quad = ua(quad, um(w, qf * mse::quad(nb2, q, rkb)));
        } else {
            let boh = um(um(0.25, nb2), q);
            let qs = quad_sample(
                zc,
                rkb,
                0.0,
                abar,
                boh,
                (&mut *lob, &mut *eb, &mut *pre, &mut *suf),
                exp_f,
                et,
            );
            quad = ua(quad, um(um(w, ys), qs));
        }
        // R4: e_0 (the block, step 1), then layer by layer.
        let alpha_s = alpha;
        let ez = um(
            et,
            ua(ua(alpha_s, 1.0), um(nin as f64 + 1.0, ua(3.0, abar))),
        );
        let mut e = ua(um(cdev, ua(um(wamax, alpha_s), bbmax)), ez);
        for k in 1..=m {
            let (om, rho, bm) = (
                consts[3 * (k - 1)],
                consts[3 * (k - 1) + 1],
                consts[3 * (k - 1) + 2],
            );
            let d = ws.act[k - 1].nrows();
            let (h1, m1) = (ws.col[(k - 1) * n + s], ws.col[(m + k - 1) * n + s]);
            let gk_ = gamma(d + 1, u);
            let inner = ua(ua(um(2.0, h1), um(abar, m1)), um(d as f64, e));
            let own = ua(
                um(gk_, ua(um(om, inner), um(2.0, bm))),
                2.0 * (d as f64 + 2.0) * et,
            );
            e = if kn.no_above_dev {
                um(rho, e)
            } else {
                ua(um(rho, e), own)
            };
        }
        if mse {
            // R4' at the logits: the loss moves by <= w e Σ t_k; the driver's evaluation.
            let (dev, drv, lup) = mse::deviation(logits, p.targets, s, rkb, abar, e);
            let dev = if kn.mse_no_loss_dev { 0.0 } else { dev };
            err_d = ua(err_d, um(w, ua(dev, drv)));
            lsum = ua(lsum, um(w, lup));
            lraw = ua(lraw, lup);
            continue;
        }
        // R4 at the logits: the loss moves by <= 2 w Y_s e; the driver's evaluation with
        // z_s = ‖Ẑ0_m,s‖_∞ + ā ‖R_s‖_∞ + e.
        let z0m = zc.iter().fold(0.0f64, |a, x| a.max(x.abs()));
        let zm = ua(ua(z0m, um(abar, rmax)), e);
        let drv = driver_ce(ys, zm, kk, ln_k);
        err_d = ua(err_d, um(w, ua(um(2.0 * ys, e), drv)));
        let mag = um(ys, ua(ua(um(2.0, zm), ln_k), 1.0));
        lsum = ua(lsum, um(w, mag));
        lraw = ua(lraw, mag);
    }
    ws.col2 = lay;
    // R5: penalty (the block's tensors move), the driver's sums, assembly.
    let blocks: [(&[f64], &[f64], bool); 2] = [
        (p.w.as_slice(), p.v, p.w_penalised),
        (p.b.as_slice(), p.beta, p.b_penalised),
    ];
    let pen = penalty_terms(p.net, p.loss.l2, abar, blocks);
    let sums = sums_term(p.targets, p.loss.kind, n, kk, lsum, pen.pen_max, value);
    let err = ua(ua(err_d, pen.pe), sums);
    let mut slack = um(2.0, err);
    let slope = ua(ua(lin_hi, slope_err), pen.slope);
    let curvature = ua(quad, pen.curv);
    if !(slack.is_finite()
        && slope.is_finite()
        && curvature.is_finite()
        && unweighted_sum_finite(lraw, n, kk))
    {
        slack = f64::INFINITY;
    }
    Ok(Raw {
        value,
        slope,
        curvature,
        slack,
    })
}
