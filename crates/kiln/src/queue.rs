//! The jobs waiting for a slot (see [`crate::slots`]), oldest first: a set
//! of `id@created_at` entries spread over `index_shards` keys by id.
//!
//! A job is listed once it is accepted (after its record is stored: see
//! [`crate::listing`] for why a stored job is never missing from it for
//! long), taken off when a processor claims it, and listed again when it must run again (its processor died, or a
//! synchronous request paused it). An entry whose job no longer waits is
//! forgotten by whoever comes across it.

use crate::clock::Timestamp;
use crate::id::JobId;
use crate::job::Job;
use crate::keys;
use crate::keyset::{self, job_member, parse_job_member};
use crate::kv::{KvError, KvStore};
use crate::problem::Error;
use crate::repo::Jobs;
use crate::runtime::Ctx;

/// Where a waiting job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePlace {
    /// 1 when it starts next.
    pub position: usize,
    /// When to look again, in seconds: one per round of `max_running_jobs`
    /// jobs ahead (a hint; jobs take about a second), at most a minute.
    pub retry_after: u64,
}

impl QueuePlace {
    /// The place of a job behind `waiting` others.
    pub fn behind(waiting: usize, max_running_jobs: u32) -> Self {
        QueuePlace::new(waiting + 1, max_running_jobs)
    }

    fn new(position: usize, max_running_jobs: u32) -> Self {
        let rounds = position.div_ceil(max_running_jobs.max(1) as usize) as u64;
        QueuePlace {
            position,
            retry_after: rounds.clamp(1, 60),
        }
    }
}

/// Lets a new job in, or answers `503 queue-full` when `max_queued_jobs`
/// wait already; how many wait, when it counted them (a slot is free:
/// `None`).
/// The whole queue is read (every shard) only when `max_queued_jobs` is
/// set: otherwise admission costs one read.
pub fn admit(ctx: &Ctx<'_>) -> Result<Option<usize>, Error> {
    let Some(max) = ctx.config.max_queued_jobs else {
        return Ok(None);
    };
    if crate::slots::free(ctx)? > 0 {
        return Ok(None);
    }
    let waiting = len(ctx.kv, ctx.config.index_shards)?;
    if waiting as u64 >= max {
        return Err(Error::QueueFull {
            waiting,
            retry_after: QueuePlace::new(waiting, ctx.config.max_running_jobs).retry_after,
        });
    }
    Ok(Some(waiting))
}

/// The place of a job that has not started, if every slot is held; `None`
/// otherwise (and for a job that started), without reading the queue.
/// Two reads: the slots, and the job's shard of the queue.
/// Best effort: a store error leaves the place out rather than failing
/// the read.
pub fn place(ctx: &Ctx<'_>, job: &Job) -> Option<QueuePlace> {
    if job.status != crate::job::Status::NotStarted || crate::slots::free(ctx).ok()? > 0 {
        return None;
    }
    place_in_queue(ctx, job)
}

/// The place of a listed job, for a caller that knows every slot is held:
/// one read, the job's shard of the queue. Best effort, as [`place`].
pub fn place_in_queue(ctx: &Ctx<'_>, job: &Job) -> Option<QueuePlace> {
    let position = position(ctx.kv, ctx.config.index_shards, job).ok()?;
    Some(QueuePlace::new(position, ctx.config.max_running_jobs))
}

/// Lists job `id` as waiting.
pub fn add(kv: &dyn KvStore, id: JobId, created_at: Timestamp, shard: u32) -> Result<(), KvError> {
    keyset::insert(kv, &keys::queue(shard), &job_member(id, created_at))
}

/// Lists a job that must run again; it keeps its place (its age).
pub fn add_again(kv: &dyn KvStore, job: &Job) -> Result<(), KvError> {
    add(kv, job.id, job.created_at, job.index_shard)
}

/// Takes job `id` off the queue.
pub fn remove(
    kv: &dyn KvStore,
    id: JobId,
    created_at: Timestamp,
    shard: u32,
) -> Result<(), KvError> {
    keyset::remove(kv, &keys::queue(shard), &[job_member(id, created_at)])
}

/// One entry, where it is stored.
struct Entry {
    created_at: Timestamp,
    id: JobId,
    shard: u32,
    member: String,
}

/// Every entry, oldest first.
fn entries(kv: &dyn KvStore, shards: u32) -> Result<Vec<Entry>, KvError> {
    let mut entries = Vec::new();
    for shard in 0..shards {
        for member in keyset::members(kv, &keys::queue(shard))? {
            if let Some((id, created_at)) = parse_job_member(&member) {
                entries.push(Entry {
                    created_at,
                    id,
                    shard,
                    member,
                });
            }
        }
    }
    entries.sort_unstable_by_key(|e| (e.created_at, e.id.to_string()));
    Ok(entries)
}

/// How many jobs wait (entries not yet cleaned up included).
pub fn len(kv: &dyn KvStore, shards: u32) -> Result<usize, KvError> {
    (0..shards).try_fold(0, |sum, shard| {
        Ok(sum + keyset::members(kv, &keys::queue(shard))?.len())
    })
}

