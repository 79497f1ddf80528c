//! Fermyon Cloud's quotas, enforced by the test host: what Kiln meets, and
//! what a client sees where a quota is reached. Test host only: `spin up`
//! has no quotas.

use kiln_e2e::Env;
use kiln_e2e::images;
use kiln_test_host::{Host, Quotas};
use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

/// Fermyon Cloud's published quotas, except that service chaining is
/// allowed: Kiln's processor is a private component reached by chaining, and
/// whether Cloud chains is not documented.
fn cloud_with_chaining() -> Quotas {
    Quotas {
        service_chaining: true,
        ..Quotas::fermyon_cloud()
    }
}

/// Asserts the store holds nothing a Fermyon Cloud store would refuse.
fn assert_store_within(env: &Env, quotas: &Quotas) {
    let keys = env.kv().keys();
    assert!(keys.len() <= quotas.max_keys, "{} keys", keys.len());
    for key in keys {
        assert!(key.len() <= quotas.max_key_bytes, "key {key}");
        let value = env.kv().get(&key).unwrap_or_default();
        assert!(
            value.len() <= quotas.max_value_bytes,
            "{key}: {} bytes",
            value.len()
        );
    }
}

/// Without service chaining, `spin.toml` cannot be deployed as it is: its
/// private processor is reached only by chaining. The host refuses it at
/// start and says why.
#[test]
fn spin_toml_is_refused_where_service_chaining_is_unavailable() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let started = runtime.block_on(
        Host::builder(kiln_e2e::env::app().clone())
            .quotas(Quotas::fermyon_cloud())
            .start(),
    );
    let error = match started {
        Ok(host) => {
            runtime.block_on(host.kill());
            panic!("spin.toml started without service chaining");
        }
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("service chaining"), "{error}");
    assert!(
        error.contains("component `processor` has a private route"),
        "{error}"
    );
    assert!(
        error.contains("component `submit` may call `processor.spin.internal`"),
        "{error}"
    );
}

/// Sync and async jobs on a 1000×1000 image work within Fermyon Cloud's
/// key-value and body quotas, and leave nothing in the store it would
/// refuse.
#[test]
fn jobs_fit_fermyon_cloud_quotas() {
    let quotas = cloud_with_chaining();
    let env = Env::builder().quotas(quotas.clone()).start();
    let photo = images::noisy_png(1000, 1000);
    let done = env.submit("?ops=resize(w=500),format(jpeg)", "image/png", &photo, &[]);
    assert_eq!(done.status, 201, "{}", String::from_utf8_lossy(&done.body));
    let accepted = env.submit_async("?ops=grayscale,format(png)", &photo);
    let finished = env.wait_until_finished(&accepted.location(), Duration::from_secs(120));
    assert_eq!(
        finished.json()["status"],
        "succeeded",
        "{}",
        finished.json()
    );
    env.settle();
    assert_eq!(env.host().stats("processor").timeouts, 0);
    assert_store_within(&env, &quotas);
}

/// A body over Fermyon Cloud's 10 MB is answered `413` by the platform
/// itself: no component runs, and the body is not Kiln's problem document.
/// A body of exactly 10 MB reaches Kiln.
#[test]
fn a_body_over_10_mb_gets_413_from_the_platform() {
    let env = Env::builder().quotas(cloud_with_chaining()).start();
    let over = vec![0u8; 10_000_001];
    let refused = env.submit("", "image/png", &over, &[]);
    assert_eq!(refused.status, 413);
    assert!(refused.body.is_empty(), "{:?}", refused.body);
    assert_eq!(env.host().invocations("submit"), 0);
    let at_limit = vec![0u8; 10_000_000];
    // Zeros are not a PNG: Kiln itself answers.
    env.submit("", "image/png", &at_limit, &[]).problem(415);
    assert_eq!(env.host().invocations("submit"), 1);
    env.assert_still_serving();
}

/// A chunked body (no `Content-Length`) is cut off at the quota as it
/// streams in, before any component runs.
#[test]
fn a_chunked_body_over_the_quota_gets_413_from_the_platform() {
    let env = Env::builder()
        .quotas(Quotas {
            max_request_body_bytes: 1000,
            ..cloud_with_chaining()
        })
        .start();
    let address = env.base_url().trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut request = b"POST /images HTTP/1.1\r\nHost: kiln\r\nContent-Type: image/png\r\n\
                        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        .to_vec();
    for _ in 0..3 {
        request.extend_from_slice(b"1f4\r\n");
        request.extend_from_slice(&[0u8; 500]);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&request).expect("send");
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .expect("an answer");
    assert!(line.starts_with("HTTP/1.1 413"), "{line}");
    assert_eq!(env.host().invocations("submit"), 0);
    env.assert_still_serving();
}

/// A request still unanswered when the handler time limit runs out is
/// killed; the client gets `504` from the platform, and the kill is
/// counted. A long-poll on a job that cannot change (its processor crashed,
/// and its lease is long) outlasts a 4 s limit.
#[test]
fn a_long_poll_past_the_handler_time_limit_gets_504() {
    let env = Env::builder()
        .quotas(Quotas {
            handler_timeout: Duration::from_secs(4),
            ..cloud_with_chaining()
        })
        .start();
    env.faults().trap_writes("processor", "kiln:blob:", 100);
    let accepted = env.submit_async("", &images::png(16, 16));
    // Once the processor has crashed, nothing changes the job until its
    // lease (60 s) runs out, so the long-poll cannot end early.
    env.settle();
    assert_eq!(env.faults().pending_write_traps(), 99);
    let reply = env.get(&accepted.location(), &[("prefer", "wait=25")]);
    assert_eq!(
        reply.status,
        504,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let operations = env.host().stats("operations");
    assert_eq!(operations.timeouts, 1, "{operations:?}");
    assert!(operations.failures >= 1, "{operations:?}");
    env.faults().clear();
    env.assert_still_serving();
}

/// A value over the size quota is refused by the store: Kiln, which keeps
/// images in 256 KiB chunks, answers 503 where values are capped at 100 kB,
/// and nothing over the cap is stored.
#[test]
fn a_value_over_the_quota_is_a_store_failure_and_is_not_stored() {
    let quotas = Quotas {
        max_value_bytes: 100_000,
        ..cloud_with_chaining()
    };
    let env = Env::builder().quotas(quotas.clone()).start();
    let photo = images::noisy_png(400, 400);
    assert!(photo.len() > 256 * 1024);
    let reply = env.submit("", "image/png", &photo, &[]);
    assert_eq!(
        reply.problem(503)["type"],
        "urn:kiln:problem:store-unavailable"
    );
    env.settle();
    assert_store_within(&env, &quotas);
}

/// A store at its key count refuses new keys: Kiln answers 503, and the
/// store never holds more keys than the quota. The upload, its marker and
/// its record are one batch (three keys here), refused as a whole: the
/// refused submission leaves nothing.
#[test]
fn new_keys_beyond_the_key_count_are_refused() {
    let quotas = Quotas {
        max_keys: 2,
        ..cloud_with_chaining()
    };
    let env = Env::builder().quotas(quotas.clone()).start();
    let reply = env.submit("", "image/png", &images::png(8, 8), &[]);
    assert_eq!(
        reply.problem(503)["type"],
        "urn:kiln:problem:store-unavailable"
    );
    env.settle();
    assert_store_within(&env, &quotas);
    assert_eq!(env.kv().keys(), Vec::<String>::new());
}
