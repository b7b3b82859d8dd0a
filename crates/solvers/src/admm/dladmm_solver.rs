//! [`DlAdmm`] as a [`Solver`] of a [`NetProblem`].

use autodiff::Real;
use nalgebra::DMatrix;

use super::config::DlPenalty;
use super::dladmm::{DlAdmm, DlSaved, DlStepInfo};
use crate::{Context, NetProblem, Solver, SolverError, StepReport};

impl<T: Real> DlAdmm<T> {
    /// The step report of one iteration: surrogate `L_rho` times the sample weight;
    /// extras: residuals, `dual_residual`, `nu`, `rho`, `theta`, `tau`,
    /// `inner_solves`, `output_inner`.
    pub(crate) fn report(&self, info: &DlStepInfo) -> StepReport {
        let (theta, tau) = self.curvature_bases();
        let mut report = StepReport::new().with_surrogate(info.augmented * self.sample_weight());
        info.residuals.push_extras(&mut report.extras);
        report
            .with("dual_residual", info.dual_residual)
            .with("nu", info.nu)
            .with("rho", info.rho)
            .with("theta", theta)
            .with("tau", tau)
            .with("inner_solves", info.inner_solves as f64)
            .with("output_inner", info.output_inner as f64)
    }
}

/// `Sequential::objective` (the same operations, so the same bits) with the layer
/// outputs in `bufs` (one per layer), reused between calls: the evaluation allocated two `d x N`
/// matrices per sweep (page faults and zeroing were ~5% of a digits-mlp sweep, issue
/// #14). `DlAdmm::true_objective` uses it on more than one thread.
pub(super) fn objective_buffered<T: Real>(
    problem: &NetProblem<T>,
    bufs: &mut Vec<DMatrix<T>>,
) -> Result<f64, nets::NetsError> {
    let (net, loss, x) = (&problem.net, &problem.loss, problem.train.inputs());
    let layers = net.layers();
    if layers.is_empty() {
        return Ok(net.objective(loss, x, problem.train.targets())?.to_f64());
    }
    loss.validate()?;
    bufs.resize_with(layers.len(), || DMatrix::zeros(0, 0));
    layers[0].forward(x, &mut bufs[0])?;
    for (i, l) in layers.iter().enumerate().skip(1) {
        let (done, rest) = bufs.split_at_mut(i);
        l.forward(&done[i - 1], &mut rest[0])?;
    }
    let data = loss.value(&bufs[layers.len() - 1], problem.train.targets())?;
    Ok(T::of(data.to_f64() + net.weight_penalty(loss.l2)).to_f64())
}

impl<T: Real> Solver<NetProblem<T>> for DlAdmm<T> {
    fn name(&self) -> String {
        match self.config().penalty {
            DlPenalty::Fixed { nu, rho } => format!("dlADMM(nu={nu}, rho={rho})"),
            DlPenalty::Adaptive { rho0, rho_max, .. } => {
                format!("dlADMM(adaptive rho {rho0}..{rho_max})")
            }
        }
    }

    /// Lifted variables from the network's forward pass (one forward pass counted).
    fn init(&mut self, problem: &mut NetProblem<T>, ctx: &mut Context) -> Result<(), SolverError> {
        self.initialize(&problem.net, &problem.loss, &problem.train)?;
        ctx.counters.add_forward(problem.train.len());
        Ok(())
    }

    /// One iteration, weights written into `problem.net`. Data passes
    /// (docs/RESULTS_SCHEMA.md): every block step's passes over the N samples
    /// ([`crate::admm::DlStepInfo::forward_passes`] / `backward_passes`: a layer map per
    /// block, the W- and A-steps' gradient and curvature products, one per output
    /// prox-gradient iterate, the dual step; backtracking trials are scalar tests and
    /// touch no sample). In the adaptive mode the true training objective is computed
    /// for the rule (one more forward pass, counted). Report: `DlAdmm::report`.
    fn step(
        &mut self,
        problem: &mut NetProblem<T>,
        ctx: &mut Context,
    ) -> Result<StepReport, SolverError> {
        if self.needs_prepare()
            && let Some(v) = self.lifted()
        {
            // After a restore: the network must fit the restored lifted variables.
            v.check_shapes(&problem.net, problem.train.inputs())?;
        }
        // The derived parts from the problem's own loss and data: after a restore, or
        // when either is not the prepared one (the data set is checked against the
        // lifted variables first).
        self.sync_problem(&problem.loss, &problem.train)?;
        let threads = ctx.threads.max(1);
        let info = self.iterate(&problem.train, threads)?;
        self.write_weights(&mut problem.net)?;
        let n = problem.train.len();
        ctx.counters.add_forward_n(info.forward_passes, n);
        for _ in 0..info.backward_passes {
            ctx.counters.add_backward(n);
        }
        ctx.counters.inner_solves += info.inner_solves;
        if matches!(self.config().penalty, DlPenalty::Adaptive { .. }) {
            let obj = self.true_objective(problem, threads)?;
            ctx.counters.add_forward(n);
            let widest = self
                .lifted()
                .map_or(0, |v| v.a.iter().map(|a| a.nrows()).max().unwrap_or(0));
            self.adapt(obj, widest);
        }
        Ok(self.report(&info))
    }

