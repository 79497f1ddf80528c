//! The shared in-memory key-value store behind the `"default"` label.
//!
//! One store serves `fermyon:spin/key-value` and `wasi:keyvalue` for every component, and
//! outlives hosts: start a new [`Host`](crate::Host) on the same [`KeyValueStore`] to simulate a
//! restart over a persistent store. Semantics follow Spin's SQLite store (`key-value-spin`):
//! `increment` keeps the counter as an 8-byte little-endian `i64`, and compare-and-swap compares
//! against the value read by the CAS handle's last `current()`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// A shared, cloneable in-memory key-value store; clones see the same data.
///
/// Tests read and write it directly to observe or seed what the components store.
#[derive(Clone, Debug, Default)]
pub struct KeyValueStore {
    entries: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl KeyValueStore {
    /// Creates an empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic while holding the lock cannot leave the map half-updated (every update is a
        // single insert/remove), so a poisoned lock is still consistent.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value stored under `key`, if any.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().get(key).cloned()
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub fn set(&self, key: &str, value: impl Into<Vec<u8>>) {
        self.lock().insert(key.to_owned(), value.into());
    }

    /// Removes `key`; removing a missing key is not an error.
    pub fn delete(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Whether `key` holds a value.
    pub fn exists(&self, key: &str) -> bool {
        self.lock().contains_key(key)
    }

    /// All keys, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// The keys starting with `prefix`, sorted.
    pub fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.lock()
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// How many keys the store holds and their size (key plus value bytes), for quotas.
    pub(crate) fn usage(&self) -> crate::quotas::StoreUsage {
        let entries = self.lock();
        crate::quotas::StoreUsage {
            keys: entries.len(),
            bytes: entries
                .iter()
                .map(|(k, v)| (k.len() + v.len()) as u64)
                .sum(),
        }
    }

    /// Looks up several keys at once; like Spin's SQLite store, only keys that exist are
    /// returned.
    pub(crate) fn get_many(&self, keys: &[String]) -> Vec<(String, Option<Vec<u8>>)> {
        let entries = self.lock();
        keys.iter()
            .filter_map(|k| entries.get(k).map(|v| (k.clone(), Some(v.clone()))))
            .collect()
    }

    /// Stores several values under one lock (atomically, as Spin's SQLite transaction does).
    pub(crate) fn set_many(&self, key_values: Vec<(String, Vec<u8>)>) {
        let mut entries = self.lock();
        for (key, value) in key_values {
            entries.insert(key, value);
        }
    }

    /// Removes several keys under one lock.
    pub(crate) fn delete_many(&self, keys: &[String]) {
        let mut entries = self.lock();
        for key in keys {
            entries.remove(key);
        }
    }

    /// Atomically adds `delta` to the counter under `key` (absent counts as 0) and returns the
    /// new value. The counter is an 8-byte little-endian `i64`, as in Spin's SQLite store.
    pub(crate) fn increment(&self, key: &str, delta: i64) -> Result<i64, String> {
        let mut entries = self.lock();
        let current = match entries.get(key) {
            None => 0,
            Some(bytes) => {
                let bytes: [u8; 8] = bytes.as_slice().try_into().map_err(|_| {
                    format!("value of `{key}` is not an 8-byte little-endian i64 counter")
                })?;
                i64::from_le_bytes(bytes)
            }
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| format!("incrementing `{key}` overflows i64"))?;
        entries.insert(key.to_owned(), next.to_le_bytes().to_vec());
        Ok(next)
    }

    /// Writes `value` if `key` still holds `expected`, returning whether it did.
    ///
    /// `expected` is what the CAS handle's last `current()` read. As in Spin's SQLite store,
    /// `None` (the key was absent, or `current()` was never called) makes the swap an
    /// unconditional write: a key created concurrently is overwritten, not reported as a
    /// conflict.
    pub(crate) fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: Vec<u8>,
    ) -> bool {
        let mut entries = self.lock();
        if let Some(expected) = expected
            && entries.get(key).map(Vec::as_slice) != Some(expected)
        {
            return false;
        }
        entries.insert(key.to_owned(), value);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_data() {
        let store = KeyValueStore::new();
        let other = store.clone();
        store.set("k", "v");
        assert_eq!(other.get("k").as_deref(), Some(b"v".as_slice()));
    }

    #[test]
    fn keys_with_prefix_lists_only_matching_keys() {
        let store = KeyValueStore::new();
        for key in ["job:1", "job:2", "jobs", "image:1"] {
            store.set(key, "x");
        }
        assert_eq!(store.keys_with_prefix("job:"), ["job:1", "job:2"]);
        assert_eq!(store.keys().len(), 4);
    }

    #[test]
    fn increment_starts_from_zero_and_stores_little_endian() {
        let store = KeyValueStore::new();
        assert_eq!(store.increment("n", 1), Ok(1));
        assert_eq!(store.increment("n", 2), Ok(3));
        assert_eq!(store.increment("n", -10), Ok(-7));
        assert_eq!(store.get("n"), Some((-7i64).to_le_bytes().to_vec()));
    }

    #[test]
    fn increment_of_non_counter_value_is_an_error() {
        let store = KeyValueStore::new();
        store.set("n", "12");
        assert!(store.increment("n", 1).is_err());
        assert_eq!(store.get("n").as_deref(), Some(b"12".as_slice()));
    }

    #[test]
    fn cas_swap_succeeds_when_value_is_unchanged() {
        let store = KeyValueStore::new();
        store.set("k", "a");
        assert!(store.compare_and_swap("k", Some(b"a"), b"b".to_vec()));
        assert_eq!(store.get("k").as_deref(), Some(b"b".as_slice()));
    }

    #[test]
    fn cas_swap_fails_after_concurrent_write() {
        let store = KeyValueStore::new();
        store.set("k", "a");
        store.set("k", "other writer");
        assert!(!store.compare_and_swap("k", Some(b"a"), b"b".to_vec()));
        assert_eq!(store.get("k").as_deref(), Some(b"other writer".as_slice()));
    }

    #[test]
    fn cas_swap_fails_after_concurrent_delete() {
        let store = KeyValueStore::new();
        store.set("k", "a");
        store.delete("k");
        assert!(!store.compare_and_swap("k", Some(b"a"), b"b".to_vec()));
        assert!(!store.exists("k"));
    }

    #[test]
    fn cas_swap_from_absent_overwrites_like_spin() {
        let store = KeyValueStore::new();
        store.set("k", "created meanwhile");
        assert!(store.compare_and_swap("k", None, b"b".to_vec()));
        assert_eq!(store.get("k").as_deref(), Some(b"b".as_slice()));
    }

    #[test]
    fn get_many_returns_only_existing_keys() {
        let store = KeyValueStore::new();
        store.set_many(vec![
            ("a".into(), b"1".to_vec()),
            ("b".into(), b"2".to_vec()),
        ]);
        let got = store.get_many(&["a".into(), "missing".into()]);
        assert_eq!(got, vec![("a".to_owned(), Some(b"1".to_vec()))]);
        store.delete_many(&["a".into(), "b".into()]);
        assert!(store.keys().is_empty());
    }
}
