//! The lifted variables shared by both ADMM solvers, their initialisation from a
//! network's forward pass, residuals, and the write-back of the weights.
//!
//! Layers are 0-based here: `w[l]`, `b[l]`, `z[l]` for dense layer `l = 0..L-1`
//! (the papers' layer `l + 1`), `a[l] = h_l(z[l])` for the hidden layers `l < L-1`;
//! the input `X` plays `A_0`. Memory: `z` and `a` hold `N (sum_l d_l + sum_{l<L-1}
//! d_l)` numbers, i.e. about `2 N sum_{hidden} d_l + N d_L`; each solver adds at most
//! two scratch matrices of the widest layer (`<= 2 N max_l d_l`), never a second copy
//! of all lifted variables.

use autodiff::Real;
use nalgebra::{DMatrix, DVector};
use nets::{Activation, Sequential};
use serde::{Deserialize, Serialize};

use crate::SolverError;
use crate::linalg::{affine, all_finite, ensure_shape, sq_norm};

/// Weights, biases and lifted variables of an MLP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Lifted<T: Real> {
    /// `W_l`, `d_l x d_{l-1}`.
    pub w: Vec<DMatrix<T>>,
    /// `b_l`.
    pub b: Vec<DVector<T>>,
    /// Pre-activations `Z_l`, `d_l x N` (the last one is the output).
    pub z: Vec<DMatrix<T>>,
    /// Activations `A_l`, `d_l x N`, hidden layers only.
    pub a: Vec<DMatrix<T>>,
    /// Activation of every hidden layer.
    pub h: Vec<Activation>,
}

/// Primal residuals `||Z_l - W_l A_{l-1} - b_l||_F` (every layer) and `||A_l -
/// h(Z_l)||_F` (hidden layers), after a step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Residuals {
    /// `||Z_l - W_l A_{l-1} - b_l||_F` per layer.
    pub linear: Vec<f64>,
    /// `||A_l - h(Z_l)||_F` per hidden layer.
    pub activation: Vec<f64>,
}

impl Residuals {
    /// `sqrt(sum_l linear_l^2)`.
    pub fn linear_total(&self) -> f64 {
        self.linear.iter().map(|x| x * x).sum::<f64>().sqrt()
    }
    /// `sqrt(sum_l activation_l^2)`.
    pub fn activation_total(&self) -> f64 {
        self.activation.iter().map(|x| x * x).sum::<f64>().sqrt()
    }
    /// Adds the residuals as report extras (`r_lin_<l>`, `r_act_<l>`, 1-based layers,
    /// and the totals `primal_linear`, `primal_activation`).
    pub fn push_extras(&self, extras: &mut Vec<(String, f64)>) {
        for (l, r) in self.linear.iter().enumerate() {
            extras.push((format!("r_lin_{}", l + 1), *r));
        }
        for (l, r) in self.activation.iter().enumerate() {
            extras.push((format!("r_act_{}", l + 1), *r));
        }
        extras.push(("primal_linear".into(), self.linear_total()));
        extras.push(("primal_activation".into(), self.activation_total()));
    }
}

impl<T: Real> Lifted<T> {
    /// Number of dense layers L.
    pub fn layers(&self) -> usize {
        self.w.len()
    }

    /// Weights from `net` and lifted variables from its forward pass on `x`
    /// (`Z_l` and `A_l = h(Z_l)` exactly, so every residual starts at 0).
    pub fn from_net(net: &Sequential<T>, x: &DMatrix<T>) -> Result<Self, SolverError> {
        let view = net
            .mlp_view()
            .map_err(|e| SolverError::NotApplicable(format!("ADMM needs an MLP: {e}")))?;
        let trace = net
            .forward_trace(x)
            .map_err(|e| SolverError::Problem(format!("ADMM forward trace: {e}")))?;
        let l_count = view.num_layers();
        let (w, b) = weights_of(net, l_count)?;
        let mut tz = trace.z;
        let mut ta = trace.a;
        // trace.z[0] is an empty placeholder, trace.a[0] = X, trace.a[L] = Z_L.
        tz.remove(0);
        ta.remove(0);
        ta.truncate(l_count.saturating_sub(1));
        let h = view.activations[..l_count.saturating_sub(1)].to_vec();
        Ok(Lifted {
            w,
            b,
            z: tz,
            a: ta,
            h,
        })
    }

