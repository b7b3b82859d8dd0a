//! MAC's iteration on [`MacState`]: the Z-step (MM steps on each hidden layer's
//! auxiliary coordinates, with the feasible-candidate test) and the W-step (one
//! least-squares or MM fit per layer); Carreira-Perpiñán & Wang, AISTATS 2014, and
//! ALGORITHMS.md section 5 (the maths is in the [`crate::mac`] module doc).

use super::*;

impl<T: Real> MacState<T> {
    /// One MAC iteration at penalty `mu`: the Z-step (hidden layers in forward order,
    /// `z_steps` MM steps each), then the W-step (every layer). `hook` sees the state
    /// after every block.
    pub fn iterate(
        &mut self,
        data: &LiftedData<T>,
        cfg: &MacConfig,
        mu: f64,
        threads: usize,
        counters: &mut Counters,
        hook: &mut dyn FnMut(MacBlock, &Self),
    ) -> Result<(), SolverError> {
        if data.x.ncols() == 0 || data.x.nrows() != self.w[0].ncols() {
            return Err(SolverError::shape(
                "MAC inputs (rows)",
                self.w[0].ncols(),
                data.x.nrows(),
            ));
        }
        let n = data.x.ncols();
        if cfg.feasible_candidate && !self.z.is_empty() {
            counters.inner_solves += 1;
            counters.add_forward(n); // the candidate is a full forward pass
            if self.try_feasible(data, mu, threads)? {
                hook(MacBlock::FeasibleCandidate, self);
            }
        }
        // Only the first iteration after a change can use it (the state it described).
        self.kept_objective = None;
        for i in 0..self.z.len() {
            // ||W_{i+1}||_2^2, fixed during this layer's Z-steps: once for all of them.
            let w_norm2 = self.weight_norm2(i + 1, threads)?;
            for _ in 0..cfg.z_steps {
                let trials = self.z_step(i, w_norm2, data, mu, threads)?;
                counters.inner_solves += trials;
                // The term above and its gradient (a forward and a backward pass over
                // the N columns), then one forward of that term per backtracking trial.
                counters.add_value_grad(n);
                counters.add_forward_n(trials, n);
                hook(MacBlock::Coordinates(i + 1), self);
            }
        }
        for i in 0..self.num_layers() {
            counters.inner_solves += self.w_step(i, data, cfg, mu, threads)?;
            // Per W-step MM step (one, or `out_steps` on a non-MSE output layer): the
            // layer's term and its gradient over the N columns (forward + backward).
            let steps = if i + 1 == self.num_layers() && data.loss.kind != LossKind::Mse {
                cfg.out_steps
            } else {
                1
            };
            counters.add_value_grad_n(steps as u64, n);
            hook(MacBlock::Weights(i + 1), self);
        }
        for (i, (w, b)) in self.w.iter().zip(&self.b).enumerate() {
            check_finite(w, &format!("MAC: W_{} after an iteration", i + 1))?;
            check_finite_vec(b, &format!("MAC: b_{} after an iteration", i + 1))?;
        }
        Ok(())
    }

