//! The softmax cross-entropy kernel of dlADMM's output iterations (`output_pg`), laid
//! out so that every loop runs along the samples and vectorises (issue #14).
//!
//! One pass computes, for every sample `n` (a column of the `K x N` block), with the
//! prox-gradient update `z <- (rho v + z / eta - g) / (rho + 1 / eta)` first when a step
//! is given:
//!
//! ```text
//! m = max_i z_i,  e_i = exp(z_i - m),  s = sum_i e_i,  lse = m + ln s,
//! R_n = sum_i y_i (lse - z_i),  g_i = (sum_j y_j) e_i / s - y_i,  q_n = sum_i (z_i - v_i)^2
//! ```
//!
//! and returns `[T(sum_n R_n), sum_n q_n]`. The block is kept transposed (`SoftmaxWork`:
//! row `i` holds entry `i` of every sample, contiguous), so each formula above is an
//! element-wise operation on rows of length N, walked in chunks of [`CHUNK`] samples
//! that stay in L1. `exp` is `majorize::enclosure::exp_nonpos` (branch free, within
//! `EXP_ULPS = 2.5` ulps; its argument `z_i - m` is `<= 0`), and the pass is compiled for
//! AVX-512F or AVX2 when the CPU has it (run-time dispatch, like `mac::z_kernel`): Rust
//! never contracts a multiply and an add, so every instruction set gives the same bits.
//!
//! Against the column-by-column kernel this replaced (libm `exp`, the generic loss's
//! operations): the update, the maximum, the sums over `i` (`s`, `R_n`, `sum_j y_j`) and
//! the gradient are the same operations in the same order; what differs is `exp`
//! (a few ulps from libm's) and the grouping of the quadratic term (per sample, then over
//! the samples, instead of one running sum over the entries). The quadratic term and the
//! value only enter the stopping test. In f32 the gradient's exponentials are the f64
//! ones rounded to f32 (the generic loss takes them in f32), one rounding instead of
//! `expf`'s.

use autodiff::Real;
use majorize::enclosure::exp_nonpos;
use nalgebra::DMatrix;

/// Samples per chunk of a pass: the chunk's `K` rows of the five `K x N` arrays stay in
/// L1 for the whole pass over it.
const CHUNK: usize = 64;

/// The output block, its anchor, gradient and targets with the samples contiguous
/// (row `i` of each at `i * n`), and the per-chunk exponentials.
#[derive(Debug, Default)]
pub(crate) struct SoftmaxWork<T> {
    k: usize,
    n: usize,
    z: Vec<T>,
    v: Vec<T>,
    g: Vec<T>,
    y: Vec<T>,
    /// `sum_i y_i` per sample, summed in `T` in the order of `i`.
    ysum: Vec<T>,
    e: Vec<f64>,
}

impl<T: Real> SoftmaxWork<T> {
    /// Loads `z`, `v` and the targets `y(i, n)` (transposing; buffers reused).
    pub(crate) fn load(&mut self, z: &DMatrix<T>, v: &DMatrix<T>, y: impl Fn(usize, usize) -> T) {
        let (k, n) = z.shape();
        (self.k, self.n) = (k, n);
        for buf in [&mut self.z, &mut self.v, &mut self.g, &mut self.y] {
            buf.clear();
            buf.resize(k * n, T::zero());
        }
        self.ysum.clear();
        self.ysum.resize(n, T::zero());
        self.e.clear();
        self.e.resize(k * CHUNK, 0.0);
        let (zs, vs) = (z.as_slice(), v.as_slice());
        for c in 0..n {
            let mut ysum = T::zero();
            for i in 0..k {
                self.z[i * n + c] = zs[c * k + i];
                self.v[i * n + c] = vs[c * k + i];
                let yi = y(i, c);
                self.y[i * n + c] = yi;
                ysum += yi;
            }
            self.ysum[c] = ysum;
        }
    }

    /// Writes the block and the gradient back (column-major `K x N`).
    pub(crate) fn store(&self, z: &mut DMatrix<T>, grad: &mut DMatrix<T>) {
        let (k, n) = (self.k, self.n);
        if grad.shape() != (k, n) {
            *grad = DMatrix::zeros(k, n);
        }
        let (zs, gs) = (z.as_mut_slice(), grad.as_mut_slice());
        for c in 0..n {
            for i in 0..k {
                zs[c * k + i] = self.z[i * n + c];
                gs[c * k + i] = self.g[i * n + c];
            }
        }
    }
}

/// One pass (module doc); `step = Some((eta, denom))` updates the block first.
/// Returns `[T(sum_n R_n), sum_n q_n]`.
pub(crate) fn pass<T: Real>(
    w: &mut SoftmaxWork<T>,
    rho: f64,
    step: Option<(f64, f64)>,
) -> [f64; 2] {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked on the line above), the only
            // requirement of calling a function compiled with that target feature.
            return unsafe { pass_avx512(w, rho, step) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked on the line above).
            return unsafe { pass_avx2(w, rho, step) };
        }
    }
    pass_body(w, rho, step)
}

/// [`pass_body`] with AVX-512F code generation.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn pass_avx512<T: Real>(w: &mut SoftmaxWork<T>, rho: f64, step: Option<(f64, f64)>) -> [f64; 2] {
    pass_body(w, rho, step)
}

/// [`pass_body`] with AVX2 code generation.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn pass_avx2<T: Real>(w: &mut SoftmaxWork<T>, rho: f64, step: Option<(f64, f64)>) -> [f64; 2] {
    pass_body(w, rho, step)
}

