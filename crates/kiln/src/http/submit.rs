//! `POST /images`: store the upload, then answer `201 Created` with the
//! result when it is ready in time, or `202 Accepted` with the operation.

use super::cors;
use super::headers::{self, BodyReader};
use super::render::{self, set};
use super::{FollowUp, Reply};
use crate::access;
use crate::blob;
use crate::config::Dispatch;
use crate::id::JobId;
use crate::idempotency::{self, IdempotencyKey};
use crate::job::{Job, Status};
use crate::listing;
use crate::negotiation::Accept;
use crate::prefer::{Preferences, Return};
use crate::problem::Error;
use crate::processing::{self, Outcome};
use crate::queue::{self, QueuePlace};
use crate::rate_limit;
use crate::repo::Jobs;
use crate::runtime::Ctx;
use crate::slots;
use crate::submission::{self, Accepted, Upload};
use http::header::{CONTENT_LOCATION, LOCATION};
use http::{Method, StatusCode};
use std::time::Duration;

/// What `/images` answers.
const ALLOW: &str = "POST, OPTIONS";

/// Handles a request to `/images`.
pub fn handle<B: BodyReader>(request: http::Request<B>, ctx: &Ctx<'_>) -> Reply {
    cors::around(request, ctx, ALLOW, |request| submission(request, ctx))
}

fn submission<B: BodyReader>(request: http::Request<B>, ctx: &Ctx<'_>) -> Reply {
    if request.method() != Method::POST {
        return Error::MethodNotAllowed { allow: ALLOW }.into();
    }
    let prefs = headers::preferences(request.headers());
    let mut negotiated = false;
    let mut admission = None;
    let mut reply =
        submit(request, &prefs, ctx, &mut negotiated, &mut admission).unwrap_or_else(|err| {
            // No job came of it: its place among the client's unfinished
            // jobs is given back.
            if let Some(admission) = &mut admission {
                rate_limit::release(ctx, admission);
            }
            super::failed(ctx, err)
        });
    let varies_with: &[&str] = if negotiated {
        &["Prefer", "Accept"]
    } else {
        &["Prefer"]
    };
    render::vary(&mut reply.response, varies_with);
    render::rate_limit_policy(&mut reply.response, &ctx.config);
    if let Some(admission) = &admission {
        render::rate_limit_standing(&mut reply.response, &admission.standing);
    }
    reply
}

