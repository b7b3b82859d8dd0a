//! Automatic gradient descent (AGD) of Bernstein, Mingard, Huang, Azizan & Yue,
//! "Automatic Gradient Descent: Deep Learning without Hyperparameters",
//! arXiv 2304.05187 (2023); ALGORITHMS.md section 8 and corrections 5-7.
//!
//! **What is and is not a majorizer.** For a fully connected ReLU network without biases,
//! `f(x; W) = W_L relu(W_{L-1} ... relu(W_1 x))`, and the square loss
//! `L(W) = (1/(2 d_L N)) sum_n ||f(x_n) - y_n||^2`:
//!
//! - *Deep relative trust* ([`deep_relative_trust_bound`]) holds **unconditionally**
//!   (relu is 1-Lipschitz with relu(0) = 0; telescoping over layers):
//!   `||f(x; W + dW) - f(x; W)|| <= prod_l ||W_l||_* ||x|| [prod_l (1 + ||dW_l||_*/||W_l||_*) - 1]`.
//! - The paper's majorizer, in the general form [`AgdSquareLoss`] builds,
//!   `g(W + dW | W) = L(W) + <grad L, dW> + (max_n ||x_n||^2 / (2 d_L)) [prod_l (||W_l||_* + ||dW_l||_*) - prod_l ||W_l||_*]^2`,
//!   is an upper bound **only under the orthogonality assumption**: that the model's
//!   linearisation error `f(W + dW) - f(W) - J dW`, paired with the loss gradient, averages
//!   to zero (or is <= 0). That is not true in general for depth >= 2, and we do not test
//!   the bound there. For depth 1 (a linear model) the linearisation error is exactly zero
//!   and the bound is a true majorizer; our property test checks it in that setting only.
//! - Under the dimensional prescription (`||x_n|| = sqrt(d_0)`,
//!   `||W_l||_* = sqrt(d_l/d_{l-1})`, `||dW_l||_* = sqrt(d_l/d_{l-1}) eta / L`) the bracket is
//!   `sqrt(d_L) ((1 + eta/L)^L - 1) <= sqrt(d_L) (e^eta - 1)`, giving the exponential bound
//!   `L(W + dW) <= L(W) - eta G + (1/2)(e^eta - 1)^2` (with the stable-rank-1 assumption for
//!   the linear term), minimised by `eta = log((1 + sqrt(1 + 4G))/2)` ([`agd_eta`]).
//!   Under the prescription the objective is bounded by 2 and `G <= 2` (corrections 5-6);
//!   the rate `min_t G_t^2 <= 22/T` is conditional on the same assumptions (correction 7).
//!
//! **Step** ([`agd_step`]): `G = (1/L) sum_l sqrt(d_l/d_{l-1}) ||grad_{W_l}||_F`,
//! `W_l <- W_l - gain (eta/L) sqrt(d_l/d_{l-1}) grad_{W_l} / ||grad_{W_l}||_F`, `L` the
//! number of layers. **Biases** (not in the paper; the reference code rejects them): when
//! given, `b_l` is treated as an extra column of `W_l`, so `||grad_{W_l}||_F` becomes
//! `||[grad_{W_l} grad_{b_l}]||_F` and `b_l` moves with the same normalised step; the
//! scale `sqrt(d_l/d_{l-1})` keeps `d_{l-1}` = the number of inputs (columns of `W_l`),
//! not counting the bias column. A layer with zero gradient does not move (the code's
//! `nan_to_num`).

use autodiff::Real;
use nalgebra::{DMatrix, DVector};
use rand::RngExt;

use crate::error::{MajorizeError, Result, shape_err};
use crate::surrogate::{Objective, Surrogate, SurrogateBuilder, check_len};

/// `eta(G) = log((1 + sqrt(1 + 4G)) / 2)`, the minimiser over `eta` of
/// `-eta G + (1/2)(e^eta - 1)^2`.
pub fn agd_eta(g: f64) -> f64 {
    ((1.0 + (1.0 + 4.0 * g).sqrt()) / 2.0).ln()
}

