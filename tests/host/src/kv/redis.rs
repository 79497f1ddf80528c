//! The Redis backend: what Spin 4.0.2's Redis store (`crates/key-value-redis`) does, command
//! for command, on the same redis-rs (0.32.5) so that replies are parsed as Spin parses them.
//!
//! - One `ConnectionManager` (a multiplexed connection that reconnects by itself) serves every
//!   call of the store. Opening the store `PING`s it and ignores the answer.
//! - `get` is `GET`, `set` `SET`, `delete` `DEL`, `exists` `EXISTS`, `get-keys` and
//!   `list-keys` `KEYS *`; `increment` is `INCRBY`, so a counter is a decimal string (and a
//!   value that is not one is a store error); `set-many` is `MSET`, `delete-many` `DEL k…`.
//! - `get-many` sends `KEYS k…` (Spin calls the `keys` command where `MGET` was meant): Redis
//!   refuses more than one argument; one key comes back as the key names matching it as a
//!   pattern, which redis-rs reads as (key, value) pairs, panicking on an odd count.
//! - Compare-and-swap opens a new connection per handle (`WATCH` belongs to a connection, and
//!   the shared one is multiplexed). `current` is `WATCH key` then `GET key`; `swap` is
//!   `MULTI`, `SET`, `EXEC`, then `UNWATCH key`, which Redis refuses (UNWATCH takes no
//!   argument): every swap is reported as `cas-failed`. It wrote unless the key was written
//!   by anyone since the `WATCH`; without `current`, nothing is watched and it always writes.
//!   Even without the `UNWATCH` error the report would say nothing: redis-rs reads the nil
//!   reply of an aborted `EXEC` as a success.
//! - A Redis error reaches the guest as `other("{error:?}")`, Spin's formatting; results over
//!   Spin's 128 MiB buffering limit are refused as Spin refuses them.

use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Client, RedisError, RedisResult};
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

use super::{Backend, Cas, GuestResult, StoreUsage};

/// Spin's `MAX_HOST_BUFFERED_BYTES`: larger results are refused.
const MAX_RESULT_BYTES: usize = 128 << 20;

/// How a lost connection is re-established.
#[derive(Clone, Copy, Debug)]
pub(super) enum Reconnect {
    /// redis-rs's defaults, which Spin uses: six retries, 1–2 s then 60–120 s apart.
    LikeSpin,
    /// One attempt per call, no waiting.
    Once,
}

impl Reconnect {
    fn config(self) -> ConnectionManagerConfig {
        match self {
            Reconnect::LikeSpin => ConnectionManagerConfig::new(),
            Reconnect::Once => ConnectionManagerConfig::new().set_number_of_retries(0),
        }
    }
}

/// A store on one Redis server.
pub(super) struct RedisStore {
    url: String,
    /// Opens the connection of each compare-and-swap handle.
    client: Client,
    config: ConnectionManagerConfig,
    /// Every call but compare-and-swap goes through this one connection.
    connection: ConnectionManager,
    io: Arc<Io>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to `url`, failing at once if nothing answers there (Spin would keep retrying
    /// for minutes: the wrong address is the likelier cause in a test).
    pub(super) fn connect(url: &str, reconnect: Reconnect) -> anyhow::Result<Self> {
        let client = Client::open(url).with_context(|| format!("invalid Redis URL `{url}`"))?;
        let io = Arc::new(Io::start()?);
        let probe = client.clone();
        io.run(async move {
            let mut connection = probe.get_multiplexed_async_connection().await?;
            redis::cmd("PING").exec_async(&mut connection).await
        })
        .map_err(anyhow::Error::from)?
        .with_context(|| format!("no Redis answers at {url}"))?;
        let config = reconnect.config();
        let connection = io
            .run(ConnectionManager::new_with_config(
                client.clone(),
                config.clone(),
            ))
            .map_err(anyhow::Error::from)?
            .with_context(|| format!("cannot connect to Redis at {url}"))?;
        Ok(Self {
            url: url.to_owned(),
            client,
            config,
            connection,
            io,
        })
    }

    /// Runs `command` on the shared connection.
    fn call<T, F>(&self, command: impl FnOnce(ConnectionManager) -> F) -> GuestResult<T>
    where
        F: Future<Output = RedisResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        Ok(self
            .io
            .run(command(self.connection.clone()))?
            .map_err(store_error))
    }
}

