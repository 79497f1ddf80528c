//! Bad input: each gets its documented 4xx problem, and the app keeps
//! serving.

use kiln_e2e::images;
use kiln_e2e::{Env, Reply, for_each_target};
use std::time::{Duration, Instant};

fn problem_type(reply: &Reply, status: u16) -> String {
    reply.problem(status)["type"].as_str().unwrap().to_owned()
}

/// Truncated and corrupt JPEG and PNG bodies are 4xx problems, never 500.
#[test]
fn truncated_and_corrupt_images_are_client_errors() {
    for_each_target(Env::builder, |env| {
        let cases = [
            ("image/jpeg", images::truncated(&images::jpeg(64, 64))),
            ("image/jpeg", images::corrupt(&images::jpeg(64, 64))),
            ("image/png", images::truncated(&images::png(64, 64))),
            ("image/png", images::corrupt(&images::png(64, 64))),
        ];
        for (content_type, body) in cases {
            let reply = env.submit("", content_type, &body, &[]);
            assert!(
                [415, 422].contains(&reply.status),
                "{content_type}: {} {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            );
            reply.problem(reply.status);
            env.assert_still_serving();
        }
    });
}

/// A corrupt image accepted asynchronously ends `failed` with a problem.
#[test]
fn a_corrupt_image_accepted_async_fails_with_a_problem() {
    let env = Env::start();
    let body = images::truncated(&images::png(256, 256));
    let reply = env.submit("", "image/png", &body, &[("prefer", "respond-async")]);
    if reply.status == 422 {
        return; // refused from its header already: fine too
    }
    assert_eq!(reply.status, 202);
    let done = env.wait_until_finished(&reply.location(), Duration::from_secs(60));
    let operation = done.json();
    assert_eq!(operation["status"], "failed", "{operation}");
    assert_eq!(operation["error"]["status"], 422, "{operation}");
}

/// A PNG whose header claims 100000×100000 pixels is refused from the
/// header, at once, without decoding.
#[test]
fn a_decompression_bomb_is_refused_from_its_header() {
    for_each_target(Env::builder, |env| {
        let start = Instant::now();
        let reply = env.submit(
            "",
            "image/png",
            &images::png_header_only(100_000, 100_000),
            &[],
        );
        assert_eq!(
            problem_type(&reply, 422),
            "urn:kiln:problem:unprocessable-image"
        );
        assert!(start.elapsed() < Duration::from_secs(10));
        env.assert_still_serving();
    });
}

/// Ops that would produce too many pixels are refused before processing.
#[test]
fn too_many_output_pixels_are_refused() {
    for_each_target(
        || Env::builder().variable("max_output_pixels", "10000"),
        |env| {
            let reply = env.submit(
                "?ops=resize(w=1000,h=1000,fit=fill)",
                "image/png",
                &images::png(8, 8),
                &[],
            );
            reply.problem(422);
        },
    );
}

/// A body over `max_upload_bytes` is 413, with or without `Content-Length`.
#[test]
fn a_body_over_the_limit_is_413() {
    for_each_target(
        || Env::builder().variable("max_upload_bytes", "1000"),
        |env| {
            let big = images::noisy_png(64, 64);
            assert!(big.len() > 1000);
            let reply = env.submit("", "image/png", &big, &[]);
            assert_eq!(
                problem_type(&reply, 413),
                "urn:kiln:problem:content-too-large"
            );
            env.assert_still_serving();
        },
    );
}

/// Sends raw bytes and returns the status line of the answer.
fn raw_status_line(env: &Env, request: &[u8]) -> String {
    use std::io::{BufRead, BufReader, Write};
    let address = env.base_url().trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request).expect("send");
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .expect("an answer before the body was sent");
    line
}

/// A declared `Content-Length` over the limit is refused before the body is
/// sent at all.
#[test]
fn a_declared_length_over_the_limit_is_413_before_the_body() {
    for_each_target(Env::builder, |env| {
        let request = b"POST /images HTTP/1.1\r\nHost: kiln\r\nContent-Type: image/png\r\n\
                        Content-Length: 1000000000\r\n\r\n";
        let line = raw_status_line(env, request);
        assert!(line.starts_with("HTTP/1.1 413"), "{line}");
    });
}

/// A chunked body (no `Content-Length`) is cut off at the limit too.
#[test]
fn a_chunked_body_over_the_limit_is_413() {
    let env = Env::builder().variable("max_upload_bytes", "1000").start();
    let png = images::noisy_png(64, 64);
    let mut request = b"POST /images HTTP/1.1\r\nHost: kiln\r\nContent-Type: image/png\r\n\
                        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        .to_vec();
    for chunk in png.chunks(500) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let line = raw_status_line(&env, &request);
    assert!(line.starts_with("HTTP/1.1 413"), "{line}");
    env.assert_still_serving();
}

