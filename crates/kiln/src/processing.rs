//! Running a job: claim it with compare-and-swap under a lease, run the
//! image pipeline while a `Heartbeat` renews the lease (from inside long
//! stages too) and notices a cancel, store the result, record the outcome.
//!
//! A job runs either in the private processor (chained dispatch) or in the
//! instance at hand ([`run_here`], the local dispatch of platforms without
//! service chaining), within that instance's [`Budget`](crate::budget::Budget).

use crate::blob;
use crate::clock::Timestamp;
use crate::id::JobId;
use crate::job::{Claim, ImageRef, Job, ResultWarning};
use crate::keys;
use crate::problem::Error;
use crate::queue;
use crate::repo::{Jobs, Update};
use crate::runtime::Ctx;
use crate::slots;
use kiln_image::{ImageError, Progress, Stage};
use std::ops::ControlFlow;
use std::time::Duration;

/// What a processor holds once it claimed a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The job.
    pub id: JobId,
    /// The processor's lease token.
    pub token: String,
    /// Which claim of the job this is (1 for the first); names the chunks
    /// of the result.
    pub attempt: u32,
}

/// What a processor's attempt to take a job came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The caller now holds the job and must [`run`] it.
    Started {
        /// The job as claimed.
        job: Job,
        /// What the caller holds.
        ticket: Ticket,
    },
    /// The job crashed too many processors and was failed instead.
    GaveUp(Job),
    /// The job is finished or another processor holds it.
    Refused(Job),
    /// Every slot is held: the job stays in the queue until one frees.
    Waiting(Job),
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The job's outcome (succeeded or failed) is recorded.
    Finished,
    /// The job was canceled, deleted or taken over meanwhile: nothing was
    /// recorded.
    Abandoned,
    /// The run reached its `pause_at` and gave the job back unfinished, for
    /// the next dispatch.
    Paused,
    /// [`run_here`] did not run it: someone else holds it, it is finished,
    /// every slot is held, or too little of this instance's working time is
    /// left.
    NotRun,
}

/// Tries to take job `id`: first one of the `max_running_jobs` slots, then
/// the job itself under the same token. The slot is given back unless the
/// job was taken.
pub fn claim(ctx: &Ctx<'_>, id: JobId) -> Result<Claimed, Error> {
    let jobs = Jobs::new(ctx.kv);
    let job = jobs
        .get(id, ctx.runtime.now())?
        .ok_or(Error::NotFound("operation"))?;
    if !job.is_claimable(ctx.runtime.now()) {
        return Ok(Claimed::Refused(job));
    }
    let token = JobId::random().to_string();
    if !slots::acquire(ctx, id, &token)? {
        return Ok(Claimed::Waiting(job));
    }
    let claimed = claim_with_slot(ctx, id, token.clone());
    match &claimed {
        // Best effort: an entry left behind is forgotten by the next reader.
        Ok(Claimed::Started { job, .. }) => {
            queue::remove(ctx.kv, id, job.created_at, job.index_shard).ok()
        }
        _ => slots::release(ctx.kv, &token).ok(),
    };
    claimed
}

/// Takes job `id` under `token`, whose slot the caller holds.
fn claim_with_slot(ctx: &Ctx<'_>, id: JobId, token: String) -> Result<Claimed, Error> {
    let now = ctx.runtime.now();
    let mut gave_up = false;
    let update = Jobs::new(ctx.kv).update(id, now, |job| {
        match job.claim(&token, now, ctx.config.lease, ctx.config.max_attempts) {
            Claim::Claimed(next) => {
                gave_up = false;
                Some(next)
            }
            Claim::GaveUp(next) => {
                gave_up = true;
                Some(next)
            }
            Claim::Refused => None,
        }
    })?;
    match update {
        Update::Missing => Err(Error::NotFound("operation")),
        Update::Unchanged(job) => Ok(Claimed::Refused(job)),
        Update::Changed(job) if gave_up => Ok(Claimed::GaveUp(job)),
        Update::Changed(job) => {
            let ticket = Ticket {
                id,
                token,
                attempt: job.attempts,
            };
            Ok(Claimed::Started { job, ticket })
        }
    }
}

