//! Buffers of block MM on an MLP: the forward trace, trial trace, backpropagated
//! output gradients and per-layer solve matrices (allocated once in `init`).

use autodiff::{Real, Transpose};
use nalgebra::{Cholesky, DMatrix, Dyn};
use nets::{Activation, Dataset, Dense, Loss, Sequential, Targets};

use super::spectral::PowerIteration;
use crate::SolverError;
use crate::linalg::{DataStamp, GramScratch, InputKey, gemm, gram_sym};

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
    /// Trial versions of a and z (`ta[0]` is empty: the input does not change).
    pub ta: Vec<DMatrix<T>>,
    pub tz: Vec<DMatrix<T>>,
    /// delta[k] = d data term / d z[k].
    pub delta: Vec<DMatrix<T>>,
    /// Output gradient at the trial point.
    pub tgrad: DMatrix<T>,
    /// Scratch: W^T delta and h'(z), per layer input (d_{k} x N; empty for k = 0).
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
    /// The data matrix `a[0]` was last copied from (address, shape); `gram[0]` depends
    /// only on it, so it is computed once per data set instead of once per sweep.
    input_key: InputKey,
    /// Whether `gram[0]` holds `[X;1][X;1]^T` of the data under `input_key`.
    gram0_valid: bool,
    /// Cholesky factors of the first layer's solve matrix for the last few
    /// `(curvature, l2, ridge)` (bit patterns), oldest first; valid while `gram0_valid`.
    factors0: Vec<([u64; 3], Cholesky<T, Dyn>)>,
    /// Data term of the point the trace holds (`z[L-1]`, with its gradient in
    /// `delta[L-1]`) and of the trial trace.
    cur_data: f64,
    trial_data: f64,
    /// The weights and biases of every dense layer (flat, in layer order) when the sweep
    /// that left the trace current ended ([`Workspace::keep_trace`]); meaningful only
    /// while `kept_valid` (cleared at the start of every sweep, so a sweep that fails
    /// half-way never hands its trace on).
    kept: Vec<T>,
    kept_valid: bool,
    /// The loss the kept data term and output gradient were computed with (a sweep
    /// reuses them only for an equal one: it is a public field of the problem; the
    /// targets are keyed by the data set's identity, `stamp`).
    kept_loss: Option<Loss>,
    /// The data set `start_sweep` last ran on ([`nets::Dataset::id`]): the inputs and
    /// targets of `gram[0]`, the factors and the kept trace.
    stamp: DataStamp,
    /// Whether the hidden layers' Gram matrices are formed as half products
    /// ([`gram_sym`], rounding differs from the full GEMM in the last bits) or as the full
    /// GEMM. Block MM sets it on its safeguarded path only: the certified path's trust
    /// region turned out to amplify last-bit changes of its direction (`trace_check`
    /// moved by up to 30% within 6 sweeps), so it keeps the full GEMM's rounding.
    pub half_gram: bool,
    /// Buffers of the hidden layers' Gram matrices ([`gram_sym`]).
    gram_ws: GramScratch<T>,
    /// Row sums of a trace matrix ([`row_sums`]).
    rsum: Vec<T>,
}

