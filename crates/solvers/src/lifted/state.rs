//! The lifted variables and the block-coordinate sweep (independent of the driver: the
//! [`super::Lifted`] solver wraps it).

use autodiff::{Real, Transpose};
use nalgebra::DMatrix;
use nets::{Activation, Loss, LossKind, Sequential, Targets};
use serde::{Deserialize, Serialize};

use super::WeightsMethod;
use super::blocks::{Metric, Term, WBlock, XBlock, affine_into, relu_penalty_sum};
use super::inner::{Apg, InnerStats};
use super::metric::WeightMetrics;
use super::newton::{HiddenW, Newton};
use crate::SolverError;
use crate::linalg::lambda_max_psd;

/// Which block a sweep just minimised (layers 1-based as in the paper).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockId {
    /// The weights and bias `(W_l, b_l)` of dense layer `l` (1..=L).
    Weights(usize),
    /// The hidden activation `X_l` (1..=L-1).
    Activations(usize),
}

/// Totals of one sweep.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SweepStats {
    /// Inner iterations over all blocks.
    pub iterations: usize,
    /// Backtracking trial evaluations over all blocks.
    pub trials: usize,
    /// Blocks whose inner solve hit its iteration cap before the tolerance.
    pub unconverged: usize,
    /// Blocks whose inner solve stopped with no further decrease to rounding before the
    /// tolerance ([`InnerStats::stalled`]).
    pub stalled: usize,
    /// Blocks solved.
    pub blocks: usize,
}

/// Lifted variables of an L-layer ReLU MLP: `(W_l, b_l)` for `l = 1..L` and the hidden
/// activations `X_l >= 0` (`d_l x N`) for `l = 1..L-1`, plus solver scratch.
///
/// Memory: the lifted activations hold `N * sum_{l<L} d_l` numbers; the scratch holds
/// one more `d x N` pre-activation per layer kind in use, the inner solver's four
/// copies of the block being solved (the largest block bounds it) and, with
/// `curvature_bounds`, one `(d_{l-1} + 1)^2` metric inverse per layer.
#[derive(Debug, Clone)]
pub struct LiftedState<T: Real> {
    /// `[W_l, b_l]` per layer (`b_l` as a `d_l x 1` matrix).
    pub layers: Vec<[DMatrix<T>; 2]>,
    /// `X_1 .. X_{L-1}`.
    pub x: Vec<DMatrix<T>>,
    /// `lambda_1 .. lambda_{L-1}`.
    pub lambdas: Vec<f64>,
    /// Total ridge `l2 + rho` on the weights.
    pub ridge: f64,
    /// Lipschitz estimates carried between sweeps: weights blocks, then X blocks.
    pub(crate) lip_w: Vec<f64>,
    pub(crate) lip_x: Vec<f64>,
    /// Start every inner solve from the Lipschitz estimate the block's previous solve
    /// ended with (`true`), or from half of it (`false`, the behaviour before issue
    /// #14; one extra trial evaluation per solve when the estimate was right). Set from
    /// [`super::LiftedConfig::warm_step`] by the solver at every step; `false` after
    /// [`LiftedState::from_forward`].
    pub warm_step: bool,
    /// Use the blocks' curvature bounds (issue #14): solve every weights block in the
    /// metric `M = c Ã Ã^T + ridge diag(1, .., 1, 0)` that bounds its Hessian
    /// (super::metric) instead of the Euclidean one, and cap the start of every X
    /// block's step search at its Lipschitz bound. Set from
    /// [`super::LiftedConfig::curvature_bounds`] by the solver at every step; `true`
    /// after [`LiftedState::from_forward`] (the default).
    pub curvature_bounds: bool,
    /// Inner method of the hidden weights blocks; set from
    /// [`super::LiftedConfig::weights_method`] by the solver at every step
    /// ([`WeightsMethod::default`], Newton-CG, after [`LiftedState::from_forward`], as in
    /// [`super::LiftedConfig::default`]). Newton-CG needs
    /// `curvature_bounds` (its preconditioner is the metric); without them FISTA runs.
    pub weights_method: WeightsMethod,
    apg: Apg<T>,
    newton: Newton<T>,
    metrics: WeightMetrics<T>,
    u: DMatrix<T>,
    v: DMatrix<T>,
    gv: DMatrix<T>,
    gcat: DMatrix<T>,
    pcat: DMatrix<T>,
    img: [DMatrix<T>; 4],
}

