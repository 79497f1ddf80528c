//! Kiln's HTTP contract, on plain `http` types: each component turns its
//! Spin request into an [`http::Request`], calls one handler here, sends the
//! [`Reply`]'s response, and then runs the reply's follow-ups (Spin keeps an
//! instance running after its response is complete).

mod cors;
mod events;
mod headers;
mod notify;
mod process;
mod render;
mod resources;
mod submit;

pub use cors::AllowedOrigins;
pub use events::EventStream;
pub use headers::{BodyReader, if_none_match};
pub use process::handle as handle_process;
pub use resources::handle as handle_resources;
pub use submit::handle as handle_submit;

use crate::config::Dispatch;
use crate::id::JobId;
use crate::job::Status;
use crate::keys;
use crate::kv::take_turn_after;
use crate::listing;
use crate::pending;
use crate::problem::Error;
use crate::processing;
use crate::queue;
use crate::rate_limit;
use crate::repo::Jobs;
use crate::retention;
use crate::runtime::Ctx;
use crate::slots;

/// A response body is always fully buffered: the largest is one image.
pub type Response = http::Response<Vec<u8>>;

/// Work to do after the response has been sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUp {
    /// Write a new job's index entries (again, if they were written before
    /// the answer: then nothing changes) and drop its marker.
    List(JobId),
    /// Start the oldest queued jobs while slots are free (a new job was
    /// queued, or a slot may have freed).
    StartQueued,
    /// Queue this job again if it is stuck (its processor's lease ran out,
    /// or it waited a whole lease), then start what can start.
    Redispatch(JobId),
    /// List jobs left unlisted, re-dispatch lost jobs and delete expired
    /// ones, a bounded amount.
    Maintain,
    /// Run a job this processor has claimed, then start the next queued
    /// one in its slot.
    Process(processing::Ticket),
    /// Send the job's webhook event, if an attempt is due.
    Notify(JobId),
    /// Mark a new job's place among its client's unfinished jobs as
    /// stored (see [`crate::rate_limit::mark_stored`]).
    Counted {
        /// The client (see [`crate::rate_limit::client`]).
        client: String,
        /// The job.
        job: JobId,
    },
}

/// A response and what to do once it is sent.
#[derive(Debug)]
pub struct Reply {
    /// Send this first.
    pub response: Response,
    /// Then, for an event stream, write its events as they come, after
    /// the response's body (which holds the first) and before finishing it.
    pub stream: Option<EventStream>,
    /// Then do these, in order.
    pub follow_ups: Vec<FollowUp>,
}

impl Reply {
    /// A buffered `response`, then `follow_ups`.
    pub fn new(response: Response, follow_ups: Vec<FollowUp>) -> Reply {
        Reply {
            response,
            stream: None,
            follow_ups,
        }
    }
}

impl From<Response> for Reply {
    fn from(response: Response) -> Self {
        Reply::new(response, Vec::new())
    }
}

impl From<Error> for Reply {
    fn from(error: Error) -> Self {
        render::problem(&error).into()
    }
}

/// The reply for a failed request; errors that are not the client's are
/// logged for the operator.
pub(crate) fn failed(ctx: &Ctx<'_>, error: Error) -> Reply {
    if matches!(error, Error::Internal(_) | Error::Store(_)) {
        ctx.runtime.log(&error.to_string());
    }
    error.into()
}

/// Runs a follow-up; failures are logged, never reported (the client has
/// its answer already). Jobs finished here then send their webhooks.
pub fn follow_up(ctx: &Ctx<'_>, follow_up: FollowUp) {
    let mut finished_here = Vec::new();
    if let Err(err) = run(ctx, &follow_up, &mut finished_here) {
        ctx.runtime.log(&format!("{follow_up:?} failed: {err}"));
    }
    for id in finished_here {
        if let Err(err) = notify::deliver_if_due(ctx, id) {
            ctx.runtime.log(&format!("webhook of {id} failed: {err}"));
        }
    }
}

/// Runs a follow-up and says how it went; notes the jobs it ran here.
fn run(ctx: &Ctx<'_>, follow_up: &FollowUp, finished_here: &mut Vec<JobId>) -> Result<(), Error> {
    match follow_up {
        FollowUp::List(id) => listing::settle(ctx, *id),
        FollowUp::StartQueued => start_queued(ctx, finished_here),
        FollowUp::Redispatch(id) => redispatch_if_stuck(ctx, *id, finished_here),
        FollowUp::Maintain => maintain(ctx, finished_here),
        FollowUp::Process(ticket) => {
            let ran = processing::run(ctx, ticket, None);
            finished_here.push(ticket.id);
            // Its slot is free now: the oldest waiting job takes it, so
            // nothing waits for a client's request or a timer.
            start_queued(ctx, finished_here)?;
            ran.map(drop)
        }
        FollowUp::Notify(id) => notify::deliver_if_due(ctx, *id),
        FollowUp::Counted { client, job } => rate_limit::mark_stored(ctx, client, *job),
    }
}

