//! A new job joins the indexes after its `202` (see [`crate::listing`]):
//! what the answer waits for, and what becomes of a job whose instance
//! died in between.

use super::tests::{
    FakeHost, contents, header, id_of, json, keys_of, png, submit_async_without_follow_ups,
};
use super::{FollowUp, follow_up};
use crate::id::JobId;
use crate::keys;
use crate::kv::KvStore;
use crate::retention;
use http::{Method, StatusCode};
use std::time::Duration;

/// The keys written or changed since `before` (from [`contents`]).
fn changed_since(host: &FakeHost, before: &[(String, Vec<u8>)]) -> Vec<String> {
    contents(&host.kv)
        .into_iter()
        .filter(|entry| !before.contains(entry))
        .map(|(key, _)| key)
        .collect()
}

/// Whether job `id` still has its unlisted marker.
fn marked(host: &FakeHost, id: JobId) -> bool {
    host.kv.get(&keys::unlisted(id)).unwrap().is_some()
}

/// Before its `202`, a submission writes its upload, its record and its
/// marker (one batch), and no shared key: the indexes wait for the answer
/// to be out. Then its follow-ups list it, drop the marker and run it.
#[test]
fn a_respond_async_answer_waits_for_the_upload_alone_and_the_indexes_follow() {
    let host = FakeHost::new();
    // The indexes exist already, as they do on a store in use.
    host.submit(&[], "?ops=resize(w=8)");
    let before = contents(&host.kv);
    let reply = submit_async_without_follow_ups(&host);
    assert_eq!(reply.response.status(), StatusCode::ACCEPTED);
    let location = header(&reply.response, "location").to_owned();
    let id = id_of(&location).to_string();
    let changed = changed_since(&host, &before);
    assert!(
        changed.iter().all(|key| key.contains(&id)),
        "shared keys written before the answer: {changed:?}"
    );
    assert!(changed.contains(&keys::unlisted(id_of(&location))));
    for f in reply.follow_ups {
        follow_up(&host.ctx(), f);
    }
    assert_eq!(json(&host.get(&location))["status"], "succeeded");
    assert!(!marked(&host, id_of(&location)), "the marker stays");
}

/// An instance that dies between the `202` and its follow-ups leaves a job
/// stored but in no index. It is left alone for a lease (its instance may
/// still be listing it), then a later request's maintenance lists and
/// starts it, and it expires and is swept like any other: nothing of it
/// is left.
#[test]
fn a_job_left_unlisted_by_a_dead_instance_runs_after_a_lease_and_expires() {
    let host = FakeHost::new();
    let reply = submit_async_without_follow_ups(&host);
    let lost = header(&reply.response, "location").to_owned();
    drop(reply.follow_ups);

    host.advance(host.config.lease / 2);
    host.submit(&[], "?ops=resize(w=8)");
    assert_eq!(json(&host.get(&lost))["status"], "notStarted");
    assert!(marked(&host, id_of(&lost)));

    host.advance(host.config.lease);
    host.submit(&[], "?ops=resize(w=8)");
    assert_eq!(json(&host.get(&lost))["status"], "succeeded");
    assert!(!marked(&host, id_of(&lost)));

    host.advance(host.config.retention + Duration::from_secs(120));
    host.submit(&[], "?ops=resize(w=8)");
    assert_eq!(host.get(&lost).status(), StatusCode::NOT_FOUND);
    assert_eq!(keys_of(&host.kv, &lost), Vec::<String>::new());
}

/// A job deleted before its follow-ups ran takes its marker with it, and
/// the late follow-up brings nothing back.
#[test]
fn a_job_deleted_before_it_was_listed_leaves_nothing() {
    let host = FakeHost::new();
    let reply = submit_async_without_follow_ups(&host);
    let location = header(&reply.response, "location").to_owned();
    let image = location.replace("/operations/", "/images/");
    assert_eq!(
        host.send(Method::DELETE, &image, &[], Vec::new()).status(),
        StatusCode::NO_CONTENT
    );
    for f in reply.follow_ups {
        follow_up(&host.ctx(), f);
    }
    assert_eq!(keys_of(&host.kv, &location), Vec::<String>::new());
    let listed = [keys::queue(0), keys::pending(0)];
    for key in listed {
        let members = crate::keyset::members(&host.kv, &key).unwrap();
        assert!(
            members
                .iter()
                .all(|m| !m.contains(&id_of(&location).to_string())),
            "{key}: {members:?}"
        );
    }
}

/// A synchronous submission that nobody waits ahead of runs at once, and
/// is listed, and its marker dropped, after its answer.
#[test]
fn a_synchronous_submission_runs_first_and_is_listed_after_its_answer() {
    let host = FakeHost::new();
    host.submit(&[], "?ops=resize(w=8)");
    let before = contents(&host.kv);
    let reply = host.send_without_follow_ups(
        Method::POST,
        "/images?ops=resize(w=8)",
        &[("content-type", "image/png")],
        png(64, 48),
    );
    assert_eq!(reply.response.status(), StatusCode::CREATED);
    let location = header(&reply.response, "location").to_owned();
    let id = id_of(&location);
    let retention_bucket_keys: Vec<String> = changed_since(&host, &before)
        .into_iter()
        .filter(|key| key.starts_with("kiln:retention"))
        .collect();
    assert_eq!(retention_bucket_keys, Vec::<String>::new());
    assert_eq!(reply.follow_ups[0], FollowUp::List(id));
    for f in reply.follow_ups {
        follow_up(&host.ctx(), f);
    }
    assert!(!marked(&host, id));
    let bucket_members: Vec<String> = host
        .kv
        .keys()
        .into_iter()
        .filter(|key| key.starts_with("kiln:retention:"))
        .flat_map(|key| crate::keyset::members(&host.kv, &key).unwrap())
        .collect();
    assert!(
        bucket_members.contains(&id.to_string()),
        "{bucket_members:?}"
    );
}

