//! Images stored as numbered chunks of at most `blob_chunk_bytes` bytes (a
//! Spin variable), so that they fit the key-value backend at hand: DynamoDB
//! items cap at 400 KB (the default, 256 KiB, fits), Fermyon Cloud values
//! at 1 MB, Cosmos DB items at 2 MB. Larger chunks mean fewer keys.
//!
//! A blob is written chunk by chunk and becomes visible only when a job
//! record referencing its [`BlobRef`] is written: a failure part-way never
//! shows a half image. A store error part-way makes [`write`](fn@write) delete what it
//! wrote; chunks left by a crash are found later by [`delete_all`].

use crate::kv::{KvError, KvStore};
use serde::{Deserialize, Serialize};

/// Where a blob's chunks are and how to reassemble them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    /// Chunk `n` is stored under `{prefix}:{n}`.
    pub prefix: String,
    /// Total length in bytes.
    pub len: u64,
    /// Number of chunks.
    pub chunks: u32,
}

impl BlobRef {
    fn chunk_key(&self, n: u32) -> String {
        format!("{}:{n}", self.prefix)
    }
}

/// Reading a blob failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] KvError),
    /// A chunk is missing or the wrong size: the blob was deleted meanwhile.
    #[error("blob {0} is incomplete")]
    Incomplete(String),
}

/// Where a blob of `len` bytes goes under `prefix`, in chunks of at most
/// `chunk_size` bytes.
pub fn layout(prefix: String, len: usize, chunk_size: usize) -> Result<BlobRef, KvError> {
    let chunks = u32::try_from(len.div_ceil(chunk_size.max(1)))
        .map_err(|_| KvError("blob too large".into()))?;
    Ok(BlobRef {
        prefix,
        len: len as u64,
        chunks,
    })
}

/// Writes `bytes` as chunks of at most `chunk_size` bytes under `prefix`,
/// in one batch. On failure, deletes whatever it wrote before returning the
/// error.
pub fn write(
    kv: &dyn KvStore,
    prefix: String,
    bytes: &[u8],
    chunk_size: usize,
) -> Result<BlobRef, KvError> {
    let blob = layout(prefix, bytes.len(), chunk_size)?;
    write_with_records(kv, &blob, bytes, chunk_size, &[], &[])?;
    Ok(blob)
}

/// Writes `first`, the chunks of `blob` (laid out by [`layout`] with
/// `chunk_size`) and then `last`, in one batch: `first` what finds the
/// chunks should the rest be lost, `last` the keys and values that
/// reference the blob, the last of which makes it visible. One commit on
/// Spin's SQLite store instead of several; a store whose batches are not
/// atomic writes them in order. On failure, deletes `last`, the chunks and
/// then `first` before returning the error.
pub fn write_with_records(
    kv: &dyn KvStore,
    blob: &BlobRef,
    bytes: &[u8],
    chunk_size: usize,
    first: &[(&str, &[u8])],
    last: &[(&str, &[u8])],
) -> Result<(), KvError> {
    let keys: Vec<String> = (0..blob.chunks).map(|n| blob.chunk_key(n)).collect();
    let mut entries: Vec<(&str, &[u8])> = first.to_vec();
    entries.extend(
        keys.iter()
            .map(String::as_str)
            .zip(bytes.chunks(chunk_size.max(1))),
    );
    entries.extend_from_slice(last);
    if let Err(err) = kv.set_many(&entries) {
        // Any of them may have landed (a batch is not atomic on every
        // store, and a failed write's reply may be all that was lost).
        let written: Vec<&str> = last.iter().rev().map(|(key, _)| *key).collect();
        let _ = kv.delete_many(&written);
        let _ = delete(kv, blob);
        let first: Vec<&str> = first.iter().map(|(key, _)| *key).collect();
        let _ = kv.delete_many(&first);
        return Err(err);
    }
    Ok(())
}

/// Reassembles a blob.
pub fn read(kv: &dyn KvStore, blob: &BlobRef) -> Result<Vec<u8>, BlobError> {
    let len = usize::try_from(blob.len).map_err(|_| BlobError::Incomplete(blob.prefix.clone()))?;
    let mut bytes = Vec::with_capacity(len);
    for n in 0..blob.chunks {
        let chunk = kv
            .get(&blob.chunk_key(n))?
            .ok_or_else(|| BlobError::Incomplete(blob.prefix.clone()))?;
        bytes.extend_from_slice(&chunk);
    }
    if bytes.len() != len {
        return Err(BlobError::Incomplete(blob.prefix.clone()));
    }
    Ok(bytes)
}

