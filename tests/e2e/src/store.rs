//! [`StoreView`]: what a test reads of the store the app runs on, whichever
//! runtime serves it.

use kiln_test_host::KeyValueStore;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};

/// The store an app runs on, read from outside the app.
pub enum StoreView<'a> {
    /// The test host's store, or the Redis a `spin up` runs on.
    Kv(&'a KeyValueStore),
    /// Spin's default store: the SQLite file `spin up` keeps in its state
    /// directory, table `spin_key_value`, rows of the `default` store.
    SpinSqlite(PathBuf),
}

impl StoreView<'_> {
    /// Spin's default store in the `--state-dir` of a `spin up`.
    pub fn spin_sqlite(state_dir: &Path) -> StoreView<'static> {
        // The file itself appears only when a component first opens the
        // store, but its folder is there from the start.
        assert!(
            state_dir.is_dir(),
            "no state directory {}",
            state_dir.display()
        );
        StoreView::SpinSqlite(state_dir.join("sqlite_key_value.db"))
    }

    /// All keys, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.keys_with_prefix("")
    }

    /// The keys starting with `prefix`, sorted.
    pub fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        match self {
            StoreView::Kv(kv) => kv.keys_with_prefix(prefix),
            StoreView::SpinSqlite(file) => {
                let Some(connection) = open(file) else {
                    return Vec::new();
                };
                let mut statement = connection
                    .prepare(
                        "SELECT key FROM spin_key_value \
                         WHERE store = 'default' AND substr(key, 1, length(?1)) = ?1 \
                         ORDER BY key",
                    )
                    .expect("a query of Spin's key-value table");
                statement
                    .query_map([prefix], |row| row.get(0))
                    .and_then(Iterator::collect)
                    .unwrap_or_else(|e| panic!("reading the keys in {}: {e}", file.display()))
            }
        }
    }

    /// The value stored under `key`, if any.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self {
            StoreView::Kv(kv) => kv.get(key),
            StoreView::SpinSqlite(file) => open(file)?
                .query_row(
                    "SELECT value FROM spin_key_value WHERE store = 'default' AND key = ?1",
                    [key],
                    |row| row.get(0),
                )
                .optional()
                .unwrap_or_else(|e| panic!("reading `{key}` in {}: {e}", file.display())),
        }
    }
}

/// A read-only connection to Spin's SQLite file; `None` while there is no
/// file: Spin creates it when a component first opens the store, so until
/// then the store is empty. Spin writes it meanwhile: a read waits (up to
/// the busy timeout) while a write holds the file, and holds it only for
/// one statement, so Spin's writes wait at most that long (rusqlite gives
/// Spin's own connection a busy timeout of 5 s too).
fn open(file: &Path) -> Option<Connection> {
    if !file.exists() {
        return None;
    }
    let connection = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap_or_else(|e| panic!("opening Spin's store {}: {e}", file.display()));
    connection
        .busy_timeout(std::time::Duration::from_secs(10))
        .expect("a busy timeout");
    Some(connection)
}