/// A synchronous submission behind a waiting job is listed before it
/// waits, so that it is started in its turn, after the job ahead (here a
/// job whose dispatch was lost).
#[test]
fn a_synchronous_submission_behind_a_waiting_job_is_listed_and_waits_its_turn() {
    let host = FakeHost::new();
    host.processor.set(super::tests::Processor::Unreachable);
    let ahead = host.submit(&[("prefer", "respond-async")], "?ops=resize(w=8)");
    let ahead = id_of(header(&ahead, "location"));
    host.processor.set(super::tests::Processor::Working);
    // Jobs of one millisecond have no order between them.
    host.advance(Duration::from_millis(10));
    let reply = host.send_without_follow_ups(
        Method::POST,
        "/images?ops=resize(w=8)",
        &[("content-type", "image/png"), ("prefer", "wait=1")],
        png(64, 48),
    );
    assert_eq!(reply.response.status(), StatusCode::ACCEPTED);
    let id = id_of(header(&reply.response, "location"));
    // Listed before its answer, behind the job ahead.
    assert_eq!(crate::queue::oldest(&host.ctx(), 2).unwrap(), [ahead, id]);
}

/// On a store whose batches are not atomic, an upload can land with its
/// marker and without its record: the scan then deletes what it left.
#[test]
fn a_marker_without_its_record_takes_the_upload_with_it() {
    let host = FakeHost::new();
    let id = JobId::random();
    crate::blob::write(&host.kv, keys::source_blob(id), &[7; 3000], 1024).unwrap();
    let created_at = host.now_millis().to_string();
    host.kv
        .set(&keys::unlisted(id), created_at.as_bytes())
        .unwrap();

    host.advance(host.config.lease + Duration::from_secs(1));
    host.submit(&[], "?ops=resize(w=8)");
    let left: Vec<String> = host
        .kv
        .keys()
        .into_iter()
        .filter(|key| key.contains(&id.to_string()))
        .collect();
    assert_eq!(left, Vec::<String>::new());
}

/// A submission with an `Idempotency-Key` whose instance died after
/// storing its job but before binding the key leaves a job nobody was
/// told about; the client's retry makes another. The first is never
/// listed, so never run, and the scan discards it: one job for the key.
#[test]
fn a_job_whose_instance_died_before_binding_its_key_is_discarded() {
    let host = FakeHost::new();
    let key = [
        ("content-type", "image/png"),
        ("idempotency-key", "retry-me"),
    ];
    // What it left: the job stored, not run, not listed (a 202's state
    // before its follow-ups).
    let async_key = [key[0], key[1], ("prefer", "respond-async")];
    let first = host.send_without_follow_ups(
        Method::POST,
        "/images?ops=resize(w=8)",
        &async_key,
        png(64, 48),
    );
    let orphan = header(&first.response, "location").to_owned();
    // As if it died before binding: the key names nothing.
    let entry = crate::idempotency::IdempotencyKey::parse(b"retry-me")
        .unwrap()
        .entry_key();
    crate::idempotency::unbind(&host.kv, &entry, id_of(&orphan)).unwrap();

    let retry = host.send(Method::POST, "/images?ops=resize(w=8)", &key, png(64, 48));
    assert_eq!(retry.status(), StatusCode::CREATED);
    let kept = header(&retry, "location").to_owned();
    assert_ne!(id_of(&kept), id_of(&orphan));

    host.advance(host.config.lease + Duration::from_secs(1));
    host.submit(&[], "?ops=resize(w=8)");
    assert_eq!(keys_of(&host.kv, &orphan), Vec::<String>::new());
    let replay = host.send(Method::POST, "/images?ops=resize(w=8)", &key, png(64, 48));
    assert_eq!(id_of(header(&replay, "location")), id_of(&kept));
    assert_eq!(host.get(&kept).status(), StatusCode::OK);
}

/// A key used again once its job expired names the new job; sweeping the
/// expired one afterwards leaves that binding, and the new job is listed
/// and run as any other.
#[test]
fn sweeping_an_expired_job_leaves_its_keys_new_job_alone() {
    let host = FakeHost::new();
    let key = [
        ("content-type", "image/png"),
        ("idempotency-key", "again"),
        ("prefer", "respond-async"),
    ];
    let expired = host.send(Method::POST, "/images", &key, png(16, 16));
    let expired = header(&expired, "location").to_owned();
    host.advance(host.config.retention + Duration::from_secs(1));
    let again = host.send_without_follow_ups(Method::POST, "/images", &key, png(16, 16));
    let again_location = header(&again.response, "location").to_owned();
    assert_ne!(id_of(&again_location), id_of(&expired));

    // Another request's maintenance sweeps the expired job first.
    host.advance(retention::bucket_width(host.config.retention));
    host.submit(&[], "?ops=resize(w=8)");
    assert_eq!(keys_of(&host.kv, &expired), Vec::<String>::new());
    for f in again.follow_ups {
        follow_up(&host.ctx(), f);
    }
    assert_eq!(json(&host.get(&again_location))["status"], "succeeded");
    let replay = host.send(Method::POST, "/images", &key, png(16, 16));
    assert_eq!(header(&replay, "location"), again_location);
}
