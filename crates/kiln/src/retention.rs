//! Retention: expired jobs read as gone at once (see [`Job::is_expired`]),
//! and their keys are deleted later by [`sweep`], which finds them through
//! time buckets instead of scanning the whole store.
//!
//! A job expiring at `t` is listed in the bucket due at `t` rounded up to
//! the bucket width. New jobs always land in buckets due in the future, so a
//! due bucket never changes again and can be deleted once swept.
//!
//! [`Job::is_expired`]: crate::job::Job::is_expired

use crate::clock::Timestamp;
use crate::id::JobId;
use crate::keys;
use crate::keyset;
use crate::kv::{KvError, KvStore};
use crate::problem::Error;
use crate::repo::Jobs;
use std::time::Duration;

/// How many due buckets one sweep looks at, to bound the work per request.
pub const BUCKETS_PER_SWEEP: usize = 4;

/// How many shards holding jobs one sweep empties: a little at a time.
pub const SHARDS_PER_SWEEP: usize = 4;

/// A sixteenth of the retention, between one second and one minute: few
/// buckets per day, and clean-up lags expiry by at most one width.
pub fn bucket_width(retention: Duration) -> Duration {
    (retention / 16).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

fn due(expires_at: Timestamp, width: Duration) -> Timestamp {
    let width = crate::clock::millis(width).max(1);
    Timestamp(expires_at.0.div_ceil(width).saturating_mul(width))
}

/// Lists `id` for deletion once `expires_at` has passed, in shard `shard`
/// of its bucket.
pub fn schedule(
    kv: &dyn KvStore,
    id: JobId,
    expires_at: Timestamp,
    retention: Duration,
    shard: u32,
) -> Result<(), KvError> {
    let due = due(expires_at, bucket_width(retention));
    keyset::insert(kv, &keys::retention_bucket(due, shard), &id.to_string())?;
    keyset::insert(kv, keys::RETENTION_BUCKETS, &due.0.to_string())
}

/// Deletes the jobs of the oldest due buckets, with whatever a crash may
/// have left of them, emptying at most [`SHARDS_PER_SWEEP`] shards that hold
/// jobs (a bucket is done, and leaves the index, once all its `shards` are
/// empty); returns how many jobs it deleted. `max_attempts` bounds the
/// result chunks a job can have left.
pub fn sweep(
    kv: &dyn KvStore,
    now: Timestamp,
    max_attempts: u32,
    shards: u32,
) -> Result<usize, Error> {
    let mut due_buckets: Vec<u64> = keyset::members(kv, keys::RETENTION_BUCKETS)?
        .iter()
        .filter_map(|b| b.parse().ok())
        .filter(|&b| b <= now.0)
        .collect();
    due_buckets.sort_unstable();
    due_buckets.truncate(BUCKETS_PER_SWEEP);
    let jobs = Jobs::new(kv);
    let mut deleted = 0;
    let mut emptied = 0;
    for bucket in due_buckets {
        let mut keep_bucket = false;
        for shard in 0..shards {
            if emptied == SHARDS_PER_SWEEP {
                return Ok(deleted);
            }
            let shard_key = keys::retention_bucket(Timestamp(bucket), shard);
            let members = keyset::members(kv, &shard_key)?;
            let mut keep_shard = false;
            for member in &members {
                let Ok(id) = JobId::parse(member) else {
                    continue;
                };
                if jobs.get(id, now)?.is_some() {
                    // Not expired by this instance's clock (clocks differ a
                    // little between instances): keep it for later.
                    keep_shard = true;
                } else if jobs.delete(id, now)? {
                    deleted += 1;
                } else {
                    jobs.delete_leftovers(id, max_attempts)?;
                }
            }
            if keep_shard {
                keep_bucket = true;
            } else if !members.is_empty() {
                crate::kv::delete_created(kv, &shard_key)?;
                emptied += 1;
            }
        }
        if !keep_bucket {
            keyset::remove(kv, keys::RETENTION_BUCKETS, &[bucket.to_string()])?;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::tests::new_job;
    use crate::kv::MemoryKv;

    const RETENTION: Duration = Duration::from_secs(3600);
    const SHARDS: u32 = 8;

    fn stored_job(kv: &MemoryKv, now: Timestamp) -> JobId {
        let mut job = new_job(now);
        job.expires_at = now.after(RETENTION);
        job.index_shard = job.id.shard(SHARDS);
        Jobs::new(kv).insert(&job).unwrap();
        schedule(kv, job.id, job.expires_at, RETENTION, job.index_shard).unwrap();
        job.id
    }

    #[test]
    fn bucket_width_stays_between_a_second_and_a_minute() {
        assert_eq!(bucket_width(Duration::from_secs(2)), Duration::from_secs(1));
        assert_eq!(
            bucket_width(Duration::from_secs(86_400)),
            Duration::from_secs(60)
        );
        assert_eq!(
            bucket_width(Duration::from_secs(320)),
            Duration::from_secs(20)
        );
    }

    #[test]
    fn sweeping_before_expiry_deletes_nothing() {
        let kv = MemoryKv::new();
        let id = stored_job(&kv, Timestamp(0));
        assert_eq!(sweep(&kv, Timestamp(3_599_000), 3, SHARDS).unwrap(), 0);
        assert!(Jobs::new(&kv).get(id, Timestamp(0)).unwrap().is_some());
    }

    #[test]
    fn sweeping_after_expiry_leaves_no_keys_behind() {
        let kv = MemoryKv::new();
        stored_job(&kv, Timestamp(0));
        stored_job(&kv, Timestamp(10));
        let later = Timestamp(0).after(RETENTION + bucket_width(RETENTION));
        assert_eq!(sweep(&kv, later, 3, SHARDS).unwrap(), 2);
        // Only the index of buckets itself (empty now) may stay.
        let index = [
            keys::RETENTION_BUCKETS.to_owned(),
            format!("{}:created", keys::RETENTION_BUCKETS),
        ];
        let left: Vec<_> = kv
            .keys()
            .into_iter()
            .filter(|k| !index.contains(k))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn one_sweep_empties_a_bounded_number_of_shards() {
        let kv = MemoryKv::new();
        let mut shards_used = std::collections::HashSet::new();
        while shards_used.len() < SHARDS_PER_SWEEP + 2 {
            let job = stored_job(&kv, Timestamp(0));
            shards_used.insert(job.shard(SHARDS));
        }
        let jobs = kv
            .keys()
            .iter()
            .filter(|k| k.starts_with("kiln:job:"))
            .count();
        let much_later = Timestamp(0).after(RETENTION * 2);
        let first = sweep(&kv, much_later, 3, SHARDS).unwrap();
        assert!(0 < first && first < jobs, "{first} of {jobs}");
        assert_eq!(first + sweep(&kv, much_later, 3, SHARDS).unwrap(), jobs);
        assert!(
            keyset::members(&kv, keys::RETENTION_BUCKETS)
                .unwrap()
                .is_empty()
        );
    }
}
