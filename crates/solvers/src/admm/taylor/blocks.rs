//! The block steps of one Taylor ADMM sweep (module doc of [`super`]): `W_l, b_l` by
//! least squares, `A_l` by the ridge system, `Z_l` by the entrywise prox, `Z_L` by the
//! output prox; each an exact minimiser of `J` with Lambda fixed.

use super::*;

impl<T: Real> TaylorAdmm<T> {
    /// Runs one block step with Lambda fixed; returns the inner solves it made. A data
    /// set other than the prepared one is prepared first (`data::sync_data`).
    pub fn run_block(
        &mut self,
        block: TaylorBlock,
        train: &Dataset<T>,
        threads: usize,
    ) -> Result<u64, SolverError> {
        self.sync_data(train)?;
        let (gamma, beta) = (self.config.gamma, self.config.beta);
        let full = self.config.full_lagrangian;
        let x = train.inputs();
        let vars = self
            .vars
            .as_mut()
            .ok_or_else(|| SolverError::Problem("TaylorAdmm: not initialised".into()))?;
        let l_count = vars.layers();
        let check = |l: usize| {
            if l < l_count {
                Ok(())
            } else {
                Err(SolverError::Problem(format!(
                    "TaylorAdmm: block of layer {} but the net has {l_count}",
                    l + 1
                )))
            }
        };
        match block {
            TaylorBlock::Weights(l) => {
                check(l)?;
                let input = if l == 0 { x } else { &vars.a[l - 1] };
                let target = if full && l + 1 == l_count {
                    shifted(&vars.z[l], &self.lambda, beta, &mut self.scratch2);
                    &self.scratch2
                } else {
                    &vars.z[l]
                };
                let l2w = self.l2 / (2.0 * self.sample_weight * beta);
                // Distributed runs (the sums are added over ranks) take the general path
                // for layer 1 too: its cache holds one rank's X X^T.
                if l > 0 || self.dist.is_some() {
                    #[cfg(test)]
                    tally::note(&tally::SAMPLE_SUMS);
                    sample_sums(input, target, threads, &mut self.sums_work, &mut self.sums)?;
                    let mut n = x.ncols();
                    if let Some((comm, global_n)) = &self.dist {
                        self.sums.allreduce(&**comm, &mut self.dist_scratch)?;
                        n = *global_n;
                    }
                    return least_squares_w(
                        &self.sums,
                        n,
                        self.config.ridge,
                        l2w,
                        self.config.biases,
                        &mut vars.w[l],
                        &mut vars.b[l],
                        None,
                    );
                }
                // Layer 1: X X^T, X 1 and the normal-equation inverse are reused.
                let hit = self.input_key.hit(input, threads);
                // `Z_1 X^T` and `Z_1 1` are formed over every sample even on a hit.
                #[cfg(test)]
                tally::note(&tally::SAMPLE_SUMS);
                let r = sample_sums_keep(
                    input,
                    target,
                    threads,
                    &mut self.sums_work,
                    &mut self.sums0,
                    hit,
                )
                .and_then(|()| {
                    least_squares_w(
                        &self.sums0,
                        x.ncols(),
                        self.config.ridge,
                        l2w,
                        self.config.biases,
                        &mut vars.w[l],
                        &mut vars.b[l],
                        Some((&mut self.ls_inverse, hit)),
                    )
                });
                if r.is_err() {
                    self.input_key.clear();
                }
                r
            }
            TaylorBlock::Activations(l) => {
                if l + 1 >= l_count {
                    return Err(SolverError::Problem(format!(
                        "TaylorAdmm: layer {} has no activation block",
                        l + 1
                    )));
                }
                let w_next = &vars.w[l + 1];
                let (q, d) = w_next.shape();
                let z_next = if full && l + 2 == l_count {
                    shifted(&vars.z[l + 1], &self.lambda, beta, &mut self.scratch2);
                    &self.scratch2
                } else {
                    &vars.z[l + 1]
                };
                let wf = w_next.map(|v| v.to_f64());
                if 2 * q < d {
                    // Narrow layer above (issue #14): A = H + beta W^T K^{-1} (Z - b 1^T - W H),
                    // H = h(Z_l), K = beta W W^T + gamma I_q: the same minimiser as below
                    // (push-through identity M^{-1} W^T = W^T K^{-1}) at (2 d q + q^2) N
                    // multiply-adds instead of (d^2 + d q) N.
                    let mut k = &wf * wf.transpose() * beta;
                    for i in 0..q {
                        k[(i, i)] += gamma;
                    }
                    let (inv, tries) = spd_inverse_ridged(&k, "TaylorAdmm A-step")?;
                    let kb = (inv * beta).map(T::of);
                    let a = &mut vars.a[l];
                    vars.h[l].apply_matrix(&vars.z[l], a);
                    let r = &mut self.scratch;
                    crate::linalg::fit(r, q, z_next.ncols());
                    r.copy_from(z_next);
                    for mut col in r.column_iter_mut() {
                        col -= &vars.b[l + 1];
                    }
                    gemm(
                        r,
                        -1.0,
                        w_next,
                        Transpose::No,
                        a,
                        Transpose::No,
                        1.0,
                        threads,
                    )?;
                    let t = &mut self.scratch3;
                    ensure_shape(t, q, r.ncols());
                    #[cfg(test)]
                    tally::note(&tally::TRANSPOSED);
                    gemm(t, 1.0, &kb, Transpose::No, r, Transpose::No, 0.0, threads)?;
                    gemm(
                        a,
                        1.0,
                        w_next,
                        Transpose::Yes,
                        t,
                        Transpose::No,
                        1.0,
                        threads,
                    )?;
                    return Ok(tries);
                }
                // M = beta W^T W + gamma I (f64), its inverse, P = beta M^-1 W^T.
                let mut m = wf.transpose() * &wf * beta;
                for i in 0..d {
                    m[(i, i)] += gamma;
                }
                let (inv, tries) = spd_inverse_ridged(&m, "TaylorAdmm A-step")?;
                let p = (&inv * wf.transpose() * beta).map(T::of);
                let q: DVector<T> = &p * &vars.b[l + 1];
                let g_inv = (&inv * gamma).map(T::of);
                ensure_shape(&mut self.scratch, d, x.ncols());
                vars.h[l].apply_matrix(&vars.z[l], &mut self.scratch);
                let a = &mut vars.a[l];
                #[cfg(test)]
                tally::note(&tally::TRANSPOSED);
                gemm(
                    a,
                    1.0,
                    &p,
                    Transpose::No,
                    z_next,
                    Transpose::No,
                    0.0,
                    threads,
                )?;
                gemm(
                    a,
                    1.0,
                    &g_inv,
                    Transpose::No,
                    &self.scratch,
                    Transpose::No,
                    1.0,
                    threads,
                )?;
                for mut col in a.column_iter_mut() {
                    col -= &q;
                }
                Ok(tries)
            }
            TaylorBlock::PreActivations(l) => {
                check(l)?;
                let input = if l == 0 { x } else { &vars.a[l - 1] };
                #[cfg(test)]
                tally::note(&tally::LAYER_MAPS);
                affine(&vars.w[l], &vars.b[l], input, threads, &mut self.scratch)?;
                if self.keep_products && l < self.products.len() {
                    copy_into(&mut self.products[l], &self.scratch);
                }
                require_finite(&self.scratch, || {
                    format!(
                        "TaylorAdmm: W_{0} A_{1} + b_{0} before the Z-step",
                        l + 1,
                        l
                    )
                })?;
                if l + 1 < l_count {
                    nets::prox::prox_weighted_matrix(
                        &vars.h[l],
                        &vars.a[l],
                        &self.scratch,
                        gamma,
                        beta,
                        &mut vars.z[l],
                    )
                    .map_err(|e| SolverError::Problem(format!("TaylorAdmm Z-step: {e}")))?;
                } else {
                    let out = self
                        .output
                        .as_ref()
                        .ok_or_else(|| SolverError::Problem("TaylorAdmm: not prepared".into()))?;
                    out.taylor_step(
                        &mut self.scratch,
                        &self.lambda,
                        beta,
                        train.targets(),
                        &mut vars.z[l],
                    )?;
                }
                Ok(1)
            }
        }
    }
}