/// What checkpoints keep (weights come from the problem).
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct SavedState<T: Real> {
    pub(crate) x: Vec<DMatrix<T>>,
    pub(crate) lambdas: Vec<f64>,
    pub(crate) ridge: f64,
    pub(crate) lip_w: Vec<f64>,
    pub(crate) lip_x: Vec<f64>,
}

fn bad(param: &'static str, value: impl std::fmt::Display, reason: &'static str) -> SolverError {
    SolverError::config("Lifted", param, value, reason)
}

/// Checks that the network is a ReLU MLP and the loss smooth; returns the widths.
pub fn check_network<T: Real>(net: &Sequential<T>, loss: &Loss) -> Result<Vec<usize>, SolverError> {
    let view = net
        .mlp_view()
        .map_err(|e| SolverError::NotApplicable(format!("Lifted needs an MLP: {e}")))?;
    if let Some(h) = view.activations.iter().find(|h| **h != Activation::Relu) {
        return Err(SolverError::NotApplicable(format!(
            "Lifted: activation {} is not supported (the lifted solver encodes ReLU hidden layers only)",
            h.name()
        )));
    }
    if loss.kind == LossKind::MulticlassHinge {
        return Err(SolverError::NotApplicable(
            "Lifted: loss multiclass_hinge is not supported (the output block needs a smooth loss)"
                .into(),
        ));
    }
    Ok(view.widths)
}

impl<T: Real> LiftedState<T> {
    /// Forgets what was derived from the data set (the first weights block's metric).
    pub(crate) fn forget_data(&mut self) {
        self.metrics.forget_data();
    }

    /// Lifted variables initialised by a forward pass of `net` on `inputs`
    /// (`X_l = relu(W_l X_{l-1} + b_l 1^T)`, so every penalty starts at 0).
    pub fn from_forward(
        net: &Sequential<T>,
        loss: &Loss,
        inputs: &DMatrix<T>,
        lambdas: Vec<f64>,
        rho: f64,
    ) -> Result<Self, SolverError> {
        let widths = check_network(net, loss)?;
        let l_count = widths.len() - 1;
        if lambdas.len() != l_count - 1 {
            return Err(bad(
                "layer_lambdas",
                format!("{} values", lambdas.len()),
                "must have one value per hidden layer",
            ));
        }
        let trace = net
            .forward_trace(inputs)
            .map_err(|e| SolverError::Problem(format!("Lifted init: {e}")))?;
        let mut state = LiftedState {
            layers: Vec::with_capacity(l_count),
            x: trace.a[1..l_count].to_vec(),
            lambdas,
            ridge: loss.l2 + rho,
            lip_w: vec![1.0; l_count],
            lip_x: vec![1.0; l_count - 1],
            warm_step: false,
            curvature_bounds: true,
            weights_method: WeightsMethod::default(),
            apg: Apg::default(),
            newton: Newton::default(),
            metrics: WeightMetrics::default(),
            u: DMatrix::zeros(0, 0),
            v: DMatrix::zeros(0, 0),
            gv: DMatrix::zeros(0, 0),
            gcat: DMatrix::zeros(0, 0),
            pcat: DMatrix::zeros(0, 0),
            img: std::array::from_fn(|_| DMatrix::zeros(0, 0)),
        };
        state.read_weights(net)?;
        Ok(state)
    }

