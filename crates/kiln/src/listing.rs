//! Listing a new job in the indexes (retention, pending, queue) after its
//! record is stored, not before: the record, its upload and a marker go to
//! the store in one batch, which is all the `202` waits for; the index
//! entries, each a compare-and-swap on a shared key (a commit of its own
//! on Spin's SQLite store), follow once the answer is out.
//!
//! A job stored but never listed (its instance died in between) would
//! never start nor expire: its marker finds it. [`recover`] lists every
//! job whose marker is older than a lease, a scan of the store's keys at
//! most once a lease.

use crate::clock::Timestamp;
use crate::id::JobId;
use crate::job::{Job, Status};
use crate::keys;
use crate::kv::{KvError, KvStore, take_turn};
use crate::pending;
use crate::problem::Error;
use crate::queue;
use crate::repo::Jobs;
use crate::retention;
use crate::runtime::Ctx;

/// The marker stored with a new job's record: its key and value (the
/// creation time, so a scan can tell a job being listed right now from
/// one left unlisted).
pub fn marker(job: &Job) -> (String, Vec<u8>) {
    (
        keys::unlisted(job.id),
        job.created_at.0.to_string().into_bytes(),
    )
}

/// Writes the job's index entries: retention always, pending while it is
/// open, the queue while it waits. Writing them again changes nothing.
pub fn list(ctx: &Ctx<'_>, job: &Job) -> Result<(), KvError> {
    retention::schedule(
        ctx.kv,
        job.id,
        job.expires_at,
        ctx.config.retention,
        job.index_shard,
    )?;
    if job.is_open() {
        pending::add(ctx.kv, job.id, job.created_at, job.index_shard)?;
    }
    if job.status == Status::NotStarted {
        queue::add(ctx.kv, job.id, job.created_at, job.index_shard)?;
    }
    Ok(())
}

/// Drops the marker of a job that is listed (or gone).
pub fn unmark(kv: &dyn KvStore, id: JobId) -> Result<(), KvError> {
    kv.delete(&keys::unlisted(id))
}

/// How many markers one scan settles at most, to bound a request's work;
/// the rest wait for the next scan.
pub const MARKERS_PER_SCAN: usize = 64;

/// Lists the jobs whose markers are older than a lease, once a lease at
/// most across every instance; returns how many markers it settled. A
/// marker whose record is gone (a batch that failed part-way on a store
/// that is not atomic, or a job deleted meanwhile) takes what the job may
/// have left with it. One marker that cannot be settled (logged) does not
/// stop the others.
pub fn recover(ctx: &Ctx<'_>) -> Result<usize, Error> {
    let now = ctx.runtime.now();
    let lease = ctx.config.lease;
    let period = crate::clock::millis(lease).max(1);
    if !take_turn(ctx.kv, keys::UNLISTED_SCANNED, now.0 / period)? {
        return Ok(0);
    }
    let mut settled = 0;
    for key in ctx.kv.keys_starting_with(keys::UNLISTED_PREFIX)? {
        if settled == MARKERS_PER_SCAN {
            break;
        }
        let Some(id) = key
            .strip_prefix(keys::UNLISTED_PREFIX)
            .and_then(|id| JobId::parse(id).ok())
        else {
            continue;
        };
        let created_at = ctx
            .kv
            .get(&key)?
            .and_then(|raw| String::from_utf8(raw).ok()?.parse().ok())
            .map(Timestamp);
        if created_at.is_some_and(|created_at| now < created_at.after(lease)) {
            // Its instance may be listing it right now.
            continue;
        }
        match settle(ctx, id) {
            Ok(()) => settled += 1,
            Err(err) => ctx
                .runtime
                .log(&format!("settling unlisted job {id} failed: {err}")),
        }
    }
    Ok(settled)
}

/// Lists job `id` as it is now, then drops its marker. A job whose record
/// is gone (deleted meanwhile, or a batch that failed part-way on a store
/// that is not atomic) takes what it may have left with it; one that
/// expired unlisted is deleted, as nothing would ever sweep it; one whose
/// `Idempotency-Key` names another job was never announced (its instance
/// died before binding the key, and the client's retry made that other
/// job) and is discarded.
pub fn settle(ctx: &Ctx<'_>, id: JobId) -> Result<(), Error> {
    let now = ctx.runtime.now();
    let jobs = Jobs::new(ctx.kv);
    match jobs.get(id, now)? {
        Some(job) if never_announced(ctx.kv, &job)? => jobs.discard(&job)?,
        Some(job) => list(ctx, &job)?,
        None if jobs.delete(id, now)? => {}
        None => jobs.delete_leftovers(id, ctx.config.max_attempts)?,
    }
    Ok(unmark(ctx.kv, id)?)
}

/// Whether the job's `Idempotency-Key` names another job: a job is
/// announced only once its key names it, and a key names another job
/// only when this one was never announced (a key is rebound only once its
/// job is gone). A key that names none is no proof: left as it is.
fn never_announced(kv: &dyn KvStore, job: &Job) -> Result<bool, KvError> {
    let Some(entry) = &job.idempotency_entry else {
        return Ok(false);
    };
    Ok(crate::idempotency::bound_job(kv, entry)?.is_some_and(|bound| bound != job.id))
}
