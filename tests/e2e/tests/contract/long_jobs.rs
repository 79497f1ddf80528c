//! Long jobs: a stage that outlasts several leases keeps its one claim,
//! because the processor renews its lease from inside the stage.

use kiln_e2e::images;
use kiln_e2e::{Env, for_each_target};
use std::time::{Duration, Instant};

/// A PNG encode of a 2500×2500 noise image is one stage of seconds in Wasm:
/// with a one-second lease, the processor must renew from inside it. The
/// test reads the operation every 50 ms meanwhile, each read a chance to
/// re-dispatch a job whose lease ran out; the job still succeeds with
/// exactly one claim.
#[test]
fn a_stage_outlasting_several_leases_keeps_its_one_claim() {
    for_each_target(
        || Env::builder().variable("lease_seconds", "1"),
        |env| {
            let started = Instant::now();
            let accepted = env.submit_async("?ops=format(png)", &images::noisy_png(2500, 2500));
            let location = accepted.location();
            let mut percents = Vec::new();
            let done = loop {
                let reply = env.get(&location, &[]);
                let operation = reply.json();
                if let Some(percent) = operation["percentComplete"].as_u64() {
                    percents.push(percent);
                }
                if operation["status"] != "notStarted" && operation["status"] != "running" {
                    break operation;
                }
                assert!(started.elapsed() < Duration::from_secs(120), "{operation}");
                std::thread::sleep(Duration::from_millis(50));
            };
            env.settle();
            let elapsed = started.elapsed();
            assert_eq!(done["status"], "succeeded", "{done}");
            eprintln!(
                "long job, {}: {:.1} s with a 1 s lease, percentComplete seen: {percents:?}",
                env.name(),
                elapsed.as_secs_f64()
            );
            assert_eq!(
                env.claims(&accepted.operation_id()),
                1,
                "{}: claimed again",
                env.name()
            );
            assert!(
                percents.iter().any(|&p| p > 90 && p < 95),
                "percentComplete never moved within the encode stage: {percents:?}"
            );
        },
    );
}
