//! The chord/tangent bound of the top hidden block and what it reads (the maths in
//! `main.rs`'s doc and docs/PERFORMANCE.md, "A chord/tangent certificate for the top
//! block (session 15, measurement)").

use autodiff::kernels::gemm_into;
use autodiff::{Tape, Transpose};
use nalgebra::{DMatrix, DVector};
use nets::{Dataset, Loss, Sequential};

/// The top hidden block at one state: what both bounds read.
pub(crate) struct Block {
    /// Index of the block's dense layer in `net.layers()`, and its dense index.
    pub(crate) layer: usize,
    pub(crate) dense: usize,
    pub(crate) w_off: usize,
    pub(crate) b_off: usize,
    pub(crate) a_in: DMatrix<f64>,
    pub(crate) z0: DMatrix<f64>,
    pub(crate) logits: DMatrix<f64>,
    pub(crate) w1: DMatrix<f64>,
    pub(crate) w2: DMatrix<f64>,
    pub(crate) b2: DVector<f64>,
    /// `W2ᵀ g`, `d x N`.
    pub(crate) c: DMatrix<f64>,
    pub(crate) f0: f64,
    /// Penalty of every weight but the block's.
    pub(crate) pen_rest: f64,
    pub(crate) base: Vec<f64>,
    pub(crate) grad: Vec<f64>,
    /// `||W2||₂`, `||Π W2||₂`, `|W2|`.
    pub(crate) sigma: f64,
    pub(crate) sigma_pi: f64,
    pub(crate) w2abs: DMatrix<f64>,
    /// `|W2[j, i] - W2[c, i]|` at `(c d + i) K + j` (class `c`, hidden unit `i`, class `j`).
    pub(crate) w2diff: Vec<f64>,
}

/// One direction on the block.
pub(crate) struct Dir {
    pub(crate) name: &'static str,
    pub(crate) flat: DVector<f64>,
    pub(crate) v: DMatrix<f64>,
    /// `V A_in + β`.
    pub(crate) p: DMatrix<f64>,
    /// `W2 (P ∘ [relu'(Z0+; P) = 1])` ([`Block::jvp`]).
    pub(crate) j: DMatrix<f64>,
    /// Natural scale of the step (grid centre).
    pub(crate) scale: f64,
    /// `l2 <W, V>` and `(l2/2) ||V||²` (the exact penalty polynomial).
    pub(crate) pen1: f64,
    pub(crate) pen2: f64,
}

/// Buffers of the chord/tangent bound (kept across calls): per sample `W2 u_s`, the
/// midpoint and radius of `W2 (u_s + e_s)`, and two rows of exponentials.
#[derive(Default)]
pub(crate) struct CheapWs {
    pub(crate) buf: Vec<f64>,
}

/// The chord/tangent bound's coefficients on `[0, ā]`: data slope `ℓ` and curvature `Q`.
#[derive(Clone, Copy, Default)]
pub(crate) struct Cheap {
    pub(crate) lin: f64,
    pub(crate) quad: f64,
}

/// `x` if `m`, else `+0` (a bit mask, no branch).
pub(crate) fn sel(m: bool, x: f64) -> f64 {
    f64::from_bits(x.to_bits() & u64::from(m).wrapping_neg())
}

pub(crate) fn spectral(m: &DMatrix<f64>) -> f64 {
    let g = m * m.transpose();
    g.symmetric_eigen().eigenvalues.max().max(0.0).sqrt()
}

pub(crate) fn sq(m: &DMatrix<f64>) -> f64 {
    m.iter().map(|x| x * x).sum()
}

