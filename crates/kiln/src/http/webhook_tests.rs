//! Webhooks, natively: refused before anything is stored when not allowed,
//! sent signed when the job finishes, retried with backoff by later
//! requests, and shown in the operation.

use super::tests::{FakeHost, Processor, header, json, png, problem_status};
use crate::config::Webhooks;
use crate::webhook::{AllowedHost, Secret, sign};
use http::{Method, StatusCode};
use std::time::Duration;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const HOOK: &str = "http://127.0.0.1:9000/hooks/kiln";

fn webhook_host() -> FakeHost {
    let mut host = FakeHost::new();
    host.config.webhooks = Some(Webhooks {
        secret: Secret::parse(SECRET).unwrap(),
        allowed: AllowedHost::parse("http://127.0.0.1:*").unwrap(),
    });
    host
}

fn submit_with_hook(host: &FakeHost, extra: &[(&str, &str)], ops: &str) -> super::Response {
    let mut headers = vec![("content-type", "image/png"), ("webhook-url", HOOK)];
    headers.extend_from_slice(extra);
    host.send(
        Method::POST,
        &format!("/images{ops}"),
        &headers,
        png(16, 16),
    )
}

fn post_header<'a>(post: &'a super::tests::Post, name: &str) -> &'a str {
    post.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {:?}", post.headers))
}

/// A finished job's event goes to its URL once, signed, carrying the
/// operation as a read shows it; the operation then says it was delivered.
#[test]
fn a_finished_job_posts_one_signed_event_and_shows_it_delivered() {
    let host = webhook_host();
    let created = submit_with_hook(&host, &[], "?ops=format(jpeg)");
    assert_eq!(created.status(), StatusCode::CREATED);
    let posts = host.posts.borrow().clone();
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert_eq!(post.url, HOOK);
    assert_eq!(post_header(post, "content-type"), "application/json");
    assert_eq!(
        post_header(post, "content-length"),
        post.body.len().to_string()
    );
    let (id, timestamp) = (
        post_header(post, "webhook-id"),
        post_header(post, "webhook-timestamp"),
    );
    let secret = Secret::parse(SECRET).unwrap();
    assert_eq!(
        post_header(post, "webhook-signature"),
        sign(&secret, id, timestamp.parse().unwrap(), &post.body)
    );
    let event: serde_json::Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(event["type"], "operation.succeeded");
    let operation_path = format!("/operations/{}", event["data"]["id"].as_str().unwrap());
    let mut operation = json(&host.get(&operation_path));
    assert_eq!(operation["webhook"]["status"], "delivered");
    assert_eq!(operation["webhook"]["attempts"], 1);
    operation.as_object_mut().unwrap().remove("webhook");
    assert_eq!(event["data"], operation);
    assert_eq!(event["timestamp"], operation["lastUpdatedAt"]);
}

/// A receiver answering 500 twice gets the event a third time, each
/// attempt after a longer wait, sent by the reads that find it due; the
/// id stays the same so the receiver can deduplicate.
#[test]
fn failed_attempts_are_retried_with_backoff_by_later_requests() {
    let host = webhook_host();
    host.receiver.set(Ok(500));
    let created = submit_with_hook(&host, &[], "?ops=format(jpeg)");
    let path = header(&created, "location").replace("/images/", "/operations/");
    let pending = json(&host.get(&path));
    assert_eq!(pending["webhook"]["status"], "pending", "{pending}");
    assert_eq!(pending["webhook"]["attempts"], 1);
    assert_eq!(pending["webhook"]["lastError"], "the receiver answered 500");
    assert_eq!(host.posts.borrow().len(), 1, "retried before its time");

    host.advance(Duration::from_secs(1));
    host.get(&path);
    assert_eq!(host.posts.borrow().len(), 2);
    host.receiver.set(Ok(200));
    host.advance(Duration::from_millis(1_500));
    host.get(&path);
    assert_eq!(host.posts.borrow().len(), 2, "the second wait is longer");
    host.advance(Duration::from_millis(500));
    host.get(&path);
    let delivered = json(&host.get(&path));
    assert_eq!(delivered["webhook"]["status"], "delivered", "{delivered}");
    assert_eq!(delivered["webhook"]["attempts"], 3);
    let posts = host.posts.borrow();
    assert_eq!(posts.len(), 3);
    let ids: Vec<&str> = posts.iter().map(|p| post_header(p, "webhook-id")).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
}

/// A delivery due while nobody reads the operation is found through the
/// pending index by the maintenance that follows any submission.
#[test]
fn a_due_retry_is_sent_by_the_maintenance_of_another_submission() {
    let host = webhook_host();
    host.receiver.set(Err("connection refused"));
    submit_with_hook(&host, &[], "?ops=format(jpeg)");
    assert_eq!(host.posts.borrow().len(), 1);
    host.receiver.set(Ok(204));
    host.advance(Duration::from_secs(2));
    host.submit(&[], "");
    assert_eq!(host.posts.borrow().len(), 2);
}

/// Cancelling a job sends `operation.canceled` at once.
#[test]
fn a_canceled_job_sends_operation_canceled() {
    let host = webhook_host();
    host.processor.set(Processor::Stalled);
    let accepted = submit_with_hook(&host, &[("prefer", "respond-async")], "");
    assert!(host.posts.borrow().is_empty());
    let canceled = host.send(
        Method::DELETE,
        header(&accepted, "location"),
        &[],
        Vec::new(),
    );
    assert_eq!(canceled.status(), StatusCode::OK);
    let posts = host.posts.borrow();
    assert_eq!(posts.len(), 1);
    let event: serde_json::Value = serde_json::from_slice(&posts[0].body).unwrap();
    assert_eq!(event["type"], "operation.canceled");
    assert_eq!(event["data"]["status"], "canceled");
}

/// A refused `Webhook-Url` is a 400 problem before the body is read:
/// nothing is stored, and the service keeps serving.
#[test]
fn a_refused_webhook_stores_nothing() {
    for (host, url, reason) in [
        (webhook_host(), "http://10.0.0.1/hook", "not allowed"),
        (webhook_host(), "ftp://127.0.0.1/hook", "http or https"),
        (FakeHost::new(), HOOK, "not configured"),
    ] {
        let refused = host.send(
            Method::POST,
            "/images",
            &[("content-type", "image/png"), ("webhook-url", url)],
            png(8, 8),
        );
        assert_eq!(problem_status(&refused), 400, "{url}");
        let detail = json(&refused)["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains(reason), "{url}: {detail}");
        assert!(
            host.kv.keys().is_empty(),
            "{url}: stored {:?}",
            host.kv.keys()
        );
        assert_eq!(host.submit(&[], "").status(), StatusCode::CREATED);
    }
}

/// A job without a webhook sends nothing and its operation has no
/// `webhook` member.
#[test]
fn without_a_webhook_nothing_is_sent() {
    let host = webhook_host();
    let created = host.submit(&[], "");
    let path = header(&created, "location").replace("/images/", "/operations/");
    assert!(json(&host.get(&path)).get("webhook").is_none());
    assert!(host.posts.borrow().is_empty());
}
