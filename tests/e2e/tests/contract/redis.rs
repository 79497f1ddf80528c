//! Kiln on a real Redis, as `runtime-config.redis.toml` deploys it: the test
//! host reproduces Spin 4.0.2's Redis store (every compare-and-swap reported
//! as failed, whether it wrote or not), each test on its own `redis-server`,
//! and several hosts share one server as SpinKube replicas do.

use kiln_e2e::images::{self, inspect};
use kiln_e2e::{Env, RedisServer, job_record};
use std::collections::HashSet;
use std::time::Duration;

fn redis_server() -> RedisServer {
    RedisServer::start().unwrap_or_else(|e| panic!("{e:#}"))
}

/// Without `Prefer`, the work is done inline on Redis too: 201 with the
/// processed image.
#[test]
fn a_plain_post_answers_201_on_redis() {
    let redis = redis_server();
    let env = Env::builder().store(redis.store()).start();
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
    let redis = redis_server();
    let env = Env::builder().store(redis.store()).start();
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
    let redis = redis_server();
    let env = Env::builder().store(redis.store()).start();
    let body = images::png(20, 20);
    let headers = [
        ("prefer", "respond-async"),
        ("idempotency-key", "redis-retry"),
    ];
    let first = env.submit("?ops=grayscale", "image/png", &body, &headers);
    let second = env.submit("?ops=grayscale", "image/png", &body, &headers);
    assert_eq!((first.status, second.status), (202, 202));
    assert_eq!(first.location(), second.location());
    let done = env.wait_until_finished(&first.location(), Duration::from_secs(60));
    assert_eq!(done.json()["status"], "succeeded");
    env.settle();
    let jobs = env.kv().keys_with_prefix("kiln:job:");
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(env.job_record(&first.operation_id())["attempts"], 1);
}

/// `DELETE` cancels a running job on Redis: it ends `canceled`, its
/// processor stores no result, and canceling again is 409.
#[test]
fn delete_cancels_a_running_job_on_redis() {
    let redis = redis_server();
    super::operations::a_running_job_is_canceled(&Env::builder().store(redis.store()).start());
}

/// A processor that traps mid-job on Redis is replaced once its lease has
/// run out, and the job succeeds on the second claim.
#[test]
fn a_processor_that_traps_on_redis_is_replaced_after_its_lease() {
    let redis = redis_server();
    super::faults::a_trapped_processor_is_replaced(Env::builder().store(redis.store()));
}

/// Two hosts on one Redis, as two replicas: 200 jobs submitted through one
/// and read through the other are all there, all succeeded, each claimed
/// exactly once.
#[test]
fn two_hosts_on_one_redis_run_200_jobs_each_exactly_once() {
    let redis = redis_server();
    let front = Env::builder().store(redis.store()).start();
    let back = Env::builder().store(redis.store()).start();
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
    let kv = back.kv();
    assert_eq!(kv.keys_with_prefix("kiln:job:").len(), 200);
    for id in &ids {
        assert_eq!(
            job_record(kv, id)["attempts"],
            1,
            "job {id} was claimed more than once"
        );
    }
}

/// A host killed while it runs a job loses nothing: once the lease has run
/// out, the other host on the same Redis claims the job and finishes it.
#[test]
fn a_job_of_a_killed_host_is_finished_by_the_other_host() {
    let redis = redis_server();
    let builder = Env::builder().variable("lease_seconds", "2");
    let mut doomed = builder.clone().store(redis.store()).start();
    let survivor = builder.store(redis.store()).start();
    let accepted = doomed.submit_async(kiln_e2e::SLOW_OPS, &images::noisy_png(1000, 1000));
    let location = accepted.location();
    doomed.wait_until_running(&location);
    doomed.kill();
    let done = survivor.wait_until_finished(&location, Duration::from_secs(180));
    let operation = done.json();
    assert_eq!(operation["status"], "succeeded", "{operation}");
    let image = survivor.get(operation["resourceLocation"].as_str().unwrap(), &[]);
    assert_eq!(inspect(&image.body), (image::ImageFormat::Png, 1000, 1000));
    assert!(survivor.host().stats("processor").invocations >= 1);
    survivor.settle();
    let claims = survivor.job_record(&accepted.operation_id())["attempts"]
        .as_u64()
        .expect("a number of claims");
    assert!(claims >= 2, "claimed {claims} times: never taken over");
}

/// While Redis is down, requests get 503 `store-unavailable` problems with
/// `Retry-After`, not 500s.
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
