//! The [`Solver`] trait: a struct with its hyperparameters and state, and one step.

use crate::{Context, Problem, SolverError, StepReport};

/// One optimisation algorithm: a struct holding its (validated) hyperparameters and its
/// state, advanced one iteration at a time by a [`crate::Driver`], which owns the loop,
/// the budget, evaluation, observers and checkpoints.
///
/// A solver states what it needs from the problem by bounding `P`: gradient methods
/// take any `P: Differentiable`; layer-wise methods (MM, ADMM, lifted, BCD) implement
/// `Solver<NetProblem<T>>` and read the network, the loss and the whole data set
/// directly, keeping their auxiliary variables (Z_l, A_l, multipliers) in `self`.
///
/// A structured example: refit the last dense layer of an MSE network by ridge least
/// squares (the exact block minimiser, ALGORITHMS.md 10.2:
/// `[W b] = Y Ab^T (Ab Ab^T + eps I)^-1`, `Ab = [A_{L-1}; 1^T]`), reading the layers,
/// the whole training set, and counting its inner solve:
///
/// ```
/// use autodiff::{kernels::matmul, Reduction, Transpose::{No, Yes}};
/// use nalgebra::DMatrix;
/// use nets::{Activation, Dataset, Init, Loss, LossKind, Sequential, Targets};
/// use solvers::{Budget, Context, Driver, NetProblem, Solver, SolverError, StepReport};
///
/// struct LastLayerLs { eps: f64 }
///
/// impl Solver<NetProblem<f64>> for LastLayerLs {
///     fn name(&self) -> String { format!("LastLayerLs(eps={})", self.eps) }
///     fn step(&mut self, p: &mut NetProblem<f64>, ctx: &mut Context) -> Result<StepReport, SolverError> {
///         let Targets::Dense(y) = p.train.targets() else {
///             return Err(SolverError::Problem("LastLayerLs needs dense targets".into()));
///         };
///         let trace = p.net.forward_trace(p.train.inputs())?; // one forward pass
///         ctx.counters.forward += 1;
///         ctx.counters.samples_seen += p.train.len() as u64;
///         let a = &trace.a[trace.a.len() - 2]; // A_{L-1}
///         let (d, n) = a.shape();
///         let mut ab = DMatrix::from_element(d + 1, n, 1.0);
///         ab.rows_mut(0, d).copy_from(a);
///         let g = matmul(&ab, No, &ab, Yes)? + DMatrix::identity(d + 1, d + 1) * self.eps;
///         let r = matmul(y, No, &ab, Yes)?; // K x (d+1)
///         let xt = g.cholesky().ok_or_else(|| SolverError::Problem("singular Gram".into()))?
///             .solve(&r.transpose());
///         ctx.counters.inner_solves += 1; // one linear system
///         let last = p.net.num_dense() - 1;
///         let dense = p.net.dense_mut(last).ok_or_else(|| SolverError::Problem("no dense layer".into()))?;
///         dense.weight = xt.rows(0, d).transpose();
///         dense.bias = xt.row(d).transpose();
///         Ok(StepReport::new().with("ridge_eps", self.eps))
///     }
///     fn save_state(&self) -> serde_json::Value { serde_json::Value::Null }
///     fn load_state(&mut self, _: &serde_json::Value) -> Result<(), SolverError> { Ok(()) }
/// }
///
/// let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
/// let x = DMatrix::from_fn(3, 40, |i, j| ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.5);
/// let y = DMatrix::from_fn(2, 40, |k, j| (x[(0, j)] * (k as f64 + 1.0)).sin());
/// let data = Dataset::new(x, Targets::Dense(y))?;
/// let net = Sequential::mlp(&[3, 16, 2], Activation::Tanh, Init::GlorotUniform, &mut rng)?;
/// let loss = Loss::new(LossKind::Mse, Reduction::Mean);
/// let mut problem = NetProblem::new(net, loss, data, None)?;
/// let out = Driver::new(Budget::iterations(1)).run(&mut problem, &mut LastLayerLs { eps: 1e-9 })?;
/// let (before, after) = (&out.trace.records[0], &out.trace.records[1]);
/// assert!(after.objective < 0.5 * before.objective);
/// assert_eq!((after.forward, after.backward, after.inner_solves), (1, 0, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Solver<P: Problem> {
    /// Short human-readable name, e.g. `"Adam(lr=0.001)"`.
    fn name(&self) -> String;
    /// Called once before the first step (never on resume): allocate buffers, build
    /// auxiliary variables from the initial parameters. Work done here is counted.
    fn init(&mut self, _problem: &mut P, _ctx: &mut Context) -> Result<(), SolverError> {
        Ok(())
    }
    /// One iteration (for mini-batch methods, by default one epoch of mini-batches).
    /// Must leave the problem holding the parameters the method would hand back now.
    fn step(&mut self, problem: &mut P, ctx: &mut Context) -> Result<StepReport, SolverError>;
    /// All state needed to continue bit-identically after a restore (moments, history,
    /// auxiliary variables, step counts), as JSON.
    fn save_state(&self) -> serde_json::Value;
    /// Restores state saved by [`Solver::save_state`] (the problem's parameters are
    /// restored separately by the driver). A checkpoint is user data: reject wrong types,
    /// out-of-range counts and non-finite scalars here with [`SolverError::Checkpoint`].
    fn load_state(&mut self, v: &serde_json::Value) -> Result<(), SolverError>;
    /// Checks the state just restored by [`Solver::load_state`] against the problem the
    /// run continues on: every array's length or shape, so that a corrupt checkpoint is
    /// an error instead of a silently truncated update (see [`crate::state_check`]).
    /// The driver calls it right after `load_state`. The default accepts everything:
    /// solvers whose state holds arrays must override it.
    fn check_state(&self, _problem: &P) -> Result<(), SolverError> {
        Ok(())
    }
}