    /// Number of dense layers L.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Copies `W_l, b_l` from the network (it must have the same widths).
    pub fn read_weights(&mut self, net: &Sequential<T>) -> Result<(), SolverError> {
        let l_count = net.num_dense();
        if l_count != self.lip_w.len() {
            return Err(SolverError::shape(
                "Lifted layers",
                self.lip_w.len(),
                l_count,
            ));
        }
        self.layers
            .resize_with(l_count, || [DMatrix::zeros(0, 0), DMatrix::zeros(0, 0)]);
        for (l, pair) in self.layers.iter_mut().enumerate() {
            let d = net
                .dense(l)
                .ok_or_else(|| SolverError::Problem(format!("dense layer {l} missing")))?;
            if pair[0].shape() != d.weight.shape() {
                pair[0] = d.weight.clone();
                pair[1] = DMatrix::from_column_slice(d.bias.len(), 1, d.bias.as_slice());
            } else {
                pair[0].copy_from(&d.weight);
                pair[1].copy_from_slice(d.bias.as_slice());
            }
        }
        Ok(())
    }

    /// Writes `W_l, b_l` into the network.
    pub fn write_weights(&self, net: &mut Sequential<T>) -> Result<(), SolverError> {
        for (l, pair) in self.layers.iter().enumerate() {
            let d = net
                .dense_mut(l)
                .ok_or_else(|| SolverError::Problem(format!("dense layer {l} missing")))?;
            if d.weight.shape() != pair[0].shape() || d.bias.len() != pair[1].nrows() {
                return Err(SolverError::shape(
                    format!("Lifted layer {}", l + 1),
                    format!("{:?}", d.weight.shape()),
                    format!("{:?}", pair[0].shape()),
                ));
            }
            d.weight.copy_from(&pair[0]);
            d.bias.copy_from_slice(pair[1].as_slice());
        }
        Ok(())
    }

    /// The lifted (penalised) objective
    /// `loss(W_L X_{L-1} + b_L 1^T, Y) + sum_{l<L} lambda_l s sum B(W_l X_{l-1} + b_l 1^T, X_l)
    /// + (ridge/2) sum_l ||W_l||^2`, `s = loss.sample_weight(N)`, `X_0` = `inputs`.
    pub fn objective(
        &mut self,
        inputs: &DMatrix<T>,
        targets: &Targets<T>,
        loss: &Loss,
        threads: usize,
    ) -> Result<f64, SolverError> {
        let l_count = self.layers.len();
        let s = loss.sample_weight(inputs.ncols());
        let mut total = 0.0;
        for l in 0..l_count {
            let a = if l == 0 { inputs } else { &self.x[l - 1] };
            affine_into(
                &mut self.u,
                &self.layers[l][0],
                &self.layers[l][1],
                a,
                threads,
            )?;
            total += if l + 1 == l_count {
                Term::Output { loss, targets }.eval(&self.u, None)?
            } else {
                self.lambdas[l] * s * relu_penalty_sum(&self.u, &self.x[l])
            };
            total += 0.5
                * self.ridge
                * self.layers[l][0]
                    .iter()
                    .map(|w| w.to_f64().powi(2))
                    .sum::<f64>();
        }
        Ok(total)
    }

    /// Constraint violations `(||X_l - relu(W_l X_{l-1} + b_l)||_F, relative to
    /// ||relu(W_l X_{l-1} + b_l)||_F)` for `l = 1..L-1`.
    pub fn violations(
        &mut self,
        inputs: &DMatrix<T>,
        threads: usize,
    ) -> Result<Vec<(f64, f64)>, SolverError> {
        let mut out = Vec::with_capacity(self.x.len());
        for l in 0..self.x.len() {
            let a = if l == 0 { inputs } else { &self.x[l - 1] };
            affine_into(
                &mut self.u,
                &self.layers[l][0],
                &self.layers[l][1],
                a,
                threads,
            )?;
            let (mut d2, mut r2) = (0.0f64, 0.0f64);
            for (&u, &x) in self.u.iter().zip(self.x[l].iter()) {
                let r = u.max(T::zero()).to_f64();
                d2 += (x.to_f64() - r).powi(2);
                r2 += r * r;
            }
            out.push((d2.sqrt(), d2.sqrt() / r2.sqrt().max(f64::MIN_POSITIVE)));
        }
        Ok(out)
    }

