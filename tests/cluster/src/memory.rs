//! Sampling the memory of the replicas' `spin trigger http` servers while
//! a scenario runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::cluster::Cluster;

/// What the samples saw.
#[derive(Default, Clone, Copy)]
pub struct Peaks {
    /// The most resident memory (VmRSS) any one sample saw, in bytes.
    pub resident: u64,
    /// Samples taken.
    pub samples: u64,
}

/// Samples every replica every `every` until `stop` is set: each
/// replica's `VmHWM` goes into its [`peak`](crate::cluster::Replica::peak)
/// (kept over restarts), the highest `VmRSS` seen into the answer. A
/// replica being restarted (its lock held by the chaos) is skipped.
pub fn sample_until(cluster: &Cluster, every: Duration, stop: &AtomicBool) -> Peaks {
    let mut peaks = Peaks::default();
    while !stop.load(Ordering::SeqCst) {
        for replica in &cluster.replicas {
            if let Ok(mut replica) = replica.try_lock()
                && let Some(resident) = replica.sample()
            {
                peaks.resident = peaks.resident.max(resident);
            }
        }
        peaks.samples += 1;
        std::thread::sleep(every);
    }
    peaks
}

/// The machine's memory (`MemTotal` of `/proc/meminfo`), in bytes.
pub fn machine_total() -> u64 {
    meminfo("MemTotal:")
}

fn meminfo(field: &str) -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// A guard against taking the whole machine down: samples like
/// [`sample_until`], and SIGKILLs every replica's process group as soon as
/// one server holds more than `limit` bytes (an unbounded burst). Returns
/// the peaks, and whether it had to kill.
pub fn sample_with_limit(
    cluster: &Cluster,
    every: Duration,
    limit: u64,
    stop: &AtomicBool,
) -> (Peaks, bool) {
    let mut peaks = Peaks::default();
    let started = std::time::Instant::now();
    let mut last_report = started;
    while !stop.load(Ordering::SeqCst) {
        // A line every 30 s: when the peak came (the burst, or the drain).
        let report = last_report.elapsed() >= Duration::from_secs(30);
        if report {
            last_report = std::time::Instant::now();
        }
        for replica in &cluster.replicas {
            let Ok(mut replica) = replica.try_lock() else {
                continue;
            };
            let Some(resident) = replica.sample() else {
                continue;
            };
            peaks.resident = peaks.resident.max(resident);
            if report {
                println!(
                    "  memory: {} after {:.0} s (peak so far {})",
                    crate::report::mib(resident),
                    started.elapsed().as_secs_f64(),
                    crate::report::mib(peaks.resident)
                );
            }
            if resident > limit {
                println!(
                    "  MEMORY GUARD: a server holds {} (limit {}): killing the replicas",
                    crate::report::mib(resident),
                    crate::report::mib(limit)
                );
                replica.process.kill();
                return (peaks, true);
            }
        }
        peaks.samples += 1;
        std::thread::sleep(every);
    }
    (peaks, false)
}

/// A server's resident memory, split between its Wasm instances and Spin
/// itself. Kiln's bound holds the first (each running job's linear memory);
/// the second is Spin's host (its heap, connections, key-value store and
/// code pages), which Kiln does not control.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    /// Resident pages of Wasmtime's pool of linear memories: the running
    /// instances' memories, and what it keeps of slots used before, in
    /// bytes. (Its stacks and tables are reserved apart, and small: they
    /// count as host.)
    pub wasm: u64,
    /// Everything else, in bytes.
    pub host: u64,
}

/// Spin reserves address space for 1,000 linear memories of 4 GiB each up
/// front: the only anonymous region this large in the process.
const POOL_SPAN: u64 = 1 << 40;

/// How Wasmtime names the memfd holding a module's initial memory.
const WASM_MEMORY_IMAGE: &str = "/memfd:wasm-memory-image";

/// The size and alignment of a glibc malloc arena's heap (`HEAP_MAX_SIZE`
/// on 64-bit): a read-write mapping at an aligned address, then its
/// reserved rest up to the next boundary.
const ARENA_HEAP: u64 = 64 << 20;

/// Reads `/proc/PID/smaps`: the resident pages of the run of adjacent
/// anonymous mappings spanning at least [`POOL_SPAN`] (Wasmtime splits its
/// reservation into pieces as it commits memories) are Wasm; the rest is
/// host. `None` once the process is gone, or when it has no such pool
/// (pooling turned off).
pub fn split(pid: i32) -> Option<Split> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    split_smaps(&smaps)
}

/// One mapping of smaps.
struct Mapping {
    start: u64,
    end: u64,
    /// No file behind it (or only a Wasm memory image).
    anonymous: bool,
    resident: u64,
}

impl Mapping {
    /// Whether this mapping and the one after it are a malloc arena's heap,
    /// which the kernel may place right against the Wasm pool: its used
    /// part, then its reserved rest up to the next boundary. (A Wasm
    /// memory's committed part is followed by the rest of a 4 GiB slot; an
    /// arena grown to its whole 64 MiB is counted with its neighbours.)
    fn starts_arena_heap(&self, next: Option<&Mapping>) -> bool {
        let heap_end = self.start + ARENA_HEAP;
        self.anonymous
            && self.start.is_multiple_of(ARENA_HEAP)
            && next.is_some_and(|n| n.anonymous && n.start == self.end && n.end == heap_end)
    }
}