/// A Redis error as Spin hands it to the guest.
fn store_error(error: RedisError) -> String {
    format!("{error:?}")
}

/// Refuses a result over Spin's buffering limit; `size` is what Spin counts.
fn within_limit<T>(value: T, size: usize) -> Result<T, String> {
    if size > MAX_RESULT_BYTES {
        Err(format!(
            "query result exceeds limit of {MAX_RESULT_BYTES} bytes"
        ))
    } else {
        Ok(value)
    }
}

fn value_size(value: &Option<Vec<u8>>) -> usize {
    size_of::<Option<Vec<u8>>>() + value.as_ref().map_or(0, Vec::len)
}

impl Backend for RedisStore {
    fn redis_url(&self) -> Option<&str> {
        Some(&self.url)
    }

    fn after_open(&self) -> wasmtime::Result<()> {
        // Spin ignores the outcome: a failed PING has the connection manager reconnect.
        self.call(
            |mut connection| async move { redis::cmd("PING").exec_async(&mut connection).await },
        )?
        .ok();
        Ok(())
    }

    fn get(&self, key: &str) -> GuestResult<Option<Vec<u8>>> {
        let key = key.to_owned();
        Ok(self
            .call(|mut connection| async move { connection.get(key).await })?
            .and_then(|value| {
                let size = value_size(&value);
                within_limit(value, size)
            }))
    }

    fn set(&self, key: &str, value: Vec<u8>) -> GuestResult<()> {
        let key = key.to_owned();
        self.call(|mut connection| async move { connection.set(key, value).await })
    }

    fn delete(&self, key: &str) -> GuestResult<()> {
        let key = key.to_owned();
        self.call(|mut connection| async move { connection.del(key).await })
    }

    fn exists(&self, key: &str) -> GuestResult<bool> {
        let key = key.to_owned();
        self.call(|mut connection| async move { connection.exists(key).await })
    }

    fn keys(&self) -> GuestResult<Vec<String>> {
        Ok(self
            .call(|mut connection| async move { connection.keys::<_, Vec<String>>("*").await })?
            .and_then(|keys| {
                let size = size_of::<Vec<String>>()
                    + keys
                        .iter()
                        .map(|k| size_of::<String>() + k.len())
                        .sum::<usize>();
                within_limit(keys, size)
            }))
    }

    fn keys_with_prefix(&self, prefix: &str) -> GuestResult<Vec<String>> {
        let pattern = format!("{}*", escape_glob(prefix));
        self.call(|mut connection| async move { connection.keys(pattern).await })
    }

    fn get_many(&self, keys: Vec<String>) -> GuestResult<Vec<(String, Option<Vec<u8>>)>> {
        if keys.is_empty() {
            // Spin's dispatch answers an empty batch without asking the store.
            return Ok(Ok(Vec::new()));
        }
        Ok(self
            .call(|mut connection| async move {
                // `KEYS k…`, not `MGET`: what Spin 4.0.2 sends (see the module docs).
                connection
                    .keys::<_, Vec<(String, Option<Vec<u8>>)>>(keys)
                    .await
            })?
            .and_then(|pairs| {
                let size = size_of::<Vec<(String, Option<Vec<u8>>)>>()
                    + pairs
                        .iter()
                        .map(|(k, v)| {
                            size_of::<(String, Option<Vec<u8>>)>()
                                + k.len()
                                + v.as_ref().map_or(0, Vec::len)
                        })
                        .sum::<usize>();
                within_limit(pairs, size)
            }))
    }

