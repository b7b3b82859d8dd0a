//! The certified path of block MM's hidden blocks (maths in the [`crate::mm`] module doc):
//! certified steps along the block's preconditioned MM direction, each chosen by
//! minimising the enclosure's 1-D bound over an adaptive trust region.

use autodiff::{Real, Transpose};
use majorize::MajorizeError;
use majorize::enclosure::{
    EnclosureRequest, EnclosureWorkspace, FromLayer, RayBound, RayWorkspace, TopBlockWorkspace,
    enclose_from_layer, enclose_ray_with, enclose_top_block,
};
use nalgebra::DVector;

use super::config::BlockMmConfig;
use super::workspace::Workspace;
use crate::linalg::gemm;
use crate::{Context, NetProblem, SolverError};

/// Trust-region factors of the certified path (as the safe-* solvers' defaults): grow
/// when the step reaches half the region, shrink otherwise or when nothing is certified.
const GROW: f64 = 2.0;
const SHRINK: f64 = 0.5;
/// The trust region stays in `[TRUST_MIN, TRUST_MAX]` (units of the structural MM step).
const TRUST_MIN: f64 = 1e-12;
const TRUST_MAX: f64 = 1e12;

/// Buffers of the certified path, kept across sweeps so that a sweep allocates nothing
/// on this side at steady state: the flat direction (zero outside the block), the flat
/// offsets of each dense layer's weight and bias and its index in the network's layers,
/// and the enclosure engine's workspace.
#[derive(Debug, Default)]
pub(crate) struct CertBuffers<T: Real> {
    dir: Vec<DVector<T>>,
    /// Per dense layer: flat offsets of its weight (column-major) and bias, and its
    /// index in `net.layers()`, if the layout is the plain `d_out x d_in` weight and
    /// `d_out` bias.
    offsets: Vec<Option<(usize, usize, usize)>>,
    enc: EnclosureWorkspace,
    /// Buffers of the top block's chord/tangent bound and of the ray bound (the lower
    /// blocks; the top one too with `top_block_ray`).
    top: TopBlockWorkspace,
    ray: RayWorkspace,
    /// Per block: its part of the direction as a `d_out x d_in` matrix, and its product
    /// with the block's input plus the bias part (`T = f64` only; see `dir_product`).
    /// One pair per block, since one shared pair would be reallocated at every block
    /// whose shape differs from the last one's.
    dw: Vec<nalgebra::DMatrix<T>>,
    vz: Vec<nalgebra::DMatrix<T>>,
}

impl<T: Real> CertBuffers<T> {
    /// Reads the parameter layout of `net` (once per workspace).
    pub fn prepare(&mut self, net: &nets::Sequential<T>, widths: &[usize]) {
        let p = net.num_params();
        let layout = net.param_layout();
        let mut layers: Vec<usize> = layout.iter().map(|t| t.layer).collect();
        layers.dedup();
        self.offsets = (0..widths.len().saturating_sub(1))
            .map(|i| {
                let layer = *layers.get(i)?;
                let find = |name: &str| layout.iter().find(|t| t.layer == layer && t.name == name);
                let (w, b) = (find("weight")?, find("bias")?);
                let (din, dout) = (widths[i], widths[i + 1]);
                (w.rows == dout && w.cols == din && b.rows * b.cols == dout)
                    .then_some((w.offset, b.offset, layer))
            })
            .collect();
        if self.dir.len() != 1 || self.dir[0].len() != p {
            self.dir = vec![DVector::zeros(p)];
        }
    }
}

/// What the certified path did to one block.
pub(crate) struct CertOutcome {
    /// Certified steps taken; 0 when none was (the block and `f` are unchanged).
    pub steps: usize,
    /// Enclosures computed (each counted as one forward pass).
    pub enclosures: usize,
    /// Of those, chord/tangent bounds (the top block's or a lower block's ray bound).
    pub rays: usize,
    /// Bounds that failed with an error other than `Unsupported`: a chord/tangent bound
    /// (replaced by the Taylor enclosure for that call, and counted as one forward pass
    /// of its own), or a Taylor enclosure (which ends the block's certified steps).
    pub bound_errors: usize,
    /// Sum of the step sizes, in units of the structural MM step.
    pub alpha: f64,
    /// The certified bound of the last step (an upper bound on the new objective).
    pub bound: f64,
}

