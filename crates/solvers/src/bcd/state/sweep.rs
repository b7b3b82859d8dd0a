//! BCD's backward sweep on [`BcdState`] and its block updates: the output blocks
//! `V_L`, `U_L`, then per layer the weights (exact or prox-linear) and the hidden
//! `V_l`, `U_l` (Zeng, Lau, Lin, Yao, ICML 2019, as the reference code runs it; ALGORITHMS.md 4.2;
//! the maths is in the [`crate::bcd`] module doc).

use super::*;

impl<T: Real> BcdState<T> {
    /// One backward sweep (ALGORITHMS.md 4.2): V_L, U_L, then for l = L..1 the weight
    /// block(s) of layer l and, for l >= 2, V_{l-1} and U_{l-1}. `hook` sees the state
    /// after every block (for monotonicity tests and diagnostics).
    ///
    /// Data passes (docs/RESULTS_SCHEMA.md: a pass through one layer counts as a whole
    /// pass): every block update touches every sample once through its layer, so each
    /// block adds one pass over the N samples to `counters`: a forward-type evaluation
    /// for the blocks that evaluate the loss or a layer map (`V_L`'s loss prox, `U_L`,
    /// `U_l`), a backward-type one for those that form sums over samples with the
    /// layer's input or transposed weights (`W_l`/`b_l`, `b_l` alone, `V_l`); each trial
    /// of a prox-linear weight step re-evaluates the layer map at the trial point (one
    /// more forward). Exact steps, Jacobi: `L + 1` forward and `2L - 1` backward passes
    /// per sweep.
    pub fn sweep(
        &mut self,
        data: &LiftedData<T>,
        cfg: &BcdConfig,
        threads: usize,
        counters: &mut Counters,
        hook: &mut dyn FnMut(BcdBlock, &Self),
    ) -> Result<(), SolverError> {
        let l_count = self.num_layers();
        if data.x.ncols() != self.u[0].ncols() || data.x.nrows() != self.w[0].ncols() {
            return Err(SolverError::shape(
                "BCD inputs",
                format!("{} x {}", self.w[0].ncols(), self.u[0].ncols()),
                format!("{} x {}", data.x.nrows(), data.x.ncols()),
            ));
        }
        let n = data.n();
        // The products kept by the last objective (if still current) feed the U steps.
        let key_hit = self.lin_key.hit(data.x, threads);
        let kept = std::mem::replace(&mut self.lin_ready, false) && key_hit;
        self.update_output_v(data, cfg)?;
        counters.inner_solves += 1;
        counters.add_forward(n);
        hook(BcdBlock::OutputV, self);
        self.update_output_u(data.x, cfg, threads, kept)?;
        counters.add_forward(n);
        hook(BcdBlock::OutputU, self);
        for i in (0..l_count).rev() {
            let layer = i + 1;
            match (cfg.weight_step, cfg.wb_update) {
                (WeightStep::ProxLinear, _) => {
                    let trials = self.weights_prox_linear(i, data, cfg, threads)?;
                    counters.inner_solves += trials;
                    counters.add_backward(n);
                    counters.add_forward_n(trials, n);
                    hook(BcdBlock::WeightBias(layer), self);
                }
                (WeightStep::Exact, WbUpdate::Jacobi) => {
                    let w_old = self.w[i].clone();
                    self.weight_exact(i, data, cfg, threads)?;
                    self.bias_exact(i, &w_old, data.x, cfg, threads)?;
                    counters.inner_solves += 1;
                    counters.add_backward(n);
                    hook(BcdBlock::WeightBias(layer), self);
                }
                (WeightStep::Exact, WbUpdate::Sequential) => {
                    self.weight_exact(i, data, cfg, threads)?;
                    counters.inner_solves += 1;
                    counters.add_backward(n);
                    hook(BcdBlock::Weight(layer), self);
                    let w_new = self.w[i].clone();
                    self.bias_exact(i, &w_new, data.x, cfg, threads)?;
                    counters.add_backward(n);
                    hook(BcdBlock::Bias(layer), self);
                }
            }
            if i >= 1 {
                self.update_hidden_v(i, cfg, threads)?;
                counters.inner_solves += 1;
                counters.add_backward(n);
                hook(BcdBlock::Activation(i), self);
                self.update_hidden_u(i - 1, data.x, cfg, threads, kept)?;
                counters.inner_solves += 1;
                counters.add_forward(n);
                hook(BcdBlock::PreActivation(i), self);
            }
        }
        for (i, (w, b)) in self.w.iter().zip(&self.b).enumerate() {
            check_finite(w, &format!("BCD: W_{} after a sweep", i + 1))?;
            check_finite_vec(b, &format!("BCD: b_{} after a sweep", i + 1))?;
        }
        Ok(())
    }

