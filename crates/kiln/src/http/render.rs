//! Writing responses: problem details, the operation resource, the image
//! resource. Every header Kiln sends is set here.

use super::Response;
use crate::job::{Job, Status};
use crate::problem::{Error, Problem};
use crate::queue::QueuePlace;
use crate::rate_limit::{self, Standing};
use crate::resource::Operation;
use http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_LOCATION, CONTENT_TYPE, ETAG, HeaderName, LINK,
    LOCATION, RETRY_AFTER, VARY, WWW_AUTHENTICATE,
};
use http::{HeaderValue, StatusCode};

/// Images never change once stored: a result has its own id.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The same for an image whose reads need its API key: no shared cache
/// may keep it and hand it to a caller without one (RFC 9111, 3.5).
const IMMUTABLE_PRIVATE: &str = "private, max-age=31536000, immutable";

/// How a job's image may be cached.
pub fn image_cache_control(job: &Job) -> &'static str {
    if job.reads_need_key {
        IMMUTABLE_PRIVATE
    } else {
        IMMUTABLE
    }
}

/// The fields of the IETF httpapi rate-limit draft.
const RATE_LIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATE_LIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// How long clients should wait between polls of an unfinished job.
pub const RETRY_AFTER_SECONDS: &str = "1";

pub use crate::resource::{image_path, operation_path};

/// A response with `status` and `body`.
pub fn response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

/// Sets a header. Every value Kiln sends is ASCII it generated itself; one
/// that is not a valid header value is dropped rather than panicking.
pub fn set(response: &mut Response, name: HeaderName, value: impl AsRef<str>) {
    if let Ok(value) = HeaderValue::from_str(value.as_ref()) {
        response.headers_mut().insert(name, value);
    }
}

/// `Vary`: the request headers the answer depended on (for a submission,
/// `Prefer`, and `Accept` when it chose the output format; `Origin` where
/// CORS applies), added to those it already names.
pub fn vary(response: &mut Response, request_headers: &[&str]) {
    let existing = response
        .headers()
        .get(VARY)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty());
    let names: Vec<&str> = existing
        .into_iter()
        .chain(request_headers.iter().copied())
        .collect();
    set(response, VARY, names.join(", "));
}

/// An `application/problem+json` response for `error`.
pub fn problem(error: &Error) -> Response {
    let problem = error.to_problem();
    let mut response = problem_response(&problem);
    match error {
        Error::Store(_) | Error::IdempotencyKeyInProgress => {
            set(&mut response, RETRY_AFTER, RETRY_AFTER_SECONDS);
        }
        Error::QueueFull { retry_after, .. } => {
            set(&mut response, RETRY_AFTER, retry_after.to_string());
        }
        Error::RateLimited(refusal) => {
            set(
                &mut response,
                RETRY_AFTER,
                refusal.retry_after().to_string(),
            );
            rate_limit_standing(&mut response, &refusal.standing());
        }
        Error::MethodNotAllowed { allow } => set(&mut response, ALLOW, allow),
        // RFC 6750, 3: a wrong key is an invalid token; a missing one, no error.
        Error::Unauthorized { presented } => set(
            &mut response,
            WWW_AUTHENTICATE,
            if *presented {
                r#"Bearer realm="kiln", error="invalid_token""#
            } else {
                r#"Bearer realm="kiln""#
            },
        ),
        _ => {}
    }
    response
}

/// `RateLimit-Policy`: the deployment's limits on submissions, when it
/// has any (see [`crate::rate_limit`]).
pub fn rate_limit_policy(response: &mut Response, config: &crate::Config) {
    if let Some(field) = rate_limit::policy_field(config.rate_limit, config.max_unfinished_jobs) {
        set(response, RATE_LIMIT_POLICY, field);
    }
}

/// `RateLimit`: where the client stands now.
pub fn rate_limit_standing(response: &mut Response, standing: &Standing) {
    if let Some(field) = rate_limit::standing_field(standing) {
        set(response, RATE_LIMIT, field);
    }
}

