//! Peak-memory measurement.
//!
//! Two tools:
//! - [`CountingAllocator`]: a global allocator wrapping the system one that counts the
//!   live heap bytes and their high-water mark. The comparison binary installs it
//!   (`#[global_allocator] static A: CountingAllocator = CountingAllocator;`), and the
//!   runner brackets each (problem, solver, seed) with [`PeakScope::start`] /
//!   [`PeakScope::peak_increase`]: the reported peak is the largest heap in use during the
//!   run minus the heap in use when it started. This is per run even inside one
//!   process, which is why it is the method the runner uses.
//! - [`vm_hwm_bytes`]: the kernel's `VmHWM` (peak resident set) from `/proc/self/status`
//!   (Linux only). It is a PROCESS-WIDE high-water mark that never goes down, so it only
//!   measures one run if each run has its own child process; it is kept as a fallback
//!   and a cross-check (it also counts code, stacks and non-heap mappings).
//!
//! The counters are global atomics (relaxed ordering: exact under one thread, a close
//! bound with several). They cost two atomic adds per allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// A global allocator that forwards to [`System`] and counts live and peak heap bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountingAllocator;

#[inline]
fn on_alloc(size: usize) {
    let now = CURRENT.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

#[inline]
fn on_dealloc(size: usize) {
    CURRENT.fetch_sub(size, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged and
// only adds bookkeeping on atomics, so `System`'s guarantees carry over.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            INSTALLED.store(true, Ordering::Relaxed);
            on_alloc(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            INSTALLED.store(true, Ordering::Relaxed);
            on_alloc(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) };
        on_dealloc(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            on_dealloc(layout.size());
            on_alloc(new_size);
        }
        p
    }
}

/// Whether a [`CountingAllocator`] is the process's global allocator (it has served
/// at least one allocation).
pub fn counting_installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// Heap bytes currently allocated through the counting allocator (0 if not installed).
pub fn current_bytes() -> usize {
    CURRENT.load(Ordering::Relaxed)
}

/// High-water mark of [`current_bytes`] since the last [`reset_peak`].
pub fn peak_bytes() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Lowers the high-water mark to the current usage and returns that usage.
pub fn reset_peak() -> usize {
    let now = CURRENT.load(Ordering::Relaxed);
    PEAK.store(now, Ordering::Relaxed);
    now
}

/// Measures the peak extra heap of one run (see the module doc).
#[derive(Clone, Copy, Debug)]
pub struct PeakScope {
    baseline: usize,
}

impl PeakScope {
    /// Resets the high-water mark and remembers the heap in use now.
    pub fn start() -> Self {
        Self {
            baseline: reset_peak(),
        }
    }

    /// Peak heap since [`PeakScope::start`] minus the heap in use at the start, or
    /// `None` if the counting allocator is not installed.
    pub fn peak_increase(&self) -> Option<u64> {
        counting_installed().then(|| peak_bytes().saturating_sub(self.baseline) as u64)
    }
}

/// The measuring method in use, for [`crate::results::RunMetadata::memory_method`]:
/// `"counting_allocator"` if installed, else `"vmhwm"` if `/proc/self/status` is
/// readable, else `"none"`.
pub fn memory_method() -> &'static str {
    if counting_installed() {
        "counting_allocator"
    } else if vm_hwm_bytes().is_some() {
        "vmhwm"
    } else {
        "none"
    }
}

/// Parses a `Vm...:   1234 kB` line value of `/proc/self/status` into bytes.
fn proc_status_field(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        let mut parts = rest.split_whitespace();
        let value: u64 = parts.next()?.parse().ok()?;
        match parts.next() {
            Some("kB") => Some(value * 1024),
            None => Some(value),
            Some(_) => None,
        }
    })
}

/// The process's peak resident set size (`VmHWM`) in bytes, if `/proc/self/status` is
/// readable (Linux). Process-wide and monotone: see the module doc.
pub fn vm_hwm_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    proc_status_field(&status, "VmHWM")
}

/// The process's current resident set size (`VmRSS`) in bytes, if readable (Linux).
pub fn vm_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    proc_status_field(&status, "VmRSS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status_fields() {
        let s = "Name:\tx\nVmHWM:\t   2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(proc_status_field(s, "VmHWM"), Some(2048 * 1024));
        assert_eq!(proc_status_field(s, "VmRSS"), Some(1024 * 1024));
        assert_eq!(proc_status_field(s, "VmPeak"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn vm_hwm_and_rss_are_plausible() {
        // The kernel updates VmHWM lazily (per-thread RSS counters are folded in at
        // intervals), so VmHWM may briefly lag VmRSS: only check plausible magnitudes.
        let rss = vm_rss_bytes().expect("VmRSS readable on Linux");
        let hwm = vm_hwm_bytes().expect("VmHWM readable on Linux");
        assert!(
            rss > 1 << 20,
            "a test process uses more than 1 MiB: rss {rss}"
        );
        assert!(hwm > 1 << 20 && hwm < 1 << 40, "hwm {hwm}");
    }
}