/// Certified steps on hidden block `i` along `D = -ws.sol[i]^T` (the MM step at the
/// reference curvature, solved by the caller): up to `cfg.certified_steps` enclosures,
/// each of `phi(a) = F(Wb + a D)` on `[0, trust]`, taking the minimiser of the certified
/// bound if it certifies a decrease, and updating `trust` (grow x2 if the step reached
/// half of it, shrink x1/2 otherwise); it stops after a step inside the region (the
/// bound's minimum on the ray) or an uncertified one after a step (before the first
/// step, an uncertified enclosure is retried on the shrunk region, unless its slack
/// exceeds the first-order decrease `-g trust`). Then one forward pass from the
/// block up makes the new point current. `steps == 0` (block and `f` unchanged) when
/// the enclosure does not apply or no step was certified. Each enclosure runs from the
/// block's kept input `ws.a[i]` up (`enclose_from_layer`: the direction is zero below)
/// and is counted as one forward pass over the N samples, like the forward pass at the
/// end.
#[allow(clippy::too_many_arguments)]
pub(crate) fn certified_block<T: Real>(
    cfg: &BlockMmConfig,
    ws: &mut Workspace<T>,
    cert: &mut CertBuffers<T>,
    problem: &mut NetProblem<T>,
    ctx: &mut Context,
    i: usize,
    f: &mut f64,
    trust: &mut f64,
) -> Result<CertOutcome, SolverError> {
    let n = problem.train.len();
    let none = CertOutcome {
        steps: 0,
        enclosures: 0,
        rays: 0,
        bound_errors: 0,
        alpha: 0.0,
        bound: *f,
    };
    let Some(&Some((w_off, b_off, layer))) = cert.offsets.get(i) else {
        return Ok(none);
    };
    if cert.dir.len() != 1 || cert.dir[0].len() != problem.net.num_params() {
        return Ok(none);
    }
    let (din, dout) = (ws.widths[i], ws.widths[i + 1]);
    let dir = &mut cert.dir[0];
    dir.fill(T::zero());
    let sol = &ws.sol[i];
    for r in 0..din {
        for o in 0..dout {
            dir[w_off + r * dout + o] = -sol[(r, o)];
        }
    }
    for o in 0..dout {
        dir[b_off + o] = -sol[(din, o)];
    }
    if !dir.iter().all(|v| v.finite()) {
        return Ok(none);
    }
    let has_vz = dir_product(cert, ws, i, (w_off, b_off))?;
    // Block `i` is the top hidden block when one dense layer (the output) follows it;
    // `enclose_top_block` checks the rest (ReLU, the loss, f64) and declines otherwise,
    // as `enclose_ray_with` does for a lower block.
    let top = cfg.top_block_bound && i + 3 == ws.widths.len();
    // The ray bound: the lower blocks with `lower_block_bound`, the top one with
    // `top_block_ray` (the ray's `m = 1` case) unless the chord/tangent bound has it.
    let by_ray = (cfg.lower_block_bound && i + 3 < ws.widths.len())
        || (cfg.top_block_ray && !top && i + 3 == ws.widths.len());
    let (mut steps, mut alpha, mut bound, mut enclosures, mut rays) = (0, 0.0, *f, 0, 0);
    let mut bound_errors = 0;
    while enclosures < cfg.certified_steps {
        let t = *trust;
        let abar = [T::of(t)];
        let req = EnclosureRequest {
            net: &problem.net,
            loss: &problem.loss,
            inputs: problem.train.inputs(),
            targets: problem.train.targets(),
            directions: &cert.dir,
            alpha_max: &abar,
        };
        // The direction is zero below block i, so the enclosure starts at the block from
        // the trace's input `a[i]` (unchanged by the block's steps), which is also what
        // the forward pass below starts from: the bound covers that record. Before the
        // first step, the base value is `f` (the trace's record) and the block's output
        // `z[i]` saves its product; after a step both are stale, and the enclosure takes
        // its own base value (the slack covers the driver's value either way).
        let fresh = steps == 0;
        let from = FromLayer {
            layer,
            input: &ws.a[i],
            output: fresh.then_some(&ws.z[i]),
            output_dir: if has_vz { cert.vz.get(i) } else { None },
        };
        let value = fresh.then(|| T::of(*f));
        // The top block's chord/tangent bound where it applies, else the Taylor
        // enclosure. Where the chord/tangent bound does not apply (`Unsupported`) or
        // fails (any other error, counted in `bound_errors`), this call takes the Taylor
        // enclosure. Where that fails too (an unsupported layer, activation or loss, or
        // an error of the engine): this block keeps the safeguarded path, or stops where
        // the last certified step left it.
        let ray = if top {
            Some(enclose_top_block(&req, value, &from, &mut cert.top))
        } else if by_ray {
            // Before the first step the trace's pre-activations above the block are
            // those of the current weights, from `z[i]`: the bound's anchors (R1). After
            // a step they are stale, and the bound runs its own forward pass.
            let anchors = fresh.then(|| &ws.z[i + 1..]);
            #[cfg(test)]
            if anchors.is_some() {
                audit_anchors(&problem.net, problem.train.inputs(), ws);
            }
            Some(enclose_ray_with(&req, value, &from, anchors, &mut cert.ray))
        } else {
            None
        };
        #[cfg(test)]
        let ray = ray.map(|r| r.and_then(inject_bound_error));
        let ray = match ray {
            Some(Ok(rb)) => Some(rb),
            None | Some(Err(MajorizeError::Unsupported(_))) => None,
            Some(Err(_)) => {
                // Its work (often a band pass through the layers above before a check
                // failed) is counted as one forward pass, like the enclosure that
                // replaces it.
                ctx.counters.add_forward(n);
                bound_errors += 1;
                None
            }
        };
        let step = match ray {
            Some(rb) => {
                rays += 1;
                ray_step(&rb)?
            }
            None => {
                let enc = match enclose_from_layer(&req, value, &from, &mut cert.enc) {
                    Ok(enc) => enc,
                    Err(e) => {
                        if !matches!(e, MajorizeError::Unsupported(_)) {
                            bound_errors += 1;
                        }
                        break;
                    }
                };
                let s = crate::certified::choose_step(&enc, &[t], 1)?;
                Decision {
                    chord: false,
                    a: s.alpha[0],
                    certified: s.certified,
                    bound: s.bound,
                    slope: enc.gradient[0].to_f64(),
                    slack: enc.slack.to_f64(),
                }
            }
        };
        ctx.counters.add_forward(n);
        enclosures += 1;
        let a = step.a;
        let af = a.to_f64();
        let edge = step.certified && af >= 0.5 * t;
        *trust = if edge { t * GROW } else { t * SHRINK }.clamp(TRUST_MIN, TRUST_MAX);
        if !step.certified {
            // After a step, stop there. Before the first one, retry on the shrunk region
            // while enclosures remain, unless the slack alone exceeds the first-order
            // decrease `-g t` the whole region allows (`g` the bound's slope at `0+`): a
            // smaller region (with a nonnegative degree-2 bound) cannot certify more, so
            // retrying would only spend data passes (f32, once the decrease falls below
            // the rounding slack). That argument fails for the chord/tangent bound, whose
            // slope itself falls as the region shrinks (a chord across a kink where
            // `C > 0` can make it positive on `[0, t]` and negative on `[0, t/2]`): it is
            // always retried.
            let room = (step.chord || step.slack < -step.slope * t).then_some(());
            if steps > 0 || room.is_none() {
                break;
            }
            continue;
        }
        // fl(w + a v) entry by entry in T, no FMA: exactly `enclosure::apply_step`'s
        // rounding, which the enclosure's slack covers (entries outside the block have
        // v = 0 and are unchanged).
        let d = dense_mut(problem, i)?;
        let v = &cert.dir[0];
        for r in 0..din {
            for o in 0..dout {
                let w = &mut d.weight[(o, r)];
                *w += a * v[w_off + r * dout + o];
            }
        }
        for o in 0..dout {
            d.bias[o] += a * v[b_off + o];
        }
        steps += 1;
        alpha += af;
        bound = step.bound;
        if !edge {
            break;
        }
    }
    let mut out = CertOutcome {
        steps,
        enclosures,
        rays,
        bound_errors,
        alpha,
        bound,
    };
    if steps == 0 {
        return Ok(out);
    }
    ws.forward_trial(&problem.net, i)?;
    let data = ws.data_term(&problem.loss, problem.train.targets(), true)?;
    ctx.counters.add_forward(n);
    let f_new = data + problem.net.weight_penalty(problem.loss.l2);
    if !(f_new.is_finite() && f_new <= *f) {
        // Cannot happen under the certificate; kept as a guard: restore the block.
        #[cfg(test)]
        GUARD_RESTORES.with(|c| c.set(c.get() + 1));
        let d = dense_mut(problem, i)?;
        d.weight.copy_from(&ws.w_old[i]);
        d.bias.copy_from(&ws.b_old[i]);
        out.steps = 0;
        return Ok(out);
    }
    ws.accept_trial(i);
    *f = f_new;
    Ok(out)
}

