//! The public types of the enclosure engine and its entry points.

use autodiff::Real;
use nalgebra::{DMatrix, DVector};
use nets::{Activation, LossKind};

use super::fp::Iv;
use super::workspace::EnclosureWorkspace;
use crate::error::{MajorizeError, Result};
use crate::surrogate::{InnerSolve, Minimizer, MinimizerKind};

pub(super) const OP: &str = "enclose";

/// What to enclose: `phi(alpha) = F(x + sum_i alpha_i v_i)` for `alpha` in `[0, alpha_max]`,
/// where `x` are the weights stored in `net` and `F` is `loss` on `(inputs, targets)`
/// plus the L2 penalty (as [`nets::Sequential::objective`] computes it).
#[derive(Clone, Copy, Debug)]
pub struct EnclosureRequest<'a, T: Real> {
    /// The network at the base point `x`: dense layers and the activations identity,
    /// ReLU, leaky ReLU, tanh, sigmoid, softplus (anything else is a typed error).
    pub net: &'a nets::Sequential<T>,
    /// The loss: MSE, softmax cross-entropy or logistic, either reduction, L2 >= 0
    /// (the L2 term is enclosed exactly). The multiclass hinge is rejected.
    pub loss: &'a nets::Loss,
    /// Inputs, `d_0 x N`: the full batch or a given mini-batch (only this batch's
    /// objective is certified).
    pub inputs: &'a DMatrix<T>,
    /// Targets of the `N` samples.
    pub targets: &'a nets::Targets<T>,
    /// The `k >= 1` directions, each of length [`nets::Sequential::num_params`], in the
    /// flat order of [`nets::Sequential::params_to_flat`].
    pub directions: &'a [DVector<T>],
    /// The trust region `[0, alpha_max_i]` per direction; each finite and `> 0`.
    pub alpha_max: &'a [T],
}

/// A certified degree-2 enclosure of `phi(alpha)` on the box `[0, alpha_max]`.
///
/// For every `alpha` in the box, `lower_bound(alpha) <= phi(alpha) <= upper_bound(alpha)`,
/// where `phi(alpha)` is the floating-point objective ([`nets::Sequential::objective`], or
/// the solvers' driver's record `data + penalty`) of the network whose weights were set
/// by [`apply_step`](super::apply_step), and also the exact objective at the exact weights
/// `x + Σ alpha_i v_i`. Convention (no factor 1/2):
/// `phi(alpha) ∈ value + gradient·α + αᵀ[quad_lower, quad_upper]α ± slack` for
/// `alpha != 0`; at `alpha = 0` the network is unchanged and `phi(0) = value` exactly.
/// Since `alpha >= 0`, the upper endpoints give a majorizer on the box even when
/// `quad_upper` is indefinite (every monomial `alpha_i alpha_j` is nonnegative).
///
/// If the ranges overflow (a huge trust region), `quad_upper`/`slack` are `+inf` and
/// `quad_lower` is `-inf`: the bound is valid but useless; shrink the trust region.
#[derive(Clone, Debug, PartialEq)]
pub struct QuadraticEnclosure<T: Real> {
    /// `phi(0)`: the objective at the base point exactly as `Sequential::objective` computes it.
    pub value: T,
    /// One-sided derivatives `d phi / d alpha_i` at `0+` (k entries), rounded to `T`
    /// (the rounding is inside `slack`). At an exact ReLU kink this is the slope in the
    /// direction of increasing `alpha` and may differ from autodiff's `relu'(0) = 0`.
    pub gradient: Vec<T>,
    /// Lower endpoints of the degree-2 coefficient interval (k x k), valid on the whole box.
    pub quad_lower: DMatrix<T>,
    /// Upper endpoints of the degree-2 coefficient interval (k x k).
    pub quad_upper: DMatrix<T>,
    /// `>= 0`: additive term covering floating-point effects (rounding of the weights in
    /// [`apply_step`](super::apply_step), the driver's evaluation error, the enclosure's own arithmetic).
    /// Not applied at `alpha = 0`, where the bound is exact (`value`).
    pub slack: T,
    /// The trust region.
    pub alpha_max: Vec<T>,
}

