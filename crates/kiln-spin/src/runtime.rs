//! [`Runtime`] on Spin: the wall clock, blocking sleep, logging to stderr
//! (Spin's component log), dispatch to the private `processor` component
//! through Spin service chaining, and webhook POSTs.

use kiln::{JobId, Runtime, Timestamp};
use spin_sdk::wit::wasi::http0_2_0::outgoing_handler;
use spin_sdk::wit::wasi::http0_2_0::types::{
    Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The processor's address; it must be listed in the calling component's
/// `allowed_outbound_hosts` (as `http://processor.spin.internal`).
pub const PROCESSOR_AUTHORITY: &str = "processor.spin.internal";

/// The processor answers once it has claimed a job, so this is generous.
const DISPATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Spin's view of time, sleeping and the processor, for one request.
pub struct SpinRuntime {
    started_at: Timestamp,
}

impl SpinRuntime {
    /// The runtime of a request that arrived just now.
    pub fn new() -> Self {
        SpinRuntime {
            started_at: wall_clock(),
        }
    }
}

impl Default for SpinRuntime {
    fn default() -> Self {
        Self::new()
    }
}

fn wall_clock() -> Timestamp {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
}

impl Runtime for SpinRuntime {
    fn now(&self) -> Timestamp {
        wall_clock()
    }

    fn started_at(&self) -> Timestamp {
        self.started_at
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }

    fn dispatch(&self, id: JobId) -> Result<(), String> {
        let target = Target {
            scheme: Scheme::Http,
            authority: PROCESSOR_AUTHORITY,
            path: &format!("/jobs/{id}"),
        };
        match send(&target, &[], &[], DISPATCH_TIMEOUT)? {
            200..=299 => Ok(()),
            status => Err(format!("processor answered {status}")),
        }
    }

    fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
        timeout: Duration,
    ) -> Result<u16, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let scheme = match uri.scheme_str() {
            Some("https") => Scheme::Https,
            Some("http") => Scheme::Http,
            _ => return Err(format!("{url}: not an http(s) URL")),
        };
        let authority = uri.authority().ok_or("no authority")?.as_str();
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let target = Target {
            scheme,
            authority,
            path,
        };
        send(&target, headers, body, timeout)
    }

    fn log(&self, message: &str) {
        eprintln!("kiln: {message}");
    }
}

/// Where an outgoing request goes.
struct Target<'a> {
    scheme: Scheme,
    authority: &'a str,
    path: &'a str,
}

/// Sends a request through `wasi:http` (which checks it against the
/// component's `allowed_outbound_hosts`), waits at most `timeout` for the
/// response to start, and reads its (small) body to the end so the other
/// side can finish writing it; the status.
fn send(
    target: &Target<'_>,
    headers: &[(&str, String)],
    body: &[u8],
    timeout: Duration,
) -> Result<u16, String> {
    let fields: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone().into_bytes()))
        .collect();
    let fields = Fields::from_list(&fields).map_err(|e| format!("headers: {e:?}"))?;
    let request = OutgoingRequest::new(fields);
    request.set_method(&Method::Post).map_err(|()| "method")?;
    request
        .set_scheme(Some(&target.scheme))
        .map_err(|()| "scheme")?;
    request
        .set_authority(Some(target.authority))
        .map_err(|()| "authority")?;
    request
        .set_path_with_query(Some(target.path))
        .map_err(|()| "path")?;
    let outgoing_body = request.body().map_err(|()| "body")?;
    let options = RequestOptions::new();
    let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    options.set_connect_timeout(Some(nanos)).ok();
    options.set_first_byte_timeout(Some(nanos)).ok();
    let pending = outgoing_handler::handle(request, Some(options)).map_err(|e| format!("{e:?}"))?;
    {
        let stream = outgoing_body.write().map_err(|()| "body stream")?;
        // `blocking-write-and-flush` takes at most 4096 bytes a call.
        for chunk in body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| format!("{e:?}"))?;
        }
    }
    OutgoingBody::finish(outgoing_body, None).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    let response = pending
        .get()
        .ok_or("no response")?
        .map_err(|()| "response already taken")?
        .map_err(|e| format!("{e:?}"))?;
    let status = response.status();
    if let Ok(body) = response.consume()
        && let Ok(stream) = body.stream()
    {
        while stream.blocking_read(64 * 1024).is_ok() {}
    }
    Ok(status)
}
