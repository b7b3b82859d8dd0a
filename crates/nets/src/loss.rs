//! Losses on the network output (`K x N` logits or predictions, samples as columns),
//! with the curvature bound each states for majorization-minimization.
//!
//! Per-sample losses `ell(z, y)` for one column `z` (K outputs):
//!
//! | kind | ell(z, y) | targets | Hessian in z | stated bound |
//! |---|---|---|---|---|
//! | `Mse` | (1/2) sum_k (z_k - y_k)^2 | dense `K x N`, or labels (one-hot) | I | I |
//! | `SoftmaxCrossEntropy` | -sum_k y_k log softmax(z)_k | labels, or dense (soft) targets | (sum y)(diag p - p p^T) | Böhning (1/2)(I - 11^T/K) (for sum y = 1) |
//! | `Logistic` | sum_k softplus(z_k) - y_k z_k | dense in [0, 1]; labels (1 output, 2 classes; or one-hot) | diag(s_k (1 - s_k)) | (1/4) I |
//! | `MulticlassHinge` | sum_{j != y} max(0, 1 + z_j - z_y) (Weston-Watkins) | labels | none (piecewise linear) | none |
//!
//! The data term is `sum_n ell(z_n, y_n)` (`Reduction::Sum`) or that divided by N
//! (`Reduction::Mean`), N = number of columns. The optional weight penalty
//! `(l2 / 2) sum_l ||W_l||_F^2` covers **weights only, never biases** (nor parameters a
//! user layer marks as not penalised); it is added by [`crate::loss_and_grad`] and
//! [`Loss::penalty`], not by [`Loss::value`] (the data term).
//!
//! Curvature bounds are on the per-sample Hessian; with `Mean` the data term's Hessian
//! in the column `z_n` is that bound times 1/N ([`Loss::sample_weight`]).
//! Böhning's bound: D. Böhning, Ann. Inst. Statist. Math. 44 (1992); ALGORITHMS.md 10.3-10.4.

use autodiff::Real;
use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use crate::Reduction;
use crate::activation::{sigmoid, softplus};
use crate::dataset::Targets;
use crate::error::{NetsError, Result};

/// Which per-sample loss (see the module table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LossKind {
    /// (1/2) ||z - y||^2 per sample.
    Mse,
    /// Softmax cross-entropy on logits.
    SoftmaxCrossEntropy,
    /// Binary cross-entropy on logits, summed over outputs.
    Logistic,
    /// Weston-Watkins multiclass hinge.
    MulticlassHinge,
}

/// A training loss: per-sample kind, explicit reduction over samples, and an L2 weight
/// penalty `(l2 / 2) sum_l ||W_l||_F^2` (weights only, not biases).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Loss {
    /// Per-sample loss.
    pub kind: LossKind,
    /// Sum or mean over samples (columns).
    pub reduction: Reduction,
    /// L2 weight-penalty coefficient lambda >= 0.
    pub l2: f64,
}

/// A bound `H <= B` (PSD order) on the Hessian of the per-sample loss in its logits.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum CurvatureBound {
    /// `B = c I`.
    ScaledIdentity(f64),
    /// Böhning's `B = (1/2)(I - 1 1^T / K)`, largest eigenvalue 1/2 (K >= 2).
    Bohning {
        /// Number of classes K.
        classes: usize,
    },
    /// No quadratic bound: the loss is piecewise linear (not twice differentiable).
    NotSmooth,
}

impl CurvatureBound {
    /// Largest eigenvalue of B (a Lipschitz constant of the per-sample gradient), if any.
    pub fn max_eigenvalue(&self) -> Option<f64> {
        match *self {
            CurvatureBound::ScaledIdentity(c) => Some(c),
            CurvatureBound::Bohning { classes } => Some(if classes >= 2 { 0.5 } else { 0.0 }),
            CurvatureBound::NotSmooth => None,
        }
    }

    /// B as a dense `K x K` matrix (`None` when there is no bound).
    pub fn matrix(&self, k: usize) -> Option<DMatrix<f64>> {
        match *self {
            CurvatureBound::ScaledIdentity(c) => Some(DMatrix::identity(k, k) * c),
            CurvatureBound::Bohning { .. } => {
                let kf = k.max(1) as f64;
                Some(DMatrix::from_fn(k, k, |i, j| {
                    0.5 * (if i == j { 1.0 } else { 0.0 } - 1.0 / kf)
                }))
            }
            CurvatureBound::NotSmooth => None,
        }
    }

