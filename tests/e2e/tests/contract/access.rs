//! API keys, set as an operator sets them (hashes in the `api_keys`
//! variable): every route × {no key, wrong key, another key, the right
//! key}, with keys on and off, and what a refused request leaves in the
//! store (nothing changed).

use kiln_e2e::{Env, EnvBuilder, Reply, for_each_target, images};
use std::time::Duration;

const ALICE: &str = "alice-e2e-2f81c0";
const BOB: &str = "bob-e2e-77d1aa";

/// Who calls: no key, a key that is not one, another client's key, or
/// the key that created the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

fn keys_on(for_reads: bool) -> impl Fn() -> EnvBuilder {
    move || {
        Env::builder()
            .api_keys(&[("alice", ALICE), ("bob", BOB)])
            .variable(
                "api_keys_for_reads",
                if for_reads { "true" } else { "false" },
            )
    }
}

fn bearer(caller: Caller) -> Option<String> {
    match caller {
        Caller::Anonymous => None,
        Caller::Impostor => Some("Bearer not-a-key".into()),
        Caller::OtherClient => Some(format!("Bearer {BOB}")),
        Caller::Creator => Some(format!("Bearer {ALICE}")),
    }
}

fn send(
    env: &Env,
    method: &str,
    path: &str,
    caller: Caller,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let authorization = bearer(caller);
    let mut headers: Vec<(&str, &str)> = extra.to_vec();
    if let Some(value) = &authorization {
        headers.push(("authorization", value));
    }
    env.send(method, path, &headers, body)
}

/// A small PNG submitted asynchronously by `caller`.
fn submit(env: &Env, caller: Caller) -> Reply {
    let png = images::png(64, 48);
    let headers = [("content-type", "image/png"), ("prefer", "respond-async")];
    send(
        env,
        "POST",
        "/images?ops=resize(w=32)",
        caller,
        &headers,
        &png,
    )
}

/// Alice's job, finished and settled; its id.
fn alices_job(env: &Env) -> String {
    let accepted = submit(env, Caller::Creator);
    assert_eq!(accepted.status, 202, "{}", env.name());
    // Followed with Alice's key: reads may need it.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let read = send(
            env,
            "GET",
            &accepted.location(),
            Caller::Creator,
            &[("prefer", "wait=5")],
            b"",
        );
        assert_eq!(read.status, 200, "{}", env.name());
        if read.json()["status"] == "succeeded" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Alice's job did not finish"
        );
    }
    env.settle();
    accepted.operation_id()
}

/// What the store holds of job `id`: its keys and its record.
fn job_state(env: &Env, id: &str) -> (Vec<String>, Option<Vec<u8>>) {
    let mut keys = env.keys_of(id);
    keys.sort();
    (keys, env.store().get(&format!("kiln:job:{id}")))
}

fn assert_refused(reply: &Reply, caller: Caller, what: &str) {
    let (status, slug) = match caller {
        Caller::Anonymous | Caller::Impostor => (401, "unauthorized"),
        Caller::OtherClient => (403, "forbidden"),
        Caller::Creator => panic!("{what}: the right key is never refused"),
    };
    assert_eq!(
        reply.problem(status)["type"],
        format!("urn:kiln:problem:{slug}"),
        "{what} {caller:?}"
    );
    if status == 401 {
        assert!(
            reply
                .header("www-authenticate")
                .starts_with("Bearer realm=\"kiln\"")
        );
    }
}

#[test]
fn with_keys_on_each_route_answers_each_caller_as_documented() {
    for_each_target(keys_on(false), |env| {
        // Submitting: a valid key, whichever.
        for caller in CALLERS {
            let jobs_before = env.store().keys_with_prefix("kiln:job:").len();
            let reply = submit(env, caller);
            match caller {
                Caller::Anonymous | Caller::Impostor => {
                    assert_refused(&reply, caller, "POST /images");
                    let jobs_after = env.store().keys_with_prefix("kiln:job:").len();
                    assert_eq!(jobs_after, jobs_before, "{caller:?} stored a job");
                }
                _ => assert_eq!(reply.status, 202, "{} {caller:?}", env.name()),
            }
        }
        let id = alices_job(env);
        let operation = format!("/operations/{id}");
        let image = format!("/images/{id}");
        // Reads stay capability URLs.
        for caller in CALLERS {
            assert_eq!(send(env, "GET", &operation, caller, &[], b"").status, 200);
            assert_eq!(send(env, "GET", &image, caller, &[], b"").status, 200);
        }
        // Cancel and delete: only Alice; a refusal changes nothing.
        for caller in CALLERS {
            let before = job_state(env, &id);
            let cancel = send(env, "DELETE", &operation, caller, &[], b"");
            if caller == Caller::Creator {
                // Alice may; the job has finished, so there is nothing to cancel.
                assert_eq!(cancel.problem(409)["type"], "urn:kiln:problem:conflict");
                continue;
            }
            assert_refused(&cancel, caller, "DELETE /operations/{id}");
            let delete = send(env, "DELETE", &image, caller, &[], b"");
            assert_refused(&delete, caller, "DELETE /images/{id}");
            env.settle();
            assert_eq!(job_state(env, &id), before, "{caller:?} changed job {id}");
        }
        let deleted = send(env, "DELETE", &image, Caller::Creator, &[], b"");
        assert_eq!(deleted.status, 204, "{}", env.name());
        assert_eq!(env.get(&operation, &[]).status, 404);
    });
}

#[test]
fn with_keys_for_reads_only_the_creator_reads() {
    for_each_target(keys_on(true), |env| {
        let id = alices_job(env);
        for path in [format!("/operations/{id}"), format!("/images/{id}")] {
            for caller in CALLERS {
                let read = send(env, "GET", &path, caller, &[], b"");
                if caller == Caller::Creator {
                    assert_eq!(read.status, 200, "{} {path}", env.name());
                } else {
                    assert_refused(&read, caller, &format!("GET {path}"));
                }
            }
        }
    });
}

#[test]
fn with_keys_off_the_authorization_header_changes_nothing() {
    for_each_target(Env::builder, |env| {
        for caller in CALLERS {
            let accepted = submit(env, caller);
            assert_eq!(accepted.status, 202, "{} {caller:?}", env.name());
            let done = env.wait_until_finished(&accepted.location(), Duration::from_secs(60));
            let image = done.json()["resourceLocation"].as_str().unwrap().to_owned();
            assert_eq!(send(env, "DELETE", &image, caller, &[], b"").status, 204);
        }
    });
}
