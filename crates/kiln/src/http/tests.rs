//! The HTTP contract, natively: every handler driven through a fake clock
//! and an in-process processor over the in-memory store.

use super::*;
use crate::clock::Timestamp;
use crate::config::Config;
use crate::job::Status;
use crate::kv::{KvStore, MemoryKv};
use crate::runtime::Runtime;
use http::{Method, StatusCode};
use std::cell::{Cell, RefCell};
use std::time::Duration;

/// How the fake processor behaves when dispatched.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Processor {
    /// Claims and runs the job inline.
    Working,
    /// The dispatch fails, like a lost request.
    Unreachable,
    /// Claims the job, answers, and never runs it (a processor that died).
    Stalled,
}

/// A host whose clock only moves when someone sleeps, and whose processor
/// runs inline when dispatched.
pub(super) struct FakeHost {
    pub(super) kv: MemoryKv,
    pub(super) config: Config,
    clock: Cell<u64>,
    /// How far the clock moves each time it is read, to make work take time.
    pub(super) tick: Cell<Duration>,
    /// When the request being handled arrived.
    started_at: Cell<u64>,
    pub(super) processor: Cell<Processor>,
    pub(super) dispatches: Cell<usize>,
    /// The jobs dispatched, in order.
    pub(super) dispatched: RefCell<Vec<crate::id::JobId>>,
    /// What stalled processors were left to do (see [`FakeHost::resume`]).
    pub(super) stalled: RefCell<Vec<FollowUp>>,
    /// Whether each reading of the clock checks that no running job's
    /// lease has run out.
    pub(super) watch_leases: Cell<bool>,
    /// Readings of the clock that found a running job's lease run out.
    pub(super) lapsed_leases: Cell<usize>,
    /// The webhook POSTs sent, in order.
    pub(super) posts: RefCell<Vec<Post>>,
    /// What the webhook receiver answers: a status, or a network error.
    pub(super) receiver: Cell<Result<u16, &'static str>>,
    /// The address requests come from, as a host gives it.
    pub(super) client_address: Cell<Option<std::net::IpAddr>>,
}

/// A webhook POST as the receiver got it.
#[derive(Debug, Clone)]
pub(super) struct Post {
    pub(super) url: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl FakeHost {
    pub(super) fn new() -> Self {
        FakeHost {
            kv: MemoryKv::new(),
            // One key per index, so that what one request's maintenance
            // reads is the whole index (walking the shards is the indexes'
            // own tests' concern) and a job's index keys are predictable.
            config: Config {
                index_shards: 1,
                ..Config::default()
            },
            clock: Cell::new(1_700_000_000_000),
            started_at: Cell::new(1_700_000_000_000),
            tick: Cell::new(Duration::ZERO),
            processor: Cell::new(Processor::Working),
            dispatches: Cell::new(0),
            dispatched: RefCell::new(Vec::new()),
            stalled: RefCell::new(Vec::new()),
            watch_leases: Cell::new(false),
            lapsed_leases: Cell::new(0),
            posts: RefCell::new(Vec::new()),
            receiver: Cell::new(Ok(204)),
            client_address: Cell::new(None),
        }
    }

    pub(super) fn ctx(&self) -> Ctx<'_> {
        Ctx {
            kv: &self.kv,
            runtime: self,
            config: (&self.config).into(),
            pipeline: Some(crate::IMAGE_PIPELINE),
        }
    }

    pub(super) fn now_millis(&self) -> u64 {
        self.clock.get()
    }

    pub(super) fn advance(&self, by: Duration) {
        self.clock.set(self.clock.get() + by.as_millis() as u64);
    }

    /// Sends a request to the component owning `path`, then runs its
    /// follow-ups, as Spin does after the response is out.
    pub(super) fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Response {
        let reply = self.send_without_follow_ups(method, path, headers, body);
        for f in reply.follow_ups {
            follow_up(&self.ctx(), f);
        }
        reply.response
    }

