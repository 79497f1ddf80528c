//! Rate limits and quotas per client on `POST /images`: the token bucket,
//! the cap on unfinished jobs, who counts as one client, the fields that
//! tell a client where it stands, and the sweep that deletes idle clients'
//! state.

use super::tests::{FakeHost, Processor, contents, header, json, png, problem_status};
use super::*;
use crate::access::ApiKeys;
use crate::idempotency::hex;
use crate::kv::KvStore;
use crate::rate_limit::RateLimit;
use http::{Method, StatusCode};
use sha2::{Digest, Sha256};
use std::time::Duration;

fn limited(per_minute: u32, burst: u32) -> FakeHost {
    let mut host = FakeHost::new();
    host.config.rate_limit = Some(RateLimit { per_minute, burst });
    host
}

fn capped(max: u32) -> FakeHost {
    let mut host = FakeHost::new();
    host.config.max_unfinished_jobs = Some(max);
    // Jobs stay unfinished until the test says otherwise.
    host.processor.set(Processor::Stalled);
    host
}

/// A `respond-async` submission from `address` (as Spin's
/// `spin-client-addr` gives it: an address and a port), with more headers.
fn submit_from(host: &FakeHost, address: &str, more: &[(&str, &str)]) -> Response {
    from(host, address);
    let mut headers = vec![("content-type", "image/png"), ("prefer", "respond-async")];
    headers.extend_from_slice(more);
    host.send(Method::POST, "/images", &headers, png(16, 16))
}

fn from(host: &FakeHost, address: &str) {
    let address: std::net::SocketAddr = address.parse().unwrap();
    host.client_address.set(Some(address.ip()));
}

fn client_keys(host: &FakeHost) -> Vec<String> {
    host.kv
        .keys()
        .into_iter()
        .filter(|key| key.starts_with(crate::keys::CLIENT_PREFIX))
        .collect()
}

fn jobs_stored(host: &FakeHost) -> usize {
    host.kv
        .keys()
        .iter()
        .filter(|key| key.starts_with("kiln:job:"))
        .count()
}

/// A burst of 3, then one a second (60 a minute): the fourth submission at
/// once is `429` with when to retry and where the client stands, and it
/// stores nothing; a second later one more fits.
#[test]
fn a_client_over_its_rate_gets_429_with_retry_after_and_the_rate_limit_fields() {
    let host = limited(60, 3);
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let accepted = submit_from(&host, "192.0.2.7:5000", &[]);
        assert_eq!(accepted.status(), StatusCode::ACCEPTED);
        assert_eq!(
            header(&accepted, "ratelimit-policy"),
            r#""submissions";q=3;w=3"#
        );
        remaining.push(header(&accepted, "ratelimit").to_owned());
    }
    // `t`: when the next submission comes back, one a second.
    assert_eq!(
        remaining,
        [
            r#""submissions";r=2;t=1"#,
            r#""submissions";r=1;t=1"#,
            r#""submissions";r=0;t=1"#
        ]
    );
    let before = contents(&host.kv);
    let refused = submit_from(&host, "192.0.2.7:5001", &[]);
    assert_eq!(problem_status(&refused), 429);
    assert_eq!(json(&refused)["type"], "urn:kiln:problem:rate-limited");
    assert_eq!(header(&refused, "retry-after"), "1");
    assert_eq!(header(&refused, "ratelimit"), r#""submissions";r=0;t=1"#);
    assert_eq!(
        header(&refused, "ratelimit-policy"),
        r#""submissions";q=3;w=3"#
    );
    assert_eq!(contents(&host.kv), before, "a refused request wrote");
    assert_eq!(jobs_stored(&host), 3);

    host.advance(Duration::from_millis(999));
    assert_eq!(submit_from(&host, "192.0.2.7:5000", &[]).status(), 429);
    host.advance(Duration::from_millis(1));
    let accepted = submit_from(&host, "192.0.2.7:5000", &[]);
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&accepted, "ratelimit"), r#""submissions";r=0;t=1"#);
    assert_eq!(submit_from(&host, "192.0.2.7:5000", &[]).status(), 429);
}