    fn set_many(&self, key_values: Vec<(String, Vec<u8>)>) -> GuestResult<()> {
        if key_values.is_empty() {
            return Ok(Ok(()));
        }
        self.call(|mut connection| async move { connection.mset(&key_values).await })
    }

    fn delete_many(&self, keys: Vec<String>) -> GuestResult<()> {
        if keys.is_empty() {
            return Ok(Ok(()));
        }
        self.call(|mut connection| async move { connection.del(keys).await })
    }

    fn increment(&self, key: &str, delta: i64) -> GuestResult<i64> {
        let key = key.to_owned();
        self.call(|mut connection| async move { connection.incr(key, delta).await })
    }

    fn new_cas(&self, key: &str) -> GuestResult<Box<dyn Cas>> {
        let connect = ConnectionManager::new_with_config(self.client.clone(), self.config.clone());
        Ok(self
            .io
            .run(connect)?
            .map_err(store_error)
            .map(|connection| {
                Box::new(RedisCas {
                    key: key.to_owned(),
                    connection,
                    io: self.io.clone(),
                }) as Box<dyn Cas>
            }))
    }

    fn usage(&self) -> GuestResult<StoreUsage> {
        let keys = match self.keys()? {
            Ok(keys) => keys,
            Err(message) => return Ok(Err(message)),
        };
        let mut bytes = 0;
        for key in &keys {
            match self.get(key)? {
                Ok(value) => bytes += (key.len() + value.map_or(0, |v| v.len())) as u64,
                Err(message) => return Ok(Err(message)),
            }
        }
        Ok(Ok(StoreUsage {
            keys: keys.len(),
            bytes,
        }))
    }
}

/// A compare-and-swap handle on a connection of its own, where its `WATCH` lives.
struct RedisCas {
    key: String,
    connection: ConnectionManager,
    io: Arc<Io>,
}

impl Cas for RedisCas {
    fn key(&self) -> &str {
        &self.key
    }

    fn current(&mut self) -> GuestResult<Option<Vec<u8>>> {
        let key = self.key.clone();
        let mut connection = self.connection.clone();
        let value = self.io.run(async move {
            redis::cmd("WATCH")
                .arg(&key)
                .exec_async(&mut connection)
                .await?;
            connection.get::<_, Option<Vec<u8>>>(&key).await
        })?;
        Ok(value.map_err(store_error).and_then(|value| {
            let size = value_size(&value);
            within_limit(value, size)
        }))
    }

    fn swap(self: Box<Self>, value: Vec<u8>) -> wasmtime::Result<bool> {
        let RedisCas {
            key,
            mut connection,
            io,
        } = *self;
        io.run(async move {
            // An `EXEC` aborted by the `WATCH` answers nil, which parses as `()`.
            let transaction: RedisResult<()> = redis::pipe()
                .atomic()
                .set(&key, value)
                .query_async(&mut connection)
                .await;
            let unwatch = redis::cmd("UNWATCH")
                .arg(&key)
                .exec_async(&mut connection)
                .await;
            unwatch.is_ok() && transaction.is_ok()
        })
    }
}