    pub(super) fn send_without_follow_ups(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let mut request = http::Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(address) = self.client_address.get() {
            request = request.extension(crate::rate_limit::ClientAddress(address));
        }
        let request = request.body(body).unwrap();
        self.started_at.set(self.clock.get());
        if path.starts_with("/images?") || path == "/images" {
            handle_submit(request, &self.ctx())
        } else {
            handle_resources(request, &self.ctx())
        }
    }

    pub(super) fn submit(&self, headers: &[(&str, &str)], query: &str) -> Response {
        let mut all = vec![("content-type", "image/png")];
        all.extend_from_slice(headers);
        self.send(Method::POST, &format!("/images{query}"), &all, png(64, 48))
    }

    /// Lets the stalled processors do what they were left to do, as
    /// working ones.
    pub(super) fn resume(&self) {
        self.processor.set(Processor::Working);
        let stalled = self.stalled.take();
        for f in stalled {
            follow_up(&self.ctx(), f);
        }
    }

    pub(super) fn get(&self, path: &str) -> Response {
        self.send(Method::GET, path, &[], Vec::new())
    }
}

impl Runtime for FakeHost {
    fn now(&self) -> Timestamp {
        self.advance(self.tick.get());
        let now = Timestamp(self.clock.get());
        if self.watch_leases.get() && self.some_lease_lapsed(now) {
            self.lapsed_leases.set(self.lapsed_leases.get() + 1);
        }
        now
    }
    fn started_at(&self) -> Timestamp {
        Timestamp(self.started_at.get())
    }
    fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }
    fn dispatch(&self, id: crate::id::JobId) -> Result<(), String> {
        self.dispatches.set(self.dispatches.get() + 1);
        if self.processor.get() == Processor::Unreachable {
            return Err("connection refused".into());
        }
        let request = http::Request::post(format!("/jobs/{id}"))
            .body(Vec::<u8>::new())
            .unwrap();
        self.dispatched.borrow_mut().push(id);
        let reply = handle_process(request, &self.ctx());
        if self.processor.get() == Processor::Working {
            for f in reply.follow_ups {
                follow_up(&self.ctx(), f);
            }
        } else {
            self.stalled.borrow_mut().extend(reply.follow_ups);
        }
        Ok(())
    }
    fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
        _timeout: Duration,
    ) -> Result<u16, String> {
        self.posts.borrow_mut().push(Post {
            url: url.to_owned(),
            headers: headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone()))
                .collect(),
            body: body.to_vec(),
        });
        self.receiver.get().map_err(str::to_owned)
    }
    fn log(&self, _message: &str) {}
}

impl FakeHost {
    fn some_lease_lapsed(&self, now: Timestamp) -> bool {
        self.kv
            .keys()
            .iter()
            .filter(|key| key.starts_with("kiln:job:"))
            .filter_map(|key| self.kv.get(key).ok().flatten())
            .filter_map(|raw| serde_json::from_slice::<crate::job::Job>(&raw).ok())
            .any(|job| {
                job.status == Status::Running && job.lease.is_some_and(|l| l.expires_at <= now)
            })
    }
}

pub(super) fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 128]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

/// A small `respond-async` submission, answered but not followed up yet.
pub(super) fn submit_async_without_follow_ups(host: &FakeHost) -> Reply {
    host.send_without_follow_ups(
        Method::POST,
        "/images",
        &[("content-type", "image/png"), ("prefer", "respond-async")],
        png(16, 16),
    )
}

/// The job id a `Location` (of an operation or an image) names.
pub(super) fn id_of(location: &str) -> crate::id::JobId {
    crate::id::JobId::parse(location.rsplit('/').next().unwrap()).unwrap()
}

pub(super) fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {response:?}"))
        .to_str()
        .unwrap()
}

pub(super) fn json(response: &Response) -> serde_json::Value {
    serde_json::from_slice(response.body()).unwrap()
}