/// How many first-layer factors are kept (each `(d_0 + 1)^2` numbers): backtracking
/// around a steady curvature `L` visits `L / 2`, `L` and `2 L`.
const KEPT_FACTORS: usize = 3;

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
            // Index 0 of `ta`, `back` and `deriv` is never read (the input X never
            // changes, and backprop stops at layer 1's input): empty, so the workspace
            // holds one input-sized matrix (`a[0]`), not four.
            ta: (0..layers)
                .map(|k| z(if k == 0 { 0 } else { widths[k] }))
                .collect(),
            tz: (0..layers).map(|k| z(widths[k + 1])).collect(),
            delta: (0..layers).map(|k| z(widths[k + 1])).collect(),
            tgrad: z(widths[layers]),
            back: (0..layers)
                .map(|k| z(if k == 0 { 0 } else { widths[k] }))
                .collect(),
            deriv: (0..layers)
                .map(|k| z(if k == 0 { 0 } else { widths[k] }))
                .collect(),
            gram: Vec::new(),
            h: Vec::new(),
            rhs: Vec::new(),
            gtop: Vec::new(),
            gtmp: Vec::new(),
            sol: Vec::new(),
            w_old: Vec::new(),
            b_old: Vec::new(),
            power: Vec::new(),
            input_key: InputKey::default(),
            gram0_valid: false,
            factors0: Vec::new(),
            cur_data: f64::NAN,
            trial_data: f64::NAN,
            kept: Vec::new(),
            kept_valid: false,
            kept_loss: None,
            stamp: DataStamp::default(),
            half_gram: false,
            gram_ws: GramScratch::default(),
            rsum: Vec::new(),
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

    /// The trace and data term at the start of a sweep: the forward pass of `net` on `x`
    /// and the loss of its output (gradient into `delta[L-1]`), or, when the previous
    /// sweep ended on exactly these weights, inputs, loss and targets
    /// ([`Workspace::keep_trace`]), the trace it left, which is that forward pass (every
    /// accepted trial's trace replaced the current one from its block up; a rejected
    /// trial left it alone). Bit for bit the same numbers either way (issue #14: one
    /// forward pass and one loss evaluation less per sweep). The data set is keyed by its
    /// identity ([`DataStamp`]) as well as the inputs' address: a training set replaced
    /// by another of the same shape can land at the old one's address (the same holds
    /// for `gram[0]`, which depends only on the inputs). Returns the data term.
    pub fn start_sweep(
        &mut self,
        net: &Sequential<T>,
        train: &Dataset<T>,
        loss: &Loss,
    ) -> Result<f64, SolverError> {
        let x = train.inputs();
        let new_data = self.stamp.changed(train);
        let same_input = self.input_key.hit(x, 1) && !new_data;
        if !same_input {
            self.gram0_valid = false;
            self.drop_factors();
        }
        if std::mem::replace(&mut self.kept_valid, false)
            && same_input
            && self.kept_loss.as_ref() == Some(loss)
            && same_params(net, &self.kept)
        {
            return Ok(self.cur_data);
        }
        self.forward(net, x)?;
        self.data_term(loss, train.targets(), false)
    }

    /// Records that the trace is the forward pass of `net`'s current weights and its data
    /// term that of `loss` (at the end of a sweep, on the data set of its
    /// [`Workspace::start_sweep`]), for the next `start_sweep`. Copies into a kept buffer
    /// (no allocation while the shapes stay).
    pub fn keep_trace(&mut self, net: &Sequential<T>, loss: &Loss) -> Result<(), SolverError> {
        self.kept_valid = false;
        self.kept.clear();
        for k in 0..self.layers {
            let d = dense(net, k)?;
            self.kept.extend_from_slice(d.weight.as_slice());
            self.kept.extend_from_slice(d.bias.as_slice());
        }
        self.kept_loss = Some(*loss);
        self.kept_valid = true;
        Ok(())
    }

    /// Drops the kept trace (tests: the next sweep recomputes it).
    #[cfg(test)]
    pub fn forget_trace(&mut self) {
        self.kept_valid = false;
    }

    /// Full forward pass of `net` on `x` into the trace (the caller keeps `input_key`).
    fn forward(&mut self, net: &Sequential<T>, x: &DMatrix<T>) -> Result<(), SolverError> {
        self.kept_valid = false;
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
        self.cur_data = self.trial_data;
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
            let v = loss.value_and_output_grad(&self.tz[last], targets, &mut self.tgrad)?;
            self.trial_data = v.to_f64();
            v
        } else {
            let v = loss.value_and_output_grad(&self.z[last], targets, &mut self.delta[last])?;
            self.cur_data = v.to_f64();
            v
        };
        Ok(v.to_f64())
    }

    /// Fills `gram[i] = [A;1][A;1]^T` and `rhs[i] = [A;1] delta_i^T + l2 [W^T; 0]`
    /// (the transposed block gradient of the objective). The first layer's Gram matrix
    /// depends only on the data, so it is kept across sweeps (the same GEMM on the same
    /// input, so bit for bit what recomputing it would give).
    pub fn block_gradient(&mut self, w: &DMatrix<T>, l2: f64, i: usize) -> Result<(), SolverError> {
        if i != 0 || !self.gram0_valid {
            if i == 0 {
                self.drop_factors();
            }
            self.gram_of(i)?;
            self.gram0_valid |= i == 0;
        }
        let din = self.widths[i];
        let a = &self.a[i];
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
        row_sums(d, &mut self.rsum);
        let rhs = &mut self.rhs[i];
        let l2t = T::of(l2);
        for o in 0..d.nrows() {
            for r in 0..din {
                rhs[(r, o)] = self.gtop[i][(r, o)] + l2t * w[(o, r)];
            }
            rhs[(din, o)] = self.rsum[o];
        }
        Ok(())
    }

    /// `gram[i] = [A;1][A;1]^T` of the current input `a[i]` of dense layer `i`.
    fn gram_of(&mut self, i: usize) -> Result<(), SolverError> {
        let din = self.widths[i];
        let n = self.a[i].ncols();
        let a = &self.a[i];
        if i == 0 || !self.half_gram {
            // Layer 0: once per data set. The full GEMM, as always.
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
        } else {
            gram_sym(&mut self.gtmp[i], 1.0, a, 1, &mut self.gram_ws)?;
        }
        row_sums(a, &mut self.rsum);
        let g = &mut self.gram[i];
        g.view_mut((0, 0), (din, din)).copy_from(&self.gtmp[i]);
        for r in 0..din {
            let s = self.rsum[r];
            g[(r, din)] = s;
            g[(din, r)] = s;
        }
        g[(din, din)] = T::of(n as f64);
        Ok(())
    }

    /// If a factor of layer `i`'s solve matrix for `key` is kept (only layer 0 keeps
    /// any), solves `H X = rhs[i]` into `sol[i]` with it and returns true.
    pub fn solve_cached(&mut self, i: usize, key: [u64; 3]) -> bool {
        if i != 0 || !self.gram0_valid {
            return false;
        }
        let Some((_, chol)) = self.factors0.iter().find(|(k, _)| *k == key) else {
            return false;
        };
        self.sol[i].copy_from(&self.rhs[i]);
        chol.solve_mut(&mut self.sol[i]);
        true
    }

    /// Keeps layer `i`'s new factor (layer 0 only; the oldest is dropped beyond
    /// [`KEPT_FACTORS`] and its buffer becomes the next solve matrix), or returns its
    /// buffer to `h[i]` for the next solve.
    pub fn keep_factor(&mut self, i: usize, key: [u64; 3], chol: Cholesky<T, Dyn>) {
        if i != 0 || !self.gram0_valid {
            self.h[i] = chol.unpack();
            return;
        }
        if self.factors0.len() >= KEPT_FACTORS {
            let (_, old) = self.factors0.remove(0);
            self.h[0] = old.unpack();
        }
        self.factors0.push((key, chol));
    }

    /// Forgets the kept first-layer factors (their `M` changed).
    fn drop_factors(&mut self) {
        if let Some((_, c)) = self.factors0.pop() {
            self.h[0] = c.unpack();
        }
        self.factors0.clear();
    }
}

