//! Full-batch L-BFGS with a strong-Wolfe line search (Nocedal & Wright, Numerical
//! Optimization, 2nd ed.: Algorithm 7.4 two-loop recursion, Algorithm 7.5, initial
//! scaling gamma = s^T y / y^T y (eq. 7.20), line search Algorithms 3.5/3.6).

pub mod line_search;

use std::collections::VecDeque;

use autodiff::Real;
use serde::{Deserialize, Serialize};

use crate::{Context, Differentiable, Solver, SolverError, StepReport};
use line_search::{LinePoint, Wolfe, strong_wolfe};

/// L-BFGS hyperparameters. Defaults: history m = 10, c1 = 1e-4, c2 = 0.9 (N&W's
/// quasi-Newton values), at most 25 line-search evaluations per iteration, first trial
/// step 1 (the first iteration uses min(1, 1/||g||_2) as there is no curvature yet),
/// stop when ||g||_inf <= grad_tol = 1e-10 (PyTorch uses 1e-7; ours is tighter so the
/// default run reaches f64 accuracy on well-conditioned problems).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LbfgsConfig {
    /// Number of (s, y) pairs kept, m >= 1.
    pub history: usize,
    /// Sufficient-decrease constant, 0 < c1 < c2.
    pub c1: f64,
    /// Curvature constant, c1 < c2 < 1.
    pub c2: f64,
    /// Maximum function+gradient evaluations per line search (>= 1).
    pub max_line_search: usize,
    /// Converged when the largest gradient entry is at most this (>= 0).
    pub grad_tol: f64,
}

impl Default for LbfgsConfig {
    fn default() -> Self {
        LbfgsConfig {
            history: 10,
            c1: 1e-4,
            c2: 0.9,
            max_line_search: 25,
            grad_tol: 1e-10,
        }
    }
}

impl LbfgsConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), SolverError> {
        let e = |p, v: f64, r| Err(SolverError::config("L-BFGS", p, v, r));
        if self.history == 0 {
            return e("history", 0.0, "must be >= 1");
        }
        if !(self.c1 > 0.0 && self.c1 < self.c2) {
            return e("c1", self.c1, "must satisfy 0 < c1 < c2");
        }
        if self.c2 >= 1.0 || self.c2.is_nan() {
            return e("c2", self.c2, "must satisfy c1 < c2 < 1");
        }
        if self.max_line_search == 0 {
            return e("max_line_search", 0.0, "must be >= 1");
        }
        crate::caps::check_inner_count("L-BFGS", "history", self.history)?;
        crate::caps::check_inner_count("L-BFGS", "max_line_search", self.max_line_search)?;
        if !(self.grad_tol >= 0.0 && self.grad_tol.is_finite()) {
            return e("grad_tol", self.grad_tol, "must be finite and >= 0");
        }
        Ok(())
    }

    /// The solver, from a valid config.
    pub fn build<T: Real>(self) -> Result<Lbfgs<T>, SolverError> {
        self.validate()?;
        Ok(Lbfgs {
            cfg: self,
            st: LbfgsState::default(),
            d: Vec::new(),
            x0: Vec::new(),
            alpha: Vec::new(),
            gt: Vec::new(),
            xt: Vec::new(),
        })
    }
}

/// Checkpointed state: current point's value and gradient, and the history.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
struct LbfgsState<T> {
    f: f64,
    g: Vec<T>,
    s: VecDeque<Vec<T>>,
    y: VecDeque<Vec<T>>,
    rho: VecDeque<f64>,
    iterations: u64,
    ready: bool,
}

/// Full-batch L-BFGS (one step = one line search). Every function+gradient evaluation
/// is counted as one forward and one backward pass over N samples; each line-search
/// trial also counts as an inner solve.
#[derive(Debug, Clone)]
pub struct Lbfgs<T: Real> {
    cfg: LbfgsConfig,
    st: LbfgsState<T>,
    d: Vec<T>,
    x0: Vec<T>,
    alpha: Vec<f64>,
    gt: Vec<T>,
    xt: Vec<T>,
}

fn dot<T: Real>(a: &[T], b: &[T]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x.to_f64() * y.to_f64()).sum()
}