/// The place of a waiting job, estimated from its own shard (one read,
/// whatever the length of the queue): the jobs ahead of it there, times
/// the number of shards (jobs spread evenly over them), plus one. Exact
/// with one shard.
pub fn position(kv: &dyn KvStore, shards: u32, job: &Job) -> Result<usize, KvError> {
    let ahead_in_shard = keyset::members(kv, &keys::queue(job.index_shard))?
        .iter()
        .filter_map(|member| parse_job_member(member))
        .filter(|&(id, created_at)| {
            (created_at, id.to_string()) < (job.created_at, job.id.to_string())
        })
        .count();
    Ok(1 + ahead_in_shard * shards.max(1) as usize)
}

/// Up to `count` of the oldest jobs that can start now (never started, or
/// whose processor's lease ran out); forgets entries of jobs that no longer
/// wait: started, finished, or gone.
pub fn oldest(ctx: &Ctx<'_>, count: usize) -> Result<Vec<JobId>, Error> {
    let jobs = Jobs::new(ctx.kv);
    let now = ctx.runtime.now();
    let mut next = Vec::new();
    let mut gone: Vec<Entry> = Vec::new();
    for entry in entries(ctx.kv, ctx.config.index_shards)? {
        if next.len() == count {
            break;
        }
        match jobs.get(entry.id, now)? {
            Some(job) if job.is_claimable(now) => next.push(entry.id),
            // No record: deleted, or the entry raced its deletion. Kept a
            // lease, as entries were when they came before the record.
            None if now < entry.created_at.after(ctx.config.lease) => {}
            _ => gone.push(entry),
        }
    }
    for shard in 0..ctx.config.index_shards {
        let members: Vec<String> = gone
            .iter()
            .filter(|e| e.shard == shard)
            .map(|e| e.member.clone())
            .collect();
        if !members.is_empty() {
            keyset::remove(ctx.kv, &keys::queue(shard), &members)?;
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::job::tests::new_job;
    use crate::kv::MemoryKv;
    use crate::runtime::tests::FixedClock;

    fn queued(kv: &MemoryKv, created: u64, shards: u32) -> Job {
        let mut job = new_job(Timestamp(created));
        job.index_shard = job.id.shard(shards);
        add_again(kv, &job).unwrap();
        Jobs::new(kv).insert(&job).unwrap();
        job
    }

    #[test]
    fn jobs_start_oldest_first_whatever_their_shard() {
        let (kv, clock) = (MemoryKv::new(), FixedClock::at(100));
        let config = Config {
            index_shards: 4,
            ..Config::default()
        };
        let ctx = Ctx {
            kv: &kv,
            runtime: &clock,
            config: (&config).into(),
            pipeline: Some(crate::IMAGE_PIPELINE),
        };
        let jobs: Vec<Job> = [30, 10, 20, 40, 0]
            .into_iter()
            .map(|created| queued(&kv, created, 4))
            .collect();
        let oldest = oldest(&ctx, 3).unwrap();
        assert_eq!(oldest, [jobs[4].id, jobs[1].id, jobs[2].id]);
        assert_eq!(len(&kv, 4).unwrap(), 5);
    }

    #[test]
    fn a_position_is_exact_with_one_shard_and_an_estimate_with_several() {
        let kv = MemoryKv::new();
        let jobs: Vec<Job> = (0..5).map(|created| queued(&kv, created, 1)).collect();
        assert_eq!(position(&kv, 1, &jobs[0]).unwrap(), 1);
        assert_eq!(position(&kv, 1, &jobs[4]).unwrap(), 5);
        let kv = MemoryKv::new();
        let jobs: Vec<Job> = (0..400).map(|created| queued(&kv, created, 4)).collect();
        let last = &jobs[399];
        let estimate = position(&kv, 4, last).unwrap();
        // The jobs ahead in its shard, times the shards: how many that is
        // depends on the random ids, so the test counts them.
        let ahead_in_shard = jobs[..399]
            .iter()
            .filter(|job| job.index_shard == last.index_shard)
            .count();
        assert_eq!(estimate, 1 + 4 * ahead_in_shard);
        // About 400 (the shard holds a binomial 100 ± 8.7): 200..=600 is
        // over five standard deviations either way.
        assert!((200..=600).contains(&estimate), "{estimate}");
    }

    #[test]
    fn entries_of_jobs_that_no_longer_wait_are_forgotten() {
        let (kv, clock) = (MemoryKv::new(), FixedClock::at(100_000));
        let config = Config::default();
        let ctx = Ctx {
            kv: &kv,
            runtime: &clock,
            config: (&config).into(),
            pipeline: Some(crate::IMAGE_PIPELINE),
        };
        let finished = queued(&kv, 0, 8);
        Jobs::new(&kv)
            .update(finished.id, Timestamp(1), |job| job.cancel(Timestamp(1)))
            .unwrap();
        let waiting = queued(&kv, 1, 8);
        // A job that vanished, and one whose upload is still under way.
        add(&kv, JobId::random(), Timestamp(2), 0).unwrap();
        add(&kv, JobId::random(), Timestamp(99_000), 0).unwrap();
        assert_eq!(oldest(&ctx, 10).unwrap(), [waiting.id]);
        assert_eq!(len(&kv, 8).unwrap(), 2);
    }
}