    fn save_state(&self) -> serde_json::Value {
        serde_json::to_value(self.saved()).unwrap_or(serde_json::Value::Null)
    }

    fn load_state(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        let s: DlSaved<T> = serde_json::from_value(v.clone())?;
        use crate::state_check::{check_count, check_range};
        check_count("dlADMM", "iterations", s.iterations)?;
        for (field, x) in [
            ("rho", s.rho),
            ("nu", s.nu),
            ("theta", s.theta),
            ("tau", s.tau),
        ] {
            check_range("dlADMM", field, x, 0.0, f64::MAX)?;
        }
        for (i, c) in s.costs.iter().enumerate() {
            check_range("dlADMM", &format!("costs[{i}]"), *c, f64::MIN, f64::MAX)?;
        }
        self.restore(s);
        Ok(())
    }

    /// Lifted variables, the multiplier U (`K x N`) and the previous output (`K x N`
    /// or empty) must match the network and data.
    fn check_state(&self, problem: &NetProblem<T>) -> Result<(), SolverError> {
        let s = self.saved();
        let Some(vars) = &s.vars else {
            return Err(SolverError::Checkpoint(
                "dlADMM: checkpoint has no lifted variables `vars` (a checkpoint is written after init)".into(),
            ));
        };
        super::checks::check_lifted("dlADMM", vars, problem)?;
        super::checks::check_output_sized("dlADMM", "u", &s.u, problem, false)?;
        super::checks::check_output_sized("dlADMM", "prev_m", &s.prev_m, problem, true)
    }
}

#[cfg(test)]
mod tests {
    use autodiff::Reduction;
    use nets::{Dataset, Loss, LossKind, Targets};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::admm::tests_taylor::{gauss, net};

    /// The buffered objective is `Sequential::objective` bit for bit, also when its
    /// buffers come from another network's shapes.
    #[test]
    fn buffered_objective_is_the_networks_objective_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let x = gauss(&mut rng, 4, 70);
        let labels: Vec<usize> = (0..70).map(|i| (i * 5 + i / 4) % 3).collect();
        let data = Dataset::new(x, Targets::Labels { labels, classes: 3 }).unwrap();
        let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean).with_l2(0.1);
        let mut bufs = vec![DMatrix::zeros(2, 3)];
        for widths in [&[4, 7, 5, 3][..], &[4, 9, 3]] {
            let p = NetProblem::new(net(widths, 3), loss, data.clone(), None).unwrap();
            let want = p
                .net
                .objective(&loss, p.train.inputs(), p.train.targets())
                .unwrap();
            for _ in 0..2 {
                let got = objective_buffered(&p, &mut bufs).unwrap();
                assert_eq!(got.to_bits(), want.to_bits(), "{widths:?}");
            }
        }
    }

    /// The adaptive rule's objective from the cached `W_1 X` is the network's objective
    /// bit for bit after every iteration (and on two threads through the network).
    #[test]
    fn true_objective_from_the_cache_is_the_networks_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let x = gauss(&mut rng, 4, 90);
        let labels: Vec<usize> = (0..90).map(|i| (i * 7 + i / 5) % 3).collect();
        let data = Dataset::new(x, Targets::Labels { labels, classes: 3 }).unwrap();
        let loss = Loss::new(LossKind::SoftmaxCrossEntropy, Reduction::Mean).with_l2(0.05);
        for widths in [&[4, 7, 5, 3][..], &[4, 9, 3]] {
            let mut p = NetProblem::new(net(widths, 5), loss, data.clone(), None).unwrap();
            let mut s = DlAdmm::<f64>::new(crate::admm::DlAdmmConfig::default()).unwrap();
            s.initialize(&p.net, &loss, &p.train).unwrap();
            for it in 0..4 {
                s.iterate(&p.train, 1).unwrap();
                s.write_weights(&mut p.net).unwrap();
                let want = p
                    .net
                    .objective(&loss, p.train.inputs(), p.train.targets())
                    .unwrap();
                for threads in [1, 2] {
                    let got = s.true_objective(&p, threads).unwrap();
                    assert_eq!(got.to_bits(), want.to_bits(), "{widths:?} iteration {it}");
                }
            }
        }
    }
}
