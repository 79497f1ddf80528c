//! The bound on work in flight: at most `max_running_jobs` jobs run at once
//! across every instance sharing the store, each holding a slot.
//!
//! The slots are one small value (one entry per running job) changed by
//! compare-and-swap. A slot's lease is its job's lease: a processor takes a
//! slot just before claiming the job under the same token, and gives it
//! back when the run ends. A processor that dies keeps its slot only until
//! its job's lease runs out (the heartbeat renews the job, not the slot):
//! an entry older than one lease is checked against the job record, and is
//! free unless that job still runs under the entry's token.
//!
//! A processor stopped past its lease (SIGSTOP, a stalled host, a store
//! down that long) loses its slot; when it wakes, its next heartbeat finds
//! its lease run out (renewals refuse a lease that expired, see
//! [`Job::progress`](crate::job::Job::progress)) and stops it, so the
//! bound can be exceeded by one job for at most one heartbeat interval.

use crate::clock::Timestamp;
use crate::id::JobId;
use crate::keys;
use crate::kv::{KvError, KvStore, MAX_CAS_ATTEMPTS, contention, create_once};
use crate::problem::Error;
use crate::repo::Jobs;
use crate::runtime::Ctx;
use serde::{Deserialize, Serialize};

/// One running job's hold on a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Slot {
    job: JobId,
    token: String,
    since: Timestamp,
}

/// Takes a slot for job `id` under `token` (the token its claim will use);
/// `false` when every slot is held.
pub fn acquire(ctx: &Ctx<'_>, id: JobId, token: &str) -> Result<bool, Error> {
    create_once(ctx.kv, keys::SLOTS, b"[]")?;
    for _ in 0..MAX_CAS_ATTEMPTS {
        let now = ctx.runtime.now();
        let Some(raw) = ctx.kv.get(keys::SLOTS)? else {
            continue;
        };
        let mut held = live(ctx, decode(&raw), now)?;
        // A swap that landed though reported as failed (read back after a
        // concurrent write) already holds our slot.
        if held.iter().any(|slot| slot.token == token) {
            return Ok(true);
        }
        if held.len() >= ctx.config.max_running_jobs as usize {
            return Ok(false);
        }
        held.push(Slot {
            job: id,
            token: token.to_owned(),
            since: now,
        });
        if ctx
            .kv
            .compare_and_swap(keys::SLOTS, &raw, &encode(&held)?)?
        {
            return Ok(true);
        }
    }
    Err(contention(keys::SLOTS).into())
}

/// Gives back the slot held under `token`, if it still is.
pub fn release(kv: &dyn KvStore, token: &str) -> Result<(), KvError> {
    for _ in 0..MAX_CAS_ATTEMPTS {
        let Some(raw) = kv.get(keys::SLOTS)? else {
            return Ok(());
        };
        let mut held = decode(&raw);
        let before = held.len();
        held.retain(|slot| slot.token != token);
        if held.len() == before {
            return Ok(());
        }
        let encoded = encode(&held).map_err(|e| KvError(e.to_string()))?;
        if kv.compare_and_swap(keys::SLOTS, &raw, &encoded)? {
            return Ok(());
        }
    }
    Err(contention(keys::SLOTS))
}

/// How many slots are free: one read, plus one per entry older than a
/// lease (a long job, or a dead processor's), checked against its job.
pub fn free(ctx: &Ctx<'_>) -> Result<usize, Error> {
    let held = match ctx.kv.get(keys::SLOTS)? {
        Some(raw) => live(ctx, decode(&raw), ctx.runtime.now())?.len(),
        None => 0,
    };
    Ok((ctx.config.max_running_jobs as usize).saturating_sub(held))
}

/// The entries still held: young ones, and old ones whose job still runs
/// under their token with a live lease.
fn live(ctx: &Ctx<'_>, slots: Vec<Slot>, now: Timestamp) -> Result<Vec<Slot>, Error> {
    let jobs = Jobs::new(ctx.kv);
    let mut held = Vec::with_capacity(slots.len());
    for slot in slots {
        let alive = now < slot.since.after(ctx.config.lease)
            || jobs.get(slot.job, now)?.is_some_and(|job| {
                job.is_held_by(&slot.token)
                    && job.lease.as_ref().is_some_and(|l| now < l.expires_at)
            });
        if alive {
            held.push(slot);
        }
    }
    Ok(held)
}