    /// Weights and biases from `net` (their shapes; the Taylor start overwrites their
    /// values by least squares), and lifted variables for `n` samples drawn i.i.d.
    /// `N(0, std^2)` from `rng` (Taylor et al., ICML 2016, Section 6, p. 6). Draw order:
    /// layer by layer, `Z_l` then `A_l` (hidden layers), each column by column, from
    /// consecutive [`nets::init::normal_pair`] draws (both values of a pair used), so a
    /// seed fixes every entry. Errors if `std` is not finite and > 0 or `net` is no MLP.
    pub fn gaussian<R: rand::Rng + ?Sized>(
        net: &Sequential<T>,
        n: usize,
        std: f64,
        rng: &mut R,
    ) -> Result<Self, SolverError> {
        if !(std > 0.0 && std.is_finite()) {
            return Err(SolverError::config(
                "Lifted::gaussian",
                "std",
                std,
                "must be finite and > 0",
            ));
        }
        let view = net
            .mlp_view()
            .map_err(|e| SolverError::NotApplicable(format!("ADMM needs an MLP: {e}")))?;
        let l_count = view.num_layers();
        let mut pending: Option<f64> = None;
        let mut draw = |m: &mut DMatrix<T>| {
            for v in m.iter_mut() {
                let g = match pending.take() {
                    Some(g) => g,
                    None => {
                        let (a, b) = nets::init::normal_pair(rng);
                        pending = Some(b);
                        a
                    }
                };
                *v = T::of(std * g);
            }
        };
        let (w, b) = weights_of(net, l_count)?;
        let (mut z, mut a) = (Vec::new(), Vec::new());
        for (l, wl) in w.iter().enumerate() {
            let mut zl = DMatrix::zeros(wl.nrows(), n);
            draw(&mut zl);
            z.push(zl);
            if l + 1 < l_count {
                let mut al = DMatrix::zeros(wl.nrows(), n);
                draw(&mut al);
                a.push(al);
            }
        }
        let h = view.activations[..l_count.saturating_sub(1)].to_vec();
        Ok(Lifted { w, b, z, a, h })
    }

    /// Copies the weights and biases into the dense layers of `net`.
    pub fn write_to(&self, net: &mut Sequential<T>) -> Result<(), SolverError> {
        for l in 0..self.layers() {
            let d = net
                .dense_mut(l)
                .ok_or_else(|| SolverError::Problem(format!("dense layer {l} missing")))?;
            if d.weight.shape() != self.w[l].shape() || d.bias.len() != self.b[l].len() {
                return Err(SolverError::shape(
                    format!("ADMM write-back of layer {}", l + 1),
                    format!("{:?}", self.w[l].shape()),
                    format!("{:?}", d.weight.shape()),
                ));
            }
            d.weight.copy_from(&self.w[l]);
            d.bias.copy_from(&self.b[l]);
        }
        Ok(())
    }

    /// The input of layer `l`: `X` for `l = 0`, else `A_{l-1}`.
    pub fn input<'a>(&'a self, x: &'a DMatrix<T>, l: usize) -> &'a DMatrix<T> {
        if l == 0 { x } else { &self.a[l - 1] }
    }

    /// Residuals of the current variables; `scratch` is a work matrix.
    pub fn residuals(
        &self,
        x: &DMatrix<T>,
        threads: usize,
        scratch: &mut DMatrix<T>,
    ) -> Result<Residuals, SolverError> {
        let mut r = Residuals::default();
        for l in 0..self.layers() {
            affine(&self.w[l], &self.b[l], self.input(x, l), threads, scratch)?;
            *scratch -= &self.z[l];
            r.linear.push(sq_norm(scratch).sqrt());
            if l + 1 < self.layers() {
                ensure_shape(scratch, self.z[l].nrows(), self.z[l].ncols());
                self.h[l].apply_matrix(&self.z[l], scratch);
                *scratch -= &self.a[l];
                r.activation.push(sq_norm(scratch).sqrt());
            }
        }
        Ok(r)
    }

    /// Errors (naming the first offending block) if any variable is NaN or infinite.
    pub fn check_finite(&self, solver: &str, iteration: u64) -> Result<(), SolverError> {
        let bad = |what: &str, l: usize| {
            Err(SolverError::NonFinite(format!(
                "{solver}: {what}_{} at iteration {iteration}",
                l + 1
            )))
        };
        for l in 0..self.layers() {
            if !all_finite(&self.w[l]) {
                return bad("W", l);
            }
            if !self.b[l].iter().all(|v| v.finite()) {
                return bad("b", l);
            }
            if !all_finite(&self.z[l]) {
                return bad("Z", l);
            }
        }
        for l in 0..self.a.len() {
            if !all_finite(&self.a[l]) {
                return bad("A", l);
            }
        }
        Ok(())
    }

