//! `/operations/{id}`: the status resource, long-polling, cancel, caching,
//! retention.

use kiln_e2e::images;
use kiln_e2e::{Env, for_each_target};
use std::time::{Duration, Instant};

fn is_rfc3339_utc(text: &str) -> bool {
    text.len() == 24 && text.ends_with('Z') && text.as_bytes()[10] == b'T'
}

/// A succeeded operation names its image in `resourceLocation` and a
/// `Link`, with its timestamps, and may be cached with revalidation.
#[test]
fn a_succeeded_operation_links_its_image() {
    for_each_target(Env::builder, |env| {
        let accepted = env.submit_async("", &images::png(16, 16));
        let done = env.wait_until_finished(&accepted.location(), Duration::from_secs(60));
        let operation = done.json();
        let id = operation["id"].as_str().unwrap();
        assert_eq!(operation["status"], "succeeded");
        assert_eq!(operation["percentComplete"], 100);
        assert_eq!(operation["resourceLocation"], format!("/images/{id}"));
        assert_eq!(
            done.header("link"),
            format!("</images/{id}>; rel=\"related\"")
        );
        assert!(
            is_rfc3339_utc(operation["createdAt"].as_str().unwrap()),
            "{operation}"
        );
        assert!(
            is_rfc3339_utc(operation["lastUpdatedAt"].as_str().unwrap()),
            "{operation}"
        );
        assert_eq!(done.header("cache-control"), "no-cache");
        assert!(done.maybe_header("retry-after").is_none());
    });
}

/// A finished operation revalidates: `If-None-Match` with its ETag is 304.
#[test]
fn a_finished_operation_answers_304_to_its_etag() {
    for_each_target(Env::builder, |env| {
        let accepted = env.submit_async("", &images::png(16, 16));
        let done = env.wait_until_finished(&accepted.location(), Duration::from_secs(60));
        let etag = done.header("etag").to_owned();
        let again = env.get(&accepted.location(), &[("if-none-match", &etag)]);
        assert_eq!(again.status, 304);
        assert!(again.body.is_empty());
        assert_eq!(again.header("etag"), etag);
    });
}

/// An unfinished operation says when to come back and must not be cached.
#[test]
fn an_unfinished_operation_must_not_be_cached() {
    let env = Env::start();
    // The processor dies before storing its result: the job stays running.
    env.faults().trap_writes("processor", "kiln:blob:", 1);
    let accepted = env.submit_async("", &images::png(16, 16));
    env.settle();
    let reply = env.get(&accepted.location(), &[]);
    assert_eq!(reply.status, 200);
    assert!(["notStarted", "running"].contains(&reply.json()["status"].as_str().unwrap()));
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(reply.header("retry-after"), "1");
    assert!(reply.json().get("resourceLocation").is_none());
}

/// `Prefer: wait=N` on a GET holds the answer until the status changes.
#[test]
fn wait_on_get_returns_when_the_status_changes() {
    let env = Env::builder().variable("lease_seconds", "1").start();
    env.faults().trap_writes("processor", "kiln:blob:", 1);
    let accepted = env.submit_async("", &images::png(16, 16));
    env.settle();
    std::thread::sleep(Duration::from_millis(1100));
    // The lease ran out: this read re-dispatches, then waits for the change.
    let start = Instant::now();
    let mut reply = env.get(&accepted.location(), &[("prefer", "wait=20")]);
    while reply.json()["status"] == "running" && start.elapsed() < Duration::from_secs(20) {
        reply = env.get(&accepted.location(), &[("prefer", "wait=20")]);
    }
    assert_eq!(reply.json()["status"], "succeeded");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "waited the whole time"
    );
}

/// A long-poll gives up after N seconds with the current state.
#[test]
fn wait_on_get_gives_up_after_n_seconds() {
    let env = Env::start();
    env.faults().trap_writes("processor", "kiln:blob:", 1);
    let accepted = env.submit_async("", &images::png(16, 16));
    env.settle();
    let start = Instant::now();
    let reply = env.get(&accepted.location(), &[("prefer", "wait=1")]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "running");
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
}

