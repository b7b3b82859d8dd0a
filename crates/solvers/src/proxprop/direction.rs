//! The ProxProp update direction of a whole MLP on one batch: forward pass, explicit
//! backward pass of `G_l = d loss / d Z_l` (with the OLD weights, as in the reference
//! code), and at every ProxProp layer the proximal step of [`super::LinearProx`] in place
//! of the gradient. The direction is written in the network's flat parameter order
//! (`Sequential::params_to_flat`), ready for an outer update rule.

use autodiff::{Real, Transpose};
use nalgebra::DMatrix;
use nets::{Activation, Loss, Sequential, Targets};

use super::linear::{LinearProx, ProxSolve};
use crate::SolverError;
use crate::linalg::fit;
use crate::linalg::gemm;

/// How each dense layer's update is computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LayerRule {
    /// The proximal step with this solver and `tau_prox`.
    Prox(ProxSolve, f64),
    /// The plain gradient `[G A^T, G 1]` (backprop).
    Gradient,
}

/// Offsets of each dense layer's weight and bias in the flat parameter vector.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatLayout {
    /// `(weight offset, bias offset)` per dense layer.
    pub offsets: Vec<(usize, usize)>,
    /// Hidden activations `h_1..h_{L-1}`.
    pub activations: Vec<Activation>,
    /// Total number of parameters.
    pub len: usize,
}

impl FlatLayout {
    /// The layout of an MLP (errors for other architectures).
    pub fn of<T: Real>(net: &Sequential<T>) -> Result<Self, SolverError> {
        let view = net
            .mlp_view()
            .map_err(|e| SolverError::NotApplicable(format!("ProxProp needs an MLP: {e}")))?;
        let layout = net.param_layout();
        let find = |pos: usize, name: &str| {
            layout
                .iter()
                .find(|p| p.layer == pos && p.name == name)
                .map(|p| p.offset)
                .ok_or_else(|| {
                    SolverError::Problem(format!("ProxProp: dense layer {pos} has no {name}"))
                })
        };
        let mut offsets = Vec::new();
        for &pos in &view.dense_positions {
            offsets.push((find(pos, "weight")?, find(pos, "bias")?));
        }
        Ok(FlatLayout {
            offsets,
            activations: view.activations,
            len: net.num_params(),
        })
    }
}

/// Reusable buffers of [`Direction::compute`].
#[derive(Debug, Clone, Default)]
pub struct Direction<T: Real> {
    z: Vec<DMatrix<T>>,
    a: Vec<DMatrix<T>>,
    g: DMatrix<T>,
    gprev: DMatrix<T>,
    dh: DMatrix<T>,
    dw: DMatrix<T>,
    db: Vec<T>,
    lin: LinearProx<T>,
}

/// What one direction computation did.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DirectionStats {
    /// Batch loss (data term, the problem's reduction over the batch).
    pub loss: f64,
    /// Linear solves / CG steps made.
    pub inner_solves: usize,
    /// CG steps of the prox solves: each forms `M P` matrix-free from the batch's layer
    /// input (`A^T P`, a forward-type product, then `A Q`, a backward-type one), so each
    /// is one forward and one backward data pass over the batch (docs/RESULTS_SCHEMA.md),
    /// as an inner iteration of the lifted network. 0 for Cholesky solves, whose `A A^T`
    /// is formed in the layer's backward visit together with `G A^T`.
    pub cg_steps: usize,
}

