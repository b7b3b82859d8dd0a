//! The enclosure's sweep: the network's models block by block of samples, the data
//! term, the L2 penalty, the driver's summation and extreme-value terms, and the
//! assembled [`QuadraticEnclosure`] (see the module doc of `enclosure` and
//! docs/MAJORIZE.md for the rules).

use autodiff::Real;
use nalgebra::DMatrix;
use nets::{Activation, Reduction, Targets};

use super::EnclosureRequest;
use super::api::{OP, QuadraticEnclosure, Step, params, to_t_down, to_t_up};
use super::elementwise::{Acc, activation, activation_in_place};
use super::fp::{Iv, U64, dn, fast_paths, fmax, gamma, up, up_ops};
use super::loss::data_term;
use super::model::{DenseDirs, Model, dense};
use super::relu1::relu_zero_q_in_place;
use super::workspace::EnclosureWorkspace;
use crate::error::{MajorizeError, Result};

/// Dense targets of samples `start..start + N` in f64 into `y` (already `K x N`):
/// one-hot for labels, 0/1 for binary logistic labels.
fn dense_targets<T: Real>(t: &Targets<T>, start: usize, y: &mut DMatrix<f64>) {
    let (rows, cols) = y.shape();
    match t {
        Targets::Dense(m) => {
            let src = &m.as_slice()[start * rows..(start + cols) * rows];
            for (o, v) in y.as_mut_slice().iter_mut().zip(src) {
                *o = v.to_f64();
            }
        }
        Targets::Labels { labels, classes } => {
            let labels = &labels[start..start + cols];
            // nets: one output with two classes is the binary (logistic) view; otherwise one-hot.
            if rows == 1 && *classes == 2 {
                for (o, l) in y.as_mut_slice().iter_mut().zip(labels) {
                    *o = *l as f64;
                }
            } else {
                for (col, l) in y.as_mut_slice().chunks_exact_mut(rows).zip(labels) {
                    for (r, o) in col.iter_mut().enumerate() {
                        *o = if *l == r { 1.0 } else { 0.0 };
                    }
                }
            }
        }
    }
}

/// Samples per block of the enclosure's sweep through the network. Every model of a
/// block is `d x BLOCK`, so a layer's input and output models (five buffers each for
/// `k = 1`) stay in the per-core cache (1-2 MiB) between the GEMM, the activation and
/// the next GEMM, instead of streaming `d x N` buffers from memory at every step; the
/// GEMMs keep enough columns to run at full speed. Bounds do not depend on it beyond
/// the order of the blocks' (outward-rounded) sums. 64 rather than 256 (session 7): a
/// 128-wide layer's two models then take 0.6 MiB, so a block's pipeline stays in a
/// 1 MiB L2 and the enclosure evicts less of the gradient pass's data that runs before
/// it in a certified step: the safe-adam step on digits-mlp was 5-9% faster in four
/// alternating CPU-time runs (digits-softplus-mse, whose cost is the smooth rule, 2-3%
/// slower).
pub(super) const BLOCK: usize = 64;

