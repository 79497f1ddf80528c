//! `/images/{id}`: the result, cached forever, revalidated, deleted.

use kiln_e2e::images;
use kiln_e2e::{Env, for_each_target};

/// The image carries its exact type and length, a strong ETag and
/// immutable caching.
#[test]
fn an_image_is_served_with_validators_and_immutable_caching() {
    for_each_target(Env::builder, |env| {
        let created = env.submit("?ops=format(png)", "image/png", &images::png(16, 16), &[]);
        let image = env.get(&created.location(), &[]);
        assert_eq!(image.status, 200);
        assert_eq!(image.header("content-type"), "image/png");
        assert_eq!(image.header("content-length"), image.body.len().to_string());
        assert_eq!(image.body, created.body);
        let etag = image.header("etag");
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() > 10,
            "{etag}"
        );
        assert_eq!(
            image.header("cache-control"),
            "public, max-age=31536000, immutable"
        );
    });
}

/// `If-None-Match` with the image's ETag is 304 without a body.
#[test]
fn an_image_answers_304_to_its_etag() {
    for_each_target(Env::builder, |env| {
        let created = env.submit("", "image/png", &images::png(16, 16), &[]);
        let etag = created.header("etag").to_owned();
        let again = env.get(&created.location(), &[("if-none-match", &etag)]);
        assert_eq!(again.status, 304);
        assert!(again.body.is_empty());
        assert_eq!(again.header("etag"), etag);
        let other = env.get(
            &created.location(),
            &[("if-none-match", "\"something-else\"")],
        );
        assert_eq!(other.status, 200);
    });
}

/// `HEAD` has the headers of `GET`, without the body.
#[test]
fn head_of_an_image_matches_get() {
    for_each_target(Env::builder, |env| {
        let created = env.submit("", "image/png", &images::png(16, 16), &[]);
        let get = env.get(&created.location(), &[]);
        let head = env.send("HEAD", &created.location(), &[], &[]);
        assert_eq!(head.status, 200);
        for name in ["content-type", "content-length", "etag", "cache-control"] {
            assert_eq!(head.header(name), get.header(name), "{name}");
        }
    });
}

/// While its job is unfinished, an image is a 404 problem linking the
/// operation.
#[test]
fn an_unfinished_image_is_404_linking_its_operation() {
    let env = Env::start();
    env.faults().trap_writes("processor", "kiln:blob:", 1);
    let accepted = env.submit_async("", &images::png(16, 16));
    let id = accepted.operation_id();
    let problem = env.get(&format!("/images/{id}"), &[]).problem(404);
    assert_eq!(problem["operation"], format!("/operations/{id}"));
    assert_eq!(problem["type"], "urn:kiln:problem:image-not-ready");
}

/// `DELETE` answers 204 and removes the source, the result and the job.
#[test]
fn delete_removes_the_image_and_its_source() {
    for_each_target(Env::builder, |env| {
        let created = env.submit("", "image/png", &images::png(16, 16), &[]);
        let id = created.location().trim_start_matches("/images/").to_owned();
        assert!(!env.keys_of(&id).is_empty());
        let deleted = env.send("DELETE", &created.location(), &[], &[]);
        assert_eq!(deleted.status, 204);
        env.get(&created.location(), &[]).problem(404);
        env.get(&format!("/operations/{id}"), &[]).problem(404);
        let left = env.keys_of(&id);
        assert!(left.is_empty(), "{left:?}");
    });
}

/// Large images are stored in chunks of at most 256 KiB and come back whole.
#[test]
fn a_large_image_round_trips_through_chunks() {
    for_each_target(Env::builder, |env| {
        let big = images::noisy_png(1200, 900);
        assert!(
            big.len() > 256 * 1024,
            "the fixture should need several chunks"
        );
        let reply = env.submit("?ops=format(png)", "image/png", &big, &[]);
        assert_eq!(reply.status, 201);
        assert_eq!(images::inspect(&reply.body).1, 1200);
        // The handler goes on after its 201 (it deletes the upload's chunks), so a
        // listed key may be gone by the time it is read.
        for key in env.store().keys() {
            if let Some(value) = env.store().get(&key) {
                assert!(value.len() <= 256 * 1024, "{key} is too large");
            }
        }
    });
}