pub(super) fn to_t_up<T: Real>(x: f64) -> T {
    if x.is_nan() {
        return T::of(f64::INFINITY);
    }
    let y = T::of(x);
    if y.to_f64() < x {
        T::of((y.to_f64() as f32).next_up() as f64)
    } else {
        y
    }
}

pub(super) fn to_t_down<T: Real>(x: f64) -> T {
    if x.is_nan() {
        return T::of(f64::NEG_INFINITY);
    }
    let y = T::of(x);
    if y.to_f64() > x {
        T::of((y.to_f64() as f32).next_down() as f64)
    } else {
        y
    }
}

impl<T: Real> QuadraticEnclosure<T> {
    /// Number of directions k.
    pub fn dim(&self) -> usize {
        self.gradient.len()
    }

    /// Errors unless the public fields agree (a value built by hand may not): `k =
    /// gradient.len()`, both quadratic parts `k x k`, `alpha_max` of length `k`.
    fn check_fields(&self, op: &'static str) -> Result<()> {
        let k = self.dim();
        if self.quad_lower.shape() != (k, k)
            || self.quad_upper.shape() != (k, k)
            || self.alpha_max.len() != k
        {
            return Err(MajorizeError::Shape {
                op,
                detail: format!(
                    "gradient has length {k} but quad_lower is {:?}, quad_upper is {:?} and alpha_max has length {} (expected {k}x{k}, {k}x{k}, {k})",
                    self.quad_lower.shape(),
                    self.quad_upper.shape(),
                    self.alpha_max.len()
                ),
            });
        }
        Ok(())
    }

    fn check_alpha(&self, alpha: &[T]) -> Result<bool> {
        self.check_fields("QuadraticEnclosure::bound")?;
        if alpha.len() != self.dim() {
            return Err(MajorizeError::Shape {
                op: "QuadraticEnclosure::bound",
                detail: format!("alpha has length {}, expected {}", alpha.len(), self.dim()),
            });
        }
        for (a, m) in alpha.iter().zip(&self.alpha_max) {
            if !(a.finite() && *a >= T::zero() && *a <= *m) {
                return Err(MajorizeError::InvalidParameter {
                    name: "alpha",
                    value: a.to_f64(),
                    reason: "must lie in the trust region [0, alpha_max]",
                });
            }
        }
        Ok(alpha.iter().all(|a| *a == T::zero()))
    }

    fn poly(&self, alpha: &[T], q: &DMatrix<T>, sign: f64) -> Iv {
        let k = self.dim();
        let mut s = Iv::point(self.value.to_f64());
        for i in 0..k {
            let a = alpha[i].to_f64();
            s = s.add(Iv::point(self.gradient[i].to_f64()).mul(Iv::point(a)));
            for j in 0..k {
                let aa = Iv::point(a).mul(Iv::point(alpha[j].to_f64()));
                s = s.add(aa.mul(Iv::point(q[(i, j)].to_f64())));
            }
        }
        s.add(Iv::point(sign * self.slack.to_f64()))
    }

    /// The certified upper bound `value + g·α + αᵀ Q_hi α + slack` (just `value` at
    /// `alpha = 0`), evaluated with outward rounding and rounded up to `T`.
    /// Errors if `alpha` has the wrong length or lies outside the box.
    pub fn upper_bound(&self, alpha: &[T]) -> Result<T> {
        if self.check_alpha(alpha)? {
            return Ok(self.value);
        }
        Ok(to_t_up(self.poly(alpha, &self.quad_upper, 1.0).hi))
    }

    /// The certified lower bound `value + g·α + αᵀ Q_lo α - slack` (`value` at 0), rounded down.
    pub fn lower_bound(&self, alpha: &[T]) -> Result<T> {
        if self.check_alpha(alpha)? {
            return Ok(self.value);
        }
        Ok(to_t_down(self.poly(alpha, &self.quad_lower, -1.0).lo))
    }

