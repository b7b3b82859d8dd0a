//! The certified-MM solver ([`CertifiedMm`]): a base direction, a certified quadratic
//! bound along it, and the step size(s) that minimise the bound; maths in the
//! [`crate::certified`] module doc.

use std::ops::Range;

use autodiff::Real;
use majorize::enclosure::{self, EnclosureRequest, QuadraticEnclosure};
use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

use super::boxqp::{BoxQpSolution, minimize_box_qp};
use super::config::{BaseDirection, CertifiedConfig, StepSizes};
use crate::first_order::{AdamRule, AdamState, SgdRule, SgdState, Update};
use crate::{Context, Differentiable, NetProblem, Solver, SolverError, StepReport};

/// A step reaches the edge of its trust region when `alpha_i >= EDGE * alpha_bar_i`
/// (AutoBound's SafeRate rule: the next box `[0, grow alpha_bar]` or
/// `[0, shrink alpha_bar]` with the defaults still contains the last step).
const EDGE: f64 = 0.5;

/// Trust regions never shrink below this (representable in f32, so the box handed to
/// the enclosure is never empty); a solver stuck there reports convergence through
/// `min_trust_region`.
const TRUST_FLOOR: f64 = 1e-30;

/// The base rule's state, checkpointed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "T: Real")]
enum BaseState<T> {
    Sgd(SgdState<T>),
    Adam(AdamState<T>),
}

/// Checkpointed state: steps taken, the trust region of each step size, the base rule's
/// state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "T: Real")]
struct CertState<T> {
    steps: u64,
    trust: Vec<f64>,
    base: Option<BaseState<T>>,
}

/// Certified majorization-minimization along a first-order direction (`safe-gd`,
/// `safe-heavy-ball`, `safe-adam`) or with one step size per dense layer
/// (`safe-layerwise`); full batch. Every step either certifiably lowers the training
/// objective or does not move. Build it with [`CertifiedConfig::build`].
///
/// Extras per step: `certified` (1 if the step moved under a certificate), `phi0`
/// (objective at the start, as the enclosure computed it), `bound` (the certified upper
/// bound at the chosen step; `phi0` if no move), `slack`, `exact_qp`, and per step size
/// `i`: `step_i`, `trust_i` (the trust region the step was chosen in), `slope_i`
/// (`d phi / d alpha_i` at 0) and `curvature_i` (the diagonal of the upper degree-2
/// matrix `Q`, in the `(1/2) a^T Q a` convention). `surrogate` is `bound`.
///
/// Accounting: one forward + backward pass over the N samples for the gradient
/// ([`crate::Counters::add_value_grad`]), and one more forward pass over the N samples
/// for the enclosure (it touches every sample once, in interval Taylor arithmetic, which
/// costs several plain forward passes of arithmetic: the wall time shows it); the box QP
/// is one inner solve.
#[derive(Debug)]
pub struct CertifiedMm<T: Real> {
    cfg: CertifiedConfig,
    st: CertState<T>,
    params: Vec<T>,
    grad: Vec<T>,
    trial: Vec<T>,
    dirs: Vec<DVector<T>>,
    groups: Vec<Range<usize>>,
    /// The enclosure's buffers, kept between steps (no allocation at steady state).
    enc_ws: enclosure::EnclosureWorkspace,
}

/// The per-layer parameter ranges of the flat vector, written into `groups`: one range
/// per layer that owns a parameter tensor, covering its tensors (e.g. weight then bias),
/// which are consecutive in the flat order. Reuses `groups`' storage and builds no named
/// layout, so a step at steady state allocates nothing here.
fn layer_groups_into<T: Real>(net: &nets::Sequential<T>, groups: &mut Vec<Range<usize>>) {
    groups.clear();
    let mut offset = 0;
    for layer in net.layers() {
        let mut owns = false;
        let start = offset;
        for p in (0..layer.num_param_tensors()).filter_map(|i| layer.param(i)) {
            owns = true;
            offset += p.values.len();
        }
        if owns {
            groups.push(start..offset);
        }
    }
}

