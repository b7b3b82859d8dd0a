//! Auxiliary coordinates of MAC and its two kinds of block steps.

use autodiff::{Real, Transpose};
use nalgebra::{DMatrix, DVector};
use nets::{Activation, LossKind, Sequential};
use serde::{Deserialize, Serialize};

use super::config::MacConfig;
use crate::bcd::LiftedData;
use crate::linalg::{
    GramScratch, InputKey, add_diag, affine, check_finite, check_finite_vec, cholesky_solve_rows,
    diff_and_norm, gram_sym, lambda_max_psd, mm, row_sums, sq_diff, sq_norm,
};
use crate::{Counters, SolverError};

const N: Transpose = Transpose::No;
const Y: Transpose = Transpose::Yes;

mod steps;

/// One block of a MAC iteration (layers 1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MacBlock {
    /// One majorize-minimize step on the coordinates Z_l of hidden layer l.
    Coordinates(usize),
    /// The (W_l, b_l) step of layer l (exact least squares for hidden layers).
    Weights(usize),
    /// The feasible candidate `Z = forward pass of (W, b)`, taken only when it lowers E_Q.
    FeasibleCandidate,
}

/// Weights and auxiliary coordinates: `w[l-1] = W_l`, `b[l-1] = b_l` (`l = 1..L`),
/// `z[l-1] = Z_l` (hidden pre-activations, `l = 1..L-1`) and the cached `a[l-1] =
/// h_l(Z_l)`. Memory: `2 N sum_{l<L} d_l` numbers (Z and the one cached copy h(Z)).
#[derive(Clone, Debug)]
pub struct MacState<T: Real> {
    /// W_1..W_L.
    pub w: Vec<DMatrix<T>>,
    /// b_1..b_L.
    pub b: Vec<DVector<T>>,
    /// Z_1..Z_{L-1}.
    pub z: Vec<DMatrix<T>>,
    /// h(Z_1)..h(Z_{L-1}).
    pub a: Vec<DMatrix<T>>,
    /// h_1..h_{L-1}.
    pub acts: Vec<Activation>,
    s2: DMatrix<T>,
    /// `lin[l] = W_l h(Z_{l-1}) + b_l 1^T`, reused while `lin_valid[l]` (until W_l, b_l
    /// or the layer's input change; issue #14: one iteration needs each several times).
    lin: Vec<DMatrix<T>>,
    lin_valid: Vec<bool>,
    /// Layer 1's `X X^T`, `X 1` (X never changes) and the Cholesky factor of its last
    /// W-step system, keyed by the curvature `c` (mu changes every few iterations).
    input_key: InputKey,
    data_key: InputKey,
    input_gram: DMatrix<T>,
    input_sums: DVector<T>,
    factor_key: InputKey,
    input_factor: Option<nalgebra::Cholesky<T, nalgebra::Dyn>>,
    /// Work buffers of the Z-step: the old `h(Z_l)`, `Z_l` and the new `h(Z_l)` in f64.
    a_old: DMatrix<T>,
    z_old: DMatrix<T>,
    a_f64: Vec<f64>,
    gamma_buf: DMatrix<T>,
    /// Buffers of the feasible candidate (Z, h(Z) per hidden layer, and the output).
    cand_z: Vec<DMatrix<T>>,
    cand_a: Vec<DMatrix<T>>,
    cand_out: DMatrix<T>,
    /// The output layer's term at the current `lin[L-1]` (issue #14: one iteration needs
    /// it several times while the output does not change): see [`OutputTerm`].
    out_term: OutputTerm<T>,
    /// Buffers of the hidden layers' Gram matrices in the W-step ([`gram_sym`]).
    gram_ws: GramScratch<T>,
    /// `Some((l, mu, value))` while `s2` holds the gradient `mu (lin[l] - Z_l)` of the
    /// hidden term on layer `l`'s output and `value` its value, for the current `lin[l]`
    /// and `Z_l` (issue #14: the last trial of a Z-step computes what the next Z-step
    /// starts from). Cleared whenever `s2`, `lin[l]` or any `Z` is written.
    hidden_term: Option<(usize, f64, f64)>,
    /// Work buffer of the W-steps' solves ([`cholesky_solve_rows`]).
    solve_ws: Vec<T>,
    /// The mu-free parts of E_Q from the objective at the end of the last iteration
    /// ([`KeptObjective`]), taken by the next iteration's feasible candidate.
    kept_objective: Option<KeptObjective>,
}

