//! The clients: one blocking HTTP client per thread, and what a client does
//! with one job — submit it (retrying what a crash or an outage makes
//! retryable, always with the same `Idempotency-Key`), maybe submit it
//! again or cancel it, follow it to its end, and fetch its image.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// What to do to which image: one distinct (image, ops) pair, whose result
/// is the same bytes whoever runs it.
pub struct Work {
    /// A short name for reports.
    pub name: &'static str,
    /// The image's bytes (JPEG).
    pub image: Vec<u8>,
    /// The `ops` query parameter.
    pub ops: &'static str,
}

/// A complete answer.
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The operation id a `201`/`202` names: the last segment of
    /// `Location` (`/operations/{id}` or `/images/{id}`, one id for both).
    pub fn named_id(&self) -> Option<String> {
        let location = self.header("location")?;
        Some(location.rsplit('/').next()?.to_owned())
    }

    fn retry_after(&self) -> Option<Duration> {
        let seconds: u64 = self.header("retry-after")?.trim().parse().ok()?;
        Some(Duration::from_secs(seconds.min(5)))
    }
}

/// A blocking HTTP/1.1 client for one base URL (HAProxy or a replica).
#[derive(Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client for `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str) -> Client {
        Client {
            base: base.to_owned(),
            agent: kiln_e2e::client::agent(),
        }
    }

    /// Sends a request; `Err` for a transport failure (refused, reset,
    /// timed out). The time is taken when the status line and headers have
    /// arrived, before the body is read.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(Answer, Instant), String> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(body.to_vec())
            .map_err(|e| format!("building {method} {path}: {e}"))?;
        let mut response = self
            .agent
            .run(request)
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let headers_at = Instant::now();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .body_mut()
            .with_config()
            .limit(200 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| format!("{method} {path}: reading the body: {e}"))?;
        Ok((
            Answer {
                status,
                headers,
                body,
            },
            headers_at,
        ))
    }
}

/// One submission: which work, how, and its key.
pub struct Submission<'a> {
    /// What to run.
    pub work: &'a Work,
    /// The `Prefer` header, if any (`respond-async`, `wait=5`).
    pub prefer: Option<&'a str>,
    /// The `Idempotency-Key` (every submission carries one, so that a
    /// retry never makes a second job).
    pub key: String,
    /// The `Webhook-Url`, if any.
    pub webhook: Option<String>,
}

/// The answer that accepted a submission.
pub struct Ack {
    /// The operation's id.
    pub id: String,
    /// 201 (done inline) or 202 (accepted).
    pub status: u16,
    /// The image of a 201.
    pub image: Option<Vec<u8>>,
    /// From the first attempt to the accepting answer's headers.
    pub elapsed: Duration,
    /// Attempts made (1 without retries).
    pub attempts: u32,
    /// `503`s with `Retry-After` met on the way (the store refusing, or a
    /// full queue pushing back).
    pub refusals_503: u32,
}

/// Why an answer is worth retrying with the same key: the proxy found no
/// replica or lost it (502, 503, 504), the store was unavailable or the
/// queue full (503), or the same key is still being bound by a request a
/// crash cut short (409).
fn retryable(status: u16) -> bool {
    matches!(status, 409 | 502 | 503 | 504)
}

/// Submits until a `201` or `202` (retrying transport errors and
/// [`retryable`] statuses, with the same key) or until `give_up` has
/// passed. `Err` carries the last failure.
pub fn submit(client: &Client, submission: &Submission, give_up: Duration) -> Result<Ack, String> {
    let started = Instant::now();
    let path = format!("/images?ops={}", submission.work.ops);
    let mut headers = vec![
        ("content-type", "image/jpeg"),
        ("idempotency-key", submission.key.as_str()),
    ];
    if let Some(prefer) = submission.prefer {
        headers.push(("prefer", prefer));
    }
    if let Some(url) = &submission.webhook {
        headers.push(("webhook-url", url.as_str()));
    }
    let mut attempts = 0;
    let mut refusals_503 = 0;
    loop {
        attempts += 1;
        let pause = match client.send("POST", &path, &headers, &submission.work.image) {
            Ok((answer, headers_at)) if matches!(answer.status, 201 | 202) => {
                let id = answer
                    .named_id()
                    .ok_or_else(|| format!("{} without a Location", answer.status))?;
                return Ok(Ack {
                    id,
                    status: answer.status,
                    image: (answer.status == 201).then_some(answer.body),
                    elapsed: headers_at - started,
                    attempts,
                    refusals_503,
                });
            }
            Ok((answer, _)) if retryable(answer.status) => {
                if answer.status == 503 && answer.retry_after().is_some() {
                    refusals_503 += 1;
                }
                if started.elapsed() > give_up {
                    return Err(format!("still {} after {give_up:?}", answer.status));
                }
                answer.retry_after().unwrap_or(Duration::from_millis(250))
            }
            Ok((answer, _)) => {
                return Err(format!(
                    "{}: {}",
                    answer.status,
                    String::from_utf8_lossy(&answer.body)
                ));
            }
            Err(error) if started.elapsed() > give_up => return Err(error),
            Err(_) => Duration::from_millis(250),
        };
        std::thread::sleep(pause);
    }
}

