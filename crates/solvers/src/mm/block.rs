//! The block-MM solver on an MLP ([`BlockMm`]); maths in the [`crate::mm`] module doc.

use autodiff::Real;
use nalgebra::{Cholesky, DMatrix};
use nets::CurvatureBound;
use serde::{Deserialize, Serialize};

use super::certified_block::{CertBuffers, certified_block};
use super::config::{BlockMmConfig, MmBlocks};
use super::workspace::{Workspace, dense};
use crate::{Context, NetProblem, Solver, SolverError, StepReport};

/// Checkpointed state: which hidden-block path wrote it (`certified`), sweeps done, the
/// last accepted curvature of each block (0 = none yet), the power-iteration vectors and
/// the certified path's trust region per block (0 = not set yet). `certified` has no
/// serde default: a checkpoint written before the certified path became the default
/// (when `block-mm` meant the safeguarded path) lacks it and loads as a typed error
/// instead of silently continuing on the other path.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
struct BlockMmState {
    certified: bool,
    sweeps: u64,
    curvature: Vec<f64>,
    power: Vec<Vec<f64>>,
    trust: Vec<f64>,
}

/// Block majorization-minimization of an MLP's training objective, full batch; one step
/// is one sweep over the blocks `(W_l, b_l)` (see [`crate::mm`] for the maths, the
/// guarantee and what is not certified). Build it with [`BlockMmConfig::build`].
#[derive(Debug)]
pub struct BlockMm<T: Real> {
    cfg: BlockMmConfig,
    st: BlockMmState,
    ws: Option<Workspace<T>>,
    cert: CertBuffers<T>,
}

/// What one block's backtracking did.
struct BlockOutcome {
    accepted: bool,
    curvature: f64,
    structural: f64,
    trials: usize,
    model: f64,
    /// Certified steps taken (0 on the safeguarded path).
    cert_steps: usize,
    /// Enclosures computed for this block (certified path tried).
    enclosures: usize,
    /// Of those, chord/tangent bounds (`top_block_bound`, `lower_block_bound`).
    rays: usize,
    /// Bounds that failed with an error other than `Unsupported` (see `CertOutcome`).
    bound_errors: usize,
}

