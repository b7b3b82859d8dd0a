//! Measurement (session 15): is a chord/tangent certificate of the TOP hidden block tight
//! enough to replace the Taylor-model enclosure there? Nothing here is wired into a
//! solver; derivation and results in docs/PERFORMANCE.md, "A chord/tangent certificate
//! for the top block (session 15, measurement)".
//!
//! For `phi(a) = F(W + a D)` (`D` = weight `V`, bias `β` of the top hidden block, zero
//! elsewhere), with `Z(a) = Z0 + a P`, `P = V A_in + β`, `ΔA(a) = relu(Z(a)) - relu(Z0)`
//! and `C = W2ᵀ g` (`g` = gradient of the data term in the logits at `a = 0`, the loss's
//! `1/N` included), the bound on `[0, ā]` is
//! `phi(0) + a (ℓ + l2 <W, V>) + a² (Q + (l2/2) ||V||²)` with
//! - `ℓ = Σ_{C>0} C ΔA(ā)/ā + Σ_{C<0} C d` (chord above, tangent `d = relu'(Z0+; P) P` below;
//!   `ΔA` is convex in `a` and 0 at 0);
//! - `Q = w/4 Σ_s (||W2 u_s|| + ||W2||₂ ||e_s||)²` ("basic": Böhning's `H <= I/2`, `w` the
//!   sample weight; `u_s` the exact slope of the entries that do not cross the kink on
//!   `[0, ā]`, `e_s` the crossing ones, each in `[min(0,P), max(0,P)]`), or
//! - `Q = w/2 Σ_s λ_s (||Π W2 u_s|| + ||Π W2||₂ ||e_s||)²` ("sharp": `Π = I - 11ᵀ/K`, since
//!   `H 1 = 0`; `λ_s = min(1/2, max_k 2 sup p_k(1 - p_k))` (Gershgorin) with the softmax's
//!   range over the box of logits `z0 + a W2 (u + e)`, `a ∈ [0, ā]`, `e` in its box).
//!
//! Exact arithmetic is assumed for this bound (no rounding slack); the Taylor enclosure
//! (`enclose_from_layer`, as block MM calls it: kept input, output and direction product
//! given) carries its full floating-point slack. Every bound is checked against the true
//! `phi` at its minimiser (`Sequential::objective` after `apply_step`) and at 50 points of
//! `[0, ā]` (forward from the block); a violation is printed loudly.
//!
//! Run: `nice -n 10 cargo run --release -p bench-suite --example cheap_certificate`
//! Options: `--problems digits-mlp,mnist-synth-small` `--sweeps 5,25` (block-mm sweeps of the
//! later states) `--reps 7` (timing samples per figure, each the mean over >= 20 ms of
//! calls; the median is printed).

mod common;

use autodiff::kernels::gemm_into;
use autodiff::{Tape, Transpose};
use majorize::enclosure::{
    EnclosureRequest, EnclosureWorkspace, FromLayer, QuadraticEnclosure, apply_step,
    enclose_from_layer,
};
use nalgebra::{DMatrix, DVector};
use nets::{Dataset, Loss, Sequential};
use solvers::mm::BlockMmConfig;
use solvers::{Budget, Driver, Solver};
use std::time::Instant;

const USAGE: &str = "usage: cheap_certificate [--problems digits-mlp,mnist-synth-small] \
[--sweeps 5,25] [--reps 7]";

