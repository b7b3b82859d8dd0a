//! Buffers of block MM on an MLP: the forward trace, trial trace, backpropagated
//! output gradients and per-layer solve matrices (allocated once in `init`).

use autodiff::{Real, Transpose};
use nalgebra::DMatrix;
use nets::{Activation, Dense, Loss, Sequential, Targets};

use super::spectral::PowerIteration;
use crate::SolverError;
use crate::linalg::gemm;

/// The dense layer `k` of `net`, or an error naming it.
pub(crate) fn dense<T: Real>(net: &Sequential<T>, k: usize) -> Result<&Dense<T>, SolverError> {
    net.dense(k)
        .ok_or_else(|| SolverError::Problem(format!("BlockMM: dense layer {k} is missing")))
}

/// Workspace of one network shape. Memory: the trace and trial trace,
/// `2 N sum_l d_l` numbers plus `N d_0` for the copy of `X`, plus one `d_l x N`
/// gradient per layer.
#[derive(Debug)]
pub(crate) struct Workspace<T: Real> {
    /// Number of dense layers L.
    pub layers: usize,
    /// Activation after dense layer k (k < L - 1).
    pub acts: Vec<Activation>,
    /// Lipschitz constants of those activations.
    pub lips: Vec<f64>,
    /// Widths d_0..d_L.
    pub widths: Vec<usize>,
    /// a[k] = input of dense layer k (a[0] = X).
    pub a: Vec<DMatrix<T>>,
    /// z[k] = output of dense layer k (pre-activation).
    pub z: Vec<DMatrix<T>>,
    /// Trial versions of a and z.
    pub ta: Vec<DMatrix<T>>,
    pub tz: Vec<DMatrix<T>>,
    /// delta[k] = d data term / d z[k].
    pub delta: Vec<DMatrix<T>>,
    /// Output gradient at the trial point.
    pub tgrad: DMatrix<T>,
    /// Scratch: W^T delta and h'(z), per layer input (d_{k} x N).
    pub back: Vec<DMatrix<T>>,
    pub deriv: Vec<DMatrix<T>>,
    /// Gram matrix [A; 1][A; 1]^T per layer ((d_in + 1)^2), the solve matrix and the
    /// right-hand side G^T ((d_in + 1) x d_out), and A delta^T (d_in x d_out).
    pub gram: Vec<DMatrix<T>>,
    pub h: Vec<DMatrix<T>>,
    pub rhs: Vec<DMatrix<T>>,
    pub gtop: Vec<DMatrix<T>>,
    /// Scratch A A^T (d_in x d_in) and the solution of the block solve.
    pub gtmp: Vec<DMatrix<T>>,
    pub sol: Vec<DMatrix<T>>,
    /// Saved weights and biases of the block being tried.
    pub w_old: Vec<DMatrix<T>>,
    pub b_old: Vec<nalgebra::DVector<T>>,
    /// Spectral-norm estimators.
    pub power: Vec<PowerIteration<T>>,
}

impl<T: Real> Workspace<T> {
    /// Buffers for `net` on `n` samples; checks the MLP structure.
    pub fn new(net: &Sequential<T>, n: usize) -> Result<Self, SolverError> {
        let view = net.mlp_view()?;
        let layers = view.num_layers();
        let widths = view.widths.clone();
        let z = |r: usize| DMatrix::zeros(r, n);
        let mut ws = Workspace {
            layers,
            acts: view.activations.clone(),
            lips: view
                .activations
                .iter()
                .map(|h| h.structure().lipschitz)
                .collect(),
            widths: widths.clone(),
            a: (0..layers).map(|k| z(widths[k])).collect(),
            z: (0..layers).map(|k| z(widths[k + 1])).collect(),
            ta: (0..layers).map(|k| z(widths[k])).collect(),
            tz: (0..layers).map(|k| z(widths[k + 1])).collect(),
            delta: (0..layers).map(|k| z(widths[k + 1])).collect(),
            tgrad: z(widths[layers]),
            back: (0..layers).map(|k| z(widths[k])).collect(),
            deriv: (0..layers).map(|k| z(widths[k])).collect(),
            gram: Vec::new(),
            h: Vec::new(),
            rhs: Vec::new(),
            gtop: Vec::new(),
            gtmp: Vec::new(),
            sol: Vec::new(),
            w_old: Vec::new(),
            b_old: Vec::new(),
            power: Vec::new(),
        };
        for k in 0..layers {
            let (din, dout) = (widths[k], widths[k + 1]);
            ws.gram.push(DMatrix::zeros(din + 1, din + 1));
            ws.h.push(DMatrix::zeros(din + 1, din + 1));
            ws.rhs.push(DMatrix::zeros(din + 1, dout));
            ws.gtop.push(DMatrix::zeros(din, dout));
            ws.gtmp.push(DMatrix::zeros(din, din));
            ws.sol.push(DMatrix::zeros(din + 1, dout));
            ws.w_old.push(DMatrix::zeros(dout, din));
            ws.b_old.push(nalgebra::DVector::zeros(dout));
            ws.power.push(PowerIteration::new(din));
        }
        Ok(ws)
    }

