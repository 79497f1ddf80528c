//! Kiln's fuzz targets, as plain functions of the fuzzer's bytes: every
//! parser of client input and of operator-set configuration, the image
//! decoders under limits, the integrity walkers and the whole pipeline.
//!
//! Each target feeds its bytes to one entry point and asserts what must
//! hold for any input: no panic (in `wasm32-wasip2` a panic traps the
//! instance, where a client should get a `4xx` problem), and the target's
//! own invariants (a parsed value prints as text that parses back to it,
//! an output within the limits…). A failed assertion is a panic, which
//! the fuzzer reports as a crash.
//!
//! They run two ways, from the one list [`TARGETS`]:
//!
//! - `fuzz/` (cargo-fuzz, libFuzzer, nightly): one binary per target,
//!   a one-line `fuzz_targets/<name>.rs` each; `scripts/fuzz` runs them
//!   for a bounded time.
//! - `tests/replay.rs` (stable, `cargo test`): every committed input of
//!   `fuzz/seeds/<name>/` (hand-made: small images of every format, valid
//!   header values), `fuzz/corpus/<name>/` (what the fuzzer found,
//!   minimised) and `fuzz/regressions/<name>/` (each crash found, fixed)
//!   again, so that a crash once found and fixed stays fixed.
//!
//! # Layout
//!
//! - [`parsers`]: the request headers and the `ops` grammar (client input).
//! - [`config`]: the variables an operator sets (`api_keys`,
//!   `cors_allowed_origins`, webhooks, every number).
//! - [`images`]: [`probe`](kiln_image::probe) and its integrity walkers,
//!   decoding each format under [`images::DECODE_LIMITS`], and
//!   [`process`](kiln_image::process) with arbitrary ops under
//!   [`images::PIPELINE_LIMITS`].
//! - [`host`]: a fake Spin host over the in-memory store, for the targets
//!   that go through a request handler.
//! - [`alloc`]: the cap on a single allocation, and [`fuzz_target!`], the
//!   whole of a cargo-fuzz binary.

#![deny(missing_docs)]

pub mod alloc;
pub mod config;
pub mod host;
pub mod images;
pub mod parsers;

/// One fuzz target.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// Its name: the cargo-fuzz binary, and its corpus folder.
    pub name: &'static str,
    /// Runs one input; panics on a finding.
    pub run: fn(&[u8]),
    /// What kind of work it is, which sets its budget.
    pub kind: Kind,
}

/// How much work one input is, which sets how long a target is fuzzed and
/// within which limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Text of a header or a variable: microseconds an input.
    Parser,
    /// An image decoded or processed: up to milliseconds an input.
    Image,
}

impl Kind {
    /// The executions a clean run must reach (issue 24, item 4).
    pub const fn min_executions(self) -> u64 {
        match self {
            Kind::Parser => 10_000_000,
            Kind::Image => 1_000_000,
        }
    }

    /// The longest input the fuzzer makes (`-max_len`): a header is short;
    /// an image a few kilobytes, so that every one stays cheap.
    pub const fn max_len(self) -> usize {
        match self {
            Kind::Parser => 4096,
            Kind::Image => 32 * 1024,
        }
    }

    /// The largest single allocation allowed, in MiB (libFuzzer's
    /// `-malloc_limit_mb`, and [`alloc::Capped`]'s cap): a header needs
    /// next to nothing; an image what its pixel limits allow (see
    /// [`images::DECODE_LIMITS`]: half a MiB of pixels at 8 bytes a pixel,
    /// and the 16 MiB of slack `kiln-image` gives the codecs), with room
    /// to spare but far less than a header's false size would cost.
    pub const fn max_alloc_mb(self) -> usize {
        match self {
            Kind::Parser => 16,
            Kind::Image => 32,
        }
    }

    /// The sanitizer it is fuzzed under (cargo-fuzz's `--sanitizer`).
    /// AddressSanitizer for the image targets: the codecs hold `unsafe`
    /// code (rav1d is ported C, zune-jpeg, fast_image_resize and moxcms
    /// have SIMD paths) whose out-of-bounds reads it catches where a run
    /// without it would carry on. None for the parsers, safe Rust all
    /// through, where it would find nothing a panic does not, at a third
    /// of the speed; [`alloc::Capped`] still caps their allocations.
    pub const fn sanitizer(self) -> &'static str {
        match self {
            Kind::Parser => "none",
            Kind::Image => "address",
        }
    }

    /// Whether every crate is built with debug assertions and overflow
    /// checks (cargo-fuzz's default), or only Kiln's (`-O`, and the
    /// profile of fuzz/Cargo.toml): the codecs then run as in production,
    /// where rav1d's debug build checks every borrow of its frame buffers
    /// at run time and decodes at a tenth of the speed.
    pub const fn debug_assertions_everywhere(self) -> bool {
        match self {
            Kind::Parser => true,
            Kind::Image => false,
        }
    }

    /// The memory the fuzzing process may hold, in MiB (libFuzzer's
    /// `-rss_limit_mb`): AddressSanitizer's shadow and quarantine of
    /// freed memory (256 MiB) count in it, beside what the target keeps.
    pub const fn rss_limit_mb(self) -> usize {
        match self {
            Kind::Parser => 1024,
            Kind::Image => 2048,
        }
    }
}

/// Every target, by name.
pub const TARGETS: &[Target] = &[
    parser("ops", parsers::ops),
    parser("prefer", parsers::prefer),
    parser("idempotency_key", parsers::idempotency_key),
    parser("accept", parsers::accept),
    parser("webhook_url", parsers::webhook_url),
    parser("last_event_id", parsers::last_event_id),
    parser("job_id", parsers::job_id),
    parser("authorization", parsers::authorization),
    parser("api_keys", config::api_keys),
    parser("allowed_origins", config::allowed_origins),
    parser("config", config::config),
    image("probe", images::probe),
    image("decode_jpeg", images::decode_jpeg),
    image("decode_png", images::decode_png),
    image("decode_webp", images::decode_webp),
    image("decode_gif", images::decode_gif),
    image("decode_avif", images::decode_avif),
    image("pipeline", images::pipeline),
];

const fn parser(name: &'static str, run: fn(&[u8])) -> Target {
    Target {
        name,
        run,
        kind: Kind::Parser,
    }
}

const fn image(name: &'static str, run: fn(&[u8])) -> Target {
    Target {
        name,
        run,
        kind: Kind::Image,
    }
}

/// The target named `name`, at compile time (for [`fuzz_target!`]).
///
/// # Panics
///
/// If there is none: the build fails.
pub const fn target(name: &str) -> Target {
    let mut i = 0;
    while i < TARGETS.len() {
        if same(TARGETS[i].name.as_bytes(), name.as_bytes()) {
            return TARGETS[i];
        }
        i += 1;
    }
    panic!("no such fuzz target")
}

const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A cargo-fuzz binary for the target `name` of [`TARGETS`]: its
/// allocations capped at its kind's `max_alloc_mb` (see [`alloc`]), each
/// input given to its function.
#[macro_export]
macro_rules! fuzz_target {
    ($name:ident) => {
        const TARGET: $crate::Target = $crate::target(stringify!($name));

        #[global_allocator]
        static ALLOCATOR: $crate::alloc::Capped =
            $crate::alloc::Capped::aborting_over(TARGET.kind.max_alloc_mb() << 20);

        ::libfuzzer_sys::fuzz_target!(|data: &[u8]| (TARGET.run)(data));
    };
}

/// The input's lines, split at `\n` (a fuzzer's way to send several
/// header lines, or a pattern and a URL, in one input).
pub(crate) fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == b'\n')
}