impl<T: Real> CertifiedMm<T> {
    pub(crate) fn from_config(cfg: CertifiedConfig) -> Self {
        CertifiedMm {
            cfg,
            st: CertState {
                steps: 0,
                trust: Vec::new(),
                base: None,
            },
            params: Vec::new(),
            grad: Vec::new(),
            trial: Vec::new(),
            dirs: Vec::new(),
            groups: Vec::new(),
            enc_ws: enclosure::EnclosureWorkspace::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CertifiedConfig {
        &self.cfg
    }

    /// Number of step sizes per step (k): 1, or the number of dense layers.
    fn num_steps(&self) -> usize {
        match self.cfg.step_sizes {
            StepSizes::Single => 1,
            StepSizes::PerLayer => self.groups.len(),
        }
    }

    fn fresh_base(&self, params: &[T]) -> BaseState<T> {
        match self.cfg.base {
            BaseDirection::Gd => BaseState::Sgd(Update::<T>::init(&sgd(0.0), params)),
            BaseDirection::HeavyBall { momentum } => {
                BaseState::Sgd(Update::<T>::init(&sgd(momentum), params))
            }
            BaseDirection::Adam { beta1, beta2, eps } => {
                BaseState::Adam(Update::<T>::init(&AdamRule { beta1, beta2, eps }, params))
            }
        }
    }

    /// Sizes the buffers and the per-layer groups for this problem.
    fn prepare(&mut self, problem: &NetProblem<T>) -> Result<(), SolverError> {
        let dim = problem.dim();
        if dim == 0 {
            return Err(SolverError::EmptyData("network has no parameters".into()));
        }
        if self.params.len() != dim {
            self.params = vec![T::zero(); dim];
            self.grad = vec![T::zero(); dim];
            self.trial = vec![T::zero(); dim];
        }
        layer_groups_into(&problem.net, &mut self.groups);
        let k = self.num_steps();
        if self.dirs.len() != k || self.dirs.first().is_some_and(|d| d.len() != dim) {
            self.dirs = vec![DVector::zeros(dim); k];
        }
        if self.st.trust.len() != k {
            self.st.trust = vec![self.cfg.trust_region; k];
        }
        Ok(())
    }

    /// `trial = base rule(params, grad; lr = 1)`, direction = trial - params, written
    /// into `dirs` (whole, or split by layer). Errors if it is not finite.
    fn base_direction(&mut self) -> Result<(), SolverError> {
        if self.st.base.is_none() {
            self.st.base = Some(self.fresh_base(&self.params));
        }
        self.trial.copy_from_slice(&self.params);
        match (self.st.base.as_mut(), self.cfg.base) {
            (Some(BaseState::Sgd(s)), BaseDirection::Gd) => {
                sgd(0.0).apply(s, T::one(), &mut self.trial, &self.grad)
            }
            (Some(BaseState::Sgd(s)), BaseDirection::HeavyBall { momentum }) => {
                sgd(momentum).apply(s, T::one(), &mut self.trial, &self.grad)
            }
            (Some(BaseState::Adam(s)), BaseDirection::Adam { beta1, beta2, eps }) => {
                AdamRule { beta1, beta2, eps }.apply(s, T::one(), &mut self.trial, &self.grad)
            }
            _ => {
                return Err(SolverError::Checkpoint(format!(
                    "certified MM: saved base state does not match the base direction {}",
                    self.cfg.base.short_name()
                )));
            }
        }
        if let Some(i) = self.trial.iter().position(|v| !v.finite()) {
            return Err(SolverError::NonFinite(format!(
                "certified MM: the {} direction at parameter {i} (gradient {})",
                self.cfg.base.short_name(),
                self.grad[i].to_f64()
            )));
        }
        if self.dirs.len() == 1 {
            for ((d, t), p) in self.dirs[0].iter_mut().zip(&self.trial).zip(&self.params) {
                *d = *t - *p;
            }
        } else {
            // Direction l is the base direction on layer l's group and zero elsewhere
            // (the groups partition the parameters, in order).
            for (d, r) in self.dirs.iter_mut().zip(&self.groups) {
                d.fill(T::zero());
                for i in r.clone() {
                    d[i] = self.trial[i] - self.params[i];
                }
            }
        }
        Ok(())
    }

    fn name_str(&self) -> String {
        match self.cfg.step_sizes {
            StepSizes::Single => format!(
                "Safe[{}](trust_region={})",
                self.cfg.base.short_name(),
                self.cfg.trust_region
            ),
            StepSizes::PerLayer => format!(
                "SafeLayerwise[{}](trust_region={})",
                self.cfg.base.short_name(),
                self.cfg.trust_region
            ),
        }
    }
}

fn sgd(momentum: f64) -> SgdRule {
    SgdRule {
        momentum,
        nesterov: false,
    }
}

/// The upper degree-2 matrix in the `(1/2) a^T Q a` convention, the slopes and the
/// slack, in f64; `None` if any is not finite.
pub(crate) fn model_of<T: Real>(
    enc: &QuadraticEnclosure<T>,
) -> Option<(f64, Vec<f64>, DMatrix<f64>, f64)> {
    let k = enc.gradient.len();
    let q = DMatrix::from_fn(k, k, |i, j| {
        enclosure_hessian_factor() * enc.quad_upper[(i, j)].to_f64()
    });
    let g: Vec<f64> = enc.gradient.iter().map(|v| v.to_f64()).collect();
    let phi0 = enc.value.to_f64();
    let slack = enc.slack.to_f64();
    let finite = phi0.is_finite()
        && slack.is_finite()
        && g.iter().all(|v| v.is_finite())
        && q.iter().all(|v| v.is_finite());
    finite.then_some((phi0, g, q, slack))
}

/// `Q = factor * quad_upper`: the enclosure's degree-2 coefficient `C` multiplies
/// `a^T C a` (no 1/2), so `Q = 2 C` in the `(1/2) a^T Q a` convention of the box QP.
const fn enclosure_hessian_factor() -> f64 {
    2.0
}

/// What one certified step decided.
pub(crate) struct CertifiedStep<T> {
    /// Step sizes applied (zeros when not certified).
    pub alpha: Vec<T>,
    /// Certified upper bound at `alpha` (phi0 when no move).
    pub bound: f64,
    /// Whether the step moved under a certificate.
    pub certified: bool,
    /// The box QP's answer, if the bound was finite.
    pub qp: Option<BoxQpSolution>,
}

/// Minimises the certified bound of `enc` over its box and checks the certificate:
/// a step is taken only if `upper_bound(alpha) < phi(0) - slack` strictly (the slack
/// covers the difference between `phi(0)` in T and the driver's record of it).
pub(crate) fn choose_step<T: Real>(
    enc: &QuadraticEnclosure<T>,
    trust: &[f64],
    max_exact_dim: usize,
) -> Result<CertifiedStep<T>, SolverError> {
    let k = trust.len();
    let zero = CertifiedStep {
        alpha: vec![T::zero(); k],
        bound: enc.value.to_f64(),
        certified: false,
        qp: None,
    };
    let Some((phi0, g, q, slack)) = model_of(enc) else {
        return Ok(zero);
    };
    if g.len() != k {
        return Err(SolverError::shape(
            "certified MM: enclosure gradient",
            k,
            g.len(),
        ));
    }
    let qp = minimize_box_qp(&g, &q, trust, max_exact_dim)?;
    let alpha: Vec<T> = qp
        .alpha
        .iter()
        .zip(trust)
        .map(|(a, u)| {
            // Rounded to T, then kept inside the box the enclosure is valid on.
            let t = T::of(*a);
            if t.to_f64() > *u { T::of(*u) } else { t }
        })
        .collect();
    if qp.value >= 0.0 || alpha.iter().all(|a| *a == T::zero()) {
        return Ok(CertifiedStep {
            qp: Some(qp),
            ..zero
        });
    }
    let bound = enc
        .upper_bound(&alpha)
        .map_err(|e| SolverError::Problem(format!("certified MM: {e}")))?
        .to_f64();
    // The driver's record at the base point may differ from `value` (computed in T) by
    // its own rounding, which the enclosure's slack covers: compare with the certified
    // lower end `phi(0) - slack`, rounded down, so the recorded objective cannot rise.
    let floor = phi0 - slack;
    let floor = floor - floor.abs() * f64::EPSILON;
    if bound.is_finite() && bound < floor {
        Ok(CertifiedStep {
            alpha,
            bound,
            certified: true,
            qp: Some(qp),
        })
    } else {
        Ok(CertifiedStep {
            qp: Some(qp),
            ..zero
        })
    }
}

/// Trust-region update: grow the step sizes that reached the edge, shrink the others;
/// shrink all when the step was not certified. Clamped to `[TRUST_FLOOR, max]`.
pub(crate) fn update_trust(
    trust: &mut [f64],
    alpha: &[f64],
    certified: bool,
    cfg: &CertifiedConfig,
) {
    for (t, a) in trust.iter_mut().zip(alpha) {
        let grow = certified && *a >= EDGE * *t;
        *t = if grow { *t * cfg.grow } else { *t * cfg.shrink }
            .clamp(TRUST_FLOOR, cfg.max_trust_region);
    }
}

impl<T: Real> Solver<NetProblem<T>> for CertifiedMm<T> {
    fn name(&self) -> String {
        self.name_str()
    }

    fn init(&mut self, problem: &mut NetProblem<T>, _ctx: &mut Context) -> Result<(), SolverError> {
        self.st = CertState {
            steps: 0,
            trust: Vec::new(),
            base: None,
        };
        self.prepare(problem)?;
        problem.params(&mut self.params);
        self.st.base = Some(self.fresh_base(&self.params));
        Ok(())
    }

    fn step(
        &mut self,
        problem: &mut NetProblem<T>,
        ctx: &mut Context,
    ) -> Result<StepReport, SolverError> {
        self.prepare(problem)?;
        let n = problem.train.len();
        problem.params(&mut self.params);
        // Keep the layers' outputs: the enclosure reuses the first one (below).
        problem.keep_layer_outputs(true);
        let f0 = problem.value_grad(None, &mut self.grad)?;
        ctx.counters.add_value_grad(n);
        self.base_direction()?;
        let trust = self.st.trust.clone();
        let alpha_max: Vec<T> = trust.iter().map(|t| T::of(*t)).collect();
        let req = EnclosureRequest {
            net: &problem.net,
            loss: &problem.loss,
            inputs: problem.train.inputs(),
            targets: problem.train.targets(),
            directions: &self.dirs,
            alpha_max: &alpha_max,
        };
        // Unsupported layers, activations or losses, and non-finite weights, are typed
        // errors naming the culprit; an overflowing bound (huge trust region) comes back
        // as an infinite `quad_upper` and is handled by `choose_step` (no move, shrink).
        // The gradient pass's value serves as phi(0): the enclosure's slack is computed
        // against it, so `choose_step`'s test `bound < phi0 - slack` stays valid for the
        // driver's record, and the forward pass of `Sequential::objective` is saved.
        // The gradient pass's first-layer output W₁x + b₁ also saves the enclosure that
        // product (f64; `enclose_with_value_first` checks it against the weights).
        let first = problem
            .net
            .layers()
            .first()
            .and_then(|l| l.as_dense())
            .and(problem.full_batch_layer_output(0));
        let enc = match first {
            Some(first) => enclosure::enclose_with_value_first(&req, f0, first, &mut self.enc_ws),
            None => enclosure::enclose_with_value(&req, f0, &mut self.enc_ws),
        }
        .map_err(|e| SolverError::Problem(format!("certified MM: {e}")))?;
        ctx.counters.forward += 1;
        ctx.counters.samples_seen += n as u64;
        ctx.counters.inner_solves += 1;
        let step = choose_step(&enc, &trust, self.cfg.max_exact_dim)?;
        let enc = Some(enc);
        if step.certified {
            enclosure::apply_step(&mut problem.net, &self.params, &self.dirs, &step.alpha)
                .map_err(|e| SolverError::Problem(format!("certified MM: {e}")))?;
        }
        let alpha_f: Vec<f64> = step.alpha.iter().map(|a| a.to_f64()).collect();
        update_trust(&mut self.st.trust, &alpha_f, step.certified, &self.cfg);
        self.st.steps += 1;

        let phi0 = enc.as_ref().map_or(f64::NAN, |e| e.value.to_f64());
        let bound = if step.certified { step.bound } else { phi0 };
        let mut report = StepReport::new()
            .with_surrogate(bound)
            .with("certified", if step.certified { 1.0 } else { 0.0 })
            .with("phi0", phi0)
            .with("bound", bound)
            .with("slack", enc.as_ref().map_or(f64::NAN, |e| e.slack.to_f64()))
            .with(
                "exact_qp",
                step.qp.as_ref().map_or(f64::NAN, |q| f64::from(q.exact)),
            );
        let model = enc.as_ref().and_then(model_of);
        for (i, (a, t)) in alpha_f.iter().zip(&trust).enumerate() {
            let (slope, curv) = model
                .as_ref()
                .map_or((f64::NAN, f64::NAN), |(_, g, q, _)| (g[i], q[(i, i)]));
            report = report
                .with(&format!("step_{i}"), *a)
                .with(&format!("trust_{i}"), *t)
                .with(&format!("slope_{i}"), slope)
                .with(&format!("curvature_{i}"), curv);
        }
        if self.st.trust.iter().all(|t| *t < self.cfg.min_trust_region) {
            report.converged = Some(format!(
                "every trust region is below min_trust_region = {:e}: no certified decrease left",
                self.cfg.min_trust_region
            ));
        }
        Ok(report)
    }

    fn save_state(&self) -> serde_json::Value {
        serde_json::to_value(&self.st).unwrap_or(serde_json::Value::Null)
    }

    fn load_state(&mut self, v: &serde_json::Value) -> Result<(), SolverError> {
        self.st = serde_json::from_value(v.clone())?;
        Ok(())
    }

    /// The restored state must fit the problem: one trust region per step size (each
    /// finite, in `[0, max_trust_region]`), the base rule's state of the configured rule
    /// with vectors of the problem's dimension, counts at most 2^53.
    fn check_state(&self, problem: &NetProblem<T>) -> Result<(), SolverError> {
        const WHAT: &str = "certified MM";
        crate::state_check::check_count(WHAT, "steps", self.st.steps)?;
        let k = match self.cfg.step_sizes {
            StepSizes::Single => 1,
            StepSizes::PerLayer => {
                let mut groups = Vec::new();
                layer_groups_into(&problem.net, &mut groups);
                groups.len()
            }
        };
        crate::state_check::check_len(WHAT, "trust", k, self.st.trust.len())?;
        for t in &self.st.trust {
            crate::state_check::check_range(WHAT, "trust", *t, 0.0, self.cfg.max_trust_region)?;
        }
        let dim = problem.dim();
        match (&self.st.base, self.cfg.base) {
            (Some(BaseState::Sgd(s)), BaseDirection::Gd) => {
                Update::<T>::check_state(&sgd(0.0), s, dim)
            }
            (Some(BaseState::Sgd(s)), BaseDirection::HeavyBall { momentum }) => {
                Update::<T>::check_state(&sgd(momentum), s, dim)
            }
            (Some(BaseState::Adam(s)), BaseDirection::Adam { beta1, beta2, eps }) => {
                Update::<T>::check_state(&AdamRule { beta1, beta2, eps }, s, dim)
            }
            _ => Err(SolverError::Checkpoint(format!(
                "{WHAT} state: the base rule's state is missing or is not that of {}",
                self.cfg.base.short_name()
            ))),
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn a_non_finite_direction_is_a_typed_error() {
        let mut s = CertifiedConfig::safe_adam().build::<f64>().unwrap();
        s.params = vec![0.0; 3];
        s.grad = vec![1.0, f64::NAN, 0.0];
        s.trial = vec![0.0; 3];
        s.dirs = vec![DVector::zeros(3)];
        let e = s.base_direction().unwrap_err();
        assert_eq!(
            e.to_string(),
            "non-finite value in certified MM: the adam direction at parameter 1 (gradient NaN)"
        );
    }

    #[test]
    fn trust_region_rule() {
        let cfg = CertifiedConfig::default();
        let mut t = vec![1.0, 1.0, 1.0];
        update_trust(&mut t, &[1.0, 0.5, 0.49], true, &cfg);
        assert_eq!(t, vec![2.0, 2.0, 0.5]);
        update_trust(&mut t, &[2.0, 2.0, 0.5], false, &cfg);
        assert_eq!(t, vec![1.0, 1.0, 0.25]);
        let mut t = vec![0.9e12];
        update_trust(&mut t, &[0.9e12], true, &cfg);
        assert_eq!(t, vec![1e12]);
    }
}