/// Stores the upload and answers; sets `negotiated` once the ops are known
/// to ask for `format(auto)`, so that every answer from then on (including
/// errors about the chosen format) says it varies with `Accept`, and
/// `admission` once the client's rate limits let the request in.
fn submit<B: BodyReader>(
    mut request: http::Request<B>,
    prefs: &Preferences,
    ctx: &Ctx<'_>,
    negotiated: &mut bool,
    admission: &mut Option<rate_limit::Admission>,
) -> Result<Reply, Error> {
    // Before anything else is looked at: a request without a valid key
    // learns nothing about its upload.
    let owner = access::caller(request.headers(), ctx)?;
    let limit = ctx.config.max_upload_bytes;
    let declared_length = headers::declared_length(request.headers(), limit)?;
    let declared = headers::declared_format(request.headers())?;
    let ops = ops_from_query(request.uri().query())?;
    *negotiated = ops.contains(&kiln_image::Op::AutoFormat);
    let accept = Accept::from_headers(request.headers());
    let idempotency_key = request
        .headers()
        .get("idempotency-key")
        .map(|value| IdempotencyKey::parse(value.as_bytes()))
        .transpose()?
        .map(|key| match &owner {
            Some(owner) => key.scoped_to(owner),
            None => key,
        });
    let webhook = headers::webhook_url(request.headers(), ctx.config.webhooks.as_ref())?;
    // Then the client's limits, once the headers are known to be valid
    // (a malformed request costs the store nothing) and before the upload
    // is read: a refused request costs one read. The new job's id is
    // chosen now, so that its place among the client's unfinished jobs is
    // reserved.
    let id = JobId::random();
    let client = client_of(&request, owner.as_deref(), ctx);
    let admission = admission.insert(rate_limit::admit(
        ctx,
        &client,
        id,
        idempotency_key.as_ref(),
    )?);
    // Before the upload is read: a full queue refuses it without storing.
    let waiting = queue::admit(ctx)?;
    let bytes = request.body_mut().read_to_end(limit, declared_length)?;
    if bytes.is_empty() {
        return Err(Error::BadRequest(
            "the body is empty: send the image's bytes".into(),
        ));
    }
    let accepted = submission::accept(
        ctx,
        Upload {
            id,
            declared,
            bytes,
            ops,
            accept,
            idempotency_key,
            webhook,
            reads_need_key: owner.is_some() && ctx.config.api_keys_for_reads,
            owner,
        },
    )?;
    let job = accepted.job().clone();
    let new = matches!(accepted, Accepted::New(_));
    if !new {
        rate_limit::release(ctx, admission);
    }
    // The new job's place among its client's unfinished jobs is marked
    // stored once the answer is out.
    let counted = admission
        .reserved()
        .map(|(client, job)| FollowUp::Counted { client, job });
    if prefs.respond_async && prefs.wait.is_none() {
        // The time to this answer must not depend on the processing: the
        // processor is only called once the 202 is out.
        let (follow_ups, place) = if new {
            let place = list_if_it_waits(ctx, &job, waiting);
            let mut follow_ups = vec![FollowUp::List(job.id)];
            follow_ups.extend(counted);
            follow_ups.extend([FollowUp::StartQueued, FollowUp::Maintain]);
            (follow_ups, place)
        } else {
            (vec![FollowUp::Redispatch(job.id), FollowUp::Maintain], None)
        };
        let mut response = accepted_response(&job, prefs, place);
        mark_replay(&mut response, new);
        return Ok(Reply::new(response, follow_ups));
    }
    let wait = prefs
        .wait
        .map(|seconds| Duration::from_secs(seconds).min(ctx.config.max_wait));
    let mut follow_ups = vec![FollowUp::Maintain];
    let finished = if job.status.is_terminal() {
        Ok(Some(job.clone()))
    } else {
        run_inline(ctx, &job, new, inline_time(ctx, wait), &mut follow_ups)
    };
    if matches!(finished, Ok(Some(_))) {
        follow_ups.insert(0, FollowUp::Notify(job.id));
    }
    if new {
        // Listed (again: then nothing changes) and its marker dropped,
        // whatever the answer: the job is stored.
        follow_ups.insert(0, FollowUp::List(job.id));
        follow_ups.splice(1..1, counted);
    }
    let response = finished.and_then(|finished| match finished {
        None => Ok(accepted_response(&job, prefs, queue::place(ctx, &job))),
        Some(job) => finished_response(ctx, &job, prefs),
    });
    let mut response = response.unwrap_or_else(|err| super::failed(ctx, err).response);
    mark_replay(&mut response, new);
    Ok(Reply::new(response, follow_ups))
}

/// Marks the answer about an earlier request's job ([`idempotency::REPLAYED`]).
fn mark_replay(response: &mut super::Response, new: bool) {
    if !new {
        set(response, idempotency::REPLAYED, "true");
    }
}

/// The client a submission counts against (see [`rate_limit::client`]).
fn client_of<B>(request: &http::Request<B>, owner: Option<&str>, ctx: &Ctx<'_>) -> String {
    let address = request.extensions().get::<rate_limit::ClientAddress>();
    if ctx.config.limits_clients() && owner.is_none() && address.is_none() {
        ctx.runtime
            .log("no client address: every client without an API key shares one rate limit");
    }
    rate_limit::client(address, owner)
}