/// Deletes the chunks `{prefix}:0`, `{prefix}:1`, … up to the first one
/// missing: for blobs whose [`BlobRef`] was never stored (writes and
/// deletes that stop part-way leave only such a run from chunk 0).
pub fn delete_all(kv: &dyn KvStore, prefix: &str) -> Result<(), KvError> {
    for n in 0.. {
        let key = format!("{prefix}:{n}");
        if kv.get(&key)?.is_none() {
            break;
        }
        kv.delete(&key)?;
    }
    Ok(())
}

/// Deletes every chunk of a blob in one batch, the last first: whatever a
/// failure part-way leaves (on a store whose batches are not atomic) is
/// chunks `0..k`, which [`delete_all`] finds.
pub fn delete(kv: &dyn KvStore, blob: &BlobRef) -> Result<(), KvError> {
    let keys: Vec<String> = (0..blob.chunks).rev().map(|n| blob.chunk_key(n)).collect();
    kv.delete_many(&keys.iter().map(String::as_str).collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;

    const CHUNK_SIZE: usize = 256 * 1024;

    /// Fails every `set` after the first `allowed` ones; with `lands`,
    /// the failing ones are stored all the same (only the reply is lost).
    struct FailingAfter {
        inner: MemoryKv,
        allowed: std::cell::Cell<usize>,
        lands: bool,
    }

    impl KvStore for FailingAfter {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
            if self.allowed.get() == 0 {
                if self.lands {
                    self.inner.set(key, value)?;
                }
                return Err(KvError("full".into()));
            }
            self.allowed.set(self.allowed.get() - 1);
            self.inner.set(key, value)
        }
        fn delete(&self, key: &str) -> Result<(), KvError> {
            self.inner.delete(key)
        }
        fn compare_and_swap(&self, k: &str, e: &[u8], n: &[u8]) -> Result<bool, KvError> {
            self.inner.compare_and_swap(k, e, n)
        }
        fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
            self.inner.increment(key, delta)
        }
        fn keys_starting_with(&self, prefix: &str) -> Result<Vec<String>, KvError> {
            self.inner.keys_starting_with(prefix)
        }
    }

    fn bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn a_blob_round_trips_across_several_chunks() {
        let kv = MemoryKv::new();
        let data = bytes(CHUNK_SIZE * 2 + 17);
        let blob = write(&kv, "b".into(), &data, CHUNK_SIZE).unwrap();
        assert_eq!(blob.chunks, 3);
        assert_eq!(read(&kv, &blob).unwrap(), data);
    }

    /// One batch each way, so that a store which commits each write on its
    /// own (Spin's SQLite store) commits an upload once, not once per
    /// chunk, and deletes it once; the deletes go last chunk first.
    #[test]
    fn every_chunk_goes_to_the_store_and_from_it_in_one_batch() {
        struct Batches {
            inner: MemoryKv,
            batches: std::cell::RefCell<Vec<usize>>,
            deleted: std::cell::RefCell<Vec<Vec<String>>>,
        }
        impl KvStore for Batches {
            fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
                self.inner.get(key)
            }
            fn set(&self, _: &str, _: &[u8]) -> Result<(), KvError> {
                panic!("a chunk written on its own");
            }
            fn set_many(&self, entries: &[(&str, &[u8])]) -> Result<(), KvError> {
                self.batches.borrow_mut().push(entries.len());
                self.inner.set_many(entries)
            }
            fn delete(&self, _: &str) -> Result<(), KvError> {
                panic!("a chunk deleted on its own");
            }
            fn delete_many(&self, keys: &[&str]) -> Result<(), KvError> {
                let named = keys.iter().map(|k| (*k).to_owned()).collect();
                self.deleted.borrow_mut().push(named);
                self.inner.delete_many(keys)
            }
            fn compare_and_swap(&self, k: &str, e: &[u8], n: &[u8]) -> Result<bool, KvError> {
                self.inner.compare_and_swap(k, e, n)
            }
            fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
                self.inner.increment(key, delta)
            }
            fn keys_starting_with(&self, prefix: &str) -> Result<Vec<String>, KvError> {
                self.inner.keys_starting_with(prefix)
            }
        }
        let kv = Batches {
            inner: MemoryKv::new(),
            batches: Default::default(),
            deleted: Default::default(),
        };
        let data = bytes(CHUNK_SIZE * 13 + 5);
        let blob = write(&kv, "b".into(), &data, CHUNK_SIZE).unwrap();
        assert_eq!(*kv.batches.borrow(), [14]);
        assert_eq!(read(&kv, &blob).unwrap(), data);
        delete(&kv, &blob).unwrap();
        let deleted = kv.deleted.borrow();
        assert_eq!(deleted.len(), 1);
        assert_eq!(deleted[0].first().map(String::as_str), Some("b:13"));
        assert_eq!(deleted[0].last().map(String::as_str), Some("b:0"));
        assert_eq!(deleted[0].len(), 14);
        assert!(kv.inner.keys().is_empty());
    }

    #[test]
    fn no_stored_value_exceeds_the_chunk_size() {
        let kv = MemoryKv::new();
        write(&kv, "b".into(), &bytes(CHUNK_SIZE * 3), CHUNK_SIZE).unwrap();
        for key in kv.keys() {
            assert!(kv.get(&key).unwrap().unwrap().len() <= CHUNK_SIZE);
        }
    }

    #[test]
    fn an_exact_multiple_of_the_chunk_size_has_no_empty_tail_chunk() {
        let kv = MemoryKv::new();
        let blob = write(&kv, "b".into(), &bytes(CHUNK_SIZE * 2), CHUNK_SIZE).unwrap();
        assert_eq!(blob.chunks, 2);
        assert_eq!(kv.keys().len(), 2);
    }

    #[test]
    fn a_failed_write_leaves_no_chunks_behind_even_if_the_failed_set_landed() {
        for lands in [false, true] {
            let kv = FailingAfter {
                inner: MemoryKv::new(),
                allowed: std::cell::Cell::new(2),
                lands,
            };
            assert!(write(&kv, "b".into(), &bytes(CHUNK_SIZE * 4), CHUNK_SIZE).is_err());
            assert!(kv.inner.keys().is_empty(), "{:?}", kv.inner.keys());
        }
    }

    /// Neither the record nor any chunk stays after a failed batch, whether
    /// it failed on a chunk or on the record, and whether the failed write
    /// landed or not; when it succeeds, the record comes last.
    #[test]
    fn a_record_written_with_its_blob_goes_last_and_leaves_nothing_if_it_fails() {
        let data = bytes(CHUNK_SIZE * 3 + 1);
        let blob = layout("b".into(), data.len(), CHUNK_SIZE).unwrap();
        for (allowed, lands) in [(2, false), (2, true), (4, false), (4, true)] {
            let kv = FailingAfter {
                inner: MemoryKv::new(),
                allowed: std::cell::Cell::new(allowed),
                lands,
            };
            let result = write_with_records(&kv, &blob, &data, CHUNK_SIZE, &[], &[("job", b"r")]);
            assert!(result.is_err());
            assert!(kv.inner.keys().is_empty(), "{:?}", kv.inner.keys());
        }
        let kv = FailingAfter {
            inner: MemoryKv::new(),
            allowed: std::cell::Cell::new(4),
            lands: false,
        };
        // Four chunks pass; a fifth write (the record) would fail.
        assert!(write_with_records(&kv, &blob, &data, CHUNK_SIZE, &[], &[("job", b"r")]).is_err());
        let kv = MemoryKv::new();
        write_with_records(&kv, &blob, &data, CHUNK_SIZE, &[], &[("job", b"r")]).unwrap();
        assert_eq!(read(&kv, &blob).unwrap(), data);
        assert_eq!(kv.get("job").unwrap().as_deref(), Some(&b"r"[..]));
    }

    /// A delete that stops part-way leaves a run of chunks from 0, which
    /// the clean-up of a job without a record finds.
    #[test]
    fn what_a_delete_stopped_part_way_leaves_is_found_by_delete_all() {
        let kv = MemoryKv::new();
        let blob = write(&kv, "b".into(), &bytes(CHUNK_SIZE * 3), CHUNK_SIZE).unwrap();
        // The first delete (of the last chunk) is all that happened.
        kv.delete(&blob.chunk_key(2)).unwrap();
        delete_all(&kv, &blob.prefix).unwrap();
        assert!(kv.keys().is_empty(), "{:?}", kv.keys());
    }

    #[test]
    fn reading_a_blob_with_a_missing_chunk_is_an_error_not_a_short_image() {
        let kv = MemoryKv::new();
        let blob = write(&kv, "b".into(), &bytes(CHUNK_SIZE + 1), CHUNK_SIZE).unwrap();
        kv.delete("b:1").unwrap();
        assert!(matches!(read(&kv, &blob), Err(BlobError::Incomplete(_))));
    }

    #[test]
    fn delete_removes_every_chunk() {
        let kv = MemoryKv::new();
        let blob = write(&kv, "b".into(), &bytes(CHUNK_SIZE * 2 + 1), CHUNK_SIZE).unwrap();
        delete(&kv, &blob).unwrap();
        assert!(kv.keys().is_empty());
    }
}