    /// `out = B d` column by column, for a `K x N` direction `d` (no allocation when
    /// `out` already has d's shape). Errors when there is no bound.
    pub fn apply<T: Real>(&self, d: &DMatrix<T>, out: &mut DMatrix<T>) -> Result<()> {
        if out.shape() != d.shape() {
            *out = DMatrix::zeros(d.nrows(), d.ncols());
        }
        match *self {
            CurvatureBound::ScaledIdentity(c) => {
                let c = T::of(c);
                for (o, &x) in out.as_mut_slice().iter_mut().zip(d.as_slice()) {
                    *o = c * x;
                }
            }
            CurvatureBound::Bohning { .. } => {
                let k = d.nrows();
                let half = T::of(0.5);
                for (oc, dc) in out.column_iter_mut().zip(d.column_iter()) {
                    let mean = dc.sum() / T::of(k as f64);
                    for (o, &x) in oc.into_iter().zip(dc.iter()) {
                        *o = half * (x - mean);
                    }
                }
            }
            CurvatureBound::NotSmooth => {
                return Err(NetsError::Unsupported {
                    op: "CurvatureBound::apply",
                    what: "a piecewise-linear loss".into(),
                    reason: "it has no quadratic curvature bound",
                });
            }
        }
        Ok(())
    }
}