/// A new job's place in the queue, for its `202`: none when a slot is
/// free (its entries are written once the answer is out). A job that must
/// wait is listed before the answer, so that its place counts every job
/// ahead of it, including the one submitted just before.
/// `waiting`, from admission, says every slot was held then; without it
/// the slots are read once here.
fn list_if_it_waits(ctx: &Ctx<'_>, job: &Job, waiting: Option<usize>) -> Option<QueuePlace> {
    if let Some(waiting) = waiting {
        return list_now(ctx, job)
            .then(|| QueuePlace::behind(waiting, ctx.config.max_running_jobs));
    }
    match slots::free(ctx) {
        Ok(0) => list_now(ctx, job)
            .then(|| queue::place_in_queue(ctx, job))
            .flatten(),
        Ok(_) => None,
        // Whether it waits is unknown: listed now all the same, no place.
        Err(_) => {
            list_now(ctx, job);
            None
        }
    }
}

/// Lists a new job before the answer (see [`crate::listing`]); false when
/// the store refused, in which case the follow-up, or else the recovery
/// scan, lists it later.
fn list_now(ctx: &Ctx<'_>, job: &Job) -> bool {
    match listing::list(ctx, job) {
        Ok(()) => true,
        Err(err) => {
            ctx.runtime
                .log(&format!("listing job {} failed: {err}", job.id));
            false
        }
    }
}

/// How long a synchronous request may run its job before answering `202`.
///
/// The client is waiting either way, so the job runs here rather than in a
/// processor: the `201` goes out the moment the result is stored, with no
/// polling of the store in between. With a processor to take over
/// (service chaining), the wait is capped at `max_wait_seconds`; without
/// one, the instance's own time budget is the cap.
fn inline_time(ctx: &Ctx<'_>, wait: Option<Duration>) -> Option<Duration> {
    match ctx.config.dispatch {
        Dispatch::Chained => Some(wait.unwrap_or(ctx.config.max_wait)),
        Dispatch::Local => wait,
    }
}

/// Runs the job in this instance before answering: to its end, or for
/// `wait` at most, after which the job is given back and run again once the
/// `202` is out (a follow-up: here, or by a processor). A job someone else
/// runs is waited for.
///
/// A new job is not listed yet (`unlisted`, see [`crate::listing`]): when
/// nobody waits, it runs at once and is listed after the answer; when it
/// has to wait, it is listed before, so that it is started in its turn.
fn run_inline(
    ctx: &Ctx<'_>,
    job: &Job,
    unlisted: bool,
    wait: Option<Duration>,
    follow_ups: &mut Vec<FollowUp>,
) -> Result<Option<Job>, Error> {
    let id = job.id;
    let now = ctx.runtime.now();
    let pause_at = wait.map(|wait| now.after(wait));
    // Only the oldest waiting job may take a free slot: one submitted
    // behind others waits its turn (the processors start it).
    let first_in_line =
        queue::oldest(ctx, 1).map(|next| next == [id] || (unlisted && next.is_empty()));
    let outcome = match first_in_line {
        Ok(true) => processing::run_here(ctx, id, pause_at),
        Ok(false) => Ok(Outcome::NotRun),
        Err(err) => Err(err),
    };
    match outcome {
        Ok(Outcome::Finished | Outcome::Abandoned) => {
            // Its slot is free again for the oldest waiting job.
            follow_ups.insert(0, FollowUp::StartQueued);
            wait_until_finished(ctx, id, Duration::ZERO)
        }
        Ok(Outcome::Paused) => {
            follow_ups.insert(0, FollowUp::Redispatch(id));
            Ok(None)
        }
        Ok(Outcome::NotRun) => {
            // Every slot is held (it waits its turn in the queue), someone
            // else runs it (a replay), or this instance has no time left
            // for it: wait for it, never past this budget.
            follow_ups.insert(0, FollowUp::Redispatch(id));
            if unlisted && !list_now(ctx, job) {
                // Nobody could start it: answer now, list it after.
                return Ok(None);
            }
            let mut timeout = wait.unwrap_or(ctx.config.max_wait);
            if let Some(end) = ctx.budget().work_ends_at() {
                timeout = timeout.min(now.until(end));
            }
            wait_until_finished(ctx, id, timeout)
        }
        Err(err) => {
            // The upload is stored: the client gets its 202, and the job is
            // run again once the store takes writes again.
            ctx.runtime.log(&format!("running job {id} failed: {err}"));
            follow_ups.insert(0, FollowUp::Redispatch(id));
            Ok(None)
        }
    }
}

