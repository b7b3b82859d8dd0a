//! ADMM training of deep networks: the layer equations are split with lifted
//! variables `Z_l` (pre-activations) and `A_l` (activations), one column per training
//! sample, and every block is solved in closed form or by a short inner solve.
//!
//! * [`TaylorAdmm`]: Taylor et al., ICML 2016 (ALGORITHMS.md 2): least-squares W-steps,
//!   closed-form A- and Z-steps, a Bregman multiplier on the output equation only.
//! * [`DlAdmm`]: Wang et al., KDD 2019 (ALGORITHMS.md 3): backward-then-forward sweeps
//!   of majorized (backtracked) W- and A-steps, exact b- and Z-steps, a dual step.
//!
//! Scale conventions: the losses inside the splitting are SUMMED over samples and the
//! penalty weights (gamma, beta, nu, rho) are per sample, as in both papers; when the
//! problem's loss is a Mean, the solvers multiply their reported surrogate by 1/N so it
//! sits next to the true objective, and rescale the L2 weight penalty to the sum scale.
//!
//! Memory: the lifted variables take `N (sum_{l<L} 2 d_l + d_L)` numbers (`Z_l` and
//! `A_l` of every hidden layer, `Z_L`), plus a few `d_L x N` matrices (the output
//! multiplier, the previous output product for the dual residual, dense targets or the
//! output-loss gradient), at most two scratch matrices of the widest layer (their
//! buffers are reused across layers) and, with `P > 1` threads, `P` chunk buffers of
//! `256 (d_{l-1} + d_l)` numbers; never a second copy of all lifted variables.
//! Checkpoints (save_state) serialise the lifted variables and the multiplier.
//!
//! Threads: the sample reductions of the W-step (`A A^T`, `Z A^T`, row sums) run
//! data-parallel with rayon over fixed 256-column chunks dealt into `threads`
//! contiguous groups, summed in group order (bit-identical for a given thread count);
//! the GEMMs inside a parallel chunk loop are single-threaded (no nested pools). The
//! other products (affine maps, A-steps) pass `threads` to the GEMM wrapper, outside
//! any chunk loop. With one thread (the default) rayon is not used.

mod checks;
mod config;
mod dladmm;
mod dladmm_solver;
mod lifted;
mod linalg;
mod output;
mod output_pg;
mod output_softmax;
mod taylor;
mod taylor_solver;

pub use config::{
    DlAdmmConfig, DlPenalty, OutputLoss, SAMPLE_CHUNK, TaylorConfig, TaylorStart, ZlSolver,
};
pub use dladmm::{DlAdmm, DlBlock, DlStepInfo};
pub use lifted::{Lifted, Residuals};
pub use taylor::{TaylorAdmm, TaylorBlock, TaylorStepInfo};

/// Benchmark hook (issue #14, `core_speed sums`): the W-step's sample sums
/// `A A^T`, `Z A^T`, `A 1`, `Z 1` of `a` (`p x N`) and `z` (`q x N`) at `threads`, `reps`
/// times on one kept workspace (the first call warms it), as the ADMM solvers compute
/// them. Returns `sum(A A^T) + sum(Z A^T)` of the last call, so that the work is used.
#[doc(hidden)]
pub fn bench_sample_sums<T: autodiff::Real>(
    a: &nalgebra::DMatrix<T>,
    z: &nalgebra::DMatrix<T>,
    threads: usize,
    reps: usize,
) -> Result<f64, crate::SolverError> {
    let mut work = linalg::SumsWork::default();
    let mut out = linalg::SampleSums::default();
    for _ in 0..reps {
        linalg::sample_sums(a, z, threads, &mut work, &mut out)?;
    }
    let total = |m: &nalgebra::DMatrix<T>| m.iter().map(|v| v.to_f64()).sum::<f64>();
    Ok(total(&out.gram) + total(&out.cross))
}

#[cfg(test)]
mod tests_dladmm;
#[cfg(test)]
mod tests_dladmm_ref;
#[cfg(test)]
mod tests_taylor;
#[cfg(test)]
mod tests_taylor_start;
