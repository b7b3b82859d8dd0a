//! Dense kernels of the ADMM solvers: the sample reductions `A A^T`, `Z A^T`, `A 1`,
//! `Z 1` (data-parallel over fixed column chunks, combined in a fixed order) and the
//! ridge-stabilised least-squares W-step (generic helpers: [`crate::linalg`]).

use autodiff::{Real, Transpose};
use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;

use super::config::SAMPLE_CHUNK;
use crate::SolverError;
pub(crate) use crate::linalg::InputKey;
use crate::linalg::{ensure_shape, gemm, spd_inverse_ridged};

/// The sums over samples a W-step needs, for `A` (`p x N`) and `Z` (`q x N`):
/// `gram = A A^T` (`p x p`), `cross = Z A^T` (`q x p`), `a_sum = A 1`, `z_sum = Z 1`.
#[derive(Debug, Clone, Default)]
pub(crate) struct SampleSums<T: Real> {
    pub gram: DMatrix<T>,
    pub cross: DMatrix<T>,
    pub a_sum: Vec<f64>,
    pub z_sum: Vec<f64>,
}

impl<T: Real> SampleSums<T> {
    /// Zeroes the sums (`keep_a`: keeps `gram` and `a_sum`, known from an earlier call on
    /// the same `A`).
    fn reset(&mut self, p: usize, q: usize, keep_a: bool) {
        if !keep_a {
            ensure_shape(&mut self.gram, p, p);
            self.gram.fill(T::zero());
            self.a_sum.clear();
            self.a_sum.resize(p, 0.0);
        }
        ensure_shape(&mut self.cross, q, p);
        self.cross.fill(T::zero());
        self.z_sum.clear();
        self.z_sum.resize(q, 0.0);
    }

    /// Replaces every sum by its sum over the ranks of `comm` (one deterministic
    /// reduction of `p^2 + q p + p + q` values; [`crate::comm::allreduce_sum`]).
    pub(crate) fn allreduce(
        &mut self,
        comm: &dyn crate::comm::Comm,
        scratch: &mut Vec<f64>,
    ) -> Result<(), SolverError> {
        let mut pack: Vec<f64> = Vec::with_capacity(
            self.gram.len() + self.cross.len() + self.a_sum.len() + self.z_sum.len(),
        );
        pack.extend(self.gram.iter().map(|v| v.to_f64()));
        pack.extend(self.cross.iter().map(|v| v.to_f64()));
        pack.extend_from_slice(&self.a_sum);
        pack.extend_from_slice(&self.z_sum);
        crate::comm::allreduce_sum(comm, &mut pack, scratch)?;
        let (g, rest) = pack.split_at(self.gram.len());
        let (c, rest) = rest.split_at(self.cross.len());
        let (a, z) = rest.split_at(self.a_sum.len());
        self.gram
            .iter_mut()
            .zip(g)
            .for_each(|(d, &v)| *d = T::of(v));
        self.cross
            .iter_mut()
            .zip(c)
            .for_each(|(d, &v)| *d = T::of(v));
        self.a_sum.copy_from_slice(a);
        self.z_sum.copy_from_slice(z);
        Ok(())
    }

    /// dlADMM's W-step in a data-parallel run: replaces `cross` (and, with `gram`, also
    /// `gram`) by its sum over the ranks of `dist` (one deterministic reduction of
    /// `q p (+ p^2)` values); the column sums, which dlADMM does not use, stay local.
    pub(crate) fn allreduce_w_step(
        &mut self,
        dist: &Option<(std::sync::Arc<dyn crate::comm::Comm>, usize)>,
        gram: bool,
        scratch: &mut Vec<f64>,
    ) -> Result<(), SolverError> {
        let Some((comm, _)) = dist else {
            return Ok(());
        };
        let mut pack: Vec<f64> = Vec::with_capacity(self.cross.len() + self.gram.len());
        pack.extend(self.cross.iter().map(|v| v.to_f64()));
        if gram {
            pack.extend(self.gram.iter().map(|v| v.to_f64()));
        }
        crate::comm::allreduce_sum(&**comm, &mut pack, scratch)?;
        let (c, g) = pack.split_at(self.cross.len());
        self.cross
            .iter_mut()
            .zip(c)
            .for_each(|(d, &v)| *d = T::of(v));
        if gram {
            self.gram
                .iter_mut()
                .zip(g)
                .for_each(|(d, &v)| *d = T::of(v));
        }
        Ok(())
    }

