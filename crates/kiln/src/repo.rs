//! The job repository: job records, their blobs and indexes over a
//! [`KvStore`]. Every change to a record goes through [`Jobs::update`], a
//! compare-and-swap loop, so concurrent writers (processors, cancels) never
//! lose each other's updates.

use crate::blob;
use crate::clock::Timestamp;
use crate::id::JobId;
use crate::job::{Job, Status};
use crate::keys;
use crate::kv::{KvStore, MAX_CAS_ATTEMPTS, contention};
use crate::problem::Error;

/// The outcome of [`Jobs::update`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// No such job, or it expired.
    Missing,
    /// The transition declined; the job as it is.
    Unchanged(Job),
    /// The transition was stored; the job as it is now.
    Changed(Job),
}

/// Jobs in a key-value store.
#[derive(Clone, Copy)]
pub struct Jobs<'a> {
    kv: &'a dyn KvStore,
}

impl<'a> Jobs<'a> {
    /// Jobs in `kv`.
    pub fn new(kv: &'a dyn KvStore) -> Self {
        Jobs { kv }
    }

    /// The store.
    pub fn kv(&self) -> &'a dyn KvStore {
        self.kv
    }

    /// The job, unless it does not exist or has expired.
    pub fn get(&self, id: JobId, now: Timestamp) -> Result<Option<Job>, Error> {
        Ok(self
            .get_raw(id)?
            .map(|(_, job)| job)
            .filter(|job| !job.is_expired(now)))
    }

    /// The job even if expired, with its stored bytes for compare-and-swap.
    fn get_raw(&self, id: JobId) -> Result<Option<(Vec<u8>, Job)>, Error> {
        let Some(raw) = self.kv.get(&keys::job(id))? else {
            return Ok(None);
        };
        let job = serde_json::from_slice(&raw)
            .map_err(|e| Error::Internal(format!("job record {id} unreadable: {e}")))?;
        Ok(Some((raw, job)))
    }

    /// Stores a job's record alone (tests set up their jobs with it).
    #[cfg(test)]
    pub(crate) fn insert(&self, job: &Job) -> Result<(), Error> {
        Ok(self.kv.set(&keys::job(job.id), &encode(job)?)?)
    }

    /// Stores a new job: its unlisted marker (see [`crate::listing`]),
    /// its upload (`job.source`, laid out by [`blob::layout`] with
    /// `chunk_size`) and then its record, which makes them visible, in one
    /// batch: on a store whose batches are not atomic, whatever part of it
    /// lands is found by the marker. On failure none is left.
    pub fn insert_with_upload(
        &self,
        job: &Job,
        upload: &[u8],
        chunk_size: usize,
    ) -> Result<(), Error> {
        let record = encode(job)?;
        let key = keys::job(job.id);
        let (marker_key, marker) = crate::listing::marker(job);
        Ok(blob::write_with_records(
            self.kv,
            &job.source,
            upload,
            chunk_size,
            &[(&marker_key, &marker)],
            &[(&key, &record)],
        )?)
    }

    /// Applies `transition` to the current record until the compare-and-swap
    /// succeeds. The transition may run several times, on fresher records.
    pub fn update(
        &self,
        id: JobId,
        now: Timestamp,
        mut transition: impl FnMut(&Job) -> Option<Job>,
    ) -> Result<Update, Error> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some((raw, job)) = self.get_raw(id)? else {
                return Ok(Update::Missing);
            };
            if job.is_expired(now) {
                return Ok(Update::Missing);
            }
            let Some(next) = transition(&job) else {
                return Ok(Update::Unchanged(job));
            };
            if self
                .kv
                .compare_and_swap(&keys::job(id), &raw, &encode(&next)?)?
            {
                if next.status.is_terminal() && !job.status.is_terminal() {
                    self.forget_upload(&next);
                }
                // Best effort, both: a stale entry costs a lookup.
                if job.status == Status::NotStarted && next.status.is_terminal() {
                    crate::queue::remove(self.kv, next.id, next.created_at, next.index_shard).ok();
                }
                if job.is_open() && !next.is_open() {
                    crate::pending::remove(self.kv, next.id, next.created_at, next.index_shard)
                        .ok();
                }
                return Ok(Update::Changed(next));
            }
        }
        Err(contention(&keys::job(id)).into())
    }

    /// A finished job is never processed again: its upload goes, so that a
    /// retained job holds only its record and its result. Best effort:
    /// chunks left by a failure here are deleted with the job.
    fn forget_upload(&self, job: &Job) {
        blob::delete(self.kv, &job.source).ok();
    }

    /// Deletes a job and everything it owns; returns whether it existed
    /// (expired jobs count as existing here: this is also the clean-up).
    ///
    /// An unfinished job is canceled first, so a processor finishing
    /// meanwhile has its outcome refused and deletes its own result. The
    /// record goes last, so a failure part-way leaves it for a retry (or the
    /// sweep) to finish; what is left meanwhile reads as gone.
    pub fn delete(&self, id: JobId, now: Timestamp) -> Result<bool, Error> {
        let Some(job) = self.cancel_for_deletion(id, now)? else {
            return Ok(false);
        };
        blob::delete(self.kv, &job.source)?;
        for attempt in 1..=job.attempts {
            blob::delete_all(self.kv, &keys::result_blob(id, attempt))?;
        }
        if let Some(entry) = &job.idempotency_entry {
            crate::idempotency::unbind(self.kv, entry, id)?;
        }
        crate::queue::remove(self.kv, id, job.created_at, job.index_shard)?;
        crate::pending::remove(self.kv, id, job.created_at, job.index_shard)?;
        // The marker after the record: one left behind is settled by the
        // recovery scan, a record left without it by nobody if unlisted.
        self.kv
            .delete_many(&[&keys::job(id), &keys::unlisted(id)])?;
        Ok(true)
    }

    /// The job, canceled if it was unfinished (whether expired or not).
    fn cancel_for_deletion(&self, id: JobId, now: Timestamp) -> Result<Option<Job>, Error> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some((raw, job)) = self.get_raw(id)? else {
                return Ok(None);
            };
            let Some(canceled) = job.cancel(now) else {
                return Ok(Some(job));
            };
            if self
                .kv
                .compare_and_swap(&keys::job(id), &raw, &encode(&canceled)?)?
            {
                return Ok(Some(canceled));
            }
        }
        Err(contention(&keys::job(id)).into())
    }

    /// Deletes what a job whose record is gone may have left behind (a
    /// crash between storing its chunks and its record, or part-way through
    /// a delete), probing the keys it would have used.
    pub fn delete_leftovers(&self, id: JobId, max_attempts: u32) -> Result<(), Error> {
        blob::delete_all(self.kv, &keys::source_blob(id))?;
        for attempt in 1..=max_attempts {
            blob::delete_all(self.kv, &keys::result_blob(id, attempt))?;
        }
        Ok(())
    }

    /// Removes a job that was never announced to anyone (it lost an
    /// idempotency race, or its submission died before binding its key):
    /// its record, marker and source, nothing else.
    pub fn discard(&self, job: &Job) -> Result<(), Error> {
        self.kv
            .delete_many(&[&keys::job(job.id), &keys::unlisted(job.id)])?;
        Ok(blob::delete(self.kv, &job.source)?)
    }
}