pub(super) fn problem_status(response: &Response) -> u16 {
    assert_eq!(header(response, "content-type"), "application/problem+json");
    let status = json(response)["status"].as_u64().unwrap() as u16;
    assert_eq!(status, response.status().as_u16());
    status
}

#[test]
fn a_plain_submission_is_processed_inline_and_answered_201_with_the_image() {
    let host = FakeHost::new();
    let response = host.submit(&[], "?ops=resize(w=32),format(jpeg)");
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = header(&response, "location").to_owned();
    assert!(location.starts_with("/images/"));
    assert_eq!(header(&response, "content-location"), location);
    assert_eq!(header(&response, "content-type"), "image/jpeg");
    assert_eq!(header(&response, "vary"), "Prefer, Origin");
    assert_eq!(&response.body()[..2], &[0xFF, 0xD8]);
}

#[test]
fn respond_async_answers_202_before_any_processing() {
    let host = FakeHost::new();
    let reply = host.send_without_follow_ups(
        Method::POST,
        "/images",
        &[("content-type", "image/png"), ("prefer", "respond-async")],
        png(8, 8),
    );
    let response = &reply.response;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(host.dispatches.get(), 0, "dispatched before answering");
    let location = header(response, "location");
    assert!(location.starts_with("/operations/"));
    assert_eq!(header(response, "content-location"), location);
    assert_eq!(header(response, "preference-applied"), "respond-async");
    assert_eq!(header(response, "retry-after"), "1");
    assert_eq!(json(response)["status"], "notStarted");
    // Listed once the answer is out, then started.
    let id = id_of(location);
    assert_eq!(
        reply.follow_ups[..2],
        [FollowUp::List(id), FollowUp::StartQueued]
    );
}

#[test]
fn an_accepted_job_can_be_polled_to_success_and_its_image_fetched() {
    let host = FakeHost::new();
    let accepted = host.submit(&[("prefer", "respond-async")], "?ops=format(webp)");
    let operation = host.get(header(&accepted, "location"));
    assert_eq!(operation.status(), StatusCode::OK);
    let body = json(&operation);
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["percentComplete"], 100);
    let image_path = body["resourceLocation"].as_str().unwrap();
    assert_eq!(
        header(&operation, "link"),
        format!("<{image_path}>; rel=\"related\"")
    );
    let image = host.get(image_path);
    assert_eq!(image.status(), StatusCode::OK);
    assert_eq!(header(&image, "content-type"), "image/webp");
    assert_eq!(
        header(&image, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(&image.body()[8..12], b"WEBP");
}

/// A PNG whose iCCP chunk holds no ICC profile.
fn png_with_a_broken_profile() -> Vec<u8> {
    use image::ImageEncoder;
    let image = image::RgbImage::from_pixel(8, 8, image::Rgb([200, 40, 40]));
    let mut bytes = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new(&mut bytes);
    encoder.set_icc_profile(vec![7; 200]).unwrap();
    encoder
        .write_image(&image, 8, 8, image::ExtendedColorType::Rgb8)
        .unwrap();
    bytes
}

/// A profile that cannot be applied does not fail the job: the operation
/// says what was done instead; a job without one has no `warnings`.
#[test]
fn an_unusable_colour_profile_is_a_warning_on_the_succeeded_operation() {
    let host = FakeHost::new();
    let headers = [("content-type", "image/png"), ("prefer", "respond-async")];
    let accepted = host.send(
        Method::POST,
        "/images",
        &headers,
        png_with_a_broken_profile(),
    );
    let body = json(&host.get(header(&accepted, "location")));
    assert_eq!(body["status"], "succeeded");
    let warnings = body["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{body}");
    assert_eq!(
        warnings[0]["type"],
        "urn:kiln:warning:colour-profile-ignored"
    );
    let detail = warnings[0]["detail"].as_str().unwrap();
    assert!(detail.contains("used as sRGB"), "{detail}");

    let plain = host.submit(&[("prefer", "respond-async")], "");
    let body = json(&host.get(header(&plain, "location")));
    assert_eq!(body["status"], "succeeded");
    assert!(body.get("warnings").is_none(), "{body}");
}

#[test]
fn return_minimal_gives_an_empty_201() {
    let host = FakeHost::new();
    let response = host.submit(&[("prefer", "return=minimal")], "");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(response.body().is_empty());
    assert_eq!(header(&response, "preference-applied"), "return=minimal");
    assert!(header(&response, "location").starts_with("/images/"));
}

/// A 600×600 PNG to re-encode as JPEG: the encoder reports progress row by
/// row, about a hundred times, so with a clock that ticks on every read the
/// job takes several (fake) seconds. The follow-ups are not run.
pub(super) fn long_encode(host: &FakeHost, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("content-type", "image/png")];
    all.extend_from_slice(headers);
    host.send_without_follow_ups(
        Method::POST,
        "/images?ops=format(jpeg)",
        &all,
        png(600, 600),
    )
}