/// One block of samples `[start, end)` through the plan and the data term (with the
/// first dense layer's degree-0 and degree-1 parts taken from `first` when given): the block's
/// accumulator, its sum of absolute loss terms, `max |y|` over its targets and the
/// number of outputs.
#[allow(clippy::too_many_arguments)]
fn run_block<T: Real>(
    req: &EnclosureRequest<'_, T>,
    plan: &[Step],
    layers: &[DenseDirs],
    first: Given<'_>,
    (start, end): (usize, usize),
    amax: &[f64],
    u_t: f64,
    ws: &mut EnclosureWorkspace,
) -> Result<(Acc, f64, f64, usize)> {
    let k = amax.len();
    // The input model's zero coefficients are kept in the workspace between calls.
    let input = ws.input_model(req.inputs, start, end, k);
    let mut cur: Option<Model> = None;
    // What is known of `cur`'s degree-2 buffers (which pool they go back to).
    let mut q = QBufs::Written;
    let mut n_dense = 0;
    for step in plan {
        // An activation works in place on the previous step's model. The exception is a
        // dense layer's output on the constant input: its degree-2 buffers are kept zeros
        // that must go back to the zero pool, so only ReLU (k = 1) works in place there,
        // writing them at its kink entries only (`relu1`); other steps write a new model.
        if let (Step::Act(a), Some(m)) = (step, cur.as_mut()) {
            if q != QBufs::Zero {
                activation_in_place(*a, m, amax, u_t, ws);
                q = QBufs::Written;
                continue;
            }
            if relu_zero_q_in_place(*a, m, amax, u_t, &mut ws.kinks) {
                q = QBufs::Kinks;
                continue;
            }
            // k > 1: the general ReLU in place too (no copy of the model); it writes the
            // degree-2 buffers only at its kink entries (class 2: the rule; class 0:
            // `+0.0` again; class 1: untouched), which are listed so that the buffers go
            // back to the zero pool as for `k = 1`.
            if *a == Activation::Relu && m.k > 1 && fast_paths() {
                activation_in_place(*a, m, amax, u_t, ws);
                ws.kinks.clear();
                let kinks = ws.class.iter().enumerate().filter(|(_, c)| **c == 2);
                ws.kinks.extend(kinks.map(|(idx, _)| idx));
                q = QBufs::Kinks;
                continue;
            }
        }
        let src = cur.as_ref().unwrap_or(&input);
        let next_q = if matches!(step, Step::Dense(_)) && src.constant {
            QBufs::Zero
        } else {
            QBufs::Written
        };
        let next = match *step {
            Step::Dense(li) => {
                n_dense += 1;
                // The caller's first-layer output, this block's columns (contiguous).
                let on_input = n_dense == 1 && src.constant;
                let given = first.out.filter(|_| on_input).map(|m| cols(m, start, end));
                let given_dir = first.dir.filter(|_| on_input).map(|m| cols(m, start, end));
                ws.q_at_kinks = q == QBufs::Kinks && cur.is_some();
                let out = dense(src, &layers[li], (given, given_dir), amax, u_t, ws);
                ws.q_at_kinks = false;
                match out {
                    Ok(m) => m,
                    Err(e) => {
                        ws.keep_input(input);
                        return Err(e);
                    }
                }
            }
            Step::Act(a) => activation(a, src, amax, u_t, ws),
        };
        if let Some(old) = cur.replace(next) {
            q.release(old, ws);
        }
        q = next_q;
    }
    let out = cur.as_ref().unwrap_or(&input);
    let (rows, cols) = out.c0.shape();
    let mut y = ws.scratch(rows, cols);
    dense_targets(req.targets, start, &mut y);
    let data = data_term(req.loss.kind, out, &y, amax, u_t);
    let y_abs_max = y.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    ws.give(y);
    if let Some(m) = cur {
        q.release(m, ws);
    }
    ws.keep_input(input);
    Ok((data.acc, data.abs_sum, y_abs_max, rows))
}

/// Columns `start..end` of `m` (contiguous, column-major).
fn cols(m: &DMatrix<f64>, start: usize, end: usize) -> &[f64] {
    let d = m.nrows();
    &m.as_slice()[start * d..end * d]
}

/// What is known of the degree-2 buffers of a block's current model: it decides which
/// pool of the workspace they go back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QBufs {
    /// Any values: the pool.
    Written,
    /// All `+0.0` (a dense layer's output on the constant input, never written): the
    /// zero pool.
    Zero,
    /// `+0.0` except at the entries in `ws.kinks` (a `Zero` model after the in-place
    /// ReLU of `relu1`): those are zeroed, then the zero pool.
    Kinks,
}