/// The parts of E_Q that do not depend on mu, as [`MacState::objective_and_violations_cached`]
/// summed them at the end of an iteration: per layer `||W_l||^2` and, for hidden layers,
/// `||Z_l - W_l h(Z_{l-1}) - b_l||^2`. The next iteration starts from the same state, so
/// its feasible-candidate test recombines them with its own mu in the same order (bit for
/// bit the recomputed E_Q) instead of another pass over every `d_l x N` block (issue #14).
#[derive(Clone, Debug)]
struct KeptObjective {
    w_sq: Vec<f64>,
    gap_sq: Vec<f64>,
}

/// The loss term of the output `lin[L-1]`, kept while `lin[L-1]` is unchanged: the value
/// and gradient (sum form) with the curvature bound, as [`MacState`]'s `top_term` returns
/// them, and the data term as the objective computes it. Cleared whenever `lin[L-1]` is
/// recomputed or replaced; every kept number is the one recomputation would give, bit for
/// bit (the same call on the same operands).
#[derive(Clone, Debug)]
struct OutputTerm<T: Real> {
    grad: DMatrix<T>,
    value_curv: Option<(f64, f64)>,
    data: Option<f64>,
}

impl<T: Real> OutputTerm<T> {
    fn clear(&mut self) {
        self.value_curv = None;
        self.data = None;
    }
}

impl<T: Real> MacState<T> {
    /// State from a network: weights copied, `Z_l` from its forward pass (a feasible
    /// start: every penalty term is 0).
    pub fn from_net(net: &Sequential<T>, x: &DMatrix<T>) -> Result<Self, SolverError> {
        let layers = crate::bcd::net_io::read_layers(net, "MAC")?;
        let trace = net
            .forward_trace(x)
            .map_err(|e| SolverError::Problem(format!("MAC init: {e}")))?;
        let l_count = layers.w.len();
        let z = (1..l_count).map(|l| trace.z[l].clone()).collect();
        let a = (1..l_count).map(|l| trace.a[l].clone()).collect();
        Ok(MacState {
            w: layers.w,
            b: layers.b,
            z,
            a,
            lin: vec![DMatrix::zeros(0, 0); l_count],
            lin_valid: vec![false; l_count],
            acts: layers.view.activations,
            s2: DMatrix::zeros(0, 0),
            input_key: InputKey::default(),
            data_key: InputKey::default(),
            input_gram: DMatrix::zeros(0, 0),
            input_sums: DVector::zeros(0),
            factor_key: InputKey::default(),
            input_factor: None,
            a_old: DMatrix::zeros(0, 0),
            z_old: DMatrix::zeros(0, 0),
            a_f64: Vec::new(),
            gamma_buf: DMatrix::zeros(0, 0),
            cand_z: Vec::new(),
            cand_a: Vec::new(),
            cand_out: DMatrix::zeros(0, 0),
            out_term: OutputTerm {
                grad: DMatrix::zeros(0, 0),
                value_curv: None,
                data: None,
            },
            gram_ws: GramScratch::default(),
            hidden_term: None,
            solve_ws: Vec::new(),
            kept_objective: None,
        })
    }

    /// Number of layers L.
    pub fn num_layers(&self) -> usize {
        self.w.len()
    }

    /// Replaces Z (and h(Z)) by checkpointed values (shapes checked).
    pub(crate) fn restore(&mut self, z: Vec<DMatrix<T>>) -> Result<(), SolverError> {
        if z.len() != self.z.len() || z.iter().zip(&self.z).any(|(a, b)| a.shape() != b.shape()) {
            return Err(SolverError::Checkpoint(
                "MAC: saved Z do not match the network and data shapes".into(),
            ));
        }
        for (i, zi) in z.into_iter().enumerate() {
            self.acts[i].apply_matrix(&zi, &mut self.a[i]);
            self.z[i] = zi;
        }
        self.invalidate_all();
        Ok(())
    }