/// How an operation ended, as its last read said.
pub struct Ending {
    /// `succeeded`, `failed`, `canceled`, or `gone` (404: the store no
    /// longer knows it), or the last status seen if it never ended.
    pub status: String,
    /// Whether it reached a finished state.
    pub finished: bool,
}

/// Long-polls `/operations/{id}` (`Prefer: wait=10`) until it is finished,
/// retrying transport errors and 5xx, for at most `give_up`.
pub fn follow(client: &Client, id: &str, give_up: Duration) -> Ending {
    let started = Instant::now();
    let path = format!("/operations/{id}");
    let mut last = String::from("never read");
    while started.elapsed() < give_up && !crate::cleanup::interrupted() {
        match client.send("GET", &path, &[("prefer", "wait=10")], &[]) {
            Ok((answer, _)) if answer.status == 200 => {
                let operation: serde_json::Value =
                    serde_json::from_slice(&answer.body).unwrap_or_default();
                last = operation["status"]
                    .as_str()
                    .unwrap_or("unreadable")
                    .to_owned();
                if matches!(last.as_str(), "succeeded" | "failed" | "canceled") {
                    return Ending {
                        status: last,
                        finished: true,
                    };
                }
            }
            Ok((answer, _)) if answer.status == 404 => {
                return Ending {
                    status: "gone".into(),
                    finished: true,
                };
            }
            Ok(_) | Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
    Ending {
        status: last,
        finished: false,
    }
}

/// The status of operation `id` now (one plain read), if it answered.
pub fn status_now(client: &Client, id: &str) -> Option<String> {
    let (answer, _) = client
        .send("GET", &format!("/operations/{id}"), &[], &[])
        .ok()?;
    match answer.status {
        200 => {
            let operation: serde_json::Value = serde_json::from_slice(&answer.body).ok()?;
            operation["status"].as_str().map(str::to_owned)
        }
        404 => Some("gone".into()),
        _ => None,
    }
}

/// `GET /images/{id}`, retried through transient failures; the bytes.
pub fn fetch_image(client: &Client, id: &str, give_up: Duration) -> Result<Vec<u8>, String> {
    let started = Instant::now();
    loop {
        let failure = match client.send("GET", &format!("/images/{id}"), &[], &[]) {
            Ok((answer, _)) if answer.status == 200 => return Ok(answer.body),
            Ok((answer, _)) => format!("GET /images/{id}: {}", answer.status),
            Err(error) => error,
        };
        if started.elapsed() > give_up {
            return Err(failure);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `DELETE /operations/{id}`, retried through transport errors and 5xx;
/// the status it finally answered (200 canceled, 409 already finished).
pub fn cancel(client: &Client, id: &str, give_up: Duration) -> Option<u16> {
    let started = Instant::now();
    while started.elapsed() < give_up {
        match client.send("DELETE", &format!("/operations/{id}"), &[], &[]) {
            Ok((answer, _)) if answer.status < 500 => return Some(answer.status),
            _ => std::thread::sleep(Duration::from_millis(250)),
        }
    }
    None
}

/// `count` `respond-async` submissions of `work` from 16 clients, each
/// with a fresh `Idempotency-Key`.
pub fn send_async(base: &str, work: &Work, count: usize) -> Vec<Result<Ack, String>> {
    run_clients(16, base, (0..count).collect(), |client, _: usize| {
        submit(
            client,
            &Submission {
                work,
                prefer: Some("respond-async"),
                key: uuid::Uuid::new_v4().to_string(),
                webhook: None,
            },
            Duration::from_secs(300),
        )
    })
}

/// SHA-256 of `bytes`, as hex.
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Runs `task` over `items` on `clients` threads, each with its own
/// [`Client`] for `base`; the results in the order they were produced.
pub fn run_clients<I, T>(
    clients: usize,
    base: &str,
    items: Vec<I>,
    task: impl Fn(&Client, I) -> T + Sync,
) -> Vec<T>
where
    I: Send,
    T: Send,
{
    let queue = Mutex::new(VecDeque::from(items));
    run_clients_while(clients, base, || queue.lock().unwrap().pop_front(), task)
}

/// Runs `task` on `clients` threads, each with its own [`Client`] for
/// `base`, over what `next` hands out until it says `None` (or Ctrl-C);
/// the results in the order they were produced.
pub fn run_clients_while<I, T>(
    clients: usize,
    base: &str,
    next: impl Fn() -> Option<I> + Sync,
    task: impl Fn(&Client, I) -> T + Sync,
) -> Vec<T>
where
    T: Send,
{
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                let client = Client::new(base);
                while !crate::cleanup::interrupted() {
                    let Some(item) = next() else { break };
                    let result = task(&client, item);
                    results.lock().unwrap().push(result);
                }
            });
        }
    });
    results.into_inner().unwrap()
}
