//! Small dense linear-algebra helpers shared by the layer-wise solver families (ADMM,
//! BCD, MAC, lifted, ProxProp): GEMM through `autodiff::kernels::gemm_into` with error
//! conversion, buffer-reusing reshapes, Cholesky solves and inverses of SPD matrices,
//! affine layer maps, norms accumulated in f64 and finiteness checks.

use autodiff::{Real, Transpose, kernels::gemm_into};
use nalgebra::{DMatrix, DVector};

use crate::SolverError;

/// `c <- alpha op(a) op(b) + beta c` (`op` = identity or transpose); `c` must already
/// have the shape of the product, else a [`SolverError::Problem`] naming the shapes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<T: Real>(
    c: &mut DMatrix<T>,
    alpha: f64,
    a: &DMatrix<T>,
    ta: Transpose,
    b: &DMatrix<T>,
    tb: Transpose,
    beta: f64,
    threads: usize,
) -> Result<(), SolverError> {
    gemm_into(c, T::of(alpha), a, ta, b, tb, T::of(beta), threads.max(1))
        .map_err(|e| SolverError::Problem(format!("gemm: {e}")))
}

/// [`gemm`], except that with `beta = 0` a wrongly shaped `c` is first reshaped to
/// `rows(op(a)) x cols(op(b))` (so callers can keep scratch buffers without tracking
/// their shapes).
#[allow(clippy::too_many_arguments)]
pub(crate) fn mm<T: Real>(
    c: &mut DMatrix<T>,
    alpha: f64,
    a: &DMatrix<T>,
    ta: Transpose,
    b: &DMatrix<T>,
    tb: Transpose,
    beta: f64,
    threads: usize,
) -> Result<(), SolverError> {
    let rows = if ta == Transpose::No {
        a.nrows()
    } else {
        a.ncols()
    };
    let cols = if tb == Transpose::No {
        b.ncols()
    } else {
        b.nrows()
    };
    if beta == 0.0 {
        ensure_shape(c, rows, cols);
    }
    gemm(c, alpha, a, ta, b, tb, beta, threads)
}

/// Row-block height of [`gram_sym`]'s blocks.
const GRAM_BLOCK: usize = 32;
/// Columns (samples) per pass of [`gram_sym`], so that the copied row blocks stay in cache.
const GRAM_CHUNK: usize = 1024;
/// Below this many rows [`gram_sym`] is one GEMM (the blocks would not pay for the copies).
const GRAM_MIN_ROWS: usize = 64;

/// Buffers of [`gram_sym`], kept by the caller between calls: the row blocks of one
/// chunk of the input and one output block.
#[derive(Debug, Clone)]
pub(crate) struct GramScratch<T: Real> {
    blocks: Vec<DMatrix<T>>,
    /// The row blocks of the last, narrower chunk (kept apart so that neither set is
    /// reshaped, i.e. zero-filled again, on every call).
    tail_blocks: Vec<DMatrix<T>>,
    tmp: DMatrix<T>,
}

impl<T: Real> Default for GramScratch<T> {
    fn default() -> Self {
        GramScratch {
            blocks: Vec::new(),
            tail_blocks: Vec::new(),
            tmp: DMatrix::zeros(0, 0),
        }
    }
}