/// What one AGD step did.
#[derive(Clone, Debug, PartialEq)]
pub struct AgdStep {
    /// The gradient summary `G`.
    pub g: f64,
    /// The step size `eta(G)`.
    pub eta: f64,
    /// Per layer `||[grad_W grad_b]||_F`.
    pub grad_norms: Vec<f64>,
}

fn layer_norms<T: Real>(
    grads_w: &[DMatrix<T>],
    grads_b: Option<&[DVector<T>]>,
) -> Result<Vec<f64>> {
    if let Some(gb) = grads_b
        && gb.len() != grads_w.len()
    {
        return Err(shape_err(
            "agd",
            format!(
                "{} weight gradients but {} bias gradients",
                grads_w.len(),
                gb.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(grads_w.len());
    for (l, g) in grads_w.iter().enumerate() {
        if g.is_empty() {
            return Err(shape_err(
                "agd",
                format!("layer {l}: empty gradient {:?}", g.shape()),
            ));
        }
        crate::validate::finite("agd", "gradient", g)?;
        let mut s = g.norm_squared().to_f64();
        if let Some(gb) = grads_b {
            if gb[l].len() != g.nrows() {
                return Err(shape_err(
                    "agd",
                    format!(
                        "layer {l}: bias gradient length {} but weight gradient has {} rows",
                        gb[l].len(),
                        g.nrows()
                    ),
                ));
            }
            s += gb[l].norm_squared().to_f64();
        }
        out.push(s.sqrt());
    }
    Ok(out)
}

/// The gradient summary `G = (1/L) sum_l sqrt(d_l/d_{l-1}) ||grad_l||_F` (with biases as
/// extra columns if given) and the per-layer norms.
pub fn agd_gradient_summary<T: Real>(
    grads_w: &[DMatrix<T>],
    grads_b: Option<&[DVector<T>]>,
) -> Result<(f64, Vec<f64>)> {
    if grads_w.is_empty() {
        return Err(MajorizeError::InvalidParameter {
            name: "layers",
            value: 0.0,
            reason: "AGD needs at least one layer",
        });
    }
    let norms = layer_norms(grads_w, grads_b)?;
    let l = grads_w.len() as f64;
    let g = grads_w
        .iter()
        .zip(&norms)
        .map(|(gw, n)| (gw.nrows() as f64 / gw.ncols() as f64).sqrt() * n)
        .sum::<f64>()
        / l;
    Ok((g, norms))
}

/// One AGD step (module doc), in place. `gain` multiplies the step (1 in the paper).
/// Biases are optional (both `biases` and `grads_b`, or neither).
pub fn agd_step<T: Real>(
    weights: &mut [DMatrix<T>],
    biases: Option<&mut [DVector<T>]>,
    grads_w: &[DMatrix<T>],
    grads_b: Option<&[DVector<T>]>,
    gain: f64,
) -> Result<AgdStep> {
    if !(gain > 0.0 && gain.is_finite()) {
        return Err(MajorizeError::InvalidParameter {
            name: "gain",
            value: gain,
            reason: "must be positive and finite",
        });
    }
    if weights.len() != grads_w.len() {
        return Err(shape_err(
            "agd_step",
            format!("{} layers but {} gradients", weights.len(), grads_w.len()),
        ));
    }
    if biases.is_some() != grads_b.is_some() {
        return Err(MajorizeError::Unsupported(
            "agd_step: give both biases and their gradients, or neither".into(),
        ));
    }
    for (l, (w, g)) in weights.iter().zip(grads_w).enumerate() {
        if w.shape() != g.shape() {
            return Err(shape_err(
                "agd_step",
                format!(
                    "layer {l}: W is {:?}, gradient is {:?}",
                    w.shape(),
                    g.shape()
                ),
            ));
        }
    }
    let (g, norms) = agd_gradient_summary(grads_w, grads_b)?;
    let eta = agd_eta(g);
    let nl = weights.len() as f64;
    let mut biases = biases;
    if let Some(b) = &biases
        && b.len() != weights.len()
    {
        return Err(shape_err(
            "agd_step",
            format!("{} layers but {} bias vectors", weights.len(), b.len()),
        ));
    }
    // Every check before the first write: an error leaves the weights untouched.
    for w in weights.iter() {
        crate::validate::finite("agd_step", "W", w)?;
    }
    if let Some(b) = &biases {
        for bl in b.iter() {
            crate::validate::finite_slice("agd_step", "bias", bl.as_slice())?;
        }
    }
    if let (Some(b), Some(gb)) = (&biases, grads_b) {
        for (l, (bl, gl)) in b.iter().zip(gb).enumerate() {
            if bl.len() != gl.len() {
                return Err(shape_err(
                    "agd_step",
                    format!(
                        "layer {l}: bias length {} but gradient length {}",
                        bl.len(),
                        gl.len()
                    ),
                ));
            }
        }
    }
    for l in 0..weights.len() {
        if norms[l] == 0.0 {
            continue;
        }
        let (dout, din) = weights[l].shape();
        let scale = T::of(gain * eta / nl * (dout as f64 / din as f64).sqrt() / norms[l]);
        weights[l].zip_apply(&grads_w[l], |w, g| *w -= scale * g);
        if let (Some(b), Some(gb)) = (biases.as_deref_mut(), grads_b) {
            b[l].axpy(-scale, &gb[l], T::one());
        }
    }
    Ok(AgdStep {
        g,
        eta,
        grad_norms: norms,
    })
}

fn gaussian<R: rand::Rng + ?Sized>(rng: &mut R) -> f64 {
    // Box-Muller.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// AGD's initialisation: each `W_l` (`widths[l+1] x widths[l]`) a random semi-orthogonal
/// matrix (orthonormal columns or rows, from the QR factor of a Gaussian matrix) scaled
/// by `sqrt(d_l/d_{l-1})`, so `||W_l||_* = sqrt(d_l/d_{l-1})` exactly. Errors on fewer
/// than two widths, a zero width, or weights above [`crate::MAX_ENTRIES`].
pub fn agd_init<T: Real, R: rand::Rng + ?Sized>(
    widths: &[usize],
    rng: &mut R,
) -> Result<Vec<DMatrix<T>>> {
    if widths.len() < 2 || widths.contains(&0) {
        return Err(MajorizeError::InvalidParameter {
            name: "widths",
            value: widths.len() as f64,
            reason: "need at least two positive widths",
        });
    }
    param_count("agd_init", widths)?;
    let mut out = Vec::with_capacity(widths.len() - 1);
    for l in 1..widths.len() {
        let (dout, din) = (widths[l], widths[l - 1]);
        let tall = dout >= din;
        let (r, c) = if tall { (dout, din) } else { (din, dout) };
        let g = DMatrix::<f64>::from_fn(r, c, |_, _| gaussian(rng));
        let q = g.qr().q();
        let q = if tall { q } else { q.transpose() };
        let s = (dout as f64 / din as f64).sqrt();
        out.push(q.map(|v| T::of(v * s)));
    }
    Ok(out)
}

/// The number of weights `sum_l d_l d_{l-1}` of a network with these widths; errors if a
/// layer or the total exceeds [`crate::MAX_ENTRIES`] (or overflows), before allocating.
fn param_count(op: &'static str, widths: &[usize]) -> Result<usize> {
    let mut total = 0usize;
    for w in widths.windows(2) {
        total = total.saturating_add(crate::validate::entries(
            op,
            "layer (d_l x d_{l-1})",
            &[w[1], w[0]],
        )?);
    }
    crate::validate::entries(op, "all layers' weights", &[total])
}

/// The spectral norm `||M||_*` (largest singular value, via SVD in f64); 0 for an empty
/// matrix. Errors on a NaN or infinite entry (nalgebra's SVD never returns on one).
pub fn spectral_norm<T: Real>(m: &DMatrix<T>) -> Result<f64> {
    if m.is_empty() {
        return Ok(0.0);
    }
    crate::validate::finite("spectral_norm", "M", m)?;
    Ok(m.map(|v| v.to_f64()).singular_values().max())
}

/// Deep relative trust: `prod_l s_l * x_norm * [prod_l (1 + t_l/s_l) - 1]`
/// with `s_l = ||W_l||_*`, `t_l = ||dW_l||_*`, written without division as
/// `x_norm (prod (s_l + t_l) - prod s_l)`. Bounds `||f(x; W + dW) - f(x; W)||` for
/// bias-free ReLU (or any 1-Lipschitz, zero-at-zero activation) networks. Every norm
/// must be finite and nonnegative (a typed error names the first that is not).
pub fn deep_relative_trust_bound(w_norms: &[f64], dw_norms: &[f64], x_norm: f64) -> Result<f64> {
    const OP: &str = "deep_relative_trust_bound";
    for (what, v) in [
        ("w_norms", w_norms),
        ("dw_norms", dw_norms),
        ("x_norm", &[x_norm]),
    ] {
        crate::validate::finite_slice(OP, what, v)?;
        if let Some(row) = v.iter().position(|x| *x < 0.0) {
            return Err(MajorizeError::Negative {
                op: OP,
                what,
                row,
                col: 0,
                value: v[row],
            });
        }
    }
    if w_norms.len() != dw_norms.len() {
        return Err(shape_err(
            "deep_relative_trust_bound",
            format!(
                "{} weight norms, {} perturbation norms",
                w_norms.len(),
                dw_norms.len()
            ),
        ));
    }
    let p1: f64 = w_norms.iter().zip(dw_norms).map(|(s, t)| s + t).product();
    let p0: f64 = w_norms.iter().product();
    Ok(x_norm * (p1 - p0))
}

/// `max(v, 0)`, NaN for NaN (`RealField::max` would mask it to 0).
fn relu<T: Real>(v: T) -> T {
    if v <= T::zero() { T::zero() } else { v }
}

/// Output of a bias-free ReLU network `W_L relu(... relu(W_1 X))` (`X` is `d_0 x N`).
pub fn relu_net_forward<T: Real>(weights: &[DMatrix<T>], x: &DMatrix<T>) -> Result<DMatrix<T>> {
    let mut a = x.clone();
    for (l, w) in weights.iter().enumerate() {
        if w.ncols() != a.nrows() {
            return Err(shape_err(
                "relu_net_forward",
                format!(
                    "layer {l}: W is {:?}, input has {} rows",
                    w.shape(),
                    a.nrows()
                ),
            ));
        }
        a = crate::prod::mul_nn(w, &a)?;
        if l + 1 < weights.len() {
            a.apply(|v| *v = relu(*v));
        }
    }
    Ok(a)
}

/// The square loss of a bias-free ReLU network, `L(W) = (1/(2 d_L N)) ||f(X; W) - Y||_F^2`,
/// as an objective of the flattened weights (each `W_l` column-major, layers in order),
/// and the AGD majorizer in its general form as a builder (see the module doc for when
/// it is a true majorizer: depth 1 always; deeper only under the orthogonality
/// assumption).
#[derive(Clone, Debug, PartialEq)]
pub struct AgdSquareLoss<T: Real> {
    widths: Vec<usize>,
    x: DMatrix<T>,
    y: DMatrix<T>,
}

impl<T: Real> AgdSquareLoss<T> {
    /// Widths `d_0, ..., d_L`, inputs `x` (`d_0 x N`), targets `y` (`d_L x N`). Errors on
    /// bad widths or shapes, non-finite data, or weights above [`crate::MAX_ENTRIES`].
    pub fn new(widths: Vec<usize>, x: DMatrix<T>, y: DMatrix<T>) -> Result<Self> {
        if widths.len() < 2 || widths.contains(&0) {
            return Err(MajorizeError::InvalidParameter {
                name: "widths",
                value: widths.len() as f64,
                reason: "need at least two positive widths",
            });
        }
        param_count("AgdSquareLoss::new", &widths)?;
        let (d0, dl) = (widths[0], widths[widths.len() - 1]);
        if x.nrows() != d0 || y.nrows() != dl || x.ncols() != y.ncols() || x.ncols() == 0 {
            return Err(shape_err(
                "AgdSquareLoss::new",
                format!(
                    "X is {:?}, Y is {:?}, widths {:?}",
                    x.shape(),
                    y.shape(),
                    widths
                ),
            ));
        }
        crate::validate::finite("AgdSquareLoss::new", "X", &x)?;
        crate::validate::finite("AgdSquareLoss::new", "Y", &y)?;
        Ok(Self { widths, x, y })
    }
    /// Splits flat parameters into the layer matrices.
    pub fn unflatten(&self, p: &DVector<T>) -> Result<Vec<DMatrix<T>>> {
        check_len("AgdSquareLoss", p, Objective::dim(self))?;
        let mut out = Vec::new();
        let mut start = 0;
        for l in 1..self.widths.len() {
            let (r, c) = (self.widths[l], self.widths[l - 1]);
            out.push(DMatrix::from_column_slice(
                r,
                c,
                &p.as_slice()[start..start + r * c],
            ));
            start += r * c;
        }
        Ok(out)
    }
    fn scale(&self) -> f64 {
        1.0 / (2.0 * *self.widths.last().unwrap_or(&1) as f64 * self.x.ncols() as f64)
    }
    /// Loss and per-layer gradients (manual backpropagation; relu'(0) = 0).
    pub fn value_grads(&self, ws: &[DMatrix<T>]) -> Result<(f64, Vec<DMatrix<T>>)> {
        if ws.len() + 1 != self.widths.len() {
            return Err(shape_err(
                "AgdSquareLoss::value_grads",
                format!("{} layers given, widths {:?}", ws.len(), self.widths),
            ));
        }
        for (l, w) in ws.iter().enumerate() {
            if w.shape() != (self.widths[l + 1], self.widths[l]) {
                return Err(shape_err(
                    "AgdSquareLoss::value_grads",
                    format!(
                        "layer {l}: W is {:?}, expected {:?}",
                        w.shape(),
                        (self.widths[l + 1], self.widths[l])
                    ),
                ));
            }
        }
        let mut acts = vec![self.x.clone()];
        let mut pre = Vec::new();
        for (l, w) in ws.iter().enumerate() {
            let z = crate::prod::mul_nn(w, &acts[l])?;
            let a = if l + 1 < ws.len() {
                z.map(relu)
            } else {
                z.clone()
            };
            pre.push(z);
            acts.push(a);
        }
        let out = &acts[ws.len()];
        let r = out - &self.y;
        let c = self.scale();
        let value = c * r.norm_squared().to_f64();
        let mut delta = r * T::of(2.0 * c);
        let mut grads = vec![DMatrix::zeros(0, 0); ws.len()];
        for l in (0..ws.len()).rev() {
            grads[l] = crate::prod::mul_nt(&delta, &acts[l])?;
            if l > 0 {
                let back = crate::prod::mul_tn(&ws[l], &delta)?;
                delta = back.zip_map(
                    &pre[l - 1],
                    |d, z| if z > T::zero() { d } else { T::zero() },
                );
            }
        }
        Ok((value, grads))
    }
}

impl<T: Real> Objective<T> for AgdSquareLoss<T> {
    fn dim(&self) -> usize {
        self.widths.windows(2).map(|w| w[0] * w[1]).sum()
    }
    fn value(&self, p: &DVector<T>) -> Result<T> {
        Ok(T::of(self.value_grads(&self.unflatten(p)?)?.0))
    }
    fn gradient(&self, p: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        check_len("AgdSquareLoss::gradient", grad, Objective::dim(self))?;
        let (_, gs) = self.value_grads(&self.unflatten(p)?)?;
        let mut start = 0;
        for g in gs {
            grad.as_mut_slice()[start..start + g.len()].copy_from_slice(g.as_slice());
            start += g.len();
        }
        Ok(())
    }
}

/// A spectral norm and its gradient (top singular pair `u v^T`).
type SpectralPart = (f64, DMatrix<f64>);

/// The AGD majorizer (general form, module doc) at an anchor.
#[derive(Clone, Debug)]
pub struct AgdSurrogate<T: Real> {
    loss: AgdSquareLoss<T>,
    anchor: DVector<T>,
    f0: f64,
    g0: DVector<T>,
    w_norms: Vec<f64>,
    coef: f64,
}

impl<T: Real> AgdSurrogate<T> {
    /// The bracket `prod (s_l + t_l) - prod s_l` and, per layer, `t_l = ||dW_l||_*` with
    /// its gradient `u v^T` (top singular pair).
    fn bracket(&self, p: &DVector<T>) -> Result<(f64, Vec<SpectralPart>)> {
        let d = p - &self.anchor;
        let dws = self.loss.unflatten(&d)?;
        let mut parts = Vec::new();
        for dw in &dws {
            // nalgebra's SVD never returns on a NaN or infinite entry.
            crate::validate::finite("AgdSurrogate", "x - anchor", dw)?;
            let m = dw.map(|v| v.to_f64());
            let svd = m.clone().svd(true, true);
            let (mut best, mut idx) = (0.0, 0);
            for (i, s) in svd.singular_values.iter().enumerate() {
                if *s > best {
                    best = *s;
                    idx = i;
                }
            }
            let grad = match (&svd.u, &svd.v_t) {
                (Some(u), Some(vt)) if best > 0.0 => u.column(idx) * vt.row(idx),
                _ => DMatrix::zeros(m.nrows(), m.ncols()),
            };
            parts.push((best, grad));
        }
        let p1: f64 = self
            .w_norms
            .iter()
            .zip(&parts)
            .map(|(s, (t, _))| s + t)
            .product();
        let p0: f64 = self.w_norms.iter().product();
        Ok((p1 - p0, parts))
    }
}

impl<T: Real> Surrogate<T> for AgdSurrogate<T> {
    fn anchor(&self) -> &DVector<T> {
        &self.anchor
    }
    fn value(&self, p: &DVector<T>) -> Result<T> {
        let (b, _) = self.bracket(p)?;
        let lin = self.g0.dot(&(p - &self.anchor)).to_f64();
        Ok(T::of(self.f0 + lin + self.coef * b * b))
    }
    fn gradient(&self, p: &DVector<T>, grad: &mut DVector<T>) -> Result<()> {
        check_len("AgdSurrogate::gradient", grad, self.anchor.len())?;
        let (b, parts) = self.bracket(p)?;
        let p1: f64 = self
            .w_norms
            .iter()
            .zip(&parts)
            .map(|(s, (t, _))| s + t)
            .product();
        let mut start = 0;
        for (l, (t, dir)) in parts.iter().enumerate() {
            let dp_dt = p1 / (self.w_norms[l] + t);
            let c = 2.0 * self.coef * b * dp_dt;
            for (i, v) in dir.iter().enumerate() {
                grad[start + i] = self.g0[start + i] + T::of(c * v);
            }
            start += dir.len();
        }
        Ok(())
    }
}

impl<T: Real> SurrogateBuilder<T> for AgdSquareLoss<T> {
    type Surrogate = AgdSurrogate<T>;
    fn build(&self, anchor: &DVector<T>) -> Result<AgdSurrogate<T>> {
        let ws = self.unflatten(anchor)?;
        let (f0, _) = self.value_grads(&ws)?;
        let mut g0 = DVector::zeros(anchor.len());
        self.gradient(anchor, &mut g0)?;
        let xmax = (0..self.x.ncols())
            .map(|n| self.x.column(n).norm_squared().to_f64())
            .fold(0.0, f64::max);
        let dl = *self.widths.last().unwrap_or(&1) as f64;
        Ok(AgdSurrogate {
            loss: self.clone(),
            anchor: anchor.clone(),
            f0,
            g0,
            w_norms: ws.iter().map(spectral_norm).collect::<Result<_>>()?,
            coef: xmax / (2.0 * dl),
        })
    }
}