impl QBufs {
    fn release(self, m: Model, ws: &mut EnclosureWorkspace) {
        match self {
            QBufs::Written => ws.give_model(m),
            QBufs::Zero => ws.give_model_zero_q(m),
            QBufs::Kinks => ws.give_model_kink_q(m),
        }
    }
}

pub(super) fn enclose_planned<T: Real>(
    req: &EnclosureRequest<'_, T>,
    plan: &[Step],
    value: T,
    ws: &mut EnclosureWorkspace,
) -> Result<QuadraticEnclosure<T>> {
    enclose_planned_first(req, Planned::whole(plan), Some(value), Given::NONE, ws)
}

/// f64 evaluations, from the caller's forward pass, of the first dense layer's products
/// on the sweep's (constant) input `x`: its output `out = W x + b` (degree 0) and, with
/// one direction, `dir = V x + β` (degree 1). Any f64 evaluation of either sum is
/// within the `γ` the dense rule charges for its own (checked by the callers).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Given<'a> {
    pub(super) out: Option<&'a DMatrix<f64>>,
    pub(super) dir: Option<&'a DMatrix<f64>>,
}

impl Given<'_> {
    /// Nothing given.
    pub(super) const NONE: Given<'static> = Given {
        out: None,
        dir: None,
    };
}

/// Which part of the validated plan the sweep runs: `run` from `req.inputs`, after the
/// steps `below`, which are not evaluated (the directions are zero there and
/// `req.inputs` is their output as the caller computed it; only their weights' size
/// enters, through the penalty's overflow check).
#[derive(Clone, Copy)]
pub(super) struct Planned<'p> {
    pub(super) below: &'p [Step],
    pub(super) run: &'p [Step],
}

impl<'p> Planned<'p> {
    /// The whole network from its inputs.
    pub(super) fn whole(plan: &'p [Step]) -> Self {
        Planned {
            below: &[],
            run: plan,
        }
    }
}

