//! A Spin-compatible test host: runs the application described by a `spin.toml` with wasmtime
//! so end-to-end tests can exercise the real components over real HTTP, inject faults, and
//! inspect the key-value store.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use kiln_test_host::{App, Host, KeyValueStore, LoadOptions};
//!
//! let app = App::load("spin.toml".as_ref(), LoadOptions { wasm_dir: None })?;
//! let kv = KeyValueStore::new();
//! let host = Host::builder(app.clone())
//!     .variable("retention_seconds", "2")
//!     .store(kv.clone())
//!     .start()
//!     .await?;
//! let url = format!("{}/operations/00000000-0000-0000-0000-000000000000", host.base_url());
//! # let _ = url;
//! host.faults().fail_kv(true);
//! host.kill().await; // simulated crash; `kv` keeps its data
//! let host = Host::builder(app).store(kv).start().await?;
//! host.shutdown().await; // graceful: waits for background guest work
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - `manifest`: parses and validates `spin.toml`, refusing what the host does not implement.
//! - `routes`: route patterns and Spin's most-specific-route-wins matching.
//! - `variables`: `[variables]`, component templates, resolution with overrides.
//! - `app`: [`App::load`], compiling each component once into a pre-instantiated handler.
//! - `host`: [`Host`] and [`HostBuilder`]: start, observe, shut down, kill.
//! - `server`: the hyper accept loop and request routing.
//! - `runtime`: one request through a fresh instance, tracked as a background task.
//! - `allowed_hosts`: `allowed_outbound_hosts` (Spin's grammar, templated entries, matching).
//! - `outbound`: where a guest's request goes; in-process service chaining.
//! - `loopback`: outbound HTTP/1.1 over the network, to loopback only.
//! - `quotas`: [`Quotas`] (e.g. Fermyon Cloud's) and the rules enforcing them; `body_limit`:
//!   the request body quota.
//! - `headers`: the `spin-*` request headers.
//! - `kv`, `guest_kv`: the shared [`KeyValueStore`] (in memory, or on Redis) and the guest
//!   key-value interfaces.
//! - `redis_server`: [`RedisServer`], a throwaway `redis-server` for tests.
//! - `guest_vars`: the guest variables interfaces.
//! - `faults`: [`FaultHandle`] for injected store failures and crashes.
//! - `calls`: [`HostCalls`], the host calls of each instance, split at its response.
//! - `memory`: the peak linear memory of each instance, for [`ComponentStats`].
//! - `state`, `tasks`, `bindings`: store data, task tracking, generated WIT bindings.

#![deny(missing_docs)]

mod allowed_hosts;
mod app;
mod bindings;
mod body_limit;
mod calls;
mod faults;
mod guest_kv;
mod guest_vars;
mod headers;
mod host;
mod kv;
mod loopback;
mod manifest;
mod memory;
mod outbound;
mod quotas;
mod redis_server;
mod routes;
mod runtime;
mod server;
mod state;
mod tasks;
mod variables;

pub use app::{App, LoadOptions};
pub use calls::{ComponentCalls, HostCalls};
pub use faults::{FaultHandle, INJECTED_FAULT};
pub use host::{Host, HostBuilder};
pub use kv::KeyValueStore;
pub use quotas::Quotas;
pub use redis_server::RedisServer;
pub use runtime::ComponentStats;
