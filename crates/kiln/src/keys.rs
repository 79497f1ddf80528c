//! Every key Kiln writes, in one place. All start with `kiln:` so the store
//! can be shared with other applications.

use crate::clock::Timestamp;
use crate::id::JobId;

/// The job record.
pub fn job(id: JobId) -> String {
    format!("kiln:job:{id}")
}

/// Chunk prefix of the uploaded image.
pub fn source_blob(id: JobId) -> String {
    format!("kiln:blob:{id}:src")
}

/// Chunk prefix of the result of claim number `attempt`: each claim writes
/// its own chunks, so a late processor never overwrites the winner's, and
/// the clean-up knows every prefix a job can have used.
pub fn result_blob(id: JobId, attempt: u32) -> String {
    format!("kiln:blob:{id}:out:{attempt}")
}

/// The entry of an `Idempotency-Key`, by the key's SHA-256 (hex): client
/// text never becomes part of a key.
pub fn idempotency(key_digest_hex: &str) -> String {
    format!("kiln:idempotency:{key_digest_hex}")
}

/// Shard `shard` of the index of open jobs (see [`crate::pending`]).
/// Shard 0 keeps the name of the index before it was sharded, so a store
/// written then keeps its entries.
pub fn pending(shard: u32) -> String {
    sharded("kiln:pending", shard)
}

/// Shard `shard` of the jobs waiting for a slot (see [`crate::queue`]).
pub fn queue(shard: u32) -> String {
    sharded("kiln:queue", shard)
}

/// Prefix of the markers of stored jobs not yet in the indexes (see
/// [`crate::listing`]).
pub const UNLISTED_PREFIX: &str = "kiln:unlisted:";

/// The marker of job `id`, stored with its record and deleted once the job
/// is in the indexes.
pub fn unlisted(id: JobId) -> String {
    format!("{UNLISTED_PREFIX}{id}")
}

/// The last lease period whose scan for unlisted jobs some request took on.
pub const UNLISTED_SCANNED: &str = "kiln:unlisted-scanned";

/// The last second whose maintenance (see `http::maintain`) some request
/// took on.
pub const MAINTAINED: &str = "kiln:maintained";

/// The slots of the jobs running now (see [`crate::slots`]).
pub const SLOTS: &str = "kiln:slots";

/// Prefix of the state of each client the rate limits count (see
/// [`crate::rate_limit`]).
pub const CLIENT_PREFIX: &str = "kiln:client:";

/// The state of `client` (an API key's name or an address, never client
/// text beyond those).
pub fn client(client: &str) -> String {
    format!("{CLIENT_PREFIX}{client}")
}

/// The due times of the non-empty retention buckets.
pub const RETENTION_BUCKETS: &str = "kiln:retention";

/// Shard `shard` of the ids of the jobs that expire by `due`.
pub fn retention_bucket(due: Timestamp, shard: u32) -> String {
    sharded(&format!("kiln:retention:{}", due.0), shard)
}

fn sharded(base: &str, shard: u32) -> String {
    match shard {
        0 => base.to_owned(),
        n => format!("{base}:{n}"),
    }
}
