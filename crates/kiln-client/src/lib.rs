//! A blocking client for Kiln's HTTP API, showing the asynchronous
//! request-reply protocol from the client's side.
//!
//! # Layout
//!
//! - [`Client`]: one method per thing a user does — [`submit`](Client::submit)
//!   an image, read or [`follow`](Client::follow) its operation, fetch the
//!   [`image`](Client::image), [`cancel`](Client::cancel),
//!   [`delete`](Client::delete).
//! - [`Submission`]: what to submit, and the `Idempotency-Key` that makes a
//!   retried submission the same job ([`idempotency_key`]).
//! - [`retry`]: when a call is tried again (no answer, `429`, `503`,
//!   waiting what `Retry-After` asks).
//! - [`events`]: the Server-Sent Events parser behind `follow`.
//! - [`Error`]: the server's problem (RFC 9457), typed, or no answer.
//!
//! The operation, problem and status types are the server's own
//! ([`kiln::resource::Operation`], [`kiln::Problem`], [`kiln::job::Status`]).

#![deny(missing_docs)]

mod error;
pub mod events;
pub mod retry;
mod submission;

pub use error::Error;
pub use kiln::Problem;
pub use kiln::job::Status;
pub use kiln::resource::Operation;
pub use retry::Retry;
pub use submission::{Mode, Submission, idempotency_key, redo_key};

use events::Events;
use http::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_LOCATION, CONTENT_TYPE, ETAG, LOCATION,
    RETRY_AFTER,
};
use http::{HeaderMap, Request, Response};
use std::io::{BufReader, Read};
use std::time::Duration;
use ureq::{Body, SendBody};

/// A result, or why there is none.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The largest body read into memory: above Kiln's largest output (a
/// 100 MP PNG is about 300 MB uncompressed; outputs are compressed).
const BODY_LIMIT: u64 = 512 * 1024 * 1024;

/// How long one `Prefer: wait` long-poll may last; Kiln caps it at its
/// `max_wait_seconds`.
const LONG_POLL_SECONDS: u64 = 10;

/// How long `follow` waits before reconnecting to a stream that ended,
/// until the server says (its `retry` field; Kiln sends 1 s).
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// A processed image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Its job's id.
    pub id: String,
    /// `image/png`, …
    pub media_type: String,
    /// Its strong entity tag.
    pub etag: Option<String>,
    /// The encoded image.
    pub bytes: Vec<u8>,
}

/// What the server did with a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// `201 Created`: done inline; here is the image.
    Created(Image),
    /// `202 Accepted`: stored, to be processed; follow its operation.
    Accepted(Box<Operation>),
}

impl Submitted {
    /// The job's id.
    pub fn id(&self) -> &str {
        match self {
            Submitted::Created(image) => &image.id,
            Submitted::Accepted(operation) => &operation.id,
        }
    }
}

/// Kiln's client: a server's base URL, an optional API key, a retry policy.
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
    api_key: Option<String>,
    retry: Retry,
}

/// An answer read whole.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: http::header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The problem the answer carries; any other failure is described.
    fn into_error(self) -> Error {
        match serde_json::from_slice::<Problem>(&self.body) {
            Ok(problem) => Error::Problem(problem),
            Err(_) => Error::Protocol(format!(
                "{} with a body that is not a problem: {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(200)])
            )),
        }
    }

    fn operation(self) -> Result<Operation> {
        serde_json::from_slice(&self.body)
            .map_err(|err| Error::Protocol(format!("an operation that does not parse: {err}")))
    }
}