/// How targets are read for one column: the target value of output `k` of sample `n`.
pub(crate) enum TargetView<'a, T: Real> {
    Dense(&'a DMatrix<T>),
    /// One-hot of the label (K = output rows).
    OneHot(&'a [usize]),
    /// Single output row, the label (0 or 1) as the target.
    Binary(&'a [usize]),
    /// Labels for a loss that uses them directly (softmax CE, hinge).
    Labels(&'a [usize]),
}

impl<T: Real> TargetView<'_, T> {
    #[inline]
    pub(crate) fn at(&self, k: usize, n: usize) -> T {
        match self {
            TargetView::Dense(y) => y[(k, n)],
            TargetView::OneHot(l) | TargetView::Labels(l) => {
                if l[n] == k {
                    T::one()
                } else {
                    T::zero()
                }
            }
            TargetView::Binary(l) => T::of(l[n] as f64),
        }
    }
}

impl Loss {
    /// A loss with no weight penalty.
    pub fn new(kind: LossKind, reduction: Reduction) -> Self {
        Loss {
            kind,
            reduction,
            l2: 0.0,
        }
    }

    /// The same loss with weight penalty `(l2 / 2) sum ||W||_F^2`.
    pub fn with_l2(mut self, l2: f64) -> Self {
        self.l2 = l2;
        self
    }

    /// Checks `l2` (finite, >= 0).
    pub fn validate(&self) -> Result<()> {
        if self.l2.is_finite() && self.l2 >= 0.0 {
            Ok(())
        } else {
            Err(NetsError::InvalidArgument {
                op: "Loss",
                name: "l2",
                value: self.l2,
                reason: "must be finite and >= 0",
            })
        }
    }

    /// The weight of one sample in the data term: 1 (Sum) or 1/N (Mean).
    pub fn sample_weight(&self, n: usize) -> f64 {
        match self.reduction {
            Reduction::Sum => 1.0,
            Reduction::Mean => 1.0 / n.max(1) as f64,
        }
    }

    /// The bound on the per-sample Hessian in the logits (module table).
    pub fn curvature_bound(&self, classes: usize) -> CurvatureBound {
        match self.kind {
            LossKind::Mse => CurvatureBound::ScaledIdentity(1.0),
            LossKind::SoftmaxCrossEntropy => CurvatureBound::Bohning { classes },
            LossKind::Logistic => CurvatureBound::ScaledIdentity(0.25),
            LossKind::MulticlassHinge => CurvatureBound::NotSmooth,
        }
    }

    /// `(l2 / 2) ||w||^2` for one weight tensor (values in any order).
    pub fn penalty<T: Real>(&self, weights: &[T]) -> f64 {
        0.5 * self.l2 * weights.iter().map(|w| w.to_f64() * w.to_f64()).sum::<f64>()
    }

    fn name(&self) -> &'static str {
        match self.kind {
            LossKind::Mse => "mse",
            LossKind::SoftmaxCrossEntropy => "softmax_cross_entropy",
            LossKind::Logistic => "logistic",
            LossKind::MulticlassHinge => "multiclass_hinge",
        }
    }

    /// Checks that targets fit an output of shape `rows x cols` and says how to read them.
    pub(crate) fn target_view<'a, T: Real>(
        &self,
        rows: usize,
        cols: usize,
        targets: &'a Targets<T>,
    ) -> Result<TargetView<'a, T>> {
        let op = self.name();
        let err = |detail: String| NetsError::Targets { op, detail };
        if rows == 0 {
            return Err(err("the output has no rows".into()));
        }
        if targets.len() != cols {
            return Err(err(format!(
                "output has {cols} samples (columns) but there are {} targets",
                targets.len()
            )));
        }
        match targets {
            Targets::Dense(y) => {
                if self.kind == LossKind::MulticlassHinge {
                    return Err(err(
                        "the multiclass hinge loss needs class labels, not dense targets".into(),
                    ));
                }
                if y.nrows() != rows {
                    return Err(err(format!(
                        "output has {rows} rows but dense targets have {}",
                        y.nrows()
                    )));
                }
                if self.kind == LossKind::Logistic
                    && let Some(v) = y.iter().find(|v| !(**v >= T::zero() && **v <= T::one()))
                {
                    return Err(err(format!(
                        "logistic targets must lie in [0, 1], found {v}"
                    )));
                }
                Ok(TargetView::Dense(y))
            }
            Targets::Labels { labels, classes } => {
                if let Some((i, &l)) = labels.iter().enumerate().find(|(_, l)| **l >= *classes) {
                    return Err(err(format!(
                        "label {l} at sample {i} is out of range for {classes} classes"
                    )));
                }
                match self.kind {
                    LossKind::Logistic if rows == 1 && *classes == 2 => {
                        Ok(TargetView::Binary(labels))
                    }
                    _ if *classes != rows => Err(err(format!(
                        "output has {rows} rows but the labels have {classes} classes"
                    ))),
                    LossKind::Mse | LossKind::Logistic => Ok(TargetView::OneHot(labels)),
                    LossKind::SoftmaxCrossEntropy | LossKind::MulticlassHinge => {
                        Ok(TargetView::Labels(labels))
                    }
                }
            }
        }
    }

    /// The data term (no weight penalty) of `output` (`K x N`), without a tape.
    pub fn value<T: Real>(&self, output: &DMatrix<T>, targets: &Targets<T>) -> Result<T> {
        let view = self.target_view(output.nrows(), output.ncols(), targets)?;
        let mut total = 0.0f64;
        for n in 0..output.ncols() {
            total += self.sample_value(output, &view, n);
        }
        Ok(T::of(total * self.sample_weight(output.ncols())))
    }

    /// The data term and its gradient with respect to `output` (`grad` is resized to
    /// the output's shape if needed). At the kinks of the hinge the subgradient 0 is used
    /// for a margin exactly 0.
    pub fn value_and_output_grad<T: Real>(
        &self,
        output: &DMatrix<T>,
        targets: &Targets<T>,
        grad: &mut DMatrix<T>,
    ) -> Result<T> {
        let view = self.target_view(output.nrows(), output.ncols(), targets)?;
        if grad.shape() != output.shape() {
            *grad = DMatrix::zeros(output.nrows(), output.ncols());
        }
        let w = self.sample_weight(output.ncols());
        let wt = T::of(w);
        let k = output.nrows();
        let mut total = 0.0f64;
        // Softmax: each column's exps once, in f64 for the value and in T for the
        // gradient (the same numbers when T is f64: one `exp` per entry instead of three).
        let same_exp = T::dtype_name() == "f64";
        let (mut ef, mut et) = (Vec::new(), Vec::new());
        for n in 0..output.ncols() {
            let z = output.column(n);
            if self.kind == LossKind::SoftmaxCrossEntropy {
                let mx = z.max();
                let mxf = mx.to_f64();
                ef.clear();
                ef.extend((0..k).map(|i| (z[i].to_f64() - mxf).exp()));
                et.clear();
                if same_exp {
                    et.extend(ef.iter().map(|&e| T::of(e)));
                } else {
                    et.extend((0..k).map(|i| (z[i] - mx).exp()));
                }
                total += ce_sample_value(output, &view, n, mxf, ef.iter().copied().sum());
                let mut se = T::zero();
                for &e in &et {
                    se += e;
                }
                let mut ysum = T::zero();
                for i in 0..k {
                    ysum += view.at(i, n);
                }
                for i in 0..k {
                    let p = et[i] / se;
                    grad[(i, n)] = wt * (ysum * p - view.at(i, n));
                }
                continue;
            }
            total += self.sample_value(output, &view, n);
            match self.kind {
                LossKind::Mse => {
                    for i in 0..k {
                        grad[(i, n)] = wt * (z[i] - view.at(i, n));
                    }
                }
                LossKind::Logistic => {
                    for i in 0..k {
                        grad[(i, n)] = wt * (sigmoid(z[i]) - view.at(i, n));
                    }
                }
                LossKind::SoftmaxCrossEntropy => unreachable!("handled above"),
                LossKind::MulticlassHinge => {
                    let TargetView::Labels(l) = view else {
                        unreachable!("checked by target_view")
                    };
                    let y = l[n];
                    let mut gy = T::zero();
                    for i in 0..k {
                        grad[(i, n)] = T::zero();
                        let m = T::one() + z[i] - z[y];
                        if i != y && m > T::zero() {
                            grad[(i, n)] = wt;
                            gy -= wt;
                        } else if i != y && m.to_f64().is_nan() {
                            grad[(i, n)] = m;
                            gy = m;
                        }
                    }
                    grad[(y, n)] = gy;
                }
            }
        }
        Ok(T::of(total * w))
    }

    /// ell(z_n, y_n) for column n, accumulated in f64.
    fn sample_value<T: Real>(
        &self,
        output: &DMatrix<T>,
        view: &TargetView<'_, T>,
        n: usize,
    ) -> f64 {
        let z = output.column(n);
        let k = output.nrows();
        match self.kind {
            LossKind::Mse => (0..k)
                .map(|i| {
                    let r = (z[i] - view.at(i, n)).to_f64();
                    0.5 * r * r
                })
                .sum(),
            LossKind::Logistic => (0..k)
                .map(|i| (softplus(z[i]) - view.at(i, n) * z[i]).to_f64())
                .sum(),
            LossKind::SoftmaxCrossEntropy => {
                let mx = z.max().to_f64();
                let sum_exp = (0..k).map(|i| (z[i].to_f64() - mx).exp()).sum::<f64>();
                ce_sample_value(output, view, n, mx, sum_exp)
            }
            LossKind::MulticlassHinge => {
                let TargetView::Labels(l) = view else {
                    return f64::NAN;
                };
                let y = l[n];
                (0..k)
                    .filter(|&i| i != y)
                    .map(|i| hinge_term(1.0 + z[i].to_f64() - z[y].to_f64()))
                    .sum()
            }
        }
    }
}

