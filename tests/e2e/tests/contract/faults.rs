//! Faults: crashing processors, a host restarted mid-job, a failing store.
//! Every job still ends in a terminal state and nothing accepted is lost.

use kiln_e2e::images;
use kiln_e2e::{Env, EnvBuilder};
use std::time::Duration;

/// A processor that traps mid-job is replaced once its lease runs out: the
/// next status read re-dispatches, and the job succeeds on the second claim.
#[test]
fn a_processor_that_traps_mid_job_is_replaced_after_its_lease() {
    a_trapped_processor_is_replaced(Env::builder());
}

/// The promise above, on the store `builder` gives (Redis runs it too).
pub(crate) fn a_trapped_processor_is_replaced(builder: EnvBuilder) {
    let env = builder.variable("lease_seconds", "2").start();
    env.faults().trap_writes("processor", "kiln:blob:", 1);
    let accepted = env.submit_async("?ops=grayscale", &images::png(32, 32));
    env.settle();
    assert_eq!(
        env.faults().pending_write_traps(),
        0,
        "the processor never reached the trap"
    );
    assert!(env.host().stats("processor").failures >= 1);
    let done = env.wait_until_finished(&accepted.location(), Duration::from_secs(60));
    assert_eq!(done.json()["status"], "succeeded");
    env.settle();
    assert_eq!(env.job_record(&accepted.operation_id())["attempts"], 2);
}

/// A job that crashes every processor ends `failed` after `max_attempts`,
/// with a problem, instead of running forever.
#[test]
fn a_job_that_always_crashes_ends_failed() {
    let env = Env::builder()
        .variable("lease_seconds", "1")
        .variable("max_attempts", "2")
        .start();
    env.faults().trap_writes("processor", "kiln:blob:", 100);
    let accepted = env.submit_async("", &images::png(16, 16));
    let done = env.wait_until_finished(&accepted.location(), Duration::from_secs(60));
    let operation = done.json();
    assert_eq!(operation["status"], "failed", "{operation}");
    assert_eq!(operation["error"]["status"], 500);
    assert_eq!(
        operation["error"]["type"],
        "urn:kiln:problem:processing-crashed"
    );
}

/// A host killed while a job runs loses nothing: after a restart on the same
/// store, the job is picked up again and succeeds. On `spin up`, the kill is
/// SIGKILL to its process group, and the restart serves the same SQLite file.
#[test]
fn a_host_restarted_mid_job_loses_nothing() {
    for mut env in kiln_e2e::targets(|| Env::builder().variable("lease_seconds", "5")) {
        let accepted = env.submit_async(kiln_e2e::SLOW_OPS, &images::noisy_png(1000, 1000));
        let location = accepted.location();
        env.wait_until_running(&location);
        env.restart();
        let done = env.wait_until_finished(&location, Duration::from_secs(120));
        assert_eq!(done.json()["status"], "succeeded", "{}", env.name());
    }
}

/// While the store fails, requests get 503 problems with `Retry-After`, not
/// 500s or panics; afterwards the app serves again.
#[test]
fn a_failing_store_gives_503_problems_and_the_app_recovers() {
    let env = Env::start();
    let before = env.submit("", "image/png", &images::png(8, 8), &[]);
    env.faults().fail_kv(true);
    let submit = env.submit("", "image/png", &images::png(8, 8), &[]);
    let operation = env.get(
        &format!(
            "/operations/{}",
            before.location().trim_start_matches("/images/")
        ),
        &[],
    );
    let image = env.get(&before.location(), &[]);
    for reply in [&submit, &operation, &image] {
        let problem = reply.problem(503);
        assert_eq!(problem["type"], "urn:kiln:problem:store-unavailable");
        assert_eq!(reply.header("retry-after"), "1");
    }
    env.faults().fail_kv(false);
    assert_eq!(env.get(&before.location(), &[]).status, 200);
}

/// A job accepted just before the store starts failing is not lost: once the
/// store is back, it is processed.
#[test]
fn an_accepted_job_survives_a_store_outage() {
    let env = Env::builder().variable("lease_seconds", "1").start();
    let accepted = env.submit(
        "",
        "image/png",
        &images::png(16, 16),
        &[("prefer", "respond-async")],
    );
    assert_eq!(accepted.status, 202);
    env.faults().fail_kv(true);
    env.settle();
    env.faults().fail_kv(false);
    std::thread::sleep(Duration::from_millis(1100));
    let done = env.wait_until_finished(&accepted.location(), Duration::from_secs(60));
    assert_eq!(done.json()["status"], "succeeded");
}

/// On Spin 4.0.2's Redis store, every compare-and-swap is reported as
/// failed, written or not: jobs still run once each, finish, and can be
/// canceled and replayed.
#[test]
fn jobs_complete_on_a_store_that_misreports_swaps() {
    let env = Env::start();
    env.faults().misreport_swaps(true);
    let created = env.submit("?ops=grayscale", "image/png", &images::png(16, 16), &[]);
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let headers = [("prefer", "respond-async"), ("idempotency-key", "redis")];
    let accepted = env.submit("", "image/png", &images::png(16, 16), &headers);
    let replayed = env.submit("", "image/png", &images::png(16, 16), &headers);
    assert_eq!(accepted.location(), replayed.location());
    let done = env.wait_until_finished(&accepted.location(), Duration::from_secs(60));
    assert_eq!(done.json()["status"], "succeeded");
    env.settle();
    assert_eq!(env.job_record(&accepted.operation_id())["attempts"], 1);
    env.faults().trap_writes("processor", "kiln:blob:", 1);
    let stuck = env.submit_async("", &images::png(16, 16));
    env.settle();
    let canceled = env.send("DELETE", &stuck.location(), &[], &[]);
    assert_eq!(canceled.json()["status"], "canceled");
}