    /// Drops the cached layer outputs unless they were computed for these inputs and
    /// thread count.
    pub(crate) fn check_data(&mut self, x: &DMatrix<T>, threads: usize) {
        if !self.data_key.hit(x, threads) {
            self.lin_valid.iter_mut().for_each(|v| *v = false);
            self.hidden_term = None;
            self.kept_objective = None;
        }
    }

    /// Forgets every cached product (the weights or coordinates changed from outside).
    pub(crate) fn invalidate_all(&mut self) {
        self.data_key.clear();
        self.lin_valid.iter_mut().for_each(|v| *v = false);
        self.input_key.clear();
        self.factor_key.clear();
        self.hidden_term = None;
        self.kept_objective = None;
    }

    /// Makes `lin[i] = W_i h(Z_{i-1}) + b_i 1^T` current (bit for bit [`affine`]).
    fn ensure_lin(&mut self, i: usize, x: &DMatrix<T>, threads: usize) -> Result<(), SolverError> {
        if !self.lin_valid[i] {
            let input = if i == 0 { x } else { &self.a[i - 1] };
            affine(&self.w[i], &self.b[i], input, threads, &mut self.lin[i])?;
            self.lin_valid[i] = true;
            if i + 1 == self.num_layers() {
                self.out_term.clear();
            }
            if matches!(self.hidden_term, Some((l, _, _)) if l == i) {
                self.hidden_term = None;
            }
        }
        Ok(())
    }

    /// The data term (sum form) of the current output `lin[L-1]` (made current first),
    /// computed once per output ([`OutputTerm`]).
    fn output_data_term(
        &mut self,
        data: &LiftedData<T>,
        threads: usize,
    ) -> Result<f64, SolverError> {
        let last = self.num_layers() - 1;
        self.ensure_lin(last, data.x, threads)?;
        if let Some(v) = self.out_term.data.filter(|_| keep_output_term()) {
            return Ok(v);
        }
        let v = data.data_term(&self.lin[last])?;
        self.out_term.data = Some(v);
        Ok(v)
    }

    /// [`MacState::objective`] from the cached layer outputs; when the state is the one
    /// the last [`MacState::objective_and_violations_cached`] saw (its [`KeptObjective`]
    /// is still held and no layer output was invalidated since), from its mu-free parts
    /// and the kept output term, bit for bit the same sum.
    pub(crate) fn objective_cached(
        &mut self,
        data: &LiftedData<T>,
        mu: f64,
        threads: usize,
    ) -> Result<f64, SolverError> {
        let l_count = self.num_layers();
        let kept = self
            .kept_objective
            .take()
            .filter(|_| keep_output_term() && self.lin_valid.iter().all(|&v| v));
        let mut e = 0.0;
        for i in 0..l_count {
            self.ensure_lin(i, data.x, threads)?;
            let (w_sq, gap_sq) = match &kept {
                Some(k) => (k.w_sq[i], k.gap_sq.get(i).copied()),
                None => (
                    sq_norm(&self.w[i]),
                    (i + 1 < l_count).then(|| sq_diff(&self.z[i], &self.lin[i])),
                ),
            };
            e += 0.5 * data.l2_sum() * w_sq;
            match gap_sq {
                Some(d) if i + 1 < l_count => e += 0.5 * mu * d,
                _ => e += self.output_data_term(data, threads)?,
            }
        }
        Ok(e)
    }

    /// [`MacState::objective_cached`] and [`MacState::violations`] from the cached layer
    /// outputs in one pass: each hidden layer's `||Z_l - W_l h(Z_{l-1}) - b_l||^2` is
    /// summed once for both (bit for bit the two separate calls). Keeps the mu-free parts
    /// for the next iteration's start ([`KeptObjective`]).
    pub(crate) fn objective_and_violations_cached(
        &mut self,
        data: &LiftedData<T>,
        mu: f64,
        threads: usize,
    ) -> Result<(f64, Vec<f64>), SolverError> {
        let l_count = self.num_layers();
        let mut e = 0.0;
        let mut v = Vec::with_capacity(self.z.len());
        let mut kept = KeptObjective {
            w_sq: Vec::with_capacity(l_count),
            gap_sq: Vec::with_capacity(self.z.len()),
        };
        self.kept_objective = None;
        for i in 0..l_count {
            self.ensure_lin(i, data.x, threads)?;
            let w_sq = sq_norm(&self.w[i]);
            kept.w_sq.push(w_sq);
            e += 0.5 * data.l2_sum() * w_sq;
            if i + 1 < l_count {
                let (d, n) = diff_and_norm(&self.z[i], &self.lin[i]);
                kept.gap_sq.push(d);
                e += 0.5 * mu * d;
                v.push((d / n.max(1e-300)).sqrt());
            } else {
                e += self.output_data_term(data, threads)?;
            }
        }
        self.kept_objective = Some(kept);
        Ok((e, v))
    }

