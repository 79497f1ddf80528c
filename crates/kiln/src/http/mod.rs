//! Kiln's HTTP contract, on plain `http` types: each component turns its
//! Spin request into an [`http::Request`], calls one handler here, sends the
//! [`Reply`]'s response, and then runs the reply's follow-ups (Spin keeps an
//! instance running after its response is complete).

mod events;
mod headers;
mod notify;
mod process;
mod render;
mod resources;
mod submit;

pub use events::EventStream;
pub use headers::{BodyReader, if_none_match};
pub use process::handle as handle_process;
pub use resources::handle as handle_resources;
pub use submit::handle as handle_submit;

use crate::config::Dispatch;
use crate::id::JobId;
use crate::pending;
use crate::problem::Error;
use crate::processing;
use crate::repo::{Jobs, Update};
use crate::retention;
use crate::runtime::Ctx;

/// A response body is always fully buffered: the largest is one image.
pub type Response = http::Response<Vec<u8>>;

/// Work to do after the response has been sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUp {
    /// Ask a processor to run this new job.
    Dispatch(JobId),
    /// Ask a processor to run this job if it is stuck (never picked up, or
    /// its processor's lease ran out).
    Redispatch(JobId),
    /// Re-dispatch lost jobs and delete expired ones, a bounded amount.
    Maintain,
    /// Run a job this processor has claimed.
    Process(processing::Ticket),
    /// Send the job's webhook event, if an attempt is due.
    Notify(JobId),
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
/// its answer already). A follow-up that may have finished a job here then
/// sends its webhook.
pub fn follow_up(ctx: &Ctx<'_>, follow_up: FollowUp) {
    if let Err(err) = run(ctx, &follow_up) {
        ctx.runtime.log(&format!("{follow_up:?} failed: {err}"));
    }
    let finished_here = match &follow_up {
        FollowUp::Process(ticket) => Some(ticket.id),
        FollowUp::Dispatch(id) | FollowUp::Redispatch(id)
            if ctx.config.dispatch == Dispatch::Local =>
        {
            Some(*id)
        }
        _ => None,
    };
    if let Some(id) = finished_here
        && let Err(err) = notify::deliver_if_due(ctx, id)
    {
        ctx.runtime.log(&format!("webhook of {id} failed: {err}"));
    }
}

/// Runs a follow-up and says how it went.
fn run(ctx: &Ctx<'_>, follow_up: &FollowUp) -> Result<(), Error> {
    match follow_up {
        FollowUp::Dispatch(id) => dispatch(ctx, *id),
        FollowUp::Redispatch(id) => redispatch_if_stuck(ctx, *id),
        FollowUp::Maintain => maintain(ctx),
        FollowUp::Process(ticket) => processing::run(ctx, ticket, None).map(drop),
        FollowUp::Notify(id) => notify::deliver_if_due(ctx, *id),
    }
}

/// Has job `id` run: by a processor called through service chaining, or
/// here, in this instance (the local dispatch).
fn dispatch(ctx: &Ctx<'_>, id: JobId) -> Result<(), Error> {
    match ctx.config.dispatch {
        Dispatch::Chained => ctx
            .runtime
            .dispatch(id)
            .map_err(|e| Error::Internal(format!("dispatch of {id}: {e}"))),
        Dispatch::Local => processing::run_here(ctx, id, None).map(drop),
    }
}

/// Dispatches job `id` only if it needs a processor, and only if this
/// request is the one that recorded the new dispatch time, so concurrent
/// readers of a stuck job send one dispatch, not one each.
fn redispatch_if_stuck(ctx: &Ctx<'_>, id: JobId) -> Result<(), Error> {
    let now = ctx.runtime.now();
    if ctx.config.dispatch == Dispatch::Local && !ctx.budget().can_start(now) {
        // This instance could not run it: leave it stuck for one that can,
        // instead of recording a dispatch that never happens.
        return Ok(());
    }
    let lease = ctx.config.lease;
    let update = Jobs::new(ctx.kv).update(id, now, |job| {
        job.needs_dispatch(now, lease).then(|| job.dispatched(now))
    })?;
    match update {
        Update::Changed(_) => dispatch(ctx, id),
        _ => Ok(()),
    }
}

/// Re-dispatches stuck jobs, sends due webhooks and sweeps expired jobs;
/// one failure (the processor or a receiver may be down) does not stop the
/// rest.
fn maintain(ctx: &Ctx<'_>) -> Result<(), Error> {
    let due = pending::due(ctx.kv, ctx.runtime.now(), ctx.config.lease)?;
    for id in due.dispatch {
        if let Err(err) = redispatch_if_stuck(ctx, id) {
            ctx.runtime
                .log(&format!("re-dispatch of {id} failed: {err}"));
        }
    }
    for id in due.notify {
        if let Err(err) = notify::deliver_if_due(ctx, id) {
            ctx.runtime.log(&format!("webhook of {id} failed: {err}"));
        }
    }
    retention::sweep(ctx.kv, ctx.runtime.now(), ctx.config.max_attempts).map(drop)
}

#[cfg(test)]
mod events_tests;
#[cfg(test)]
mod local_dispatch_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod webhook_tests;