fn mappings(smaps: &str) -> Vec<Mapping> {
    let mut mappings: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        if let Some(kib) = line.strip_prefix("Rss:") {
            if let Some(last) = mappings.last_mut() {
                let kib: u64 = kib
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .unwrap_or(0);
                last.resident += kib * 1024;
            }
            continue;
        }
        let mut fields = line.split_whitespace();
        let Some((start, end)) = fields.next().and_then(|range| range.split_once('-')) else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        else {
            // A field line (`Size:`, `Pss:`…), not a mapping's header.
            continue;
        };
        // perms, offset, device, inode, then the path if any. Wasmtime
        // maps a module's initial memory image copy-on-write from a memfd
        // inside the memory's slot.
        let inode = fields.nth(3);
        let path = fields.next();
        mappings.push(Mapping {
            start,
            end,
            anonymous: (inode == Some("0") && path.is_none())
                || path.is_some_and(|path| path.starts_with(WASM_MEMORY_IMAGE)),
            resident: 0,
        });
    }
    mappings
}

fn split_smaps(smaps: &str) -> Option<Split> {
    let mappings = mappings(smaps);
    let mut split = Split::default();
    let mut pool_found = false;
    // Runs of adjacent anonymous mappings, arena heaps apart.
    let joins = |i: usize| -> bool {
        let m = &mappings[i];
        m.anonymous && !m.starts_arena_heap(mappings.get(i + 1))
    };
    let mut index = 0;
    while index < mappings.len() {
        let first = &mappings[index];
        let mut last = index;
        if joins(index) {
            while last + 1 < mappings.len()
                && mappings[last + 1].start == mappings[last].end
                && joins(last + 1)
            {
                last += 1;
            }
        }
        let resident: u64 = mappings[index..=last].iter().map(|m| m.resident).sum();
        if mappings[last].end - first.start >= POOL_SPAN {
            pool_found = true;
            split.wasm += resident;
        } else {
            split.host += resident;
        }
        index = last + 1;
    }
    pool_found.then_some(split)
}

/// The highest [`Split`] figures samples of one server saw, each on its own.
#[derive(Default, Clone, Copy, Debug)]
pub struct SplitPeaks {
    pub wasm: u64,
    pub host: u64,
}

/// Samples [`split`] of server `pid` every `every` until `stop` is set
/// (all zero when it cannot be split).
/// Reading smaps costs a few milliseconds, so this samples less often than
/// [`sample_with_limit`]; a job holds its peak for seconds.
pub fn sample_split_until(pid: i32, every: Duration, stop: &AtomicBool) -> SplitPeaks {
    let mut peaks = SplitPeaks::default();
    while !stop.load(Ordering::SeqCst) {
        let Some(now) = split(pid) else {
            break;
        };
        peaks.wasm = peaks.wasm.max(now.wasm);
        peaks.host = peaks.host.max(now.host);
        std::thread::sleep(every);
    }
    peaks
}

/// Runs `work` while sampling the split of server `pid`.
pub fn split_during<T>(pid: i32, work: impl FnOnce() -> T) -> (T, SplitPeaks) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let sampler = scope.spawn(|| sample_split_until(pid, Duration::from_millis(250), &stop));
        let answer = work();
        stop.store(true, Ordering::SeqCst);
        (answer, sampler.join().expect("the memory sampler"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pooling_reservation_is_wasm_and_everything_else_host() {
        // Trimmed from a real `spin trigger http` during a job: the pool's
        // committed pieces (one with a memory image, one exactly 64 MiB at
        // an aligned address) sit between reserved ones, and a malloc
        // arena's heap follows right after the pool.
        let smaps = "\
559758a9b000-55975d0a1000 r-xp 01a03000 fe:00 10117129 /spin
Size:              72000 kB
Rss:               40000 kB
7bb1a8000000-7bb1a8021000 rw-p 00000000 00:00 0
Rss:                 132 kB
7bb2d4120000-7bb3d6000000 ---p 00000000 00:00 0
Rss:                   0 kB
7bb3d619a000-7bb3d6200000 rw-p 00000000 00:00 0
Rss:                 408 kB
7bb3d6200000-7bb3d629a000 rw-p 00000000 00:01 16092 /memfd:wasm-memory-image (deleted)
Rss:                 200 kB
7bb3d629a000-7bb3e3c20000 rw-p 00000000 00:00 0
Rss:              223136 kB
7bb3e3c20000-7bb400000000 ---p 00000000 00:00 0
Rss:                   0 kB
7bb400000000-7bb404000000 rw-p 00000000 00:00 0
Rss:               65536 kB
7bb404000000-7fa2a4000000 ---p 00000000 00:00 0
Rss:                   0 kB
7fa2a4000000-7fa2a4062000 rw-p 00000000 00:00 0
Rss:                 200 kB
7fa2a4062000-7fa2a8000000 ---p 00000000 00:00 0
Rss:                   0 kB
7ffd1000000-7ffd1021000 rw-p 00000000 00:00 0 [stack]
Rss:                 136 kB
";
        assert_eq!(
            split_smaps(smaps),
            Some(Split {
                wasm: (223744 + 65536) * 1024,
                host: (40000 + 132 + 200 + 136) * 1024,
            })
        );
        let without_pool: String = smaps.lines().take(4).map(|l| format!("{l}\n")).collect();
        assert_eq!(split_smaps(&without_pool), None);
    }
}