    /// Adds the contribution of the columns of `a`, `z` (both with the same columns);
    /// `keep_a`: only the `z` sums.
    fn accumulate(
        &mut self,
        a: &DMatrix<T>,
        z: &DMatrix<T>,
        keep_a: bool,
    ) -> Result<(), SolverError> {
        if !keep_a {
            gemm(
                &mut self.gram,
                1.0,
                a,
                Transpose::No,
                a,
                Transpose::Yes,
                1.0,
                1,
            )?;
            row_sums_into(a, &mut self.a_sum);
        }
        gemm(
            &mut self.cross,
            1.0,
            z,
            Transpose::No,
            a,
            Transpose::Yes,
            1.0,
            1,
        )?;
        row_sums_into(z, &mut self.z_sum);
        Ok(())
    }

    fn add(&mut self, o: &SampleSums<T>, keep_a: bool) {
        if !keep_a {
            self.gram += &o.gram;
            for (x, y) in self.a_sum.iter_mut().zip(&o.a_sum) {
                *x += y;
            }
        }
        self.cross += &o.cross;
        for (x, y) in self.z_sum.iter_mut().zip(&o.z_sum) {
            *x += y;
        }
    }
}

fn row_sums_into<T: Real>(m: &DMatrix<T>, out: &mut [f64]) {
    // Column by column over the contiguous storage (same order of the sums).
    for col in m.as_slice().chunks_exact(m.nrows().max(1)) {
        for (o, v) in out.iter_mut().zip(col) {
            *o += v.to_f64();
        }
    }
}

/// Per-worker buffers of [`sample_sums`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Worker<T: Real> {
    sums: SampleSums<T>,
    a_buf: DMatrix<T>,
    z_buf: DMatrix<T>,
}

/// Workspace of [`sample_sums`]: one [`Worker`] per thread and an optional pool.
#[derive(Default)]
pub(crate) struct SumsWork<T: Real> {
    workers: Vec<Worker<T>>,
    pool: Option<rayon::ThreadPool>,
}

impl<T: Real> std::fmt::Debug for SumsWork<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SumsWork({} workers)", self.workers.len())
    }
}

/// Computes [`SampleSums`] of `a` (`p x N`) and `z` (`q x N`) into `out`.
///
/// `threads <= 1`: two GEMMs over all columns on the calling thread (no rayon).
/// `threads = P > 1`: the columns are cut into chunks of [`SAMPLE_CHUNK`]; the chunks
/// are dealt into P contiguous groups, each group is reduced by one rayon task (its
/// GEMMs single-threaded: pools are never nested) and the P partial sums are added
/// in group order. The result is bit-identical for a given P.
pub(crate) fn sample_sums<T: Real>(
    a: &DMatrix<T>,
    z: &DMatrix<T>,
    threads: usize,
    work: &mut SumsWork<T>,
    out: &mut SampleSums<T>,
) -> Result<(), SolverError> {
    sample_sums_keep(a, z, threads, work, out, false)
}

/// [`sample_sums`]; with `keep_a`, `out.gram` and `out.a_sum` are taken as already
/// holding the sums of this `a` computed with the same `threads` (bit-identical to
/// recomputing them) and only the `z` sums are computed.
pub(crate) fn sample_sums_keep<T: Real>(
    a: &DMatrix<T>,
    z: &DMatrix<T>,
    threads: usize,
    work: &mut SumsWork<T>,
    out: &mut SampleSums<T>,
    keep_a: bool,
) -> Result<(), SolverError> {
    let (p, n) = a.shape();
    let q = z.nrows();
    if z.ncols() != n {
        return Err(SolverError::shape(
            "ADMM sample sums (columns of Z vs A)",
            n,
            z.ncols(),
        ));
    }
    let keep_a = keep_a && out.gram.shape() == (p, p) && out.a_sum.len() == p;
    out.reset(p, q, keep_a);
    let chunks = n.div_ceil(SAMPLE_CHUNK);
    if threads <= 1 || chunks <= 1 {
        return out.accumulate(a, z, keep_a);
    }
    let groups = threads.min(chunks);
    if work.workers.len() != groups {
        work.workers = (0..groups).map(|_| Worker::default()).collect();
    }
    if work
        .pool
        .as_ref()
        .is_none_or(|pl| pl.current_num_threads() != groups)
    {
        work.pool = Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(groups)
                .build()
                .map_err(|e| SolverError::Problem(format!("ADMM thread pool: {e}")))?,
        );
    }
    let per = chunks.div_ceil(groups);
    let pool = work
        .pool
        .as_ref()
        .ok_or_else(|| SolverError::Problem("ADMM thread pool missing".into()))?;
    let results: Vec<Result<(), SolverError>> = pool.install(|| {
        work.workers
            .par_iter_mut()
            .enumerate()
            .map(|(g, w)| {
                w.sums.reset(p, q, keep_a);
                let c0 = (g * per).min(chunks);
                let c1 = ((g + 1) * per).min(chunks);
                for c in c0..c1 {
                    let s = c * SAMPLE_CHUNK;
                    let len = SAMPLE_CHUNK.min(n - s);
                    ensure_shape(&mut w.a_buf, p, len);
                    ensure_shape(&mut w.z_buf, q, len);
                    w.a_buf.copy_from(&a.columns(s, len));
                    w.z_buf.copy_from(&z.columns(s, len));
                    let (ab, zb) = (&w.a_buf, &w.z_buf);
                    w.sums.accumulate(ab, zb, keep_a)?;
                }
                Ok(())
            })
            .collect()
    });
    for r in results {
        r?;
    }
    for w in &work.workers {
        out.add(&w.sums, keep_a);
    }
    Ok(())
}