/// Runs a reply's follow-ups, as Spin does once the response is out.
pub(super) fn follow_ups(host: &FakeHost, reply: Reply) -> Response {
    for f in reply.follow_ups {
        follow_up(&host.ctx(), f);
    }
    reply.response
}

/// The job a `Location` names, as stored.
pub(super) fn contents(kv: &MemoryKv) -> Vec<(String, Vec<u8>)> {
    kv.keys()
        .into_iter()
        .map(|key| {
            let value = kv.get(&key).unwrap().unwrap();
            (key, value)
        })
        .collect()
}

/// The keys a job owns in the store (its record and chunks; the shared
/// indexes are not the job's).
pub(super) fn keys_of(kv: &MemoryKv, location: &str) -> Vec<String> {
    let id = location.rsplit('/').next().unwrap();
    kv.keys().into_iter().filter(|k| k.contains(id)).collect()
}

pub(super) fn job_of(host: &FakeHost, location: &str) -> crate::job::Job {
    let id = location.rsplit('/').next().unwrap();
    let raw = host.kv.get(&format!("kiln:job:{id}")).unwrap().unwrap();
    serde_json::from_slice(&raw).unwrap()
}

/// A long job submitted with `headers` is answered 202 after `expected`
/// (and before a second more), and a processor then finishes it, with one
/// attempt counted: the pause at the end of the wait is not a crash.
fn answers_202_after(host: &FakeHost, headers: &[(&str, &str)], expected: Duration) -> Response {
    host.tick.set(Duration::from_millis(100));
    let start = host.now();
    let reply = long_encode(host, headers);
    assert_eq!(reply.response.status(), StatusCode::ACCEPTED);
    assert!(host.now() >= start.after(expected), "answered too early");
    assert!(
        host.now() < start.after(expected + Duration::from_secs(1)),
        "waited too long"
    );
    assert_eq!(host.dispatches.get(), 0, "dispatched before answering");
    let response = follow_ups(host, reply);
    let job = job_of(host, header(&response, "location"));
    assert_eq!(job.status, Status::Succeeded, "{job:?}");
    assert_eq!(job.attempts, 1, "the pause counted as a crash");
    assert_eq!(host.dispatches.get(), 1, "no processor took it over");
    response
}

/// A synchronous submission runs its job in the instance that accepted it,
/// with service chaining or without, so the 201 goes out as soon as the
/// result is stored: no processor is called and nothing polls the store.
#[test]
fn a_synchronous_submission_runs_its_job_itself() {
    for dispatch in [
        crate::config::Dispatch::Chained,
        crate::config::Dispatch::Local,
    ] {
        let mut host = FakeHost::new();
        host.config.dispatch = dispatch;
        let response = host.submit(&[], "?ops=resize(w=32),format(png)");
        assert_eq!(response.status(), StatusCode::CREATED, "{dispatch:?}");
        assert_eq!(&response.body()[1..4], b"PNG");
        assert_eq!(
            host.dispatches.get(),
            0,
            "{dispatch:?}: a processor was called"
        );
    }
}