/// `max(m, 0)` of a hinge margin, NaN for a NaN margin (`f64::max` would return 0 and
/// hide a NaN output behind a finite loss).
fn hinge_term(m: f64) -> f64 {
    if m <= 0.0 { 0.0 } else { m }
}

/// Softmax cross-entropy of column `n`, `sum_i y_i (lse - z_i)` with
/// `lse = mx + ln(sum_exp)`, `mx` the column's maximum and `sum_exp = sum_i exp(z_i - mx)`
/// (in f64, summed in entry order by the caller).
fn ce_sample_value<T: Real>(
    output: &DMatrix<T>,
    view: &TargetView<'_, T>,
    n: usize,
    mx: f64,
    sum_exp: f64,
) -> f64 {
    let z = output.column(n);
    let lse = mx + sum_exp.ln();
    (0..output.nrows())
        .map(|i| {
            let y = view.at(i, n).to_f64();
            if y == 0.0 {
                0.0
            } else {
                y * (lse - z[i].to_f64())
            }
        })
        .sum()
}

/// Fraction of samples whose predicted class matches the label: the argmax of each
/// output column (first index on ties), or for a single output row with 2 classes,
/// class 1 iff the logit is > 0. `None` for dense targets or when shapes disagree
/// (columns vs targets, rows vs classes).
pub fn accuracy<T: Real>(outputs: &DMatrix<T>, targets: &Targets<T>) -> Option<f64> {
    let Targets::Labels { labels, classes } = targets else {
        return None;
    };
    if labels.len() != outputs.ncols() || labels.is_empty() {
        return None;
    }
    let binary = outputs.nrows() == 1 && *classes == 2;
    if !binary && outputs.nrows() != *classes {
        return None;
    }
    let mut right = 0usize;
    for (n, &l) in labels.iter().enumerate() {
        let pred = if binary {
            usize::from(outputs[(0, n)] > T::zero())
        } else {
            let c = outputs.column(n);
            let mut best = 0;
            for i in 1..c.len() {
                if c[i] > c[best] {
                    best = i;
                }
            }
            best
        };
        right += usize::from(pred == l);
    }
    Some(right as f64 / labels.len() as f64)
}