/// The ridge-stabilised least-squares step for `W~ = [W b]`:
///
/// ```text
/// argmin  ||Z - W A - b 1^T||^2 + l2w ||W||^2 + eps ||[W b] - [W b]_old||^2
/// ```
///
/// from the sample sums: `[W b] (A~ A~^T + D) = [Z A^T, Z 1] + eps [W b]_old`,
/// `A~ = [A; 1^T]`, `D = diag(l2w + eps, .., l2w + eps, eps)`; without biases the last
/// row/column is dropped and `b` stays. Solved by f64 Cholesky. Returns the number of
/// factorisations tried.
///
/// `cached`: the normal matrix depends only on `gram`, `a_sum`, `n`, `ridge`, `l2w` and
/// `biases`; when the caller knows they are unchanged since the last call with this cache
/// (`reuse`, e.g. layer 1, whose input is the constant `X`), the stored `eps`, inverse
/// and factorisation count are used instead of refactorising (bit-identical). The cache is
/// refilled otherwise.
#[allow(clippy::too_many_arguments)]
pub(crate) fn least_squares_w<T: Real>(
    sums: &SampleSums<T>,
    n: usize,
    ridge: f64,
    l2w: f64,
    biases: bool,
    w: &mut DMatrix<T>,
    b: &mut DVector<T>,
    cached: Option<(&mut LsInverse, bool)>,
) -> Result<u64, SolverError> {
    let p = sums.gram.nrows();
    let q = sums.cross.nrows();
    let dim = if biases { p + 1 } else { p };
    let mut fresh = LsInverse::default();
    let (cache, reuse) = match cached {
        Some((c, r)) => {
            let ok = r && c.inv.nrows() == dim;
            (c, ok)
        }
        None => (&mut fresh, false),
    };
    if !reuse {
        let mut m = DMatrix::<f64>::zeros(dim, dim);
        for j in 0..p {
            for i in 0..p {
                m[(i, j)] = sums.gram[(i, j)].to_f64();
            }
        }
        if biases {
            for i in 0..p {
                m[(i, p)] = sums.a_sum[i];
                m[(p, i)] = sums.a_sum[i];
            }
            m[(p, p)] = n as f64;
        }
        let eps = ridge * (m.trace() / dim as f64).max(1.0);
        for i in 0..dim {
            m[(i, i)] += eps + if i < p { l2w } else { 0.0 };
        }
        let (inv, tries) = spd_inverse_ridged(&m, "ADMM W-step normal equations")?;
        *cache = LsInverse { eps, inv, tries };
    }
    let eps = cache.eps;
    // rhs^T: dim x q.
    let mut rhs = DMatrix::<f64>::zeros(dim, q);
    for k in 0..q {
        for i in 0..p {
            let zb = if biases {
                0.0
            } else {
                b[k].to_f64() * sums.a_sum[i]
            };
            rhs[(i, k)] = sums.cross[(k, i)].to_f64() - zb + eps * w[(k, i)].to_f64();
        }
        if biases {
            rhs[(p, k)] = sums.z_sum[k] + eps * b[k].to_f64();
        }
    }
    let sol = &cache.inv * rhs; // dim x q
    for k in 0..q {
        for i in 0..p {
            w[(k, i)] = T::of(sol[(i, k)]);
        }
        if biases {
            b[k] = T::of(sol[(p, k)]);
        }
    }
    Ok(cache.tries)
}

/// The inverse normal matrix of [`least_squares_w`] kept between calls (layer 1).
#[derive(Debug, Clone, Default)]
pub(crate) struct LsInverse {
    eps: f64,
    inv: DMatrix<f64>,
    tries: u64,
}
