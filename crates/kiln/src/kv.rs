//! The storage seam: the five key-value operations Kiln needs, and an
//! in-memory implementation for tests.
//!
//! Every backend Spin offers (SQLite, Redis, Azure Cosmos DB, AWS DynamoDB)
//! implements these through `wasi:keyvalue` store and atomics, so the domain
//! never needs more than this.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// A failure of the store itself (I/O, backend unavailable). Callers turn it
/// into a `503 Service Unavailable`: the request may succeed when retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key-value store error: {0}")]
pub struct KvError(pub String);

/// A key-value store with compare-and-swap.
pub trait KvStore {
    /// The value under `key`, if any.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// Stores `value` under `key`, replacing any previous value.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError>;
    /// Removes `key`; removing an absent key is not an error.
    fn delete(&self, key: &str) -> Result<(), KvError>;
    /// Stores `new` under `key` only if the current value equals `expected`
    /// (`None`: the key is absent). Returns whether the swap happened.
    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, KvError>;
}

/// How many times a compare-and-swap loop retries before giving up: each
/// failed swap means another writer succeeded, so only a broken store (or
/// extreme contention) gets here.
pub const MAX_CAS_ATTEMPTS: usize = 1000;

/// The error of a compare-and-swap loop that never won.
pub fn contention(key: &str) -> KvError {
    KvError(format!("compare-and-swap on {key} kept failing"))
}

/// An in-memory [`KvStore`] for tests, with a switch that makes every call
/// fail as a broken backend would.
#[derive(Default)]
pub struct MemoryKv {
    entries: Mutex<BTreeMap<String, Vec<u8>>>,
    failing: AtomicBool,
}

impl MemoryKv {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every subsequent call fail (`true`) or succeed again (`false`).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// All keys currently stored, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic while holding the lock cannot leave the map half-updated:
        // every operation is a single map call.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self) -> Result<(), KvError> {
        if self.failing.load(Ordering::SeqCst) {
            Err(KvError("injected fault".into()))
        } else {
            Ok(())
        }
    }
}

impl KvStore for MemoryKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.check()?;
        Ok(self.lock().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.check()?;
        self.lock().insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.check()?;
        self.lock().remove(key);
        Ok(())
    }

    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, KvError> {
        self.check()?;
        let mut entries = self.lock();
        if entries.get(key).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        entries.insert(key.to_owned(), new.to_vec());
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_and_swap_creates_only_when_absent() {
        let kv = MemoryKv::new();
        assert!(kv.compare_and_swap("k", None, b"a").unwrap());
        assert!(!kv.compare_and_swap("k", None, b"b").unwrap());
        assert_eq!(kv.get("k").unwrap().as_deref(), Some(&b"a"[..]));
    }

    #[test]
    fn compare_and_swap_fails_after_a_concurrent_write() {
        let kv = MemoryKv::new();
        kv.set("k", b"v1").unwrap();
        kv.set("k", b"v2").unwrap();
        assert!(!kv.compare_and_swap("k", Some(b"v1"), b"mine").unwrap());
        assert!(kv.compare_and_swap("k", Some(b"v2"), b"mine").unwrap());
    }

    #[test]
    fn failing_store_reports_errors_instead_of_data() {
        let kv = MemoryKv::new();
        kv.set("k", b"v").unwrap();
        kv.set_failing(true);
        assert!(kv.get("k").is_err());
        kv.set_failing(false);
        assert_eq!(kv.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    }
}
