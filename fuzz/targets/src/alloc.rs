//! The allocation cap: the system allocator, noting the largest single
//! allocation each thread asks for and, in a fuzzing binary, aborting on
//! one over the target's [`Kind::max_alloc_mb`](crate::Kind::max_alloc_mb).
//!
//! libFuzzer's `-malloc_limit_mb` does the same, but only through a
//! sanitizer's allocator hooks: this holds without one too (`scripts/fuzz
//! --sanitizer none`), and in the stable replay test, which reports the
//! input rather than aborting.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// The system allocator with a cap on any one allocation.
pub struct Capped {
    limit: usize,
    abort: bool,
}

impl Capped {
    /// Aborts the process, as a crash the fuzzer records, on an allocation
    /// of more than `limit` bytes.
    pub const fn aborting_over(limit: usize) -> Capped {
        Capped { limit, abort: true }
    }

    /// Only notes the largest allocation, for [`largest`] to read.
    pub const fn noting() -> Capped {
        Capped {
            limit: usize::MAX,
            abort: false,
        }
    }

    fn note(&self, size: usize) {
        // `try_with`: a thread's own teardown may allocate after its
        // locals are gone.
        let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
        if self.abort && size > self.limit {
            over_the_limit();
        }
    }
}

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// The largest allocation this thread made since the last call, in bytes.
pub fn largest() -> usize {
    LARGEST.with(|largest| largest.replace(0))
}

/// Says why, once, and aborts (a panic could be caught, and unwinding
/// allocates).
#[cold]
fn over_the_limit() -> ! {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::SeqCst) {
        let _ = std::io::stderr()
            .write_all(b"==kiln-fuzz== ERROR: one allocation over the target's max_alloc_mb\n");
    }
    std::process::abort()
}

// SAFETY: every call goes to `System` unchanged; the cap only refuses
// (aborts) before it.
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.note(layout.size());
        // SAFETY: the caller's guarantees, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.note(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.note(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