/// A processor that cannot be reached does not matter to a synchronous
/// submission, which does its own work.
#[test]
fn an_unreachable_processor_does_not_stop_a_synchronous_submission() {
    let host = FakeHost::new();
    host.processor.set(Processor::Unreachable);
    let response = host.submit(&[], "");
    assert_eq!(response.status(), StatusCode::CREATED);
}

/// `wait=N` bounds the work done before answering: past it the client gets
/// its 202, and a processor finishes the job.
#[test]
fn wait_gives_up_after_n_seconds_with_a_202() {
    let host = FakeHost::new();
    let prefer = [("prefer", "respond-async, wait=3")];
    let response = answers_202_after(&host, &prefer, Duration::from_secs(3));
    assert_eq!(header(&response, "preference-applied"), "respond-async");
}

/// A plain (synchronous) submission works on its job as long as
/// `max_wait_seconds` allows, then answers 202 with the operation.
#[test]
fn a_synchronous_submission_works_max_wait_then_answers_202() {
    let mut host = FakeHost::new();
    host.config.max_wait = Duration::from_secs(5);
    answers_202_after(&host, &[], Duration::from_secs(5));
}

/// A `wait` longer than `max_wait_seconds` is cut to it.
#[test]
fn an_unfinished_wait_is_capped_by_max_wait() {
    let mut host = FakeHost::new();
    host.config.max_wait = Duration::from_secs(2);
    let response = answers_202_after(&host, &[("prefer", "wait=3600")], Duration::from_secs(2));
    assert!(response.headers().get("preference-applied").is_none());
}