/// One certified-step decision, from either bound: the step `a`, whether it is
/// certified, the bound at `a`, and the bound's slope at `0+` and slack (the retry test).
struct Decision<T: Real> {
    /// From the chord/tangent bound (its slope depends on the region).
    chord: bool,
    a: T,
    certified: bool,
    bound: f64,
    slope: f64,
    slack: f64,
}

/// The step of a chord/tangent bound ([`RayBound`]): its minimiser on `[0, alpha_max]`,
/// certified when the bound there lies strictly below `value - slack` rounded down (the
/// rule of [`crate::certified::choose_step`]: `value` may differ from the driver's
/// record by the slack).
fn ray_step<T: Real>(rb: &RayBound<T>) -> Result<Decision<T>, SolverError> {
    let a = rb.minimizer();
    let slope = rb.slope.to_f64();
    let slack = rb.slack.to_f64();
    let mut d = Decision {
        chord: true,
        a: T::zero(),
        certified: false,
        bound: rb.value.to_f64(),
        slope,
        slack,
    };
    if a <= T::zero() {
        return Ok(d);
    }
    let bound = rb
        .upper_bound(a)
        .map_err(|e| SolverError::Problem(format!("certified block MM: {e}")))?
        .to_f64();
    let floor = rb.value.to_f64() - slack;
    let floor = floor - floor.abs() * f64::EPSILON;
    if bound.is_finite() && bound < floor {
        d = Decision {
            chord: true,
            a,
            certified: true,
            bound,
            slope,
            slack,
        };
    }
    Ok(d)
}