    /// Checks that `data` fits the lifted variables: `d_0` input rows (the columns of
    /// `W_1`), `N` samples (the columns of every `Z_l`, `A_l`) and `d_L` target rows or
    /// classes (the rows of `Z_L`; 2 classes for one output row under the logistic
    /// `loss`, as `nets` reads binary labels). The error names the first mismatch.
    pub fn check_data(
        &self,
        data: &nets::Dataset<T>,
        loss: &nets::Loss,
    ) -> Result<(), SolverError> {
        let (d0, n) = data.inputs().shape();
        if let Some(w) = self.w.first()
            && w.ncols() != d0
        {
            return Err(SolverError::shape(
                "ADMM data set: input rows d0",
                w.ncols(),
                d0,
            ));
        }
        for (l, m) in self.z.iter().chain(&self.a).enumerate() {
            if m.ncols() != n {
                let which = if l < self.z.len() { "Z" } else { "A" };
                return Err(SolverError::shape(
                    format!("ADMM data set: samples N (columns of the lifted {which})"),
                    m.ncols(),
                    n,
                ));
            }
        }
        let k = self.z.last().map_or(0, |z| z.nrows());
        let width = match data.targets() {
            nets::Targets::Dense(y) => y.nrows(),
            nets::Targets::Labels { classes: 2, .. }
                if k == 1 && loss.kind == nets::LossKind::Logistic =>
            {
                1
            }
            nets::Targets::Labels { classes, .. } => *classes,
        };
        if width != k {
            return Err(SolverError::shape(
                "ADMM data set: targets (rows or classes vs output width d_L)",
                k,
                width,
            ));
        }
        Ok(())
    }

    /// Checks that the shapes agree with `net` and `x` (after a state restore).
    pub fn check_shapes(&self, net: &Sequential<T>, x: &DMatrix<T>) -> Result<(), SolverError> {
        let n = x.ncols();
        for l in 0..self.layers() {
            let d = net
                .dense(l)
                .ok_or_else(|| SolverError::Checkpoint(format!("dense layer {l} missing")))?;
            if d.weight.shape() != self.w[l].shape() || self.z[l].shape() != (d.weight.nrows(), n) {
                return Err(SolverError::shape(
                    format!("ADMM state of layer {}", l + 1),
                    format!("W {:?}, Z ({}, {n})", d.weight.shape(), d.weight.nrows()),
                    format!("W {:?}, Z {:?}", self.w[l].shape(), self.z[l].shape()),
                ));
            }
        }
        Ok(())
    }
}

/// Dense `K x N` targets: dense targets as they are, labels one-hot.
pub(crate) fn dense_targets<T: Real>(
    targets: &nets::Targets<T>,
    k: usize,
) -> Result<DMatrix<T>, SolverError> {
    match targets {
        nets::Targets::Dense(y) => {
            if y.nrows() != k {
                return Err(SolverError::shape("ADMM targets (rows)", k, y.nrows()));
            }
            Ok(y.clone())
        }
        nets::Targets::Labels { labels, classes } => {
            if *classes != k {
                return Err(SolverError::shape(
                    "ADMM targets (classes vs output width)",
                    k,
                    *classes,
                ));
            }
            let mut y = DMatrix::zeros(k, labels.len());
            for (n, &c) in labels.iter().enumerate() {
                if c >= k {
                    return Err(SolverError::Problem(format!(
                        "label {c} of sample {n} is out of range for {k} classes"
                    )));
                }
                y[(c, n)] = T::one();
            }
            Ok(y)
        }
    }
}

/// Weights and biases of the dense layers, in layer order.
type LayerParams<T> = (Vec<DMatrix<T>>, Vec<DVector<T>>);

/// Copies of the weights and biases of the first `l_count` dense layers of `net`.
fn weights_of<T: Real>(net: &Sequential<T>, l_count: usize) -> Result<LayerParams<T>, SolverError> {
    let mut w = Vec::with_capacity(l_count);
    let mut b = Vec::with_capacity(l_count);
    for l in 0..l_count {
        let d = net
            .dense(l)
            .ok_or_else(|| SolverError::Problem(format!("dense layer {l} missing")))?;
        w.push(d.weight.clone());
        b.push(d.bias.clone());
    }
    Ok((w, b))
}