    /// `scratch <- W_k V_{k-1} + b_k 1^T` (0-based `k`, `V_{-1} = X`): the product kept by
    /// the last objective when `kept` (swapped in: the objective recomputes it after the
    /// sweep), else computed.
    fn layer_product(
        &mut self,
        k: usize,
        x: &DMatrix<T>,
        threads: usize,
        kept: bool,
    ) -> Result<(), SolverError> {
        if kept {
            std::mem::swap(&mut self.scratch, &mut self.lin[k]);
            return Ok(());
        }
        let input = if k == 0 { x } else { &self.v[k - 1] };
        affine(&self.w[k], &self.b[k], input, threads, &mut self.scratch)
    }

    /// V_L <- argmin ell(V) + (gamma/2)||V - U_L||^2 + (alpha/2)||V - V_L_old||^2, i.e.
    /// the loss prox with `t = 1/(gamma + alpha)` at `(gamma U_L + alpha V_old)/(gamma +
    /// alpha)` (closed form for MSE: the reference code's update).
    fn update_output_v(
        &mut self,
        data: &LiftedData<T>,
        cfg: &BcdConfig,
    ) -> Result<(), SolverError> {
        let last = self.num_layers() - 1;
        let (g, a) = (cfg.gamma, cfg.alpha);
        let center = (&self.u[last] * T::of(g) + &self.v[last] * T::of(a)) / T::of(g + a);
        data.loss
            .output_prox(data.targets, &center, 1.0 / (g + a), &mut self.scratch)
            .map_err(|e| SolverError::Problem(format!("BCD output step: {e}")))?;
        check_finite(&self.scratch, "BCD: V_L")?;
        std::mem::swap(&mut self.v[last], &mut self.scratch);
        Ok(())
    }

    /// U_L <- (gamma V_L + rho (W_L V_{L-1} + b_L 1^T)) / (gamma + rho) (exact; no
    /// proximal term, as in the code: the subproblem is strongly convex).
    fn update_output_u(
        &mut self,
        x: &DMatrix<T>,
        cfg: &BcdConfig,
        threads: usize,
        kept: bool,
    ) -> Result<(), SolverError> {
        let last = self.num_layers() - 1;
        self.layer_product(last, x, threads, kept)?;
        let (g, r) = (T::of(cfg.gamma), T::of(cfg.rho));
        let s = T::one() / (g + r);
        for (u, (&v, &m)) in self.u[last]
            .iter_mut()
            .zip(self.v[last].iter().zip(self.scratch.iter()))
        {
            *u = (g * v + r * m) * s;
        }
        Ok(())
    }