    /// The majorizer `q(alpha) = upper_bound(alpha)` as a [`crate::Surrogate`] over `alpha`
    /// (anchor 0, admissible = in the box).
    pub fn surrogate(&self) -> EnclosureSurrogate<T> {
        EnclosureSurrogate {
            enclosure: self.clone(),
            anchor: DVector::zeros(self.dim()),
        }
    }
}

/// [`QuadraticEnclosure::upper_bound`] as a [`crate::Surrogate`] in `alpha`-space:
/// anchor `0`, value `q(α)`, gradient `g + (Q_hi + Q_hiᵀ)α` (of the smooth part;
/// `q` jumps by `slack` off the anchor), admissible points = the box. For `k = 1` the
/// minimiser is in closed form (the best of `0`, `ᾱ` and the clipped vertex
/// `-g/(2 Q_hi)`, compared through `upper_bound`); for `k > 1` the generic monotone inner
/// solve is used, which never leaves the box and never increases `q`.
#[derive(Clone, Debug, PartialEq)]
pub struct EnclosureSurrogate<T: Real> {
    enclosure: QuadraticEnclosure<T>,
    anchor: DVector<T>,
}

impl<T: Real> EnclosureSurrogate<T> {
    /// The enclosure it wraps.
    pub fn enclosure(&self) -> &QuadraticEnclosure<T> {
        &self.enclosure
    }
}

impl<T: Real> crate::Surrogate<T> for EnclosureSurrogate<T> {
    fn anchor(&self) -> &DVector<T> {
        &self.anchor
    }
    fn value(&self, x: &DVector<T>) -> Result<T> {
        self.enclosure.upper_bound(x.as_slice())
    }
    fn gradient(&self, x: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        let e = &self.enclosure;
        let k = e.dim();
        e.check_fields("EnclosureSurrogate::gradient")?;
        crate::surrogate::check_len("EnclosureSurrogate::gradient", x, k)?;
        crate::surrogate::check_len("EnclosureSurrogate::gradient", grad, k)?;
        for i in 0..k {
            let mut g = e.gradient[i];
            for j in 0..k {
                g += (e.quad_upper[(i, j)] + e.quad_upper[(j, i)]) * x[j];
            }
            grad[i] = g;
        }
        Ok(())
    }
    fn admissible(&self, x: &DVector<T>) -> bool {
        x.len() == self.enclosure.dim()
            && x.iter()
                .zip(&self.enclosure.alpha_max)
                .all(|(a, m)| a.finite() && *a >= T::zero() && *a <= *m)
    }
    fn minimize(&self, inner: &InnerSolve) -> Result<Minimizer<T>> {
        let e = &self.enclosure;
        e.check_fields("EnclosureSurrogate::minimize")?;
        if e.dim() != 1 {
            return crate::surrogate::inner_minimize(self, inner);
        }
        let (g, q, m) = (e.gradient[0], e.quad_upper[(0, 0)], e.alpha_max[0]);
        let mut cands = vec![T::zero(), m];
        if q > T::zero() {
            let v = -g / (q + q);
            if v.finite() {
                cands.push(v.max(T::zero()).min(m));
            }
        }
        let mut best = (T::zero(), e.value);
        for c in cands {
            let v = e.upper_bound(&[c])?;
            if v < best.1 {
                best = (c, v);
            }
        }
        Ok(Minimizer {
            point: DVector::from_element(1, best.0),
            kind: MinimizerKind::ClosedForm,
        })
    }
}

pub(super) fn nets_err(e: nets::NetsError) -> MajorizeError {
    MajorizeError::Domain {
        op: OP,
        detail: e.to_string(),
    }
}

/// One element of the validated plan: a dense layer (its position) or an activation.
pub(crate) enum Step {
    Dense(usize),
    Act(Activation),
}