impl<T: Real> Lbfgs<T> {
    /// d = -H g by the two-loop recursion (N&W Alg. 7.4), H_0 = gamma I.
    fn direction(&mut self) {
        let st = &self.st;
        let k = st.s.len();
        self.alpha.resize(k, 0.0);
        for (di, gi) in self.d.iter_mut().zip(&st.g) {
            *di = -*gi;
        }
        for i in (0..k).rev() {
            let a = st.rho[i] * dot(&st.s[i], &self.d);
            self.alpha[i] = a;
            let a = T::of(a);
            for (di, yi) in self.d.iter_mut().zip(&st.y[i]) {
                *di -= a * *yi;
            }
        }
        if let (Some(s), Some(y)) = (st.s.back(), st.y.back()) {
            let gamma = T::of(dot(s, y) / dot(y, y));
            self.d.iter_mut().for_each(|di| *di *= gamma);
        }
        for i in 0..k {
            let b = st.rho[i] * dot(&st.y[i], &self.d);
            let c = T::of(self.alpha[i] - b);
            for (di, si) in self.d.iter_mut().zip(&st.s[i]) {
                *di += c * *si;
            }
        }
    }

    fn grad_inf(&self) -> f64 {
        self.st.g.iter().fold(0.0, |m, v| m.max(v.to_f64().abs()))
    }
}

impl<T: Real, P: Differentiable<Scalar = T>> Solver<P> for Lbfgs<T> {
    fn name(&self) -> String {
        format!("L-BFGS(m={})", self.cfg.history)
    }

    fn init(&mut self, problem: &mut P, ctx: &mut Context) -> Result<(), SolverError> {
        let n = problem.dim();
        if n == 0 {
            return Err(SolverError::EmptyData("problem has no parameters".into()));
        }
        self.st = LbfgsState {
            g: vec![T::zero(); n],
            ..Default::default()
        };
        self.st.f = problem.value_grad(None, &mut self.st.g)?.to_f64();
        ctx.counters.add_value_grad(problem.num_samples());
        self.st.ready = true;
        Ok(())
    }

    fn step(&mut self, problem: &mut P, ctx: &mut Context) -> Result<StepReport, SolverError> {
        let n = problem.dim();
        let samples = problem.num_samples();
        if !self.st.ready || self.st.g.len() != n {
            return Err(SolverError::Checkpoint(
                "L-BFGS state missing or of the wrong size".into(),
            ));
        }
        let gnorm = self.grad_inf();
        if gnorm <= self.cfg.grad_tol {
            return Ok(StepReport {
                converged: Some(format!("||g||_inf = {gnorm:e} <= {:e}", self.cfg.grad_tol)),
                ..StepReport::new().with("grad_inf", gnorm)
            });
        }
        self.d.resize(n, T::zero());
        self.x0.resize(n, T::zero());
        problem.params(&mut self.x0);
        let mut restarted = false;
        let result = loop {
            self.direction();
            let mut df0 = dot(&self.st.g, &self.d);
            if df0 >= 0.0 || df0.is_nan() {
                // Not a descent direction (numerical trouble): steepest descent.
                self.st.s.clear();
                self.st.y.clear();
                self.st.rho.clear();
                self.direction();
                df0 = dot(&self.st.g, &self.d);
            }
            let a1 = if self.st.s.is_empty() {
                (1.0 / dot(&self.d, &self.d).sqrt()).min(1.0)
            } else {
                1.0
            };
            let wolfe = Wolfe {
                c1: self.cfg.c1,
                c2: self.cfg.c2,
                max_evals: self.cfg.max_line_search,
                max_step: 1e20,
            };
            let phi0 = LinePoint {
                a: 0.0,
                f: self.st.f,
                df: df0,
            };
            // The trial point's gradient lands in a scratch vector (reused as y later).
            let mut gt = std::mem::take(&mut self.gt);
            let mut xt = std::mem::take(&mut self.xt);
            gt.resize(n, T::zero());
            xt.resize(n, T::zero());
            let (x0, d) = (&self.x0, &self.d);
            let counters = &mut *ctx.counters;
            let res = strong_wolfe(phi0, a1, &wolfe, |a| {
                let at = T::of(a);
                for ((x, x0), d) in xt.iter_mut().zip(x0).zip(d) {
                    *x = *x0 + at * *d;
                }
                problem.set_params(&xt)?;
                let f = problem.value_grad(None, &mut gt)?.to_f64();
                counters.add_value_grad(samples);
                counters.inner_solves += 1;
                Ok((f, dot(&gt, d)))
            });
            match res {
                Ok(r) => break Ok((r, gt, xt)),
                Err(SolverError::LineSearch(_)) if !restarted && !self.st.s.is_empty() => {
                    // Retry once from steepest descent with an empty memory.
                    self.gt = gt;
                    self.xt = xt;
                    self.st.s.clear();
                    self.st.y.clear();
                    self.st.rho.clear();
                    restarted = true;
                }
                Err(e) => break Err(e),
            }
        };
        let (r, mut gt, mut xt) = match result {
            Ok(v) => v,
            Err(SolverError::LineSearch(msg)) => {
                // No decrease possible from the current point even along -g: at the
                // precision limit. Restore the point and stop.
                problem.set_params(&self.x0)?;
                return Ok(StepReport {
                    converged: Some(format!(
                        "line search cannot decrease f further (||g||_inf = {gnorm:e}): {msg}"
                    )),
                    ..StepReport::new().with("grad_inf", gnorm)
                });
            }
            Err(e) => return Err(e),
        };
        let a = r.point.a;
        if !r.last_evaluated {
            let at = T::of(a);
            for ((x, x0), d) in xt.iter_mut().zip(&self.x0).zip(&self.d) {
                *x = *x0 + at * *d;
            }
            problem.set_params(&xt)?;
            problem.value_grad(None, &mut gt)?;
            ctx.counters.add_value_grad(samples);
        }
        // s = a d, y = g_new - g_old; keep the pair if s^T y > eps ||y||^2. The
        // buffers rotate (xt becomes s, the old gradient becomes y; a pair evicted from
        // the history becomes the next trial buffers), so steady state allocates nothing.
        let at = T::of(a);
        for (x, d) in xt.iter_mut().zip(&self.d) {
            *x = at * *d; // xt now holds s
        }
        let mut y = std::mem::take(&mut self.st.g);
        for (yi, gi) in y.iter_mut().zip(&gt) {
            *yi = *gi - *yi;
        }
        let sy = dot(&xt, &y);
        let yy = dot(&y, &y);
        if sy > 1e-12 * yy && sy.is_finite() {
            if self.st.s.len() == self.cfg.history {
                self.xt = self.st.s.pop_front().unwrap_or_default();
                self.gt = self.st.y.pop_front().unwrap_or_default();
                self.st.rho.pop_front();
            }
            self.st.s.push_back(xt);
            self.st.y.push_back(y);
            self.st.rho.push_back(1.0 / sy);
        } else {
            self.xt = xt;
            self.gt = y;
        }
        self.st.g = gt;
        self.st.f = r.point.f;
        self.st.iterations += 1;
        Ok(StepReport::new()
            .with("step", a)
            .with("line_search_evals", r.evals as f64)
            .with("wolfe", if r.wolfe { 1.0 } else { 0.0 })
            .with("grad_inf", self.grad_inf()))
    }