    /// One block-coordinate sweep, output to input: `(W_L, b_L)`, `X_{L-1}`,
    /// `(W_{L-1}, b_{L-1})`, ..., `X_1`, `(W_1, b_1)`. Each block problem is convex and is
    /// solved by the monotone accelerated projected gradient from the current value, never increasing the lifted
    /// objective (the hidden weights blocks by Newton-CG with a monotone line search when
    /// [`Self::weights_method`] says so). `hook` is called after every block (for
    /// monotonicity tests / tracing). The first weights block's metric `c X X^T + ...` is
    /// cached for the `inputs` buffer (its address and shape, as the solvers' other
    /// input caches): to sweep on other data, pass another buffer or build a new state;
    /// overwriting `inputs` in place keeps the old metric (a worse preconditioner, still
    /// monotone).
    #[allow(clippy::too_many_arguments)]
    pub fn sweep(
        &mut self,
        inputs: &DMatrix<T>,
        targets: &Targets<T>,
        loss: &Loss,
        tol: f64,
        max_iters: usize,
        threads: usize,
        hook: &mut dyn FnMut(&mut Self, BlockId, &InnerStats) -> Result<(), SolverError>,
    ) -> Result<SweepStats, SolverError> {
        let l_count = self.layers.len();
        let s = loss.sample_weight(inputs.ncols());
        let shrink = if self.warm_step { 1.0 } else { 0.5 };
        let mut stats = SweepStats::default();
        let record = |st: &InnerStats, stats: &mut SweepStats| {
            stats.iterations += st.iterations;
            stats.trials += st.trials;
            stats.blocks += 1;
            stats.unconverged += usize::from(!st.converged && !st.stalled);
            stats.stalled += usize::from(st.stalled);
        };
        for l in (0..l_count).rev() {
            // (W_l, b_l) block.
            let st = {
                let a = if l == 0 { inputs } else { &self.x[l - 1] };
                let term = if l + 1 == l_count {
                    Term::Output { loss, targets }
                } else {
                    Term::Hidden {
                        x_next: &self.x[l],
                        lam: self.lambdas[l] * s,
                    }
                };
                let newton = self.curvature_bounds
                    && self.weights_method == WeightsMethod::NewtonCg
                    && l + 1 < l_count;
                if newton {
                    let lam = self.lambdas[l] * s;
                    self.metrics.prepare(l, a, lam, self.ridge, threads)?;
                    let blk = HiddenW {
                        a,
                        x_next: &self.x[l],
                        lam,
                        ridge: self.ridge,
                        minv: &self.metrics.minv[l],
                        threads,
                    };
                    self.newton
                        .solve(&blk, &mut self.layers[l][..], tol, max_iters)?
                } else {
                    let metric = match (self.curvature_bounds, term.curvature(s)) {
                        (true, Some(c)) => {
                            self.metrics.prepare(l, a, c, self.ridge, threads)?;
                            Some(Metric {
                                minv: &self.metrics.minv[l],
                                gcat: &mut self.gcat,
                                pcat: &mut self.pcat,
                                img: &mut self.img,
                            })
                        }
                        _ => None,
                    };
                    let mut block = WBlock {
                        a,
                        term,
                        ridge: self.ridge,
                        v: &mut self.v,
                        gv: &mut self.gv,
                        threads,
                        metric,
                    };
                    // In the metric the descent lemma holds with L = 1.
                    let bound = block.metric.is_some().then_some(1.0);
                    self.apg.solve(
                        &mut block,
                        &mut self.layers[l][..],
                        &mut self.lip_w[l],
                        shrink,
                        bound,
                        tol,
                        max_iters,
                    )?
                }
            };
            check_finite(&self.layers[l][0], "W", l + 1)?;
            check_finite(&self.layers[l][1], "b", l + 1)?;
            record(&st, &mut stats);
            hook(self, BlockId::Weights(l + 1), &st)?;
            if l == 0 {
                break;
            }
            // X_l block (0-based hidden index h = l - 1 is layer l's input).
            let h = l - 1;
            let st = {
                let a_prev = if h == 0 { inputs } else { &self.x[h - 1] };
                affine_into(
                    &mut self.u,
                    &self.layers[h][0],
                    &self.layers[h][1],
                    a_prev,
                    threads,
                )?;
                let (left, right) = self.x.split_at_mut(h + 1);
                let term = if l + 1 == l_count {
                    Term::Output { loss, targets }
                } else {
                    Term::Hidden {
                        x_next: &right[0],
                        lam: self.lambdas[l] * s,
                    }
                };
                // The X block's gradient is Lipschitz with constant
                // lam_own s + c ||W_next||_2^2 (c the term's curvature bound); its power
                // estimate caps the start of the step search.
                let bound = match (self.curvature_bounds, term.curvature(s)) {
                    (true, Some(c)) => {
                        let w = &self.layers[l][0];
                        crate::linalg::mm(
                            &mut self.gcat,
                            1.0,
                            w,
                            Transpose::No,
                            w,
                            Transpose::Yes,
                            0.0,
                            threads,
                        )?;
                        Some(self.lambdas[h] * s + c * lambda_max_psd(&self.gcat, 30))
                    }
                    _ => None,
                };
                let mut block = XBlock {
                    u: &self.u,
                    lam_own: self.lambdas[h] * s,
                    w_next: &self.layers[l][0],
                    b_next: &self.layers[l][1],
                    term,
                    v: &mut self.v,
                    gv: &mut self.gv,
                    threads,
                };
                self.apg.solve(
                    &mut block,
                    std::slice::from_mut(&mut left[h]),
                    &mut self.lip_x[h],
                    shrink,
                    bound,
                    tol,
                    max_iters,
                )?
            };
            check_finite(&self.x[h], "X", h + 1)?;
            record(&st, &mut stats);
            hook(self, BlockId::Activations(h + 1), &st)?;
        }
        Ok(stats)
    }