/// The pass, chunk by chunk; within a chunk every loop runs over its samples.
#[inline(always)]
fn pass_body<T: Real>(w: &mut SoftmaxWork<T>, rho: f64, step: Option<(f64, f64)>) -> [f64; 2] {
    let (k, n) = (w.k, w.n);
    let (mut total, mut quad) = (0.0f64, 0.0f64);
    if k == 0 {
        return [0.0, 0.0];
    }
    let mut mx = [T::zero(); CHUNK];
    let mut s = [0.0f64; CHUNK];
    let mut se = [T::zero(); CHUNK];
    let mut lse = [0.0f64; CHUNK];
    let mut smp = [0.0f64; CHUNK];
    let mut q = [0.0f64; CHUNK];
    for c0 in (0..n).step_by(CHUNK) {
        let m = CHUNK.min(n - c0);
        let (mx, s, se, lse, smp, q) = (
            &mut mx[..m],
            &mut s[..m],
            &mut se[..m],
            &mut lse[..m],
            &mut smp[..m],
            &mut q[..m],
        );
        let row = |i: usize| i * n + c0..i * n + c0 + m;
        // The update and the maximum over i.
        for i in 0..k {
            let z = &mut w.z[row(i)];
            if let Some((eta, denom)) = step {
                let (v, g) = (&w.v[row(i)], &w.g[row(i)]);
                let upd = |zj: &mut T, vj: T, gj: T, z_eta: f64| {
                    *zj = T::of((rho * vj.to_f64() + z_eta - gj.to_f64()) / denom);
                };
                match exact_reciprocal(eta) {
                    // `z / eta` is `z * (1 / eta)` exactly when `eta` is a power of two.
                    Some(r) => {
                        for ((zj, &vj), &gj) in z.iter_mut().zip(v).zip(g) {
                            let z_eta = zj.to_f64() * r;
                            upd(zj, vj, gj, z_eta);
                        }
                    }
                    None => {
                        for ((zj, &vj), &gj) in z.iter_mut().zip(v).zip(g) {
                            let z_eta = zj.to_f64() / eta;
                            upd(zj, vj, gj, z_eta);
                        }
                    }
                }
            }
            if i == 0 {
                mx.copy_from_slice(z);
            } else {
                for (a, &b) in mx.iter_mut().zip(z.iter()) {
                    *a = if b > *a { b } else { *a };
                }
            }
        }
        // Exponentials and their sums, in f64 and in T.
        s.fill(0.0);
        se.fill(T::zero());
        for i in 0..k {
            let (z, e) = (&w.z[row(i)], &mut w.e[i * CHUNK..i * CHUNK + m]);
            for ((((ej, &zj), &mj), sj), sej) in e
                .iter_mut()
                .zip(z)
                .zip(mx.iter())
                .zip(s.iter_mut())
                .zip(se.iter_mut())
            {
                *ej = exp_nonpos(zj.to_f64() - mj.to_f64());
                *sj += *ej;
                *sej += T::of(*ej);
            }
        }
        for ((l, &mj), &sj) in lse.iter_mut().zip(mx.iter()).zip(s.iter()) {
            *l = mj.to_f64() + sj.ln();
        }
        // The sample's loss, the gradient and the quadratic term.
        smp.fill(0.0);
        q.fill(0.0);
        for i in 0..k {
            let r = row(i);
            let (z, v, y) = (&w.z[r.clone()], &w.v[r.clone()], &w.y[r.clone()]);
            let (g, e) = (&mut w.g[r], &w.e[i * CHUNK..i * CHUNK + m]);
            let ysum = &w.ysum[c0..c0 + m];
            for j in 0..m {
                let (zj, yj) = (z[j].to_f64(), y[j].to_f64());
                smp[j] += if yj == 0.0 { 0.0 } else { yj * (lse[j] - zj) };
                g[j] = ysum[j] * (T::of(e[j]) / se[j]) - y[j];
                let d = zj - v[j].to_f64();
                q[j] += d * d;
            }
        }
        for (&a, &b) in smp.iter().zip(q.iter()) {
            total += a;
            quad += b;
        }
    }
    [T::of(total).to_f64(), quad]
}

/// `1 / eta` when it is exact and `x / eta == x * (1 / eta)` for every `x`: `eta` a
/// power of two whose reciprocal is normal (both sides are then the rounding of the
/// same real number).
fn exact_reciprocal(eta: f64) -> Option<f64> {
    let r = 1.0 / eta;
    let pow2 = |v: f64| v.is_normal() && v.to_bits() & ((1u64 << 52) - 1) == 0;
    (pow2(eta) && pow2(r)).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::exact_reciprocal;

    #[test]
    fn exact_reciprocal_only_for_powers_of_two() {
        assert_eq!(exact_reciprocal(4.0), Some(0.25));
        assert_eq!(exact_reciprocal(0.5), Some(2.0));
        for eta in [
            3.0,
            1.5,
            0.1,
            f64::INFINITY,
            f64::NAN,
            0.0,
            f64::MAX,
            1e-310,
        ] {
            assert_eq!(exact_reciprocal(eta), None, "{eta}");
        }
        for x in [1.0, 3.7e-300, -5.3e200, 1e-310, 0.1] {
            assert_eq!((x / 4.0f64).to_bits(), (x * 0.25f64).to_bits());
        }
    }
}