    fn save_state(&self) -> serde_json::Value {
        serde_json::to_value(&self.st).unwrap_or(serde_json::Value::Null)
    }

    fn load_state(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        let st: LbfgsState<T> = serde_json::from_value(v.clone())?;
        use crate::state_check::{check_count, check_finite, check_range};
        check_count("L-BFGS", "iterations", st.iterations)?;
        let pairs = st.s.len();
        if st.y.len() != pairs || st.rho.len() != pairs || pairs > self.cfg.history {
            return Err(SolverError::Checkpoint(format!(
                "L-BFGS state: {} s, {} y and {} rho pairs (history {})",
                pairs,
                st.y.len(),
                st.rho.len(),
                self.cfg.history
            )));
        }
        for (i, r) in st.rho.iter().enumerate() {
            check_range(
                "L-BFGS",
                &format!("rho[{i}]"),
                *r,
                f64::MIN_POSITIVE,
                f64::MAX,
            )?;
        }
        if st.ready {
            check_range("L-BFGS", "f", st.f, f64::MIN, f64::MAX)?;
            check_finite("L-BFGS", "g", &st.g)?;
        }
        self.st = st;
        Ok(())
    }

    /// Every vector (g, each s_i and y_i) must have the problem's dimension.
    fn check_state(&self, problem: &P) -> Result<(), SolverError> {
        use crate::state_check::check_len;
        let dim = problem.dim();
        if self.st.ready || !self.st.g.is_empty() {
            check_len("L-BFGS", "g", dim, self.st.g.len())?;
        }
        for (i, (s, y)) in self.st.s.iter().zip(&self.st.y).enumerate() {
            check_len("L-BFGS", &format!("s[{i}]"), dim, s.len())?;
            check_len("L-BFGS", &format!("y[{i}]"), dim, y.len())?;
        }
        Ok(())
    }
}
