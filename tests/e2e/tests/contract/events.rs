//! `GET /operations/{id}` with `Accept: text/event-stream`: the operation's
//! changes pushed as Server-Sent Events, read by a streaming client as they
//! arrive.

use kiln_e2e::events::{Event, EventExt};
use kiln_e2e::{Env, for_each_target, images};
use std::time::Duration;

/// The statuses of `events`, each once, in the order first seen.
fn statuses(events: &[Event]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for event in events {
        assert_eq!(event.kind, "status", "{event:?}");
        let status = event.json()["status"].as_str().unwrap().to_owned();
        if seen.last() != Some(&status) {
            seen.push(status);
        }
    }
    seen
}

fn assert_ids_increase(events: &[Event]) {
    let versions: Vec<u64> = events.iter().map(Event::version).collect();
    assert!(
        versions.windows(2).all(|pair| pair[0] < pair[1]),
        "event ids do not increase: {versions:?}"
    );
}

/// One stream follows a job from `notStarted` through `running` to
/// `succeeded`, in order, and ends after it. The first processor dies as it
/// claims the job, so the job is still waiting when the stream opens; the
/// stream re-dispatches it once its lease has run out. A client that
/// reconnects with the last id it saw gets `204` (nothing more will come),
/// and one that saw only the first event gets just the final state.
#[test]
fn a_stream_follows_a_job_to_the_end_and_resumes_without_repeating() {
    let env = Env::builder().variable("lease_seconds", "1").start();
    env.faults().trap_writes("processor", "kiln:job:", 1);
    let accepted = env.submit_async(kiln_e2e::SLOW_OPS, &images::noisy_png(1000, 1000));
    let location = accepted.location();

    let mut stream = env.events(&location, &[]);
    assert_eq!(stream.status, 200);
    let events = stream.rest();
    assert_eq!(
        statuses(&events),
        ["notStarted", "running", "succeeded"],
        "{events:#?}"
    );
    assert_ids_increase(&events);
    let last = events.last().unwrap();
    assert_eq!(last.json(), env.get(&location, &[]).json());

    let last_id = last.id.clone().unwrap();
    let done = env.events(&location, &[("last-event-id", &last_id)]);
    assert_eq!(done.status, 204);

    let first_id = events[0].id.clone().unwrap();
    let resumed = env
        .events(&location, &[("last-event-id", &first_id)])
        .rest();
    assert_eq!(resumed.len(), 1, "{resumed:#?}");
    assert_eq!(resumed[0], *last);
}

/// The stream is live: an event is delivered while the stream stays open,
/// and a change made after that (a cancel) arrives on the same stream,
/// which then ends. Its headers say what it is and that it is not to be
/// cached.
#[test]
fn a_change_made_while_the_stream_is_open_arrives_on_it() {
    for_each_target(Env::builder, |env| {
        let accepted = env.submit_async(kiln_e2e::SLOW_OPS, &images::noisy_png(1000, 1000));
        let location = accepted.location();
        let mut stream = env.events(&location, &[]);
        assert_eq!(stream.status, 200, "{}", env.name());
        assert_eq!(stream.header("content-type"), "text/event-stream");
        assert_eq!(stream.header("cache-control"), "no-store");
        assert_eq!(stream.header("vary"), "Accept, Origin");
        let first = stream.next_event().expect("the current state at once");
        assert_ne!(first.json()["status"], "canceled");

        let canceled = env.send("DELETE", &location, &[], &[]);
        assert_eq!(canceled.status, 200, "{}", env.name());
        let rest = stream.rest();
        let last = rest.last().expect("events after the cancel");
        assert_eq!(last.json()["status"], "canceled", "{rest:#?}");
        assert_ids_increase(&[vec![first], rest.clone()].concat());
        env.wait_until_finished(&location, Duration::from_secs(30));
    });
}