    /// The quadratic-penalty function in sum form (ALGORITHMS.md 5.1 with the cut placed
    /// on pre-activations):
    ///
    /// ```text
    /// E_Q = sum_n ell(W_L h(Z_{L-1}) + b_L) + (l2_sum/2) sum_l ||W_l||^2
    ///     + (mu/2) sum_{l<L} ||Z_l - W_l h(Z_{l-1}) - b_l 1^T||^2,   h(Z_0) = X.
    /// ```
    pub fn objective(&self, data: &LiftedData<T>, mu: f64) -> Result<f64, SolverError> {
        let l_count = self.num_layers();
        let mut out = DMatrix::zeros(0, 0);
        let mut e = 0.0;
        for i in 0..l_count {
            let input = if i == 0 { data.x } else { &self.a[i - 1] };
            affine(&self.w[i], &self.b[i], input, 1, &mut out)?;
            e += 0.5 * data.l2_sum() * sq_norm(&self.w[i]);
            if i + 1 < l_count {
                e += 0.5 * mu * sq_diff(&self.z[i], &out);
            } else {
                e += data.data_term(&out)?;
            }
        }
        Ok(e)
    }

    /// Relative constraint violation per hidden layer,
    /// `||Z_l - W_l h(Z_{l-1}) - b_l||_F / ||W_l h(Z_{l-1}) + b_l||_F`.
    pub fn violations(&self, x: &DMatrix<T>) -> Result<Vec<f64>, SolverError> {
        let mut out = DMatrix::zeros(0, 0);
        let mut v = Vec::with_capacity(self.z.len());
        for i in 0..self.z.len() {
            let input = if i == 0 { x } else { &self.a[i - 1] };
            affine(&self.w[i], &self.b[i], input, 1, &mut out)?;
            v.push((sq_diff(&self.z[i], &out) / sq_norm(&out).max(1e-300)).sqrt());
        }
        Ok(v)
    }
}

/// Whether [`OutputTerm`]'s kept values are used (always, except in tests that compare
/// against recomputing them: [`tally::RECOMPUTE_OUTPUT_TERM`]).
fn keep_output_term() -> bool {
    #[cfg(test)]
    {
        !tally::RECOMPUTE_OUTPUT_TERM.with(std::cell::Cell::get)
    }
    #[cfg(not(test))]
    {
        true
    }
}

/// Test instrument (data-pass accounting, docs/RESULTS_SCHEMA.md): the tests count the
/// evaluations that touch all N samples where they happen, independently of the
/// solver's counters: evaluations of a block's term over the N columns (forward-type),
/// products of a term's gradient with the transposed weights or the layer input
/// (backward-type), and feasible-candidate forward passes.
#[cfg(test)]
pub(crate) mod tally {
    use std::cell::Cell;
    thread_local! {
        pub(crate) static TERMS: Cell<u64> = const { Cell::new(0) };
        pub(crate) static GRAD_PRODUCTS: Cell<u64> = const { Cell::new(0) };
        pub(crate) static CANDIDATES: Cell<u64> = const { Cell::new(0) };
        /// When set, the output term is recomputed wherever it is needed (as before it
        /// was kept), for comparisons with the kept values.
        pub(crate) static RECOMPUTE_OUTPUT_TERM: Cell<bool> = const { Cell::new(false) };
    }
    pub(crate) fn note(c: &'static std::thread::LocalKey<Cell<u64>>) {
        c.with(|v| v.set(v.get() + 1));
    }
    /// (terms, gradient products, candidates) so far on this thread.
    pub(crate) fn read() -> (u64, u64, u64) {
        (
            TERMS.with(Cell::get),
            GRAD_PRODUCTS.with(Cell::get),
            CANDIDATES.with(Cell::get),
        )
    }
}
