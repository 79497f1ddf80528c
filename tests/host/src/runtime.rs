//! Running one request through a fresh component instance, as a tracked background task.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use tokio::sync::oneshot;
use tokio::time::Instant;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{Error as HttpError, WasiBody, WasiHttpView};

use crate::allowed_hosts::AllowedHosts;
use crate::app::{App, engine};
use crate::calls::{CallCounter, ComponentCalls};
use crate::faults::FaultHandle;
use crate::kv::KeyValueStore;
use crate::quotas::{KvQuotaGate, KvWritePermit, Quotas};
use crate::state::HostState;
use crate::tasks::TaskGroup;

/// Counters for one component, as seen by one host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ComponentStats {
    /// Instances started (one per request, including chained requests).
    pub invocations: u64,
    /// Instances that ended with a trap or error, before or after responding, or were killed
    /// by the handler time limit.
    pub failures: u64,
    /// Instances killed by the handler time limit of the host's [`Quotas`] (also counted in
    /// `failures`).
    pub timeouts: u64,
    /// Instances still running (for example working after they responded).
    pub running: u64,
    /// The most linear memory one instance had, in bytes (Wasm memories
    /// never shrink, so this is the size of the largest when it ended).
    pub peak_memory_bytes: u64,
}

/// What a host resolves from the application variables when it starts, per component.
pub(crate) struct ResolvedConfig {
    /// `component -> variable -> value`.
    pub variables: BTreeMap<String, BTreeMap<String, String>>,
    /// `component -> allowed_outbound_hosts`.
    pub allowed_hosts: BTreeMap<String, AllowedHosts>,
}

/// State shared by every instance a host runs.
pub(crate) struct HostShared {
    pub app: App,
    pub kv: KeyValueStore,
    pub faults: FaultHandle,
    /// Guest instance tasks, including those still working after responding.
    pub guests: TaskGroup,
    variables: BTreeMap<String, BTreeMap<String, String>>,
    allowed_hosts: BTreeMap<String, AllowedHosts>,
    stats: Mutex<BTreeMap<String, ComponentStats>>,
    calls: Mutex<BTreeMap<String, ComponentCalls>>,
    chained_first_byte_timeout: bool,
    quotas: Option<Quotas>,
    kv_quota: Option<KvQuotaGate>,
}

impl HostShared {
    pub fn new(
        app: App,
        kv: KeyValueStore,
        resolved: ResolvedConfig,
        chained_first_byte_timeout: bool,
        quotas: Option<Quotas>,
    ) -> Self {
        Self {
            app,
            kv,
            faults: FaultHandle::default(),
            guests: TaskGroup::new(),
            variables: resolved.variables,
            allowed_hosts: resolved.allowed_hosts,
            stats: Mutex::default(),
            calls: Mutex::default(),
            chained_first_byte_timeout,
            kv_quota: quotas.clone().map(KvQuotaGate::new),
            quotas,
        }
    }

    /// The quotas the host enforces, if any.
    pub fn quotas(&self) -> Option<&Quotas> {
        self.quotas.as_ref()
    }

    /// Whether components may chain (always, unless quotas say the platform cannot).
    pub fn chaining_available(&self) -> bool {
        self.quotas.as_ref().is_none_or(|q| q.service_chaining)
    }

