//! Test-only tallies of the evaluations that touch every (local) sample, noted where
//! they happen, independently of the pass counters of [`super::TaylorAdmm::iterate`]: layer
//! maps `W_l A_{l-1} + b_l` over the samples (the initial forward pass, each Z-step, a
//! multiplier step that cannot reuse the Z_L product), the W-step's sums over samples,
//! the A-step's products with the transposed weights, and the evaluations of the
//! augmented objective for the step report (not data passes by the schema's rule).

use std::cell::Cell;
thread_local! {
    pub(crate) static LAYER_MAPS: Cell<u64> = const { Cell::new(0) };
    pub(crate) static SAMPLE_SUMS: Cell<u64> = const { Cell::new(0) };
    pub(crate) static TRANSPOSED: Cell<u64> = const { Cell::new(0) };
    pub(crate) static REPORT: Cell<u64> = const { Cell::new(0) };
}
pub(crate) fn note(c: &'static std::thread::LocalKey<Cell<u64>>) {
    c.with(|v| v.set(v.get() + 1));
}
/// (layer maps, sample sums, transposed products, report values) so far on this
/// thread.
pub(crate) fn read() -> [u64; 4] {
    [
        LAYER_MAPS.with(Cell::get),
        SAMPLE_SUMS.with(Cell::get),
        TRANSPOSED.with(Cell::get),
        REPORT.with(Cell::get),
    ]
}
