//! Kiln on a real Redis, as `runtime-config.redis.toml` deploys it: each
//! scenario on its own `redis-server`, with several replicas sharing it as
//! SpinKube's do. Replicas are test hosts, which reproduce Spin 4.0.2's
//! Redis store (every compare-and-swap reported as failed, whether it wrote
//! or not), and then, where a Spin binary is, real `spin up` processes
//! started with that runtime configuration: where the two disagree, the
//! emulation is wrong.

use kiln_e2e::images::{self, inspect};
use kiln_e2e::{Env, EnvBuilder, RedisServer};
use std::collections::HashSet;
use std::time::Duration;

fn redis_server() -> RedisServer {
    RedisServer::start().unwrap_or_else(|e| panic!("{e:#}"))
}

/// Runs `scenario` on a fresh `redis-server`, with replicas made by
/// `builder` on the test host; then on another fresh one with replicas on
/// `spin up`, where there is a Spin (see [`kiln_e2e::for_each_target`]).
/// The scenario starts as many replicas as it wants with the function it is
/// given; all of one run share that run's Redis.
fn on_redis_with_each_runtime(
    builder: impl Fn() -> EnvBuilder,
    scenario: impl Fn(&dyn Fn() -> Env),
) {
    let redis = redis_server();
    scenario(&|| builder().store(redis.store()).start());
    drop(redis);
    if let Some(spin) = kiln_e2e::spin::binary_for_tests() {
        let redis = redis_server();
        scenario(&|| builder().store(redis.store()).start_spin(&spin));
    }
}

/// Without `Prefer`, the work is done inline on Redis too: 201 with the
/// processed image.
#[test]
fn a_plain_post_answers_201_on_redis() {
    on_redis_with_each_runtime(Env::builder, |replica| {
        a_plain_post_answers_201(&replica());
    });
}

fn a_plain_post_answers_201(env: &Env) {
    let reply = env.submit("?ops=resize(w=10)", "image/png", &images::png(20, 30), &[]);
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(inspect(&reply.body), (image::ImageFormat::Png, 10, 15));
    let image = env.get(&reply.location(), &[]);
    assert_eq!(image.body, reply.body);
}

/// An accepted job runs after the 202 and succeeds, claimed once, though
/// every claim's compare-and-swap was reported as failed.
#[test]
fn an_accepted_job_succeeds_once_on_redis() {
    on_redis_with_each_runtime(Env::builder, |replica| {
        an_accepted_job_succeeds_once(&replica());
    });
}

fn an_accepted_job_succeeds_once(env: &Env) {
    let accepted = env.submit_async("?ops=grayscale,format(webp)", &images::png(24, 16));
    let done = env.wait_until_finished(&accepted.location(), Duration::from_secs(60));
    let operation = done.json();
    assert_eq!(operation["status"], "succeeded", "{operation}");
    let image = env.get(operation["resourceLocation"].as_str().unwrap(), &[]);
    assert_eq!(inspect(&image.body), (image::ImageFormat::WebP, 24, 16));
    env.settle();
    assert_eq!(env.job_record(&accepted.operation_id())["attempts"], 1);
}

/// A retry with the same `Idempotency-Key` gets the same operation, and one
/// job runs, once.
#[test]
fn an_idempotent_retry_on_redis_returns_the_same_operation_and_runs_once() {
    on_redis_with_each_runtime(Env::builder, |replica| {
        super::submit::an_idempotent_retry_runs_once(&replica());
    });
}

/// A client retries through another replica (a load balancer's choice) with
/// the same `Idempotency-Key`, while the first replica may still be on it:
/// the retry names the first operation, and one job runs, once. A retry
/// with the same key and another body is refused.
#[test]
fn an_idempotent_retry_through_another_replica_names_the_first_operation() {
    on_redis_with_each_runtime(Env::builder, |replica| {
        let (first, second) = (replica(), replica());
        let body = images::png(40, 30);
        let headers = [
            ("prefer", "respond-async"),
            ("idempotency-key", "across-replicas"),
        ];
        let accepted = first.submit("?ops=resize(w=20)", "image/png", &body, &headers);
        let replayed = second.submit("?ops=resize(w=20)", "image/png", &body, &headers);
        assert_eq!(
            (accepted.status, replayed.status),
            (202, 202),
            "{}",
            second.name()
        );
        assert_eq!(
            accepted.location(),
            replayed.location(),
            "{}",
            second.name()
        );
        let conflicting = second.submit(
            "?ops=resize(w=20)",
            "image/png",
            &images::png(41, 30),
            &headers,
        );
        assert_eq!(
            conflicting.problem(422)["type"],
            "urn:kiln:problem:idempotency-key-reused",
            "{}",
            second.name()
        );
        let done = second.wait_until_finished(&accepted.location(), Duration::from_secs(60));
        assert_eq!(done.json()["status"], "succeeded", "{}", second.name());
        let image = first.get(done.json()["resourceLocation"].as_str().unwrap(), &[]);
        assert_eq!(inspect(&image.body), (image::ImageFormat::Png, 20, 15));
        first.settle();
        second.settle();
        let jobs = second.kv().keys_with_prefix("kiln:job:");
        assert_eq!(jobs.len(), 1, "{}: {jobs:?}", second.name());
        assert_eq!(second.job_record(&accepted.operation_id())["attempts"], 1);
    });
}

