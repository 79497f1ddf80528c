//! (d) backlog: how fast one `spin up` on Redis acknowledges
//! `respond-async` submissions with an empty store, and again with
//! thousands of unfinished jobs in it: a submission must not slow down
//! with the size of the backlog (indexes that grow as single values do).
//!
//! Unfinished jobs need jobs to queue: `max_running_jobs=1` and 27 MP jobs
//! keep nearly all of them `notStarted`.

use std::time::{Duration, Instant};

use super::{Settings, huge_output};
use crate::cluster::Cluster;
use crate::load::{self, Work};
use crate::report::{Outcome, Verdict, heading, p50_p99};

/// Runs the scenario.
pub fn run(settings: &Settings) -> Outcome {
    let backlog = settings
        .backlog_jobs
        .unwrap_or(if settings.short { 1_000 } else { 10_000 });
    let measured = if settings.short { 200 } else { 500 };
    heading(&format!(
        "backlog: one spin up on redis, 16 clients: {measured} async acks on an empty store, then after {backlog} queued (unfinished) jobs"
    ));
    let mut outcome = Outcome::default();
    let (work, defaults): (Work, &[(&str, &str)]) = (huge_output(), &[("max_running_jobs", "1")]);
    let cluster = Cluster::start(&settings.topology("backlog", 1, true, false, defaults));
    let base = cluster.base_url();
    // The guard: queued jobs that run after all would take the memory.
    let limit = crate::memory::machine_total() / 2;

    let empty = acks(&base, &work, measured);
    println!(
        "  empty store: {:.1} acks/s ({})",
        empty.0,
        p50_p99(&empty.1)
    );
    let seeded = acks(&base, &work, backlog);
    println!(
        "  seeding {backlog}: {:.1} acks/s ({})",
        seeded.0,
        p50_p99(&seeded.1)
    );
    let over_limit = cluster
        .replica(0)
        .sample()
        .is_some_and(|resident| resident > limit);
    outcome.check(
        !over_limit,
        "backlog: the server holds over half the machine's memory",
    );
    let full = acks(&base, &work, measured);
    println!(
        "  with the backlog: {:.1} acks/s ({})",
        full.0,
        p50_p99(&full.1)
    );
    if let Some(url) = cluster.redis_url() {
        let kv = kiln_test_host::KeyValueStore::redis(&url).expect("reading redis");
        let keys = kv.keys_with_prefix("kiln:");
        let unfinished = keys
            .iter()
            .filter(|key| key.starts_with("kiln:job:"))
            .filter(|key| {
                kv.get(key)
                    .and_then(|raw| serde_json::from_slice::<serde_json::Value>(&raw).ok())
                    .is_some_and(|job| {
                        matches!(job["status"].as_str(), Some("notStarted" | "running"))
                    })
            })
            .count();
        println!(
            "  store: {} kiln:* keys, {unfinished} unfinished jobs",
            keys.len()
        );
    }
    let ratio = full.0 / empty.0;
    println!("  ratio with/without backlog: {ratio:.2}");
    outcome.target(
        "backlog",
        format!(
            "{:.1} acks/s empty, {:.1} acks/s with {backlog} unfinished jobs, ratio {ratio:.2} (target >= 0.8; redis store)",
            empty.0, full.0
        ),
        Verdict::from(ratio >= 0.8),
    );
    outcome
}

/// Sends `count` async submissions of `work` from 16 clients: the rate of
/// acknowledgements per second and each one's time.
fn acks(base: &str, work: &Work, count: usize) -> (f64, Vec<Duration>) {
    let started = Instant::now();
    let results: Vec<Option<Duration>> = load::send_async(base, work, count)
        .into_iter()
        .map(|ack| ack.ok().map(|ack| ack.elapsed))
        .collect();
    let elapsed = started.elapsed();
    let times: Vec<Duration> = results.into_iter().flatten().collect();
    (times.len() as f64 / elapsed.as_secs_f64(), times)
}
