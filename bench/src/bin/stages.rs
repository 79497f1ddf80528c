//! How long a processor goes without renewing its lease, on real photos in
//! Wasm: the longest gap between two writes of a running job's record is the
//! longest stretch the pipeline spent in one uninterruptible codec call (or
//! between two renewals). It must stay well under the lease (15 s by
//! default): the lease is renewed at each stage's start, so such a call may
//! take nearly all of it before a second processor could claim the job.
//!
//! Run: `scripts/test` once (to build the components), then
//! `cargo run --release -p kiln-bench --bin stages -- [CORPUS_DIR]`
//! where CORPUS_DIR holds `photo-25mp.jpg` (`../shared/corpus/make.sh DIR`);
//! without it a generated 25 MP image is used.

use kiln_bench::{photo, png};
use kiln_e2e::Env;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const OPS: &[&str] = &[
    "format(jpeg)",
    "format(png)",
    "format(webp)",
    "format(gif)",
    "resize(w=1600)",
    "sharpen(sigma=1)",
    "blur(sigma=10)",
];

fn main() {
    let (name, media_type, upload) = input();
    let lease = Duration::from_secs(15);
    let env = Env::builder()
        .variable("lease_seconds", &lease.as_secs().to_string())
        .variable("max_upload_bytes", "100000000")
        .start();
    println!(
        "{name} on the test host (lease {} s; renewed at each stage's start and every {} s within a stage)",
        lease.as_secs(),
        (lease / 3).min(Duration::from_secs(2)).as_secs(),
    );
    println!(
        "  {:<18} {:>9} {:>24}",
        "ops", "job (s)", "longest without renewal (s)"
    );
    for ops in OPS {
        let (total, longest) = run(&env, ops, media_type, &upload);
        println!(
            "  {ops:<18} {:>9.1} {:>24.2}",
            total.as_secs_f64(),
            longest.as_secs_f64()
        );
    }
}

/// Runs one job, reading its record's `lastUpdatedAt` as often as it can.
fn run(env: &Env, ops: &str, media_type: &str, upload: &[u8]) -> (Duration, Duration) {
    let started = Instant::now();
    let accepted = env.submit_async_as(&format!("?ops={ops}"), media_type, upload);
    let key = format!("kiln:job:{}", accepted.operation_id());
    let mut updates = BTreeSet::new();
    loop {
        let record: serde_json::Value =
            serde_json::from_slice(&env.kv().get(&key).expect("the job record")).unwrap();
        let status = record["status"].as_str().unwrap_or_default().to_owned();
        if let Some(at) = record["last_updated_at"].as_u64() {
            updates.insert(at);
        }
        if !["notStarted", "running"].contains(&status.as_str()) {
            assert_eq!(status, "succeeded", "{ops}: {record}");
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    env.settle();
    let updates: Vec<u64> = updates.into_iter().collect();
    let longest = updates
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    (started.elapsed(), Duration::from_millis(longest))
}

/// The 25 MP corpus photo, or a generated image of the same size.
fn input() -> (String, &'static str, Vec<u8>) {
    if let Some(dir) = std::env::args().nth(1) {
        let path = std::path::Path::new(&dir).join("photo-25mp.jpg");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return ("photo-25mp.jpg (7680x3200)".into(), "image/jpeg", bytes);
    }
    (
        "a generated 25 MP image (7680x3200 PNG)".into(),
        "image/png",
        png(&photo(7680, 3200)),
    )
}