/// Retry-After, and `t` with it, say when the next submission fits, not
/// when the bucket is full: at 6 a minute, 10 s after the burst is spent.
#[test]
fn retry_after_is_when_one_submission_fits_again() {
    let host = limited(6, 2);
    for _ in 0..2 {
        assert_eq!(submit_from(&host, "192.0.2.7:1", &[]).status(), 202);
    }
    host.advance(Duration::from_millis(2_500));
    let refused = submit_from(&host, "192.0.2.7:1", &[]);
    assert_eq!(problem_status(&refused), 429);
    assert_eq!(header(&refused, "retry-after"), "8");
    assert_eq!(header(&refused, "ratelimit"), r#""submissions";r=0;t=8"#);
    host.advance(Duration::from_millis(7_499));
    assert_eq!(submit_from(&host, "192.0.2.7:1", &[]).status(), 429);
    host.advance(Duration::from_millis(1));
    assert_eq!(submit_from(&host, "192.0.2.7:1", &[]).status(), 202);
}

/// Each address has its own bucket; an IPv6 host counts by its /64 (one
/// host is given a whole /64), and an IPv4-mapped address as the IPv4 one.
#[test]
fn each_address_has_its_own_bucket_and_ipv6_counts_by_its_64() {
    let host = limited(1, 1);
    assert_eq!(submit_from(&host, "192.0.2.1:80", &[]).status(), 202);
    assert_eq!(submit_from(&host, "192.0.2.2:80", &[]).status(), 202);
    assert_eq!(
        submit_from(&host, "[::ffff:192.0.2.1]:80", &[]).status(),
        429
    );
    assert_eq!(
        submit_from(&host, "[2001:db8:1:2::1]:80", &[]).status(),
        202
    );
    assert_eq!(
        submit_from(&host, "[2001:db8:1:2:ffff::9]:443", &[]).status(),
        429
    );
    assert_eq!(
        submit_from(&host, "[2001:db8:1:3::1]:80", &[]).status(),
        202
    );
    let mut keys = client_keys(&host);
    keys.retain(|key| !key.ends_with(":created"));
    keys.sort();
    assert_eq!(
        keys,
        [
            "kiln:client:ip:192.0.2.1",
            "kiln:client:ip:192.0.2.2",
            "kiln:client:ip:2001:db8:1:2::/64",
            "kiln:client:ip:2001:db8:1:3::/64",
        ]
    );
}

/// With API keys on, the key is the client, wherever it calls from; a
/// request without a valid key is refused before it costs a token.
#[test]
fn with_api_keys_each_key_has_its_own_bucket_wherever_it_calls_from() {
    let mut host = limited(1, 2);
    let hash = |key: &str| hex(&Sha256::digest(key.as_bytes()));
    host.config.api_keys =
        ApiKeys::parse(&format!("alice:{} bob:{}", hash("ka"), hash("kb"))).unwrap();
    let alice = [("authorization", "Bearer ka")];
    assert_eq!(problem_status(&submit_from(&host, "192.0.2.1:1", &[])), 401);
    assert_eq!(submit_from(&host, "192.0.2.1:1", &alice).status(), 202);
    assert_eq!(submit_from(&host, "192.0.2.2:1", &alice).status(), 202);
    assert_eq!(submit_from(&host, "192.0.2.3:1", &alice).status(), 429);
    let bob = [("authorization", "Bearer kb")];
    assert_eq!(submit_from(&host, "192.0.2.1:1", &bob).status(), 202);
    let mut keys = client_keys(&host);
    keys.retain(|key| !key.ends_with(":created"));
    keys.sort();
    assert_eq!(keys, ["kiln:client:key:alice", "kiln:client:key:bob"]);
}

/// A cap of 2 unfinished jobs: the third submission is `429` until one of
/// the two finishes (here: is canceled); the fields count what is left.
#[test]
fn a_client_with_its_most_unfinished_jobs_gets_429_until_one_finishes() {
    let host = capped(2);
    let first = submit_from(&host, "192.0.2.9:1", &[]);
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert_eq!(
        header(&first, "ratelimit-policy"),
        r#""unfinished-jobs";q=2;qu="concurrent-requests""#
    );
    assert_eq!(header(&first, "ratelimit"), r#""unfinished-jobs";r=1"#);
    let second = submit_from(&host, "192.0.2.9:1", &[]);
    assert_eq!(header(&second, "ratelimit"), r#""unfinished-jobs";r=0"#);

    let refused = submit_from(&host, "192.0.2.9:1", &[]);
    assert_eq!(problem_status(&refused), 429);
    assert_eq!(
        json(&refused)["type"],
        "urn:kiln:problem:too-many-unfinished-jobs"
    );
    assert_eq!(header(&refused, "retry-after"), "2");
    assert_eq!(header(&refused, "ratelimit"), r#""unfinished-jobs";r=0"#);
    assert_eq!(jobs_stored(&host), 2);
    // Another client is not held back.
    assert_eq!(submit_from(&host, "192.0.2.10:1", &[]).status(), 202);

    let canceled = host.send(Method::DELETE, header(&first, "location"), &[], Vec::new());
    assert_eq!(canceled.status(), StatusCode::OK, "{canceled:?}");
    let third = submit_from(&host, "192.0.2.9:1", &[]);
    assert_eq!(third.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&third, "ratelimit"), r#""unfinished-jobs";r=0"#);
}

/// With a rate and a cap, a submission refused by the cap spends no token:
/// its `429` says so in the `submissions` item, beside the cap's, and the
/// next one admitted after a job finishes has the token it kept.
#[test]
fn a_refusal_by_the_cap_reports_the_bucket_it_left_untouched() {
    let mut host = capped(1);
    host.config.rate_limit = Some(RateLimit {
        per_minute: 60,
        burst: 3,
    });
    let first = submit_from(&host, "192.0.2.9:1", &[]);
    assert_eq!(
        header(&first, "ratelimit"),
        r#""submissions";r=2;t=1, "unfinished-jobs";r=0"#
    );
    let refused = submit_from(&host, "192.0.2.9:1", &[]);
    assert_eq!(problem_status(&refused), 429);
    assert_eq!(
        json(&refused)["type"],
        "urn:kiln:problem:too-many-unfinished-jobs"
    );
    assert_eq!(
        header(&refused, "ratelimit"),
        r#""submissions";r=2;t=1, "unfinished-jobs";r=0"#
    );
    let canceled = host.send(Method::DELETE, header(&first, "location"), &[], Vec::new());
    assert_eq!(canceled.status(), StatusCode::OK, "{canceled:?}");
    let second = submit_from(&host, "192.0.2.9:1", &[]);
    assert_eq!(second.status(), StatusCode::ACCEPTED);
    assert_eq!(
        header(&second, "ratelimit"),
        r#""submissions";r=1;t=1, "unfinished-jobs";r=0"#
    );
}

/// A submission refused after admission (an empty body) and a replay of an
/// earlier job under the same `Idempotency-Key` give their place back: no
/// job came of them.
#[test]
fn a_refused_submission_or_a_replay_takes_no_place_among_unfinished_jobs() {
    let host = capped(1);
    from(&host, "192.0.2.9:1");
    let empty = host.send(
        Method::POST,
        "/images",
        &[("content-type", "image/png")],
        Vec::new(),
    );
    assert_eq!(problem_status(&empty), 400);
    let key = [("idempotency-key", "once")];
    let accepted = submit_from(&host, "192.0.2.9:1", &key);
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let replayed = submit_from(&host, "192.0.2.9:1", &key);
    assert_eq!(replayed.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&replayed, "location"), header(&accepted, "location"));
    assert_eq!(header(&replayed, "ratelimit"), r#""unfinished-jobs";r=0"#);
    let state = host
        .kv
        .get("kiln:client:ip:192.0.2.9")
        .unwrap()
        .expect("the client's state");
    let state: serde_json::Value = serde_json::from_slice(&state).unwrap();
    let id = header(&accepted, "location").rsplit('/').next().unwrap();
    assert_eq!(state["jobs"].as_array().unwrap().len(), 1, "{state}");
    assert!(
        state["jobs"][0].as_str().unwrap().starts_with(id),
        "{state}"
    );
}

/// Limits off (the default): nothing is written for a client and no field
/// is sent.
#[test]
fn without_limits_no_client_state_is_kept_and_no_field_is_sent() {
    let host = FakeHost::new();
    let accepted = submit_from(&host, "192.0.2.9:1", &[]);
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    assert!(accepted.headers().get("ratelimit").is_none());
    assert!(accepted.headers().get("ratelimit-policy").is_none());
    assert_eq!(client_keys(&host), Vec::<String>::new());
}

/// Once a client's bucket is full again and its jobs are finished, the
/// first maintenance of a minute deletes its state, creation counter
/// included; a client still waiting for a job keeps it until a later
/// minute's. Then the client starts afresh.
#[test]
fn the_sweep_deletes_idle_clients_state_once_a_minute() {
    let mut host = limited(60, 2);
    host.config.max_unfinished_jobs = Some(5);
    let maintain = |host: &FakeHost| follow_up(&host.ctx(), FollowUp::Maintain);
    assert_eq!(submit_from(&host, "192.0.2.1:1", &[]).status(), 202);
    host.processor.set(Processor::Stalled);
    assert_eq!(submit_from(&host, "192.0.2.2:1", &[]).status(), 202);
    assert_eq!(client_keys(&host).len(), 4, "{:?}", client_keys(&host));

    host.advance(Duration::from_secs(61));
    maintain(&host);
    let mut left = client_keys(&host);
    left.sort();
    assert_eq!(
        left,
        [
            "kiln:client:ip:192.0.2.2",
            "kiln:client:ip:192.0.2.2:created"
        ]
    );
    // The second client's job ends; within the same minute nothing is
    // swept again, in the next minute it is.
    host.resume();
    host.advance(Duration::from_secs(1));
    maintain(&host);
    assert_eq!(client_keys(&host).len(), 2);
    host.advance(Duration::from_secs(60));
    maintain(&host);
    assert_eq!(client_keys(&host), Vec::<String>::new());

    let accepted = submit_from(&host, "192.0.2.1:1", &[]);
    assert_eq!(
        header(&accepted, "ratelimit"),
        r#""submissions";r=1;t=1, "unfinished-jobs";r=4"#
    );
}

/// A creation counter left without its state (the state's first write
/// failed) is deleted by the sweep: it would make the client's next first
/// submission wait for a creator that is gone.
#[test]
fn the_sweep_deletes_a_creation_counter_left_alone() {
    let host = limited(60, 2);
    host.kv
        .increment("kiln:client:ip:192.0.2.1:created", 1)
        .unwrap();
    assert_eq!(crate::rate_limit::sweep(&host.ctx()).unwrap(), 0);
    assert_eq!(client_keys(&host), Vec::<String>::new());
}

/// A job whose image the client deleted right after it finished gives its
/// place back at once: a client with a cap of one submits, fetches,
/// deletes, and submits again without a `429`.
#[test]
fn a_deleted_job_gives_its_place_back_at_once() {
    let mut host = FakeHost::new();
    host.config.max_unfinished_jobs = Some(1);
    for _ in 0..3 {
        from(&host, "192.0.2.1:1");
        let done = host.submit(&[], "");
        assert_eq!(done.status(), StatusCode::CREATED, "{done:?}");
        let deleted = host.send(Method::DELETE, header(&done, "location"), &[], Vec::new());
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT, "{deleted:?}");
    }
}

/// A sweep that died between closing a client's state and deleting it
/// does not lock the client out: after a few seconds its next submission
/// opens the state again and is let in.
#[test]
fn state_left_closed_by_a_dead_sweep_is_opened_by_the_next_submission() {
    let host = limited(60, 2);
    let closed = format!(r#"{{"closed_at":{}}}"#, host.now_millis());
    host.kv
        .set("kiln:client:ip:192.0.2.1", closed.as_bytes())
        .unwrap();
    let accepted = submit_from(&host, "192.0.2.1:1", &[]);
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&accepted, "ratelimit"), r#""submissions";r=1;t=1"#);
}