impl Block {
    /// The top hidden block (dense layer `L - 2`, ReLU, then the output layer) of `net`.
    pub(crate) fn new(net: &Sequential<f64>, loss: &Loss, train: &Dataset<f64>) -> Block {
        let view = net.mlp_view().expect("an MLP");
        let l = view.num_layers();
        assert!(l >= 2, "needs a hidden layer");
        let dense = l - 2;
        let layer = view.dense_positions[dense];
        let trace = net.forward_trace(train.inputs()).expect("forward");
        let d1 = net.dense(dense).expect("block");
        let d2 = net.dense(l - 1).expect("output layer");
        let w_off = net.param_span(layer, "weight").expect("weight").offset;
        let b_off = net.param_span(layer, "bias").expect("bias").offset;
        let logits = trace.z[l].clone();
        let mut g = DMatrix::zeros(0, 0);
        loss.value_and_output_grad(&logits, train.targets(), &mut g)
            .expect("loss");
        let c = d2.weight.transpose() * &g;
        let f0 = net
            .objective(loss, train.inputs(), train.targets())
            .expect("objective");
        let pen_rest = net.weight_penalty(loss.l2) - 0.5 * loss.l2 * sq(&d1.weight);
        let mut grad = vec![0.0; net.num_params()];
        nets::loss_and_grad(
            net,
            loss,
            train.inputs(),
            train.targets(),
            &mut Tape::new(),
            &mut grad,
        )
        .expect("gradient");
        let k = d2.weight.nrows();
        let pi = DMatrix::identity(k, k) - DMatrix::from_element(k, k, 1.0 / k as f64);
        Block {
            layer,
            dense,
            w_off,
            b_off,
            a_in: trace.a[dense].clone(),
            z0: trace.z[dense + 1].clone(),
            logits,
            w1: d1.weight.clone(),
            w2: d2.weight.clone(),
            b2: d2.bias.clone(),
            c,
            f0,
            pen_rest,
            base: net.flat_params(),
            grad,
            sigma: spectral(&d2.weight),
            sigma_pi: spectral(&(pi * &d2.weight)),
            w2abs: d2.weight.abs(),
            w2diff: (0..k * d2.weight.ncols() * k)
                .map(|x| {
                    let (j, ci) = (x % k, x / k);
                    let (c, i) = (ci / d2.weight.ncols(), ci % d2.weight.ncols());
                    (d2.weight[(j, i)] - d2.weight[(c, i)]).abs()
                })
                .collect(),
        }
    }

    /// A direction from the block's weight part `v` (`d x din`) and bias part `beta`.
    pub(crate) fn dir(
        &self,
        name: &'static str,
        v: DMatrix<f64>,
        beta: DVector<f64>,
        l2: f64,
    ) -> Dir {
        let mut flat = DVector::zeros(self.base.len());
        let (dout, din) = v.shape();
        for r in 0..din {
            for o in 0..dout {
                flat[self.w_off + r * dout + o] = v[(o, r)];
            }
        }
        for o in 0..dout {
            flat[self.b_off + o] = beta[o];
        }
        let mut p = &v * &self.a_in;
        for mut col in p.column_iter_mut() {
            col += &beta;
        }
        Dir {
            name,
            j: self.jvp(&p),
            pen1: l2 * self.w1.dot(&v),
            pen2: 0.5 * l2 * sq(&v),
            flat,
            v,
            p,
            scale: 1.0,
        }
    }

    /// The block's gradient `(G_W, G_b)` from the flat gradient.
    pub(crate) fn block_grad(&self) -> (DMatrix<f64>, DVector<f64>) {
        let (dout, din) = self.w1.shape();
        let gw = DMatrix::from_fn(dout, din, |o, r| self.grad[self.w_off + r * dout + o]);
        let gb = DVector::from_fn(dout, |o, _| self.grad[self.b_off + o]);
        (gw, gb)
    }

    /// Block MM's certified-path direction, recomputed from its formula (`solvers::mm`):
    /// `D = -G (c M + l2 P + r I)^{-1}`, `M = Ab Abᵀ`, `c = w/2 (1.05 ||W2||₂)²`,
    /// `r = c tr(M)/dim` (certified_ridge 1). The solver uses a power-iteration estimate
    /// of `||W2||₂` (times the same 1.05); here it is the exact norm.
    pub(crate) fn bmm_dir(&self, loss: &Loss) -> Dir {
        let (dout, din) = self.w1.shape();
        let n = self.a_in.ncols();
        let w = loss.sample_weight(n);
        let ab = DMatrix::from_fn(
            din + 1,
            n,
            |r, s| {
                if r < din { self.a_in[(r, s)] } else { 1.0 }
            },
        );
        let m = &ab * ab.transpose();
        let c = 0.5 * w * (1.05 * self.sigma).powi(2);
        let trace_m = m.trace() / (din + 1) as f64;
        let mut h = m * c;
        for r in 0..=din {
            h[(r, r)] += c * trace_m + if r < din { loss.l2 } else { 0.0 };
        }
        let (gw, gb) = self.block_grad();
        let mut gt = DMatrix::zeros(din + 1, dout);
        for o in 0..dout {
            for r in 0..din {
                gt[(r, o)] = gw[(o, r)];
            }
            gt[(din, o)] = gb[o];
        }
        let sol = h.cholesky().expect("positive definite").solve(&gt);
        let v = DMatrix::from_fn(dout, din, |o, r| -sol[(r, o)]);
        let beta = DVector::from_fn(dout, |o, _| -sol[(din, o)]);
        self.dir("block-mm", v, beta, loss.l2)
    }