/// The `ops` query parameter, or the default operations without one.
fn ops_from_query(query: Option<&str>) -> Result<Vec<kiln_image::Op>, Error> {
    let mut values = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(name, _)| name == "ops")
        .map(|(_, value)| value);
    let Some(spec) = values.next() else {
        return Ok(kiln_image::default_ops());
    };
    if values.next().is_some() {
        return Err(Error::BadRequest("`ops` given more than once".into()));
    }
    kiln_image::parse_ops(&spec).map_err(|err| Error::BadRequest(format!("invalid ops: {err}")))
}

fn wait_until_finished(ctx: &Ctx<'_>, id: JobId, timeout: Duration) -> Result<Option<Job>, Error> {
    let jobs = Jobs::new(ctx.kv);
    ctx.poll(timeout, || match jobs.get(id, ctx.runtime.now()) {
        Ok(Some(job)) if !job.status.is_terminal() => None,
        Ok(Some(job)) => Some(Ok(job)),
        Ok(None) => Some(Err(Error::NotFound("operation"))),
        Err(err) => Some(Err(err)),
    })
    .transpose()
}

/// `202 Accepted`, saying `respond-async` was applied when it was asked for.
fn accepted_response(job: &Job, prefs: &Preferences, place: Option<QueuePlace>) -> super::Response {
    let mut response = render::accepted(job, place);
    if prefs.respond_async {
        set(&mut response, PREFERENCE_APPLIED, "respond-async");
    }
    response
}

const PREFERENCE_APPLIED: http::HeaderName = http::HeaderName::from_static("preference-applied");

/// The answer for a job that finished within the wait.
fn finished_response(
    ctx: &Ctx<'_>,
    job: &Job,
    prefs: &Preferences,
) -> Result<super::Response, Error> {
    let mut problem = match job.status {
        Status::Succeeded => return created_response(ctx, job, prefs),
        Status::Failed => job
            .error
            .clone()
            .unwrap_or_else(|| Error::Internal("failed without a reason".into()).to_problem()),
        // Canceled: the only other way a job finishes.
        Status::Canceled | Status::NotStarted | Status::Running => {
            Error::Conflict("the operation was canceled".into()).to_problem()
        }
    };
    // The problem names the operation, so that a client can read it (and,
    // for a replay, redo the job under a new key).
    problem.operation = Some(render::operation_path(job));
    Ok(render::problem_response(&problem))
}

/// `201 Created` with the image (or, for `return=minimal`, without).
fn created_response(
    ctx: &Ctx<'_>,
    job: &Job,
    prefs: &Preferences,
) -> Result<super::Response, Error> {
    let mut response = if prefs.return_ == Some(Return::Minimal) {
        let mut response = render::response(StatusCode::CREATED, Vec::new());
        set(&mut response, PREFERENCE_APPLIED, "return=minimal");
        response
    } else {
        let result = job.result.as_ref().ok_or(Error::ImageNotReady(job.id))?;
        let bytes = blob::read(ctx.kv, &result.blob).map_err(|err| match err {
            blob::BlobError::Store(err) => Error::Store(err),
            other => Error::Internal(other.to_string()),
        })?;
        render::image(job, StatusCode::CREATED, bytes)
    };
    set(&mut response, LOCATION, render::image_path(job));
    set(&mut response, CONTENT_LOCATION, render::image_path(job));
    Ok(response)
}