    /// Replaces Z by the forward pass of the current weights (penalty 0, E_Q = the true
    /// objective in sum form) when that is strictly lower than E_Q now. Returns whether
    /// it was taken.
    fn try_feasible(
        &mut self,
        data: &LiftedData<T>,
        mu: f64,
        threads: usize,
    ) -> Result<bool, SolverError> {
        #[cfg(test)]
        tally::note(&tally::CANDIDATES);
        self.hidden_term = None; // Z may be replaced below
        let current = self.objective_cached(data, mu, threads)?;
        // The candidate's buffers are kept between iterations (no d x N allocations).
        let mut z_new = std::mem::take(&mut self.cand_z);
        let mut a_new = std::mem::take(&mut self.cand_a);
        let mut out = std::mem::take(&mut self.cand_out);
        z_new.resize_with(self.z.len(), || DMatrix::zeros(0, 0));
        a_new.resize_with(self.z.len(), || DMatrix::zeros(0, 0));
        let r = self.feasible_candidate(data, threads, &mut z_new, &mut a_new, &mut out);
        let taken = match r {
            Ok(feasible) if feasible < current => {
                // The new Z_1 is layer 1's output (copied only now that it is taken); the
                // new layer outputs are the new Z and `out`.
                crate::mac::z_kernel::copy_into(&mut z_new[0], &self.lin[0]);
                let last = self.num_layers() - 1;
                for (lin, z) in self.lin[1..last].iter_mut().zip(&z_new[1..]) {
                    crate::mac::z_kernel::copy_into(lin, z);
                }
                std::mem::swap(&mut self.lin[last], &mut out);
                self.out_term.clear();
                std::mem::swap(&mut self.z, &mut z_new);
                std::mem::swap(&mut self.a, &mut a_new);
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(e) => Err(e),
        };
        self.cand_z = z_new;
        self.cand_a = a_new;
        self.cand_out = out;
        taken
    }

    /// The forward pass of the current weights into `z_new`, `a_new` (hidden layers) and
    /// `out` (the output); returns its objective (data term + L2, sum form). `z_new[0]`
    /// is left alone: layer 1's output is the cached `lin[0]`, copied by the caller if
    /// the candidate is taken.
    fn feasible_candidate(
        &self,
        data: &LiftedData<T>,
        threads: usize,
        z_new: &mut [DMatrix<T>],
        a_new: &mut [DMatrix<T>],
        out: &mut DMatrix<T>,
    ) -> Result<f64, SolverError> {
        for i in 0..self.z.len() {
            if i == 0 {
                // Layer 1's output does not depend on Z: the cached one.
                self.acts[0].apply_matrix(&self.lin[0], &mut a_new[0]);
            } else {
                affine(
                    &self.w[i],
                    &self.b[i],
                    &a_new[i - 1],
                    threads,
                    &mut z_new[i],
                )?;
                self.acts[i].apply_matrix(&z_new[i], &mut a_new[i]);
            }
        }
        let last = self.num_layers() - 1;
        affine(&self.w[last], &self.b[last], &a_new[last - 1], threads, out)?;
        let mut feasible = data.data_term(out)?;
        for w in &self.w {
            feasible += 0.5 * data.l2_sum() * sq_norm(w);
        }
        Ok(feasible)
    }

    /// Gradient (sum form) and curvature bound of the term on the output of layer `i`:
    /// the loss for the last layer, `(mu/2)||Z_{i+1} - out||^2` for a hidden one. Writes
    /// `out = W_i in + b_i` into the cache `self.lin[i]` and the gradient into `self.s2`; returns
    /// (term value, curvature c).
    fn top_term(
        &mut self,
        i: usize,
        data: &LiftedData<T>,
        mu: f64,
        threads: usize,
    ) -> Result<(f64, f64), SolverError> {
        #[cfg(test)]
        tally::note(&tally::TERMS);
        self.ensure_lin(i, data.x, threads)?;
        if i + 1 == self.num_layers() {
            self.hidden_term = None; // `s2` is overwritten below
            if let Some((val, c)) = self.out_term.value_curv.filter(|_| keep_output_term()) {
                // The same output as when it was computed: its kept gradient.
                crate::mac::z_kernel::copy_into(&mut self.s2, &self.out_term.grad);
                return Ok((val, c));
            }
            let val = data
                .loss
                .value_and_output_grad(&self.lin[i], data.targets, &mut self.s2)
                .map_err(|e| SolverError::Problem(format!("MAC loss: {e}")))?;
            let inv_w = T::of(1.0 / data.weight());
            self.s2 *= inv_w;
            let c = match data.loss.kind {
                LossKind::Mse => 1.0,
                _ => data
                    .loss
                    .curvature_bound(self.lin[i].nrows())
                    .max_eigenvalue()
                    .ok_or_else(|| {
                        SolverError::Problem("MAC: loss has no curvature bound".into())
                    })?,
            };
            let val = val.to_f64() / data.weight();
            crate::mac::z_kernel::copy_into(&mut self.out_term.grad, &self.s2);
            self.out_term.value_curv = Some((val, c));
            Ok((val, c))
        } else {
            if let Some((l, m, val)) = self.hidden_term.filter(|_| keep_output_term())
                && l == i
                && m.to_bits() == mu.to_bits()
            {
                // `s2` already holds this term's gradient (the last Z-step trial below).
                return Ok((val, mu));
            }
            // One pass: d = lin - Z in T, the sum of d^2 in f64, s2 = d mu.
            let sq = crate::mac::z_kernel::hidden_term(&self.lin[i], &self.z[i], mu, &mut self.s2);
            self.hidden_term = Some((i, mu, 0.5 * mu * sq));
            Ok((0.5 * mu * sq, mu))
        }
    }

    /// `||W_l||_2^2` of layer `l` (0-based), the largest eigenvalue of the smaller of
    /// `W W^T`, `W^T W`, estimated by [`lambda_max_psd`] (30 power iterations; the Z-step
    /// certifies it by backtracking).
    fn weight_norm2(&self, l: usize, threads: usize) -> Result<f64, SolverError> {
        let w = &self.w[l];
        let mut gram = DMatrix::zeros(0, 0);
        if w.nrows() <= w.ncols() {
            mm(&mut gram, 1.0, w, N, w, Y, 0.0, threads)?;
        } else {
            mm(&mut gram, 1.0, w, Y, w, N, 0.0, threads)?;
        }
        Ok(lambda_max_psd(&gram, 30))
    }

    /// Z-step on hidden layer `i` (0-based; Z_{i+1}): one MM step (see the module doc),
    /// certified by backtracking on the curvature constant. Returns the trials made.
    fn z_step(
        &mut self,
        i: usize,
        w_norm2: f64,
        data: &LiftedData<T>,
        mu: f64,
        threads: usize,
    ) -> Result<u64, SolverError> {
        let up = i + 1;
        // Term above, its gradient G (in s2) in the output of layer `up`.
        let (phi0, c_up) = self.top_term(up, data, mu, threads)?;
        // Gamma = W_up^T G  (d_i x N).
        let mut gamma = std::mem::take(&mut self.gamma_buf);
        #[cfg(test)]
        tally::note(&tally::GRAD_PRODUCTS);
        mm(&mut gamma, 1.0, &self.w[up], Y, &self.s2, N, 0.0, threads)?;
        let lc = c_up * w_norm2;
        // Below: M = W_i h(Z_{i-1}) + b_i (cached; unchanged by this step).
        self.ensure_lin(i, data.x, threads)?;
        let m = std::mem::take(&mut self.lin[i]);
        let r = self.z_trials(i, up, m.as_slice(), &gamma, phi0, lc, data, mu, threads);
        self.lin[i] = m;
        self.gamma_buf = gamma;
        r
    }

    /// The backtracking loop of [`MacState::z_step`] (`m` = the cached `lin[i]`).
    #[allow(clippy::too_many_arguments)]
    fn z_trials(
        &mut self,
        i: usize,
        up: usize,
        m: &[T],
        gamma: &DMatrix<T>,
        phi0: f64,
        lc: f64,
        data: &LiftedData<T>,
        mu: f64,
        threads: usize,
    ) -> Result<u64, SolverError> {
        let tol = 64.0 * T::EPS.to_f64() * (1.0 + phi0.abs());
        self.hidden_term = None; // Z_i changes below
        if lc <= 0.0 || !lc.is_finite() {
            // The layer above ignores A (W_up = 0) or is broken: nothing to gain here.
            return Ok(0);
        }
        // The old h(Z), Z move to the backup buffers (every trial rewrites every entry of
        // a[i], z[i] from them, so they need no copy); on an error they move back.
        let mut a0 = std::mem::take(&mut self.a_old);
        let mut z0 = std::mem::take(&mut self.z_old);
        crate::linalg::fit(&mut a0, self.a[i].nrows(), self.a[i].ncols());
        crate::linalg::fit(&mut z0, self.z[i].nrows(), self.z[i].ncols());
        std::mem::swap(&mut a0, &mut self.a[i]);
        std::mem::swap(&mut z0, &mut self.z[i]);
        let r = self.z_trials_from(i, up, m, gamma, phi0, lc, tol, data, mu, threads, &a0, &z0);
        if r.is_err() {
            std::mem::swap(&mut a0, &mut self.a[i]);
            std::mem::swap(&mut z0, &mut self.z[i]);
            self.lin_valid[up] = false;
        }
        self.a_old = a0;
        self.z_old = z0;
        r
    }

    /// [`MacState::z_trials`] from the saved `h(Z_old)`, `Z_old`.
    #[allow(clippy::too_many_arguments)]
    fn z_trials_from(
        &mut self,
        i: usize,
        up: usize,
        m: &[T],
        gamma: &DMatrix<T>,
        phi0: f64,
        mut lc: f64,
        tol: f64,
        data: &LiftedData<T>,
        mu: f64,
        threads: usize,
        a0: &DMatrix<T>,
        z0: &DMatrix<T>,
    ) -> Result<u64, SolverError> {
        let h = self.acts[i];
        let entries = crate::mac::z_kernel::Entries {
            a0: a0.as_slice(),
            z0: z0.as_slice(),
            m,
            gamma: gamma.as_slice(),
        };
        for trial in 1..=60u64 {
            crate::mac::z_kernel::update(
                h,
                lc,
                mu,
                &entries,
                self.z[i].as_mut_slice(),
                self.a[i].as_mut_slice(),
                &mut self.a_f64,
                i + 1,
            )?;
            let (lin, quad) =
                crate::mac::z_kernel::model_terms(entries.gamma, entries.a0, &self.a_f64);
            self.lin_valid[up] = false;
            let (phi_new, _) = self.top_term(up, data, mu, threads)?;
            if phi_new <= phi0 + lin + 0.5 * lc * quad + tol {
                return Ok(trial);
            }
            lc *= 2.0;
        }
        // (The caller restores Z_old, h(Z_old).)
        Err(SolverError::LineSearch(format!(
            "MAC Z_{} step: no certified curvature bound after 60 doublings",
            i + 1
        )))
    }

    /// W-step of layer `i` (0-based): with `Abar = [h(Z_{i-1}); 1^T]`, `G` the gradient of
    /// the term above in the layer output and `c` its curvature bound, solve
    /// `(c Abar Abar^T + Lambda + eps I) D^T = -(Abar G^T + Lambda Wbar^T)` and set
    /// `Wbar += D` (`Lambda` = l2 on the weight columns, 0 on the bias). Exact least squares
    /// for hidden layers and MSE; an MM (Böhning / logistic bound) step otherwise, repeated
    /// `out_steps` times. Returns the number of linear solves.
    fn w_step(
        &mut self,
        i: usize,
        data: &LiftedData<T>,
        cfg: &MacConfig,
        mu: f64,
        threads: usize,
    ) -> Result<u64, SolverError> {
        let last = i + 1 == self.num_layers();
        let steps = if last && data.loss.kind != LossKind::Mse {
            cfg.out_steps
        } else {
            1
        };
        let ls = data.l2_sum();
        let d_in = self.w[i].ncols();
        let d_out = self.w[i].nrows();
        // Gram of Abar (fixed during this W-step).
        let input = if i == 0 { data.x } else { &self.a[i - 1] };
        let mut aa_local = DMatrix::zeros(0, 0);
        let s_local;
        let (aa, s) = if i == 0 {
            if !self.input_key.hit(input, threads) {
                mm(&mut self.input_gram, 1.0, input, N, input, Y, 0.0, threads)?;
                self.input_sums = row_sums(input);
            }
            (self.input_gram.clone(), self.input_sums.clone())
        } else {
            gram_sym(&mut aa_local, 1.0, input, threads, &mut self.gram_ws)?;
            s_local = row_sums(input);
            (std::mem::take(&mut aa_local), s_local)
        };
        let n = input.ncols() as f64;
        for _ in 0..steps {
            let (_, c) = self.top_term(i, data, mu, threads)?;
            let input = if i == 0 { data.x } else { &self.a[i - 1] };
            // Layer 1's system depends only on X and c: its factor is reused for the same c.
            let reuse = i == 0
                && self.factor_key.hit_with(input, threads, [c, ls])
                && self.input_factor.is_some();
            let mut sys = DMatrix::zeros(d_in + 1, d_in + 1);
            sys.view_mut((0, 0), (d_in, d_in))
                .copy_from(&(&aa * T::of(c)));
            for k in 0..d_in {
                sys[(k, d_in)] = s[k] * T::of(c);
                sys[(d_in, k)] = s[k] * T::of(c);
                sys[(k, k)] += T::of(ls);
            }
            sys[(d_in, d_in)] = T::of(c * n);
            add_diag(&mut sys, cfg.ridge);
            // rhs = -(Abar G^T + Lambda Wbar^T)   ((d_in + 1) x d_out)
            let mut ag = DMatrix::zeros(0, 0);
            #[cfg(test)]
            tally::note(&tally::GRAD_PRODUCTS);
            mm(&mut ag, -1.0, input, N, &self.s2, Y, 0.0, threads)?;
            let gsum = row_sums(&self.s2);
            let mut rhs = DMatrix::zeros(d_in + 1, d_out);
            rhs.view_mut((0, 0), (d_in, d_out)).copy_from(&ag);
            for o in 0..d_out {
                rhs[(d_in, o)] = -gsum[o];
                for k in 0..d_in {
                    rhs[(k, o)] -= T::of(ls) * self.w[i][(o, k)];
                }
            }
            if reuse {
                if let Some(f) = &self.input_factor {
                    cholesky_solve_rows(f.l_dirty(), &mut rhs, &mut self.solve_ws);
                }
            } else if i == 0 {
                self.factor_key.clear();
                let f = nalgebra::Cholesky::new(sys).ok_or_else(|| {
                    SolverError::NonFinite(format!(
                        "MAC W_1 step: the {0} x {0} system matrix is not positive definite \
                         (non-finite entries or a vanishing ridge)",
                        d_in + 1
                    ))
                })?;
                cholesky_solve_rows(f.l_dirty(), &mut rhs, &mut self.solve_ws);
                self.input_factor = Some(f);
                self.factor_key.hit_with(input, threads, [c, ls]);
            } else {
                let f = nalgebra::Cholesky::new(sys).ok_or_else(|| {
                    SolverError::NonFinite(format!(
                        "MAC W_{} step: the {1} x {1} system matrix is not positive definite \
                         (non-finite entries or a vanishing ridge)",
                        i + 1,
                        d_in + 1
                    ))
                })?;
                cholesky_solve_rows(f.l_dirty(), &mut rhs, &mut self.solve_ws);
            }
            for o in 0..d_out {
                for k in 0..d_in {
                    self.w[i][(o, k)] += rhs[(k, o)];
                }
                self.b[i][o] += rhs[(d_in, o)];
            }
            self.lin_valid[i] = false;
        }
        Ok(steps as u64)
    }
}