#[test]
fn wait_returns_201_when_the_work_finishes_in_time() {
    let host = FakeHost::new();
    let response = host.submit(&[("prefer", "respond-async, wait=10")], "");
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[test]
fn the_same_idempotency_key_and_body_return_the_same_operation() {
    let host = FakeHost::new();
    let headers = [
        ("prefer", "respond-async"),
        ("idempotency-key", "\"order-42\""),
    ];
    let first = host.submit(&headers, "?ops=grayscale");
    let second = host.submit(&headers, "?ops=grayscale");
    assert_eq!(header(&first, "location"), header(&second, "location"));
    assert_eq!(host.dispatches.get(), 1, "a replay dispatched a second job");
    // Only the replay says it is one.
    assert_eq!(first.headers().get("idempotent-replayed"), None);
    assert_eq!(header(&second, "idempotent-replayed"), "true");
}

#[test]
fn the_same_idempotency_key_with_another_body_is_422() {
    let host = FakeHost::new();
    let headers = [("idempotency-key", "k1")];
    host.submit(&headers, "?ops=grayscale");
    let response = host.submit(&headers, "?ops=blur(sigma=2)");
    assert_eq!(problem_status(&response), 422);
}

/// A key whose first request never bound it (still running, or dead) is
/// a `409` that says when to retry; the retry then takes the key.
#[test]
fn a_key_held_by_another_request_is_409_with_retry_after_then_free() {
    let host = FakeHost::new();
    let key = crate::idempotency::IdempotencyKey::parse(b"k1").unwrap();
    host.kv
        .increment(&format!("{}:claims", key.entry_key()), 1)
        .unwrap();
    let headers = [("prefer", "respond-async"), ("idempotency-key", "k1")];
    let refused = host.submit(&headers, "?ops=grayscale");
    assert_eq!(problem_status(&refused), 409);
    assert_eq!(header(&refused, "retry-after"), "1");
    let retried = host.submit(&headers, "?ops=grayscale");
    assert_eq!(retried.status(), 202);
}

#[test]
fn a_malformed_idempotency_key_is_400() {
    let host = FakeHost::new();
    let response = host.submit(&[("idempotency-key", "\"unterminated")], "");
    assert_eq!(problem_status(&response), 400);
}

#[test]
fn images_revalidate_with_their_etag() {
    let host = FakeHost::new();
    let created = host.submit(&[], "");
    let etag = header(&created, "etag").to_owned();
    let path = header(&created, "location").to_owned();
    let response = host.send(Method::GET, &path, &[("if-none-match", &etag)], Vec::new());
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert!(response.body().is_empty());
    assert_eq!(header(&response, "etag"), etag);
}

#[test]
fn head_of_an_image_has_the_headers_of_get_and_no_body() {
    let host = FakeHost::new();
    let created = host.submit(&[], "");
    let path = header(&created, "location").to_owned();
    let get = host.get(&path);
    let head = host.send(Method::HEAD, &path, &[], Vec::new());
    assert_eq!(head.status(), StatusCode::OK);
    assert!(head.body().is_empty());
    assert_eq!(
        header(&head, "content-length"),
        get.body().len().to_string()
    );
    assert_eq!(header(&head, "etag"), header(&get, "etag"));
}

#[test]
fn an_image_of_an_unfinished_job_is_404_linking_its_operation() {
    let host = FakeHost::new();
    host.processor.set(Processor::Unreachable);
    let accepted = host.submit(&[("prefer", "respond-async")], "");
    let id = json(&accepted)["id"].as_str().unwrap().to_owned();
    let response = host.get(&format!("/images/{id}"));
    assert_eq!(problem_status(&response), 404);
    assert_eq!(json(&response)["operation"], format!("/operations/{id}"));
}

#[test]
fn canceling_an_unfinished_job_stops_it_and_a_second_cancel_is_409() {
    let host = FakeHost::new();
    host.processor.set(Processor::Unreachable);
    let accepted = host.submit(&[("prefer", "respond-async")], "");
    let path = header(&accepted, "location").to_owned();
    let canceled = host.send(Method::DELETE, &path, &[], Vec::new());
    assert_eq!(canceled.status(), StatusCode::OK);
    assert_eq!(json(&canceled)["status"], "canceled");
    host.processor.set(Processor::Working);
    host.advance(Duration::from_secs(3600));
    assert_eq!(json(&host.get(&path))["status"], "canceled");
    let again = host.send(Method::DELETE, &path, &[], Vec::new());
    assert_eq!(problem_status(&again), 409);
}

#[test]
fn deleting_an_image_removes_every_key_of_its_job() {
    let host = FakeHost::new();
    let created = host.submit(&[], "");
    let path = header(&created, "location").to_owned();
    let id = path.trim_start_matches("/images/").to_owned();
    let deleted = host.send(Method::DELETE, &path, &[], Vec::new());
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(problem_status(&host.get(&path)), 404);
    assert!(
        host.kv.keys().iter().all(|k| !k.contains(&id)),
        "{:?}",
        host.kv.keys()
    );
}

#[test]
fn expired_jobs_read_as_gone_and_are_swept_by_a_later_request() {
    let host = FakeHost::new();
    let created = host.submit(&[], "");
    let id = header(&created, "location")
        .trim_start_matches("/images/")
        .to_owned();
    host.advance(host.config.retention + Duration::from_secs(60));
    assert_eq!(problem_status(&host.get(&format!("/operations/{id}"))), 404);
    assert!(host.kv.keys().iter().any(|k| k.contains(&id)));
    host.submit(&[], "");
    assert!(
        host.kv.keys().iter().all(|k| !k.contains(&id)),
        "{:?}",
        host.kv.keys()
    );
}

#[test]
fn a_lost_dispatch_is_repeated_by_a_status_read_after_one_lease() {
    let host = FakeHost::new();
    host.processor.set(Processor::Unreachable);
    let accepted = host.submit(&[("prefer", "respond-async")], "");
    let path = header(&accepted, "location").to_owned();
    host.processor.set(Processor::Working);
    assert_eq!(json(&host.get(&path))["status"], "notStarted");
    host.advance(host.config.lease);
    host.get(&path);
    assert_eq!(json(&host.get(&path))["status"], "succeeded");
}

#[test]
fn a_job_whose_processor_died_is_reclaimed_after_its_lease() {
    let host = FakeHost::new();
    host.processor.set(Processor::Unreachable);
    let accepted = host.submit(&[("prefer", "respond-async")], "");
    let id = crate::id::JobId::parse(json(&accepted)["id"].as_str().unwrap()).unwrap();
    // A processor claims the job, then dies without a word.
    assert!(matches!(
        crate::processing::claim(&host.ctx(), id),
        Ok(crate::processing::Claimed::Started { .. })
    ));
    host.processor.set(Processor::Working);
    let path = format!("/operations/{id}");
    assert_eq!(json(&host.get(&path))["status"], "running");
    host.advance(host.config.lease);
    host.get(&path);
    let job = crate::repo::Jobs::new(&host.kv)
        .get(id, host.now())
        .unwrap()
        .unwrap();
    assert_eq!((job.status, job.attempts), (Status::Succeeded, 2));
}

/// A processor that died after storing its result but before recording
/// it leaves nothing once another attempt finishes the job.
#[test]
fn a_dead_attempts_stored_result_goes_when_the_job_finishes() {
    let host = FakeHost::new();
    host.processor.set(Processor::Unreachable);
    let accepted = host.submit(&[("prefer", "respond-async")], "");
    let id = crate::id::JobId::parse(json(&accepted)["id"].as_str().unwrap()).unwrap();
    assert!(matches!(
        crate::processing::claim(&host.ctx(), id),
        Ok(crate::processing::Claimed::Started { .. })
    ));
    let dead = crate::keys::result_blob(id, 1);
    crate::blob::write(&host.kv, dead.clone(), &[7; 10], 256 * 1024).unwrap();
    host.processor.set(Processor::Working);
    host.advance(host.config.lease);
    let path = format!("/operations/{id}");
    host.get(&path);
    assert_eq!(json(&host.get(&path))["status"], "succeeded");
    let keys = host.kv.keys();
    assert!(!keys.iter().any(|k| k.starts_with(&dead)), "{keys:?}");
    let kept = crate::keys::result_blob(id, 2);
    assert!(keys.iter().any(|k| k.starts_with(&kept)), "{keys:?}");
}

#[test]
fn a_submission_also_redispatches_other_lost_jobs() {
    let host = FakeHost::new();
    host.processor.set(Processor::Unreachable);
    let lost = host.submit(&[("prefer", "respond-async")], "");
    host.processor.set(Processor::Working);
    host.advance(host.config.lease);
    host.submit(&[("prefer", "respond-async")], "");
    let reply =
        host.send_without_follow_ups(Method::GET, header(&lost, "location"), &[], Vec::new());
    assert_eq!(json(&reply.response)["status"], "succeeded");
}

#[test]
fn long_polling_returns_as_soon_as_the_status_changes() {
    let host = FakeHost::new();
    host.processor.set(Processor::Unreachable);
    let accepted = host.submit(&[("prefer", "respond-async")], "");
    let path = header(&accepted, "location").to_owned();
    host.advance(host.config.lease);
    host.processor.set(Processor::Working);
    let start = host.now();
    let response = host.send(Method::GET, &path, &[("prefer", "wait=20")], Vec::new());
    assert_eq!(json(&response)["status"], "succeeded");
    assert!(host.now() < start.after(Duration::from_secs(20)));
}

#[test]
fn an_unfinished_operation_must_not_be_cached_and_a_finished_one_revalidates() {
    let host = FakeHost::new();
    host.processor.set(Processor::Unreachable);
    let accepted = host.submit(&[("prefer", "respond-async")], "");
    let path = header(&accepted, "location").to_owned();
    let pending = host.get(&path);
    assert_eq!(header(&pending, "cache-control"), "no-store");
    assert_eq!(header(&pending, "retry-after"), "1");
    host.send(Method::DELETE, &path, &[], Vec::new());
    let done = host.get(&path);
    assert_eq!(header(&done, "cache-control"), "no-cache");
    let etag = header(&done, "etag").to_owned();
    let revalidated = host.send(Method::GET, &path, &[("if-none-match", &etag)], Vec::new());
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
}

#[test]
fn store_failures_are_503_problems_with_retry_after() {
    let host = FakeHost::new();
    host.kv.set_failing(true);
    let response = host.submit(&[], "");
    assert_eq!(problem_status(&response), 503);
    assert_eq!(header(&response, "retry-after"), "1");
}

#[test]
fn bad_uploads_get_their_documented_status() {
    let host = FakeHost::new();
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, Vec<u8>, u16);
    let cases: Vec<Case> = vec![
        (vec![("content-type", "image/jpeg")], "", png(4, 4), 415),
        (vec![("content-type", "text/plain")], "", png(4, 4), 415),
        (vec![], "", png(4, 4), 415),
        (vec![("content-type", "image/png")], "", Vec::new(), 400),
        (
            vec![("content-type", "image/png")],
            "",
            b"not an image".to_vec(),
            415,
        ),
        (
            vec![("content-type", "image/png")],
            "?ops=sharpn",
            png(4, 4),
            400,
        ),
        (
            vec![("content-type", "image/png")],
            "?ops=grayscale&ops=grayscale",
            png(4, 4),
            400,
        ),
        (
            vec![
                ("content-type", "image/png"),
                ("content-length", "999999999999"),
            ],
            "",
            png(4, 4),
            413,
        ),
    ];
    for (headers, query, body, status) in cases {
        let response = host.send(Method::POST, &format!("/images{query}"), &headers, body);
        assert_eq!(problem_status(&response), status, "{headers:?} {query}");
    }
}