/// Claims job `id` and runs it in this instance, if this instance runs
/// jobs (it has a [`Pipeline`](crate::Pipeline)) and has the time for it
/// (see [`Budget::can_start`](crate::budget::Budget::can_start)).
pub fn run_here(ctx: &Ctx<'_>, id: JobId, pause_at: Option<Timestamp>) -> Result<Outcome, Error> {
    if ctx.pipeline.is_none() || !ctx.budget().can_start(ctx.runtime.now()) {
        return Ok(Outcome::NotRun);
    }
    match claim(ctx, id)? {
        Claimed::Started { ticket, .. } => run(ctx, &ticket, pause_at),
        Claimed::GaveUp(_) | Claimed::Refused(_) | Claimed::Waiting(_) => Ok(Outcome::NotRun),
    }
}

/// Runs a claimed job to its end, or until `pause_at`, when it gives the
/// job back; then gives back its slot. A store failure is returned as is:
/// the lease (and with it the slot) then expires and the job is
/// re-dispatched.
pub fn run(ctx: &Ctx<'_>, ticket: &Ticket, pause_at: Option<Timestamp>) -> Result<Outcome, Error> {
    let outcome = run_in_slot(ctx, ticket, pause_at);
    if let Err(err) = slots::release(ctx.kv, &ticket.token) {
        ctx.runtime
            .log(&format!("slot of job {} not released: {err}", ticket.id));
    }
    if matches!(outcome, Ok(Outcome::Finished)) {
        forget_earlier_results(ctx, ticket);
    }
    outcome
}

/// A finished job keeps only its own attempt's result: an earlier attempt
/// that died between storing its result and recording it left chunks no
/// record points to. Best effort, and only for a job claimed more than
/// once; whatever stays is deleted with the job.
fn forget_earlier_results(ctx: &Ctx<'_>, ticket: &Ticket) {
    for attempt in 1..ticket.attempt {
        if let Err(err) = blob::delete_all(ctx.kv, &keys::result_blob(ticket.id, attempt)) {
            ctx.runtime.log(&format!(
                "result of attempt {attempt} of job {} not deleted: {err}",
                ticket.id
            ));
        }
    }
}

fn run_in_slot(
    ctx: &Ctx<'_>,
    ticket: &Ticket,
    pause_at: Option<Timestamp>,
) -> Result<Outcome, Error> {
    let (id, token) = (ticket.id, ticket.token.as_str());
    let Some(pipeline) = ctx.pipeline else {
        // Claimed by a component that runs no job: for the next dispatch.
        return release(ctx, ticket);
    };
    let jobs = Jobs::new(ctx.kv);
    let Some(job) = jobs
        .get(id, ctx.runtime.now())?
        .filter(|j| j.is_held_by(token))
    else {
        // Canceled or deleted since the claim (its upload may be gone).
        return Ok(Outcome::Abandoned);
    };
    let source = match blob::read(ctx.kv, &job.source) {
        Ok(bytes) => bytes,
        Err(blob::BlobError::Store(err)) => return Err(err.into()),
        Err(err @ blob::BlobError::Incomplete(_)) => {
            return record_failure(ctx, id, token, Error::Internal(err.to_string()));
        }
    };
    let ops = match kiln_image::parse_ops(&job.ops) {
        Ok(ops) => ops,
        Err(err) => return record_failure(ctx, id, token, Error::Internal(err.to_string())),
    };
    let limits = ctx.config.image_limits();
    let mut heartbeat = Heartbeat::new(ctx, ticket, pause_at);
    let processed = pipeline(&source, &ops, &limits, &mut |p| heartbeat.beat(p));
    drop(source);
    match processed {
        Ok(output) => {
            let etag = crate::etag::strong(&output.bytes);
            let blob = blob::write(
                ctx.kv,
                keys::result_blob(id, ticket.attempt),
                &output.bytes,
                ctx.config.blob_chunk_bytes,
            )?;
            let result = ImageRef {
                blob,
                media_type: output.format.media_type().to_owned(),
                etag,
                width: output.width,
                height: output.height,
                warnings: output.warnings.iter().map(ResultWarning::from).collect(),
            };
            let now = ctx.runtime.now();
            match jobs.update(id, now, |job| job.succeed(token, result.clone(), now)) {
                Ok(Update::Changed(_)) => Ok(Outcome::Finished),
                other => {
                    // Canceled, deleted or taken over meanwhile: the result
                    // is nobody's.
                    blob::delete(ctx.kv, &result.blob).ok();
                    other.map(|_| Outcome::Abandoned)
                }
            }
        }
        Err(ImageError::Canceled) => match heartbeat.stopped {
            Some(Stop::Pause) => release(ctx, ticket),
            Some(Stop::OutOfTime { seconds }) => {
                record_failure(ctx, id, token, Error::ProcessingTooLong { seconds })
            }
            Some(Stop::Lost) | None => Ok(Outcome::Abandoned),
        },
        Err(err) => record_failure(ctx, id, token, err.into()),
    }
}