    /// The negative block gradient; scale = the minimiser along it of block MM's
    /// structural quadratic model, `||G||² / (c ||P||² + l2 ||G_W||²)`.
    pub(crate) fn grad_dir(&self, loss: &Loss) -> Dir {
        let (gw, gb) = self.block_grad();
        let mut d = self.dir("-gradient", -&gw, -&gb, loss.l2);
        let w = loss.sample_weight(self.a_in.ncols());
        let c = 0.5 * w * (1.05 * self.sigma).powi(2);
        d.scale = (sq(&gw) + gb.norm_squared()) / (c * sq(&d.p) + loss.l2 * sq(&gw));
        d
    }

    /// `phi(a)` by a forward pass from the block (`relu(Z0 + a P)`, output layer, loss,
    /// penalty summed entry by entry).
    pub(crate) fn phi_fast(&self, dir: &Dir, a: f64, loss: &Loss, train: &Dataset<f64>) -> f64 {
        let h = (&self.z0 + &dir.p * a).map(|x| x.max(0.0));
        let mut out = &self.w2 * h;
        for mut col in out.column_iter_mut() {
            col += &self.b2;
        }
        let data = loss.value(&out, train.targets()).expect("loss");
        let pw: f64 = self
            .w1
            .iter()
            .zip(dir.v.iter())
            .map(|(w, v)| (w + a * v) * (w + a * v))
            .sum();
        data + 0.5 * loss.l2 * pw + self.pen_rest
    }

    /// `J = W2 (P ∘ [relu'(Z0+; P) = 1])`: the logits' right derivative along the
    /// direction (one `K x d x N` product per direction, like `P` itself).
    pub(crate) fn jvp(&self, p: &DMatrix<f64>) -> DMatrix<f64> {
        let (mut masked, mut j) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
        self.jvp_into(p, &mut masked, &mut j);
        j
    }

    /// [`Block::jvp`] into kept buffers (`masked`: `d x N`, `j`: `K x N`; no allocation
    /// once they have their shapes, as a solver would keep them).
    pub(crate) fn jvp_into(
        &self,
        p: &DMatrix<f64>,
        masked: &mut DMatrix<f64>,
        j: &mut DMatrix<f64>,
    ) {
        if masked.shape() != p.shape() {
            *masked = DMatrix::zeros(p.nrows(), p.ncols());
        }
        if j.shape() != (self.w2.nrows(), p.ncols()) {
            *j = DMatrix::zeros(self.w2.nrows(), p.ncols());
        }
        let (zs, ps) = (self.z0.as_slice(), p.as_slice());
        for ((m, &z), &p) in masked.as_mut_slice().iter_mut().zip(zs).zip(ps) {
            *m = sel(z > 0.0, p) + sel(z == 0.0, p.max(0.0));
        }
        gemm_into(
            j,
            1.0,
            &self.w2,
            Transpose::No,
            masked,
            Transpose::No,
            0.0,
            1,
        )
        .expect("gemm");
    }