/// `c <- alpha a a^T` (`c` reshaped to `d x d` for a `d x N` input), computing only the
/// lower triangle of blocks and mirroring it, like BLAS `syrk` (issue #14: the Gram
/// matrices of the hidden layers' weight steps). The rows of `a` are cut into blocks of
/// [`GRAM_BLOCK`] and the samples into chunks of [`GRAM_CHUNK`]; each chunk's row blocks
/// are copied into contiguous buffers and the blocks `(i, j)`, `i >= j`, are one GEMM
/// each, summed over the chunks: `nb (nb + 1) / 2` of the `nb^2` block products, about
/// 0.6x the multiply-adds and 0.55-0.8x the time of the full GEMM at `d = 128`, measured
/// on N = 1438 and 10 000 (docs/PERFORMANCE.md). The sums run in another order than the
/// full GEMM's, so entries differ from it by rounding; the result is exactly symmetric.
/// With fewer than [`GRAM_MIN_ROWS`] rows, or with `threads > 1` (the blocks are too
/// small for the GEMM's threads), it is the full GEMM.
pub(crate) fn gram_sym<T: Real>(
    c: &mut DMatrix<T>,
    alpha: f64,
    a: &DMatrix<T>,
    threads: usize,
    ws: &mut GramScratch<T>,
) -> Result<(), SolverError> {
    let (d, n) = a.shape();
    if d < GRAM_MIN_ROWS || threads > 1 || n == 0 {
        return mm(c, alpha, a, Transpose::No, a, Transpose::Yes, 0.0, threads);
    }
    ensure_shape(c, d, d);
    let nb = d.div_ceil(GRAM_BLOCK);
    ws.blocks.resize_with(nb, || DMatrix::zeros(0, 0));
    ws.tail_blocks.resize_with(nb, || DMatrix::zeros(0, 0));
    let src = a.as_slice();
    let mut c0 = 0;
    while c0 < n {
        let c1 = (c0 + GRAM_CHUNK).min(n);
        let w = c1 - c0;
        let blocks = if w == GRAM_CHUNK {
            &mut ws.blocks
        } else {
            &mut ws.tail_blocks
        };
        for (j, blk) in blocks.iter_mut().enumerate() {
            let (r0, r1) = (j * GRAM_BLOCK, ((j + 1) * GRAM_BLOCK).min(d));
            let h = r1 - r0;
            fit(blk, h, w);
            for (col, dst) in blk.as_mut_slice().chunks_exact_mut(h).enumerate() {
                let at = (c0 + col) * d;
                dst.copy_from_slice(&src[at + r0..at + r1]);
            }
        }
        for j in 0..nb {
            for i in j..nb {
                let (bi, bj) = (&blocks[i], &blocks[j]);
                fit(&mut ws.tmp, bi.nrows(), bj.nrows());
                gemm(
                    &mut ws.tmp,
                    alpha,
                    bi,
                    Transpose::No,
                    bj,
                    Transpose::Yes,
                    0.0,
                    1,
                )?;
                let (ri, rj) = (i * GRAM_BLOCK, j * GRAM_BLOCK);
                for cc in 0..bj.nrows() {
                    // Lower triangle only (the diagonal blocks from their diagonal down).
                    let from = if i == j { cc } else { 0 };
                    for rr in from..bi.nrows() {
                        let v = ws.tmp[(rr, cc)];
                        let e = &mut c[(ri + rr, rj + cc)];
                        *e = if c0 == 0 { v } else { *e + v };
                    }
                }
            }
        }
        c0 = c1;
    }
    for col in 0..d {
        for row in col + 1..d {
            c[(col, row)] = c[(row, col)];
        }
    }
    Ok(())
}

/// Reshapes `m` to `r x c` keeping its storage: the `Vec` keeps its capacity (a scratch
/// matrix alternating between layer shapes allocates only until it has held the
/// largest), and the first `min(old, new)` stored entries keep their values (callers
/// overwrite them). No-op if the shape already matches.
pub(crate) fn fit<T: Real>(m: &mut DMatrix<T>, r: usize, c: usize) {
    if m.shape() == (r, c) {
        return;
    }
    let mut v: Vec<T> = std::mem::replace(m, DMatrix::zeros(0, 0)).data.into();
    v.resize(r * c, T::zero());
    *m = DMatrix::from_vec(r, c, v);
}

/// [`fit`], but every entry is zero after a reshape (kept unchanged if the shape
/// already matches).
pub(crate) fn ensure_shape<T: Real>(m: &mut DMatrix<T>, r: usize, c: usize) {
    if m.shape() != (r, c) {
        fit(m, r, c);
        m.fill(T::zero());
    }
}

/// Solves `m x = rhs` in place (`rhs <- m^{-1} rhs`) for a symmetric positive definite
/// `m` by Cholesky. `what` names the system in the error when `m` is not numerically SPD.
pub(crate) fn solve_spd<T: Real>(
    m: DMatrix<T>,
    rhs: &mut DMatrix<T>,
    what: &str,
) -> Result<(), SolverError> {
    let n = m.nrows();
    let chol = nalgebra::Cholesky::new(m).ok_or_else(|| {
        SolverError::NonFinite(format!(
            "{what}: the {n} x {n} system matrix is not positive definite (non-finite \
             entries or a vanishing ridge)"
        ))
    })?;
    chol.solve_mut(rhs);
    Ok(())
}