pub(super) fn validate<T: Real>(req: &EnclosureRequest<'_, T>) -> Result<Vec<Step>> {
    let net = req.net;
    let k = req.directions.len();
    if k == 0 {
        return Err(MajorizeError::Shape {
            op: OP,
            detail: "no direction given (need k >= 1)".into(),
        });
    }
    if req.alpha_max.len() != k {
        return Err(MajorizeError::Shape {
            op: OP,
            detail: format!(
                "{k} directions but alpha_max has length {}",
                req.alpha_max.len()
            ),
        });
    }
    for a in req.alpha_max {
        if !(a.finite() && *a > T::zero()) {
            return Err(MajorizeError::InvalidParameter {
                name: "alpha_max",
                value: a.to_f64(),
                reason: "the trust region [0, alpha_max] must be nonempty and finite (alpha_max finite and > 0)",
            });
        }
    }
    let p = net.num_params();
    for (i, d) in req.directions.iter().enumerate() {
        if d.len() != p {
            return Err(MajorizeError::Shape {
                op: OP,
                detail: format!(
                    "direction {i} has length {} but the network has {p} parameters",
                    d.len()
                ),
            });
        }
        if let Some(r) = d.iter().position(|v| !v.finite()) {
            return Err(MajorizeError::NonFinite {
                op: OP,
                what: "direction",
                row: r,
                col: i,
            });
        }
    }
    if req.loss.kind == LossKind::MulticlassHinge {
        return Err(MajorizeError::Unsupported(
            "enclose: loss multiclass_hinge (piecewise linear in the logits) is not supported; use mse, softmax_cross_entropy or logistic".into(),
        ));
    }
    let mut plan = Vec::new();
    for (i, l) in net.layers().iter().enumerate() {
        if let Some(d) = l.as_dense() {
            // A zero-width layer (`Sequential::from_weights` builds one) has no
            // per-sample columns for the sweep's loops: a typed error, not a panic.
            if d.weight.nrows() == 0 || d.weight.ncols() == 0 {
                return Err(MajorizeError::Shape {
                    op: OP,
                    detail: format!(
                        "dense layer {i} is {}x{}: a layer of zero width is not supported",
                        d.weight.nrows(),
                        d.weight.ncols()
                    ),
                });
            }
            plan.push(Step::Dense(i));
        } else if let Some(a) = l.as_activation() {
            if matches!(a, Activation::Elu { .. }) {
                return Err(MajorizeError::Unsupported(format!(
                    "enclose: layer {i} is activation {} which has no enclosure rule (supported: identity, relu, leaky_relu, tanh, sigmoid, softplus)",
                    a.name()
                )));
            }
            a.validate().map_err(nets_err)?;
            plan.push(Step::Act(a));
        } else {
            return Err(MajorizeError::Unsupported(format!(
                "enclose: layer {i} ({}) is neither a dense layer nor an elementwise activation",
                l.kind()
            )));
        }
    }
    if let Some(d) = net.input_dim()
        && req.inputs.nrows() != d
    {
        return Err(MajorizeError::Shape {
            op: OP,
            detail: format!(
                "network takes {d} input rows but inputs have {}",
                req.inputs.nrows()
            ),
        });
    }
    if req.inputs.ncols() == 0 {
        return Err(MajorizeError::Shape {
            op: OP,
            detail: "inputs have no columns (samples)".into(),
        });
    }
    crate::validate::finite(OP, "inputs", req.inputs)?;
    let mut offset = 0;
    for p in params(net) {
        if let Some(r) = p.values.iter().position(|v| !v.finite()) {
            return Err(MajorizeError::NonFinite {
                op: OP,
                what: "weights",
                row: offset + r,
                col: 0,
            });
        }
        offset += p.values.len();
    }
    Ok(plan)
}

/// The network's parameter tensors in the flat order of
/// [`nets::Sequential::params_to_flat`] (borrowed, no copy).
pub(super) fn params<T: Real>(
    net: &nets::Sequential<T>,
) -> impl Iterator<Item = nets::ParamRef<'_, T>> {
    net.layers()
        .iter()
        .flat_map(|l| (0..l.num_param_tensors()).filter_map(move |i| l.param(i)))
}