    /// W_l <- (alpha W_old + rho (U_l - b_l 1^T) V^T)(alpha I + rho V V^T + l2 I)^{-1},
    /// V = V_{l-1}, with the current b_l (0-based layer `i`).
    pub(crate) fn weight_exact(
        &mut self,
        i: usize,
        data: &LiftedData<T>,
        cfg: &BcdConfig,
        threads: usize,
    ) -> Result<(), SolverError> {
        let input = if i == 0 { data.x } else { &self.v[i - 1] };
        let (rho, alpha) = (cfg.rho, cfg.alpha);
        let what = format!("BCD W_{} step", i + 1);
        let ws = &mut self.gram_ws;
        let mut gram_of = |input: &DMatrix<T>| -> Result<DMatrix<T>, SolverError> {
            // Layer 1's (X X^T, once per data set) stays the full GEMM it always was;
            // hidden layers' (every sweep) take the half product.
            let mut gram = DMatrix::zeros(0, 0);
            if i == 0 {
                mm(&mut gram, rho, input, N, input, Y, 0.0, threads)?;
            } else {
                gram_sym(&mut gram, rho, input, threads, ws)?;
            }
            add_diag(&mut gram, alpha + data.l2_sum());
            Ok(gram)
        };
        // Layer 1: the factor of rho X X^T + (alpha + l2) I and X 1 are reused.
        let cached = i == 0
            && self
                .input_key
                .hit_with(input, threads, [rho, alpha + data.l2_sum()])
            && self.input_factor.is_some();
        if i == 0 && !cached {
            self.input_key.clear();
            let n = input.nrows();
            let chol = nalgebra::Cholesky::new(gram_of(input)?).ok_or_else(|| {
                SolverError::NonFinite(format!(
                    "{what}: the {n} x {n} system matrix is not positive definite (non-finite \
                     entries or a vanishing ridge)"
                ))
            })?;
            self.input_factor = Some(chol);
            self.input_sums = row_sums(input);
            self.input_key
                .hit_with(input, threads, [rho, alpha + data.l2_sum()]);
        }
        // rhs^T = rho V U^T - rho s b^T + alpha W_old^T   (d_in x d_out)
        let mut rhs = DMatrix::zeros(0, 0);
        mm(&mut rhs, rho, input, N, &self.u[i], Y, 0.0, threads)?;
        let s = if i == 0 {
            self.input_sums.clone()
        } else {
            row_sums(input)
        };
        let (tr, ta) = (T::of(rho), T::of(alpha));
        let w = &self.w[i];
        let b = &self.b[i];
        for c in 0..rhs.ncols() {
            for r in 0..rhs.nrows() {
                rhs[(r, c)] += ta * w[(c, r)] - tr * s[r] * b[c];
            }
        }
        match (&self.input_factor, i) {
            (Some(chol), 0) => chol.solve_mut(&mut rhs),
            _ => solve_spd(gram_of(input)?, &mut rhs, &what)?,
        }
        self.w[i] = rhs.transpose();
        Ok(())
    }

    /// b_l <- (alpha b_old + rho (U_l - W V_{l-1}) 1) / (rho N + alpha) with the given W
    /// (the previous W_l for the Jacobi pair, the new one for the sequential variant).
    pub(crate) fn bias_exact(
        &mut self,
        i: usize,
        w_for_b: &DMatrix<T>,
        x: &DMatrix<T>,
        cfg: &BcdConfig,
        _threads: usize,
    ) -> Result<(), SolverError> {
        let input = if i == 0 { x } else { &self.v[i - 1] };
        let n = input.ncols() as f64;
        let s = row_sums(input);
        let us = row_sums(&self.u[i]);
        let ws = w_for_b * &s;
        let (rho, alpha) = (T::of(cfg.rho), T::of(cfg.alpha));
        let den = T::of(cfg.rho * n + cfg.alpha);
        for (k, bk) in self.b[i].iter_mut().enumerate() {
            *bk = (alpha * *bk + rho * (us[k] - ws[k])) / den;
        }
        Ok(())
    }

    /// Prox-linear step on the joint block (W_l, b_l): gradient step with step
    /// `1/(L + alpha)`, L certified by backtracking. Returns the number of trials.
    fn weights_prox_linear(
        &mut self,
        i: usize,
        data: &LiftedData<T>,
        cfg: &BcdConfig,
        threads: usize,
    ) -> Result<u64, SolverError> {
        let input = if i == 0 { data.x } else { &self.v[i - 1] };
        let (rho, alpha, ls) = (cfg.rho, cfg.alpha, data.l2_sum());
        let d_in = input.nrows();
        let n = input.ncols();
        // Residual R = U - W V - b 1^T and f = (rho/2)||R||^2 + (ls/2)||W||^2.
        let mut r = DMatrix::zeros(0, 0);
        affine(&self.w[i], &self.b[i], input, threads, &mut r)?;
        r = &self.u[i] - &r;
        let f_old = 0.5 * rho * sq_norm(&r) + 0.5 * ls * sq_norm(&self.w[i]);
        let mut gw = DMatrix::zeros(0, 0);
        mm(&mut gw, -rho, &r, N, input, Y, 0.0, threads)?;
        gw += &self.w[i] * T::of(ls);
        let gb = row_sums(&r) * T::of(-rho);
        let g2 = sq_norm(&gw) + sq_norm_vec(&gb);
        if g2 == 0.0 {
            return Ok(0);
        }
        // Gram of [V; 1^T]: [[V V^T, s], [s^T, N]].
        let mut gram = DMatrix::zeros(d_in + 1, d_in + 1);
        let mut vv = DMatrix::zeros(0, 0);
        mm(&mut vv, 1.0, input, N, input, Y, 0.0, threads)?;
        gram.view_mut((0, 0), (d_in, d_in)).copy_from(&vv);
        let s = row_sums(input);
        for k in 0..d_in {
            gram[(k, d_in)] = s[k];
            gram[(d_in, k)] = s[k];
        }
        gram[(d_in, d_in)] = T::of(n as f64);
        let mut lip = rho * lambda_max_psd(&gram, 30) + ls;
        let tol = 64.0 * T::EPS.to_f64() * (1.0 + f_old.abs());
        for trial in 1..=60u64 {
            let step = 1.0 / (lip + alpha);
            let w_new = &self.w[i] - &gw * T::of(step);
            let b_new = &self.b[i] - &gb * T::of(step);
            affine(&w_new, &b_new, input, threads, &mut r)?;
            r = &self.u[i] - &r;
            let f_new = 0.5 * rho * sq_norm(&r) + 0.5 * ls * sq_norm(&w_new);
            let model = f_old - step * g2 + 0.5 * lip * step * step * g2;
            if f_new <= model + tol {
                self.w[i] = w_new;
                self.b[i] = b_new;
                return Ok(trial);
            }
            lip *= 2.0;
        }
        Err(SolverError::LineSearch(format!(
            "BCD prox-linear W_{} step: no certified Lipschitz bound after 60 doublings",
            i + 1
        )))
    }