/// `rhs <- (L L^T)^{-1} rhs` for the Cholesky factor `L` in the lower triangle of `l`
/// (`n x n`; entries above the diagonal are ignored, so nalgebra's `l_dirty()` can be
/// passed), with all `m` right-hand sides at once: the rows of `rhs` are copied into the
/// columns of a row-major buffer (`ws`, kept by the caller), and the forward
/// (`L Y = B`) and backward (`L^T X = Y`) substitutions update whole rows, each an axpy
/// over `m` contiguous numbers, instead of nalgebra's per-column solves (issue #14: those
/// were ~4% of a MAC sweep on digits, short vectors and dot products per entry). Every
/// entry of `Y` receives its updates in the same order as in nalgebra's forward solve;
/// the backward substitution subtracts the terms one by one instead of as one dot
/// product, so `X` differs from `Cholesky::solve_mut`'s by rounding.
pub(crate) fn cholesky_solve_rows<T: Real>(l: &DMatrix<T>, rhs: &mut DMatrix<T>, ws: &mut Vec<T>) {
    let (n, m) = rhs.shape();
    if n == 0 || m == 0 || l.nrows() != n || l.ncols() != n {
        return;
    }
    ws.clear();
    ws.resize(n * m, T::zero());
    // Row i of rhs becomes ws[i m .. (i + 1) m].
    for (j, col) in rhs.column_iter().enumerate() {
        for (i, &v) in col.iter().enumerate() {
            ws[i * m + j] = v;
        }
    }
    // Forward: y_i = (b_i - sum_{k<i} L_ik y_k) / L_ii, the terms in k order.
    for i in 0..n {
        let (done, rest) = ws.split_at_mut(i * m);
        let row = &mut rest[..m];
        for k in 0..i {
            let c = l[(i, k)];
            for (r, &y) in row.iter_mut().zip(&done[k * m..(k + 1) * m]) {
                *r -= c * y;
            }
        }
        let d = l[(i, i)];
        row.iter_mut().for_each(|r| *r /= d);
    }
    // Backward: x_i = (y_i - sum_{k>i} L_ki x_k) / L_ii, the terms in k order.
    for i in (0..n).rev() {
        let (head, done) = ws.split_at_mut((i + 1) * m);
        let row = &mut head[i * m..];
        for k in i + 1..n {
            let c = l[(k, i)];
            let xk = &done[(k - i - 1) * m..(k - i) * m];
            for (r, &x) in row.iter_mut().zip(xk) {
                *r -= c * x;
            }
        }
        let d = l[(i, i)];
        row.iter_mut().for_each(|r| *r /= d);
    }
    for (j, mut col) in rhs.column_iter_mut().enumerate() {
        for (i, v) in col.iter_mut().enumerate() {
            *v = ws[i * m + j];
        }
    }
}

/// The inverse of a symmetric positive definite `m` (Cholesky, solved against the
/// identity, then symmetrised as `(X + X^T) / 2`), for systems with many right-hand
/// sides: applying it is then one GEMM, much faster than triangular solves on `d x N`.
pub(crate) fn spd_inverse<T: Real>(m: DMatrix<T>, what: &str) -> Result<DMatrix<T>, SolverError> {
    let n = m.nrows();
    let mut inv = DMatrix::identity(n, n);
    solve_spd(m, &mut inv, what)?;
    // Symmetrise (rounding makes the two triangles differ in the last bits).
    let t = inv.transpose();
    inv += t;
    inv *= T::of(0.5);
    Ok(inv)
}

/// Cholesky inverse `(m + r I)^{-1}` of a symmetric positive definite f64 matrix, with
/// ridge `r = 0` first and, on failure, `r = 1e-12 s, 1e-10 s, ...` (`s` = mean |diagonal|)
/// for up to 9 factorisations. Returns the inverse and the number of factorisations tried.
pub(crate) fn spd_inverse_ridged(
    m: &DMatrix<f64>,
    what: &str,
) -> Result<(DMatrix<f64>, u64), SolverError> {
    let n = m.nrows();
    let scale = (m.trace() / n.max(1) as f64).abs().max(1e-300);
    let mut ridge = 0.0;
    for tries in 1..=9u64 {
        let mut mm = m.clone();
        for i in 0..n {
            mm[(i, i)] += ridge;
        }
        if let Some(ch) = mm.cholesky() {
            return Ok((ch.inverse(), tries));
        }
        ridge = if ridge == 0.0 {
            1e-12 * scale
        } else {
            ridge * 100.0
        };
    }
    Err(SolverError::NonFinite(format!(
        "{what}: matrix not positive definite even with a ridge (contains NaN/inf?)"
    )))
}

/// `m <- m + c I` on the diagonal of `m`.
pub(crate) fn add_diag<T: Real>(m: &mut DMatrix<T>, c: f64) {
    let c = T::of(c);
    for i in 0..m.nrows().min(m.ncols()) {
        m[(i, i)] += c;
    }
}