    pub(crate) fn saved(&self) -> SavedState<T> {
        SavedState {
            x: self.x.clone(),
            lambdas: self.lambdas.clone(),
            ridge: self.ridge,
            lip_w: self.lip_w.clone(),
            lip_x: self.lip_x.clone(),
        }
    }

    /// A state from a checkpoint; the weights are read from the network at the next step.
    pub(crate) fn from_saved(s: SavedState<T>) -> Result<Self, SolverError> {
        let l_count = s.lip_w.len();
        if l_count == 0
            || s.x.len() + 1 != l_count
            || s.lip_x.len() + 1 != l_count
            || s.lambdas.len() + 1 != l_count
        {
            return Err(SolverError::Checkpoint(
                "Lifted state: inconsistent layer counts".into(),
            ));
        }
        Ok(LiftedState {
            layers: (0..l_count)
                .map(|_| [DMatrix::zeros(0, 0), DMatrix::zeros(0, 0)])
                .collect(),
            x: s.x,
            lambdas: s.lambdas,
            ridge: s.ridge,
            lip_w: s.lip_w,
            lip_x: s.lip_x,
            warm_step: false,
            curvature_bounds: true,
            weights_method: WeightsMethod::default(),
            apg: Apg::default(),
            newton: Newton::default(),
            metrics: WeightMetrics::default(),
            u: DMatrix::zeros(0, 0),
            v: DMatrix::zeros(0, 0),
            gv: DMatrix::zeros(0, 0),
            gcat: DMatrix::zeros(0, 0),
            pcat: DMatrix::zeros(0, 0),
            img: std::array::from_fn(|_| DMatrix::zeros(0, 0)),
        })
    }
}

/// `Err(NonFinite)` naming block `{what}_{l}` if `m` has a NaN or infinite entry.
fn check_finite<T: Real>(m: &DMatrix<T>, what: &str, l: usize) -> Result<(), SolverError> {
    crate::linalg::require_finite(m, || format!("Lifted: {what}_{l} after its block update"))
}
