//! Bounded processing through the HTTP contract: at most
//! `max_running_jobs` jobs run at once, the others wait their turn in
//! submission order, and a freed slot starts the next one at once.

use super::tests::{FakeHost, Processor, header, job_of, json, problem_status};
use crate::job::Status;
use http::StatusCode;
use std::time::Duration;

const ASYNC: (&str, &str) = ("prefer", "respond-async");

fn one_slot() -> FakeHost {
    let mut host = FakeHost::new();
    host.config.max_running_jobs = 1;
    host
}

/// A job submitted while every slot is held is not dispatched: it waits as
/// `notStarted`, and its operation says where it stands in the queue.
#[test]
fn a_job_submitted_while_every_slot_is_held_waits_with_its_place_in_the_queue() {
    let host = one_slot();
    host.processor.set(Processor::Stalled);
    let running = host.submit(&[ASYNC], "?ops=resize(w=8)");
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            host.advance(Duration::from_millis(1));
            host.submit(&[ASYNC], "?ops=resize(w=8)")
        })
        .collect();
    assert_eq!(
        host.dispatches.get(),
        1,
        "only the first job was dispatched"
    );
    assert_eq!(
        job_of(&host, header(&running, "location")).status,
        Status::Running
    );
    for (place, response) in waiting.iter().enumerate() {
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(json(response)["status"], "notStarted");
        assert_eq!(json(response)["queuePosition"], place + 1);
        let operation = host.get(header(response, "location"));
        assert_eq!(json(&operation)["queuePosition"], place + 1);
        assert_eq!(header(&operation, "retry-after"), (place + 1).to_string());
    }
}

/// The processor that finishes a job starts the oldest waiting one, so the
/// queue drains in submission order with nobody polling.
#[test]
fn a_finished_job_starts_the_oldest_waiting_one_and_the_queue_drains_in_order() {
    let host = one_slot();
    host.processor.set(Processor::Stalled);
    let first = host.submit(&[ASYNC], "?ops=resize(w=8)");
    let later: Vec<String> = (0..3)
        .map(|_| {
            // Jobs accepted in the same millisecond have no order.
            host.advance(Duration::from_millis(1));
            header(&host.submit(&[ASYNC], "?ops=resize(w=8)"), "location").to_owned()
        })
        .collect();
    host.resume();
    let order: Vec<String> = host
        .dispatched
        .borrow()
        .iter()
        .map(|id| format!("/operations/{id}"))
        .collect();
    let mut expected = vec![header(&first, "location").to_owned()];
    expected.extend(later.iter().cloned());
    assert_eq!(order, expected);
    for location in &later {
        assert_eq!(job_of(&host, location).status, Status::Succeeded);
    }
}

/// A synchronous request obeys the same bound: with every slot held it
/// waits (up to `max_wait_seconds`), then answers `202` with its place.
#[test]
fn a_synchronous_request_waits_for_a_slot_then_answers_202() {
    let host = one_slot();
    host.processor.set(Processor::Stalled);
    host.submit(&[ASYNC], "?ops=resize(w=8)");
    let before = host.now_millis();
    let response = host.submit(&[("prefer", "wait=3")], "?ops=resize(w=8)");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(json(&response)["status"], "notStarted");
    assert_eq!(json(&response)["queuePosition"], 1);
    assert!(
        host.now_millis() - before >= 3_000,
        "answered before its wait"
    );
}

/// With `max_queued_jobs` waiting, a submission is refused with `503` and
/// `Retry-After` before anything of it is stored.
#[test]
fn a_full_queue_refuses_submissions_with_503_and_retry_after() {
    let mut host = one_slot();
    host.config.max_queued_jobs = Some(2);
    host.processor.set(Processor::Stalled);
    for _ in 0..3 {
        host.submit(&[ASYNC], "?ops=resize(w=8)");
    }
    let keys_before = host.kv.keys();
    let refused = host.submit(&[ASYNC], "?ops=resize(w=8)");
    assert_eq!(problem_status(&refused), 503);
    assert_eq!(json(&refused)["type"], "urn:kiln:problem:queue-full");
    assert_eq!(header(&refused, "retry-after"), "2");
    assert_eq!(host.kv.keys(), keys_before);
}

/// A processor that died keeps its slot only until its job's lease runs
/// out; then a read of a waiting job starts it.
#[test]
fn a_dead_processors_slot_comes_back_after_its_lease() {
    let host = one_slot();
    host.processor.set(Processor::Stalled);
    host.submit(&[ASYNC], "?ops=resize(w=8)");
    host.stalled.take();
    let waiting = host.submit(&[ASYNC], "?ops=resize(w=8)");
    let location = header(&waiting, "location").to_owned();
    host.processor.set(Processor::Working);
    host.advance(Duration::from_secs(14));
    host.get(&location);
    assert_eq!(job_of(&host, &location).status, Status::NotStarted);
    host.advance(Duration::from_secs(2));
    host.get(&location);
    assert_eq!(job_of(&host, &location).status, Status::Succeeded);
}