/// `text` with the glob characters of a `KEYS` pattern escaped.
fn escape_glob(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// A tokio runtime of the store's own, where every Redis connection lives.
///
/// Guests call the store from synchronous host functions and tests from plain threads, so a
/// call hands its future to this runtime and blocks until it is done: inside
/// `block_in_place` when the caller is a worker of a multi-thread runtime, so that the
/// caller's other tasks (guests, connections) move to another thread meanwhile. The
/// connections do not depend on the caller's runtime, which tests start and stop per host.
struct Io {
    runtime: Option<Runtime>,
}

impl Io {
    fn start() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kiln-redis-io")
            .enable_all()
            .build()
            .context("cannot start the Redis I/O runtime")?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Runs `work` to completion on this runtime. Fails if it panicked (redis-rs does on
    /// some replies), where Spin's host would panic: the guest traps.
    fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> wasmtime::Result<T> {
        let (done, outcome) = mpsc::sync_channel(1);
        let runtime = self.runtime.as_ref().expect("the runtime lives until drop");
        runtime.spawn(async move {
            let _ = done.send(work.await);
        });
        let wait = || outcome.recv();
        let received = match Handle::try_current() {
            Ok(caller) if caller.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        };
        received.map_err(|_| {
            wasmtime::format_err!("the Redis client panicked (see stderr), as Spin's host would")
        })
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which tokio forbids inside another runtime (where the
        // last clone of a store may well be dropped).
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RedisServer;

    fn server() -> RedisServer {
        RedisServer::start().unwrap_or_else(|e| panic!("{e:#}"))
    }

    fn store(server: &RedisServer) -> RedisStore {
        RedisStore::connect(&server.url(), Reconnect::LikeSpin).unwrap()
    }

    /// The value of a call that must succeed.
    fn ok<T>(result: GuestResult<T>) -> T {
        result.unwrap().unwrap()
    }

    fn value(store: &RedisStore, key: &str) -> Option<Vec<u8>> {
        ok(store.get(key))
    }

    /// What Spin 4.0.2 does on every swap: the key is written, the guest told `cas-failed`.
    #[test]
    fn a_swap_on_an_unchanged_key_writes_but_is_reported_as_failed() {
        let server = server();
        let store = store(&server);
        ok(store.set("k", b"a".to_vec()));
        let mut cas = ok(store.new_cas("k"));
        assert_eq!(ok(cas.current()).as_deref(), Some(b"a".as_slice()));
        assert!(!cas.swap(b"b".to_vec()).unwrap(), "reported as swapped");
        assert_eq!(value(&store, "k").as_deref(), Some(b"b".as_slice()));
    }

    /// `WATCH` guards the swap: a write by anyone else since `current()` aborts it.
    #[test]
    fn a_swap_after_another_write_does_not_write() {
        let server = server();
        let store = store(&server);
        ok(store.set("k", b"a".to_vec()));
        let mut cas = ok(store.new_cas("k"));
        ok(cas.current());
        ok(store.set("k", b"a".to_vec()));
        assert!(!cas.swap(b"b".to_vec()).unwrap());
        assert_eq!(value(&store, "k").as_deref(), Some(b"a".as_slice()));
    }

    /// Without `current()` nothing is watched: the swap is a plain write.
    #[test]
    fn a_swap_without_current_writes_unconditionally() {
        let server = server();
        let store = store(&server);
        ok(store.set("k", b"a".to_vec()));
        let cas = ok(store.new_cas("k"));
        ok(store.set("k", b"changed".to_vec()));
        assert!(!cas.swap(b"b".to_vec()).unwrap());
        assert_eq!(value(&store, "k").as_deref(), Some(b"b".as_slice()));
    }

    /// Unlike Spin's SQLite store, a watched absent key created meanwhile is not overwritten.
    #[test]
    fn a_swap_from_an_absent_key_does_not_overwrite_a_key_created_meanwhile() {
        let server = server();
        let store = store(&server);
        let mut cas = ok(store.new_cas("k"));
        assert_eq!(ok(cas.current()), None);
        ok(store.set("k", b"created meanwhile".to_vec()));
        assert!(!cas.swap(b"b".to_vec()).unwrap());
        assert_eq!(
            value(&store, "k").as_deref(),
            Some(b"created meanwhile".as_slice())
        );
    }

    /// Each handle has its own connection, so one handle's `EXEC` (which ends every `WATCH`
    /// of its connection) does not unguard another's swap.
    #[test]
    fn two_handles_on_one_key_do_not_share_their_watch() {
        let server = server();
        let store = store(&server);
        ok(store.set("k", b"start".to_vec()));
        let mut first = ok(store.new_cas("k"));
        let mut second = ok(store.new_cas("k"));
        ok(first.current());
        ok(second.current());
        first.swap(b"first".to_vec()).unwrap();
        second.swap(b"second".to_vec()).unwrap();
        assert_eq!(value(&store, "k").as_deref(), Some(b"first".as_slice()));
    }

    /// `INCRBY`: the counter is a decimal string, not Spin SQLite's 8 bytes.
    #[test]
    fn increment_keeps_a_decimal_string() {
        let server = server();
        let store = store(&server);
        assert_eq!(ok(store.increment("n", 3)), 3);
        assert_eq!(ok(store.increment("n", -5)), -2);
        assert_eq!(value(&store, "n").as_deref(), Some(b"-2".as_slice()));
    }

    #[test]
    fn increment_of_a_value_that_is_not_a_number_is_a_store_error() {
        let server = server();
        let store = store(&server);
        ok(store.set("n", 7i64.to_le_bytes().to_vec()));
        let error = store.increment("n", 1).unwrap().unwrap_err();
        assert!(error.contains("not an integer"), "{error}");
    }

    /// Spin sends `KEYS k1 k2`, which Redis refuses.
    #[test]
    fn get_many_of_several_keys_is_a_store_error() {
        let server = server();
        let store = store(&server);
        ok(store.set("a", b"1".to_vec()));
        let error = store
            .get_many(vec!["a".into(), "b".into()])
            .unwrap()
            .unwrap_err();
        assert!(error.contains("wrong number of arguments"), "{error}");
    }

    /// Spin sends `KEYS a`; the reply `["a"]` makes redis-rs panic (an odd count of pairs),
    /// which traps the guest here.
    #[test]
    fn get_many_of_one_existing_key_traps() {
        let server = server();
        let store = store(&server);
        ok(store.set("a", b"1".to_vec()));
        assert!(store.get_many(vec!["a".into()]).is_err());
        assert_eq!(value(&store, "a").as_deref(), Some(b"1".as_slice()));
    }

    #[test]
    fn get_many_of_one_absent_key_returns_nothing() {
        let server = server();
        let store = store(&server);
        assert_eq!(ok(store.get_many(vec!["absent".into()])), []);
    }

    #[test]
    fn set_many_and_delete_many_write_and_remove_every_key() {
        let server = server();
        let store = store(&server);
        ok(store.set_many(vec![
            ("a".into(), b"1".to_vec()),
            ("b".into(), b"2".to_vec()),
        ]));
        assert_eq!(value(&store, "b").as_deref(), Some(b"2".as_slice()));
        ok(store.delete_many(vec!["a".into(), "b".into()]));
        assert_eq!(ok(store.keys()), Vec::<String>::new());
    }

    #[test]
    fn keys_with_prefix_takes_the_prefix_literally() {
        let server = server();
        let store = store(&server);
        for key in ["a*[b]:1", "a*[b]:2", "axb:1"] {
            ok(store.set(key, b"x".to_vec()));
        }
        let mut keys = ok(store.keys_with_prefix("a*[b]:"));
        keys.sort();
        assert_eq!(keys, ["a*[b]:1", "a*[b]:2"]);
    }

    /// Guests see a Redis outage as store errors, never a host panic.
    #[test]
    fn while_redis_is_down_calls_fail_with_store_errors() {
        let server = server();
        let store = RedisStore::connect(&server.url(), Reconnect::Once).unwrap();
        ok(store.set("k", b"v".to_vec()));
        drop(server);
        assert!(store.get("k").unwrap().is_err());
        assert!(store.set("k", b"w".to_vec()).unwrap().is_err());
        assert!(store.new_cas("k").unwrap().is_err());
        store.after_open().unwrap();
    }

    #[test]
    fn connecting_where_no_redis_answers_fails() {
        let url = server().url();
        assert!(RedisStore::connect(&url, Reconnect::LikeSpin).is_err());
    }

    /// The store blocks its caller, not its own runtime: a call from a single-threaded
    /// runtime completes.
    #[test]
    fn a_call_from_a_current_thread_runtime_completes() {
        let server = server();
        let store = store(&server);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async { ok(store.set("k", b"v".to_vec())) });
        assert_eq!(value(&store, "k").as_deref(), Some(b"v".as_slice()));
    }
}
