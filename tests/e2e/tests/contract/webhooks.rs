//! Webhooks: a submission's `Webhook-Url` gets a signed POST when its
//! operation finishes, checked here by a real receiver on loopback with a
//! Standard Webhooks check written independently of Kiln's signer.

use kiln_e2e::webhooks::{Received, SECRET, WebhookReceiver};
use kiln_e2e::{Env, EnvBuilder, Reply, for_each_target, images};
use std::time::{Duration, Instant};

/// The app with webhooks on, allowed to any port of 127.0.0.1.
fn with_webhooks() -> EnvBuilder {
    kiln_e2e::webhooks::enabled(Env::builder())
}

fn submit_with_hook(env: &Env, query: &str, body: &[u8], url: &str, async_: bool) -> Reply {
    let mut headers = vec![("webhook-url", url)];
    if async_ {
        headers.push(("prefer", "respond-async"));
    }
    env.submit(query, "image/png", body, &headers)
}

/// The operation of a `201` (whose `Location` is the image) or a `202`.
fn operation_path(reply: &Reply) -> String {
    let location = reply.location();
    let id = location.rsplit('/').next().expect("a Location");
    format!("/operations/{id}")
}

/// The operation as `GET` shows it, without the delivery's own state.
fn operation_without_webhook(env: &Env, path: &str) -> serde_json::Value {
    let mut operation = env.get(path, &[]).json();
    operation
        .as_object_mut()
        .expect("an operation object")
        .remove("webhook");
    operation
}