    /// V_j <- (rho W^T W + gamma I)^{-1} (rho W^T (U_{j+1} - b 1^T) + gamma h(U_j)),
    /// W = W_{j+1}, b = b_{j+1} (exact; `j = i` is 1-based, stored at `v[i-1]`).
    ///
    /// With `W` of shape `q x p` and `q < p / 2` (a narrow layer above, e.g. the
    /// output), applying the `p x p` inverse to a `p x N` right-hand side (`p^2 N`
    /// multiply-adds) is replaced by the equivalent
    /// `V = H + rho W^T K^{-1} (U - b 1^T - W H)`, `H = h(U_j)`, `K = rho W W^T + gamma I_q`
    /// (from `M (H + D) = rho W^T (U - b 1^T) + gamma H` and the push-through identity
    /// `M^{-1} W^T = W^T K^{-1}`, `M = rho W^T W + gamma I_p`), which costs
    /// `(2 p q + q^2) N` (issue #14). Equal in exact arithmetic; the rounding differs.
    fn update_hidden_v(
        &mut self,
        i: usize,
        cfg: &BcdConfig,
        threads: usize,
    ) -> Result<(), SolverError> {
        let (rho, gamma) = (cfg.rho, cfg.gamma);
        let (q, p) = self.w[i].shape();
        if 2 * q < p {
            return self.update_hidden_v_narrow(i, cfg, threads);
        }
        let w = &self.w[i];
        let mut m = DMatrix::zeros(0, 0);
        mm(&mut m, rho, w, Y, w, N, 0.0, threads)?;
        add_diag(&mut m, gamma);
        mm(&mut self.scratch, rho, w, Y, &self.u[i], N, 0.0, threads)?;
        // rho W^T b, a d_in-vector (a plain loop: matrix-vector, not on the GEMM path).
        let mut wb = DVector::<T>::zeros(w.ncols());
        for (r, wbr) in wb.iter_mut().enumerate() {
            let mut acc = T::zero();
            for (k, &bk) in self.b[i].iter().enumerate() {
                acc += w[(k, r)] * bk;
            }
            *wbr = acc * T::of(rho);
        }
        let h = self.acts[i - 1];
        let tg = T::of(gamma);
        for (c, mut col) in self.scratch.column_iter_mut().enumerate() {
            for r in 0..col.len() {
                col[r] += tg * h.apply(self.u[i - 1][(r, c)]) - wb[r];
            }
        }
        let minv = spd_inverse(m, &format!("BCD V_{} step", i))?;
        mm(
            &mut self.v[i - 1],
            1.0,
            &minv,
            N,
            &self.scratch,
            N,
            0.0,
            threads,
        )?;
        Ok(())
    }

