//! RFC 9457 problem details, and the one place where a domain [`Error`]
//! becomes an HTTP status and a client-facing message.
//!
//! Internal error text (store messages, panics) never reaches a client: it
//! is logged by the caller and replaced by a generic detail here.

use crate::id::JobId;
use crate::kv::KvError;
use crate::rate_limit::Refusal;
use serde::{Deserialize, Serialize};

/// Every problem `type` is `PROBLEM_TYPE_PREFIX` + a slug listed in the README.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:kiln:problem:";

/// An `application/problem+json` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub type_: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The operation this problem is about, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}

/// Everything that can make a request fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The body is not an image format we read, or contradicts its `Content-Type`.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// The upload is larger than `max_upload_bytes`.
    #[error("upload larger than {max} bytes")]
    ContentTooLarge {
        /// The limit.
        max: u64,
    },
    /// The request is malformed (empty body, bad `ops`, bad header).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A `Webhook-Url` that is refused (malformed, not allowed, or webhooks
    /// are not configured).
    #[error("webhook refused: {0}")]
    WebhookRefused(String),
    /// The image or its operations cannot be processed as asked.
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    /// An `Idempotency-Key` was reused for a different request.
    #[error("idempotency key reused for a different request")]
    IdempotencyKeyReused(JobId),
    /// No such resource (or it expired, or the id is malformed).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The image's operation has not succeeded (yet).
    #[error("image of operation {0} is not available")]
    ImageNotReady(JobId),
    /// Processing needed more time than the platform gives one request.
    #[error("processing took longer than {seconds} s")]
    ProcessingTooLong {
        /// The platform's limit on one request, in seconds.
        seconds: u64,
    },
    /// The request conflicts with the resource's state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Another request with this `Idempotency-Key` is still being taken:
    /// a conflict that a retry resolves (so its answer says when).
    #[error("a request with this Idempotency-Key is still in progress")]
    IdempotencyKeyInProgress,
    /// API keys are on and the request has no valid one.
    #[error("no valid API key")]
    Unauthorized {
        /// Whether a key was presented (then it was wrong).
        presented: bool,
    },
    /// The request's API key is not the one that created the job.
    #[error("the job belongs to another API key")]
    Forbidden,
    /// A CORS preflight from a page whose origin `cors_allowed_origins`
    /// does not list.
    #[error("cross-origin requests from {0} are not allowed")]
    OriginNotAllowed(String),
    /// The method is not supported on this resource.
    #[error("method not allowed")]
    MethodNotAllowed {
        /// The methods that are, for the `Allow` header.
        allow: &'static str,
    },
    /// `max_queued_jobs` jobs already wait for a slot.
    #[error("{waiting} jobs are waiting")]
    QueueFull {
        /// How many.
        waiting: usize,
        /// When to try again, in seconds.
        retry_after: u64,
    },
    /// The client is over its rate limit or has its most unfinished jobs
    /// (see [`crate::rate_limit`]).
    #[error("over a rate limit or quota")]
    RateLimited(Refusal),
    /// The key-value store failed; the request may be retried.
    #[error(transparent)]
    Store(#[from] KvError),
    /// Processing failed for a reason that is not the client's.
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// The 415 for HEIC/HEIF (iPhone photos), named, so that the client
    /// knows what to convert.
    pub fn heic() -> Error {
        Error::UnsupportedMediaType(
            "HEIC/HEIF input is not supported (no HEVC decoder ships in the component); convert it to JPEG, or send image/png, image/webp, image/gif or image/avif".into(),
        )
    }

    /// The HTTP status and the problem body for this error.
    pub fn to_problem(&self) -> Problem {
        let (status, slug, title, detail, operation) = match self {
            Error::UnsupportedMediaType(d) => (
                415,
                "unsupported-media-type",
                "Unsupported media type",
                Some(d.clone()),
                None,
            ),
            Error::ContentTooLarge { max } => (
                413,
                "content-too-large",
                "Content too large",
                Some(format!("uploads are limited to {max} bytes")),
                None,
            ),
            Error::BadRequest(d) => (400, "bad-request", "Bad request", Some(d.clone()), None),
            Error::WebhookRefused(d) => (
                400,
                "webhook-refused",
                "Webhook refused",
                Some(d.clone()),
                None,
            ),
            Error::Unprocessable(d) => (
                422,
                "unprocessable-image",
                "Image cannot be processed",
                Some(d.clone()),
                None,
            ),
            Error::IdempotencyKeyReused(id) => (
                422,
                "idempotency-key-reused",
                "Idempotency key reused",
                Some("this Idempotency-Key was already used for a different request".into()),
                Some(*id),
            ),
            Error::NotFound(what) => (
                404,
                "not-found",
                "Not found",
                Some(format!("no such {what}, or it has expired")),
                None,
            ),
            Error::ImageNotReady(id) => (
                404,
                "image-not-ready",
                "Image not available",
                Some("the operation producing this image has not succeeded".into()),
                Some(*id),
            ),
            Error::ProcessingTooLong { seconds } => (
                422,
                "processing-too-long",
                "Processing takes too long",
                Some(format!(
                    "the work did not finish in the time this deployment gives one request ({seconds} s); send a smaller image or fewer operations"
                )),
                None,
            ),
            Error::Conflict(d) => (409, "conflict", "Conflict", Some(d.clone()), None),
            Error::IdempotencyKeyInProgress => (
                409,
                "conflict",
                "Conflict",
                Some("a request with this Idempotency-Key is still in progress; retry after Retry-After".into()),
                None,
            ),
            Error::Unauthorized { presented } => (
                401,
                "unauthorized",
                "API key needed",
                Some(
                    if *presented {
                        "the API key in Authorization is not one this deployment accepts"
                    } else {
                        "send an API key: Authorization: Bearer <key>"
                    }
                    .into(),
                ),
                None,
            ),
            Error::Forbidden => (
                403,
                "forbidden",
                "Not your job",
                Some("this job was created with another API key; only that key may do this".into()),
                None,
            ),
            Error::OriginNotAllowed(origin) => (
                403,
                "origin-not-allowed",
                "Origin not allowed",
                Some(format!(
                    "pages from {origin} may not call this API: the deployment's cors_allowed_origins does not list that origin"
                )),
                None,
            ),
            Error::MethodNotAllowed { .. } => {
                (405, "method-not-allowed", "Method not allowed", None, None)
            }
            Error::Store(_) => (
                503,
                "store-unavailable",
                "Service temporarily unavailable",
                Some("storage is temporarily unavailable; retry later".into()),
                None,
            ),
            Error::QueueFull { waiting, .. } => (
                503,
                "queue-full",
                "Too many jobs waiting",
                Some(format!(
                    "{waiting} jobs are already waiting to run; try again after Retry-After"
                )),
                None,
            ),
            Error::RateLimited(Refusal::Rate { limit, .. }) => (
                429,
                "rate-limited",
                "Too many submissions",
                Some(format!(
                    "this client may submit {} images at once and {} a minute after that; try again after Retry-After",
                    limit.burst, limit.per_minute
                )),
                None,
            ),
            Error::RateLimited(Refusal::Unfinished { max, .. }) => (
                429,
                "too-many-unfinished-jobs",
                "Too many unfinished jobs",
                Some(format!(
                    "this client has {max} jobs that have not finished, the most it may have; try again once one has (after Retry-After), or cancel one"
                )),
                None,
            ),
            Error::Internal(_) => (
                500,
                "internal",
                "Internal error",
                Some("the request could not be completed".into()),
                None,
            ),
        };
        Problem {
            type_: format!("{PROBLEM_TYPE_PREFIX}{slug}"),
            title: title.into(),
            status,
            detail,
            operation: operation.map(|id| format!("/operations/{id}")),
        }
    }
}

