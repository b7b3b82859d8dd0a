//! Run-time choice of the vector extension for the workspace's own loops.
//!
//! [`widest`] runs a closure compiled for the widest x86-64 vector extension the CPU has
//! (AVX-512F, else AVX2, else the build's baseline). The closure must be marked
//! `#[inline(always)]` (attributes on closures are stable): it is then inlined into a
//! function carrying that target feature, and its loops vectorise for it. Without the
//! attribute it may be compiled out of line, with the baseline's features only (correct,
//! just not wider).
//!
//! The arithmetic is the one the closure writes: Rust never contracts a multiply and an
//! add, and a reduction keeps its written order, so every path gives the same bits.
//! `majorize`'s kernels test this against their baseline code generation ([`each_path`]
//! or the kernel called directly), in a release build (`.ci/run`: the test profile does
//! not vectorise).
//!
//! With [`kernels`](crate::kernels)' call of `gemm::gemm`, these two calls are the
//! crate's only `unsafe` code.

/// `f()` compiled for the widest x86-64 vector extension the CPU has (module doc).
/// Mark the closure `#[inline(always)]`:
///
/// ```
/// let x = vec![1.0f64; 100];
/// let s = autodiff::simd::widest(
///     #[inline(always)]
///     || x.iter().map(|v| 2.0 * v).sum::<f64>(),
/// );
/// assert_eq!(s, 200.0);
/// ```
#[inline(always)]
pub fn widest<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked on the line above), the only
            // requirement of calling a function compiled with that target feature.
            #[allow(unsafe_code)]
            return unsafe { with_avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked on the line above).
            #[allow(unsafe_code)]
            return unsafe { with_avx2(f) };
        }
    }
    f()
}

/// `f()` for every code generation this CPU can run: the baseline, then AVX2 and
/// AVX-512F when present (for tests that compare the paths; mark the closure
/// `#[inline(always)]` as for [`widest`]).
pub fn each_path<R>(f: impl Fn() -> R) -> Vec<R> {
    let mut out = vec![f()];
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked on the line above).
            #[allow(unsafe_code)]
            out.push(unsafe { with_avx2(&f) });
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked on the line above).
            #[allow(unsafe_code)]
            out.push(unsafe { with_avx512(&f) });
        }
    }
    out
}

/// `f()` with AVX-512F code generation.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `f()` with AVX2 code generation.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(test)]
mod tests {
    use super::{each_path, widest};

    /// A loop with a product, a quotient, a square root and an ordered sum gives the same
    /// bits on every path this CPU has, and through `widest`.
    /// A loop with a product, a quotient, a square root and a sum in 8 lanes.
    #[inline(always)]
    fn run(x: &[f64]) -> u64 {
        let mut acc = [0.0f64; 8];
        for (i, v) in x.iter().enumerate() {
            acc[i % 8] += v * 1.1 / (v.abs().sqrt() + 0.5);
        }
        acc.iter().sum::<f64>().to_bits()
    }

    /// `run` gives the same bits on every path this CPU has, and through `widest`.
    #[test]
    fn every_path_gives_the_same_bits() {
        let x: Vec<f64> = (0..1003)
            .map(|i| (f64::from(i) * 0.37).sin() * 1e3)
            .collect();
        let all = each_path(
            #[inline(always)]
            || run(&x),
        );
        assert!(!all.is_empty() && all.len() <= 3);
        assert!(all.iter().all(|b| *b == all[0]), "{all:?}");
        let w = widest(
            #[inline(always)]
            || run(&x),
        );
        assert_eq!(w, all[0]);
    }
}