    /// Full forward pass of `net` on `x` into the trace.
    pub fn forward(&mut self, net: &Sequential<T>, x: &DMatrix<T>) -> Result<(), SolverError> {
        self.a[0].copy_from(x);
        for k in 0..self.layers {
            dense(net, k)?.forward_into(&self.a[k], &mut self.z[k])?;
            if k + 1 < self.layers {
                let (lo, hi) = self.a.split_at_mut(k + 1);
                let _ = lo;
                self.acts[k].apply_matrix(&self.z[k], &mut hi[0]);
            }
        }
        Ok(())
    }

    /// Forward pass from dense layer `i` (its input `a[i]` unchanged) into the trial
    /// buffers `tz[i..]`, `ta[i+1..]`.
    pub fn forward_trial(&mut self, net: &Sequential<T>, i: usize) -> Result<(), SolverError> {
        for k in i..self.layers {
            let input = if k == i { &self.a[k] } else { &self.ta[k] };
            dense(net, k)?.forward_into(input, &mut self.tz[k])?;
            if k + 1 < self.layers {
                self.acts[k].apply_matrix(&self.tz[k], &mut self.ta[k + 1]);
            }
        }
        Ok(())
    }

    /// Makes the trial trace from layer `i` the current one (and its output gradient).
    pub fn accept_trial(&mut self, i: usize) {
        for k in i..self.layers {
            std::mem::swap(&mut self.z[k], &mut self.tz[k]);
            if k + 1 < self.layers {
                std::mem::swap(&mut self.a[k + 1], &mut self.ta[k + 1]);
            }
        }
        let last = self.layers - 1;
        std::mem::swap(&mut self.delta[last], &mut self.tgrad);
    }

    /// delta[k-1] = (W_k^T delta[k]) o h'_{k-1}(z[k-1]) for k = L-1 down to i + 1.
    pub fn backprop_to(&mut self, net: &Sequential<T>, i: usize) -> Result<(), SolverError> {
        for k in (i + 1..self.layers).rev() {
            let w = &dense(net, k)?.weight;
            gemm(
                &mut self.back[k],
                1.0,
                w,
                Transpose::Yes,
                &self.delta[k],
                Transpose::No,
                0.0,
                1,
            )?;
            self.acts[k - 1].derivative_matrix(&self.z[k - 1], &mut self.deriv[k]);
            let (lo, hi) = self.delta.split_at_mut(k);
            let _ = hi;
            lo[k - 1].copy_from(&self.back[k]);
            lo[k - 1].component_mul_assign(&self.deriv[k]);
        }
        Ok(())
    }

    /// Data term of the output `z[L-1]` (or of the trial output) and its gradient.
    pub fn data_term(
        &mut self,
        loss: &Loss,
        targets: &Targets<T>,
        trial: bool,
    ) -> Result<f64, SolverError> {
        let last = self.layers - 1;
        let v = if trial {
            loss.value_and_output_grad(&self.tz[last], targets, &mut self.tgrad)?
        } else {
            loss.value_and_output_grad(&self.z[last], targets, &mut self.delta[last])?
        };
        Ok(v.to_f64())
    }

    /// Fills `gram[i] = [A;1][A;1]^T` and `rhs[i] = [A;1] delta_i^T + l2 [W^T; 0]`
    /// (the transposed block gradient of the objective).
    pub fn block_gradient(&mut self, w: &DMatrix<T>, l2: f64, i: usize) -> Result<(), SolverError> {
        let din = self.widths[i];
        let n = self.a[i].ncols();
        let a = &self.a[i];
        gemm(
            &mut self.gtmp[i],
            1.0,
            a,
            Transpose::No,
            a,
            Transpose::Yes,
            0.0,
            1,
        )?;
        let g = &mut self.gram[i];
        g.view_mut((0, 0), (din, din)).copy_from(&self.gtmp[i]);
        for r in 0..din {
            let s = a.row(r).sum();
            g[(r, din)] = s;
            g[(din, r)] = s;
        }
        g[(din, din)] = T::of(n as f64);
        let d = &self.delta[i];
        gemm(
            &mut self.gtop[i],
            1.0,
            a,
            Transpose::No,
            d,
            Transpose::Yes,
            0.0,
            1,
        )?;
        let rhs = &mut self.rhs[i];
        let l2t = T::of(l2);
        for o in 0..d.nrows() {
            for r in 0..din {
                rhs[(r, o)] = self.gtop[i][(r, o)] + l2t * w[(o, r)];
            }
            rhs[(din, o)] = d.row(o).sum();
        }
        Ok(())
    }
}