/// Starts the oldest waiting jobs while slots look free: each in a fresh
/// processor (chained; the processor takes the slot), or one after another
/// in this instance while it has the time (local).
fn start_queued(ctx: &Ctx<'_>, finished_here: &mut Vec<JobId>) -> Result<(), Error> {
    match ctx.config.dispatch {
        Dispatch::Chained => {
            let free = slots::free(ctx)?;
            if free == 0 {
                return Ok(());
            }
            for id in queue::oldest(ctx, free)? {
                // One unreachable processor must not keep the others idle;
                // the job stays queued for the next attempt.
                if let Err(err) = ctx.runtime.dispatch(id) {
                    ctx.runtime.log(&format!("dispatch of {id}: {err}"));
                }
            }
            Ok(())
        }
        Dispatch::Local => {
            while ctx.budget().can_start(ctx.runtime.now()) && slots::free(ctx)? > 0 {
                let Some(&id) = queue::oldest(ctx, 1)?.first() else {
                    return Ok(());
                };
                if processing::run_here(ctx, id, None)? == processing::Outcome::NotRun {
                    // Taken by another instance meanwhile, or the slots
                    // filled up: whoever holds them starts the rest.
                    return Ok(());
                }
                finished_here.push(id);
            }
            Ok(())
        }
    }
}

/// Queues job `id` again if it needs a processor (its processor's lease
/// ran out, or it waited a whole lease: its entry or its dispatch may have
/// been lost), then starts what can start. Queueing twice is harmless (the
/// queue is a set), and only a free slot lets anything start.
fn redispatch_if_stuck(
    ctx: &Ctx<'_>,
    id: JobId,
    finished_here: &mut Vec<JobId>,
) -> Result<(), Error> {
    let now = ctx.runtime.now();
    if ctx.config.dispatch == Dispatch::Local && !ctx.budget().can_start(now) {
        // This instance could not run it: leave it for one that can.
        return Ok(());
    }
    match Jobs::new(ctx.kv).get(id, now)? {
        // A job that never started waits its turn while every slot is
        // held: nothing is stuck.
        Some(job) if job.status == Status::NotStarted && slots::free(ctx)? == 0 => Ok(()),
        Some(job) if job.needs_dispatch(now, ctx.config.lease) => {
            queue::add_again(ctx.kv, &job)?;
            start_queued(ctx, finished_here)
        }
        _ => Ok(()),
    }
}

/// Lists jobs left unlisted, re-queues stuck jobs, sends due webhooks and
/// sweeps expired jobs, once a second at most across every instance; one
/// failure (the processor or a receiver may be down) does not stop the
/// rest.
fn maintain(ctx: &Ctx<'_>, finished_here: &mut Vec<JobId>) -> Result<(), Error> {
    let (now, shards) = (ctx.runtime.now(), ctx.config.index_shards);
    // One request a second does it: its reads do not grow with traffic.
    let second = now.0 / 1000;
    let Some(previous) = take_turn_after(ctx.kv, keys::MAINTAINED, second)? else {
        return Ok(());
    };
    // The first of a minute also sweeps idle clients' state, where this
    // component counts clients.
    if ctx.config.limits_clients()
        && previous / 60 != second / 60
        && let Err(err) = rate_limit::sweep(ctx)
    {
        ctx.runtime
            .log(&format!("sweeping idle clients failed: {err}"));
    }
    // Jobs stored but left unlisted by a dead instance join the indexes
    // first, so that this very check can start them.
    if let Err(err) = listing::recover(ctx) {
        ctx.runtime
            .log(&format!("listing unlisted jobs failed: {err}"));
    }
    let due = pending::due(ctx.kv, now, ctx.config.lease, shards)?;
    let jobs = Jobs::new(ctx.kv);
    let mut requeue = due.dispatch;
    // Jobs waiting their turn while every slot is held are not stuck.
    if !due.waiting.is_empty() && slots::free(ctx)? > 0 {
        requeue.extend(due.waiting);
    }
    for id in &requeue {
        let requeued = match jobs.get(*id, now) {
            Ok(Some(job)) => queue::add_again(ctx.kv, &job).map_err(Error::from),
            Ok(None) => Ok(()),
            Err(err) => Err(err),
        };
        if let Err(err) = requeued {
            ctx.runtime.log(&format!("re-queueing {id} failed: {err}"));
        }
    }
    // Queued jobs wait for a slot; only a free one lets anything start.
    if !requeue.is_empty()
        && let Err(err) = start_queued(ctx, finished_here)
    {
        ctx.runtime
            .log(&format!("starting queued jobs failed: {err}"));
    }
    for id in due.notify {
        if let Err(err) = notify::deliver_if_due(ctx, id) {
            ctx.runtime.log(&format!("webhook of {id} failed: {err}"));
        }
    }
    retention::sweep(ctx.kv, ctx.runtime.now(), ctx.config.max_attempts, shards).map(drop)
}

#[cfg(test)]
mod access_tests;
#[cfg(test)]
mod cors_tests;
#[cfg(test)]
mod events_tests;
#[cfg(test)]
mod listing_tests;
#[cfg(test)]
mod local_dispatch_tests;
#[cfg(test)]
mod queue_tests;
#[cfg(test)]
mod rate_limit_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod webhook_tests;