impl From<kiln_image::ImageError> for Error {
    fn from(err: kiln_image::ImageError) -> Self {
        use kiln_image::ImageError as E;
        match err {
            E::Unsupported => Error::UnsupportedMediaType(
                "the body is not a JPEG, PNG, WebP, GIF or AVIF image".into(),
            ),
            // A format Kiln reads, with a feature it does not: 415 as
            // well, since the client fixes it the same way (converting).
            E::UnsupportedFeature(what) => Error::UnsupportedMediaType(what),
            E::Canceled => Error::Conflict("the operation was canceled".into()),
            E::Encoding(message) => Error::Internal(message),
            other => Error::Unprocessable(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_are_503_without_the_backend_message() {
        let problem = Error::Store(KvError("redis: secret-host:6379 refused".into())).to_problem();
        assert_eq!(problem.status, 503);
        let json = serde_json::to_string(&problem).unwrap();
        assert!(!json.contains("secret-host"), "{json}");
    }

    #[test]
    fn internal_errors_do_not_leak_their_text() {
        let problem = Error::Internal("panicked at src/lib.rs:1".into()).to_problem();
        assert_eq!(problem.status, 500);
        assert!(
            !serde_json::to_string(&problem)
                .unwrap()
                .contains("panicked")
        );
    }

    #[test]
    fn image_not_ready_links_its_operation() {
        let id = JobId::random();
        let problem = Error::ImageNotReady(id).to_problem();
        assert_eq!(problem.status, 404);
        assert_eq!(problem.operation, Some(format!("/operations/{id}")));
    }

    #[test]
    fn every_problem_type_is_a_kiln_urn() {
        let problem = Error::NotFound("operation").to_problem();
        assert_eq!(problem.type_, "urn:kiln:problem:not-found");
    }
}