    /// The chord/tangent bound on `[0, abar]` (module doc); `sharp` selects the projected,
    /// per-sample-curvature variant. `W2 u_s` is `J_s` corrected at the crossing entries
    /// only (and so are the sharp variant's logit ranges), so one call is one pass over
    /// the `d x N` entries plus `O(K)` work per crossing entry and per sample.
    pub(crate) fn cheap(
        &self,
        dir: &Dir,
        abar: f64,
        w: f64,
        sharp: bool,
        ws: &mut CheapWs,
    ) -> Cheap {
        let (d, n) = self.z0.shape();
        let k = self.w2.nrows();
        ws.buf.resize(8 * k, 0.0);
        let (wu, rest) = ws.buf.split_at_mut(k);
        let (wm, rest) = rest.split_at_mut(k);
        let (wr, rest) = rest.split_at_mut(k);
        let (rd, rest) = rest.split_at_mut(k);
        let (lo_x, rest) = rest.split_at_mut(k);
        let (hi_x, rest) = rest.split_at_mut(k);
        let (pb, pl) = rest.split_at_mut(k);
        let (z0, pp, cc) = (self.z0.as_slice(), dir.p.as_slice(), self.c.as_slice());
        let (w2, w2a, jj) = (self.w2.as_slice(), self.w2abs.as_slice(), dir.j.as_slice());
        let (mut lin, mut q) = (0.0, 0.0);
        for s in 0..n {
            let col = s * d..(s + 1) * d;
            let (z, p, c) = (&z0[col.clone()], &pp[col.clone()], &cc[col]);
            wu.copy_from_slice(&jj[s * k..(s + 1) * k]);
            let z0l = &self.logits.as_slice()[s * k..(s + 1) * k];
            // The class with the largest logit at a = 0 (the softmax bound's centre).
            let cls = (0..k).fold(0, |b, i| if z0l[i] > z0l[b] { i } else { b });
            if sharp {
                wm.copy_from_slice(wu);
                wr.fill(0.0);
                rd.fill(0.0);
            }
            let (l, e2, ncross) = first_pass(z, p, c, abar);
            lin += l;

            // Second pass, only over a sample with crossings: move them from u to e.
            if ncross > 0.0 {
                for j in 0..d {
                    let (z, p) = (z[j], p[j]);
                    let z1 = z + abar * p;
                    if !(((z > 0.0) & (z1 < 0.0)) | ((z < 0.0) & (z1 > 0.0))) {
                        continue;
                    }
                    // Crossing: J counted it with its right slope (p if z > 0, else 0).
                    let slope = if z > 0.0 { p } else { 0.0 };
                    let wj = &w2[j * k..(j + 1) * k];
                    for i in 0..k {
                        wu[i] -= wj[i] * slope;
                    }
                    if sharp {
                        let (dm, r) = (0.5 * p - slope, 0.5 * p.abs());
                        let wja = &w2a[j * k..(j + 1) * k];
                        let wjd = &self.w2diff[(cls * d + j) * k..(cls * d + j + 1) * k];
                        for i in 0..k {
                            wm[i] += wj[i] * dm;
                            wr[i] += wja[i] * r;
                            rd[i] += wjd[i] * r;
                        }
                    }
                }
            }
            let e = e2.sqrt();
            if !sharp {
                let nu = wu.iter().map(|x| x * x).sum::<f64>().sqrt();
                q += (nu + self.sigma * e).powi(2);
                continue;
            }
            let mean = wu.iter().sum::<f64>() / k as f64;
            let npi = wu.iter().map(|x| (x - mean).powi(2)).sum::<f64>().sqrt();
            // The logits' box over a in [0, abar] and e in its box, then the softmax's
            // range per class and Gershgorin's bound 2 p_k (1 - p_k) on the Hessian.
            let mut mx = f64::NEG_INFINITY;
            for i in 0..k {
                mx = mx.max(z0l[i] + (abar * (wm[i] + wr[i])).max(0.0));
            }
            // Exponents relative to the largest upper end (all <= 0).
            let mut tiny = false;
            for i in 0..k {
                lo_x[i] = z0l[i] + (abar * (wm[i] - wr[i])).min(0.0) - mx;
                hi_x[i] = z0l[i] + (abar * (wm[i] + wr[i])).max(0.0) - mx;
                tiny |= lo_x[i] < -700.0;
            }
            if tiny {
                // A wide box (exponentials would underflow and give 0/0): the ratios
                // from differences, 1 / (1 + Σ_{i≠j} exp(lo_i - hi_j)), O(K²) exps.
                for j in 0..k {
                    let (mut ol, mut oh) = (0.0, 0.0);
                    for i in (0..k).filter(|i| *i != j) {
                        ol += (lo_x[i] - hi_x[j]).exp();
                        oh += (hi_x[i] - lo_x[j]).exp();
                    }
                    (pb[j], pl[j]) = (1.0 / (1.0 + ol), 1.0 / (1.0 + oh));
                }
            } else {
                // Other classes' sums as prefix + suffix sums (no cancellation).
                let (mut sl, mut sh) = (0.0, 0.0);
                for j in 0..k {
                    (pb[j], pl[j]) = (sl, sh);
                    (lo_x[j], hi_x[j]) = (lo_x[j].exp(), hi_x[j].exp());
                    sl += lo_x[j];
                    sh += hi_x[j];
                }
                let (mut sl, mut sh) = (0.0, 0.0);
                for j in (0..k).rev() {
                    let (olo, ohi) = (pb[j] + sl, pl[j] + sh);
                    sl += lo_x[j];
                    sh += hi_x[j];
                    pb[j] = hi_x[j] / (hi_x[j] + olo);
                    pl[j] = lo_x[j] / (lo_x[j] + ohi);
                }
            }
            let (mut t, mut soft): (f64, f64) = (0.0, 0.0);
            for j in 0..k {
                let (pbar, plo) = (pb[j], pl[j]);
                // Var_p(δ) <= Σ_{j≠c} p_j (δ_j - δ_c)², each difference over its box.
                if j != cls {
                    soft += pbar * ((wm[j] - wm[cls]).abs() + rd[j]).powi(2);
                }
                // sup of p (1 - p) over [plo, pbar].
                t = t.max(if plo <= 0.5 && pbar >= 0.5 {
                    0.25
                } else if pbar < 0.5 {
                    pbar * (1.0 - pbar)
                } else {
                    plo * (1.0 - plo)
                });
            }
            let lambda = (2.0 * t).min(0.5);
            q += (lambda * (npi + self.sigma_pi * e).powi(2)).min(soft);
        }
        let quad = if sharp { 0.5 * w * q } else { 0.25 * w * q };
        Cheap { lin, quad }
    }
}

