//! Per-instance store data: WASI contexts, the resource table and the host's shared state.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::calls::CallCounter;
use crate::memory::MemoryUse;
use crate::outbound::OutboundHooks;
use crate::runtime::HostShared;

/// The data of one guest instance's wasmtime `Store`.
pub(crate) struct HostState {
    pub table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
    /// The id of the component this instance runs.
    pub component: Arc<str>,
    /// State shared by every instance of the host (store, faults, variables, ...).
    pub shared: Arc<HostShared>,
    /// The instance's linear memory, counted as it grows.
    pub memory: MemoryUse,
    /// The host calls the instance makes.
    pub calls: Arc<CallCounter>,
}

impl HostState {
    /// `deadline` is when the handler time limit ends the instance, if quotas set one.
    pub fn new(
        shared: Arc<HostShared>,
        component: Arc<str>,
        deadline: Option<Instant>,
        calls: Arc<CallCounter>,
    ) -> Self {
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(GuestOutput::new(&component, "stdout"))
            .stderr(GuestOutput::new(&component, "stderr"));
        if let Some(env) = shared.environment(&component) {
            for (key, value) in env {
                wasi.env(key, value);
            }
        }
        Self {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: OutboundHooks::new(shared.clone(), component.clone(), deadline, calls.clone()),
            component,
            shared,
            memory: MemoryUse::default(),
            calls,
        }
    }

    /// Counts one host call of this instance.
    pub fn count(&self, call: &'static str) {
        self.calls.count(call);
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.hooks,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

/// Guest stdout/stderr, forwarded line by line to the host's stderr with a `[component]`
/// prefix (through `eprint!`, so the test harness captures it).
#[derive(Clone)]
struct GuestOutput {
    prefix: Arc<str>,
}

impl GuestOutput {
    fn new(component: &str, stream: &str) -> Self {
        Self {
            prefix: format!("[{component} {stream}]").into(),
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            prefix: self.prefix.clone(),
            buffer: Vec::new(),
        })
    }
}

struct LineWriter {
    prefix: Arc<str>,
    buffer: Vec<u8>,
}

impl LineWriter {
    fn flush_lines(&mut self, all: bool) {
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            eprint!("{} {}", self.prefix, String::from_utf8_lossy(&line));
        }
        if all && !self.buffer.is_empty() {
            eprintln!("{} {}", self.prefix, String::from_utf8_lossy(&self.buffer));
            self.buffer.clear();
        }
    }
}

impl tokio::io::AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.buffer.extend_from_slice(buf);
        self.flush_lines(false);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.flush_lines(true);
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.flush_lines(true);
    }
}