/// For `T = f64`, forms `V a[i] + β` into `cert.vz[i]` (the direction's weight and bias
/// parts on block `i`, the block's kept input): every enclosure of the block along this
/// direction takes it instead of its own product (`FromLayer::output_dir`; one GEMM per
/// block instead of one per enclosure). Returns whether it was formed (not for f32,
/// where the enclosure would recompute it anyway).
fn dir_product<T: Real>(
    cert: &mut CertBuffers<T>,
    ws: &Workspace<T>,
    i: usize,
    (w_off, b_off): (usize, usize),
) -> Result<bool, SolverError> {
    if T::dtype_name() != "f64" {
        return Ok(false);
    }
    let (din, dout) = (ws.widths[i], ws.widths[i + 1]);
    let n = ws.a[i].ncols();
    let v = cert.dir[0].as_slice();
    if cert.dw.len() <= i {
        cert.dw
            .resize_with(i + 1, || nalgebra::DMatrix::zeros(0, 0));
        cert.vz
            .resize_with(i + 1, || nalgebra::DMatrix::zeros(0, 0));
    }
    let (dw, vz) = (&mut cert.dw[i], &mut cert.vz[i]);
    if dw.shape() != (dout, din) {
        *dw = nalgebra::DMatrix::zeros(dout, din);
    }
    dw.as_mut_slice()
        .copy_from_slice(&v[w_off..w_off + dout * din]);
    if vz.shape() != (dout, n) {
        *vz = nalgebra::DMatrix::zeros(dout, n);
    }
    gemm(vz, 1.0, dw, Transpose::No, &ws.a[i], Transpose::No, 0.0, 1)?;
    let beta = &v[b_off..b_off + dout];
    for col in vz.as_mut_slice().chunks_exact_mut(dout.max(1)) {
        for (x, b) in col.iter_mut().zip(beta) {
            *x += *b;
        }
    }
    Ok(true)
}

