//! The AGD solver on a network problem ([`Agd`]).

use autodiff::Real;
use serde::{Deserialize, Serialize};

use super::config::AgdConfig;
use super::update::{AgdLayer, agd_layers, agd_update};
use crate::{
    BatchSampler, Batching, Context, Differentiable, NetProblem, Solver, SolverError, StepReport,
};

/// Checkpointed state (AGD has no optimizer state beyond counts).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
struct AgdState {
    epochs: u64,
    updates: u64,
}

/// AGD on a network problem (maths and assumptions in [`crate::agd`]). One step is one
/// epoch of mini-batches (or one full-batch update). Each batch costs one forward and one
/// backward pass over its samples; no line search, no inner solves. Memory: one gradient
/// and one parameter copy.
#[derive(Debug)]
pub struct Agd<T: Real> {
    cfg: AgdConfig,
    st: AgdState,
    layers: Vec<AgdLayer>,
    params: Vec<T>,
    grad: Vec<T>,
    sampler: BatchSampler,
}

impl<T: Real> Agd<T> {
    pub(crate) fn from_config(cfg: AgdConfig) -> Self {
        Agd {
            cfg,
            st: AgdState::default(),
            layers: Vec::new(),
            params: Vec::new(),
            grad: Vec::new(),
            sampler: BatchSampler::default(),
        }
    }

    fn prepare(&mut self, problem: &NetProblem<T>) -> Result<(), SolverError> {
        let d = problem.dim();
        if self.params.len() == d && !self.layers.is_empty() {
            return Ok(());
        }
        self.layers = agd_layers(&problem.net)?;
        self.params = vec![T::zero(); d];
        self.grad = vec![T::zero(); d];
        let size = match self.cfg.batching {
            Batching::Full => problem.train.len(),
            Batching::MiniBatch { size, .. } => size,
        };
        self.sampler = BatchSampler::new(problem.train.len(), size);
        Ok(())
    }

    /// One update on `batch` (None = full batch); returns (batch objective, G, eta).
    fn update(
        &mut self,
        problem: &mut NetProblem<T>,
        batch: Option<&[usize]>,
        ctx: &mut Context,
    ) -> Result<(f64, f64, f64), SolverError> {
        let f = problem.value_grad(batch, &mut self.grad)?.to_f64();
        ctx.counters
            .add_value_grad(batch.map_or(problem.train.len(), <[usize]>::len));
        if !f.is_finite() {
            return Err(SolverError::NonFinite(format!("AGD: batch objective {f}")));
        }
        problem.params(&mut self.params);
        let info = agd_update(&mut self.params, &self.grad, &self.layers, self.cfg.gain)?;
        if let Some(i) = self.params.iter().position(|v| !v.finite()) {
            return Err(SolverError::NonFinite(format!(
                "AGD: parameter {i} after the update"
            )));
        }
        problem.set_params(&self.params)?;
        self.st.updates += 1;
        Ok((f, info.g, info.eta))
    }
}

impl<T: Real> Solver<NetProblem<T>> for Agd<T> {
    fn name(&self) -> String {
        if self.cfg.gain == 1.0 {
            "AGD".into()
        } else {
            format!("AGD(gain={})", self.cfg.gain)
        }
    }

    fn init(&mut self, problem: &mut NetProblem<T>, _ctx: &mut Context) -> Result<(), SolverError> {
        self.st = AgdState::default();
        self.layers.clear();
        self.prepare(problem)
    }

    fn step(
        &mut self,
        problem: &mut NetProblem<T>,
        ctx: &mut Context,
    ) -> Result<StepReport, SolverError> {
        self.prepare(problem)?;
        let (mut fs, mut gs, mut etas, mut gmax) = (0.0, 0.0, 0.0, 0.0f64);
        let mut count = 0usize;
        match self.cfg.batching {
            Batching::Full => {
                let (f, g, e) = self.update(problem, None, ctx)?;
                (fs, gs, etas, gmax, count) = (f, g, e, g, 1);
            }
            Batching::MiniBatch { shuffle, .. } => {
                let mut sampler = std::mem::take(&mut self.sampler);
                sampler.start_epoch(shuffle, &mut *ctx.rng);
                let res = (|| {
                    for b in 0..sampler.batches_per_epoch() {
                        let batch = sampler.batch(b);
                        let (f, g, e) = self.update(problem, Some(batch), ctx)?;
                        fs += f;
                        gs += g;
                        etas += e;
                        gmax = gmax.max(g);
                        count += 1;
                    }
                    Ok::<(), SolverError>(())
                })();
                self.sampler = sampler;
                res?;
            }
        }
        self.st.epochs += 1;
        let c = count.max(1) as f64;
        Ok(StepReport::new()
            .with("G_mean", gs / c)
            .with("G_max", gmax)
            .with("eta_mean", etas / c)
            .with("batch_objective_mean", fs / c)
            .with("updates", count as f64))
    }

    fn save_state(&self) -> serde_json::Value {
        serde_json::to_value(&self.st).unwrap_or(serde_json::Value::Null)
    }

    fn load_state(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        let st: AgdState = serde_json::from_value(v.clone())?;
        crate::state_check::check_count("AGD", "epochs", st.epochs)?;
        crate::state_check::check_count("AGD", "updates", st.updates)?;
        self.st = st;
        Ok(())
    }
}
