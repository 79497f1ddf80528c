//! `/operations/{id}` and `/images/{id}`: read, long-poll, cancel, fetch,
//! delete.

use super::cors;
use super::events;
use super::headers::{self, BodyReader};
use super::render;
use super::{FollowUp, Reply, follow_up};
use crate::access;
use crate::blob;
use crate::config::Dispatch;
use crate::id::JobId;
use crate::job::{Job, Status};
use crate::negotiation::Accept;
use crate::problem::Error;
use crate::queue;
use crate::repo::{Jobs, Update};
use crate::runtime::Ctx;
use http::header::{CONTENT_LENGTH, ETAG};
use http::{Method, StatusCode};
use std::time::Duration;

const ALLOW: &str = "GET, HEAD, DELETE, OPTIONS";

/// Handles a request under `/operations/` or `/images/`.
pub fn handle<B: BodyReader>(request: http::Request<B>, ctx: &Ctx<'_>) -> Reply {
    // `OPTIONS` names a resource too: a malformed id is none (404).
    let named = Named::in_path(request.uri().path());
    if request.method() == Method::OPTIONS && named.is_none_or(|n| JobId::parse(n.id()).is_err()) {
        return Error::NotFound("resource").into();
    }
    cors::around(request, ctx, ALLOW, |request| resource(&request, ctx))
}

