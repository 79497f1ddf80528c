//! `POST /images`: inline 201, async 202, `wait=N`, `return=minimal`,
//! idempotency.

use kiln_e2e::images::{self, inspect};
use kiln_e2e::{Env, for_each_target};
use std::time::Duration;

/// Without `Prefer`, the work is done before the answer: 201, linked to the
/// image, with the processed bytes as body.
#[test]
fn a_plain_post_answers_201_with_the_processed_image() {
    for_each_target(Env::builder, |env| {
        let reply = env.submit(
            "?ops=resize(w=40),format(jpeg)",
            "image/png",
            &images::png(80, 60),
            &[],
        );
        assert_eq!(reply.status, 201, "{}", env.name());
        let location = reply.location();
        assert!(location.starts_with("/images/"), "{location}");
        assert_eq!(reply.header("content-location"), location);
        assert_eq!(reply.header("content-type"), "image/jpeg");
        assert_eq!(reply.header("vary"), "Prefer, Origin");
        assert_eq!(reply.header("content-length"), reply.body.len().to_string());
        assert_eq!(inspect(&reply.body), (image::ImageFormat::Jpeg, 40, 30));
    });
}

/// `Prefer: respond-async` gets 202 with the operation, linked by
/// `Location` and `Content-Location`, `Preference-Applied`, `Retry-After` —
/// and the answer comes before any processing started.
#[test]
fn respond_async_answers_202_with_the_operation_before_processing() {
    for_each_target(Env::builder, |env| {
        let reply = env.submit_async("?ops=grayscale", &images::png(32, 32));
        let location = reply.location();
        assert!(location.starts_with("/operations/"), "{location}");
        assert_eq!(reply.header("content-location"), location);
        assert_eq!(reply.header("preference-applied"), "respond-async");
        assert_eq!(reply.header("retry-after"), "1");
        assert_eq!(reply.header("vary"), "Prefer, Origin");
        assert_eq!(reply.header("content-type"), "application/json");
        let operation = reply.json();
        assert_eq!(operation["status"], "notStarted");
        assert_eq!(
            location,
            format!("/operations/{}", operation["id"].as_str().unwrap())
        );
    });
}

/// An accepted job is processed after the 202 and ends `succeeded`, with
/// the image at its `resourceLocation`.
#[test]
fn an_accepted_job_is_processed_after_the_answer() {
    for_each_target(Env::builder, |env| {
        let reply = env.submit_async(
            "?ops=resize(w=20,h=20,fit=fill),format(gif)",
            &images::png(64, 48),
        );
        let done = env.wait_until_finished(&reply.location(), Duration::from_secs(60));
        let operation = done.json();
        assert_eq!(operation["status"], "succeeded", "{operation}");
        let image = env.get(operation["resourceLocation"].as_str().unwrap(), &[]);
        assert_eq!(image.status, 200);
        assert_eq!(inspect(&image.body), (image::ImageFormat::Gif, 20, 20));
    });
}

