//! The in-memory backend, with the semantics of Spin's default SQLite store (`key-value-spin`).
//!
//! One lock makes every operation linearizable, which is at least as strong as SQLite.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Backend, Cas, GuestResult, StoreUsage};

/// The entries, shared by every clone.
#[derive(Clone, Debug, Default)]
pub(super) struct MemoryStore {
    entries: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl MemoryStore {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic while holding the lock cannot leave the map half-updated (every update is a
        // single insert/remove, or a loop of them that a panic cannot interrupt), so a poisoned
        // lock is still consistent.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The counter under `key` plus `delta`, stored as an 8-byte little-endian `i64` (absent
    /// counts as 0), as Spin's SQLite store does.
    fn add(&self, key: &str, delta: i64) -> Result<i64, String> {
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

    /// Writes `value` if `key` still holds `expected`, returning whether it did. As in Spin's
    /// SQLite store (`INSERT … ON CONFLICT DO UPDATE`), `None` makes the write unconditional:
    /// a key created concurrently is overwritten, not reported as a conflict.
    fn compare_and_swap(&self, key: &str, expected: Option<&[u8]>, value: Vec<u8>) -> bool {
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

impl Backend for MemoryStore {
    fn after_open(&self) -> wasmtime::Result<()> {
        Ok(())
    }

    fn get(&self, key: &str) -> GuestResult<Option<Vec<u8>>> {
        Ok(Ok(self.lock().get(key).cloned()))
    }

    fn set(&self, key: &str, value: Vec<u8>) -> GuestResult<()> {
        self.lock().insert(key.to_owned(), value);
        Ok(Ok(()))
    }

    fn delete(&self, key: &str) -> GuestResult<()> {
        self.lock().remove(key);
        Ok(Ok(()))
    }

    fn exists(&self, key: &str) -> GuestResult<bool> {
        Ok(Ok(self.lock().contains_key(key)))
    }

    fn keys(&self) -> GuestResult<Vec<String>> {
        Ok(Ok(self.lock().keys().cloned().collect()))
    }

    fn keys_with_prefix(&self, prefix: &str) -> GuestResult<Vec<String>> {
        Ok(Ok(self
            .lock()
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect()))
    }

    /// Like Spin's SQLite store, only keys that exist are returned.
    fn get_many(&self, keys: Vec<String>) -> GuestResult<Vec<(String, Option<Vec<u8>>)>> {
        let entries = self.lock();
        Ok(Ok(keys
            .into_iter()
            .filter_map(|k| entries.get(&k).map(|v| (k, Some(v.clone()))))
            .collect()))
    }

    /// Under one lock: atomically, as Spin's SQLite transaction does.
    fn set_many(&self, key_values: Vec<(String, Vec<u8>)>) -> GuestResult<()> {
        self.lock().extend(key_values);
        Ok(Ok(()))
    }

    fn delete_many(&self, keys: Vec<String>) -> GuestResult<()> {
        let mut entries = self.lock();
        for key in keys {
            entries.remove(&key);
        }
        Ok(Ok(()))
    }

    fn increment(&self, key: &str, delta: i64) -> GuestResult<i64> {
        Ok(self.add(key, delta))
    }

    fn new_cas(&self, key: &str) -> GuestResult<Box<dyn Cas>> {
        Ok(Ok(Box::new(MemoryCas {
            store: self.clone(),
            key: key.to_owned(),
            snapshot: None,
        })))
    }

    fn usage(&self) -> GuestResult<StoreUsage> {
        let entries = self.lock();
        Ok(Ok(StoreUsage {
            keys: entries.len(),
            bytes: entries
                .iter()
                .map(|(k, v)| (k.len() + v.len()) as u64)
                .sum(),
        }))
    }
}

/// A compare-and-swap handle: as in Spin's SQLite store, the snapshot is taken by `current()`
/// (`None` if the key was absent or `current()` never called), and `swap` compares with it.
struct MemoryCas {
    store: MemoryStore,
    key: String,
    snapshot: Option<Vec<u8>>,
}

impl Cas for MemoryCas {
    fn key(&self) -> &str {
        &self.key
    }

    fn current(&mut self) -> GuestResult<Option<Vec<u8>>> {
        let value = self.store.lock().get(&self.key).cloned();
        self.snapshot.clone_from(&value);
        Ok(Ok(value))
    }

    fn swap(self: Box<Self>, value: Vec<u8>) -> wasmtime::Result<bool> {
        Ok(self
            .store
            .compare_and_swap(&self.key, self.snapshot.as_deref(), value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(store: &MemoryStore, key: &str) -> Option<Vec<u8>> {
        store.get(key).unwrap().unwrap()
    }

    #[test]
    fn increment_starts_from_zero_and_stores_little_endian() {
        let store = MemoryStore::default();
        assert_eq!(store.add("n", 1), Ok(1));
        assert_eq!(store.add("n", 2), Ok(3));
        assert_eq!(store.add("n", -10), Ok(-7));
        assert_eq!(value(&store, "n"), Some((-7i64).to_le_bytes().to_vec()));
    }

    #[test]
    fn increment_of_non_counter_value_is_an_error() {
        let store = MemoryStore::default();
        store.set("n", b"12".to_vec()).unwrap().unwrap();
        assert!(store.add("n", 1).is_err());
        assert_eq!(value(&store, "n").as_deref(), Some(b"12".as_slice()));
    }

    #[test]
    fn cas_swap_succeeds_when_value_is_unchanged() {
        let store = MemoryStore::default();
        store.set("k", b"a".to_vec()).unwrap().unwrap();
        let mut cas = store.new_cas("k").unwrap().unwrap();
        assert_eq!(
            cas.current().unwrap().unwrap().as_deref(),
            Some(b"a".as_slice())
        );
        assert!(cas.swap(b"b".to_vec()).unwrap());
        assert_eq!(value(&store, "k").as_deref(), Some(b"b".as_slice()));
    }

    #[test]
    fn cas_swap_fails_after_concurrent_write() {
        let store = MemoryStore::default();
        store.set("k", b"a".to_vec()).unwrap().unwrap();
        let mut cas = store.new_cas("k").unwrap().unwrap();
        cas.current().unwrap().unwrap();
        store.set("k", b"other writer".to_vec()).unwrap().unwrap();
        assert!(!cas.swap(b"b".to_vec()).unwrap());
        assert_eq!(
            value(&store, "k").as_deref(),
            Some(b"other writer".as_slice())
        );
    }

    #[test]
    fn cas_swap_fails_after_concurrent_delete() {
        let store = MemoryStore::default();
        store.set("k", b"a".to_vec()).unwrap().unwrap();
        let mut cas = store.new_cas("k").unwrap().unwrap();
        cas.current().unwrap().unwrap();
        store.delete("k").unwrap().unwrap();
        assert!(!cas.swap(b"b".to_vec()).unwrap());
        assert_eq!(value(&store, "k"), None);
    }

    #[test]
    fn cas_swap_from_absent_overwrites_like_spin() {
        let store = MemoryStore::default();
        let mut cas = store.new_cas("k").unwrap().unwrap();
        assert_eq!(cas.current().unwrap().unwrap(), None);
        store
            .set("k", b"created meanwhile".to_vec())
            .unwrap()
            .unwrap();
        assert!(cas.swap(b"b".to_vec()).unwrap());
        assert_eq!(value(&store, "k").as_deref(), Some(b"b".as_slice()));
    }

    #[test]
    fn get_many_returns_only_existing_keys() {
        let store = MemoryStore::default();
        store
            .set_many(vec![
                ("a".into(), b"1".to_vec()),
                ("b".into(), b"2".to_vec()),
            ])
            .unwrap()
            .unwrap();
        let got = store
            .get_many(vec!["a".into(), "missing".into()])
            .unwrap()
            .unwrap();
        assert_eq!(got, vec![("a".to_owned(), Some(b"1".to_vec()))]);
        store
            .delete_many(vec!["a".into(), "b".into()])
            .unwrap()
            .unwrap();
        assert!(store.keys().unwrap().unwrap().is_empty());
    }
}