/// A client's rate limit holds across replicas sharing Redis: of 12
/// submissions sent at once through two replicas, exactly the burst of 5
/// is let in.
#[test]
fn a_rate_limit_is_counted_exactly_across_replicas_on_redis() {
    on_redis_with_each_runtime(
        || super::rate_limits::limited(5),
        |replica| {
            super::rate_limits::a_burst_across_replicas_is_counted_exactly(
                &[replica(), replica()],
                5,
                12,
            );
        },
    );
}

/// `DELETE` cancels a running job on Redis: it ends `canceled`, its
/// processor stores no result, and canceling again is 409.
#[test]
fn delete_cancels_a_running_job_on_redis() {
    on_redis_with_each_runtime(Env::builder, |replica| {
        super::operations::a_running_job_is_canceled(&replica());
    });
}

/// A processor that traps mid-job on Redis is replaced once its lease has
/// run out, and the job succeeds on the second claim.
#[test]
fn a_processor_that_traps_on_redis_is_replaced_after_its_lease() {
    let redis = redis_server();
    super::faults::a_trapped_processor_is_replaced(Env::builder().store(redis.store()));
}

/// Two replicas on one Redis: 200 jobs submitted through one and read
/// through the other are all there, all succeeded, each claimed exactly
/// once.
#[test]
fn two_replicas_on_one_redis_run_200_jobs_each_exactly_once() {
    on_redis_with_each_runtime(Env::builder, |replica| {
        two_replicas_run_200_jobs_each_exactly_once(replica(), replica());
    });
}

fn two_replicas_run_200_jobs_each_exactly_once(front: Env, back: Env) {
    let submitters = 8;
    let ids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..submitters)
            .map(|_| {
                let front = &front;
                scope.spawn(move || {
                    (0..200 / submitters)
                        .map(|_| {
                            front
                                .submit_async("?ops=resize(w=4)", &images::png(16, 16))
                                .operation_id()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        200,
        "ids collided"
    );
    for id in &ids {
        let done = back.wait_until_finished(&format!("/operations/{id}"), Duration::from_secs(120));
        let operation = done.json();
        assert_eq!(operation["status"], "succeeded", "{operation}");
        let image = back.get(&format!("/images/{id}"), &[]);
        assert_eq!(image.status, 200, "{id}");
        assert_eq!(inspect(&image.body), (image::ImageFormat::Png, 4, 4));
    }
    front.settle();
    back.settle();
    assert_eq!(back.kv().keys_with_prefix("kiln:job:").len(), 200);
    for id in &ids {
        assert_eq!(
            back.claims(id),
            1,
            "{}: job {id} was claimed more than once",
            back.name()
        );
    }
}

/// A replica killed while it runs a job (the test host's tasks, or `spin
/// up`'s process group with SIGKILL) loses nothing: once the lease has run
/// out, the other replica on the same Redis claims the job and finishes it.
#[test]
fn a_job_of_a_killed_replica_is_finished_by_the_other_replica() {
    let builder = || Env::builder().variable("lease_seconds", "2");
    on_redis_with_each_runtime(builder, |replica| {
        a_job_of_a_killed_replica_is_finished_by_the_other(replica(), replica());
    });
}

fn a_job_of_a_killed_replica_is_finished_by_the_other(mut doomed: Env, survivor: Env) {
    let accepted = doomed.submit_async(kiln_e2e::SLOW_OPS, &images::noisy_png(1000, 1000));
    let location = accepted.location();
    doomed.wait_until_running(&location);
    doomed.kill();
    let done = survivor.wait_until_finished(&location, Duration::from_secs(180));
    let operation = done.json();
    assert_eq!(operation["status"], "succeeded", "{operation}");
    let image = survivor.get(operation["resourceLocation"].as_str().unwrap(), &[]);
    assert_eq!(inspect(&image.body), (image::ImageFormat::Png, 1000, 1000));
    survivor.settle();
    let claims = survivor.claims(&accepted.operation_id());
    assert!(
        claims >= 2,
        "{}: claimed {claims} times: never taken over",
        survivor.name()
    );
}

/// While Redis is down, requests get 503 `store-unavailable` problems with
/// `Retry-After`, not 500s. Test host only, on a store that fails fast:
/// Spin's Redis client retries for minutes before a call fails.
#[test]
fn while_redis_is_down_requests_get_503_problems() {
    let redis = redis_server();
    let env = Env::builder().store(redis.store_failing_fast()).start();
    let before = env.submit("", "image/png", &images::png(8, 8), &[]);
    assert_eq!(before.status, 201);
    drop(redis);
    let submit = env.submit("", "image/png", &images::png(8, 8), &[]);
    let image = env.get(&before.location(), &[]);
    for reply in [&submit, &image] {
        let problem = reply.problem(503);
        assert_eq!(problem["type"], "urn:kiln:problem:store-unavailable");
        assert_eq!(reply.header("retry-after"), "1");
    }
}
