//! The counting allocator, installed as this test binary's global allocator.

use bench_suite::memory::{
    CountingAllocator, PeakScope, counting_installed, current_bytes, memory_method,
};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

#[test]
fn peak_scope_measures_a_temporary_allocation() {
    let keep: Vec<u8> = vec![1; 1000];
    assert!(counting_installed());
    assert_eq!(memory_method(), "counting_allocator");
    let scope = PeakScope::start();
    let before = current_bytes();
    {
        let big = vec![7u8; 4 << 20];
        assert_eq!(big[123], 7);
    }
    let peak = scope.peak_increase().unwrap();
    // Other test threads may allocate concurrently; this is the only test here.
    assert!(peak >= 4 << 20, "peak {peak}");
    assert!(peak < (4 << 20) + (1 << 20), "peak {peak}");
    assert!(current_bytes() < before + (1 << 20));
    let scope2 = PeakScope::start();
    let grown: Vec<u64> = (0..100_000).collect();
    let p2 = scope2.peak_increase().unwrap();
    assert!((800_000..3_000_000).contains(&p2), "{p2}");
    assert_eq!(grown.len() + keep.len(), 101_000);
}
