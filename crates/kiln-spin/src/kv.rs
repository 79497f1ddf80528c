//! [`KvStore`] over `wasi:keyvalue` (store + atomics), which Spin implements
//! for all its backends; bucket `default` is the store that `spin.toml`
//! grants with `key_value_stores = ["default"]`.

use kiln::{KvError, KvStore};
use spin_sdk::wit::wasi::keyvalue::atomics::{self, Cas, CasError};
use spin_sdk::wit::wasi::keyvalue::batch;
use spin_sdk::wit::wasi::keyvalue::store::{self, Bucket};

/// `wasi:keyvalue/batch` with borrowed parameters (see `wit/kiln.wit`):
/// spin-sdk's `set-many` takes owned keys and values, and copying a 4 MB
/// upload into owned chunks cost 1.7 ms of a 15 ms `202` on `spin up`.
mod borrowed {
    wit_bindgen::generate!({
        world: "borrowed-batch",
        path: "wit",
        ownership: Borrowing { duplicate_if_necessary: false },
        with: {
            "wasi:keyvalue/store@0.2.0-draft2": spin_sdk::wit::wasi::keyvalue::store,
            "wasi:keyvalue/batch@0.2.0-draft2": generate,
        },
    });
    pub use self::wasi::keyvalue::batch::set_many;
}

/// The component's `default` store.
pub struct SpinKv {
    bucket: Bucket,
}

impl SpinKv {
    /// Opens the `default` store.
    pub fn open_default() -> Result<SpinKv, KvError> {
        store::open("default")
            .map(|bucket| SpinKv { bucket })
            .map_err(error)
    }
}

fn error(err: store::Error) -> KvError {
    KvError(match err {
        store::Error::NoSuchStore => "no such store".into(),
        store::Error::AccessDenied => "access denied".into(),
        store::Error::Other(message) => message,
    })
}

impl KvStore for SpinKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.bucket.get(key).map_err(error)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.bucket.set(key, value).map_err(error)
    }

    /// One `set-many`: on Spin's SQLite store one transaction, so one commit
    /// instead of one per key (the commits are what a write costs there).
    fn set_many(&self, entries: &[(&str, &[u8])]) -> Result<(), KvError> {
        borrowed::set_many(&self.bucket, entries).map_err(error)
    }

    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.bucket.delete(key).map_err(error)
    }

    /// One `delete-many`: one transaction on Spin's SQLite store, one
    /// `DEL` on Redis.
    fn delete_many(&self, keys: &[&str]) -> Result<(), KvError> {
        let owned: Vec<String> = keys.iter().map(|key| (*key).to_owned()).collect();
        batch::delete_many(&self.bucket, &owned).map_err(error)
    }

    fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8]) -> Result<bool, KvError> {
        // `current` snapshots the value; the swap fails if the key was
        // written since. (A snapshot of an absent key would make the swap
        // unconditional on Spin's SQLite store, which is why the trait never
        // swaps absent keys.)
        let cas = Cas::new(&self.bucket, key).map_err(error)?;
        if cas.current().map_err(error)?.as_deref() != Some(expected) {
            return Ok(false);
        }
        match atomics::swap(cas, new) {
            Ok(()) | Err(CasError::CasFailed(_)) => {}
            Err(CasError::StoreError(err)) => return Err(error(err)),
        }
        // What `swap` says cannot be trusted on every store: Spin 4.0.2's
        // Redis store answers `cas-failed` even when it wrote, and would
        // take an aborted transaction for a success. What the key holds now
        // is the answer. (A write by someone else right after ours reads as
        // a failure; every caller then re-reads and re-decides.)
        Ok(self.bucket.get(key).map_err(error)?.as_deref() == Some(new))
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        atomics::increment(&self.bucket, key, delta).map_err(error)
    }

    /// `list-keys`, page after page (Spin answers with one page), filtered
    /// here: the interface has no prefix.
    fn keys_starting_with(&self, prefix: &str) -> Result<Vec<String>, KvError> {
        let mut found = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.bucket.list_keys(cursor.as_deref()).map_err(error)?;
            found.extend(page.keys.into_iter().filter(|key| key.starts_with(prefix)));
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(found),
            }
        }
    }
}