#[test]
fn a_body_over_the_limit_is_413_even_without_content_length() {
    let mut host = FakeHost::new();
    host.config.max_upload_bytes = 100;
    let response = host.submit(&[], "");
    assert_eq!(problem_status(&response), 413);
}

#[test]
fn too_many_output_pixels_are_refused_before_processing() {
    let mut host = FakeHost::new();
    host.config.max_output_pixels = 1_000;
    let response = host.submit(&[], "?ops=resize(w=2000,h=2000,fit=fill)");
    assert_eq!(problem_status(&response), 422);
    assert_eq!(host.dispatches.get(), 0);
}

#[test]
fn wrong_methods_are_405_with_allow() {
    let host = FakeHost::new();
    let on_collection = host.get("/images");
    assert_eq!(problem_status(&on_collection), 405);
    assert_eq!(header(&on_collection, "allow"), "POST, OPTIONS");
    let id = crate::id::JobId::random();
    let on_operation = host.send(Method::PUT, &format!("/operations/{id}"), &[], Vec::new());
    assert_eq!(header(&on_operation, "allow"), "GET, HEAD, DELETE, OPTIONS");
}

#[test]
fn malformed_ids_are_404_and_never_reach_the_store() {
    let host = FakeHost::new();
    host.kv.set_failing(true);
    for path in [
        "/operations/..",
        "/operations/a/b",
        "/images/%00",
        "/operations/",
    ] {
        assert_eq!(problem_status(&host.get(path)), 404, "{path}");
    }
}

#[test]
fn a_crop_outside_the_image_is_refused_before_anything_is_stored() {
    let host = FakeHost::new();
    let response = host.submit(&[], "?ops=crop(x=100,y=0,w=10,h=10)");
    assert_eq!(problem_status(&response), 422);
    assert_eq!(host.dispatches.get(), 0);
    assert!(host.kv.keys().iter().all(|k| !k.starts_with("kiln:job:")));
}
