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
//! operations), the maximum and the sums over `i` (`s`, `R_n`, `sum_j y_j`) are the same
//! operations in the same order. What differs, each at the level of one rounding:
//! - `exp` (within 2.5 ulps, libm's within 1);
//! - the update multiplies by `1 / (rho + 1 / eta)` instead of dividing by it, and the
//!   gradient is `e_i * ((sum_j y_j) / s)` instead of `(sum_j y_j) * (e_i / s)` (one
//!   division per sample instead of two per entry); `z / eta` stays exact (a power of
//!   two `eta`, as the code's 4, is applied as the exact multiplication by `1 / eta`);
//! - the quadratic term is summed per sample, then over the samples, instead of in one
//!   running sum over the entries.
//!
//! The value and the quadratic term only enter the stopping test. `trace_check` on
//! digits-mlp, digits-mlp-deep and mnist-synth shows the effect on whole runs
//! (docs/PERFORMANCE.md, "dlADMM, session 8"). In f32 the gradient's exponentials are
//! the f64 ones rounded to f32 (the generic loss takes them in f32), one rounding
//! instead of `expf`'s.

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
        // Every entry is written below (`g` and `e` by a pass before they are read), so
        // buffers of the right length are not cleared.
        for buf in [&mut self.z, &mut self.v, &mut self.g, &mut self.y] {
            buf.resize(k * n, T::zero());
        }
        self.ysum.resize(n, T::zero());
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
        crate::linalg::ensure_shape(grad, k, n);
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
    autodiff::simd::widest(
        #[inline(always)]
        || pass_body(w, rho, step),
    )
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
                // `1 / (rho + 1 / eta)` once: a multiplication per entry instead of a
                // division (module doc: rounding-level).
                let inv_denom = 1.0 / denom;
                let upd = |zj: &mut T, vj: T, gj: T, z_eta: f64| {
                    *zj = T::of((rho * vj.to_f64() + z_eta - gj.to_f64()) * inv_denom);
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
            *l = mj.to_f64() + ln_ge1(sj);
        }
        // `sum_j y_j / s` once per sample: the gradient is then a multiplication per
        // entry instead of a division (module doc: rounding-level).
        for (sej, &ys) in se.iter_mut().zip(&w.ysum[c0..c0 + m]) {
            *sej = ys / *sej;
        }
        // The sample's loss, the gradient and the quadratic term.
        smp.fill(0.0);
        q.fill(0.0);
        for i in 0..k {
            let r = row(i);
            let (z, v, y) = (&w.z[r.clone()], &w.v[r.clone()], &w.y[r.clone()]);
            let (g, e) = (&mut w.g[r], &w.e[i * CHUNK..i * CHUNK + m]);
            for j in 0..m {
                let (zj, yj) = (z[j].to_f64(), y[j].to_f64());
                smp[j] += if yj == 0.0 { 0.0 } else { yj * (lse[j] - zj) };
                g[j] = T::of(e[j]) * se[j] - y[j];
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

/// `ln 2` to 32 significant bits (fdlibm's split) and the rest, rounded.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);

/// `ln s` for `s >= 1` (here `s = sum_i e_i`, whose largest term is `e^0 = 1`), branch
/// free so that the loop over a chunk vectorises (libm's `ln` was a call per sample).
/// `s = 2^k m` with `m` in `[sqrt(1/2), sqrt(2))`, `t = (m - 1) / (m + 1)` (`m - 1` exact,
/// `|t| < 0.1716`), `ln m = 2 atanh t = sum_{j <= 11} 2 t^{2j+1} / (2j + 1)` (truncation
/// below `t^24 / 12 < 2^-63`), `ln s = k LN2_HI + (ln m + k LN2_LO)`. Within a few ulps
/// of `ln s` (test: at most 4 ulps from libm, 2 seen); it only enters the block objective of the
/// stopping test. `NaN` and `+inf` are returned as they are.
#[inline(always)]
fn ln_ge1(s: f64) -> f64 {
    const C: [f64; 12] = [
        2.0,
        2.0 / 3.0,
        2.0 / 5.0,
        2.0 / 7.0,
        2.0 / 9.0,
        2.0 / 11.0,
        2.0 / 13.0,
        2.0 / 15.0,
        2.0 / 17.0,
        2.0 / 19.0,
        2.0 / 21.0,
        2.0 / 23.0,
    ];
    let bits = s.to_bits();
    let k0 = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let m0 = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    let high = m0 > std::f64::consts::SQRT_2;
    let m = if high { 0.5 * m0 } else { m0 };
    let k = (k0 + i64::from(high)) as f64;
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let mut p = C[11];
    for &c in C[..11].iter().rev() {
        p = c + t2 * p;
    }
    let r = k * LN2_HI + (t * p + k * LN2_LO);
    if (1.0..f64::INFINITY).contains(&s) {
        r
    } else {
        s
    }
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

    /// `ln_ge1` within 4 ulps of libm's `ln` on `[1, 1e6]` (dense near 1 and at the
    /// powers of two and their square roots, where the reduction switches), and `NaN`,
    /// `+inf` passed through.
    #[test]
    fn ln_ge1_matches_libm() {
        let check = |s: f64| {
            let (got, want) = (super::ln_ge1(s), s.ln());
            let err = (got - want).abs() / (want.abs() * f64::EPSILON).max(f64::MIN_POSITIVE);
            assert!(
                err <= 4.0 || got == want,
                "s {s}: {got} vs {want} ({err} ulps)"
            );
        };
        check(1.0);
        for i in 1..200_000 {
            check(1.0 + i as f64 * 1e-9);
            check(1.0 + i as f64 * 5e-5);
            check((i as f64).sqrt() * 7.3);
        }
        for e in 0..20 {
            let p = 2f64.powi(e);
            for s in [p, p * std::f64::consts::SQRT_2] {
                for d in -3i64..=3 {
                    check(f64::from_bits((s.to_bits() as i64 + d) as u64).max(1.0));
                }
            }
        }
        assert!(super::ln_ge1(f64::NAN).is_nan());
        assert_eq!(super::ln_ge1(f64::INFINITY), f64::INFINITY);
    }

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
