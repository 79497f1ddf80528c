//! The shared test environment of the end-to-end suite.
//!
//! - [`Env`]: one running app (test host or `spin up`) with its own store,
//!   and a blocking HTTP client for it; [`Env::host`] for tests that inject
//!   faults or look into the store.
//! - [`for_each_target`]: runs a contract test against the test host and, if
//!   a `spin` binary is available, against `spin up` too ([`spin`]: the
//!   `spin up` process, its app and its crash and restart).
//! - [`Reply`]: a response with the assertions every test needs.
//! - [`events`]: a Server-Sent Events client; [`browser`]: the demo page
//!   in headless Chromium; [`schema`]: the OpenAPI document checked by
//!   openapi-spec-validator and Schemathesis; [`process`]: process groups a
//!   test ends.
//! - [`images`]: test images, generated, never downloaded.
//! - [`webhooks`]: a webhook receiver on loopback that checks signatures.
//! - [`RedisServer`], [`KeyValueStore`]: a `redis-server` started by the
//!   test, and stores on it for [`EnvBuilder::store`] (on the test host and
//!   on `spin up`); [`store::StoreView`]: what a test reads of any target's
//!   store, Spin's own SQLite file included.

pub mod browser;
pub mod client;
pub mod env;
pub mod events;
pub mod images;
pub mod process;
pub mod schema;
pub mod spin;
pub mod store;
pub mod webhooks;

pub use client::Reply;
pub use env::{Env, EnvBuilder, SLOW_OPS, for_each_target, targets};
pub use kiln_test_host::{KeyValueStore, Quotas, RedisServer};
