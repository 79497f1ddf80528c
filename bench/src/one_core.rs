//! Native runs held to one core, to compare like with like: a Wasm instance
//! runs on one thread, but natively `jpeg-decoder` (Kiln's shrink-on-load
//! decoder) starts a worker thread per colour component for its inverse
//! DCTs whenever it builds without `rayon`, so a native decode also uses
//! the machine's other cores. Threads inherit their creator's CPU affinity,
//! so work run here, and every thread it starts, shares one core.

/// Runs `work` on a new thread whose CPU affinity (and so that of every
/// thread it starts) is the one core the caller is running on; returns
/// what it returns and whether it was held to one core (only on Linux).
pub fn on_one_core<T: Send>(work: impl FnOnce() -> T + Send) -> (T, bool) {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let pinned = pin_to_current_core();
                (work(), pinned)
            })
            .join()
            .expect("the benchmarked work panicked")
    })
}

#[cfg(target_os = "linux")]
fn pin_to_current_core() -> bool {
    // SAFETY: `cpu_set_t` is plain data, zeroed is an empty set; the calls
    // read and write only the set passed by pointer, with its size.
    unsafe {
        let Ok(cpu) = usize::try_from(libc::sched_getcpu()) else {
            return false;
        };
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn pin_to_current_core() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The work and the threads it starts see exactly one allowed CPU.
    #[test]
    #[cfg(target_os = "linux")]
    fn work_and_its_threads_are_held_to_one_core() {
        let before = allowed_cpus();
        let (allowed, pinned) = on_one_core(|| {
            let inner = std::thread::spawn(allowed_cpus).join().unwrap();
            (allowed_cpus(), inner)
        });
        assert!(pinned);
        assert_eq!(allowed, (1, 1));
        // The caller's own affinity is untouched.
        assert_eq!(allowed_cpus(), before);
    }

    #[cfg(target_os = "linux")]
    fn allowed_cpus() -> usize {
        // SAFETY: as in `pin_to_current_core`.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            assert_eq!(
                libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
                0
            );
            usize::try_from(libc::CPU_COUNT(&set)).unwrap()
        }
    }
}