impl<T: Real> BlockMm<T> {
    pub(crate) fn from_config(cfg: BlockMmConfig) -> Self {
        BlockMm {
            st: BlockMmState {
                certified: cfg.certified,
                ..Default::default()
            },
            cfg,
            ws: None,
            cert: CertBuffers::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BlockMmConfig {
        &self.cfg
    }

    /// Makes the next sweep recompute its starting trace (tests of the kept trace).
    #[cfg(test)]
    pub(crate) fn forget_trace(&mut self) {
        if let Some(ws) = self.ws.as_mut() {
            ws.forget_trace();
        }
    }

    fn prepare(&mut self, problem: &NetProblem<T>) -> Result<(), SolverError> {
        let n = problem.train.len();
        let fits = self.ws.as_ref().is_some_and(|ws| {
            ws.a[0].ncols() == n
                && problem
                    .net
                    .mlp_view()
                    .is_ok_and(|v| v.widths == ws.widths && v.activations == ws.acts)
        });
        if fits {
            return Ok(());
        }
        let mut ws = Workspace::new(&problem.net, n)?;
        ws.half_gram = !self.cfg.certified;
        let classes = ws.widths[ws.layers];
        if let CurvatureBound::NotSmooth = problem.loss.curvature_bound(classes) {
            return Err(SolverError::config(
                "BlockMM",
                "loss",
                "MulticlassHinge",
                "has no quadratic curvature bound (use MSE, softmax cross-entropy or logistic)",
            ));
        }
        if self.st.curvature.len() != ws.layers {
            self.st.curvature = vec![0.0; ws.layers];
        }
        if self.st.trust.len() != ws.layers {
            self.st.trust = vec![0.0; ws.layers];
        }
        self.cert.prepare(&problem.net, &ws.widths);
        if self.st.power.len() == ws.layers {
            for (p, v) in ws.power.iter_mut().zip(&self.st.power) {
                let v: Vec<T> = v.iter().map(|x| T::of(*x)).collect();
                p.set_vector(&v)?;
            }
        }
        self.ws = Some(ws);
        Ok(())
    }

    /// One block: backtracking on the curvature of the quadratic model (module doc).
    #[allow(clippy::too_many_arguments)]
    fn block(
        cfg: &BlockMmConfig,
        ws: &mut Workspace<T>,
        cert: &mut CertBuffers<T>,
        problem: &mut NetProblem<T>,
        ctx: &mut Context,
        i: usize,
        f: &mut f64,
        remembered: f64,
        trust: &mut f64,
        beta_w: f64,
    ) -> Result<BlockOutcome, SolverError> {
        let last = ws.layers - 1;
        let l2 = problem.loss.l2;
        let n = problem.train.len();
        ws.backprop_to(&problem.net, i)?;
        ctx.counters.add_backward(n);
        {
            let d = dense(&problem.net, i)?;
            ws.w_old[i].copy_from(&d.weight);
            ws.b_old[i].copy_from(&d.bias);
        }
        let w_old = std::mem::replace(&mut ws.w_old[i], DMatrix::zeros(0, 0));
        let res = ws.block_gradient(&w_old, l2, i);
        ws.w_old[i] = w_old;
        res?;
        // Structural curvature: w beta prod_{k>i} (||W_k||_* Lip(h_{k-1}))^2.
        let structural = if i == last {
            beta_w
        } else {
            let mut s = beta_w;
            for k in i + 1..ws.layers {
                let w = &dense(&problem.net, k)?.weight;
                let sig = ws.power[k].estimate(w, cfg.power_iterations, cfg.safety)?;
                s *= (sig * ws.lips[k - 1]).powi(2);
            }
            s
        };
        let mut curv = if i == last {
            beta_w
        } else if remembered > 0.0 {
            remembered * cfg.decrease
        } else {
            structural * cfg.initial_scale
        };
        if !(curv > 0.0 && curv.is_finite()) {
            // A zero layer above (structural bound 0): any positive start works.
            curv = beta_w.max(f64::MIN_POSITIVE);
        }
        let din = ws.widths[i];
        let dim = din + 1;
        let trace_m: f64 = (0..dim).map(|r| ws.gram[i][(r, r)].to_f64()).sum::<f64>() / dim as f64;
        let tol = 8.0 * T::EPS.to_f64() * f.abs().max(1.0);
        let (mut enclosures, mut rays, mut bound_errors) = (0, 0, 0);
        if cfg.certified && i != last {
            // The direction: the MM step at the structural curvature (a fixed scale, so
            // that the trust region, in units of it, carries over between sweeps).
            let c_ref = if structural > 0.0 && structural.is_finite() {
                structural * cfg.initial_scale
            } else {
                curv
            };
            if *trust <= 0.0 {
                *trust = cfg.certified_trust_region;
            }
            ctx.counters.inner_solves += 1;
            let ridge = cfg.certified_ridge;
            if Self::solve_at(ws, i, c_ref, l2, ridge, trace_m).is_some() {
                let out = certified_block(cfg, ws, cert, problem, ctx, i, f, trust)?;
                (enclosures, rays, bound_errors) = (out.enclosures, out.rays, out.bound_errors);
                if out.steps > 0 {
                    return Ok(BlockOutcome {
                        accepted: true,
                        // The curvature whose plain MM step is the step taken.
                        curvature: c_ref / out.alpha,
                        structural,
                        trials: 0,
                        model: out.bound,
                        cert_steps: out.steps,
                        enclosures,
                        rays,
                        bound_errors,
                    });
                }
            }
        }
        let mut trials = 0;
        while trials < cfg.max_trials {
            trials += 1;
            ctx.counters.inner_solves += 1;
            if Self::solve_at(ws, i, curv, l2, cfg.ridge, trace_m).is_none() {
                curv *= cfg.increase;
                continue;
            }
            // Model value at its minimiser D = -X^T: f - (1/2) <G^T, X>.
            let model = *f - 0.5 * ws.rhs[i].dot(&ws.sol[i]).to_f64();
            {
                let d = problem.net.dense_mut(i).ok_or_else(|| {
                    SolverError::Problem(format!("BlockMM: dense layer {i} is missing"))
                })?;
                let (sol, wo, bo) = (&ws.sol[i], &ws.w_old[i], &ws.b_old[i]);
                for o in 0..d.weight.nrows() {
                    for r in 0..din {
                        d.weight[(o, r)] = wo[(o, r)] - sol[(r, o)];
                    }
                    d.bias[o] = bo[o] - sol[(din, o)];
                }
            }
            ws.forward_trial(&problem.net, i)?;
            let data = ws.data_term(&problem.loss, problem.train.targets(), true)?;
            ctx.counters.add_forward(n);
            let f_new = data + problem.net.weight_penalty(l2);
            if f_new.is_finite() && f_new <= model + tol && f_new <= *f {
                ws.accept_trial(i);
                *f = f_new;
                return Ok(BlockOutcome {
                    accepted: true,
                    curvature: curv,
                    structural,
                    trials,
                    model,
                    cert_steps: 0,
                    enclosures,
                    rays,
                    bound_errors,
                });
            }
            curv *= cfg.increase;
        }
        // No trial accepted: restore the block.
        let d = problem
            .net
            .dense_mut(i)
            .ok_or_else(|| SolverError::Problem(format!("BlockMM: dense layer {i} is missing")))?;
        d.weight.copy_from(&ws.w_old[i]);
        d.bias.copy_from(&ws.b_old[i]);
        Ok(BlockOutcome {
            accepted: false,
            curvature: curv,
            structural,
            trials,
            model: *f,
            cert_steps: 0,
            enclosures,
            rays,
            bound_errors,
        })
    }

    /// Solves `(curv M + l2 P + r I) X = G^T` into `ws.sol[i]`, with
    /// `r = rel_ridge * curv * tr(M)/dim` (the MM step is
    /// `D = -X^T`); `None` if the matrix is not positive definite. The first layer's
    /// factors are reused across sweeps ([`Workspace::solve_cached`]): its `M` depends
    /// only on the data, and backtracking visits the same curvatures again (the start
    /// `decrease * L` and the trials `increase^j` times it are exact binary multiples
    /// with the default factors 1/2 and 2).
    fn solve_at(
        ws: &mut Workspace<T>,
        i: usize,
        curv: f64,
        l2: f64,
        rel_ridge: f64,
        trace_m: f64,
    ) -> Option<()> {
        let din = ws.widths[i];
        let dim = din + 1;
        // H = curv M + l2 P + ridge I (P: identity on the weight rows, 0 on the bias).
        let ridge = rel_ridge * curv * trace_m.max(f64::MIN_POSITIVE);
        let key = [curv.to_bits(), l2.to_bits(), ridge.to_bits()];
        if ws.solve_cached(i, key) {
            return Some(());
        }
        let mut h = std::mem::replace(&mut ws.h[i], DMatrix::zeros(0, 0));
        if h.shape() != (dim, dim) {
            h = DMatrix::zeros(dim, dim);
        }
        let c = T::of(curv);
        h.zip_apply(&ws.gram[i], |hv, g| *hv = c * g);
        for r in 0..dim {
            h[(r, r)] += T::of(ridge + if r < din { l2 } else { 0.0 });
        }
        let Some(chol) = Cholesky::new(h) else {
            ws.h[i] = DMatrix::zeros(dim, dim);
            return None;
        };
        ws.sol[i].copy_from(&ws.rhs[i]);
        chol.solve_mut(&mut ws.sol[i]);
        ws.keep_factor(i, key, chol);
        Some(())
    }
}

impl<T: Real> Solver<NetProblem<T>> for BlockMm<T> {
    fn name(&self) -> String {
        match self.cfg.blocks {
            MmBlocks::AllLayers => "BlockMM".into(),
            MmBlocks::LastLayer => "LastLayerMM".into(),
        }
    }

    fn init(&mut self, problem: &mut NetProblem<T>, _ctx: &mut Context) -> Result<(), SolverError> {
        self.st = BlockMmState {
            certified: self.cfg.certified,
            ..Default::default()
        };
        self.ws = None;
        self.prepare(problem)
    }

    fn step(
        &mut self,
        problem: &mut NetProblem<T>,
        ctx: &mut Context,
    ) -> Result<StepReport, SolverError> {
        self.prepare(problem)?;
        let cfg = self.cfg.clone();
        let Some(ws) = self.ws.as_mut() else {
            return Err(SolverError::Problem("BlockMM: workspace missing".into()));
        };
        let n = problem.train.len();
        // Counted as one forward pass whether computed or kept from the last sweep (the
        // unit counts the algorithm's touches of the data: docs/RESULTS_SCHEMA.md).
        let data = ws.start_sweep(&problem.net, &problem.train, &problem.loss)?;
        ctx.counters.add_forward(n);
        let mut f = data + problem.net.weight_penalty(problem.loss.l2);
        if !f.is_finite() {
            return Err(SolverError::NonFinite(format!(
                "BlockMM: objective {f} at the start of sweep {}",
                self.st.sweeps + 1
            )));
        }
        let f_start = f;
        let classes = ws.widths[ws.layers];
        let beta = problem
            .loss
            .curvature_bound(classes)
            .max_eigenvalue()
            .unwrap_or(f64::NAN);
        let beta_w = beta * problem.loss.sample_weight(n);
        let last = ws.layers - 1;
        let first = match cfg.blocks {
            MmBlocks::AllLayers => 0,
            MmBlocks::LastLayer => last,
        };
        let mut report = StepReport::new();
        let mut rejected = 0.0;
        let mut model = f;
        for i in (first..=last).rev() {
            let out = Self::block(
                &cfg,
                ws,
                &mut self.cert,
                problem,
                ctx,
                i,
                &mut f,
                self.st.curvature[i],
                &mut self.st.trust[i],
                beta_w,
            )?;
            if out.accepted {
                self.st.curvature[i] = out.curvature;
                model = out.model;
            } else {
                rejected += 1.0;
            }
            report = report
                .with(&format!("curvature_{i}"), out.curvature)
                .with(&format!("structural_{i}"), out.structural)
                .with(&format!("trials_{i}"), out.trials as f64)
                .with(
                    &format!("path_{i}"),
                    if out.cert_steps > 0 { 1.0 } else { 0.0 },
                );
            if cfg.certified && i != last {
                report = report
                    .with(&format!("cert_steps_{i}"), out.cert_steps as f64)
                    .with(&format!("enclosures_{i}"), out.enclosures as f64)
                    .with(&format!("trust_{i}"), self.st.trust[i])
                    .with(&format!("bound_errors_{i}"), out.bound_errors as f64);
                if cfg.top_block_bound || cfg.lower_block_bound {
                    report = report.with(&format!("rays_{i}"), out.rays as f64);
                }
            }
        }
        for k in first..=last {
            let d = dense(&problem.net, k)?;
            if !(d.weight.iter().all(|v| v.finite()) && d.bias.iter().all(|v| v.finite())) {
                return Err(SolverError::NonFinite(format!(
                    "BlockMM: layer {k} weights"
                )));
            }
        }
        ws.keep_trace(&problem.net, &problem.loss)?;
        self.st.sweeps += 1;
        self.st.power = ws
            .power
            .iter()
            .map(|p| p.vector().iter().map(|v| v.to_f64()).collect())
            .collect();
        Ok(report
            .with_surrogate(model)
            .with("objective_start", f_start)
            .with("decreased", if f < f_start { 1.0 } else { 0.0 })
            .with("rejected_blocks", rejected))
    }

    fn save_state(&self) -> serde_json::Value {
        serde_json::to_value(&self.st).unwrap_or(serde_json::Value::Null)
    }

    fn load_state(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        let st: BlockMmState = serde_json::from_value(v.clone())?;
        if st.certified != self.cfg.certified {
            let path = |c: bool| if c { "certified" } else { "safeguarded" };
            return Err(SolverError::Checkpoint(format!(
                "BlockMM: the checkpoint was written on the {} hidden-block path, this solver takes the {} path (`certified` = {})",
                path(st.certified),
                path(self.cfg.certified),
                self.cfg.certified
            )));
        }
        use crate::state_check::{check_count, check_finite, check_range};
        check_count("BlockMM", "sweeps", st.sweeps)?;
        for (i, c) in st.curvature.iter().enumerate() {
            check_range("BlockMM", &format!("curvature[{i}]"), *c, 0.0, f64::MAX)?;
        }
        for (i, p) in st.power.iter().enumerate() {
            check_finite("BlockMM", &format!("power[{i}]"), p)?;
        }
        for (i, t) in st.trust.iter().enumerate() {
            check_range("BlockMM", &format!("trust[{i}]"), *t, 0.0, f64::MAX)?;
        }
        self.st = st;
        self.ws = None;
        Ok(())
    }

    /// One curvature per dense layer and one power-iteration vector of the layer's input
    /// width per dense layer (what `prepare` would otherwise silently reset).
    fn check_state(&self, problem: &NetProblem<T>) -> Result<(), SolverError> {
        use crate::state_check::check_len;
        let widths = problem.net.mlp_view()?.widths;
        let layers = widths.len().saturating_sub(1);
        check_len("BlockMM", "curvature", layers, self.st.curvature.len())?;
        check_len("BlockMM", "power", layers, self.st.power.len())?;
        check_len("BlockMM", "trust", layers, self.st.trust.len())?;
        for (i, p) in self.st.power.iter().enumerate() {
            check_len("BlockMM", &format!("power[{i}]"), widths[i], p.len())?;
        }
        Ok(())
    }
}
