//! Bounded processing: at most `max_running_jobs` jobs run at once; the
//! others wait their turn, say where they stand, and start in the order
//! they were accepted, each as soon as a slot frees.

use kiln_e2e::images;
use kiln_e2e::{Env, for_each_target};
use std::time::Duration;

/// With one slot taken by a job of seconds, the jobs submitted behind it
/// answer `202` as `notStarted` with their place in the queue, the
/// operation says the same on a read, and they all succeed — one at a
/// time, in the order they were accepted, with no client reading them
/// meanwhile (the processor that frees the slot starts the next one).
#[test]
fn jobs_beyond_max_running_jobs_wait_their_turn_and_run_in_order() {
    for_each_target(
        // One shard: the position is exact (an estimate with several).
        || {
            Env::builder()
                .variable("max_running_jobs", "1")
                .variable("index_shards", "1")
        },
        |env| {
            let long = env.submit_async("?ops=format(png)", &images::noisy_png(2000, 2000));
            // Let its processor take the one slot.
            std::thread::sleep(Duration::from_millis(500));
            let waiting: Vec<String> = (1..=3)
                .map(|place| {
                    let accepted = env.submit_async("?ops=resize(w=8)", &images::png(64, 48));
                    let operation = accepted.json();
                    assert_eq!(operation["status"], "notStarted", "{operation}");
                    assert_eq!(operation["queuePosition"], place, "{operation}");
                    accepted.location()
                })
                .collect();
            let read = env.get(&waiting[2], &[]);
            assert_eq!(read.json()["queuePosition"], 3, "{}", read.json());
            assert_eq!(read.header("retry-after"), "3");

            // Nobody reads the jobs now (the store is read directly, which
            // starts nothing): the queue drains by itself.
            let all: Vec<String> = std::iter::once(long.location()).chain(waiting).collect();
            let ids: Vec<&str> = all.iter().map(|l| l.rsplit('/').next().unwrap()).collect();
            let started = std::time::Instant::now();
            while ids
                .iter()
                .any(|id| env.job_record(id)["status"] != "succeeded")
            {
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "{}: the queue did not drain by itself",
                    env.name()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            let finished: Vec<serde_json::Value> = all
                .iter()
                .map(|location| {
                    env.wait_until_finished(location, Duration::from_secs(120))
                        .json()
                })
                .collect();
            for operation in &finished {
                assert_eq!(operation["status"], "succeeded", "{operation}");
            }
            // One at a time, in order: each finished after the one before.
            let finished_at: Vec<&str> = finished
                .iter()
                .map(|operation| operation["lastUpdatedAt"].as_str().unwrap())
                .collect();
            assert!(
                finished_at.windows(2).all(|w| w[0] <= w[1]),
                "{}: not in submission order: {finished_at:?}",
                env.name()
            );
        },
    );
}

/// With `max_queued_jobs` waiting, a submission is refused with `503
/// queue-full` and `Retry-After`, and nothing of it is stored.
#[test]
fn a_full_queue_answers_503_with_retry_after() {
    for_each_target(
        || {
            Env::builder()
                .variable("max_running_jobs", "1")
                .variable("max_queued_jobs", "1")
        },
        |env| {
            env.submit_async("?ops=format(png)", &images::noisy_png(2000, 2000));
            std::thread::sleep(Duration::from_millis(500));
            env.submit_async("?ops=resize(w=8)", &images::png(64, 48));
            let jobs_before = env.store().keys_with_prefix("kiln:job:").len();
            let refused = env.submit(
                "?ops=resize(w=8)",
                "image/png",
                &images::png(64, 48),
                &[("prefer", "respond-async")],
            );
            let problem = refused.problem(503);
            assert_eq!(problem["type"], "urn:kiln:problem:queue-full");
            assert_eq!(refused.header("retry-after"), "1");
            assert_eq!(env.store().keys_with_prefix("kiln:job:").len(), jobs_before);
        },
    );
}