impl Client {
    /// A client of the server at `base` (`http://127.0.0.1:3000`).
    pub fn new(base: &str) -> Client {
        let agent = ureq::Agent::config_builder()
            // Statuses are answers here, problems read from their bodies.
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(10)))
            // An event stream is quiet for at most `max_wait_seconds`
            // (30 s by default) before it ends; an inline job answers
            // within it too.
            .timeout_per_read(Some(Duration::from_secs(90)))
            .timeout_recv_response(Some(Duration::from_secs(90)))
            .user_agent(concat!("kiln-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client {
            agent,
            base: base.trim_end_matches('/').to_owned(),
            api_key: None,
            retry: Retry::default(),
        }
    }

    /// Sends `Authorization: Bearer key` with every request.
    pub fn with_api_key(mut self, key: Option<String>) -> Client {
        self.api_key = key.filter(|key| !key.is_empty());
        self
    }

    /// Retries as `retry` says.
    pub fn with_retry(mut self, retry: Retry) -> Client {
        self.retry = retry;
        self
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Submits an image (`POST /images`) under its idempotency key:
    /// retried after no answer, a `429`, `502`, `503` or `504` (as long as
    /// `Retry-After` says), and while the same key's first request is
    /// still in progress (a `409` with `Retry-After`; other conflicts, such
    /// as the job canceled, are final); a retry never makes a second job.
    /// A job that an earlier submission under the key left failed or
    /// canceled (the server marks its answer `Idempotent-Replayed`) is not
    /// this submission's answer: it is redone under a key derived from
    /// that job ([`redo_key`]), so that rerunning a batch
    /// retries what failed, once. `on_sent` hears how many bytes of the
    /// upload are sent.
    pub fn submit(
        &self,
        submission: &Submission,
        mut on_sent: impl FnMut(u64),
    ) -> Result<Submitted> {
        let mut key = submission.idempotency_key.clone();
        // Each earlier run that failed is one link of the chain of redos.
        for _ in 0..MAX_REDOS {
            let answer = self.send_submission(submission, &key, &mut on_sent)?;
            let replayed = answer.header(kiln::idempotency::REPLAYED) == Some("true");
            let outcome = submitted(answer);
            match earlier_failure(&outcome).filter(|_| replayed) {
                Some(job) => key = redo_key(&key, &job),
                None => return outcome,
            }
        }
        Err(Error::Protocol(format!(
            "{MAX_REDOS} earlier submissions of this image failed; not submitting it again"
        )))
    }

    fn send_submission(
        &self,
        submission: &Submission,
        key: &str,
        on_sent: &mut dyn FnMut(u64),
    ) -> Result<Answer> {
        let path = submission.path();
        self.with_retries(
            || {
                let mut request = self
                    .request("POST", &path)
                    .header(CONTENT_LENGTH, submission.bytes.len())
                    .header("idempotency-key", key);
                if let Some(prefer) = submission.mode.prefer() {
                    request = request.header("prefer", prefer);
                }
                if let Some(content_type) = &submission.content_type {
                    request = request.header(CONTENT_TYPE, content_type);
                }
                if let Some(accept) = &submission.accept {
                    request = request.header(ACCEPT, accept);
                }
                let mut upload = Counted {
                    inner: submission.bytes.as_slice(),
                    sent: 0,
                    on_sent: &mut *on_sent,
                };
                let request = request
                    .body(SendBody::from_reader(&mut upload))
                    .map_err(|err| Error::Protocol(err.to_string()))?;
                self.run(request)
            },
            |answer| answer.status == 409 && answer.header(RETRY_AFTER).is_some(),
        )
    }

    /// The operation as it is now (`GET /operations/{id}`).
    pub fn operation(&self, id: &str) -> Result<Operation> {
        self.read_operation(id, None)
    }

    /// The operation once it changed, or after `wait` seconds at most
    /// (`Prefer: wait`, a long-poll).
    pub fn operation_after_change(&self, id: &str, wait: u64) -> Result<Operation> {
        self.read_operation(id, Some(wait))
    }

    fn read_operation(&self, id: &str, wait: Option<u64>) -> Result<Operation> {
        let path = operation_path(id)?;
        let answer = self.with_retries(
            || {
                let mut request = self
                    .request("GET", &path)
                    .header(ACCEPT, "application/json");
                if let Some(wait) = wait {
                    request = request.header("prefer", format!("wait={wait}"));
                }
                self.run(empty(request)?)
            },
            |_| false,
        )?;
        match answer.status {
            200 => answer.operation(),
            _ => Err(answer.into_error()),
        }
    }

    /// Follows the operation until it finishes, calling `on_change` with
    /// each state: over Server-Sent Events, reconnecting with
    /// `Last-Event-ID` when a stream ends early or breaks; by long-polls
    /// (`Prefer: wait`) if the server does not stream. Returns the
    /// finished operation.
    pub fn follow(&self, id: &str, mut on_change: impl FnMut(&Operation)) -> Result<Operation> {
        let path = operation_path(id)?;
        let mut last_event_id: Option<String> = None;
        let mut reconnect_after = RECONNECT_AFTER;
        let mut failed = 0;
        loop {
            let mut request = self
                .request("GET", &path)
                .header(ACCEPT, "text/event-stream");
            if let Some(id) = &last_event_id {
                request = request.header("last-event-id", id);
            }
            let response = match self.agent.run(empty(request)?) {
                Ok(response) => response,
                Err(err) => {
                    failed += 1;
                    let wait = self.retry.wait_after(failed, None);
                    std::thread::sleep(wait.ok_or(Error::Transport(err.to_string()))?);
                    continue;
                }
            };
            let status = response.status().as_u16();
            let streams = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| value.starts_with("text/event-stream"));
            if status == 204 {
                // The finished job's last event was seen already: read
                // the finished operation itself.
                return self.operation(id);
            }
            if status != 200 || !streams {
                if status == 200 || retry::is_retryable(status) {
                    // No stream here (a proxy, another server): long-poll.
                    return self.follow_by_polling(id, on_change);
                }
                return Err(read_whole(response)?.into_error());
            }
            // A stream that opens is an answer: a reconnection that sees
            // no change (`Last-Event-ID` is current) is not a failure.
            failed = 0;
            let mut events = Events::new(BufReader::new(response.into_body().into_reader()));
            loop {
                let next = events.next_event();
                reconnect_after = events.retry.unwrap_or(reconnect_after);
                match next {
                    Ok(Some(event)) => {
                        if event.id.is_some() {
                            last_event_id = event.id;
                        }
                        let operation: Operation =
                            serde_json::from_str(&event.data).map_err(|err| {
                                Error::Protocol(format!("an event that does not parse: {err}"))
                            })?;
                        on_change(&operation);
                        if operation.is_finished() {
                            return Ok(operation);
                        }
                    }
                    // The stream ended (after `max_wait_seconds`): reconnect
                    // after the server's reconnection time, as a browser's
                    // EventSource does.
                    Ok(None) => {
                        std::thread::sleep(reconnect_after);
                        break;
                    }
                    Err(err) => {
                        failed += 1;
                        let wait = self.retry.wait_after(failed, Some(reconnect_after));
                        std::thread::sleep(wait.ok_or(Error::Transport(err.to_string()))?);
                        break;
                    }
                }
            }
        }
    }

    /// [`follow`](Self::follow) by long-polls alone.
    pub fn follow_by_polling(
        &self,
        id: &str,
        mut on_change: impl FnMut(&Operation),
    ) -> Result<Operation> {
        let mut operation = self.operation(id)?;
        on_change(&operation);
        while !operation.is_finished() {
            let asked = std::time::Instant::now();
            let next = self.operation_after_change(id, LONG_POLL_SECONDS)?;
            if next != operation {
                on_change(&next);
            } else if asked.elapsed() < Duration::from_secs(LONG_POLL_SECONDS) {
                // Unchanged, and answered before the wait asked for (a
                // server or proxy that does not hold the request): poll
                // at a pace instead of in a loop.
                std::thread::sleep(RECONNECT_AFTER);
            }
            operation = next;
        }
        Ok(operation)
    }

    /// A finished operation's outcome: its image once succeeded (fetched),
    /// its problem once failed.
    pub fn outcome(&self, operation: Operation) -> Result<Image> {
        match operation.status {
            Status::Succeeded => self.image(&operation.id),
            Status::Failed => Err(operation.error.map_or_else(
                || Error::Protocol(format!("job {} failed without a problem", operation.id)),
                Error::Problem,
            )),
            Status::Canceled => Err(Error::Canceled(operation.id)),
            Status::NotStarted | Status::Running => Err(Error::Protocol(format!(
                "job {} has not finished",
                operation.id
            ))),
        }
    }

    /// The processed image (`GET /images/{id}`).
    pub fn image(&self, id: &str) -> Result<Image> {
        let path = format!("/images/{}", checked_id(id)?);
        let answer =
            self.with_retries(|| self.run(empty(self.request("GET", &path))?), |_| false)?;
        match answer.status {
            200 => Ok(image(id.to_owned(), answer)),
            _ => Err(answer.into_error()),
        }
    }

    /// Cancels the job (`DELETE /operations/{id}`): the operation, now
    /// `canceled`; a problem (`409`) if it had finished.
    pub fn cancel(&self, id: &str) -> Result<Operation> {
        let path = operation_path(id)?;
        let mut tries = 0;
        let answer = self.with_retries(
            || {
                tries += 1;
                self.run(empty(self.request("DELETE", &path))?)
            },
            |_| false,
        )?;
        match answer.status {
            200 => answer.operation(),
            // A retry finds the job finished: if a try whose answer was
            // lost canceled it, that is the answer.
            409 if tries > 1 => match self.operation(id) {
                Ok(operation) if operation.status == Status::Canceled => Ok(operation),
                _ => Err(answer.into_error()),
            },
            _ => Err(answer.into_error()),
        }
    }

    /// Deletes the job, its upload and its image (`DELETE /images/{id}`).
    pub fn delete(&self, id: &str) -> Result<()> {
        let path = format!("/images/{}", checked_id(id)?);
        let mut tries = 0;
        let answer = self.with_retries(
            || {
                tries += 1;
                self.run(empty(self.request("DELETE", &path))?)
            },
            |_| false,
        )?;
        match answer.status {
            204 | 200 => Ok(()),
            // Gone on a retry: a try whose answer was lost deleted it.
            404 if tries > 1 => Ok(()),
            _ => Err(answer.into_error()),
        }
    }

    fn request(&self, method: &str, path: &str) -> http::request::Builder {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(key) = &self.api_key {
            request = request.header(AUTHORIZATION, format!("Bearer {key}"));
        }
        request
    }

    fn run<B: ureq::AsSendBody>(&self, request: Request<B>) -> Result<Answer> {
        let response = self
            .agent
            .run(request)
            .map_err(|err| Error::Transport(err.to_string()))?;
        read_whole(response)
    }

    /// Calls `attempt` until it gets an answer that is not "later" (`429`,
    /// `503`, or one `also` accepts), or the retry policy gives up.
    fn with_retries(
        &self,
        mut attempt: impl FnMut() -> Result<Answer>,
        also: impl Fn(&Answer) -> bool,
    ) -> Result<Answer> {
        let mut failed = 0;
        loop {
            let outcome = attempt();
            let retry_after = match &outcome {
                Ok(answer) if retry::is_retryable(answer.status) || also(answer) => answer
                    .header(RETRY_AFTER)
                    .and_then(retry::parse_retry_after),
                Err(Error::Transport(_)) => None,
                _ => return outcome,
            };
            failed += 1;
            match self.retry.wait_after(failed, retry_after) {
                Some(wait) => std::thread::sleep(wait),
                None => return outcome.and_then(|answer| Err(answer.into_error())),
            }
        }
    }
}