/// [`enclose_planned`] on a part of the plan ([`Planned`]), with the first dense layer's
/// output on the inputs given in f64 (checked by the caller:
/// `api::enclose_with_value_first`, `from_layer::enclose_from_layer`), and the base
/// value given or, for `None`, the enclosure's own: the midpoint of its degree-0
/// interval rounded to `T` (then `slack >= e + |c0 - value|` covers the driver's value
/// at `alpha = 0` just the same).
pub(super) fn enclose_planned_first<T: Real>(
    req: &EnclosureRequest<'_, T>,
    planned: Planned<'_>,
    value: Option<T>,
    first: Given<'_>,
    ws: &mut EnclosureWorkspace,
) -> Result<QuadraticEnclosure<T>> {
    let net = req.net;
    let plan = planned.run;
    let not_finite = |value: T| MajorizeError::Domain {
        op: OP,
        detail: format!("the objective at the base point is {value}"),
    };
    if let Some(v) = value
        && !v.finite()
    {
        return Err(not_finite(v));
    }
    let k = req.directions.len();
    let amax: Vec<f64> = req.alpha_max.iter().map(|a| a.to_f64()).collect();
    let u_t = T::EPS.to_f64() / 2.0;

    // The layers' f64 operands (`DenseDirs`) are loaded once per call into buffers kept
    // in the workspace, so a steady-state call allocates none of them.
    let mut layers = std::mem::take(&mut ws.layers);
    for step in plan {
        let Step::Dense(li) = *step else { continue };
        let d = net.layers()[li]
            .as_dense()
            .ok_or_else(|| MajorizeError::Unsupported("dense layer vanished".into()))?;
        // Allocation-free lookups (`param_layout` builds a named list per call).
        let info = |name: &str| net.param_span(li, name);
        let (Some(wi), Some(bi)) = (info("weight"), info("bias")) else {
            return Err(MajorizeError::Unsupported(format!(
                "enclose: dense layer {li} does not expose weight and bias"
            )));
        };
        // One slot per network layer (not per position in the plan): enclosures that
        // start at different layers (block MM) then find each layer's buffers in shape.
        if layers.len() <= li {
            layers.resize_with(li + 1, DenseDirs::new);
        }
        layers[li].load(
            &d.weight,
            d.bias.as_slice(),
            req.directions,
            (wi.offset, bi.offset),
            &amax,
        );
    }
    // Samples are independent until the loss sums them, so the models run block by block
    // of samples (module doc of `BLOCK`): the block's buffers stay in cache between the
    // steps. The blocks' accumulators are added with outward rounding.
    let n_samples = req.inputs.ncols();
    let blocks = n_samples.div_ceil(BLOCK).max(1);
    let mut data_acc = Acc::with_k(k);
    let mut abs_sum = 0.0;
    let mut y_abs_max = 0.0f64;
    let mut rows = 0;
    for b in 0..blocks {
        let (start, end) = (b * n_samples / blocks, (b + 1) * n_samples / blocks);
        let block = run_block(req, plan, &layers, first, (start, end), &amax, u_t, ws);
        let (acc, block_abs, block_y, block_rows) = match block {
            Ok(v) => v,
            Err(e) => {
                ws.layers = layers;
                return Err(e);
            }
        };
        merge_acc(&mut data_acc, &acc);
        abs_sum = up(abs_sum + block_abs);
        y_abs_max = y_abs_max.max(block_y);
        rows = block_rows;
    }
    ws.layers = layers;
    let cols = n_samples;
    let w = match req.loss.reduction {
        Reduction::Sum => Iv::point(1.0),
        Reduction::Mean => Iv::new(dn(1.0 / cols as f64), up(1.0 / cols as f64)),
    };
    let mut tot = scale_acc(&data_acc, w);

    let abs_w = up(abs_sum * w.hi);

    // L2 penalty: exact polynomial (l2/2)||w + Σ α_i v_i||² over penalised tensors, plus
    // the driver's error on the rounded weights and its f64 summation.
    let half_l2 = Iv::point(0.5 * req.loss.l2);
    let g_round = gamma(2 * k + 2, u_t);
    let mut pen_max = 0.0;
    if req.loss.l2 != 0.0 {
        // Plain f64 sums with the a-priori bound |fl(Σ x y) - Σ x y| <= γ_n Σ|x y|
        // (Higham eq. 3.5, any order) plus an underflow allowance per product; the
        // magnitudes Σ|x y| are themselves sums of nonnegative terms (`penalty_sums`).
        let mut sums = PenaltySums::new(k);
        let mut offset = 0;
        for p in params(net) {
            let len = p.values.len();
            if p.penalised {
                sums.add(p.values, req.directions, offset, &amax);
            }
            offset += len;
        }
        // Every product's path to a sum has at most `n + tensors + 1` operations.
        let n_ops = sums.n + sums.tensors + 2;
        let s_ww = sums.interval(sums.ww, sums.ww);
        let s_wv: Vec<Iv> = (0..k)
            .map(|i| sums.interval(sums.wv[i], sums.wv_abs[i]))
            .collect();
        let s_vv: Vec<Iv> = (0..k * k)
            .map(|il| sums.interval(sums.vv[il], sums.vv_abs[il]))
            .collect();
        let wmax2 = up_ops(sums.mm, n_ops + 2 * k + 2);
        tot.c0 = tot.c0.add(half_l2.mul(s_ww));
        for i in 0..k {
            tot.c1[i] = tot.c1[i].add(Iv::point(req.loss.l2).mul(s_wv[i]));
            for l in 0..k {
                tot.q[i * k + l] = tot.q[i * k + l].add(half_l2.mul(s_vv[i * k + l]));
            }
        }
        let fac = up_ops(
            (1.0 + g_round) * (1.0 + g_round) * (1.0 + gamma(sums.n + 3, U64)) - 1.0 + 4.0 * U64,
            4,
        );
        pen_max = up(half_l2.hi * up(wmax2 * (1.0 + 3.0 * g_round)));
        tot.add_e(up(half_l2.hi * up(wmax2 * fac)));
    }
    // The driver's sums over samples/outputs in f64 and the final roundings to T.
    let nk = rows * cols;
    let fin = up_ops(
        (gamma(nk + rows + 4, U64) + 2.0 * gamma(2, u_t)) * up(abs_w + pen_max),
        4,
    );
    tot.add_e(fin);
    // Underflow and overflow in T (module `extreme`).
    // The enclosure's own base value: the midpoint of its degree-0 interval in T.
    let value = match value {
        Some(v) => v,
        None => {
            let v = T::of(tot.c0.to_mid_rad().0);
            if !v.finite() {
                return Err(not_finite(v));
            }
            v
        }
    };
    match super::extreme::extreme_terms(
        net,
        planned.below,
        plan,
        req.inputs,
        y_abs_max,
        req.loss,
        req.directions,
        &amax,
    ) {
        super::extreme::Extreme::Finite(e) => {
            tot.add_e(e);
            assemble(req, value, &tot, &amax)
        }
        super::extreme::Extreme::Overflow => {
            tot.add_e(f64::INFINITY);
            let mut enc = match assemble(req, value, &tot, &amax) {
                Ok(enc) => enc,
                // A non-finite derivative on a box where T overflows: report it as an
                // unusable (infinite) bound with a zero slope rather than an error.
                Err(_) => QuadraticEnclosure {
                    value,
                    gradient: vec![T::zero(); k],
                    quad_lower: DMatrix::from_element(k, k, T::of(f64::NEG_INFINITY)),
                    quad_upper: DMatrix::from_element(k, k, T::of(f64::INFINITY)),
                    slack: T::of(f64::INFINITY),
                    alpha_max: req.alpha_max.to_vec(),
                },
            };
            enc.slack = T::of(f64::INFINITY);
            Ok(enc)
        }
    }
}