fn decode(raw: &[u8]) -> Vec<Slot> {
    // An unreadable value holds no slot: it is replaced at the next swap.
    serde_json::from_slice(raw).unwrap_or_default()
}

fn encode(slots: &[Slot]) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(slots).map_err(|e| Error::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::job::Claim;
    use crate::job::tests::new_job;
    use crate::kv::MemoryKv;
    use crate::runtime::tests::FixedClock;
    use std::time::Duration;

    fn ctx<'a>(kv: &'a MemoryKv, clock: &'a FixedClock, config: &'a Config) -> Ctx<'a> {
        Ctx {
            kv,
            runtime: clock,
            config: config.into(),
            pipeline: Some(crate::IMAGE_PIPELINE),
        }
    }

    fn config(max_running_jobs: u32) -> Config {
        Config {
            max_running_jobs,
            lease: Duration::from_secs(15),
            ..Config::default()
        }
    }

    #[test]
    fn no_more_than_max_running_jobs_slots_are_taken() {
        let (kv, clock, config) = (MemoryKv::new(), FixedClock::at(0), config(2));
        let ctx = ctx(&kv, &clock, &config);
        assert!(acquire(&ctx, JobId::random(), "a").unwrap());
        assert!(acquire(&ctx, JobId::random(), "b").unwrap());
        assert!(!acquire(&ctx, JobId::random(), "c").unwrap());
        assert_eq!(free(&ctx).unwrap(), 0);
        release(&kv, "a").unwrap();
        assert_eq!(free(&ctx).unwrap(), 1);
        assert!(acquire(&ctx, JobId::random(), "c").unwrap());
    }

    #[test]
    fn a_dead_processors_slot_comes_back_when_its_jobs_lease_runs_out() {
        let (kv, clock, config) = (MemoryKv::new(), FixedClock::at(0), config(1));
        let ctx = ctx(&kv, &clock, &config);
        let job = new_job(Timestamp(0));
        let Claim::Claimed(running) = job.claim("a", Timestamp(0), config.lease, 3) else {
            panic!("a new job can be claimed");
        };
        Jobs::new(&kv).insert(&running).unwrap();
        assert!(acquire(&ctx, job.id, "a").unwrap());
        // The job's lease is renewed by its heartbeat: the slot stays held
        // past its own first lease.
        let renewed = running
            .progress("a", 50, Timestamp(14_000), config.lease)
            .unwrap();
        Jobs::new(&kv)
            .update(job.id, Timestamp(14_000), |_| Some(renewed.clone()))
            .unwrap();
        clock.set(20_000);
        assert!(!acquire(&ctx, JobId::random(), "b").unwrap());
        // Then the processor dies: no more renewals.
        clock.set(29_000);
        assert!(acquire(&ctx, JobId::random(), "b").unwrap());
    }

    #[test]
    fn a_slot_taken_just_now_is_held_before_its_job_is_claimed() {
        let (kv, clock, config) = (MemoryKv::new(), FixedClock::at(0), config(1));
        let ctx = ctx(&kv, &clock, &config);
        assert!(acquire(&ctx, JobId::random(), "a").unwrap());
        clock.set(14_999);
        assert!(!acquire(&ctx, JobId::random(), "b").unwrap());
        clock.set(15_000);
        assert!(acquire(&ctx, JobId::random(), "b").unwrap());
    }

    #[test]
    fn releasing_a_slot_taken_over_leaves_the_new_holder_alone() {
        let (kv, clock, config) = (MemoryKv::new(), FixedClock::at(0), config(1));
        let ctx = ctx(&kv, &clock, &config);
        assert!(acquire(&ctx, JobId::random(), "a").unwrap());
        clock.set(60_000);
        assert!(acquire(&ctx, JobId::random(), "b").unwrap());
        release(&kv, "a").unwrap();
        assert!(!acquire(&ctx, JobId::random(), "c").unwrap());
    }

    #[test]
    fn concurrent_acquirers_never_exceed_the_bound() {
        let kv = std::sync::Arc::new(MemoryKv::new());
        let winners: usize = (0..16)
            .map(|t| {
                let kv = kv.clone();
                std::thread::spawn(move || {
                    let (clock, config) = (FixedClock::at(0), config(3));
                    let ctx = ctx(&kv, &clock, &config);
                    usize::from(acquire(&ctx, JobId::random(), &format!("t{t}")).unwrap())
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(winners, 3);
    }
}