/// Computes the certified enclosure of the request (see [`QuadraticEnclosure`] and the
/// module doc for the rules and the floating-point argument).
///
/// Errors: an unsupported layer, activation (ELU) or loss (multiclass hinge), naming it;
/// an empty or non-finite trust region; a non-finite or wrong-length direction; shape
/// mismatches of inputs/targets; a dense layer of zero width; non-finite inputs or weights.
pub fn enclose<T: Real>(req: &EnclosureRequest<'_, T>) -> Result<QuadraticEnclosure<T>> {
    enclose_with(req, &mut EnclosureWorkspace::new())
}

/// [`enclose`] with caller-kept scratch memory: the same result bit for bit, but the
/// large per-sample buffers are taken from (and returned to) `ws`, so repeated calls on
/// the same shapes allocate no large matrix (solvers should keep one workspace per run).
/// Errors as [`enclose`].
pub fn enclose_with<T: Real>(
    req: &EnclosureRequest<'_, T>,
    ws: &mut EnclosureWorkspace,
) -> Result<QuadraticEnclosure<T>> {
    let plan = validate(req)?;
    super::extreme::check_l2(req.loss)?;
    let value = req
        .net
        .objective(req.loss, req.inputs, req.targets)
        .map_err(nets_err)?;
    super::sweep::enclose_planned(req, &plan, value, ws)
}

/// [`enclose_with`] around a base value the caller already has (e.g. the loss returned
/// by the gradient pass, `nets::loss_and_grad`), which saves the forward pass that
/// computes `Sequential::objective`.
///
/// The result's `value` is the given `value`, and its `slack` is computed against it
/// (`slack >= e + |c0 - value| + ...`, section "Taylor model" of docs/MAJORIZE.md), so
/// for every `alpha != 0` in the box the bounds hold exactly as for [`enclose_with`].
/// At `alpha = 0` the driver's objective lies in `value ± slack` (it equals `value`
/// only if `value` is what `Sequential::objective` returns). A solver that steps only
/// when `upper_bound(alpha) < value - slack` therefore never increases the recorded
/// objective. Errors as [`enclose`], and a typed error if `value` is not finite.
pub fn enclose_with_value<T: Real>(
    req: &EnclosureRequest<'_, T>,
    value: T,
    ws: &mut EnclosureWorkspace,
) -> Result<QuadraticEnclosure<T>> {
    let plan = validate(req)?;
    super::extreme::check_l2(req.loss)?;
    super::sweep::enclose_planned(req, &plan, value, ws)
}

/// [`enclose_with_value`] that also takes the first layer's output from the caller's
/// forward pass: `first = W₁ x + b₁` on `req.inputs` at the request's weights (what
/// [`nets::loss_and_grad_outputs`] records), which saves the enclosure's largest
/// product. Only for `T = f64`, where any f64 evaluation of that sum is covered by the
/// dense rule's rounding term (`γ_{n+1}(|W₁||x| + |b₁|)`, any order); for other `T` the
/// product is recomputed and `first` is only checked.
///
/// `first` is checked before use: the network must start with a dense layer, `first`
/// must have that layer's shape on the inputs and be finite, and its first and last
/// columns must agree with a recomputation within `2 γ_{n+1}(|W₁||x| + |b₁|)`; otherwise
/// a typed error. Errors as [`enclose_with_value`] besides.
pub fn enclose_with_value_first<T: Real>(
    req: &EnclosureRequest<'_, T>,
    value: T,
    first: &DMatrix<T>,
    ws: &mut EnclosureWorkspace,
) -> Result<QuadraticEnclosure<T>> {
    let plan = validate(req)?;
    super::extreme::check_l2(req.loss)?;
    check_first(req, &plan, first)?;
    let first64 = super::downcast::<_, DMatrix<f64>>(first);
    let planned = super::sweep::Planned::whole(&plan);
    let given = super::sweep::Given {
        out: first64,
        dir: None,
    };
    super::sweep::enclose_planned_first(req, planned, Some(value), given, ws)
}

