//! Kiln's domain: asynchronous request-reply for image processing, over a
//! key-value store, with no dependency on Spin.
//!
//! # Layout
//!
//! - [`http`]: the HTTP contract on plain `http` types — one handler per
//!   component (`handle_submit`, `handle_resources`, `handle_process`), the
//!   response rendering, and the follow-ups run after a response is sent.
//! - [`submission`]: validating and durably storing an upload, idempotent
//!   replays.
//! - [`processing`]: claiming a job under a lease and running the pipeline
//!   (the pipeline itself is the `kiln-image` crate) while a heartbeat keeps
//!   the lease alive, in the private processor or, with the local
//!   dispatch, in the instance at hand.
//! - [`job`]: the job record and its state machine; [`resource`]: the
//!   operation as clients read it (shared with `kiln-client`).
//! - [`repo`]: job records over the store, changed only by compare-and-swap.
//! - [`blob`]: images as chunks of at most `blob_chunk_bytes` (a variable).
//! - [`slots`], [`queue`]: the bound on jobs running at once (leased slots)
//!   and the jobs waiting for one, oldest first.
//! - [`pending`], [`retention`], [`keyset`]: the indexes that find lost and
//!   expired jobs without scanning the store, each spread over
//!   `index_shards` keys; [`listing`]: a new job joins them after its
//!   answer, and one whose instance died first is found by its marker.
//! - [`idempotency`], [`prefer`]: the `Idempotency-Key` and `Prefer` headers.
//! - [`access`]: API keys; [`rate_limit`]: each client's token bucket and
//!   cap on unfinished jobs.
//! - [`webhook`]: `Webhook-Url` checked against the allowed hosts, the
//!   delivery state machine and Standard Webhooks signatures (sending is
//!   a follow-up, in [`http`]).
//! - [`problem`]: RFC 9457 problem details; the one mapping of errors to
//!   HTTP statuses.
//! - [`kv`]: the storage seam and an in-memory store;
//!   [`runtime`]: the clock, sleeping and dispatching seam; [`config`]: the
//!   limits; [`budget`]: the time one instance may work; [`clock`], [`id`], [`keys`], [`etag`]: small value types, key
//!   names and entity tags.

#![deny(missing_docs)]

pub mod access;
pub mod blob;
pub mod budget;
pub mod clock;
pub mod config;
pub mod etag;
pub mod http;
pub mod id;
pub mod idempotency;
pub mod job;
pub mod keys;
pub mod keyset;
pub mod kv;
pub mod listing;
pub mod negotiation;
pub mod pending;
pub mod prefer;
pub mod problem;
pub mod processing;
pub mod queue;
pub mod rate_limit;
pub mod repo;
pub mod resource;
pub mod retention;
pub mod runtime;
pub mod slots;
pub mod submission;
pub mod webhook;

pub use clock::Timestamp;
pub use config::{Config, ConfigRef, Dispatch, LazyConfig};
pub use id::JobId;
pub use kv::{KvError, KvStore, MemoryKv};
pub use problem::{Error, Problem};
pub use runtime::{Ctx, IMAGE_PIPELINE, Pipeline, Runtime};
