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
