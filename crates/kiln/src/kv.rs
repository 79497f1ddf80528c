//! The storage seam: the key-value operations Kiln needs, and an
//! in-memory implementation for tests.
//!
//! Every backend Spin offers (SQLite, Redis, Azure Cosmos DB, AWS DynamoDB)
//! implements these through `wasi:keyvalue` store and atomics, so the domain
//! never needs more than this.
//!
//! Compare-and-swap is only offered on keys that exist: Spin's stores do not
//! make "create if absent" atomic (a swap whose snapshot saw no value simply
//! writes), so creation races are settled with [`KvStore::increment`], which
//! every backend makes atomic (see [`create_once`]).

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
    /// Stores every `(key, value)`, as [`set`](KvStore::set) would one by
    /// one, in as few calls to the store as it allows. On failure any of
    /// them may have been written: the batch is atomic on some stores
    /// (Spin's SQLite store, one transaction; Redis, `MSET`), not on all.
    fn set_many(&self, entries: &[(&str, &[u8])]) -> Result<(), KvError> {
        entries
            .iter()
            .try_for_each(|(key, value)| self.set(key, value))
    }
    /// Removes `key`; removing an absent key is not an error.
    fn delete(&self, key: &str) -> Result<(), KvError>;
    /// Removes every key, as [`delete`](KvStore::delete) would one by one
    /// in this order, in as few calls to the store as it allows. On failure
    /// any of them may be gone; a store that is not atomic removes them in
    /// order.
    fn delete_many(&self, keys: &[&str]) -> Result<(), KvError> {
        keys.iter().try_for_each(|key| self.delete(key))
    }
    /// Replaces the value of `key` with `new` only if the key exists and its
    /// value still equals `expected`. Returns whether the swap happened.
    fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8]) -> Result<bool, KvError>;
    /// Atomically adds `delta` to the counter under `key` (an absent key
    /// counts as 0) and returns the new value.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError>;
    /// Every key that starts with `prefix`. Stores list all their keys to
    /// answer this (Redis: `KEYS *`), so it is only for rare recovery
    /// scans, never for a request's own path.
    fn keys_starting_with(&self, prefix: &str) -> Result<Vec<String>, KvError>;
}

/// Whether this caller takes turn `turn` of a chore that one caller in
/// all does per turn (a second, a lease): the first to swap `turn` into
/// `key` does, so however many requests come, the chore's reads do not
/// grow with them.
pub fn take_turn(kv: &dyn KvStore, key: &str, turn: u64) -> Result<bool, KvError> {
    take_turn_after(kv, key, turn).map(|previous| previous.is_some())
}

/// [`take_turn`], saying which turn was taken before this one when this
/// caller takes it: a chore done every so many turns needs no key of its
/// own (see `http::maintain`).
pub fn take_turn_after(kv: &dyn KvStore, key: &str, turn: u64) -> Result<Option<u64>, KvError> {
    let text = turn.to_string();
    create_once(kv, key, b"0")?;
    match kv.get(key)? {
        Some(done) if done != text.as_bytes() => {
            let taken = kv.compare_and_swap(key, &done, text.as_bytes())?;
            let previous = std::str::from_utf8(&done).ok().and_then(|d| d.parse().ok());
            Ok(taken.then(|| previous.unwrap_or(0)))
        }
        _ => Ok(None),
    }
}

/// The suffix of the counter that settles a key's creation (see
/// [`create_once`]).
pub const CREATED_SUFFIX: &str = ":created";

