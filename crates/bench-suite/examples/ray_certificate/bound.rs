//! The ray (forward linear band) bound of one hidden block and what it reads (the maths in
//! `main.rs`'s doc and docs/PERFORMANCE.md, "A chord/tangent certificate for lower blocks
//! (session 16, measurement)").

use autodiff::kernels::gemm_into;
use autodiff::{Tape, Transpose};
use nalgebra::{DMatrix, DVector};
use nets::{Activation, Dataset, Loss, LossKind, Sequential};

/// One hidden block `l` at one state: what both bounds read.
pub(crate) struct Block {
    /// Position of the block's dense layer in `net.layers()`, and its dense index `l`.
    pub(crate) layer: usize,
    pub(crate) dense: usize,
    pub(crate) w_off: usize,
    pub(crate) b_off: usize,
    /// `A_l`, the block's input.
    pub(crate) a_in: DMatrix<f64>,
    /// `Z_{l+1}, ..., Z_L` (index 0 is the block's output, the last the logits).
    pub(crate) zs: Vec<DMatrix<f64>>,
    /// Weights, biases and `|W|` of the dense layers above, `l+1, ..., L-1`.
    pub(crate) ws: Vec<DMatrix<f64>>,
    pub(crate) bs: Vec<DVector<f64>>,
    pub(crate) wabs: Vec<DMatrix<f64>>,
    /// `||W_k||₂` of the layers above.
    pub(crate) sigmas: Vec<f64>,
    /// The block's weight.
    pub(crate) w1: DMatrix<f64>,
    /// Gradient of the data term in the logits at `a = 0` (`K x N`, `1/N` included), and
    /// `C = W_{L-1}ᵀ g` (`d_{L-1} x N`, block MM's backward pass forms it anyway).
    pub(crate) g: DMatrix<f64>,
    pub(crate) c: DMatrix<f64>,
    pub(crate) f0: f64,
    /// Penalty of every weight but the block's.
    pub(crate) pen_rest: f64,
    pub(crate) base: Vec<f64>,
    pub(crate) grad: Vec<f64>,
}

/// One direction on the block.
pub(crate) struct Dir {
    pub(crate) name: &'static str,
    pub(crate) flat: DVector<f64>,
    pub(crate) v: DMatrix<f64>,
    /// `V A_l + β`.
    pub(crate) p: DMatrix<f64>,
    /// Natural scale of the step (grid centre).
    pub(crate) scale: f64,
    /// `l2 <W, V>` and `(l2/2) ||V||²` (the exact penalty polynomial).
    pub(crate) pen1: f64,
    pub(crate) pen2: f64,
}

/// Buffers of the ray bound (kept across calls, shaped on the first): per layer above the
/// band's centre `c` and radius `r` of the slopes after the ReLU, and the next
/// pre-activation's centre `m` and radius `rad` of the slopes; `k`-sized rows.
#[derive(Default)]
pub(crate) struct RayWs {
    c: Vec<DMatrix<f64>>,
    r: Vec<DMatrix<f64>>,
    m: Vec<DMatrix<f64>>,
    rad: Vec<DMatrix<f64>>,
    zero: DMatrix<f64>,
    buf: Vec<f64>,
}

