//! What the workflow needs from its host besides the store: time, waiting,
//! and a way to start the processor. Components implement it with Spin's
//! APIs; tests implement it with a fake clock and an in-process processor.

use crate::budget::Budget;
use crate::clock::Timestamp;
use crate::config::ConfigRef;
use crate::id::JobId;
use crate::kv::KvStore;
use std::time::Duration;

/// The host environment of one request.
pub trait Runtime {
    /// The current time.
    fn now(&self) -> Timestamp;
    /// When this instance started handling its request.
    fn started_at(&self) -> Timestamp;
    /// Blocks for `duration`.
    fn sleep(&self, duration: Duration);
    /// Asks a processor to run job `id`, and returns once it has answered
    /// (a processor answers as soon as it has claimed the job, then works).
    fn dispatch(&self, id: JobId) -> Result<(), String>;
    /// POSTs `body` to `url` (an absolute `http` or `https` URL the
    /// operator allowed) with `headers`, waiting at most `timeout` for the
    /// response; its status, or why there was none.
    fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
        timeout: Duration,
    ) -> Result<u16, String>;
    /// Reports an internal error to the operator (never to the client).
    fn log(&self, message: &str);
}

/// What runs a job's operations on its upload: [`IMAGE_PIPELINE`] in the
/// components that run jobs. A component that runs none passes `None`: the
/// `operations` component of `spin.toml`, whose jobs all run in the
/// processor. The linker then leaves every codec out of its Wasm, and Spin,
/// which sets up an instance per request, sets up a smaller one: status
/// reads are served faster (`bench/run` section 5).
pub type Pipeline = for<'a, 'b> fn(
    &'a [u8],
    &'a [kiln_image::Op],
    &'a kiln_image::Limits,
    &'a mut kiln_image::OnProgress<'b>,
) -> Result<kiln_image::Output, kiln_image::ImageError>;

/// Kiln's image pipeline.
pub const IMAGE_PIPELINE: Pipeline = kiln_image::process;

/// Everything a request handler works with.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The shared store.
    pub kv: &'a dyn KvStore,
    /// The host.
    pub runtime: &'a dyn Runtime,
    /// Limits and timings.
    pub config: ConfigRef<'a>,
    /// What runs a job's operations, if this component runs jobs at all
    /// (see [`Pipeline`]).
    pub pipeline: Option<Pipeline>,
}

impl Ctx<'_> {
    /// The working time of this instance.
    pub fn budget(&self) -> Budget {
        Budget {
            started_at: self.runtime.started_at(),
            limit: self.config.request_timeout,
        }
    }

    /// Polls `check` until it returns `Some`, or `timeout` has passed;
    /// starts at 20 ms between polls and backs off to 250 ms.
    pub fn poll<T>(&self, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
        let deadline = self.runtime.now().after(timeout);
        let mut interval = Duration::from_millis(20);
        loop {
            if let Some(value) = check() {
                return Some(value);
            }
            let now = self.runtime.now();
            if now >= deadline {
                return None;
            }
            self.runtime.sleep(interval.min(now.until(deadline)));
            interval = (interval * 2).min(Duration::from_millis(250));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::Cell;

    /// A clock that only moves when told, for the domain's unit tests; it
    /// has no processor and no network.
    pub(crate) struct FixedClock(Cell<u64>);

    impl FixedClock {
        pub(crate) fn at(millis: u64) -> Self {
            FixedClock(Cell::new(millis))
        }

        pub(crate) fn set(&self, millis: u64) {
            self.0.set(millis);
        }
    }

    impl Runtime for FixedClock {
        fn now(&self) -> Timestamp {
            Timestamp(self.0.get())
        }
        fn started_at(&self) -> Timestamp {
            Timestamp(0)
        }
        fn sleep(&self, duration: Duration) {
            self.0.set(self.0.get() + duration.as_millis() as u64);
        }
        fn dispatch(&self, _id: JobId) -> Result<(), String> {
            Err("no processor here".into())
        }
        fn post(
            &self,
            _url: &str,
            _headers: &[(&str, String)],
            _body: &[u8],
            _timeout: Duration,
        ) -> Result<u16, String> {
            Err("no network here".into())
        }
        fn log(&self, _message: &str) {}
    }
}