/// Row sums `a 1` (length = rows of `a`).
pub(crate) fn row_sums<T: Real>(a: &DMatrix<T>) -> DVector<T> {
    let mut s = DVector::zeros(a.nrows());
    for col in a.column_iter() {
        s += col;
    }
    s
}

/// `out <- W a + b 1^T` (the affine map of a dense layer; `out` reshaped if needed).
pub(crate) fn affine<T: Real>(
    w: &DMatrix<T>,
    b: &DVector<T>,
    a: &DMatrix<T>,
    threads: usize,
    out: &mut DMatrix<T>,
) -> Result<(), SolverError> {
    ensure_shape(out, w.nrows(), a.ncols());
    gemm(out, 1.0, w, Transpose::No, a, Transpose::No, 0.0, threads)?;
    for mut col in out.column_iter_mut() {
        col += b;
    }
    Ok(())
}

/// Largest eigenvalue of the symmetric PSD matrix `g` by `iters` power iterations from
/// the all-ones vector (an estimate from below; callers certify with a backtracking check).
///
/// When `g 1 = 0` exactly (the all-ones vector lies in the null space, e.g. a Gram
/// `W W^T` of weights whose columns sum to zero, as a least-squares fit of centred
/// targets gives), the iteration restarts from `e_j`, `j` the largest diagonal entry:
/// `g e_j` is column `j`, of norm `>= g_jj > 0` unless `g = 0`. Without the restart the
/// estimate was 0 for a nonzero `g`, and whether the rounding of `g 1` happened to give
/// exactly 0 depended on the machine's GEMM kernel (MAC then skipped its Z-step).
pub(crate) fn lambda_max_psd<T: Real>(g: &DMatrix<T>, iters: usize) -> f64 {
    let n = g.nrows();
    if n == 0 {
        return 0.0;
    }
    let gf = g.map(|x| x.to_f64());
    let ones = DVector::from_element(n, 1.0 / (n as f64).sqrt());
    match power_iteration(&gf, ones, iters) {
        Ok(lam) => lam,
        Err(nw) if nw != 0.0 => nw, // non-finite `g`
        Err(_) => {
            let (mut j, mut best) = (0, f64::NEG_INFINITY);
            for i in 0..n {
                if gf[(i, i)] > best {
                    (j, best) = (i, gf[(i, i)]);
                }
            }
            if best.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                return best.max(0.0); // g = 0 (a PSD matrix with no positive diagonal)
            }
            let mut e = DVector::zeros(n);
            e[j] = 1.0;
            power_iteration(&gf, e, iters).unwrap_or_else(|nw| nw)
        }
    }
}

/// `iters` power iterations of `gf` from the unit vector `v`: the largest Rayleigh
/// quotient seen, or `Err(||gf v||)` when an iterate's image is zero or non-finite.
fn power_iteration(gf: &DMatrix<f64>, mut v: DVector<f64>, iters: usize) -> Result<f64, f64> {
    let mut lam = 0.0;
    for _ in 0..iters {
        let w = gf * &v;
        let nw = w.norm();
        if nw == 0.0 || !nw.is_finite() {
            return Err(nw);
        }
        lam = v.dot(&w);
        v = w / nw;
    }
    // Rayleigh quotient of the final vector (never above the true maximum).
    Ok(lam.max(v.dot(&(gf * &v))))
}

/// Squared Frobenius norm `||m||_F^2`, accumulated in f64.
pub(crate) fn sq_norm<T: Real>(m: &DMatrix<T>) -> f64 {
    m.as_slice().iter().map(|x| x.to_f64() * x.to_f64()).sum()
}

/// Squared Euclidean norm `||v||^2` of a vector, accumulated in f64.
pub(crate) fn sq_norm_vec<T: Real>(v: &DVector<T>) -> f64 {
    v.iter().map(|x| x.to_f64() * x.to_f64()).sum()
}

/// `||a - b||_F^2` in f64 (same shapes).
pub(crate) fn sq_diff<T: Real>(a: &DMatrix<T>, b: &DMatrix<T>) -> f64 {
    a.as_slice()
        .iter()
        .zip(b.as_slice())
        .map(|(x, y)| {
            let d = x.to_f64() - y.to_f64();
            d * d
        })
        .sum()
}

