//! Fault injection: failing key-value calls and crashing components on chosen writes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The message of the store error returned while key-value failure is switched on.
pub const INJECTED_FAULT: &str = "injected fault";

/// Controls faults injected into one running [`Host`](crate::Host); clones share the settings.
#[derive(Clone, Debug, Default)]
pub struct FaultHandle {
    inner: Arc<FaultState>,
}

#[derive(Debug, Default)]
struct FaultState {
    kv_failing: AtomicBool,
    swaps_misreported: AtomicBool,
    write_traps: Mutex<Vec<WriteTrap>>,
}

#[derive(Debug)]
struct WriteTrap {
    component: String,
    key_prefix: String,
    remaining: u32,
}

impl FaultHandle {
    /// Switches key-value failure on or off. While on, every key-value call of every component
    /// (both `fermyon:spin/key-value` and `wasi:keyvalue`, including `open`) returns the store
    /// error `other("injected fault")` to the guest; nothing is read or written.
    pub fn fail_kv(&self, on: bool) {
        self.inner.kv_failing.store(on, Ordering::SeqCst);
    }

    /// Traps the instance of `component` the next `times` times it writes (`set`, CAS `swap`
    /// or `set-many`) a key starting with `key_prefix`, before the write happens. The guest
    /// sees no error: its instance dies mid-call, as a crashing process would.
    pub fn trap_writes(&self, component: &str, key_prefix: &str, times: u32) {
        self.lock_traps().push(WriteTrap {
            component: component.to_owned(),
            key_prefix: key_prefix.to_owned(),
            remaining: times,
        });
    }

    /// How many armed write traps have not fired yet (summed over all rules).
    pub fn pending_write_traps(&self) -> u32 {
        self.lock_traps().iter().map(|t| t.remaining).sum()
    }

    /// Emulates, on the in-memory store, what Spin 4.0.2's Redis store does:
    /// every `swap` answers `cas-failed`, whether or not it wrote (its
    /// `UNWATCH key` is rejected by Redis, as UNWATCH takes no argument, and
    /// redis-rs reads an aborted `EXEC` as success anyway). The write itself
    /// still happens only when the snapshot is current. A store on Redis
    /// ([`KeyValueStore::redis`](crate::KeyValueStore::redis)) does this by
    /// itself, so there the switch changes nothing.
    pub fn misreport_swaps(&self, on: bool) {
        self.inner.swaps_misreported.store(on, Ordering::SeqCst);
    }

    pub(crate) fn swaps_misreported(&self) -> bool {
        self.inner.swaps_misreported.load(Ordering::SeqCst)
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.fail_kv(false);
        self.misreport_swaps(false);
        self.lock_traps().clear();
    }

    pub(crate) fn kv_failing(&self) -> bool {
        self.inner.kv_failing.load(Ordering::SeqCst)
    }

    /// Consumes one armed trap matching a write by `component` of `key`, returning whether the
    /// write must trap.
    pub(crate) fn take_write_trap(&self, component: &str, key: &str) -> bool {
        let mut traps = self.lock_traps();
        let hit = traps.iter_mut().find(|t| {
            t.remaining > 0 && t.component == component && key.starts_with(&t.key_prefix)
        });
        match hit {
            Some(trap) => {
                trap.remaining -= 1;
                traps.retain(|t| t.remaining > 0);
                true
            }
            None => false,
        }
    }

    fn lock_traps(&self) -> std::sync::MutexGuard<'_, Vec<WriteTrap>> {
        self.inner
            .write_traps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_trap_fires_the_requested_number_of_times() {
        let faults = FaultHandle::default();
        faults.trap_writes("processor", "job:", 2);
        assert!(faults.take_write_trap("processor", "job:1"));
        assert!(faults.take_write_trap("processor", "job:2"));
        assert!(!faults.take_write_trap("processor", "job:3"));
        assert_eq!(faults.pending_write_traps(), 0);
    }

    #[test]
    fn write_trap_only_matches_its_component_and_prefix() {
        let faults = FaultHandle::default();
        faults.trap_writes("processor", "job:", 1);
        assert!(!faults.take_write_trap("submit", "job:1"));
        assert!(!faults.take_write_trap("processor", "image:1"));
        assert_eq!(faults.pending_write_traps(), 1);
    }

    #[test]
    fn clear_removes_all_faults() {
        let faults = FaultHandle::default();
        faults.fail_kv(true);
        faults.misreport_swaps(true);
        faults.trap_writes("processor", "", 5);
        faults.clear();
        assert!(!faults.kv_failing());
        assert!(!faults.swaps_misreported());
        assert!(!faults.take_write_trap("processor", "x"));
    }
}