/// Makes sure `key` exists, writing `initial` if nobody has: of concurrent
/// callers, exactly one (the first to increment `{key}:created`) writes it,
/// the others wait for that write. Returns once the key exists, and
/// whether it holds this caller's `initial` (it wrote it).
pub fn create_once(kv: &dyn KvStore, key: &str, initial: &[u8]) -> Result<bool, KvError> {
    if kv.get(key)?.is_some() {
        return Ok(false);
    }
    if kv.increment(&format!("{key}{CREATED_SUFFIX}"), 1)? == 1 {
        return kv.set(key, initial).map(|()| true);
    }
    // The creator writes right after its increment; if it died in between,
    // writing the same initial value ourselves is just as good. (Were the
    // creator only stalled for two seconds, its late write could erase what
    // was added since: a window left open knowingly, as Spin's stores offer
    // no atomic create but `increment`.)
    for _ in 0..400 {
        if kv.get(key)?.is_some() {
            return Ok(false);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    kv.set(key, initial).map(|()| true)
}

/// Deletes a key made by [`create_once`], with its creation counter.
pub fn delete_created(kv: &dyn KvStore, key: &str) -> Result<(), KvError> {
    kv.delete(key)?;
    kv.delete(&format!("{key}{CREATED_SUFFIX}"))
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
/// fail as a broken backend would, and an optional cap on the number of
/// keys, as a store with a quota has (Fermyon Cloud: 1,024).
#[derive(Default)]
pub struct MemoryKv {
    entries: Mutex<BTreeMap<String, Vec<u8>>>,
    failing: AtomicBool,
    max_keys: Option<usize>,
}

impl MemoryKv {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that refuses to create more than `max_keys` keys.
    pub fn with_max_keys(max_keys: usize) -> Self {
        MemoryKv {
            max_keys: Some(max_keys),
            ..Self::default()
        }
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

    /// Refuses to create `key` in a store at its key cap.
    fn check_room(&self, entries: &BTreeMap<String, Vec<u8>>, key: &str) -> Result<(), KvError> {
        match self.max_keys {
            Some(max) if entries.len() >= max && !entries.contains_key(key) => {
                Err(KvError(format!("store is full: {max} keys")))
            }
            _ => Ok(()),
        }
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
        let mut entries = self.lock();
        self.check_room(&entries, key)?;
        entries.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.check()?;
        self.lock().remove(key);
        Ok(())
    }

    fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8]) -> Result<bool, KvError> {
        self.check()?;
        let mut entries = self.lock();
        if entries.get(key).map(Vec::as_slice) != Some(expected) {
            return Ok(false);
        }
        entries.insert(key.to_owned(), new.to_vec());
        Ok(true)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        self.check()?;
        let mut entries = self.lock();
        self.check_room(&entries, key)?;
        // Stored as Spin stores counters: 8 bytes, little-endian.
        let current = match entries.get(key) {
            None => 0,
            Some(bytes) => i64::from_le_bytes(
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| KvError(format!("{key} is not a counter")))?,
            ),
        };
        let next = current.wrapping_add(delta);
        entries.insert(key.to_owned(), next.to_le_bytes().to_vec());
        Ok(next)
    }

    fn keys_starting_with(&self, prefix: &str) -> Result<Vec<String>, KvError> {
        self.check()?;
        Ok(self
            .lock()
            .range(prefix.to_owned()..)
            .map(|(key, _)| key)
            .take_while(|key| key.starts_with(prefix))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_and_swap_never_creates_a_key() {
        let kv = MemoryKv::new();
        assert!(!kv.compare_and_swap("k", b"", b"a").unwrap());
        assert_eq!(kv.get("k").unwrap(), None);
    }

    #[test]
    fn compare_and_swap_fails_after_a_concurrent_write() {
        let kv = MemoryKv::new();
        kv.set("k", b"v1").unwrap();
        kv.set("k", b"v2").unwrap();
        assert!(!kv.compare_and_swap("k", b"v1", b"mine").unwrap());
        assert!(kv.compare_and_swap("k", b"v2", b"mine").unwrap());
    }

    #[test]
    fn increment_counts_from_zero() {
        let kv = MemoryKv::new();
        assert_eq!(kv.increment("c", 1).unwrap(), 1);
        assert_eq!(kv.increment("c", 2).unwrap(), 3);
    }

    #[test]
    fn create_once_lets_exactly_one_of_many_racers_write() {
        let kv = std::sync::Arc::new(MemoryKv::new());
        let writers: usize = (0..8)
            .map(|t| {
                let kv = kv.clone();
                std::thread::spawn(move || {
                    create_once(kv.as_ref(), "k", format!("{t}").as_bytes()).unwrap();
                    kv.get("k").unwrap().unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect::<std::collections::HashSet<_>>()
            .len();
        assert_eq!(writers, 1, "racers saw different initial values");
    }

    #[test]
    fn a_full_store_refuses_new_keys_but_not_new_values() {
        let kv = MemoryKv::with_max_keys(1);
        kv.set("a", b"1").unwrap();
        assert!(kv.set("b", b"1").is_err());
        assert!(kv.increment("c", 1).is_err());
        kv.set("a", b"2").unwrap();
        assert_eq!(kv.keys(), ["a"]);
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