#[cfg(test)]
thread_local! {
    /// Test-only count of certified steps whose new objective was above the old one
    /// (the guard restored the block): a certificate violated.
    pub(crate) static GUARD_RESTORES: std::cell::Cell<usize> =
        const { std::cell::Cell::new(0) };
}

#[cfg(test)]
thread_local! {
    /// Test-only fault injection: while set, every chord/tangent bound that succeeded is
    /// replaced by a `Domain` error (the path a failed check of the bound takes).
    pub(crate) static FAIL_CHORD_BOUNDS: std::cell::Cell<bool> =
        const { std::cell::Cell::new(false) };
}

/// Test-only: the bound, or a `Domain` error while [`FAIL_CHORD_BOUNDS`] is set.
#[cfg(test)]
fn inject_bound_error<B>(b: B) -> Result<B, MajorizeError> {
    if FAIL_CHORD_BOUNDS.with(|c| c.get()) {
        Err(MajorizeError::Domain {
            op: "certified_block (test)",
            detail: "injected failure of a chord/tangent bound".into(),
        })
    } else {
        Ok(b)
    }
}

#[cfg(test)]
thread_local! {
    /// Test-only audit of the anchors handed to the ray bound: (calls, calls whose trace
    /// is not bit for bit the forward pass of the current weights on the current inputs).
    pub(crate) static ANCHOR_AUDIT: std::cell::Cell<(usize, usize)> =
        const { std::cell::Cell::new((0, 0)) };
}

/// Test-only: recomputes the forward pass of the current weights (and the network's own
/// activations) on the problem's inputs `x` and notes in [`ANCHOR_AUDIT`] whether the trace (`a[0]`, and `z[..]`: the
/// block's `Z0'` and the anchors above it) is bit for bit that pass.
#[cfg(test)]
fn audit_anchors<T: Real>(net: &nets::Sequential<T>, x: &nalgebra::DMatrix<T>, ws: &Workspace<T>) {
    let bits =
        |m: &nalgebra::DMatrix<T>| -> Vec<u64> { m.iter().map(|v| v.to_f64().to_bits()).collect() };
    let (mut h, mut z) = (x.clone(), nalgebra::DMatrix::zeros(0, 0));
    let acts = net.mlp_view().map(|v| v.activations).unwrap_or_default();
    let mut same = x.shape() == ws.a[0].shape() && bits(x) == bits(&ws.a[0]);
    for k in 0..ws.layers {
        let Some(d) = net.dense(k) else {
            same = false;
            break;
        };
        if d.forward_into(&h, &mut z).is_err() {
            same = false;
            break;
        }
        same &= z.shape() == ws.z[k].shape() && bits(&z) == bits(&ws.z[k]);
        if k + 1 < ws.layers {
            let Some(act) = acts.get(k) else {
                same = false;
                break;
            };
            act.apply_matrix(&z, &mut h);
        }
    }
    ANCHOR_AUDIT.with(|c| {
        let (n, bad) = c.get();
        c.set((n + 1, bad + usize::from(!same)));
    });
}

fn dense_mut<T: Real>(
    problem: &mut NetProblem<T>,
    i: usize,
) -> Result<&mut nets::Dense<T>, SolverError> {
    problem
        .net
        .dense_mut(i)
        .ok_or_else(|| SolverError::Problem(format!("BlockMM: dense layer {i} is missing")))
}