    /// Admits a guest's key-value write of `(key, value length)` pairs under the quotas, if
    /// any, or returns the store error text naming the quota it exceeds. Hold the permit until
    /// the write is done.
    pub fn admit_kv_write(
        &self,
        writes: &[(&str, usize)],
    ) -> Result<Option<KvWritePermit<'_>>, String> {
        match &self.kv_quota {
            None => Ok(None),
            Some(gate) => gate
                .admit(&self.kv, writes)
                .map(Some)
                .map_err(|exceeded| exceeded.to_string()),
        }
    }

    /// The resolved value of `component`'s variable `name`.
    pub fn variable(&self, component: &str, name: &str) -> Option<&str> {
        self.variables
            .get(component)
            .and_then(|vars| vars.get(name))
            .map(String::as_str)
    }

    /// All of `component`'s resolved variables.
    pub fn variables(&self, component: &str) -> impl Iterator<Item = (&String, &String)> {
        self.variables.get(component).into_iter().flatten()
    }

    /// `component`'s `allowed_outbound_hosts`, templates resolved.
    pub fn allowed_hosts(&self, component: &str) -> Option<&AllowedHosts> {
        self.allowed_hosts.get(component)
    }

    /// `component`'s `environment` table.
    pub fn environment(&self, component: &str) -> Option<&BTreeMap<String, String>> {
        self.app
            .component(component)
            .map(|c| &c.manifest.environment)
    }

    /// Whether `component` may open the key-value store `label`.
    pub fn may_open_store(&self, component: &str, label: &str) -> bool {
        self.app
            .component(component)
            .is_some_and(|c| c.manifest.key_value_stores.iter().any(|l| l == label))
    }

    pub fn honours_chained_first_byte_timeout(&self) -> bool {
        self.chained_first_byte_timeout
    }

    pub fn stats(&self, component: &str) -> ComponentStats {
        self.lock_stats()
            .get(component)
            .copied()
            .unwrap_or_default()
    }

    /// The host calls of `component`'s instances so far.
    pub fn calls(&self, component: &str) -> ComponentCalls {
        self.lock_calls()
            .get(component)
            .cloned()
            .unwrap_or_default()
    }

    fn lock_calls(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ComponentCalls>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update_calls(&self, component: &str, update: impl FnOnce(&mut ComponentCalls)) {
        update(self.lock_calls().entry(component.to_owned()).or_default());
    }

    fn lock_stats(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ComponentStats>> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update_stats(&self, component: &str, update: impl FnOnce(&mut ComponentStats)) {
        update(self.lock_stats().entry(component.to_owned()).or_default());
    }

    /// Runs `request` through a fresh instance of `component` and returns its response as soon
    /// as the guest sets it; the instance keeps running in the background until its handler
    /// returns. A guest that fails before responding yields an empty 500, as in Spin.
    ///
    /// Under quotas the instance is killed at its deadline: `caller_deadline` for an instance
    /// started by another one (service chaining), else the handler time limit from now. One
    /// killed before responding yields an empty 504.
    pub async fn invoke<B>(
        self: &Arc<Self>,
        component: &str,
        request: http::Request<B>,
        caller_deadline: Option<Instant>,
    ) -> http::Response<WasiBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<HttpError>,
    {
        let deadline = caller_deadline.or_else(|| {
            self.quotas
                .as_ref()
                .map(|q| Instant::now() + q.handler_timeout)
        });
        match self.try_invoke(component, request, deadline).await {
            Ok(response) => response,
            Err(err) => {
                eprintln!("[kiln-test-host] `{component}`: {err:#}");
                internal_error()
            }
        }
    }

    async fn try_invoke<B>(
        self: &Arc<Self>,
        component: &str,
        request: http::Request<B>,
        deadline: Option<Instant>,
    ) -> Result<http::Response<WasiBody>>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<HttpError>,
    {
        let loaded = self
            .app
            .component(component)
            .with_context(|| format!("no component `{component}`"))?
            .clone();
        let id: Arc<str> = component.into();
        let calls = Arc::new(CallCounter::default());
        let mut store = Store::new(
            engine()?,
            HostState::new(self.clone(), id.clone(), deadline, calls.clone()),
        );
        store.limiter(|state| &mut state.memory);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
        let (response_tx, response_rx) = oneshot::channel();
        let (request, outparam) = {
            let mut http = store.data_mut().http();
            let request = http
                .new_incoming_request(Scheme::Http, request)
                .map_err(anyhow::Error::from)?;
            let outparam = http
                .new_response_outparam(response_tx)
                .map_err(anyhow::Error::from)?;
            (request, outparam)
        };
        let (done_tx, done_rx) = oneshot::channel::<InstanceEnd>();
        let shared = self.clone();
        self.update_stats(component, |s| {
            s.invocations += 1;
            s.running += 1;
        });
        let task = async move {
            let instance = async {
                let proxy = loaded.pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, request, outparam)
                    .await
            };
            let end = run_until(deadline, instance).await;
            match &end {
                InstanceEnd::Returned => {}
                InstanceEnd::Failed(err) => {
                    eprintln!("[kiln-test-host] `{id}` instance failed: {err}");
                }
                InstanceEnd::TimedOut => {
                    eprintln!("[kiln-test-host] `{id}` instance killed: handler time limit");
                }
            }
            let peak = store.data().memory.peak() as u64;
            let instance_calls = store.data().calls.snapshot();
            shared.update_calls(&id, |c| c.add_instance(&instance_calls));
            shared.update_stats(&id, |s| {
                s.running -= 1;
                s.peak_memory_bytes = s.peak_memory_bytes.max(peak);
                s.failures += u64::from(end != InstanceEnd::Returned);
                s.timeouts += u64::from(end == InstanceEnd::TimedOut);
            });
            let _ = done_tx.send(end);
        };
        // If the task is dropped (host killed), `running` must still come down.
        let guard = RunningGuard {
            shared: self.clone(),
            component: component.to_owned(),
            armed: true,
        };
        let guarded = async move {
            let mut guard = guard;
            task.await;
            guard.armed = false;
        };
        if !self.guests.spawn(guarded) {
            bail!("the host is stopping; request refused");
        }
        match response_rx.await {
            Ok(Ok(response)) => {
                self.update_calls(component, |c| c.add_response(&calls.snapshot()));
                Ok(response)
            }
            Ok(Err(code)) => Err(anyhow!("the guest responded with error {code:?}")),
            Err(_) => match done_rx.await {
                Ok(InstanceEnd::Returned) => {
                    Err(anyhow!("the guest returned without setting a response"))
                }
                Ok(InstanceEnd::Failed(_)) => Err(anyhow!("the guest failed before responding")),
                Ok(InstanceEnd::TimedOut) => {
                    eprintln!(
                        "[kiln-test-host] `{component}`: no response within the handler time limit: 504"
                    );
                    Ok(status_response(http::StatusCode::GATEWAY_TIMEOUT))
                }
                Err(_) => Err(anyhow!("the instance was killed before responding")),
            },
        }
    }
}