/// The checks of [`enclose_with_value_first`] on the caller's first-layer output.
fn check_first<T: Real>(
    req: &EnclosureRequest<'_, T>,
    plan: &[Step],
    first: &DMatrix<T>,
) -> Result<()> {
    let bad = |detail: String| MajorizeError::Shape { op: OP, detail };
    let Some(Step::Dense(0)) = plan.first() else {
        return Err(bad(
            "the first layer's output was given but the network does not start with a dense layer"
                .into(),
        ));
    };
    let Some(d) = req.net.layers()[0].as_dense() else {
        return Err(bad("layer 0 is not dense".into()));
    };
    check_output(d, req.inputs, first, &"first layer")
}

/// Checks that `first` is dense layer `d`'s output `W x + b` on `inputs` (`name` names
/// the layer in the errors; it is formatted only on an error): its shape, finiteness, and its first and last columns
/// against a recomputation within `2 γ_{n+1}(|W||x| + |b|)` (coarser in f32).
pub(super) fn check_output<T: Real>(
    d: &nets::Dense<T>,
    inputs: &DMatrix<T>,
    first: &DMatrix<T>,
    name: &dyn std::fmt::Display,
) -> Result<()> {
    let (rows, n) = d.weight.shape();
    let affine = AffineParts {
        weight: d.weight.as_slice(),
        rows,
        cols: n,
        bias: d.bias.as_slice(),
    };
    check_affine_output(affine, inputs, first, name)
}

/// A dense map `x -> W x + b` read in place: `weight` is `W` column-major
/// (`rows x cols`), `bias` has `rows` entries (the caller guarantees both lengths).
#[derive(Clone, Copy)]
pub(super) struct AffineParts<'a, T> {
    /// `W`, column-major, `rows * cols` entries.
    pub weight: &'a [T],
    /// Rows of `W` (outputs).
    pub rows: usize,
    /// Columns of `W` (inputs).
    pub cols: usize,
    /// `b`, `rows` entries.
    pub bias: &'a [T],
}

/// [`check_output`] on a map given by its parts: no matrix is built, so a solver can
/// check a direction's block part inside its training loop without allocating.
pub(super) fn check_affine_output<T: Real>(
    map: AffineParts<'_, T>,
    inputs: &DMatrix<T>,
    first: &DMatrix<T>,
    name: &dyn std::fmt::Display,
) -> Result<()> {
    let bad = |detail: String| MajorizeError::Shape { op: OP, detail };
    let (rows, n) = (map.rows, map.cols);
    let cols = inputs.ncols();
    if first.shape() != (rows, cols) || inputs.nrows() != n || cols == 0 {
        return Err(bad(format!(
            "the {name}'s output is {}x{} on {}x{cols} inputs, expected {rows}x{cols} on {n}x{cols} (cols > 0)",
            first.nrows(),
            first.ncols(),
            inputs.nrows(),
        )));
    }
    crate::validate::finite(OP, "first layer output", first)?;
    let tol_gamma = 2.0 * super::fp::gamma(n + 1, super::fp::U64);
    for j in [0, cols - 1] {
        for r in 0..rows {
            let bias = map.bias[r].to_f64();
            let (mut s, mut a) = (bias, bias.abs());
            for c in 0..n {
                let p = map.weight[r + c * rows].to_f64() * inputs[(c, j)].to_f64();
                s += p;
                a += p.abs();
            }
            let tol = super::fp::up_ops(tol_gamma * a, n + 3) + 1e-300;
            let got = first[(r, j)].to_f64();
            // In f32 the caller's value carries f32 rounding: only a coarse check.
            let tol = if T::EPS.to_f64() > 1e-10 {
                tol + 4.0 * T::EPS.to_f64() * (a + got.abs()) * n as f64
            } else {
                tol
            };
            let within = (got - s).abs() <= tol;
            if !within {
                return Err(MajorizeError::Domain {
                    op: OP,
                    detail: format!(
                        "the given {name}'s output at ({r}, {j}) is {got:e}, but W x + b is {s:e}: it is not this network's {name} on these inputs"
                    ),
                });
            }
        }
    }
    Ok(())
}