/// `into += a`, every endpoint rounded outward (`e` up).
fn merge_acc(into: &mut Acc, a: &Acc) {
    into.c0 = into.c0.add(a.c0);
    for (o, x) in into.c1.iter_mut().zip(&a.c1) {
        *o = o.add(*x);
    }
    for (o, x) in into.q.iter_mut().zip(&a.q) {
        *o = o.add(*x);
    }
    into.add_e(a.e);
}

fn scale_acc(a: &Acc, w: Iv) -> Acc {
    Acc {
        c0: a.c0.mul(w),
        c1: a.c1.iter().map(|x| x.mul(w)).collect(),
        q: a.q.iter().map(|x| x.mul(w)).collect(),
        e: up(a.e * w.hi),
    }
}

fn assemble<T: Real>(
    req: &EnclosureRequest<'_, T>,
    value: T,
    tot: &Acc,
    amax: &[f64],
) -> Result<QuadraticEnclosure<T>> {
    let k = amax.len();
    let v = value.to_f64();
    let mut slack = up(tot.e + fmax(fmax(tot.c0.hi - v, v - tot.c0.lo), 0.0));
    let mut gradient = Vec::with_capacity(k);
    for i in 0..k {
        let (m, _) = tot.c1[i].to_mid_rad();
        let g = T::of(m);
        if !g.finite() {
            return Err(MajorizeError::Domain {
                op: OP,
                detail: format!("the derivative along direction {i} is not finite"),
            });
        }
        let gd = g.to_f64();
        let dev = up(fmax(fmax(tot.c1[i].hi - gd, gd - tot.c1[i].lo), 0.0));
        slack = up(slack + up(dev * amax[i]));
        gradient.push(g);
    }
    let quad_upper = DMatrix::from_fn(k, k, |i, j| {
        let x = tot.q[i * k + j].hi;
        if x.is_nan() {
            T::of(f64::INFINITY)
        } else {
            to_t_up::<T>(x)
        }
    });
    let quad_lower = DMatrix::from_fn(k, k, |i, j| {
        let x = tot.q[i * k + j].lo;
        if x.is_nan() {
            T::of(f64::NEG_INFINITY)
        } else {
            to_t_down::<T>(x)
        }
    });
    Ok(QuadraticEnclosure {
        value,
        gradient,
        quad_lower,
        quad_upper,
        slack: to_t_up(slack),
        alpha_max: req.alpha_max.to_vec(),
    })
}

