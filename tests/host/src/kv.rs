//! The shared key-value store behind the `"default"` label: in memory, or on a real Redis.
//!
//! One store serves `fermyon:spin/key-value` and `wasi:keyvalue` for every component, and
//! outlives hosts: start a new [`Host`](crate::Host) on the same [`KeyValueStore`] to simulate a
//! restart over a persistent store, or several hosts on one Redis to scale out.
//!
//! Each backend answers guests with the semantics of the Spin 4.0.2 store it stands for: the
//! in-memory one like Spin's default SQLite store (`memory`), the Redis one like Spin's Redis
//! store (`redis`). The guest interfaces (`guest_kv`) reach them through [`Backend`].

mod memory;
mod redis;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use self::memory::MemoryStore;
use self::redis::{Reconnect, RedisStore};
use crate::quotas::StoreUsage;

/// The outcome of a store call made for a guest. The outer `Err` traps the guest instance
/// (where Spin's host would panic); the inner `Err` is the message of the guest-visible
/// `other(…)` store error.
pub(crate) type GuestResult<T> = wasmtime::Result<Result<T, String>>;

/// What guests can ask of a store, each backend with the semantics of its Spin counterpart.
pub(crate) trait Backend: fmt::Debug + Send + Sync {
    /// Called when a guest opens the store (Spin's `after_open`).
    fn after_open(&self) -> wasmtime::Result<()>;
    fn get(&self, key: &str) -> GuestResult<Option<Vec<u8>>>;
    fn set(&self, key: &str, value: Vec<u8>) -> GuestResult<()>;
    fn delete(&self, key: &str) -> GuestResult<()>;
    fn exists(&self, key: &str) -> GuestResult<bool>;
    /// Every key, in the backend's order.
    fn keys(&self) -> GuestResult<Vec<String>>;
    /// The keys starting with `prefix`, in any order (for tests, not guests).
    fn keys_with_prefix(&self, prefix: &str) -> GuestResult<Vec<String>>;
    fn get_many(&self, keys: Vec<String>) -> GuestResult<Vec<(String, Option<Vec<u8>>)>>;
    fn set_many(&self, key_values: Vec<(String, Vec<u8>)>) -> GuestResult<()>;
    fn delete_many(&self, keys: Vec<String>) -> GuestResult<()>;
    fn increment(&self, key: &str, delta: i64) -> GuestResult<i64>;
    /// A compare-and-swap handle on `key`; nothing is read until [`Cas::current`].
    fn new_cas(&self, key: &str) -> GuestResult<Box<dyn Cas>>;
    /// How many keys the store holds and their size, for quotas.
    fn usage(&self) -> GuestResult<StoreUsage>;
    /// The URL of the Redis server it is on, if it is on one.
    fn redis_url(&self) -> Option<&str> {
        None
    }
}

/// The host side of one `wasi:keyvalue/atomics.cas` handle.
pub(crate) trait Cas: Send {
    fn key(&self) -> &str;
    /// The value now, which is also what [`swap`](Self::swap) will be checked against.
    fn current(&mut self) -> GuestResult<Option<Vec<u8>>>;
    /// Tries to write `value`; returns whether the backend *reports* success (what it did to
    /// the key may differ: see the Redis backend).
    fn swap(self: Box<Self>, value: Vec<u8>) -> wasmtime::Result<bool>;
}

/// A shared, cloneable key-value store; clones see the same data.
///
/// Tests read and write it directly to observe or seed what the components store. The
/// methods for tests panic if the backend fails (a Redis that went away); guests get store
/// errors instead.
#[derive(Clone)]
pub struct KeyValueStore {
    backend: Arc<dyn Backend>,
    /// Serializes quota-checked guest writes of every host on this store (see `quotas`).
    write_gate: Arc<Mutex<()>>,
}

impl Default for KeyValueStore {
    fn default() -> Self {
        Self {
            backend: Arc::new(MemoryStore::default()),
            write_gate: Arc::default(),
        }
    }
}

impl fmt::Debug for KeyValueStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.backend.fmt(f)
    }
}

impl KeyValueStore {
    /// Creates an empty in-memory store, with the semantics of Spin's default (SQLite) store:
    /// `increment` keeps the counter as an 8-byte little-endian `i64`, and compare-and-swap
    /// compares against the value read by the handle's last `current()`.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store on the Redis server at `url` (`redis://127.0.0.1:6379`), with the semantics of
    /// Spin 4.0.2's Redis store (`key-value-redis`, on redis-rs 0.32.5): counters are decimal
    /// strings (`INCRBY`), and compare-and-swap is `WATCH` on a connection of its own, then
    /// `MULTI`/`SET`/`EXEC`, reported as `cas-failed` every time (see the crate's README).
    ///
    /// Fails if `url` is invalid or nothing answers there. Once connected, a lost connection
    /// is re-established as Spin does: six retries, 1–2 s then 60–120 s apart, every call
    /// waiting meanwhile (so minutes while Redis is down); see
    /// [`redis_failing_fast`](Self::redis_failing_fast) for outage tests.
    pub fn redis(url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            backend: Arc::new(RedisStore::connect(url, Reconnect::LikeSpin)?),
            write_gate: Arc::default(),
        })
    }

    /// Like [`redis`](Self::redis), but a lost connection is tried again once per call,
    /// without waiting: while Redis is down, every call fails at once with a store error
    /// instead of waiting for Spin's minutes of retries. For tests of a Redis outage.
    pub fn redis_failing_fast(url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            backend: Arc::new(RedisStore::connect(url, Reconnect::Once)?),
            write_gate: Arc::default(),
        })
    }

    /// The URL of the Redis server this store is on (`None` in memory), so that a `spin up`
    /// can be pointed at the same Redis.
    pub fn redis_url(&self) -> Option<&str> {
        self.backend.redis_url()
    }

    /// The gate quota-checked guest writes pass one at a time (the lock guards no data, so a
    /// poisoned one is still usable).
    pub(crate) fn write_gate(&self) -> MutexGuard<'_, ()> {
        self.write_gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The backend, for the guest interfaces.
    pub(crate) fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// The value stored under `key`, if any.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        expect(self.backend.get(key), "GET")
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub fn set(&self, key: &str, value: impl Into<Vec<u8>>) {
        expect(self.backend.set(key, value.into()), "SET")
    }

    /// Removes `key`; removing a missing key is not an error.
    pub fn delete(&self, key: &str) {
        expect(self.backend.delete(key), "DEL")
    }

    /// Whether `key` holds a value.
    pub fn exists(&self, key: &str) -> bool {
        expect(self.backend.exists(key), "EXISTS")
    }

    /// All keys, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys = expect(self.backend.keys(), "KEYS");
        keys.sort_unstable();
        keys
    }

    /// The keys starting with `prefix`, sorted.
    pub fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        let mut keys = expect(self.backend.keys_with_prefix(prefix), "KEYS");
        keys.sort_unstable();
        keys
    }
}

/// The value of a store call made by a test, which fails if the store does.
#[track_caller]
fn expect<T>(result: GuestResult<T>, what: &str) -> T {
    match result {
        Ok(Ok(value)) => value,
        Ok(Err(message)) => panic!("key-value store, {what}: {message}"),
        Err(trap) => panic!("key-value store, {what}: {trap:#}"),
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
        for key in ["job:2", "job:1", "jobs", "image:1"] {
            store.set(key, "x");
        }
        assert_eq!(store.keys_with_prefix("job:"), ["job:1", "job:2"]);
        assert_eq!(store.keys(), ["image:1", "job:1", "job:2", "jobs"]);
    }
}
