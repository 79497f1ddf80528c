//! [`Runtime`] on Spin: the wall clock, blocking sleep, logging to stderr
//! (Spin's component log), and dispatch to the private `processor`
//! component through Spin service chaining.

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
        let request = OutgoingRequest::new(Fields::new());
        let path = format!("/jobs/{id}");
        request.set_method(&Method::Post).map_err(|()| "method")?;
        request
            .set_scheme(Some(&Scheme::Http))
            .map_err(|()| "scheme")?;
        request
            .set_authority(Some(PROCESSOR_AUTHORITY))
            .map_err(|()| "authority")?;
        request
            .set_path_with_query(Some(&path))
            .map_err(|()| "path")?;
        let body = request.body().map_err(|()| "body")?;
        let options = RequestOptions::new();
        let nanos = u64::try_from(DISPATCH_TIMEOUT.as_nanos()).unwrap_or(u64::MAX);
        options.set_first_byte_timeout(Some(nanos)).ok();
        let pending =
            outgoing_handler::handle(request, Some(options)).map_err(|e| format!("{e:?}"))?;
        OutgoingBody::finish(body, None).map_err(|e| format!("{e:?}"))?;
        pending.subscribe().block();
        let response = pending
            .get()
            .ok_or("no response")?
            .map_err(|()| "response already taken")?
            .map_err(|e| format!("{e:?}"))?;
        let status = response.status();
        // Read the (small) answer to its end, so the processor can finish
        // writing it instead of finding the connection gone.
        if let Ok(body) = response.consume()
            && let Ok(stream) = body.stream()
        {
            while stream.blocking_read(64 * 1024).is_ok() {}
        }
        match status {
            200..=299 => Ok(()),
            status => Err(format!("processor answered {status}")),
        }
    }

    fn log(&self, message: &str) {
        eprintln!("kiln: {message}");
    }
}