fn record_failure(ctx: &Ctx<'_>, id: JobId, token: &str, error: Error) -> Result<Outcome, Error> {
    if let Error::Internal(message) = &error {
        ctx.runtime.log(&format!("job {id} failed: {message}"));
    }
    let problem = error.to_problem();
    let now = ctx.runtime.now();
    match Jobs::new(ctx.kv).update(id, now, |job| job.fail(token, problem.clone(), now))? {
        Update::Changed(_) => Ok(Outcome::Finished),
        _ => Ok(Outcome::Abandoned),
    }
}

/// Gives a paused job back to the queue, where its age puts it first.
fn release(ctx: &Ctx<'_>, ticket: &Ticket) -> Result<Outcome, Error> {
    let now = ctx.runtime.now();
    let update = Jobs::new(ctx.kv).update(ticket.id, now, |job| job.release(&ticket.token, now))?;
    Ok(match update {
        Update::Changed(job) => {
            queue::add_again(ctx.kv, &job)?;
            Outcome::Paused
        }
        _ => Outcome::Abandoned,
    })
}

/// Why a [`Heartbeat`] stopped the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The job is no longer ours: canceled, deleted or taken over.
    Lost,
    /// The caller's `pause_at` came.
    Pause,
    /// The instance's working time ran out.
    OutOfTime {
        /// The platform's request limit, for the problem.
        seconds: u64,
    },
}

/// The longest a renewal waits while a stage reports progress: the client
/// sees `percentComplete` move at least this often.
const MAX_RENEWAL_INTERVAL: Duration = Duration::from_secs(2);

/// At a stage's start the lease is renewed if older than this, so quick
/// stages in a row cost no extra writes.
const STAGE_START_RENEWAL: Duration = Duration::from_millis(250);

/// Listens to the pipeline's progress and keeps the job's lease alive: it
/// records progress (renewing the lease) at every stage's end, at a stage's
/// start unless it just did, and within a stage whenever a third of the
/// lease (2 s at most) has passed since the last renewal, so a live
/// processor never loses its job however long one stage runs.
/// It stops the pipeline when the job is no longer ours, at `pause_at`, or
/// when the instance's working time runs out.
struct Heartbeat<'a> {
    ctx: &'a Ctx<'a>,
    ticket: &'a Ticket,
    renewed_at: Timestamp,
    renew_every: Duration,
    pause_at: Option<Timestamp>,
    work_ends_at: Option<Timestamp>,
    stopped: Option<Stop>,
}

impl<'a> Heartbeat<'a> {
    fn new(ctx: &'a Ctx<'a>, ticket: &'a Ticket, pause_at: Option<Timestamp>) -> Self {
        Heartbeat {
            ctx,
            ticket,
            // Renew at the first report: reading the upload took some of
            // the lease since the claim.
            renewed_at: Timestamp(0),
            renew_every: (ctx.config.lease / 3).min(MAX_RENEWAL_INTERVAL),
            pause_at,
            work_ends_at: ctx.budget().work_ends_at(),
            stopped: None,
        }
    }