/// Polls the operation until its webhook is settled; panics after 30 s.
fn wait_for_delivery(env: &Env, path: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let operation = env.get(path, &[]).json();
        let status = operation["webhook"]["status"].as_str().unwrap_or_default();
        if ["delivered", "failed"].contains(&status) {
            return operation;
        }
        assert!(
            Instant::now() < deadline,
            "webhook still {status}: {operation}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn by_path<'a>(received: &'a [Received], path: &str) -> &'a Received {
    received
        .iter()
        .find(|r| r.path == path)
        .unwrap_or_else(|| panic!("nothing posted to {path}: {received:#?}"))
}

/// Every way an operation can finish is posted once, signed, with its
/// event type, the time it finished and the operation as a read shows it;
/// the operation then shows the delivery as delivered.
#[test]
fn every_finished_state_is_posted_signed() {
    for_each_target(with_webhooks, |env| {
        let receiver = WebhookReceiver::start();
        let succeeded = submit_with_hook(
            env,
            "?ops=format(jpeg)",
            &images::png(32, 32),
            &receiver.url("/succeeded"),
            false,
        );
        assert_eq!(succeeded.status, 201, "{}", env.name());
        let failed = submit_with_hook(
            env,
            "",
            &images::png_with_a_flipped_bit(64, 64),
            &receiver.url("/failed"),
            true,
        );
        let canceled = submit_with_hook(
            env,
            kiln_e2e::SLOW_OPS,
            &images::noisy_png(1000, 1000),
            &receiver.url("/canceled"),
            true,
        );
        assert_eq!(
            env.send("DELETE", &canceled.location(), &[], &[]).status,
            200
        );
        let received = receiver.wait_for(3, Duration::from_secs(60));
        for (reply, path, kind, status) in [
            (&succeeded, "/succeeded", "operation.succeeded", "succeeded"),
            (&failed, "/failed", "operation.failed", "failed"),
            (&canceled, "/canceled", "operation.canceled", "canceled"),
        ] {
            let post = by_path(&received, path);
            assert!(
                post.signature_is_valid(SECRET),
                "{}: bad signature {post:#?}",
                env.name()
            );
            assert_eq!(post.header("content-type"), "application/json");
            // Sent with its length, not chunked.
            assert_eq!(post.header("content-length"), post.body.len().to_string());
            assert!(post.header("webhook-id").starts_with("msg_"));
            let event = post.json();
            assert_eq!(event["type"], kind, "{event}");
            assert_eq!(event["data"]["status"], status, "{event}");
            let operation = operation_path(reply);
            let settled = wait_for_delivery(env, &operation);
            assert_eq!(settled["webhook"]["status"], "delivered", "{settled}");
            assert_eq!(settled["webhook"]["attempts"], 1, "{settled}");
            assert_eq!(event["data"], operation_without_webhook(env, &operation));
            assert_eq!(event["timestamp"], event["data"]["lastUpdatedAt"]);
        }
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(receiver.received().len(), 3, "a second delivery");
    });
}

/// A receiver that answers 500 twice gets the same event a third time,
/// after the backoff, driven by the client's reads of the operation; every
/// attempt carries the same id and a valid signature of its own.
#[test]
fn a_receiver_failing_twice_gets_the_event_on_the_third_attempt() {
    for_each_target(with_webhooks, |env| {
        let receiver = WebhookReceiver::start();
        receiver.answer_next(&[500, 500]);
        let created =
            submit_with_hook(env, "", &images::png(16, 16), &receiver.url("/hook"), false);
        assert_eq!(created.status, 201);
        let settled = wait_for_delivery(env, &operation_path(&created));
        assert_eq!(settled["webhook"]["status"], "delivered", "{settled}");
        assert_eq!(settled["webhook"]["attempts"], 3, "{settled}");
        let received = receiver.received();
        let answered: Vec<u16> = received.iter().map(|r| r.answered).collect();
        assert_eq!(answered, [500, 500, 204]);
        assert!(received.iter().all(|r| r.signature_is_valid(SECRET)));
        let ids: Vec<&str> = received.iter().map(|r| r.header("webhook-id")).collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
        assert!(received.windows(2).all(|w| w[0].body == w[1].body));
    });
}

/// A `Webhook-Url` the operator does not allow is refused at submission,
/// and the receiver there never hears from Kiln.
#[test]
fn nothing_is_sent_to_a_host_that_is_not_allowed() {
    let allowed = WebhookReceiver::start();
    let other = WebhookReceiver::start();
    let only_allowed = || {
        Env::builder().variable("webhook_secret", SECRET).variable(
            "webhook_allowed_hosts",
            &format!("http://127.0.0.1:{}", allowed.port()),
        )
    };
    for_each_target(only_allowed, |env| {
        let refused = submit_with_hook(env, "", &images::png(16, 16), &other.url("/hook"), false);
        let problem = refused.problem(400);
        assert_eq!(problem["type"], "urn:kiln:problem:webhook-refused");
        assert!(
            env.store().keys().is_empty(),
            "stored: {:?}",
            env.store().keys()
        );
        // The receivers serve both targets: count from what came before.
        let delivered = allowed.received().len();
        let accepted =
            submit_with_hook(env, "", &images::png(16, 16), &allowed.url("/hook"), false);
        assert_eq!(accepted.status, 201);
        allowed.wait_for(delivered + 1, Duration::from_secs(30));
        env.settle();
        assert!(other.received().is_empty(), "{:#?}", other.received());
    });
}

/// Malformed, dangerous or disallowed `Webhook-Url` values are each a
/// `400` problem before anything is stored, and the service keeps serving.
#[test]
fn bad_webhook_urls_are_refused_before_anything_is_stored() {
    for_each_target(with_webhooks, |env| {
        let long = format!("http://127.0.0.1:9/{}", "a".repeat(2100));
        let bad: Vec<Vec<&str>> = vec![
            vec![""],
            vec!["/hooks/kiln"],
            vec!["127.0.0.1:9/hook"],
            vec!["ftp://127.0.0.1:9/hook"],
            vec!["javascript:alert(1)"],
            vec!["file:///etc/passwd"],
            vec!["http://user:secret@127.0.0.1:9/hook"],
            vec!["http://[::1"],
            vec!["http://127.0.0.1:9/hook#fragment"],
            vec!["http://127.0.0.1:9/a b"],
            vec!["http://10.0.0.1/hook"],
            vec!["http://127.0.0.1.evil.example/hook"],
            vec!["https://127.0.0.1:9/hook"],
            vec![&long],
            vec!["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"],
        ];
        for values in &bad {
            let mut headers: Vec<(&str, &str)> =
                values.iter().map(|v| ("webhook-url", *v)).collect();
            headers.push(("prefer", "respond-async"));
            let refused = env.submit("", "image/png", &images::png(8, 8), &headers);
            let problem = refused.problem(400);
            assert_eq!(
                problem["type"], "urn:kiln:problem:webhook-refused",
                "{values:?}"
            );
            assert!(
                env.store().keys().is_empty(),
                "{values:?} stored {:?}",
                env.store().keys()
            );
        }
        env.assert_still_serving();
    });
}

/// Without `webhook_secret`, a `Webhook-Url` is refused saying webhooks
/// are not configured (nothing could sign the event).
#[test]
fn webhooks_are_refused_when_not_configured() {
    for_each_target(Env::builder, |env| {
        let refused = submit_with_hook(
            env,
            "",
            &images::png(8, 8),
            "http://127.0.0.1:9/hook",
            false,
        );
        let problem = refused.problem(400);
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("not configured"),
            "{problem}"
        );
    });
}

/// On the Fermyon Cloud profile the instance that runs the job (the one
/// that accepted it) sends the event.
#[test]
fn the_cloud_profile_sends_webhooks_from_the_instance_that_ran_the_job() {
    for_each_target(
        || kiln_e2e::webhooks::enabled(Env::builder().cloud()),
        |env| {
            let receiver = WebhookReceiver::start();
            let accepted =
                submit_with_hook(env, "", &images::png(16, 16), &receiver.url("/cloud"), true);
            assert_eq!(accepted.status, 202, "{}", env.name());
            let post = &receiver.wait_for(1, Duration::from_secs(30))[0];
            assert!(post.signature_is_valid(SECRET), "{}", env.name());
            assert_eq!(post.json()["type"], "operation.succeeded");
        },
    );
}