/// A job id as a path segment: Kiln's ids are UUIDs; anything else is
/// refused here rather than sent into another path.
fn checked_id(id: &str) -> Result<&str> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        Ok(id)
    } else {
        Err(Error::Protocol(format!("`{id}` is not an operation id")))
    }
}

fn operation_path(id: &str) -> Result<String> {
    Ok(format!("/operations/{}", checked_id(id)?))
}

fn empty(request: http::request::Builder) -> Result<Request<()>> {
    request
        .body(())
        .map_err(|err| Error::Protocol(err.to_string()))
}

fn read_whole(response: Response<Body>) -> Result<Answer> {
    let status = response.status().as_u16();
    let (parts, body) = response.into_parts();
    let body = body
        .into_with_config()
        .limit(BODY_LIMIT)
        .read_to_vec()
        .map_err(|err| Error::Transport(err.to_string()))?;
    Ok(Answer {
        status,
        headers: parts.headers,
        body,
    })
}

/// How many failed runs of one submission a new one redoes in a row
/// before it gives up (each rerun of a batch adds one).
const MAX_REDOS: usize = 100;

/// What a submission's final answer says.
fn submitted(answer: Answer) -> Result<Submitted> {
    match answer.status {
        201 => {
            let id = answer
                .header(CONTENT_LOCATION)
                .or(answer.header(LOCATION))
                .and_then(last_segment)
                .ok_or_else(|| Error::Protocol("a 201 without Location".into()))?
                .to_owned();
            Ok(Submitted::Created(image(id, answer)))
        }
        202 => answer
            .operation()
            .map(|op| Submitted::Accepted(Box::new(op))),
        _ => Err(answer.into_error()),
    }
}