    fn beat(&mut self, progress: Progress) -> ControlFlow<()> {
        let now = self.ctx.runtime.now();
        // Once the output is encoded, storing it is all that is left.
        let encoded = progress.stage == Stage::Encode && progress.is_stage_end();
        if !encoded && self.work_ends_at.is_some_and(|end| now >= end) {
            let seconds = self.ctx.config.request_timeout.unwrap_or_default();
            return self.stop(Stop::OutOfTime {
                seconds: seconds.as_secs(),
            });
        }
        if !encoded && self.pause_at.is_some_and(|pause| now >= pause) {
            return self.stop(Stop::Pause);
        }
        // A stage may begin with a codec call that reports nothing until it
        // returns (see `kiln_image::progress`): renewing at its start gives
        // that call all of the lease.
        let due = if progress.is_stage_end() {
            Duration::ZERO
        } else if progress.done == 0.0 {
            self.renew_every.min(STAGE_START_RENEWAL)
        } else {
            self.renew_every
        };
        if now < self.renewed_at.after(due) {
            return ControlFlow::Continue(());
        }
        let (id, token, lease) = (self.ticket.id, &self.ticket.token, self.ctx.config.lease);
        let percent = percent_complete(progress);
        match Jobs::new(self.ctx.kv).update(id, now, |job| job.progress(token, percent, now, lease))
        {
            Ok(Update::Changed(_)) => {
                self.renewed_at = now;
                ControlFlow::Continue(())
            }
            // A store hiccup is not a reason to throw the work away; the
            // final write decides.
            Err(_) => ControlFlow::Continue(()),
            Ok(_) => self.stop(Stop::Lost),
        }
    }

    fn stop(&mut self, why: Stop) -> ControlFlow<()> {
        self.stopped = Some(why);
        ControlFlow::Break(())
    }
}

/// Decoding is the first tenth, the operations (or an animation's frames)
/// share the next eight, and encoding runs up to 95 (100 is for the stored
/// result).
fn percent_complete(progress: Progress) -> u8 {
    let done = progress.done.clamp(0.0, 1.0);
    let percent = match progress.stage {
        Stage::Decode => 10.0 * done,
        Stage::Apply { index, of } | Stage::Frame { index, of } => {
            10.0 + 80.0 * (index as f32 + done) / of.max(1) as f32
        }
        Stage::Encode => 90.0 + 5.0 * done,
    };
    percent as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(stage: Stage, done: f32) -> u8 {
        percent_complete(Progress { stage, done })
    }

    #[test]
    fn percent_complete_moves_within_stages_and_never_goes_back() {
        let mut reports = vec![
            (Stage::Decode, 0.0),
            (Stage::Decode, 0.5),
            (Stage::Decode, 1.0),
        ];
        for index in 0..2 {
            for done in [0.0, 0.25, 0.75, 1.0] {
                reports.push((Stage::Apply { index, of: 2 }, done));
            }
        }
        reports.extend([
            (Stage::Encode, 0.0),
            (Stage::Encode, 0.5),
            (Stage::Encode, 1.0),
        ]);
        let percents: Vec<u8> = reports.into_iter().map(|(s, d)| at(s, d)).collect();
        assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");
        assert_eq!((percents[1], percents[2]), (5, 10));
        assert_eq!(at(Stage::Apply { index: 0, of: 2 }, 0.5), 30);
        assert_eq!(percents.last(), Some(&95));
    }

    /// An animation's frames share the operations' share, in order.
    #[test]
    fn percent_complete_counts_an_animations_frames() {
        let percents: Vec<u8> = (0..4)
            .flat_map(|index| [0.0, 1.0].map(|done| at(Stage::Frame { index, of: 4 }, done)))
            .collect();
        assert_eq!(percents, [10, 30, 30, 50, 50, 70, 70, 90]);
    }
}
