//! The contract where it depends on who runs a job and for how long: the
//! local dispatch of platforms without service chaining (Fermyon Cloud), the
//! lease kept alive through long stages, the platform's time limit, and the
//! store budget (what a job keeps, what a full store gets).

use super::tests::{
    FakeHost, contents, follow_ups, header, job_of, json, keys_of, long_encode, png,
    problem_status, submit_async_without_follow_ups,
};
use crate::config::Dispatch;
use crate::kv::{KvStore, MemoryKv};
use http::{Method, StatusCode};
use std::time::Duration;

fn local_host() -> FakeHost {
    let mut host = FakeHost::new();
    host.config.dispatch = Dispatch::Local;
    host
}

/// An asynchronous submission is answered 202 first; the same instance runs
/// the job after its answer.
#[test]
fn a_local_async_submission_is_run_after_its_202() {
    let host = local_host();
    let reply = submit_async_without_follow_ups(&host);
    assert_eq!(reply.response.status(), StatusCode::ACCEPTED);
    let location = header(&reply.response, "location").to_owned();
    assert_eq!(json(&host.get(&location))["status"], "notStarted");
    for f in reply.follow_ups {
        super::follow_up(&host.ctx(), f);
    }
    assert_eq!(json(&host.get(&location))["status"], "succeeded");
    assert_eq!(host.dispatches.get(), 0);
}

/// `wait=N` bounds the inline work: past it the client gets its 202, and
/// the job is run again after the answer, finishing with one claim counted.
#[test]
fn a_local_wait_that_runs_out_answers_202_and_the_job_still_finishes() {
    let host = local_host();
    host.tick.set(Duration::from_millis(100));
    let response = follow_ups(
        &host,
        long_encode(&host, &[("prefer", "respond-async, wait=2")]),
    );
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = header(&response, "location").to_owned();
    let job = job_of(&host, &location);
    assert_eq!(job.status, crate::job::Status::Succeeded, "{job:?}");
    assert_eq!(job.attempts, 1, "the pause counted as a crash");
}

/// However long one stage runs, a live processor renews its lease from
/// inside it: the lease never runs out, and the job is claimed once.
#[test]
fn a_stage_longer_than_several_leases_keeps_its_one_claim() {
    for dispatch in [Dispatch::Chained, Dispatch::Local] {
        let mut host = FakeHost::new();
        host.config.dispatch = dispatch;
        host.config.lease = Duration::from_secs(1);
        // About a hundred progress reports in the encode stage, 100 ms
        // apart: the stage outlasts ten leases.
        host.tick.set(Duration::from_millis(100));
        host.watch_leases.set(true);
        let response = follow_ups(&host, long_encode(&host, &[]));
        assert_eq!(response.status(), StatusCode::CREATED, "{dispatch:?}");
        let job = job_of(&host, header(&response, "location"));
        assert_eq!(job.attempts, 1, "{dispatch:?}");
        assert_eq!(host.lapsed_leases.get(), 0, "{dispatch:?}: a lease ran out");
    }
}

/// On a platform that stops a request after a time (Fermyon Cloud: 30 s),
/// work that cannot finish in it fails with a problem that says so, once,
/// instead of being retried until it has crashed `max_attempts` times.
#[test]
fn work_beyond_the_platforms_request_limit_fails_as_processing_too_long() {
    let mut host = local_host();
    host.config.request_timeout = Some(Duration::from_secs(30));
    host.tick.set(Duration::from_millis(500));
    let response = follow_ups(&host, long_encode(&host, &[]));
    assert_eq!(problem_status(&response), 422);
    let problem = json(&response);
    assert_eq!(problem["type"], "urn:kiln:problem:processing-too-long");
    assert!(problem["detail"].as_str().unwrap().contains("30 s"));
    let operation = problem["operation"].as_str().unwrap().to_owned();
    let job = job_of(&host, &operation);
    assert_eq!((job.status, job.attempts), (crate::job::Status::Failed, 1));
}

/// A long poll of a job nobody runs is answered at once with the local
/// dispatch: this instance runs the job after answering, and waiting first
/// would only delay it.
#[test]
fn a_local_long_poll_of_a_stuck_job_answers_at_once_and_runs_it_after() {
    let host = local_host();
    let accepted = submit_async_without_follow_ups(&host);
    let location = header(&accepted.response, "location").to_owned();
    host.advance(host.config.lease);
    let before = host.ctx().runtime.now();
    let poll =
        host.send_without_follow_ups(Method::GET, &location, &[("prefer", "wait=10")], vec![]);
    assert_eq!(host.ctx().runtime.now(), before, "the poll waited");
    assert_eq!(json(&poll.response)["status"], "notStarted");
    for f in poll.follow_ups {
        super::follow_up(&host.ctx(), f);
    }
    assert_eq!(json(&host.get(&location))["status"], "succeeded");
}