/// `(||a - b||_F^2, ||b||_F^2)` in one pass, each summed in entry order in f64 (bit for
/// bit [`sq_diff`] and [`sq_norm`]).
pub(crate) fn diff_and_norm<T: Real>(a: &DMatrix<T>, b: &DMatrix<T>) -> (f64, f64) {
    let mut d = 0.0;
    let mut n = 0.0;
    for (x, y) in a.as_slice().iter().zip(b.as_slice()) {
        let (x, y) = (x.to_f64(), y.to_f64());
        d += (x - y) * (x - y);
        n += y * y;
    }
    (d, n)
}

/// Frobenius inner product `<x, y> = sum_ij x_ij y_ij` in f64.
pub(crate) fn dot<T: Real>(x: &DMatrix<T>, y: &DMatrix<T>) -> f64 {
    x.as_slice()
        .iter()
        .zip(y.as_slice())
        .map(|(a, b)| a.to_f64() * b.to_f64())
        .sum()
}

/// Whether every entry of `m` is finite.
pub(crate) fn all_finite<T: Real>(m: &DMatrix<T>) -> bool {
    // Branch-free within a chunk (so it vectorizes), early exit between chunks.
    m.as_slice()
        .chunks(256)
        .all(|c| c.iter().fold(true, |ok, v| ok & v.finite()))
}

/// `Err(NonFinite(what()))` if any entry of `m` is NaN or infinite (the message is
/// built only on failure).
pub(crate) fn require_finite<T: Real>(
    m: &DMatrix<T>,
    what: impl FnOnce() -> String,
) -> Result<(), SolverError> {
    if all_finite(m) {
        Ok(())
    } else {
        Err(SolverError::NonFinite(what()))
    }
}

/// [`require_finite`] with a fixed message.
pub(crate) fn check_finite<T: Real>(m: &DMatrix<T>, what: &str) -> Result<(), SolverError> {
    require_finite(m, || what.to_string())
}

/// [`check_finite`] for vectors.
pub(crate) fn check_finite_vec<T: Real>(v: &DVector<T>, what: &str) -> Result<(), SolverError> {
    if v.iter().all(|x| x.finite()) {
        Ok(())
    } else {
        Err(SolverError::NonFinite(what.to_string()))
    }
}

/// Identifies a constant data matrix (address and shape), the thread count and up to two
/// hyperparameters that a cached quantity (e.g. `X X^T` or the Cholesky factor of a
/// system built from the inputs `X` of layer 1) was computed with, so that a solver can
/// reuse it bit for bit instead of recomputing it every sweep (issue #14). Solvers clear
/// it whenever they are (re)initialised or restored.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct InputKey {
    key: Option<(usize, usize, usize, usize, u64, u64)>,
}

impl InputKey {
    /// Forgets the cached quantity.
    pub(crate) fn clear(&mut self) {
        self.key = None;
    }

    /// [`InputKey::hit_with`] without hyperparameters.
    pub(crate) fn hit<T: Real>(&mut self, a: &DMatrix<T>, threads: usize) -> bool {
        self.hit_with(a, threads, [0.0, 0.0])
    }

    /// Whether the cached quantity was computed for `a`, `threads` and `params`; records
    /// that it now will be (the caller recomputes it on a miss).
    pub(crate) fn hit_with<T: Real>(
        &mut self,
        a: &DMatrix<T>,
        threads: usize,
        params: [f64; 2],
    ) -> bool {
        let k = Some((
            a.as_ptr() as usize,
            a.nrows(),
            a.ncols(),
            threads.max(1),
            params[0].to_bits(),
            params[1].to_bits(),
        ));
        let hit = self.key == k;
        self.key = k;
        hit
    }
}

/// The training set a solver's data-derived quantities were computed from, by
/// [`nets::Dataset::id`]: the [`InputKey`]s key by address, which a data set dropped
/// and replaced by another of the same shape can reuse (the allocator hands the freed
/// buffer back), so a solver also checks this at the start of every step and drops
/// its data-derived caches when the data set changed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct DataStamp(Option<u64>);

impl DataStamp {
    /// Whether `data` differs from the data set recorded last (or none was); records it.
    pub(crate) fn changed<T: Real>(&mut self, data: &nets::Dataset<T>) -> bool {
        let id = Some(data.id());
        std::mem::replace(&mut self.0, id) != id
    }

    /// Whether `data` is the data set recorded last (false if none was); records nothing.
    pub(crate) fn is<T: Real>(&self, data: &nets::Dataset<T>) -> bool {
        self.0 == Some(data.id())
    }
}

#[cfg(test)]
#[path = "tests_linalg.rs"]
mod tests;