/// `out[r] = sum_j m[r, j]` for every row of `m`, each row summed from `0` in increasing
/// `j` (the order of nalgebra's `m.row(r).sum()`, so the same bits), walking `m` column
/// by column (contiguous) instead of one strided row at a time (issue #14).
fn row_sums<T: Real>(m: &DMatrix<T>, out: &mut Vec<T>) {
    let d = m.nrows();
    out.clear();
    out.resize(d, T::zero());
    if d == 0 {
        return;
    }
    for col in m.as_slice().chunks_exact(d) {
        for (s, x) in out.iter_mut().zip(col) {
            *s += *x;
        }
    }
}

/// Whether the dense layers of `net` hold exactly `kept` ([`Workspace::keep_trace`]'s
/// layout: each layer's weight, column-major, then its bias).
/// Whether `a` and `b` have the same shape and the same bits in every entry.
fn same_params<T: Real>(net: &Sequential<T>, kept: &[T]) -> bool {
    let mut at = 0;
    for k in 0..net.num_dense() {
        let Some(d) = net.dense(k) else {
            return false;
        };
        for part in [d.weight.as_slice(), d.bias.as_slice()] {
            match kept.get(at..at + part.len()) {
                Some(p) if p == part => at += part.len(),
                _ => return false,
            }
        }
    }
    at == kept.len()
}