fn encode(job: &Job) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(job).map_err(|e| Error::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Claim;
    use crate::job::tests::new_job;
    use crate::kv::MemoryKv;
    use std::time::Duration;

    #[test]
    fn an_expired_job_reads_as_missing() {
        let kv = MemoryKv::new();
        let job = new_job(Timestamp(0));
        Jobs::new(&kv).insert(&job).unwrap();
        assert!(Jobs::new(&kv).get(job.id, Timestamp(1)).unwrap().is_some());
        assert!(
            Jobs::new(&kv)
                .get(job.id, job.expires_at)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn of_many_concurrent_claims_exactly_one_wins() {
        let kv = std::sync::Arc::new(MemoryKv::new());
        let job = new_job(Timestamp(0));
        Jobs::new(kv.as_ref()).insert(&job).unwrap();
        let winners: usize = (0..16)
            .map(|t| {
                let kv = kv.clone();
                std::thread::spawn(move || {
                    let token = format!("t{t}");
                    let update = Jobs::new(kv.as_ref())
                        .update(job.id, Timestamp(1), |j| {
                            match j.claim(&token, Timestamp(1), Duration::from_secs(60), 3) {
                                Claim::Claimed(next) => Some(next),
                                _ => None,
                            }
                        })
                        .unwrap();
                    usize::from(matches!(update, Update::Changed(_)))
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(winners, 1);
        let stored = Jobs::new(kv.as_ref())
            .get(job.id, Timestamp(2))
            .unwrap()
            .unwrap();
        assert_eq!((stored.status, stored.attempts), (Status::Running, 1));
    }

    /// A stored job that processor "a" has claimed.
    fn stored_running_job(jobs: &Jobs<'_>) -> Job {
        let job = new_job(Timestamp(0));
        jobs.insert(&job).unwrap();
        let Claim::Claimed(running) = job.claim("a", Timestamp(0), Duration::from_secs(60), 3)
        else {
            panic!("a new job can be claimed")
        };
        jobs.update(job.id, Timestamp(0), |_| Some(running.clone()))
            .unwrap();
        running
    }

    /// Processor "a" reports success.
    fn late_success(jobs: &Jobs<'_>, job: &Job) -> Update {
        let result = crate::job::ImageRef {
            blob: job.source.clone(),
            media_type: "image/png".into(),
            etag: "\"x\"".into(),
            width: 1,
            height: 1,
            warnings: Vec::new(),
        };
        jobs.update(job.id, Timestamp(2), |j| {
            j.succeed("a", result.clone(), Timestamp(2))
        })
        .unwrap()
    }

    #[test]
    fn a_cancel_racing_a_success_leaves_exactly_one_outcome() {
        let kv = MemoryKv::new();
        let jobs = Jobs::new(&kv);
        let running = stored_running_job(&jobs);
        jobs.update(running.id, Timestamp(1), |j| j.cancel(Timestamp(1)))
            .unwrap();
        let late = late_success(&jobs, &running);
        assert!(matches!(late, Update::Unchanged(j) if j.status == Status::Canceled));
    }

    #[test]
    fn a_processor_finishing_during_a_delete_cannot_bring_the_job_back() {
        let kv = MemoryKv::new();
        let jobs = Jobs::new(&kv);
        let running = stored_running_job(&jobs);
        // The delete cancels first; the processor's success then finds the
        // job no longer its own.
        let canceled = jobs
            .cancel_for_deletion(running.id, Timestamp(1))
            .unwrap()
            .unwrap();
        assert_eq!(canceled.status, Status::Canceled);
        assert!(matches!(
            late_success(&jobs, &running),
            Update::Unchanged(_)
        ));
    }

    #[test]
    fn leftovers_of_a_job_without_a_record_are_found_and_deleted() {
        let kv = MemoryKv::new();
        let id = JobId::random();
        blob::write(&kv, keys::source_blob(id), &[1; 300_000], 256 * 1024).unwrap();
        blob::write(&kv, keys::result_blob(id, 2), &[2; 10], 256 * 1024).unwrap();
        Jobs::new(&kv).delete_leftovers(id, 3).unwrap();
        assert!(kv.keys().is_empty(), "{:?}", kv.keys());
    }

    #[test]
    fn delete_removes_the_record_and_its_chunks() {
        let kv = MemoryKv::new();
        let mut job = new_job(Timestamp(0));
        job.source =
            blob::write(&kv, keys::source_blob(job.id), &[1; 300_000], 256 * 1024).unwrap();
        Jobs::new(&kv).insert(&job).unwrap();
        assert!(Jobs::new(&kv).delete(job.id, Timestamp(1)).unwrap());
        assert!(
            kv.keys().iter().all(|k| !k.contains(&job.id.to_string())),
            "{:?}",
            kv.keys()
        );
    }
}