/// The ray bound's coefficients on `[0, ā]` and what explains them.
#[derive(Clone, Copy, Default)]
pub(crate) struct Ray {
    /// Data slope `ℓ` (linear term at the last hidden layer, through `C`).
    pub(crate) lin: f64,
    /// The same term from the logits' box (`<g, m> + <|g|, rad>`; `>= lin`, diagnostic).
    pub(crate) lin_box: f64,
    /// Data curvature `Q` (coefficient of `a²`).
    pub(crate) quad: f64,
    /// Fraction of the entries above the block whose band crosses the kink.
    pub(crate) kinks: f64,
    /// `Σ rad / Σ |m|` at the logits (the band's relative width).
    pub(crate) widen: f64,
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

fn gemm(out: &mut DMatrix<f64>, a: &DMatrix<f64>, b: &DMatrix<f64>) {
    gemm_into(out, 1.0, a, Transpose::No, b, Transpose::No, 0.0, 1).expect("gemm");
}

impl Block {
    /// Hidden block `l` of a ReLU MLP with the softmax cross-entropy.
    pub(crate) fn new(net: &Sequential<f64>, loss: &Loss, train: &Dataset<f64>, l: usize) -> Block {
        let view = net.mlp_view().expect("an MLP");
        let nl = view.num_layers();
        assert!(l + 1 < nl, "block {l} is not a hidden block");
        assert!(
            view.activations.iter().all(|a| *a == Activation::Relu),
            "ReLU hidden layers only"
        );
        assert!(
            loss.kind == LossKind::SoftmaxCrossEntropy,
            "softmax cross-entropy only"
        );
        let layer = view.dense_positions[l];
        let trace = net.forward_trace(train.inputs()).expect("forward");
        let d1 = net.dense(l).expect("block");
        let w_off = net.param_span(layer, "weight").expect("weight").offset;
        let b_off = net.param_span(layer, "bias").expect("bias").offset;
        let logits = trace.z[nl].clone();
        let mut g = DMatrix::zeros(0, 0);
        loss.value_and_output_grad(&logits, train.targets(), &mut g)
            .expect("loss");
        let top = net.dense(nl - 1).expect("output layer");
        let c = top.weight.transpose() * &g;
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
        let above: Vec<_> = (l + 1..nl).map(|k| net.dense(k).expect("layer")).collect();
        Block {
            layer,
            dense: l,
            w_off,
            b_off,
            a_in: trace.a[l].clone(),
            zs: trace.z[l + 1..].to_vec(),
            ws: above.iter().map(|d| d.weight.clone()).collect(),
            bs: above.iter().map(|d| d.bias.clone()).collect(),
            wabs: above.iter().map(|d| d.weight.abs()).collect(),
            sigmas: above.iter().map(|d| spectral(&d.weight)).collect(),
            w1: d1.weight.clone(),
            g,
            c,
            f0,
            pen_rest,
            base: net.flat_params(),
            grad,
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

    /// Block MM's structural curvature of the block, `w/2 Π_{k>l} (1.05 ||W_k||₂)²`
    /// (`solvers::mm::block`, ReLU Lipschitz 1, `initial_scale` 1; exact norms here, the
    /// solver's are power-iteration estimates).
    pub(crate) fn structural(&self, loss: &Loss) -> f64 {
        let w = loss.sample_weight(self.a_in.ncols());
        self.sigmas
            .iter()
            .fold(0.5 * w, |s, sig| s * (1.05 * sig).powi(2))
    }

    /// Block MM's certified-path direction, recomputed from its formula (`solvers::mm`):
    /// `D = -G (c M + l2 P + r I)^{-1}`, `M = Ab Abᵀ`, `c` = [`Block::structural`],
    /// `r = c tr(M)/dim` (certified_ridge 1).
    pub(crate) fn bmm_dir(&self, loss: &Loss) -> Dir {
        let (dout, din) = self.w1.shape();
        let n = self.a_in.ncols();
        let ab = DMatrix::from_fn(
            din + 1,
            n,
            |r, s| {
                if r < din { self.a_in[(r, s)] } else { 1.0 }
            },
        );
        let m = &ab * ab.transpose();
        let c = self.structural(loss);
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
        let c = self.structural(loss);
        d.scale = (sq(&gw) + gb.norm_squared()) / (c * sq(&d.p) + loss.l2 * sq(&gw));
        d
    }

    /// `phi(a)` by a forward pass from the block (`relu(Z0 + a P)`, the layers above, the
    /// loss, the penalty summed entry by entry).
    pub(crate) fn phi_fast(&self, dir: &Dir, a: f64, loss: &Loss, train: &Dataset<f64>) -> f64 {
        let mut h = (&self.zs[0] + &dir.p * a).map(|x| x.max(0.0));
        let last = self.ws.len() - 1;
        for (k, (w, b)) in self.ws.iter().zip(&self.bs).enumerate() {
            let mut z = w * &h;
            for mut col in z.column_iter_mut() {
                col += b;
            }
            h = if k < last { z.map(|x| x.max(0.0)) } else { z };
        }
        let data = loss.value(&h, train.targets()).expect("loss");
        let pw: f64 = self
            .w1
            .iter()
            .zip(dir.v.iter())
            .map(|(w, v)| (w + a * v) * (w + a * v))
            .sum();
        data + 0.5 * loss.l2 * pw + self.pen_rest
    }

    /// One call's products in units of one `d x d x N` GEMM (`d` = `unit`): two per layer
    /// above (`W c` and `|W| r`).
    pub(crate) fn gemm_units(&self, unit: usize) -> f64 {
        self.ws
            .iter()
            .map(|w| 2.0 * (w.nrows() * w.ncols()) as f64)
            .sum::<f64>()
            / (unit * unit) as f64
    }

    /// The ray bound on `[0, abar]` (module doc of `main.rs`): bands `h0 + a [sL, sU]`
    /// pushed through the layers above, the linear term through `C` at the last hidden
    /// layer, the curvature from the logits' band (sharp per-sample softmax bound).
    pub(crate) fn ray(&self, dir: &Dir, abar: f64, w: f64, ws: &mut RayWs) -> Ray {
        let nl = self.ws.len();
        let n = self.a_in.ncols();
        if ws.c.len() != nl {
            ws.c = self.zs[..nl].iter().map(|z| z.clone() * 0.0).collect();
            ws.r = ws.c.clone();
            ws.m = self.zs[1..].iter().map(|z| z.clone() * 0.0).collect();
            ws.rad = ws.m.clone();
            ws.zero = self.zs[0].clone() * 0.0;
        }
        let inv = 1.0 / abar;
        let (mut lin, mut kinks, mut total) = (0.0, 0.0, 0.0);
        for t in 0..nl {
            let z0 = self.zs[t].as_slice();
            let (m, rad) = if t == 0 {
                (dir.p.as_slice(), ws.zero.as_slice())
            } else {
                (ws.m[t - 1].as_slice(), ws.rad[t - 1].as_slice())
            };
            let (cs, rs) = (ws.c[t].as_mut_slice(), ws.r[t].as_mut_slice());
            let cc = self.c.as_slice();
            let top = t + 1 == nl;
            for j in 0..z0.len() {
                let (z, lo, hi) = (z0[j], m[j] - rad[j], m[j] + rad[j]);
                // Upper: chord of the convex relu(z + a hi) over [0, ā]; lower: its tangent
                // at 0 of relu(z + a lo) (right derivative).
                let su = ((z + abar * hi).max(0.0) - z.max(0.0)) * inv;
                let sl = sel(z > 0.0, lo) + sel(z == 0.0, lo.max(0.0));
                cs[j] = 0.5 * (su + sl);
                rs[j] = 0.5 * (su - sl);
                let stays_up = (z >= 0.0) & (z + abar * lo >= 0.0);
                let stays_down = (z <= 0.0) & (z + abar * hi <= 0.0);
                kinks += sel(!(stays_up | stays_down), 1.0);
                if top {
                    lin += (cc[j] * su).max(cc[j] * sl);
                }
            }
            total += z0.len() as f64;
            let (cm, rm) = (&ws.c[t], &ws.r[t]);
            gemm(&mut ws.m[t], &self.ws[t], cm);
            gemm(&mut ws.rad[t], &self.wabs[t], rm);
        }
        let (m, rad) = (&ws.m[nl - 1], &ws.rad[nl - 1]);
        let k = m.nrows();
        let lin_box: f64 = self
            .g
            .iter()
            .zip(m.iter().zip(rad.iter()))
            .map(|(g, (m, r))| g * m + g.abs() * r)
            .sum();
        let widen = rad.iter().sum::<f64>() / m.iter().map(|x| x.abs()).sum::<f64>().max(1e-300);
        ws.buf.resize(4 * k, 0.0);
        let (lo_x, rest) = ws.buf.split_at_mut(k);
        let (hi_x, rest) = rest.split_at_mut(k);
        let (pb, pl) = rest.split_at_mut(k);
        let logits = self.zs[nl].as_slice();
        let mut q = 0.0;
        for s in 0..n {
            let col = s * k..(s + 1) * k;
            let (z0l, wm, wr) = (
                &logits[col.clone()],
                &m.as_slice()[col.clone()],
                &rad.as_slice()[col],
            );
            let cls = (0..k).fold(0, |b, i| if z0l[i] > z0l[b] { i } else { b });
            let mean = wm.iter().sum::<f64>() / k as f64;
            let npi = wm.iter().map(|x| (x - mean).powi(2)).sum::<f64>().sqrt();
            let nr = wr.iter().map(|x| x * x).sum::<f64>().sqrt();
            let mut mx = f64::NEG_INFINITY;
            for i in 0..k {
                mx = mx.max(z0l[i] + (abar * (wm[i] + wr[i])).max(0.0));
            }
            let mut tiny = false;
            for i in 0..k {
                lo_x[i] = z0l[i] + (abar * (wm[i] - wr[i])).min(0.0) - mx;
                hi_x[i] = z0l[i] + (abar * (wm[i] + wr[i])).max(0.0) - mx;
                tiny |= lo_x[i] < -700.0;
            }
            softmax_range(lo_x, hi_x, pb, pl, tiny);
            let (mut t, mut soft): (f64, f64) = (0.0, 0.0);
            for j in 0..k {
                let (pbar, plo) = (pb[j], pl[j]);
                if j != cls {
                    soft += pbar * ((wm[j] - wm[cls]).abs() + wr[j] + wr[cls]).powi(2);
                }
                t = t.max(if plo <= 0.5 && pbar >= 0.5 {
                    0.25
                } else if pbar < 0.5 {
                    pbar * (1.0 - pbar)
                } else {
                    plo * (1.0 - plo)
                });
            }
            let lambda = (2.0 * t).min(0.5);
            q += (lambda * (npi + nr).powi(2)).min(soft);
        }
        Ray {
            lin,
            lin_box,
            quad: 0.5 * w * q,
            kinks: kinks / total,
            widen,
        }
    }
}

/// The softmax's range per class over the box of logits `[lo, hi]` (given relative to the
/// largest upper end): `pb` = sup, `pl` = inf (as session 15's `cheap_certificate`).
fn softmax_range(lo_x: &mut [f64], hi_x: &mut [f64], pb: &mut [f64], pl: &mut [f64], tiny: bool) {
    let k = lo_x.len();
    if tiny {
        // A wide box (exponentials would underflow and give 0/0): the ratios from
        // differences, 1 / (1 + Σ_{i≠j} exp(lo_i - hi_j)).
        for j in 0..k {
            let (mut ol, mut oh) = (0.0, 0.0);
            for i in (0..k).filter(|i| *i != j) {
                ol += (lo_x[i] - hi_x[j]).exp();
                oh += (hi_x[i] - lo_x[j]).exp();
            }
            (pb[j], pl[j]) = (1.0 / (1.0 + ol), 1.0 / (1.0 + oh));
        }
        return;
    }
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