/// The job a submission's outcome shows finished without an image: a
/// `202` with an operation that failed or was canceled, or a problem
/// (answered inline) that names its operation. For a replayed answer, that
/// is an earlier submission's job, to redo.
fn earlier_failure(outcome: &Result<Submitted>) -> Option<String> {
    match outcome {
        Ok(Submitted::Accepted(operation))
            if matches!(operation.status, Status::Failed | Status::Canceled) =>
        {
            Some(operation.id.clone())
        }
        Err(Error::Problem(problem)) => {
            let id = last_segment(problem.operation.as_deref()?)?;
            checked_id(id).ok().map(str::to_owned)
        }
        _ => None,
    }
}

/// The id at the end of `/images/{id}` or `/operations/{id}`.
fn last_segment(path: &str) -> Option<&str> {
    path.rsplit('/').next()
}

fn image(id: String, answer: Answer) -> Image {
    Image {
        id,
        media_type: answer
            .header(CONTENT_TYPE)
            .unwrap_or("application/octet-stream")
            .to_owned(),
        etag: answer.header(ETAG).map(str::to_owned),
        bytes: answer.body,
    }
}

/// An upload that reports how much of it was read (sent).
struct Counted<'a, R> {
    inner: R,
    sent: u64,
    on_sent: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.sent += read as u64;
        (self.on_sent)(self.sent);
        Ok(read)
    }
}
