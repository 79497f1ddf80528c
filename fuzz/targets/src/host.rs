//! A fake Spin host for the targets that go through a request handler:
//! the in-memory store, a clock that moves only when someone sleeps, no
//! processor to dispatch to and no network.

use kiln::clock::Timestamp;
use kiln::http::{Reply, follow_up, handle_resources, handle_submit};
use kiln::id::JobId;
use kiln::{Config, Ctx, MemoryKv, Runtime};
use std::cell::Cell;
use std::time::Duration;

/// The store, the configuration and the clock of one fuzzing thread.
pub struct Host {
    /// The store every request of this host sees.
    pub kv: MemoryKv,
    /// The configuration every request of this host sees.
    pub config: Config,
    clock: Cell<u64>,
}

impl Host {
    /// An empty store under `config`, at a fixed time.
    pub fn new(config: Config) -> Host {
        Host {
            kv: MemoryKv::new(),
            config,
            clock: Cell::new(1_700_000_000_000),
        }
    }

    /// What a handler works with, jobs run by Kiln's own pipeline.
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx {
            kv: &self.kv,
            runtime: self,
            config: (&self.config).into(),
            pipeline: Some(kiln::IMAGE_PIPELINE),
        }
    }

    /// Sends `request` to the handler that owns its path, without running
    /// its follow-ups.
    pub fn send(&self, request: http::Request<Vec<u8>>) -> Reply {
        if request.uri().path() == "/images" {
            handle_submit(request, &self.ctx())
        } else {
            handle_resources(request, &self.ctx())
        }
    }

    /// Sends `request`, then runs its follow-ups, as Spin does after the
    /// response is out.
    pub fn send_and_follow_up(&self, request: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
        let reply = self.send(request);
        for f in reply.follow_ups {
            follow_up(&self.ctx(), f);
        }
        reply.response
    }
}

impl Runtime for Host {
    fn now(&self) -> Timestamp {
        Timestamp(self.clock.get())
    }
    fn started_at(&self) -> Timestamp {
        Timestamp(self.clock.get())
    }
    fn sleep(&self, duration: Duration) {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        self.clock.set(self.clock.get().saturating_add(millis));
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
