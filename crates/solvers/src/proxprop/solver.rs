//! [`ProxProp`] on the common solver interface.

use autodiff::Real;
use nalgebra::DMatrix;
use nets::Targets;
use serde::{Deserialize, Serialize};

use super::config::{Outer, ProxMode, ProxPropConfig};
use super::direction::{Direction, FlatLayout, LayerRule};
use crate::first_order::{AdamRule, AdamState, SgdRule, SgdState, Update};
use crate::linalg::fit;
use crate::{BatchSampler, Context, NetProblem, Solver, SolverError, StepReport};

/// State of the outer optimiser.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
enum OuterState<T: Real> {
    Sgd(SgdState<T>),
    Adam(AdamState<T>),
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Saved<T: Real> {
    updates: u64,
    outer: Option<OuterState<T>>,
}

/// Proximal backpropagation (see the [module docs](super)): one step is one epoch of
/// shuffled mini-batches; each batch computes the ProxProp direction and hands it to the
/// outer optimiser as a gradient, then writes the parameters into `problem.net`.
#[derive(Debug, Clone)]
pub struct ProxProp<T: Real> {
    cfg: ProxPropConfig,
    layout: Option<FlatLayout>,
    rules: Vec<LayerRule>,
    dir: Direction<T>,
    params: Vec<T>,
    grad: Vec<T>,
    outer: Option<OuterState<T>>,
    sampler: BatchSampler,
    xb: DMatrix<T>,
    yb: Option<Targets<T>>,
    updates: u64,
}

impl<T: Real> ProxProp<T> {
    pub(crate) fn from_config(cfg: ProxPropConfig) -> Self {
        ProxProp {
            cfg,
            layout: None,
            rules: Vec::new(),
            dir: Direction::default(),
            params: Vec::new(),
            grad: Vec::new(),
            outer: None,
            sampler: BatchSampler::default(),
            xb: DMatrix::zeros(0, 0),
            yb: None,
            updates: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ProxPropConfig {
        &self.cfg
    }

    /// The per-layer rules of a network with `l_count` dense layers under `cfg`.
    pub fn layer_rules(cfg: &ProxPropConfig, l_count: usize) -> Vec<LayerRule> {
        (0..l_count)
            .map(|l| match cfg.prox_solve() {
                Some(how) if l + 1 < l_count || cfg.prox_output_layer => {
                    LayerRule::Prox(how, cfg.tau_prox)
                }
                _ => LayerRule::Gradient,
            })
            .collect()
    }

    fn prepare(&mut self, problem: &NetProblem<T>) -> Result<(), SolverError> {
        if self.layout.is_none() {
            let layout = FlatLayout::of(&problem.net)?;
            self.rules = Self::layer_rules(&self.cfg, layout.offsets.len());
            self.layout = Some(layout);
        }
        let p = problem.net.num_params();
        self.params.resize(p, T::zero());
        self.grad.resize(p, T::zero());
        problem.net.params_to_flat(&mut self.params)?;
        if self.outer.is_none() {
            self.outer = Some(match self.cfg.outer {
                Outer::Sgd {
                    momentum, nesterov, ..
                } => OuterState::Sgd(SgdRule { momentum, nesterov }.init(&self.params)),
                Outer::Adam {
                    beta1, beta2, eps, ..
                } => OuterState::Adam(AdamRule { beta1, beta2, eps }.init(&self.params)),
            });
        }
        Ok(())
    }
}

/// Copies the batch columns into the reused buffers.
fn gather<T: Real>(
    problem: &NetProblem<T>,
    batch: &[usize],
    xb: &mut DMatrix<T>,
    yb: &mut Option<Targets<T>>,
) {
    let x = problem.train.inputs();
    fit(xb, x.nrows(), batch.len());
    for (j, &i) in batch.iter().enumerate() {
        xb.column_mut(j).copy_from(&x.column(i));
    }
    {
        match (problem.train.targets(), yb) {
            (
                Targets::Labels { labels, classes },
                Some(Targets::Labels {
                    labels: dst,
                    classes: c,
                }),
            ) => {
                *c = *classes;
                dst.clear();
                dst.extend(batch.iter().map(|&i| labels[i]));
            }
            (Targets::Dense(y), Some(Targets::Dense(dst))) => {
                fit(dst, y.nrows(), batch.len());
                for (j, &i) in batch.iter().enumerate() {
                    dst.column_mut(j).copy_from(&y.column(i));
                }
            }
            (Targets::Labels { labels, classes }, slot) => {
                *slot = Some(Targets::Labels {
                    labels: batch.iter().map(|&i| labels[i]).collect(),
                    classes: *classes,
                });
            }
            (Targets::Dense(y), slot) => {
                *slot = Some(Targets::Dense(DMatrix::from_fn(
                    y.nrows(),
                    batch.len(),
                    |r, j| y[(r, batch[j])],
                )));
            }
        }
    }
}

impl<T: Real> Solver<NetProblem<T>> for ProxProp<T> {
    fn name(&self) -> String {
        let mode = match self.cfg.mode {
            ProxMode::Exact => "prox_exact".to_string(),
            ProxMode::Cg { iters } => format!("prox_cg{iters}"),
            ProxMode::Gradient => "gradient".to_string(),
        };
        let outer = match self.cfg.outer {
            Outer::Sgd {
                lr,
                momentum,
                nesterov,
            } => {
                format!(
                    "SGD(lr={lr}, momentum={momentum}{})",
                    if nesterov { ", nesterov" } else { "" }
                )
            }
            Outer::Adam { lr, .. } => format!("Adam(lr={lr})"),
        };
        format!(
            "ProxProp({mode}, tau={}, {outer})[batch={}]",
            self.cfg.tau_prox, self.cfg.batch_size
        )
    }

    fn init(&mut self, problem: &mut NetProblem<T>, _ctx: &mut Context) -> Result<(), SolverError> {
        self.cfg.validate()?;
        self.layout = None;
        self.outer = None;
        self.updates = 0;
        self.prepare(problem)
    }

    fn step(
        &mut self,
        problem: &mut NetProblem<T>,
        ctx: &mut Context,
    ) -> Result<StepReport, SolverError> {
        self.prepare(problem)?;
        let n = problem.train.len();
        if self.sampler.len() != n {
            self.sampler = BatchSampler::new(n, self.cfg.batch_size);
        }
        self.sampler.start_epoch(self.cfg.shuffle, ctx.rng);
        let lr = T::of(self.cfg.outer.lr());
        let (mut loss_sum, mut solves) = (0.0f64, 0usize);
        let batches = self.sampler.batches_per_epoch();
        let mut dir_norm = 0.0;
        for b in 0..batches {
            let batch = self.sampler.batch(b);
            gather(problem, batch, &mut self.xb, &mut self.yb);
            let yb = self
                .yb
                .as_ref()
                .ok_or_else(|| SolverError::Problem("ProxProp: batch targets missing".into()))?;
            let layout = self
                .layout
                .as_ref()
                .ok_or_else(|| SolverError::Problem("ProxProp: layout missing".into()))?;
            let st = self.dir.compute(
                &problem.net,
                layout,
                &problem.loss,
                &self.xb,
                yb,
                &self.rules,
                &mut self.grad,
                ctx.threads.max(1),
            )?;
            ctx.counters.add_value_grad(batch.len());
            // Each CG step of a prox solve: one more forward and backward pass over the
            // batch (DirectionStats::cg_steps).
            ctx.counters
                .add_value_grad_n(st.cg_steps as u64, batch.len());
            ctx.counters.inner_solves += st.inner_solves as u64;
            loss_sum += st.loss;
            solves += st.inner_solves;
            dir_norm = self
                .grad
                .iter()
                .map(|g| g.to_f64().powi(2))
                .sum::<f64>()
                .sqrt();
            match (&mut self.outer, self.cfg.outer) {
                (
                    Some(OuterState::Sgd(s)),
                    Outer::Sgd {
                        momentum, nesterov, ..
                    },
                ) => SgdRule { momentum, nesterov }.apply(s, lr, &mut self.params, &self.grad),
                (
                    Some(OuterState::Adam(s)),
                    Outer::Adam {
                        beta1, beta2, eps, ..
                    },
                ) => AdamRule { beta1, beta2, eps }.apply(s, lr, &mut self.params, &self.grad),
                _ => {
                    return Err(SolverError::Checkpoint(
                        "ProxProp: outer optimiser state does not match the config".into(),
                    ));
                }
            }
            self.updates += 1;
            if let Some(i) = self.params.iter().position(|v| !v.finite()) {
                return Err(SolverError::NonFinite(format!(
                    "ProxProp parameters after update {} (flat index {i})",
                    self.updates
                )));
            }
            problem.net.params_from_flat(&self.params)?;
        }
        Ok(StepReport::new()
            .with("mean_batch_loss", loss_sum / batches.max(1) as f64)
            .with("tau_prox", self.cfg.tau_prox)
            .with("lr", self.cfg.outer.lr())
            .with(
                "inner_solves_per_batch",
                solves as f64 / batches.max(1) as f64,
            )
            .with("last_direction_norm", dir_norm))
    }

    fn save_state(&self) -> serde_json::Value {
        let saved = Saved {
            updates: self.updates,
            outer: self.outer.clone(),
        };
        serde_json::to_value(saved).unwrap_or(serde_json::Value::Null)
    }

    fn load_state(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        let saved: Saved<T> = serde_json::from_value(v.clone())?;
        crate::state_check::check_count("ProxProp", "updates", saved.updates)?;
        self.updates = saved.updates;
        self.outer = saved.outer;
        Ok(())
    }

    /// The outer optimiser's buffers must match the network's parameter count and the
    /// configured optimiser (Adam state for an Adam outer loop, SGD state for SGD).
    fn check_state(&self, problem: &NetProblem<T>) -> Result<(), SolverError> {
        let p = problem.net.num_params();
        match (&self.outer, self.cfg.outer) {
            (None, _) => Err(SolverError::Checkpoint(
                "ProxProp: checkpoint has no outer optimiser state `outer`".into(),
            )),
            (
                Some(OuterState::Sgd(s)),
                Outer::Sgd {
                    momentum, nesterov, ..
                },
            ) => Update::<T>::check_state(&SgdRule { momentum, nesterov }, s, p),
            (
                Some(OuterState::Adam(s)),
                Outer::Adam {
                    beta1, beta2, eps, ..
                },
            ) => {
                crate::state_check::check_count("ProxProp", "outer.t", s.t)?;
                Update::<T>::check_state(&AdamRule { beta1, beta2, eps }, s, p)
            }
            _ => Err(SolverError::Checkpoint(
                "ProxProp: outer optimiser state does not match the config".into(),
            )),
        }
    }
}