/// An `application/problem+json` response carrying `problem` as is.
pub fn problem_response(problem: &Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = response(status, serde_json::to_vec(problem).unwrap_or_default());
    set(&mut response, CONTENT_TYPE, "application/problem+json");
    set(&mut response, CACHE_CONTROL, "no-store");
    response
}

/// The operation resource's JSON, as `GET` shows it.
pub fn operation_json(job: &Job) -> Vec<u8> {
    serde_json::to_vec(&Operation::of(job, true)).unwrap_or_default()
}

/// The operation as a webhook event's `data`: without the delivery state,
/// which changes with every attempt.
pub fn operation_value(job: &Job) -> serde_json::Value {
    serde_json::to_value(Operation::of(job, false)).unwrap_or_default()
}

/// The operation resource, with the caching and polling headers its state
/// calls for: unfinished ones say when to poll again and must not be cached;
/// finished ones carry an ETag for cheap revalidation.
pub fn operation(job: &Job, status: StatusCode) -> Response {
    operation_in_queue(job, status, None)
}

/// [`operation`] for a job waiting in the queue at `place`: its position,
/// and a `Retry-After` that grows with it.
pub fn operation_in_queue(job: &Job, status: StatusCode, place: Option<QueuePlace>) -> Response {
    let mut body = Operation::of(job, true);
    body.queue_position = place.map(|p| p.position);
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    // Only a finished operation is worth revalidating: the others change
    // under the client and are not stored, so they skip the hash.
    let etag = job
        .status
        .is_terminal()
        .then(|| crate::etag::strong(&bytes));
    let mut response = response(status, bytes);
    set(&mut response, CONTENT_TYPE, "application/json");
    if let Some(etag) = etag {
        set(&mut response, CACHE_CONTROL, "no-cache");
        set(&mut response, ETAG, etag);
    } else {
        set(&mut response, CACHE_CONTROL, "no-store");
        let retry_after = place.map_or(1, |p| p.retry_after);
        set(&mut response, RETRY_AFTER, retry_after.to_string());
    }
    if job.status == Status::Succeeded {
        set(
            &mut response,
            LINK,
            format!("<{}>; rel=\"related\"", image_path(job)),
        );
    }
    response
}

/// `202 Accepted` for a job still in progress: its operation resource, and
/// where to find it.
pub fn accepted(job: &Job, place: Option<QueuePlace>) -> Response {
    let mut response = operation_in_queue(job, StatusCode::ACCEPTED, place);
    set(&mut response, LOCATION, operation_path(job));
    set(&mut response, CONTENT_LOCATION, operation_path(job));
    // Even a (replayed) finished job's 202 asks the client to come back to
    // the operation, and is not itself to be stored.
    let retry_after = place.map_or(1, |p| p.retry_after);
    set(&mut response, RETRY_AFTER, retry_after.to_string());
    set(&mut response, CACHE_CONTROL, "no-store");
    response.headers_mut().remove(ETAG);
    response
}

/// The image resource with `body` (the image, or nothing for `HEAD`, whose
/// caller adds the full `Content-Length`).
pub fn image(job: &Job, status: StatusCode, body: Vec<u8>) -> Response {
    let Some(result) = &job.result else {
        return problem(&Error::ImageNotReady(job.id));
    };
    let mut response = response(status, body);
    set(&mut response, CONTENT_TYPE, &result.media_type);
    set(&mut response, ETAG, &result.etag);
    set(&mut response, CACHE_CONTROL, image_cache_control(job));
    response
}

/// `Content-Length` of a `HEAD` response: the length `GET` would send.
pub fn head_length(response: &mut Response, job: &Job) {
    if let Some(result) = &job.result {
        set(response, CONTENT_LENGTH, result.blob.len.to_string());
    }
}

/// `304 Not Modified` with the validators a cache needs.
pub fn not_modified(etag: &str, cache_control: &str) -> Response {
    let mut response = response(StatusCode::NOT_MODIFIED, Vec::new());
    set(&mut response, ETAG, etag);
    set(&mut response, CACHE_CONTROL, cache_control);
    response
}