/// The resource a path names, with its id as written.
#[derive(Clone, Copy)]
enum Named<'a> {
    Operation(&'a str),
    Image(&'a str),
}

impl<'a> Named<'a> {
    fn in_path(path: &'a str) -> Option<Named<'a>> {
        path.strip_prefix("/operations/")
            .map(Named::Operation)
            .or_else(|| path.strip_prefix("/images/").map(Named::Image))
    }

    fn id(self) -> &'a str {
        match self {
            Named::Operation(id) | Named::Image(id) => id,
        }
    }
}

fn resource<B: BodyReader>(request: &http::Request<B>, ctx: &Ctx<'_>) -> Reply {
    let outcome = match Named::in_path(request.uri().path()) {
        Some(Named::Operation(id)) => operation(request, ctx, parse_id(id, "operation")),
        Some(Named::Image(id)) => image(request, ctx, parse_id(id, "image")),
        None => Err(Error::NotFound("resource")),
    };
    outcome.unwrap_or_else(|err| super::failed(ctx, err))
}

/// Both resources answer the same methods; the method is checked before the
/// id, so a `405` does not depend on which id was used.
fn allowed_method<B>(request: &http::Request<B>) -> Result<&Method, Error> {
    let method = request.method();
    if [Method::GET, Method::HEAD, Method::DELETE].contains(method) {
        Ok(method)
    } else {
        Err(Error::MethodNotAllowed { allow: ALLOW })
    }
}

/// A malformed id names no resource: 404, and it never reaches the store.
fn parse_id(text: &str, what: &'static str) -> Result<JobId, Error> {
    JobId::parse(text).map_err(|_| Error::NotFound(what))
}

fn operation<B>(
    request: &http::Request<B>,
    ctx: &Ctx<'_>,
    id: Result<JobId, Error>,
) -> Result<Reply, Error> {
    let method = allowed_method(request)?;
    let id = id?;
    let jobs = Jobs::new(ctx.kv);
    if method == Method::DELETE {
        let now = ctx.runtime.now();
        let caller = access::caller(request.headers(), ctx)?;
        // Checked on the record the cancel reads anyway: no extra read.
        let refused = std::cell::Cell::new(None);
        let cancel = |job: &Job| match access::may_change(caller.as_deref(), job) {
            Ok(()) => job.cancel(now),
            Err(err) => {
                refused.set(Some(err));
                None
            }
        };
        return match jobs.update(id, now, cancel)? {
            Update::Changed(job) => Ok(Reply::new(
                render::operation(&job, StatusCode::OK),
                vec![FollowUp::Notify(id)],
            )),
            Update::Unchanged(_) if let Some(err) = refused.take() => Err(err),
            Update::Unchanged(job) => Err(Error::Conflict(format!(
                "the operation already finished ({})",
                serde_json::to_value(job.status)
                    .unwrap_or_default()
                    .as_str()
                    .unwrap_or("")
            ))),
            Update::Missing => Err(Error::NotFound("operation")),
        };
    }
    let mut job = jobs
        .get(id, ctx.runtime.now())?
        .ok_or(Error::NotFound("operation"))?;
    access::may_read(request.headers(), ctx, &job)?;
    let mut follow_ups = Vec::new();
    // Only an unfinished job can be stuck; asking a finished one would read
    // the configuration, which the commonest read needs nowhere else.
    if !job.status.is_terminal() && job.needs_dispatch(ctx.runtime.now(), ctx.config.lease) {
        follow_ups.push(FollowUp::Redispatch(id));
    }
    if job.webhook_due(ctx.runtime.now()) {
        follow_ups.push(FollowUp::Notify(id));
    }
    if method == Method::GET && Accept::from_headers(request.headers()).wants_event_stream() {
        return Ok(events::respond(request.headers(), ctx, job, follow_ups));
    }
    let stuck = follow_ups.contains(&FollowUp::Redispatch(id));
    if let Some(seconds) = headers::preferences(request.headers()).wait
        && !job.status.is_terminal()
        // With the local dispatch this instance runs a stuck job itself,
        // after answering: waiting first would only delay it.
        && !(stuck && ctx.config.dispatch == Dispatch::Local)
    {
        if stuck {
            // A stuck job would never change while we wait: unstick it first.
            follow_ups.retain(|f| *f != FollowUp::Redispatch(id));
            follow_up(ctx, FollowUp::Redispatch(id));
        }
        let timeout = Duration::from_secs(seconds).min(ctx.config.max_wait);
        job = wait_for_change(ctx, &job, timeout)?;
    }
    let place = queue::place(ctx, &job);
    let mut response = render::operation_in_queue(&job, StatusCode::OK, place);
    let varies_with = ["Prefer", "Accept"];
    render::vary(&mut response, &varies_with);
    if job.status.is_terminal()
        && let Some(etag) = response.headers().get(ETAG).and_then(|v| v.to_str().ok())
        && headers::if_none_match(request.headers(), etag)
    {
        // A 304 says what the 200 would vary with (RFC 9110, 15.4.5): a
        // cache updating its stored answer from it keeps the whole list.
        response = render::not_modified(etag, "no-cache");
        render::vary(&mut response, &varies_with);
    } else if method == Method::HEAD {
        let length = response.body().len().to_string();
        response.body_mut().clear();
        render::set(&mut response, CONTENT_LENGTH, length);
    }
    Ok(Reply::new(response, follow_ups))
}

/// Polls until the job's status changes (or it disappears), for `Prefer: wait`.
fn wait_for_change(ctx: &Ctx<'_>, job: &Job, timeout: Duration) -> Result<Job, Error> {
    let jobs = Jobs::new(ctx.kv);
    let mut latest = job.clone();
    let changed = ctx.poll(timeout, || match jobs.get(job.id, ctx.runtime.now()) {
        Ok(Some(now)) if now.status == job.status => {
            latest = now;
            None
        }
        Ok(Some(now)) => Some(Ok(now)),
        Ok(None) => Some(Err(Error::NotFound("operation"))),
        Err(err) => Some(Err(err)),
    });
    changed.unwrap_or(Ok(latest))
}

fn image<B>(
    request: &http::Request<B>,
    ctx: &Ctx<'_>,
    id: Result<JobId, Error>,
) -> Result<Reply, Error> {
    let method = allowed_method(request)?;
    let id = id?;
    let jobs = Jobs::new(ctx.kv);
    // A deletion without a valid key is refused before the store is read.
    let caller = if method == Method::DELETE {
        access::caller(request.headers(), ctx)?
    } else {
        None
    };
    let job = jobs
        .get(id, ctx.runtime.now())?
        .ok_or(Error::NotFound("image"))?;
    if method == Method::DELETE {
        access::may_change(caller.as_deref(), &job)?;
        jobs.delete(id, ctx.runtime.now())?;
        return Ok(render::response(StatusCode::NO_CONTENT, Vec::new()).into());
    }
    let Some(result) = job
        .result
        .as_ref()
        .filter(|_| job.status == Status::Succeeded)
    else {
        return Err(Error::ImageNotReady(id));
    };
    access::may_read(request.headers(), ctx, &job)?;
    if headers::if_none_match(request.headers(), &result.etag) {
        return Ok(render::not_modified(&result.etag, render::image_cache_control(&job)).into());
    }
    if method == Method::HEAD {
        let mut response = render::image(&job, StatusCode::OK, Vec::new());
        render::head_length(&mut response, &job);
        return Ok(response.into());
    }
    let bytes = blob::read(ctx.kv, &result.blob).map_err(|err| match err {
        blob::BlobError::Store(err) => Error::Store(err),
        // Deleted between reading the record and its chunks.
        blob::BlobError::Incomplete(_) => Error::NotFound("image"),
    })?;
    Ok(render::image(&job, StatusCode::OK, bytes).into())
}