/// The L2 penalty's sums over the penalised weights, in plain f64: `Σ w²`, `Σ w v_i`,
/// `Σ |w v_i|`, `Σ v_i v_l`, `Σ |v_i v_l|` and `Σ m²` with `m = |w| + Σ_i ᾱ_i |v_i|` (the
/// largest magnitude of a weight over the box).
struct PenaltySums {
    n: usize,
    tensors: usize,
    ww: f64,
    wv: Vec<f64>,
    wv_abs: Vec<f64>,
    vv: Vec<f64>,
    vv_abs: Vec<f64>,
    mm: f64,
}

impl PenaltySums {
    fn new(k: usize) -> PenaltySums {
        PenaltySums {
            n: 0,
            tensors: 0,
            ww: 0.0,
            wv: vec![0.0; k],
            wv_abs: vec![0.0; k],
            vv: vec![0.0; k * k],
            vv_abs: vec![0.0; k * k],
            mm: 0.0,
        }
    }

    /// Adds one tensor's weights `w` (flat offset `offset`) and the directions there.
    fn add<T: Real>(
        &mut self,
        w: &[T],
        dirs: &[nalgebra::DVector<T>],
        offset: usize,
        amax: &[f64],
    ) {
        let k = dirs.len();
        self.n += w.len();
        self.tensors += 1;
        if k == 1 {
            let (a, v) = (amax[0], &dirs[0].as_slice()[offset..offset + w.len()]);
            let (mut ww, mut wv, mut wva, mut vv, mut mm) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for (w, v) in w.iter().zip(v) {
                let (w, v) = (w.to_f64(), v.to_f64());
                ww += w * w;
                let p = w * v;
                wv += p;
                wva += p.abs();
                vv += v * v;
                let m = w.abs() + v.abs() * a;
                mm += m * m;
            }
            self.ww += ww;
            self.wv[0] += wv;
            self.wv_abs[0] += wva;
            self.vv[0] += vv;
            self.vv_abs[0] += vv;
            self.mm += mm;
            return;
        }
        for (j, w) in w.iter().enumerate() {
            let w = w.to_f64();
            self.ww += w * w;
            let mut m = w.abs();
            for i in 0..k {
                let vi = dirs[i][offset + j].to_f64();
                let p = w * vi;
                self.wv[i] += p;
                self.wv_abs[i] += p.abs();
                m += vi.abs() * amax[i];
                for l in 0..k {
                    let p = vi * dirs[l][offset + j].to_f64();
                    self.vv[i * k + l] += p;
                    self.vv_abs[i * k + l] += p.abs();
                }
            }
            self.mm += m * m;
        }
    }

    /// An interval containing the exact sum whose computed value is `s` and whose
    /// computed magnitude sum is `abs` (`n` products, summed per tensor and then across
    /// tensors, so at most `m = n + tensors + 2` operations on any path): `s ± γ_m A` with
    /// `A` an upper bound of the exact magnitude sum, plus `n η` for underflow of the
    /// products.
    fn interval(&self, s: f64, abs: f64) -> Iv {
        let m = self.n + self.tensors + 2;
        let a = up_ops(abs, m);
        let r = up(up(gamma(m, U64) * a) + self.n as f64 * super::fp::eta(U64));
        Iv::new(dn(s - r), up(s + r))
    }
}