/// `DELETE` cancels a job while its processor works on it: the job ends
/// `canceled`, the processor stops without storing a result, and canceling
/// again is 409.
#[test]
fn delete_cancels_a_running_job_and_its_processor_stores_nothing() {
    for_each_target(Env::builder, a_running_job_is_canceled);
}

/// The promise above, on `env` (Redis runs it too).
pub(crate) fn a_running_job_is_canceled(env: &Env) {
    let accepted = env.submit_async(kiln_e2e::SLOW_OPS, &images::noisy_png(1000, 1000));
    let id = accepted.operation_id();
    env.wait_until_running(&accepted.location());
    let canceled = env.send("DELETE", &accepted.location(), &[], &[]);
    assert_eq!(canceled.status, 200);
    assert_eq!(canceled.json()["status"], "canceled");
    env.settle();
    assert_eq!(
        env.get(&accepted.location(), &[]).json()["status"],
        "canceled"
    );
    let results = env.store().keys_with_prefix(&format!("kiln:blob:{id}:out"));
    assert!(results.is_empty(), "a canceled job stored {results:?}");
    let again = env.send("DELETE", &accepted.location(), &[], &[]);
    assert_eq!(again.problem(409)["type"], "urn:kiln:problem:conflict");
}

/// Canceling a finished job is a 409 problem.
#[test]
fn delete_of_a_finished_operation_is_409() {
    for_each_target(Env::builder, |env| {
        let accepted = env.submit_async("", &images::png(16, 16));
        env.wait_until_finished(&accepted.location(), Duration::from_secs(60));
        env.send("DELETE", &accepted.location(), &[], &[])
            .problem(409);
    });
}

/// After `retention_seconds`, jobs and images are gone, and a later request
/// deletes their keys.
#[test]
fn expired_jobs_are_gone_and_cleaned_up() {
    for_each_target(
        || Env::builder().variable("retention_seconds", "2"),
        |env| {
            let created = env.submit("", "image/png", &images::png(16, 16), &[]);
            assert_eq!(created.status, 201);
            let id = created.location().trim_start_matches("/images/").to_owned();
            assert!(
                !env.store()
                    .keys_with_prefix(&format!("kiln:blob:{id}"))
                    .is_empty()
            );
            std::thread::sleep(Duration::from_millis(3100));
            env.get(&format!("/operations/{id}"), &[]).problem(404);
            env.get(&format!("/images/{id}"), &[]).problem(404);
            // Any submission sweeps what has expired.
            assert_eq!(
                env.submit("", "image/png", &images::png(8, 8), &[]).status,
                201
            );
            env.settle();
            let left = env.keys_of(&id);
            assert!(left.is_empty(), "{left:?}");
        },
    );
}

/// Unknown operations are 404 problems.
#[test]
fn an_unknown_operation_is_404() {
    for_each_target(Env::builder, |env| {
        let id = kiln::JobId::random();
        env.get(&format!("/operations/{id}"), &[]).problem(404);
    });
}

/// `HEAD` of an operation has the headers of `GET` and no body; `HEAD` of
/// an unknown one is 404.
#[test]
fn head_of_an_operation_matches_get() {
    for_each_target(Env::builder, |env| {
        let accepted = env.submit_async("", &images::png(16, 16));
        let done = env.wait_until_finished(&accepted.location(), Duration::from_secs(60));
        let head = env.send("HEAD", &accepted.location(), &[], &[]);
        assert_eq!(head.status, 200);
        for name in ["content-type", "content-length", "etag", "cache-control"] {
            assert_eq!(head.header(name), done.header(name), "{name}");
        }
        let unknown = env.send(
            "HEAD",
            &format!("/operations/{}", kiln::JobId::random()),
            &[],
            &[],
        );
        assert_eq!(unknown.status, 404);
        env.assert_still_serving();
    });
}