/// A body whose bytes contradict its `Content-Type`, a missing or an
/// unsupported type: 415.
#[test]
fn wrong_content_types_are_415() {
    for_each_target(Env::builder, |env| {
        let png = images::png(8, 8);
        for content_type in [
            "image/jpeg",
            "text/plain",
            "image/bmp",
            "application/octet-stream",
        ] {
            let reply = env.submit("", content_type, &png, &[]);
            assert_eq!(
                problem_type(&reply, 415),
                "urn:kiln:problem:unsupported-media-type",
                "{content_type}"
            );
        }
        let untyped = env.send("POST", "/images", &[], &png);
        untyped.problem(415);
        let not_an_image = env.submit("", "image/png", b"hello, world", &[]);
        not_an_image.problem(415);
        env.assert_still_serving();
    });
}

/// An empty body is 400.
#[test]
fn an_empty_body_is_400() {
    for_each_target(Env::builder, |env| {
        let reply = env.submit("", "image/png", &[], &[]);
        assert_eq!(problem_type(&reply, 400), "urn:kiln:problem:bad-request");
    });
}

/// Unknown and malformed ops are 400 problems that say what is wrong.
#[test]
fn unknown_and_malformed_ops_are_400() {
    for_each_target(Env::builder, |env| {
        for ops in [
            "sharpn",
            "resize(w=abc)",
            "resize(",
            "rotate(45)",
            "blur(sigma=0)",
            "",
            "crop(x=1)",
        ] {
            let reply = env.submit(&format!("?ops={ops}"), "image/png", &images::png(8, 8), &[]);
            let problem = reply.problem(400);
            assert!(
                problem["detail"].as_str().unwrap().contains("ops"),
                "{ops}: {problem}"
            );
        }
        env.assert_still_serving();
    });
}

/// A crop outside the image is a 4xx problem, not a crash.
#[test]
fn a_crop_outside_the_image_is_422() {
    for_each_target(Env::builder, |env| {
        let reply = env.submit(
            "?ops=crop(x=100,y=100,w=10,h=10)",
            "image/png",
            &images::png(8, 8),
            &[],
        );
        reply.problem(422);
    });
}

/// Ids that are not UUIDs — with `/`, `..`, `%00`, 10 KB long — are 404
/// problems and never reach the store.
#[test]
fn malformed_ids_are_404() {
    for_each_target(Env::builder, |env| {
        let long = "a".repeat(10_000);
        for id in [
            "a/b",
            "..",
            "../../etc/passwd",
            "%00",
            "%2e%2e",
            &long,
            "6F9619FF-8B86-D011-B42D-00C04FC964FF",
        ] {
            for resource in ["operations", "images"] {
                let reply = env.get(&format!("/{resource}/{id}"), &[]);
                reply.problem(404);
            }
        }
        env.assert_still_serving();
    });
}

/// Malformed `Prefer` values are ignored, as RFC 7240 says.
#[test]
fn malformed_prefer_is_ignored() {
    for_each_target(Env::builder, |env| {
        for prefer in [
            "wait=soon",
            "respond-async=maybe",
            ";;;",
            "wait=\"unterminated",
            "return=everything",
        ] {
            let reply = env.submit("", "image/png", &images::png(8, 8), &[("prefer", prefer)]);
            assert_eq!(reply.status, 201, "Prefer: {prefer}");
        }
    });
}

/// A malformed `Idempotency-Key` is 400.
#[test]
fn a_malformed_idempotency_key_is_400() {
    for_each_target(Env::builder, |env| {
        let long = "k".repeat(300);
        for key in ["\"unterminated", "\"\"", "has space", &long] {
            let reply = env.submit(
                "",
                "image/png",
                &images::png(8, 8),
                &[("idempotency-key", key)],
            );
            reply.problem(400);
        }
    });
}

/// Wrong methods are 405 with `Allow`.
#[test]
fn wrong_methods_are_405_with_allow() {
    for_each_target(Env::builder, |env| {
        let id = kiln::JobId::random();
        let cases = [
            ("GET", "/images".to_owned(), "POST"),
            ("PUT", "/images".to_owned(), "POST"),
            ("POST", format!("/operations/{id}"), "GET, HEAD, DELETE"),
            ("PATCH", format!("/images/{id}"), "GET, HEAD, DELETE"),
        ];
        for (method, path, allow) in cases {
            let reply = env.send(method, &path, &[], &[]);
            assert_eq!(
                problem_type(&reply, 405),
                "urn:kiln:problem:method-not-allowed"
            );
            assert_eq!(reply.header("allow"), allow, "{method} {path}");
        }
    });
}
