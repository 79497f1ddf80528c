//! `GET /operations/{id}` as Server-Sent Events, natively: what the stream
//! carries, in which order, when it ends, and how a reconnection resumes.

use super::tests::{FakeHost, Processor, follow_ups, header, png};
use http::{Method, StatusCode};

const EVENT_STREAM: (&str, &str) = ("accept", "text/event-stream");

/// A `respond-async` job whose processor claimed it and never ran it: it
/// changes only when the test changes it.
fn stalled_job(host: &FakeHost) -> String {
    host.processor.set(Processor::Stalled);
    let accepted = host.send(
        Method::POST,
        "/images",
        &[("content-type", "image/png"), ("prefer", "respond-async")],
        png(16, 16),
    );
    header(&accepted, "location").to_owned()
}

/// The events in a stream's text: (id, the operation's status).
fn events(text: &[u8]) -> Vec<(u64, String)> {
    let text = std::str::from_utf8(text).unwrap();
    text.split("\n\n")
        .filter(|block| block.contains("event: status"))
        .map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .unwrap_or_else(|| panic!("no {name} in {block:?}"))
                    .to_owned()
            };
            let data: serde_json::Value = serde_json::from_str(&field("data: ")).unwrap();
            (
                field("id: ").parse().unwrap(),
                data["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The stream opens with the operation's current state as an event, with
/// the headers an `EventSource` and caches need, and then carries each
/// change (here a cancel) until the job is finished, where it ends.
#[test]
fn the_stream_sends_the_current_state_then_each_change_and_ends_when_finished() {
    let host = FakeHost::new();
    let location = stalled_job(&host);
    let mut reply =
        host.send_without_follow_ups(Method::GET, &location, &[EVENT_STREAM], Vec::new());
    let response = &reply.response;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(response, "content-type"), "text/event-stream");
    assert_eq!(header(response, "cache-control"), "no-store");
    assert_eq!(header(response, "vary"), "Accept, Origin");
    assert!(response.body().starts_with(b"retry: 1000\n\n"));
    let first = events(response.body());
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1, "running");

    let canceled = host.send(Method::DELETE, &location, &[], Vec::new());
    assert_eq!(canceled.status(), StatusCode::OK);
    let mut stream = reply.stream.take().expect("an event stream");
    let next = stream
        .next_event(&host.ctx())
        .expect("the cancel as an event");
    let next = events(&next);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].1, "canceled");
    assert!(
        next[0].0 > first[0].0,
        "event ids increase: {first:?} {next:?}"
    );
    assert_eq!(
        stream.next_event(&host.ctx()),
        None,
        "ended after the terminal event"
    );
}

/// With nothing changing (its processor unreachable), the stream ends
/// after `max_wait_seconds`, so an instance is never held longer than a
/// long-poll would hold it.
#[test]
fn an_unchanging_job_ends_the_stream_after_max_wait() {
    let host = FakeHost::new();
    let location = stalled_job(&host);
    host.processor.set(Processor::Unreachable);
    let mut reply =
        host.send_without_follow_ups(Method::GET, &location, &[EVENT_STREAM], Vec::new());
    let mut stream = reply.stream.take().unwrap();
    let opened = crate::runtime::Runtime::now(&host);
    assert_eq!(stream.next_event(&host.ctx()), None);
    let ended = crate::runtime::Runtime::now(&host);
    assert!(ended >= opened.after(host.config.max_wait));
}

/// A job whose processor died is re-dispatched by the stream watching it
/// once its lease runs out, so the client sees it through to the end
/// without reconnecting.
#[test]
fn the_stream_redispatches_a_job_whose_processor_died() {
    let host = FakeHost::new();
    let location = stalled_job(&host);
    let mut reply =
        host.send_without_follow_ups(Method::GET, &location, &[EVENT_STREAM], Vec::new());
    assert_eq!(events(reply.response.body())[0].1, "running");
    host.processor.set(Processor::Working);
    let mut stream = reply.stream.take().unwrap();
    let mut statuses = Vec::new();
    while let Some(event) = stream.next_event(&host.ctx()) {
        statuses.extend(events(&event).into_iter().map(|(_, status)| status));
    }
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("succeeded"),
        "{statuses:?}"
    );
}

/// A reconnecting client that sends the last id it saw gets only newer
/// events; one that saw a finished job's last event gets `204`, which
/// tells an `EventSource` to stop reconnecting.
#[test]
fn last_event_id_resumes_without_repeating() {
    let host = FakeHost::new();
    let accepted = host.submit(&[("prefer", "respond-async")], "?ops=format(jpeg)");
    let location = header(&accepted, "location").to_owned();
    let all = host.send_without_follow_ups(Method::GET, &location, &[EVENT_STREAM], Vec::new());
    let seen = events(all.response.body());
    assert_eq!(seen.len(), 1);
    let (last_id, status) = seen[0].clone();
    assert_eq!(status, "succeeded");

    let resumed = host.send(
        Method::GET,
        &location,
        &[EVENT_STREAM, ("last-event-id", &last_id.to_string())],
        Vec::new(),
    );
    assert_eq!(resumed.status(), StatusCode::NO_CONTENT);

    let earlier = (last_id - 1).to_string();
    let mut reply = host.send_without_follow_ups(
        Method::GET,
        &location,
        &[EVENT_STREAM, ("last-event-id", &earlier)],
        Vec::new(),
    );
    assert_eq!(events(reply.response.body()), seen);
    assert_eq!(reply.stream.take().unwrap().next_event(&host.ctx()), None);
}

/// Without `text/event-stream` named, a read stays the JSON document (a
/// wildcard does not open a stream), and says that it varies with `Accept`.
#[test]
fn only_a_named_event_stream_turns_a_read_into_a_stream() {
    let host = FakeHost::new();
    let location = stalled_job(&host);
    for accept in ["*/*", "application/json", "text/event-stream;q=0"] {
        let reply =
            host.send_without_follow_ups(Method::GET, &location, &[("accept", accept)], Vec::new());
        assert!(reply.stream.is_none(), "{accept}");
        assert_eq!(header(&reply.response, "content-type"), "application/json");
        assert_eq!(header(&reply.response, "vary"), "Prefer, Accept, Origin");
        follow_ups(&host, reply);
    }
}