/// A boxed solver is a solver: lets a runner hold `Box<dyn Solver<P>>` built by a
/// registry (one factory per method) and hand it to [`crate::Driver::run`] unchanged.
/// Every method forwards to the boxed solver.
impl<P: Problem, S: Solver<P> + ?Sized> Solver<P> for Box<S> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn init(&mut self, problem: &mut P, ctx: &mut Context) -> Result<(), SolverError> {
        (**self).init(problem, ctx)
    }
    fn step(&mut self, problem: &mut P, ctx: &mut Context) -> Result<StepReport, SolverError> {
        (**self).step(problem, ctx)
    }
    fn save_state(&self) -> serde_json::Value {
        (**self).save_state()
    }
    fn load_state(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        (**self).load_state(v)
    }
    fn check_state(&self, problem: &P) -> Result<(), SolverError> {
        (**self).check_state(problem)
    }
}

#[cfg(test)]
mod tests {
    use crate::first_order::SgdConfig;
    use crate::testing::LeastSquares;
    use crate::{Budget, Driver, Solver};
    use rand::SeedableRng;

    #[test]
    fn a_boxed_dyn_solver_runs_like_the_solver_itself() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let p0 = LeastSquares::<f64>::random(4, 30, 0.1, &mut rng).unwrap();
        let (mut p1, mut p2) = (p0.clone(), p0);
        let mut plain = SgdConfig::gd(0.1).build::<f64>().unwrap();
        let mut boxed: Box<dyn Solver<LeastSquares<f64>>> =
            Box::new(SgdConfig::gd(0.1).build::<f64>().unwrap());
        let a = Driver::new(Budget::iterations(5))
            .run(&mut p1, &mut plain)
            .unwrap();
        let b = Driver::new(Budget::iterations(5))
            .run(&mut p2, &mut boxed)
            .unwrap();
        assert_eq!(a.trace.solver, b.trace.solver);
        let obj = |o: &crate::RunOutcome| {
            o.trace
                .records
                .iter()
                .map(|r| r.objective)
                .collect::<Vec<_>>()
        };
        assert_eq!(obj(&a), obj(&b));
        assert!(obj(&b)[5] < obj(&b)[0]);
    }
}
