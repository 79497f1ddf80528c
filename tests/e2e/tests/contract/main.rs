//! Kiln's HTTP contract, end to end: the release `.wasm` components of this
//! checkout, served by the Spin-compatible test host (and by `spin up` when a
//! Spin binary is available), over real HTTP on loopback. One module per
//! surface; each test states the promise it guards.
//!
//! One test binary, so each component is compiled once per run.

mod access;
mod animation;
mod bad_input;
mod cloud;
mod colour;
mod concurrency;
mod cors;
mod crops;
mod events;
mod faults;
mod formats;
mod images;
mod long_jobs;
mod operations;
mod queue;
mod quotas;
mod rate_limits;
mod redis;
mod routing;
mod schema;
mod submit;
mod ui;
mod webhooks;