impl<T: Real> Direction<T> {
    /// Writes into `out` (flat, network order) the ProxProp direction `theta_old -
    /// theta_new` of the batch `(x, y)`: for each dense layer `l`, `rules[l]` says prox
    /// or plain gradient; the loss's coupled weight penalty `(l2/2)||W_l||^2` enters
    /// each prox problem (`LinearProx::solve_penalized`), and `l2 * W_l` is added to each
    /// plain-gradient weight direction, so `out = 0` exactly at stationary points of the
    /// penalised batch objective. With `LayerRule::Gradient` everywhere this is the
    /// gradient of the batch objective.
    #[allow(clippy::too_many_arguments)]
    pub fn compute(
        &mut self,
        net: &Sequential<T>,
        layout: &FlatLayout,
        loss: &Loss,
        x: &DMatrix<T>,
        y: &Targets<T>,
        rules: &[LayerRule],
        out: &mut [T],
        threads: usize,
    ) -> Result<DirectionStats, SolverError> {
        let l_count = layout.offsets.len();
        if rules.len() != l_count || out.len() != layout.len {
            return Err(SolverError::shape(
                "ProxProp direction",
                format!("{l_count} rules, {} params", layout.len),
                format!("{} rules, {} params", rules.len(), out.len()),
            ));
        }
        self.z.resize_with(l_count, || DMatrix::zeros(0, 0));
        self.a.resize_with(l_count, || DMatrix::zeros(0, 0));
        // Forward: z[l] = W_l a_{l-1} + b_l, a[l] = h_l(z[l]) (a[L-1] unused).
        for l in 0..l_count {
            let d = net
                .dense(l)
                .ok_or_else(|| SolverError::Problem(format!("dense layer {l} missing")))?;
            let input = if l == 0 { x } else { &self.a[l - 1] };
            if input.nrows() != d.weight.ncols() {
                return Err(SolverError::shape(
                    format!("ProxProp layer {} input", l + 1),
                    d.weight.ncols(),
                    input.nrows(),
                ));
            }
            let zl = &mut self.z[l];
            fit(zl, d.weight.nrows(), input.ncols());
            gemm(
                zl,
                1.0,
                &d.weight,
                Transpose::No,
                input,
                Transpose::No,
                0.0,
                threads,
            )?;
            for mut col in zl.column_iter_mut() {
                col += &d.bias;
            }
            if l + 1 < l_count {
                let (zs, al) = (&self.z[l], &mut self.a[l]);
                fit(al, zs.nrows(), zs.ncols());
                layout.activations[l].apply_matrix(zs, al);
            }
        }
        let batch_loss = loss
            .value_and_output_grad(&self.z[l_count - 1], y, &mut self.g)
            .map_err(|e| SolverError::Problem(format!("ProxProp loss: {e}")))?
            .to_f64();
        if !batch_loss.is_finite() {
            return Err(SolverError::NonFinite("ProxProp batch loss".into()));
        }
        let (mut solves, mut cg_steps) = (0usize, 0usize);
        for l in (0..l_count).rev() {
            let d = net
                .dense(l)
                .ok_or_else(|| SolverError::Problem(format!("dense layer {l} missing")))?;
            let input = if l == 0 { x } else { &self.a[l - 1] };
            let (dout, din) = d.weight.shape();
            self.db.resize(dout, T::zero());
            match rules[l] {
                LayerRule::Prox(how, tau) => {
                    // The weight penalty enters the prox problem itself (linear.rs).
                    let k = self.lin.solve_penalized(
                        input,
                        &self.g,
                        tau,
                        Some((loss.l2, &d.weight)),
                        how,
                        &mut self.dw,
                        &mut self.db,
                        threads,
                    )?;
                    solves += k;
                    if matches!(how, ProxSolve::Cg { .. }) {
                        cg_steps += k;
                    }
                }
                LayerRule::Gradient => {
                    fit(&mut self.dw, dout, din);
                    gemm(
                        &mut self.dw,
                        1.0,
                        &self.g,
                        Transpose::No,
                        input,
                        Transpose::Yes,
                        0.0,
                        threads,
                    )?;
                    for (i, dbi) in self.db.iter_mut().enumerate() {
                        *dbi = self.g.row(i).sum();
                    }
                }
            }
            let (wo, bo) = layout.offsets[l];
            // Gradient layers add the penalty's gradient; prox layers already hold it.
            let l2 = T::of(match rules[l] {
                LayerRule::Prox(..) => 0.0,
                LayerRule::Gradient => loss.l2,
            });
            for ((o, &dv), &w) in out[wo..wo + dout * din]
                .iter_mut()
                .zip(self.dw.iter())
                .zip(d.weight.iter())
            {
                *o = dv + l2 * w;
            }
            out[bo..bo + dout].copy_from_slice(&self.db);
            if l > 0 {
                // G_{l-1} = (W_l^T G_l) o h'(Z_{l-1}), explicit, with the old W_l.
                fit(&mut self.gprev, din, self.g.ncols());
                gemm(
                    &mut self.gprev,
                    1.0,
                    &d.weight,
                    Transpose::Yes,
                    &self.g,
                    Transpose::No,
                    0.0,
                    threads,
                )?;
                layout.activations[l - 1].derivative_matrix(&self.z[l - 1], &mut self.dh);
                for (gp, &h) in self.gprev.iter_mut().zip(self.dh.iter()) {
                    *gp *= h;
                }
                std::mem::swap(&mut self.g, &mut self.gprev);
            }
        }
        if let Some(i) = out.iter().position(|v| !v.finite()) {
            return Err(SolverError::NonFinite(format!(
                "ProxProp direction, flat parameter {i}"
            )));
        }
        Ok(DirectionStats {
            loss: batch_loss,
            inner_solves: solves,
            cg_steps,
        })
    }
}
