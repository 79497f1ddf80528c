//! `GET /operations/{id}` as Server-Sent Events, for clients that send
//! `Accept: text/event-stream` (browsers' `EventSource`, dashboards).
//!
//! Each change of the job record is one `status` event whose `id` is the
//! job's version and whose `data` is the operation as a plain `GET` shows
//! it. The stream ends after the terminal event, or once `max_wait_seconds`
//! have passed without one; the client reconnects with `Last-Event-ID` and
//! gets only what it has not seen. It is built on the same polling of the
//! job record as long-polling, so nothing is kept in memory between
//! requests, and a reconnection may land on any instance.

use super::headers;
use super::render;
use super::{FollowUp, Reply, follow_up};
use crate::clock::Timestamp;
use crate::config::Dispatch;
use crate::id::JobId;
use crate::job::Job;
use crate::repo::Jobs;
use crate::runtime::Ctx;
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap};

/// How long an `EventSource` waits before reconnecting, in milliseconds:
/// the same pace as `Retry-After` on a polled operation.
const RECONNECT_MS: u32 = 1000;

/// The rest of an event stream, after the events its response carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventStream {
    id: JobId,
    /// The version of the last event sent.
    sent: u64,
    /// When the stream ends if the job has not finished.
    deadline: Timestamp,
    finished: bool,
    /// Whether the stream re-dispatches the job when it finds it stuck
    /// (with service chaining; an instance that runs jobs itself does so
    /// only after its response).
    unsticks: bool,
}

impl EventStream {
    /// Waits for the job's next change and returns it as an event; `None`
    /// once the stream is over (the job finished or was deleted, or the
    /// deadline passed).
    pub fn next_event(&mut self, ctx: &Ctx<'_>) -> Option<Vec<u8>> {
        if self.finished {
            return None;
        }
        let jobs = Jobs::new(ctx.kv);
        let timeout = ctx.runtime.now().until(self.deadline);
        let changed = ctx.poll(timeout, || match jobs.get(self.id, ctx.runtime.now()) {
            Ok(Some(job)) if job.version <= self.sent => {
                // A stuck job would never change while we watch it.
                if self.unsticks && job.needs_dispatch(ctx.runtime.now(), ctx.config.lease) {
                    follow_up(ctx, FollowUp::Redispatch(self.id));
                }
                None
            }
            Ok(found) => Some(found),
            // A store error ends the stream; the client reconnects.
            Err(_) => Some(None),
        });
        let Some(Some(job)) = changed else {
            self.finished = true;
            return None;
        };
        Some(self.event(&job))
    }

    /// `job` as the next event, noting it as sent.
    fn event(&mut self, job: &Job) -> Vec<u8> {
        self.sent = job.version;
        self.finished = job.status.is_terminal();
        let mut event = format!("id: {}\nevent: status\ndata: ", job.version).into_bytes();
        // Compact JSON has no line breaks, so it is one `data` line.
        event.extend(render::operation_json(job));
        event.extend_from_slice(b"\n\n");
        event
    }
}

/// The stream's response for `job`: its current state as the first event
/// (unless `Last-Event-ID` says the client saw it), then the rest as
/// [`EventStream`]. A finished job the client has fully seen gets `204`,
/// which tells an `EventSource` to stop reconnecting.
pub(super) fn respond(
    request: &HeaderMap,
    ctx: &Ctx<'_>,
    job: Job,
    mut follow_ups: Vec<FollowUp>,
) -> Reply {
    let seen = headers::last_event_id(request).unwrap_or(0);
    if job.status.is_terminal() && job.version <= seen {
        let mut response = render::response(StatusCode::NO_CONTENT, Vec::new());
        render::set(&mut response, CACHE_CONTROL, "no-store");
        render::vary(&mut response, &["Accept"]);
        return Reply::new(response, follow_ups);
    }
    let now = ctx.runtime.now();
    let unsticks = ctx.config.dispatch == Dispatch::Chained;
    let stuck = follow_ups.contains(&FollowUp::Redispatch(job.id));
    let deadline = if stuck && !unsticks {
        // This instance runs the stuck job itself once the stream ends:
        // waiting first would only delay it, so the stream ends at once.
        now
    } else {
        now.after(ctx.config.max_wait)
    };
    let deadline = ctx
        .budget()
        .work_ends_at()
        .map_or(deadline, |end| end.min(deadline));
    if unsticks {
        // The stream re-dispatches a stuck job itself, once the client has
        // the state it found.
        follow_ups.retain(|f| *f != FollowUp::Redispatch(job.id));
    }
    let mut stream = EventStream {
        id: job.id,
        sent: seen,
        deadline,
        finished: false,
        unsticks,
    };
    let mut body = format!("retry: {RECONNECT_MS}\n\n").into_bytes();
    if job.version > seen {
        body.extend(stream.event(&job));
    }
    let mut response = render::response(StatusCode::OK, body);
    render::set(&mut response, CONTENT_TYPE, "text/event-stream");
    render::set(&mut response, CACHE_CONTROL, "no-store");
    render::vary(&mut response, &["Accept"]);
    Reply {
        response,
        follow_ups,
        stream: Some(stream),
    }
}