/// The top hidden block at one state: what both bounds read.
struct Block {
    /// Index of the block's dense layer in `net.layers()`, and its dense index.
    layer: usize,
    dense: usize,
    w_off: usize,
    b_off: usize,
    a_in: DMatrix<f64>,
    z0: DMatrix<f64>,
    logits: DMatrix<f64>,
    w1: DMatrix<f64>,
    w2: DMatrix<f64>,
    b2: DVector<f64>,
    /// `W2ᵀ g`, `d x N`.
    c: DMatrix<f64>,
    f0: f64,
    /// Penalty of every weight but the block's.
    pen_rest: f64,
    base: Vec<f64>,
    grad: Vec<f64>,
    /// `||W2||₂`, `||Π W2||₂`, `|W2|`.
    sigma: f64,
    sigma_pi: f64,
    w2abs: DMatrix<f64>,
    /// `|W2[j, i] - W2[c, i]|` at `(c d + i) K + j` (class `c`, hidden unit `i`, class `j`).
    w2diff: Vec<f64>,
}

/// One direction on the block.
struct Dir {
    name: &'static str,
    flat: DVector<f64>,
    v: DMatrix<f64>,
    /// `V A_in + β`.
    p: DMatrix<f64>,
    /// `W2 (P ∘ [relu'(Z0+; P) = 1])` ([`Block::jvp`]).
    j: DMatrix<f64>,
    /// Natural scale of the step (grid centre).
    scale: f64,
    /// `l2 <W, V>` and `(l2/2) ||V||²` (the exact penalty polynomial).
    pen1: f64,
    pen2: f64,
}

/// Buffers of the chord/tangent bound (kept across calls): per sample `W2 u_s`, the
/// midpoint and radius of `W2 (u_s + e_s)`, and two rows of exponentials.
#[derive(Default)]
struct CheapWs {
    buf: Vec<f64>,
}

/// The chord/tangent bound's coefficients on `[0, ā]`: data slope `ℓ` and curvature `Q`.
#[derive(Clone, Copy, Default)]
struct Cheap {
    lin: f64,
    quad: f64,
}

/// `x` if `m`, else `+0` (a bit mask, no branch).
fn sel(m: bool, x: f64) -> f64 {
    f64::from_bits(x.to_bits() & u64::from(m).wrapping_neg())
}

fn spectral(m: &DMatrix<f64>) -> f64 {
    let g = m * m.transpose();
    g.symmetric_eigen().eigenvalues.max().max(0.0).sqrt()
}

fn sq(m: &DMatrix<f64>) -> f64 {
    m.iter().map(|x| x * x).sum()
}

/// Wall milliseconds per call of `f`: the median over `reps` samples, each the mean over
/// calls repeated for at least 20 ms (the thread's CPU clock ticks every 4 ms here, too
/// coarse for single calls).
fn median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let t0 = Instant::now();
            let mut calls = 0u32;
            while calls == 0 || t0.elapsed().as_secs_f64() < 0.02 {
                f();
                calls += 1;
            }
            t0.elapsed().as_secs_f64() * 1e3 / f64::from(calls)
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

