//! A running host: builder, addresses, observability, graceful shutdown and kill.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::calls::ComponentCalls;
use crate::faults::FaultHandle;
use crate::kv::KeyValueStore;
use crate::quotas::Quotas;
use crate::runtime::{ComponentStats, HostShared, ResolvedConfig};
use crate::server::spawn_accept_loop;
use crate::tasks::TaskGroup;
use crate::variables;

/// Configures and starts a [`Host`].
#[derive(Debug)]
#[must_use = "call .start() to run the host"]
pub struct HostBuilder {
    app: App,
    variables: BTreeMap<String, String>,
    kv: Option<KeyValueStore>,
    chained_first_byte_timeout: bool,
    quotas: Option<Quotas>,
}

impl HostBuilder {
    /// Overrides the application variable `name` (as `SPIN_VARIABLE_<NAME>` would); every
    /// component whose variables template it sees the new value. Unknown names are refused by
    /// [`start`](Self::start).
    pub fn variable(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.variables.insert(name.into(), value.into());
        self
    }

    /// Serves the key-value store from `kv` (default: a new empty store). Pass the store of a
    /// killed or stopped host to simulate a restart over persistent data.
    pub fn store(mut self, kv: KeyValueStore) -> Self {
        self.kv = Some(kv);
        self
    }

    /// Whether a chained (`*.spin.internal`) request honours the caller's `first-byte-timeout`
    /// request option (default `true`). Spin 4.0.2 does not apply it to chained requests (it
    /// only does for network requests); pass `false` to behave exactly like Spin.
    pub fn chained_first_byte_timeout(mut self, honour: bool) -> Self {
        self.chained_first_byte_timeout = honour;
        self
    }

    /// Enforces a platform's `quotas` (see [`Quotas`]), e.g. [`Quotas::fermyon_cloud`]:
    /// key-value writes, request bodies, handler time, and whether the app may chain. Without
    /// this call the host enforces no quota.
    pub fn quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = Some(quotas);
        self
    }

    /// Resolves variables and starts serving on `127.0.0.1` on an ephemeral port. Must be
    /// called within a tokio runtime; guest instances run as tasks on that runtime.
    ///
    /// Fails if a variable is unknown or missing, if a templated `allowed_outbound_hosts` entry
    /// resolves to an invalid entry, or if the app needs service chaining and the
    /// [`quotas`](Self::quotas) do not offer it.
    pub async fn start(self) -> Result<Host> {
        let manifest = self.app.manifest();
        if let Some(quotas) = &self.quotas {
            quotas.check_app(manifest)?;
        }
        let values = variables::app_values(&manifest.variables, &self.variables)?;
        let resolved = ResolvedConfig {
            variables: variables::render_components(
                &values,
                manifest.components.iter().map(|(id, c)| (id, &c.variables)),
            )?,
            allowed_hosts: manifest
                .components
                .iter()
                .map(|(id, c)| {
                    let hosts = c
                        .allowed_outbound_hosts
                        .resolve(&values)
                        .with_context(|| format!("component `{id}`"))?;
                    Ok((id.clone(), hosts))
                })
                .collect::<Result<_>>()?,
        };
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .context("cannot bind 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(HostShared::new(
            self.app,
            self.kv.unwrap_or_default(),
            resolved,
            self.chained_first_byte_timeout,
            self.quotas,
        ));
        let connections = TaskGroup::new();
        let stop_accepting = CancellationToken::new();
        spawn_accept_loop(
            listener,
            shared.clone(),
            connections.clone(),
            stop_accepting.clone(),
        );
        Ok(Host {
            shared,
            addr,
            connections,
            stop_accepting,
        })
    }
}

/// A running Spin-compatible host serving one [`App`] over HTTP on `127.0.0.1`.
///
/// Dropping a `Host` kills it like [`kill`](Self::kill) does, without waiting.
pub struct Host {
    shared: Arc<HostShared>,
    addr: SocketAddr,
    connections: TaskGroup,
    stop_accepting: CancellationToken,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// Starts configuring a host for `app`.
    pub fn builder(app: App) -> HostBuilder {
        HostBuilder {
            app,
            variables: BTreeMap::new(),
            kv: None,
            chained_first_byte_timeout: true,
            quotas: None,
        }
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the host listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The key-value store the components use (the one passed to
    /// [`HostBuilder::store`], or the host's own).
    pub fn kv(&self) -> &KeyValueStore {
        &self.shared.kv
    }

    /// The fault injection switches of this host.
    pub fn faults(&self) -> &FaultHandle {
        &self.shared.faults
    }

    /// Invocation counters for `component` (zero for unknown ids).
    pub fn stats(&self, component: &str) -> ComponentStats {
        self.shared.stats(component)
    }

    /// The host calls `component`'s instances made, split at their responses.
    pub fn calls(&self, component: &str) -> ComponentCalls {
        self.shared.calls(component)
    }

    /// How many instances of `component` this host has started.
    pub fn invocations(&self, component: &str) -> u64 {
        self.stats(component).invocations
    }

    /// Waits until no guest instance is running, including work a guest does after it has
    /// responded and instances started through service chaining.
    pub async fn wait_idle(&self) {
        self.shared.guests.wait_idle().await;
    }

    /// Graceful stop: stops accepting connections, lets in-flight requests finish, then waits
    /// for every guest instance to complete (including background work after a response).
    pub async fn shutdown(self) {
        self.stop_accepting.cancel();
        self.connections.wait_idle().await;
        self.shared.guests.wait_idle().await;
    }

    /// Simulated crash: drops the listener, every connection and every running guest instance
    /// at once (their stores are dropped mid-execution). The key-value store keeps whatever was
    /// written before.
    pub async fn kill(self) {
        self.cancel_all();
        self.connections.wait_idle().await;
        self.shared.guests.wait_idle().await;
    }

    fn cancel_all(&self) {
        self.stop_accepting.cancel();
        self.connections.cancel();
        self.shared.guests.cancel();
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // After `shutdown`/`kill` everything is already idle; otherwise behave like `kill`.
        self.cancel_all();
    }
}
