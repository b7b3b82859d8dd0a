//! Unit tests of the crate (one binary, to keep link time small).

mod activation_cap_tests;
mod activation_tests;
mod fenchel_tests;
mod from_weights_tests;
mod init_tests;
mod loss_prox_tests;
mod loss_tests;
mod nan_tests;
mod net_alloc_tests;
mod net_tests;
mod params_tests;
mod persist_tests;
mod prox_tests;
mod train_outputs_tests;

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

mod dataset_tests {
    use crate::{Dataset, DatasetError, Targets};
    use nalgebra::{DMatrix, dmatrix};

    #[test]
    fn batches_select_columns_and_targets() {
        let x = dmatrix![1.0, 2.0, 3.0; 4.0, 5.0, 6.0];
        let d = Dataset::new(
            x,
            Targets::Labels {
                labels: vec![0, 2, 1],
                classes: 3,
            },
        )
        .unwrap();
        let mut bx = DMatrix::zeros(0, 0);
        let mut bt = Targets::Dense(DMatrix::zeros(0, 0));
        d.batch_into(&[2, 0, 2], &mut bx, &mut bt).unwrap();
        assert_eq!(bx, dmatrix![3.0, 1.0, 3.0; 6.0, 4.0, 6.0]);
        assert_eq!(
            bt,
            Targets::Labels {
                labels: vec![1, 0, 1],
                classes: 3
            }
        );
        // Steady state: same sizes, no allocation.
        let before = super::alloc_count();
        d.batch_into(&[1, 1, 0], &mut bx, &mut bt).unwrap();
        assert_eq!(super::alloc_count(), before);
        assert_eq!(
            bt,
            Targets::Labels {
                labels: vec![2, 2, 0],
                classes: 3
            }
        );
        let e = d.batch_into(&[0, 3], &mut bx, &mut bt).unwrap_err();
        assert_eq!(e, DatasetError::IndexOutOfRange { index: 3, len: 3 });
        assert!(
            e.to_string()
                .contains("index 3 is out of range for 3 samples")
        );
        let dense = Targets::Dense(dmatrix![0.5, 0.25, 0.0]);
        assert_eq!(dense.select(&[1]).unwrap(), Targets::Dense(dmatrix![0.25]));
        let sub = d.subset(&[1]).unwrap();
        assert_eq!((sub.len(), sub.input_dim()), (1, 2));
        assert_eq!(d.subset(&[]).unwrap_err(), DatasetError::Empty);
    }
}