/// `respond-async, wait=N` does the work inline when it fits in N seconds.
#[test]
fn wait_answers_201_when_the_work_fits() {
    for_each_target(Env::builder, |env| {
        let reply = env.submit(
            "",
            "image/png",
            &images::png(16, 16),
            &[("prefer", "respond-async, wait=30")],
        );
        assert_eq!(
            reply.status,
            201,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert!(reply.location().starts_with("/images/"));
    });
}

/// `respond-async, wait=N` answers 202 after about N seconds when the work
/// does not finish in them, and the job is finished all the same (the
/// submitting instance works on it for N seconds, then a processor takes
/// it over).
#[test]
fn wait_answers_202_when_the_work_does_not_fit() {
    for_each_target(Env::builder, |env| {
        let start = std::time::Instant::now();
        let reply = env.submit(
            kiln_e2e::SLOW_OPS,
            "image/png",
            &images::noisy_png(2000, 2000),
            &[("prefer", "respond-async, wait=1")],
        );
        let elapsed = start.elapsed();
        assert_eq!(
            reply.status,
            202,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.header("preference-applied"), "respond-async");
        assert!(reply.location().starts_with("/operations/"));
        assert!(
            elapsed >= Duration::from_millis(900),
            "answered after {elapsed:?}"
        );
        let finished = env.wait_until_finished(&reply.location(), Duration::from_secs(120));
        assert_eq!(finished.json()["status"], "succeeded");
        let id = finished.operation_id();
        assert_eq!(
            env.job_record(&id)["attempts"],
            1,
            "the pause counted as a crash"
        );
    });
}

/// `Prefer: return=minimal` gets a 201 without the image.
#[test]
fn return_minimal_answers_201_without_a_body() {
    for_each_target(Env::builder, |env| {
        let reply = env.submit(
            "",
            "image/png",
            &images::png(16, 16),
            &[("prefer", "return=minimal")],
        );
        assert_eq!(reply.status, 201);
        assert!(reply.body.is_empty());
        assert_eq!(reply.header("preference-applied"), "return=minimal");
        assert!(reply.location().starts_with("/images/"));
    });
}

/// Every input format is read, and converted to the requested output.
#[test]
fn every_input_format_converts_to_every_output_format() {
    for_each_target(Env::builder, |env| {
        let inputs = [
            ("image/jpeg", images::jpeg(24, 16)),
            ("image/png", images::png(24, 16)),
            ("image/webp", images::webp(24, 16)),
            ("image/gif", images::gif(24, 16)),
        ];
        let outputs = [
            ("jpeg", image::ImageFormat::Jpeg),
            ("png", image::ImageFormat::Png),
            ("webp", image::ImageFormat::WebP),
            ("gif", image::ImageFormat::Gif),
        ];
        for (content_type, body) in &inputs {
            for (name, format) in outputs {
                let reply = env.submit(&format!("?ops=format({name})"), content_type, body, &[]);
                assert_eq!(reply.status, 201, "{content_type} -> {name}");
                assert_eq!(
                    inspect(&reply.body),
                    (format, 24, 16),
                    "{content_type} -> {name}"
                );
            }
            // AVIF, which the `image` crate here does not read: by `avifdec`.
            let reply = env.submit("?ops=format(avif)", content_type, body, &[]);
            assert_eq!(reply.status, 201, "{content_type} -> avif");
            assert_eq!(reply.header("content-type"), "image/avif");
            if let Some(decoded) = images::decode_avif(&reply.body) {
                assert_eq!(
                    (decoded.width(), decoded.height()),
                    (24, 16),
                    "{content_type} -> avif"
                );
            }
        }
    });
}

/// Without `ops`, the default re-encodes in the source format.
#[test]
fn without_ops_the_image_is_reencoded_in_its_own_format() {
    for_each_target(Env::builder, |env| {
        let reply = env.submit("", "image/jpeg", &images::jpeg(30, 20), &[]);
        assert_eq!(reply.status, 201);
        assert_eq!(inspect(&reply.body), (image::ImageFormat::Jpeg, 30, 20));
    });
}

/// A lower JPEG quality compresses harder.
#[test]
fn quality_compresses() {
    for_each_target(Env::builder, |env| {
        let photo = images::png(200, 150);
        let high = env.submit("?ops=format(jpeg),quality(95)", "image/png", &photo, &[]);
        let low = env.submit("?ops=format(jpeg),quality(20)", "image/png", &photo, &[]);
        assert!(
            low.body.len() < high.body.len(),
            "{} vs {}",
            low.body.len(),
            high.body.len()
        );
    });
}

/// A retry with the same `Idempotency-Key` and body gets the same
/// operation, and no second job runs.
#[test]
fn the_same_idempotency_key_returns_the_same_operation_and_runs_once() {
    for_each_target(Env::builder, an_idempotent_retry_runs_once);
}

/// The promise above, on `env` (Redis runs it too).
pub(crate) fn an_idempotent_retry_runs_once(env: &Env) {
    let body = images::png(20, 20);
    let headers = [
        ("prefer", "respond-async"),
        ("idempotency-key", "\"retry-me\""),
    ];
    let first = env.submit("?ops=grayscale", "image/png", &body, &headers);
    let second = env.submit("?ops=grayscale", "image/png", &body, &headers);
    assert_eq!((first.status, second.status), (202, 202));
    assert_eq!(first.location(), second.location());
    assert_eq!(first.headers.get("idempotent-replayed"), None);
    assert_eq!(second.header("idempotent-replayed"), "true");
    let done = env.wait_until_finished(&first.location(), Duration::from_secs(60));
    assert_eq!(done.json()["status"], "succeeded", "{}", env.name());
    // A synchronous retry once it finished: the image, marked a replay.
    let inline = env.submit(
        "?ops=grayscale",
        "image/png",
        &body,
        &[("idempotency-key", "\"retry-me\"")],
    );
    assert_eq!(inline.status, 201, "{}", env.name());
    assert_eq!(inline.header("idempotent-replayed"), "true");
    env.settle();
    let jobs = env.store().keys_with_prefix("kiln:job:");
    assert_eq!(jobs.len(), 1, "{}: {jobs:?}", env.name());
    assert_eq!(
        env.job_record(&first.operation_id())["attempts"],
        1,
        "{}: the job was claimed more than once",
        env.name()
    );
}

/// Concurrent retries with the same `Idempotency-Key` (a client that timed
/// out and retried in a hurry) create one job, and all get its operation.
#[test]
fn concurrent_retries_with_one_idempotency_key_create_one_job() {
    for_each_target(Env::builder, |env| {
        let body = images::png(24, 24);
        let locations: std::collections::HashSet<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    scope.spawn(|| {
                        let headers = [("prefer", "respond-async"), ("idempotency-key", "burst")];
                        let reply = env.submit("", "image/png", &body, &headers);
                        assert_eq!(
                            reply.status,
                            202,
                            "{}",
                            String::from_utf8_lossy(&reply.body)
                        );
                        reply.location()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(locations.len(), 1, "{locations:?}");
        env.settle();
        assert_eq!(env.store().keys_with_prefix("kiln:job:").len(), 1);
    });
}

/// After its job expired, an `Idempotency-Key` may be used afresh.
#[test]
fn an_idempotency_key_is_free_again_once_its_job_expired() {
    for_each_target(
        || Env::builder().variable("retention_seconds", "1"),
        |env| {
            let headers = [("idempotency-key", "daily-report")];
            let first = env.submit("", "image/png", &images::png(20, 20), &headers);
            assert_eq!(first.status, 201);
            std::thread::sleep(Duration::from_millis(1100));
            let second = env.submit("", "image/png", &images::png(30, 20), &headers);
            assert_eq!(
                second.status,
                201,
                "{}",
                String::from_utf8_lossy(&second.body)
            );
            assert_ne!(first.location(), second.location());
        },
    );
}

/// The same `Idempotency-Key` with a different request is a 422 problem.
#[test]
fn the_same_idempotency_key_with_another_body_is_422() {
    for_each_target(Env::builder, |env| {
        let headers = [("idempotency-key", "order-7")];
        let first = env.submit("", "image/png", &images::png(20, 20), &headers);
        assert_eq!(first.status, 201);
        let second = env.submit("", "image/png", &images::png(21, 20), &headers);
        let problem = second.problem(422);
        assert_eq!(problem["type"], "urn:kiln:problem:idempotency-key-reused");
    });
}
