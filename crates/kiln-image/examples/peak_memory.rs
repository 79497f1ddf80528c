//! Prints the peak heap use of `process` on a file (all threads, counted by
//! a global allocator), beside the size of the file's RGBA frame.
//!
//! ```text
//! cargo run --release -p kiln-image --example peak_memory -- photo.jpg [ops]
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};

use kiln_image::{Limits, parse_ops, probe, process};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to `System` unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: as the caller promised for `layout`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: as the caller promised for `layout`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: as the caller promised for `ptr` and `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Counted as the new block allocated before the old one is freed,
        // which is what a moving realloc holds at its peak.
        grew(new_size);
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: as the caller promised for `ptr`, `layout` and `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn grew(size: usize) {
    ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
    let now = CURRENT.fetch_add(size, Ordering::SeqCst) + size;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: peak_memory FILE [OPS]");
    let spec = args
        .next()
        .unwrap_or_else(|| "resize(w=1600),sharpen(sigma=1),quality(82),format(jpeg)".into());
    let bytes = std::fs::read(&path).expect("reading the file");
    let ops = parse_ops(&spec).expect("valid ops");
    let info = probe(&bytes).expect("a supported image");
    let rgba = info.pixels() * 4;

    let before = CURRENT.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    ALLOCATIONS.store(0, Ordering::SeqCst);
    let output = process(&bytes, &ops, &Limits::default(), &mut |_| {
        ControlFlow::Continue(())
    })
    .expect("processing");
    let peak = PEAK.load(Ordering::SeqCst) - before;
    let mb = |bytes: u64| bytes as f64 / 1e6;
    println!(
        "{path}: {spec} -> {}x{}\n  peak heap {:.1} MB (input file not counted), {} allocations; RGBA frame {:.1} MB; ratio {:.2}",
        output.width,
        output.height,
        mb(peak as u64),
        ALLOCATIONS.load(Ordering::SeqCst),
        mb(rgba),
        peak as f64 / rgba as f64
    );
}