/// First pass over one sample's `d` entries, branch-free and vectorisable (4 partial
/// sums; the sign of `c` is a coin flip, so every selection is arithmetic): the linear
/// term `Σ_j C_j (chord or tangent slope)`, `||e_s||²` and the number of crossings.
#[inline(always)]
fn first_pass_body(z: &[f64], p: &[f64], c: &[f64], abar: f64) -> (f64, f64, f64) {
    let d = z.len();
    let inv = 1.0 / abar;
    let (mut acc, mut e2a, mut nc) = ([0.0f64; 4], [0.0f64; 4], [0.0f64; 4]);
    let lanes = |z: f64, p: f64, c: f64| {
        let z1 = z + abar * p;
        let chord = (z1.max(0.0) - z.max(0.0)) * inv;
        // The right derivative of relu(z + a p) at a = 0 (selections as bit masks,
        // so that the loop vectorises without branches).
        let slope = sel(z > 0.0, p) + sel(z == 0.0, p.max(0.0));
        let cross = sel(z * z1 < 0.0, 1.0);
        (
            c.max(0.0) * chord + c.min(0.0) * slope,
            cross * p * p,
            cross,
        )
    };
    let (z4, p4, c4) = (z.chunks_exact(4), p.chunks_exact(4), c.chunks_exact(4));
    let tail = z4.remainder().len();
    for ((zc, pc), cc) in z4.zip(p4).zip(c4) {
        for l in 0..4 {
            let (a, e, x) = lanes(zc[l], pc[l], cc[l]);
            acc[l] += a;
            e2a[l] += e;
            nc[l] += x;
        }
    }
    for j in d - tail..d {
        let (a, e, x) = lanes(z[j], p[j], c[j]);
        acc[0] += a;
        e2a[0] += e;
        nc[0] += x;
    }
    (
        (acc[0] + acc[1]) + (acc[2] + acc[3]),
        (e2a[0] + e2a[1]) + (e2a[2] + e2a[3]),
        (nc[0] + nc[1]) + (nc[2] + nc[3]),
    )
}

/// [`first_pass_body`] compiled for AVX2 (the enclosure's ReLU pass is dispatched the same
/// way, so the two are timed on equal terms).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn first_pass_avx2(z: &[f64], p: &[f64], c: &[f64], abar: f64) -> (f64, f64, f64) {
    first_pass_body(z, p, c, abar)
}

/// [`first_pass_body`], on AVX2 when the CPU has it (same operations, same bits).
fn first_pass(z: &[f64], p: &[f64], c: &[f64], abar: f64) -> (f64, f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked on the line above).
        return unsafe { first_pass_avx2(z, p, c, abar) };
    }
    first_pass_body(z, p, c, abar)
}