/// What a retained job costs the store: a succeeded job whose image fits
/// one chunk keeps its record and that chunk, and nothing of its upload.
#[test]
fn a_finished_job_keeps_only_its_record_and_its_result() {
    let mut host = FakeHost::new();
    host.config.blob_chunk_bytes = 1024;
    // An upload of several chunks, a result of one.
    let mut all = vec![("content-type", "image/png")];
    all.push(("prefer", "respond-async"));
    let accepted = host.send(Method::POST, "/images?ops=resize(w=8)", &all, png(64, 48));
    let location = header(&accepted, "location").to_owned();
    let succeeded = keys_of(&host.kv, &location);
    println!(
        "keys of a succeeded job: {}: {succeeded:?}",
        succeeded.len()
    );
    assert_eq!(json(&host.get(&location))["status"], "succeeded");
    assert_eq!(succeeded.len(), 2, "{succeeded:?}");
    assert!(succeeded.iter().any(|k| k.starts_with("kiln:job:")));

    host.processor.set(super::tests::Processor::Stalled);
    let stuck = host.submit(&[("prefer", "respond-async")], "");
    let location = header(&stuck, "location").to_owned();
    assert!(
        keys_of(&host.kv, &location).len() > 1,
        "the upload is stored"
    );
    host.send(Method::DELETE, &location, &[], vec![]);
    let canceled = keys_of(&host.kv, &location);
    println!("keys of a canceled job: {}: {canceled:?}", canceled.len());
    assert_eq!(canceled.len(), 1, "{canceled:?}");
}

/// A synchronous submission whose upload was stored but whose result the
/// store refuses is answered 202, not 503: the job exists and runs again
/// once the store takes writes.
#[test]
fn a_stored_job_whose_result_the_store_refuses_is_answered_202() {
    let mut host = local_host();
    host.config.blob_chunk_bytes = 1024;
    assert_eq!(
        host.submit(&[], "?ops=resize(w=8)").status(),
        StatusCode::CREATED
    );
    // Room for the next upload's chunks, marker and record, none for its
    // result.
    let upload = png(200, 200);
    let before = contents(&host.kv);
    let full = MemoryKv::with_max_keys(before.len() + upload.len().div_ceil(1024) + 2);
    for (key, value) in &before {
        full.set(key, value).unwrap();
    }
    host.kv = full;
    let all = [("content-type", "image/png")];
    let response = host.send(Method::POST, "/images?ops=resize(w=8)", &all, upload);
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let job = job_of(&host, header(&response, "location"));
    assert!(!job.status.is_terminal(), "{job:?}");
}

/// A store that refuses new keys (full, over its quota) gets the
/// submission a 503 with `Retry-After`, leaves no trace of it, and the
/// service goes on serving what it has.
#[test]
fn a_full_store_gets_503_leaves_nothing_behind_and_reads_go_on() {
    let mut host = FakeHost::new();
    host.config.blob_chunk_bytes = 1024;
    let first = host.submit(&[], "?ops=resize(w=8)");
    assert_eq!(first.status(), StatusCode::CREATED);
    let image = header(&first, "location").to_owned();
    // The same entries in a store with room for two more keys: the next
    // upload's chunks do not fit.
    let before = contents(&host.kv);
    let full = MemoryKv::with_max_keys(before.len() + 2);
    for (key, value) in &before {
        full.set(key, value).unwrap();
    }
    host.kv = full;
    let refused = host.send(
        Method::POST,
        "/images?ops=resize(w=8)",
        &[("content-type", "image/png"), ("prefer", "respond-async")],
        png(200, 200),
    );
    assert_eq!(problem_status(&refused), 503);
    assert_eq!(json(&refused)["type"], "urn:kiln:problem:store-unavailable");
    assert_eq!(header(&refused, "retry-after"), "1");
    assert_eq!(contents(&host.kv), before, "the refused upload left traces");
    assert_eq!(host.get(&image).status(), StatusCode::OK);
}

/// On the local dispatch the bound holds too: a job that finds every slot
/// held waits in the queue, and the instance whose job frees the slot runs
/// it next.
#[test]
fn a_local_job_waits_for_a_slot_and_the_instance_that_frees_it_runs_it() {
    let mut host = local_host();
    host.config.max_running_jobs = 1;
    let first = submit_async_without_follow_ups(&host);
    let first_id = crate::id::JobId::parse(json(&first.response)["id"].as_str().unwrap()).unwrap();
    let crate::processing::Claimed::Started { ticket, .. } =
        crate::processing::claim(&host.ctx(), first_id).unwrap()
    else {
        panic!("the first job takes the one slot");
    };
    host.advance(Duration::from_millis(1));
    let second = submit_async_without_follow_ups(&host);
    let second_location = header(&second.response, "location").to_owned();
    assert_eq!(json(&second.response)["queuePosition"], 1);
    for f in second.follow_ups {
        super::follow_up(&host.ctx(), f);
    }
    assert_eq!(
        job_of(&host, &second_location).status,
        crate::job::Status::NotStarted
    );
    super::follow_up(&host.ctx(), super::FollowUp::Process(ticket));
    assert_eq!(
        job_of(&host, &second_location).status,
        crate::job::Status::Succeeded
    );
}
