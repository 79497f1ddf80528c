//! API keys across the routes: every route × {no key, wrong key, another
//! key, the right key}, keys on and off, and nothing changed in the store
//! by a refused request.

use super::tests::{FakeHost, Processor, header, json, problem_status};
use super::*;
use crate::access::ApiKeys;
use crate::idempotency::hex;
use http::{Method, StatusCode};
use sha2::{Digest, Sha256};

const ALICE: &str = "alice-key-7f3c";
const BOB: &str = "bob-key-09ad";

fn hash(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

fn with_keys(for_reads: bool) -> FakeHost {
    let mut host = FakeHost::new();
    host.config.api_keys =
        ApiKeys::parse(&format!("alice:{} bob:{}", hash(ALICE), hash(BOB))).unwrap();
    host.config.api_keys_for_reads = for_reads;
    host
}

/// Who calls: no key, a key that is not one, another client's key, or
/// the key that created the job (see [`authorization`]).
#[derive(Debug, Clone, Copy)]
enum Caller {
    Anonymous,
    Impostor,
    OtherClient,
    Creator,
}

const CALLERS: [Caller; 4] = [
    Caller::Anonymous,
    Caller::Impostor,
    Caller::OtherClient,
    Caller::Creator,
];

fn authorization(caller: Caller) -> Vec<(&'static str, String)> {
    match caller {
        Caller::Anonymous => vec![],
        Caller::Impostor => vec![("authorization", "Bearer not-a-key".into())],
        Caller::OtherClient => vec![("authorization", format!("Bearer {BOB}"))],
        Caller::Creator => vec![("authorization", format!("Bearer {ALICE}"))],
    }
}

fn send(host: &FakeHost, method: Method, path: &str, caller: Caller) -> Response {
    let owned = authorization(caller);
    let headers: Vec<(&str, &str)> = owned.iter().map(|(n, v)| (*n, v.as_str())).collect();
    host.send(method, path, &headers, Vec::new())
}

/// Alice's job, finished, and its operation and image paths.
fn alices_finished_job(host: &FakeHost) -> (String, String) {
    let bearer = format!("Bearer {ALICE}");
    let accepted = host.submit(
        &[("prefer", "respond-async"), ("authorization", &bearer)],
        "",
    );
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let operation = header(&accepted, "location").to_owned();
    let image = operation.replace("/operations/", "/images/");
    (operation, image)
}

/// What the store holds, to show a refused request changed nothing.
fn snapshot(host: &FakeHost) -> Vec<(String, Vec<u8>)> {
    let mut keys = host.kv.keys();
    keys.sort();
    keys.into_iter()
        .map(|key| {
            let value = crate::kv::KvStore::get(&host.kv, &key).unwrap().unwrap();
            (key, value)
        })
        .collect()
}

/// `401` with the challenge RFC 6750 asks for; `403` for another's key.
fn assert_refused(response: &Response, caller: Caller, route: &str) {
    match caller {
        Caller::Anonymous => {
            assert_eq!(problem_status(response), 401, "{route} {caller:?}");
            assert_eq!(
                header(response, "www-authenticate"),
                r#"Bearer realm="kiln""#
            );
        }
        Caller::Impostor => {
            assert_eq!(problem_status(response), 401, "{route} {caller:?}");
            assert_eq!(
                header(response, "www-authenticate"),
                r#"Bearer realm="kiln", error="invalid_token""#
            );
        }
        Caller::OtherClient => {
            assert_eq!(problem_status(response), 403, "{route} {caller:?}");
            assert_eq!(json(response)["type"], "urn:kiln:problem:forbidden");
        }
        Caller::Creator => panic!("{route}: the right key is never refused"),
    }
    let body = String::from_utf8_lossy(response.body());
    assert!(!body.contains(ALICE) && !body.contains(BOB) && !body.contains(&hash(ALICE)));
}

#[test]
fn submitting_needs_a_valid_key_and_a_refused_upload_stores_nothing() {
    let host = with_keys(false);
    for caller in [Caller::Anonymous, Caller::Impostor] {
        let before = snapshot(&host);
        let owned = authorization(caller);
        let mut headers: Vec<(&str, &str)> = owned.iter().map(|(n, v)| (*n, v.as_str())).collect();
        headers.push(("prefer", "respond-async"));
        let refused = host.submit(&headers, "");
        assert_refused(&refused, caller, "POST /images");
        assert_eq!(snapshot(&host), before, "{caller:?} changed the store");
        assert_eq!(host.dispatches.get(), 0);
    }
    for caller in [Caller::OtherClient, Caller::Creator] {
        let owned = authorization(caller);
        let headers: Vec<(&str, &str)> = owned.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_eq!(host.submit(&headers, "").status(), StatusCode::CREATED);
    }
}

#[test]
fn only_the_key_that_created_a_job_cancels_it() {
    let host = with_keys(false);
    host.processor.set(Processor::Stalled);
    let (operation, _) = alices_finished_job(&host);
    for caller in CALLERS {
        let before = snapshot(&host);
        let answer = send(&host, Method::DELETE, &operation, caller);
        if let Caller::Creator = caller {
            assert_eq!(answer.status(), StatusCode::OK);
            assert_eq!(json(&answer)["status"], "canceled");
        } else {
            assert_refused(&answer, caller, "DELETE /operations/{id}");
            assert_eq!(snapshot(&host), before, "{caller:?} changed the store");
        }
    }
}

#[test]
fn only_the_key_that_created_a_job_deletes_its_image() {
    let host = with_keys(false);
    let (operation, image) = alices_finished_job(&host);
    for caller in CALLERS {
        let before = snapshot(&host);
        let answer = send(&host, Method::DELETE, &image, caller);
        if let Caller::Creator = caller {
            assert_eq!(answer.status(), StatusCode::NO_CONTENT);
            assert_eq!(problem_status(&host.get(&operation)), 404);
        } else {
            assert_refused(&answer, caller, "DELETE /images/{id}");
            assert_eq!(snapshot(&host), before, "{caller:?} changed the store");
        }
    }
}

/// Reads stay capability URLs: any caller who has the id reads.
#[test]
fn reads_need_no_key_unless_the_deployment_asks() {
    let host = with_keys(false);
    let (operation, image) = alices_finished_job(&host);
    for caller in CALLERS {
        for path in [&operation, &image] {
            let read = send(&host, Method::GET, path, caller);
            assert_eq!(read.status(), StatusCode::OK, "{path} {caller:?}");
        }
    }
}

#[test]
fn with_keys_for_reads_only_the_creator_reads_the_operation_and_image() {
    let host = with_keys(true);
    let (operation, image) = alices_finished_job(&host);
    for caller in CALLERS {
        for (method, path) in [
            (Method::GET, &operation),
            (Method::HEAD, &operation),
            (Method::GET, &image),
        ] {
            let read = send(&host, method.clone(), path, caller);
            if let Caller::Creator = caller {
                assert_eq!(read.status(), StatusCode::OK, "{method} {path}");
            } else if method == Method::HEAD {
                assert!(
                    read.status().is_client_error(),
                    "{method} {path} {caller:?}"
                );
            } else {
                assert_refused(&read, caller, &format!("{method} {path}"));
            }
        }
    }
}

/// Keys off (the default): `Authorization` is ignored, whatever it says.
#[test]
fn with_keys_off_any_caller_does_everything() {
    let host = FakeHost::new();
    for caller in CALLERS {
        let owned = authorization(caller);
        let mut headers: Vec<(&str, &str)> = owned.iter().map(|(n, v)| (*n, v.as_str())).collect();
        headers.push(("prefer", "respond-async"));
        let accepted = host.submit(&headers, "");
        assert_eq!(accepted.status(), StatusCode::ACCEPTED, "{caller:?}");
        let operation = header(&accepted, "location").to_owned();
        let image = operation.replace("/operations/", "/images/");
        assert_eq!(send(&host, Method::GET, &operation, caller).status(), 200);
        assert_eq!(send(&host, Method::DELETE, &image, caller).status(), 204);
    }
}

/// Another key reusing an `Idempotency-Key` makes its own request: it is
/// never handed the first key's job, nor told it exists.
#[test]
fn an_idempotency_key_is_never_a_way_into_another_keys_job() {
    let host = with_keys(false);
    let alice = format!("Bearer {ALICE}");
    let bob = format!("Bearer {BOB}");
    let first = host.submit(
        &[
            ("prefer", "respond-async"),
            ("idempotency-key", "\"order-1\""),
            ("authorization", &alice),
        ],
        "",
    );
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let again = host.submit(
        &[
            ("prefer", "respond-async"),
            ("idempotency-key", "\"order-1\""),
            ("authorization", &bob),
        ],
        "",
    );
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert_ne!(header(&again, "location"), header(&first, "location"));
    let retried = host.submit(
        &[
            ("prefer", "respond-async"),
            ("idempotency-key", "\"order-1\""),
            ("authorization", &alice),
        ],
        "",
    );
    assert_eq!(header(&retried, "location"), header(&first, "location"));
}

/// With keys on, a deletion without a valid key is refused before the
/// store is read: it cannot even learn whether the id exists.
#[test]
fn a_deletion_without_a_valid_key_never_reaches_the_store() {
    let host = with_keys(false);
    host.kv.set_failing(true);
    let id = crate::id::JobId::random();
    for path in [format!("/operations/{id}"), format!("/images/{id}")] {
        for caller in [Caller::Anonymous, Caller::Impostor] {
            let refused = send(&host, Method::DELETE, &path, caller);
            assert_refused(&refused, caller, &format!("DELETE {path}"));
        }
    }
    host.kv.set_failing(false);
    let unknown = send(
        &host,
        Method::DELETE,
        &format!("/images/{id}"),
        Caller::Creator,
    );
    assert_eq!(problem_status(&unknown), 404);
}

/// An image whose reads need a key is never stored by a shared cache,
/// which would hand it to callers without one.
#[test]
fn an_image_whose_reads_need_a_key_is_only_privately_cacheable() {
    let host = with_keys(true);
    let (_, image) = alices_finished_job(&host);
    let read = send(&host, Method::GET, &image, Caller::Creator);
    assert_eq!(
        header(&read, "cache-control"),
        "private, max-age=31536000, immutable"
    );
    let etag = header(&read, "etag").to_owned();
    let bearer = format!("Bearer {ALICE}");
    let revalidated = host.send(
        Method::GET,
        &image,
        &[("authorization", &bearer), ("if-none-match", &etag)],
        Vec::new(),
    );
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(
        header(&revalidated, "cache-control"),
        "private, max-age=31536000, immutable"
    );
    // Without a key, revalidation does not tell whether the tag matched.
    let guess = host.send(Method::GET, &image, &[("if-none-match", &etag)], Vec::new());
    assert_eq!(problem_status(&guess), 401);
    // Nor does an event stream of the operation start.
    let operation = image.replace("/images/", "/operations/");
    let stream = host.send(
        Method::GET,
        &operation,
        &[("accept", "text/event-stream")],
        Vec::new(),
    );
    assert_eq!(problem_status(&stream), 401);
    let public = with_keys(false);
    let (_, image) = alices_finished_job(&public);
    let read = send(&public, Method::GET, &image, Caller::Anonymous);
    assert_eq!(
        header(&read, "cache-control"),
        "public, max-age=31536000, immutable"
    );
}

/// Keys turned off after a job was created under reads-need-a-key: nobody
/// can show that key any more, so nobody reads, cancels or deletes it.
#[test]
fn with_keys_turned_off_a_protected_job_is_neither_read_nor_changed() {
    let mut host = with_keys(true);
    host.processor.set(Processor::Stalled);
    let (operation, image) = alices_finished_job(&host);
    host.config.api_keys = None;
    let before = snapshot(&host);
    for (method, path) in [
        (Method::GET, &operation),
        (Method::DELETE, &operation),
        (Method::DELETE, &image),
    ] {
        let refused = send(&host, method.clone(), path, Caller::Creator);
        assert_eq!(problem_status(&refused), 401, "{method} {path}");
    }
    assert_eq!(snapshot(&host), before);
}