impl Block {
    /// The top hidden block (dense layer `L - 2`, ReLU, then the output layer) of `net`.
    fn new(net: &Sequential<f64>, loss: &Loss, train: &Dataset<f64>) -> Block {
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
    fn dir(&self, name: &'static str, v: DMatrix<f64>, beta: DVector<f64>, l2: f64) -> Dir {
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
    fn block_grad(&self) -> (DMatrix<f64>, DVector<f64>) {
        let (dout, din) = self.w1.shape();
        let gw = DMatrix::from_fn(dout, din, |o, r| self.grad[self.w_off + r * dout + o]);
        let gb = DVector::from_fn(dout, |o, _| self.grad[self.b_off + o]);
        (gw, gb)
    }

    /// Block MM's certified-path direction, recomputed from its formula (`solvers::mm`):
    /// `D = -G (c M + l2 P + r I)^{-1}`, `M = Ab Abᵀ`, `c = w/2 (1.05 ||W2||₂)²`,
    /// `r = c tr(M)/dim` (certified_ridge 1). The solver uses a power-iteration estimate
    /// of `||W2||₂` (times the same 1.05); here it is the exact norm.
    fn bmm_dir(&self, loss: &Loss) -> Dir {
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
    fn grad_dir(&self, loss: &Loss) -> Dir {
        let (gw, gb) = self.block_grad();
        let mut d = self.dir("-gradient", -&gw, -&gb, loss.l2);
        let w = loss.sample_weight(self.a_in.ncols());
        let c = 0.5 * w * (1.05 * self.sigma).powi(2);
        d.scale = (sq(&gw) + gb.norm_squared()) / (c * sq(&d.p) + loss.l2 * sq(&gw));
        d
    }

    /// `phi(a)` by a forward pass from the block (`relu(Z0 + a P)`, output layer, loss,
    /// penalty summed entry by entry).
    fn phi_fast(&self, dir: &Dir, a: f64, loss: &Loss, train: &Dataset<f64>) -> f64 {
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

    /// `phi(a)` as the driver records it: `apply_step`, then `Sequential::objective`.
    fn phi_exact(&self, net: &mut Sequential<f64>, dir: &Dir, a: f64, prob: &Prob) -> f64 {
        apply_step(net, &self.base, std::slice::from_ref(&dir.flat), &[a]).expect("apply");
        net.objective(&prob.loss, prob.train.inputs(), prob.train.targets())
            .expect("objective")
    }

    /// `J = W2 (P ∘ [relu'(Z0+; P) = 1])`: the logits' right derivative along the
    /// direction (one `K x d x N` product per direction, like `P` itself).
    fn jvp(&self, p: &DMatrix<f64>) -> DMatrix<f64> {
        let masked = self.z0.zip_map(p, |z, p| {
            p * f64::from(u8::from((z > 0.0) | ((z == 0.0) & (p > 0.0))))
        });
        let mut j = DMatrix::zeros(self.w2.nrows(), p.ncols());
        gemm_into(
            &mut j,
            1.0,
            &self.w2,
            Transpose::No,
            &masked,
            Transpose::No,
            0.0,
            1,
        )
        .expect("gemm");
        j
    }

    /// The chord/tangent bound on `[0, abar]` (module doc); `sharp` selects the projected,
    /// per-sample-curvature variant. `W2 u_s` is `J_s` corrected at the crossing entries
    /// only (and so are the sharp variant's logit ranges), so one call is one pass over
    /// the `d x N` entries plus `O(K)` work per crossing entry and per sample.
    fn cheap(&self, dir: &Dir, abar: f64, w: f64, sharp: bool, ws: &mut CheapWs) -> Cheap {
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
        let inv = 1.0 / abar;
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
            // First pass, branch-free and vectorisable (4 partial sums): the linear term,
            // ||e_s||² and the number of crossings (the sign of `c` is a coin flip, so
            // every selection is arithmetic).
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
            lin += (acc[0] + acc[1]) + (acc[2] + acc[3]);
            let e2 = (e2a[0] + e2a[1]) + (e2a[2] + e2a[3]);
            // Second pass, only over a sample with crossings: move them from u to e.
            if (nc[0] + nc[1]) + (nc[2] + nc[3]) > 0.0 {
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

/// A problem: data, loss, and its networks at the two states.
struct Prob {
    name: String,
    train: Dataset<f64>,
    loss: Loss,
}

/// Minimiser of `f0 + a s + a² q` on `[0, abar]` (`q >= 0`) and its value minus `f0`.
fn argmin_quad(s: f64, q: f64, abar: f64) -> (f64, f64) {
    let a = if q > 0.0 {
        (-s / (2.0 * q)).clamp(0.0, abar)
    } else if s < 0.0 {
        abar
    } else {
        0.0
    };
    let dec = a * s + a * a * q;
    if dec < 0.0 { (a, dec) } else { (0.0, 0.0) }
}

/// Minimiser of the Taylor enclosure's upper bound and its certified decrease.
fn argmin_taylor(e: &QuadraticEnclosure<f64>, abar: f64) -> (f64, f64) {
    let (g, q) = (e.gradient[0], e.quad_upper[(0, 0)]);
    let mut cands = vec![abar];
    if q > 0.0 {
        cands.push((-g / (2.0 * q)).clamp(0.0, abar));
    }
    let mut best = (0.0, 0.0);
    for a in cands {
        if a > 0.0 {
            let dec = e.upper_bound(&[a]).expect("in the box") - e.value;
            if dec < best.1 {
                best = (a, dec);
            }
        }
    }
    best
}

/// Best certified decrease over the grid per bound: (Taylor, basic, sharp, true best).
#[derive(Default)]
struct Best {
    taylor: (f64, f64),
    basic: (f64, f64),
    sharp: (f64, f64),
    truth: (f64, f64),
    t_taylor: Vec<f64>,
    t_basic: Vec<f64>,
    t_sharp: Vec<f64>,
    /// Wall ms of the per-direction setup `J` ([`Block::jvp`]).
    t_setup: f64,
    /// Wall ms per call of each bound at its own best `abar`.
    t_at_best: [f64; 3],
}

fn keep(best: &mut (f64, f64), a: f64, dec: f64) {
    if dec < best.1 {
        *best = (a, dec);
    }
}

#[allow(clippy::too_many_arguments)]
fn run_dir(
    prob: &Prob,
    net: &Sequential<f64>,
    blk: &Block,
    dir: &Dir,
    state: &str,
    reps: usize,
    violations: &mut usize,
    worst: &mut [f64; 3],
) -> Best {
    let w = prob.loss.sample_weight(prob.train.len());
    let mut ews = EnclosureWorkspace::new();
    let mut cws = CheapWs::default();
    let mut scratch = net.clone();
    let mut best = Best {
        t_setup: median_ms(reps, || {
            std::hint::black_box(blk.jvp(&dir.p));
        }),
        ..Best::default()
    };
    for kexp in -8..=8 {
        let abar = dir.scale * 10f64.powf(f64::from(kexp) / 2.0);
        let dirs = std::slice::from_ref(&dir.flat);
        let amax = [abar];
        let req = EnclosureRequest {
            net,
            loss: &prob.loss,
            inputs: prob.train.inputs(),
            targets: prob.train.targets(),
            directions: dirs,
            alpha_max: &amax,
        };
        let from = FromLayer {
            layer: blk.layer,
            input: &blk.a_in,
            output: Some(&blk.z0),
            output_dir: Some(&dir.p),
        };
        let enc = |ws: &mut EnclosureWorkspace| {
            enclose_from_layer(&req, Some(blk.f0), &from, ws).expect("enclosure")
        };
        let e = enc(&mut ews);
        let t_t = median_ms(reps, || {
            std::hint::black_box(enc(&mut ews));
        });
        let cb = blk.cheap(dir, abar, w, false, &mut cws);
        let cs = blk.cheap(dir, abar, w, true, &mut cws);
        let t_b = median_ms(reps, || {
            std::hint::black_box(blk.cheap(dir, abar, w, false, &mut cws));
        });
        let t_s = median_ms(reps, || {
            std::hint::black_box(blk.cheap(dir, abar, w, true, &mut cws));
        });
        let slope = cb.lin + dir.pen1;
        let (qb, qs) = (cb.quad + dir.pen2, cs.quad + dir.pen2);
        let (at, dt) = argmin_taylor(&e, abar);
        let (ab, db) = argmin_quad(slope, qb, abar);
        let (as_, ds) = argmin_quad(slope, qs, abar);
        // Soundness: each bound against phi at its minimiser (the driver's record) and at
        // 50 points of [0, abar] (forward from the block).
        let ub_t = |a: f64| e.upper_bound(&[a]).expect("in the box");
        let ub_b = |a: f64| blk.f0 + a * slope + a * a * qb;
        let ub_s = |a: f64| blk.f0 + a * slope + a * a * qs;
        let mut check = |which: usize, a: f64, bound: f64, phi: f64| {
            let what = ["taylor", "basic", "sharp"][which];
            let margin = (bound - phi) / phi.abs().max(1.0);
            worst[which] = worst[which].min(margin);
            if margin < -1e-12 {
                *violations += 1;
                println!(
                    "!!! VIOLATION: {} {state} {} abar {abar:.3e}: {what} bound {bound:.15e} < phi({a:.6e}) = {phi:.15e}",
                    prob.name, dir.name
                );
            }
        };
        let mut true_at = [0.0; 3];
        for (i, (a, ub)) in [
            (at, &ub_t as &dyn Fn(f64) -> f64),
            (ab, &ub_b),
            (as_, &ub_s),
        ]
        .into_iter()
        .enumerate()
        {
            if a > 0.0 {
                let phi = blk.phi_exact(&mut scratch, dir, a, prob);
                check(i, a, ub(a), phi);
                true_at[i] = phi - blk.f0;
            }
        }
        for j in 1..=50 {
            let a = (abar * f64::from(j) / 50.0).min(abar);
            let phi = blk.phi_fast(dir, a, &prob.loss, &prob.train);
            check(0, a, ub_t(a), phi);
            check(1, a, ub_b(a), phi);
            check(2, a, ub_s(a), phi);
            keep(&mut best.truth, a, phi - blk.f0);
        }
        for (i, (b, a, dec, t)) in [
            (&mut best.taylor, at, dt, t_t),
            (&mut best.basic, ab, db, t_b),
            (&mut best.sharp, as_, ds, t_s),
        ]
        .into_iter()
        .enumerate()
        {
            if dec < b.1 {
                *b = (a, dec);
                best.t_at_best[i] = t;
            }
        }
        best.t_taylor.push(t_t);
        best.t_basic.push(t_b);
        best.t_sharp.push(t_s);
        let ratio = |x: f64| {
            if dt < 0.0 {
                format!("{:.2}", x / dt)
            } else {
                "-".into()
            }
        };
        println!(
            "| {} | {state} | {} | 1e{:+.1} | {abar:.3e} | {dt:.3e} | {db:.3e} | {ds:.3e} | {} | {} | {:.3e} | {:.3e} | {:.3e} | {:.3e} | {:.3e} | {:.3e} | {:.3e} | {:.3} | {:.3} | {:.3} |",
            prob.name,
            dir.name,
            f64::from(kexp) / 2.0,
            ratio(db),
            ratio(ds),
            true_at[0],
            true_at[2],
            e.gradient[0],
            slope,
            e.quad_upper[(0, 0)],
            qb,
            qs,
            t_t,
            t_b,
            t_s
        );
    }
    best
}

fn main() {
    let opts = common::Opts::parse(USAGE, &["--problems", "--sweeps", "--reps"], &[], false);
    let problems = opts
        .get("--problems")
        .unwrap_or("digits-mlp,mnist-synth-small".into());
    let sweeps: Vec<u64> = opts.list("--sweeps", "5,25");
    let reps: usize = opts.num("--reps", 7);
    println!("# chord/tangent certificate of the top hidden block vs the Taylor enclosure");
    println!(
        "\nColumns: certified decrease `min bound - phi(0)` of the Taylor enclosure, the basic \
         and the sharp chord/tangent bound; their ratios to Taylor's; the true decrease \
         phi(a) - phi(0) at Taylor's and at the sharp bound's minimiser; slopes (Taylor g, chord/tangent incl. penalty); curvatures \
         (Taylor Q_hi, basic, sharp); wall ms per call (median of {reps} samples).\n"
    );
    println!(
        "| problem | state | direction | abar/scale | abar | Taylor | basic | sharp | basic/T | sharp/T | true at a_T | true at a_S | g_T | slope_C | Q_T | Q_basic | Q_sharp | ms T | ms basic | ms sharp |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut summary = Vec::new();
    let (mut violations, mut worst) = (0usize, [f64::INFINITY; 3]);
    for pname in problems.split(',') {
        let (train, net0, loss) = common::problem(&opts, pname);
        let prob = Prob {
            name: pname.to_string(),
            train,
            loss,
        };
        // The states: the initial weights, then after each number of sweeps of block-mm
        // (defaults, seed 0, one thread), with block-mm's trust region there.
        let mut states = vec![("init".to_string(), net0.clone(), serde_json::Value::Null)];
        for &k in &sweeps {
            let mut p = common::make(&prob.train, &net0, loss, 1);
            let mut solver = BlockMmConfig::default().build::<f64>().expect("config");
            Driver::new(Budget::iterations(k))
                .seed(0)
                .run(&mut p, &mut solver)
                .expect("block-mm run");
            let trust = solver.save_state()["trust"].clone();
            states.push((format!("{k} sweeps"), p.net.clone(), trust));
        }
        for (state, net, trust) in states {
            let blk = Block::new(&net, &prob.loss, &prob.train);
            let mut tape = Tape::new();
            let mut g = vec![0.0; net.num_params()];
            let t_gd = median_ms(reps, || {
                nets::loss_and_grad(
                    &net,
                    &prob.loss,
                    prob.train.inputs(),
                    prob.train.targets(),
                    &mut tape,
                    &mut g,
                )
                .expect("gradient");
            });
            for dir in [blk.grad_dir(&prob.loss), blk.bmm_dir(&prob.loss)] {
                let b = run_dir(
                    &prob,
                    &net,
                    &blk,
                    &dir,
                    &state,
                    reps,
                    &mut violations,
                    &mut worst,
                );
                summary.push((
                    pname.to_string(),
                    state.clone(),
                    dir.name,
                    dir.scale,
                    b,
                    t_gd,
                    trust[blk.dense].as_f64(),
                ));
            }
        }
    }
    println!(
        "\n## Best over the abar grid (decrease, at a) and median over the grid of the wall ms per call\n"
    );
    println!(
        "| problem | state | direction | scale | Taylor | basic | sharp | basic/T | sharp/T | best sampled phi | ms T | ms basic | ms sharp | ms T / basic / sharp at own best | ms setup J | ms GD step | block-mm trust |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let med = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (pname, state, dname, scale, b, t_gd, trust) in &summary {
        let f = |x: (f64, f64)| format!("{:.3e} @ {:.2e}", x.1, x.0);
        let r = |x: f64| {
            if b.taylor.1 < 0.0 {
                format!("{:.2}", x / b.taylor.1)
            } else {
                "-".into()
            }
        };
        let trust = if *dname == "block-mm" {
            trust.map_or("-".into(), |t| format!("{t:.3}"))
        } else {
            "-".into()
        };
        println!(
            "| {pname} | {state} | {dname} | {scale:.3e} | {} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} / {:.3} / {:.3} | {:.3} | {t_gd:.3} | {trust} |",
            f(b.taylor),
            f(b.basic),
            f(b.sharp),
            r(b.basic.1),
            r(b.sharp.1),
            f(b.truth),
            med(&b.t_taylor),
            med(&b.t_basic),
            med(&b.t_sharp),
            b.t_at_best[0],
            b.t_at_best[1],
            b.t_at_best[2],
            b.t_setup,
        );
    }
    let [wt, wb, ws] = worst;
    if violations > 0 {
        println!(
            "\n!!! {violations} VIOLATIONS (worst relative margins Taylor {wt:.3e}, basic {wb:.3e}, sharp {ws:.3e}) !!!"
        );
    } else {
        println!(
            "\nNo violation (threshold -1e-12): worst relative margin (bound - phi)/max(1, |phi|): Taylor {wt:.3e}, basic {wb:.3e}, sharp {ws:.3e}"
        );
    }
}