    /// The V step of [`BcdState::update_hidden_v`] in its narrow-layer form
    /// `V = H + rho W^T K^{-1} (U - b 1^T - W H)`.
    fn update_hidden_v_narrow(
        &mut self,
        i: usize,
        cfg: &BcdConfig,
        threads: usize,
    ) -> Result<(), SolverError> {
        let (rho, gamma) = (cfg.rho, cfg.gamma);
        let w = &self.w[i];
        let mut k = DMatrix::zeros(0, 0);
        mm(&mut k, rho, w, N, w, Y, 0.0, threads)?;
        add_diag(&mut k, gamma);
        let kinv = spd_inverse(k, &format!("BCD V_{} step", i))?;
        let v = &mut self.v[i - 1];
        self.acts[i - 1].apply_matrix(&self.u[i - 1], v);
        // R = U - b 1^T - W H  (q x N)
        let r = &mut self.work_q;
        crate::linalg::fit(r, self.u[i].nrows(), self.u[i].ncols());
        r.copy_from(&self.u[i]);
        for mut col in r.column_iter_mut() {
            col -= &self.b[i];
        }
        crate::linalg::gemm(r, -1.0, w, N, v, N, 1.0, threads)?;
        mm(&mut self.work_q2, rho, &kinv, N, r, N, 0.0, threads)?;
        crate::linalg::gemm(v, 1.0, w, Y, &self.work_q2, N, 1.0, threads)
    }

    /// U_j <- argmin (gamma/2)||V_j - h(U)||^2 + (rho/2)||U - W_j V_{j-1} - b_j||^2 +
    /// (alpha/2)||U - U_old||^2, entrywise `prox_weighted(h, V_j, c, 1, (rho+alpha)/gamma)`
    /// with `c = (rho m + alpha U_old)/(rho + alpha)` (0-based `k = j - 1`). Each entry
    /// keeps its old value if that is better (a guard for activations whose prox is
    /// numeric; for ReLU the closed form is exact).
    fn update_hidden_u(
        &mut self,
        k: usize,
        x: &DMatrix<T>,
        cfg: &BcdConfig,
        threads: usize,
        kept: bool,
    ) -> Result<(), SolverError> {
        self.layer_product(k, x, threads, kept)?;
        let (rho, alpha, gamma) = (cfg.rho, cfg.alpha, cfg.gamma);
        let g = (rho + alpha) / gamma;
        let h = self.acts[k];
        let phi = |u: f64, a: f64, c: f64| {
            let r = a - h.apply(u);
            r * r + g * (u - c) * (u - c)
        };
        let err = |e: nets::NetsError| SolverError::Problem(format!("BCD U_{} step: {e}", k + 1));
        let prox = nets::prox::WeightedProx::new(&h, 1.0, g).map_err(err)?;
        if let Some(cf) = prox.closed_form() {
            // The same arithmetic in a loop the compiler can vectorize, into a work buffer
            // (kept unless an input was not finite: then the checked loop below reports it).
            let out = &mut self.work_q;
            crate::linalg::fit(out, self.u[k].nrows(), self.u[k].ncols());
            let (u0s, ms, as_) = (
                self.u[k].as_slice(),
                self.scratch.as_slice(),
                self.v[k].as_slice(),
            );
            let ok = match h {
                Activation::Relu => crate::bcd::u_kernel::closed(
                    |v| Activation::Relu.apply(v),
                    cf,
                    [rho, alpha, g],
                    u0s,
                    ms,
                    as_,
                    out.as_mut_slice(),
                ),
                _ => crate::bcd::u_kernel::closed(
                    |v| h.apply(v),
                    cf,
                    [rho, alpha, g],
                    u0s,
                    ms,
                    as_,
                    out.as_mut_slice(),
                ),
            };
            if ok {
                std::mem::swap(&mut self.u[k], out);
                return check_finite(&self.u[k], &format!("BCD: U_{}", k + 1));
            }
        }
        for ((u, &m), &a) in self.u[k]
            .as_mut_slice()
            .iter_mut()
            .zip(self.scratch.as_slice())
            .zip(self.v[k].as_slice())
        {
            let (u0, m, a) = (u.to_f64(), m.to_f64(), a.to_f64());
            let c = (rho * m + alpha * u0) / (rho + alpha);
            let cand = prox.eval(a, c).map_err(err)?;
            if phi(cand, a, c) <= phi(u0, a, c) {
                *u = T::of(cand);
            }
        }
        check_finite(&self.u[k], &format!("BCD: U_{}", k + 1))
    }
}
