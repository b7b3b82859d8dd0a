//! Unit tests of the crate (one binary, to keep link time small).

mod activation_tests;
mod fenchel_tests;
mod init_tests;
mod loss_prox_tests;
mod loss_tests;
mod net_tests;
mod persist_tests;
mod prox_tests;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::Activation;

pub(crate) fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Uniform on [lo, hi).
pub(crate) fn unif(r: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * crate::init::uniform01(r)
}

pub(crate) fn all_activations() -> Vec<Activation> {
    vec![
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu { slope: 0.1 },
        Activation::LeakyRelu { slope: 0.0 },
        Activation::LeakyRelu { slope: -0.3 },
        Activation::LeakyRelu { slope: 2.5 },
        Activation::Elu { alpha: 1.0 },
        Activation::Elu { alpha: 0.5 },
        Activation::Elu { alpha: 2.0 },
        Activation::Elu { alpha: -0.5 },
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softplus,
    ]
}

/// Counts allocations per thread, so tests can assert "no allocation at steady state"
/// while other tests run in parallel threads.
mod counting_alloc {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        pub(super) static ALLOCS: Cell<u64> = const { Cell::new(0) };
    }

    pub(super) struct Counting;

    fn bump() {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
    }

    // SAFETY: forwards every call to the system allocator unchanged.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            bump();
            // SAFETY: same contract as the caller's.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: same contract as the caller's.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            bump();
            // SAFETY: same contract as the caller's.
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            bump();
            // SAFETY: same contract as the caller's.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;
}

/// Allocations made so far by the current thread.
pub(crate) fn alloc_count() -> u64 {
    counting_alloc::ALLOCS.with(|c| c.get())
}