/// How an instance's handler ended.
#[derive(Debug, PartialEq, Eq)]
enum InstanceEnd {
    Returned,
    /// A trap or error, with its text.
    Failed(String),
    /// Killed at its deadline.
    TimedOut,
}

/// Runs `instance` to its end, or drops it at `deadline`. Guests yield at every epoch tick, so
/// even one that never calls the host is dropped within a tick of its deadline.
async fn run_until(
    deadline: Option<Instant>,
    instance: impl Future<Output = wasmtime::Result<()>>,
) -> InstanceEnd {
    let outcome = match deadline {
        None => instance.await,
        Some(deadline) => match tokio::time::timeout_at(deadline, instance).await {
            Ok(outcome) => outcome,
            Err(_) => return InstanceEnd::TimedOut,
        },
    };
    match outcome {
        Ok(()) => InstanceEnd::Returned,
        Err(err) => InstanceEnd::Failed(format!("{err:?}")),
    }
}

/// Decrements `running` for an instance task dropped before it finished.
struct RunningGuard {
    shared: Arc<HostShared>,
    component: String,
    armed: bool,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        if self.armed {
            self.shared
                .update_stats(&self.component, |s| s.running = s.running.saturating_sub(1));
        }
    }
}

/// An empty 500, what Spin answers when a component fails before responding.
pub(crate) fn internal_error() -> http::Response<WasiBody> {
    status_response(http::StatusCode::INTERNAL_SERVER_ERROR)
}

/// An empty response with `status`.
pub(crate) fn status_response(status: http::StatusCode) -> http::Response<WasiBody> {
    let mut response = http::Response::new(empty_body());
    *response.status_mut() = status;
    response
}

pub(crate) fn empty_body() -> WasiBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// An instance that has responded but keeps working is still ended at its deadline.
    #[tokio::test]
    async fn an_instance_working_after_its_response_is_ended_at_the_deadline() {
        let (response_tx, response_rx) = oneshot::channel();
        let instance = async move {
            let _ = response_tx.send("responded");
            std::future::pending::<()>().await;
            Ok(())
        };
        let deadline = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            run_until(Some(deadline), instance).await,
            InstanceEnd::TimedOut
        );
        assert_eq!(response_rx.await, Ok("responded"));
    }

    /// An instance that ends before its deadline is not reported as killed.
    #[tokio::test]
    async fn an_instance_ending_before_its_deadline_returns() {
        let deadline = Instant::now() + Duration::from_secs(60);
        let returned = run_until(Some(deadline), async { Ok(()) }).await;
        assert_eq!(returned, InstanceEnd::Returned);
        let failed = run_until(Some(deadline), async { Err(wasmtime::format_err!("trap")) }).await;
        assert!(matches!(failed, InstanceEnd::Failed(text) if text.contains("trap")));
    }

    /// Without quotas there is no deadline: a failure is still a failure.
    #[tokio::test]
    async fn without_a_deadline_an_instance_runs_to_its_end() {
        let outcome = run_until(None, async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(())
        })
        .await;
        assert_eq!(outcome, InstanceEnd::Returned);
    }
}
