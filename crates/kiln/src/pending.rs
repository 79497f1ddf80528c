//! The index of open jobs (unfinished, or with a webhook not delivered
//! yet), so that a job whose processor died (trap, host restart, lost
//! dispatch) is found and re-dispatched, and a webhook due for another
//! attempt is sent, by a later request, without a cron and without
//! scanning the store.

use crate::clock::Timestamp;
use crate::id::JobId;
use crate::job::Status;
use crate::keys;
use crate::keyset::{self, job_member, parse_job_member};
use crate::kv::{KvError, KvStore};
use crate::problem::Error;
use crate::repo::Jobs;
use std::time::Duration;

/// How many pending jobs one request inspects.
pub const JOBS_PER_CHECK: usize = 16;

/// Lists a job as pending (after its record is stored, see
/// [`crate::listing`]), in shard `shard` of the index.
pub fn add(kv: &dyn KvStore, id: JobId, created_at: Timestamp, shard: u32) -> Result<(), KvError> {
    keyset::insert(kv, &keys::pending(shard), &job_member(id, created_at))
}

/// Forgets a job that needs nothing more (finished, its webhook settled)
/// or was deleted.
pub fn remove(
    kv: &dyn KvStore,
    id: JobId,
    created_at: Timestamp,
    shard: u32,
) -> Result<(), KvError> {
    keyset::remove(kv, &keys::pending(shard), &[job_member(id, created_at)])
}

/// What the pending jobs looked at need now.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Due {
    /// Jobs whose processor's lease ran out: they must be queued again.
    pub dispatch: Vec<JobId>,
    /// Jobs that never started and waited a whole lease: in the queue
    /// unless something was lost, so they matter only if a slot is free.
    pub waiting: Vec<JobId>,
    /// Finished jobs whose webhook attempt is due.
    pub notify: Vec<JobId>,
}

/// What up to [`JOBS_PER_CHECK`] pending jobs need now: one shard of the
/// index a second, and within it a window that moves with the clock, so
/// that every pending job is looked at sooner or later while one request
/// reads one key. Forgets entries of jobs that need nothing more or
/// disappeared.
pub fn due(kv: &dyn KvStore, now: Timestamp, lease: Duration, shards: u32) -> Result<Due, Error> {
    let jobs = Jobs::new(kv);
    let mut gone = Vec::new();
    let mut due = Due::default();
    let second = now.0 / 1000;
    let shards = u64::from(shards.max(1));
    let key = keys::pending((second % shards) as u32);
    let mut members = keyset::members(kv, &key)?;
    if !members.is_empty() {
        let len = members.len();
        members.rotate_left((second / shards) as usize % len);
    }
    for member in members.into_iter().take(JOBS_PER_CHECK) {
        let Some((id, created_at)) = parse_job_member(&member) else {
            gone.push(member);
            continue;
        };
        match jobs.get(id, now)? {
            Some(job) if job.needs_dispatch(now, lease) && job.status == Status::NotStarted => {
                due.waiting.push(id)
            }
            Some(job) if job.needs_dispatch(now, lease) => due.dispatch.push(id),
            Some(job) if job.webhook_due(now) => due.notify.push(id),
            Some(job) if job.is_open() => {}
            // No record: deleted, or the entry raced its deletion. Kept a
            // lease, as entries were when they came before the record.
            None if now < created_at.after(lease) => {}
            _ => gone.push(member),
        }
    }
    if !gone.is_empty() {
        keyset::remove(kv, &key, &gone)?;
    }
    Ok(due)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::tests::new_job;
    use crate::kv::MemoryKv;

    const LEASE: Duration = Duration::from_secs(60);

    #[test]
    fn a_job_dispatched_recently_is_not_stale() {
        let kv = MemoryKv::new();
        let job = new_job(Timestamp(0));
        Jobs::new(&kv).insert(&job).unwrap();
        add(&kv, job.id, job.created_at, 0).unwrap();
        assert!(
            due(&kv, Timestamp(1_000), LEASE, 1)
                .unwrap()
                .dispatch
                .is_empty()
        );
        assert_eq!(
            due(&kv, Timestamp(60_000), LEASE, 1).unwrap().waiting,
            [job.id]
        );
    }

    #[test]
    fn every_pending_job_in_every_shard_is_looked_at_within_a_few_checks() {
        let kv = MemoryKv::new();
        let shards = 4;
        let mut ids = Vec::new();
        for _ in 0..(JOBS_PER_CHECK * 6) {
            let mut job = new_job(Timestamp(0));
            job.index_shard = job.id.shard(shards);
            Jobs::new(&kv).insert(&job).unwrap();
            add(&kv, job.id, job.created_at, job.index_shard).unwrap();
            ids.push(job.id);
        }
        let mut seen = std::collections::HashSet::new();
        for second in 0..(JOBS_PER_CHECK as u64 * 6) {
            let due = due(&kv, Timestamp(60_000 + second * 1000), LEASE, shards).unwrap();
            assert!(due.waiting.len() <= JOBS_PER_CHECK);
            seen.extend(due.waiting);
        }
        assert_eq!(seen.len(), ids.len());
    }

    #[test]
    fn an_entry_whose_record_is_not_stored_yet_is_kept_for_one_lease() {
        let kv = MemoryKv::new();
        add(&kv, JobId::random(), Timestamp(0), 0).unwrap();
        assert_eq!(
            due(&kv, Timestamp(59_999), LEASE, 1).unwrap(),
            Due::default()
        );
        assert_eq!(keyset::members(&kv, &keys::pending(0)).unwrap().len(), 1);
    }

    #[test]
    fn entries_of_vanished_jobs_are_forgotten() {
        let kv = MemoryKv::new();
        add(&kv, JobId::random(), Timestamp(0), 0).unwrap();
        assert_eq!(
            due(&kv, Timestamp(60_000), LEASE, 1).unwrap(),
            Due::default()
        );
        assert!(keyset::members(&kv, &keys::pending(0)).unwrap().is_empty());
    }

    #[test]
    fn a_finished_job_leaves_the_index() {
        let kv = MemoryKv::new();
        let job = new_job(Timestamp(0));
        add(&kv, job.id, job.created_at, 0).unwrap();
        remove(&kv, job.id, job.created_at, 0).unwrap();
        assert!(keyset::members(&kv, &keys::pending(0)).unwrap().is_empty());
    }
}
