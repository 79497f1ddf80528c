//! Bad input: each gets its documented 4xx problem, and the app keeps
//! serving.

use kiln_e2e::images;
use kiln_e2e::{Env, Reply, for_each_target};
use std::time::{Duration, Instant};

fn problem_type(reply: &Reply, status: u16) -> String {
    reply.problem(status)["type"].as_str().unwrap().to_owned()
}

const UNPROCESSABLE: &str = "urn:kiln:problem:unprocessable-image";

/// Submits each upload with `headers`, asserting a `422 unprocessable-image`
/// for each, then that the app still serves.
fn assert_each_refused_as_unprocessable(
    env: &Env,
    uploads: impl IntoIterator<Item = (&'static str, &'static str, Vec<u8>)>,
    headers: &[(&str, &str)],
) {
    for (content_type, damage, body) in uploads {
        let reply = env.submit("", content_type, &body, headers);
        assert_eq!(
            problem_type(&reply, 422),
            UNPROCESSABLE,
            "{content_type} {damage}"
        );
    }
    env.assert_still_serving();
}

/// A generated image of each format, with its media type.
fn every_format() -> [(&'static str, Vec<u8>); 4] {
    [
        ("image/jpeg", images::jpeg(96, 64)),
        ("image/png", images::png(96, 64)),
        ("image/gif", images::gif(96, 64)),
        ("image/webp", images::webp(96, 64)),
    ]
}

/// Each format cut in half, and missing only its last byte.
fn truncated_uploads() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    every_format()
        .into_iter()
        .flat_map(|(content_type, bytes)| {
            [
                (content_type, "cut in half", images::truncated(&bytes)),
                (
                    content_type,
                    "without its last byte",
                    images::without_last_byte(&bytes),
                ),
            ]
        })
        .collect()
}

/// Each format's first bytes followed by garbage, to the original length.
fn garbled_uploads() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    every_format()
        .into_iter()
        .map(|(content_type, bytes)| (content_type, "header then garbage", images::corrupt(&bytes)))
        .collect()
}

/// A truncated or garbled upload of any format is `422 unprocessable-image`,
/// never processed into a half-grey image; the app keeps serving.
#[test]
fn damaged_uploads_of_every_format_are_422_unprocessable_image() {
    for_each_target(Env::builder, |env| {
        let uploads = truncated_uploads().into_iter().chain(garbled_uploads());
        assert_each_refused_as_unprocessable(env, uploads, &[]);
    });
}

/// A truncated upload sent with `Prefer: respond-async` is refused at once
/// with the same `422`, before anything is stored: it never becomes an
/// operation, so it can never end `succeeded`.
#[test]
fn truncated_async_uploads_are_refused_at_once() {
    for_each_target(Env::builder, |env| {
        let headers = [("prefer", "respond-async")];
        assert_each_refused_as_unprocessable(env, truncated_uploads(), &headers);
    });
}

/// A garbled upload sent with `Prefer: respond-async` is either refused at
/// once or accepted (when its structure is intact, only its content
/// damaged) and then ends `failed` with the `422` problem: never
/// `succeeded`.
#[test]
fn garbled_async_uploads_never_succeed() {
    for_each_target(Env::builder, |env| {
        for (content_type, damage, body) in garbled_uploads() {
            let reply = env.submit("", content_type, &body, &[("prefer", "respond-async")]);
            let problem = if reply.status == 202 {
                let done = env.wait_until_finished(&reply.location(), Duration::from_secs(60));
                let operation = done.json();
                assert_eq!(operation["status"], "failed", "{content_type}: {operation}");
                operation["error"].clone()
            } else {
                reply.problem(422)
            };
            assert_eq!(problem["status"], 422, "{content_type} {damage}: {problem}");
            assert_eq!(problem["type"], UNPROCESSABLE, "{content_type} {damage}");
        }
        env.assert_still_serving();
    });
}

/// A refused truncated upload leaves nothing in the store: no source
/// chunks, no job, no index entry.
#[test]
fn a_refused_truncated_upload_stores_nothing() {
    for_each_target(Env::builder, |env| {
        let before = env.store().keys();
        let inline: &[(&str, &str)] = &[];
        let async_: &[(&str, &str)] = &[("prefer", "respond-async")];
        for (content_type, bytes) in every_format() {
            for headers in [inline, async_] {
                let body = images::without_last_byte(&bytes);
                env.submit("", content_type, &body, headers).problem(422);
            }
        }
        assert_eq!(env.store().keys(), before);
    });
}

/// Whole files whose pixel data is damaged (a PNG failing its CRC, a JPEG
/// scan no Huffman table decodes) pass the cheap checks at submission and
/// are found out by decoding: `422` when processed inline, and an
/// asynchronous job ends `failed` with that problem, never `succeeded`.
#[test]
fn damaged_pixel_data_fails_with_422_inline_and_async() {
    for_each_target(Env::builder, |env| {
        let cases = [
            ("image/png", images::png_with_a_flipped_bit(96, 64)),
            ("image/jpeg", images::jpeg_with_an_undecodable_scan(96, 64)),
        ];
        for (content_type, body) in cases {
            let inline = env.submit("", content_type, &body, &[]);
            assert_eq!(problem_type(&inline, 422), UNPROCESSABLE, "{content_type}");

            let accepted = env.submit("", content_type, &body, &[("prefer", "respond-async")]);
            assert_eq!(accepted.status, 202, "{content_type}");
            let done = env.wait_until_finished(&accepted.location(), Duration::from_secs(60));
            let operation = done.json();
            assert_eq!(operation["status"], "failed", "{content_type}: {operation}");
            assert_eq!(operation["error"]["status"], 422, "{operation}");
            assert_eq!(operation["error"]["type"], UNPROCESSABLE, "{operation}");
        }
        env.assert_still_serving();
    });
}

/// Whole images followed by bytes that belong to none are accepted, as
/// libvips and browsers accept them.
#[test]
fn trailing_bytes_after_a_whole_image_are_ignored() {
    for_each_target(Env::builder, |env| {
        for (content_type, mut body) in every_format() {
            body.extend_from_slice(b"\0\0 trailing bytes");
            let reply = env.submit("", content_type, &body, &[]);
            assert_eq!(reply.status, 201, "{content_type}");
        }
    });
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
        assert_eq!(problem_type(&reply, 422), UNPROCESSABLE);
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
    for_each_target(
        || Env::builder().variable("max_upload_bytes", "1000"),
        |env| {
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
            let line = raw_status_line(env, &request);
            assert!(line.starts_with("HTTP/1.1 413"), "{line}");
            env.assert_still_serving();
        },
    );
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
            ("GET", "/images".to_owned(), "POST, OPTIONS"),
            ("PUT", "/images".to_owned(), "POST, OPTIONS"),
            (
                "POST",
                format!("/operations/{id}"),
                "GET, HEAD, DELETE, OPTIONS",
            ),
            (
                "PATCH",
                format!("/images/{id}"),
                "GET, HEAD, DELETE, OPTIONS",
            ),
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
