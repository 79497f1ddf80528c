//! CORS: what a browser page on another origin is told, on each resource.

use super::tests::{FakeHost, header, json, problem_status};
use super::*;
use crate::config::{Config, LazyConfig};
use http::{Method, StatusCode};
use std::cell::Cell;

const PAGE: &str = "https://app.example.com";

fn allowing(origins: &str) -> FakeHost {
    let mut host = FakeHost::new();
    host.config.cors_allowed_origins = AllowedOrigins::parse(origins).unwrap();
    host
}

fn preflight(host: &FakeHost, path: &str, origin: &str, method: &str) -> Response {
    host.send(
        Method::OPTIONS,
        path,
        &[
            ("origin", origin),
            ("access-control-request-method", method),
            (
                "access-control-request-headers",
                "content-type,idempotency-key,prefer",
            ),
        ],
        Vec::new(),
    )
}

fn maybe<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

#[test]
fn a_page_of_a_listed_origin_may_submit_and_read_the_protocols_headers() {
    let host = allowing("https://app.example.com http://localhost:8080");
    let accepted = host.submit(&[("origin", PAGE), ("prefer", "respond-async")], "");
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&accepted, "access-control-allow-origin"), PAGE);
    let exposed = header(&accepted, "access-control-expose-headers");
    for name in [
        "Location",
        "Content-Location",
        "Preference-Applied",
        "Retry-After",
        "ETag",
        "Link",
    ] {
        assert!(exposed.contains(name), "{name} not exposed: {exposed}");
    }
    assert_eq!(header(&accepted, "vary"), "Prefer, Origin");

    let operation = header(&accepted, "location").to_owned();
    let read = host.send(Method::GET, &operation, &[("origin", PAGE)], Vec::new());
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(header(&read, "access-control-allow-origin"), PAGE);
    // The same resource read without `Origin` says it varies with it, so a
    // cache never hands that answer to a page.
    let plain = host.get(&operation);
    assert_eq!(maybe(&plain, "access-control-allow-origin"), None);
    assert_eq!(header(&plain, "vary"), "Prefer, Accept, Origin");
    // Revalidation and problems are answered to the page too.
    let etag = header(&read, "etag").to_owned();
    let revalidated = host.send(
        Method::GET,
        &operation,
        &[("origin", PAGE), ("if-none-match", &etag)],
        Vec::new(),
    );
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&revalidated, "access-control-allow-origin"), PAGE);
    assert_eq!(header(&revalidated, "vary"), "Prefer, Accept, Origin");
    let id = crate::id::JobId::random();
    let missing = host.send(
        Method::GET,
        &format!("/operations/{id}"),
        &[("origin", PAGE)],
        Vec::new(),
    );
    assert_eq!(problem_status(&missing), 404);
    assert_eq!(header(&missing, "access-control-allow-origin"), PAGE);
}

#[test]
fn a_preflight_from_a_listed_origin_names_the_methods_and_headers_kiln_reads() {
    let host = allowing(PAGE);
    let answer = preflight(&host, "/images", PAGE, "POST");
    assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    assert!(answer.body().is_empty());
    assert_eq!(header(&answer, "access-control-allow-origin"), PAGE);
    assert!(header(&answer, "access-control-allow-methods").contains("POST"));
    let headers = header(&answer, "access-control-allow-headers");
    for name in [
        "Content-Type",
        "Idempotency-Key",
        "Prefer",
        "Authorization",
        "Webhook-Url",
    ] {
        assert!(headers.contains(name), "{name} not allowed: {headers}");
    }
    assert_eq!(header(&answer, "access-control-max-age"), "7200");

    let id = crate::id::JobId::random();
    let on_operation = preflight(&host, &format!("/operations/{id}"), PAGE, "DELETE");
    assert_eq!(on_operation.status(), StatusCode::NO_CONTENT);
    assert!(header(&on_operation, "access-control-allow-methods").contains("DELETE"));
    // A preflight stores nothing.
    assert!(host.kv.keys().is_empty(), "{:?}", host.kv.keys());
}

#[test]
fn another_origin_is_refused_at_preflight_and_never_told_it_may_read() {
    let host = allowing(PAGE);
    let refused = preflight(&host, "/images", "https://evil.example", "POST");
    assert_eq!(problem_status(&refused), 403);
    assert_eq!(
        json(&refused)["type"],
        "urn:kiln:problem:origin-not-allowed"
    );
    assert_eq!(maybe(&refused, "access-control-allow-origin"), None);
    let id = crate::id::JobId::random();
    let read = host.send(
        Method::GET,
        &format!("/operations/{id}"),
        &[("origin", "https://evil.example")],
        Vec::new(),
    );
    assert_eq!(problem_status(&read), 404);
    assert_eq!(maybe(&read, "access-control-allow-origin"), None);
    assert_eq!(maybe(&read, "access-control-expose-headers"), None);
}

#[test]
fn cross_origin_requests_are_off_by_default() {
    let host = FakeHost::new();
    assert_eq!(host.config.cors_allowed_origins, None);
    let refused = preflight(&host, "/images", PAGE, "POST");
    assert_eq!(problem_status(&refused), 403);
    let accepted = host.submit(&[("origin", PAGE), ("prefer", "respond-async")], "");
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    assert_eq!(maybe(&accepted, "access-control-allow-origin"), None);
}

#[test]
fn a_star_lets_any_page_call_the_api() {
    let host = allowing("*");
    let answer = preflight(&host, "/images", "http://localhost:3000", "POST");
    assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&answer, "access-control-allow-origin"), "*");
    let accepted = host.submit(&[("origin", "null"), ("prefer", "respond-async")], "");
    assert_eq!(header(&accepted, "access-control-allow-origin"), "*");
}

#[test]
fn a_preflight_for_a_method_the_resource_does_not_answer_is_405() {
    let host = allowing(PAGE);
    let answer = preflight(&host, "/images", PAGE, "DELETE");
    assert_eq!(problem_status(&answer), 405);
    assert_eq!(header(&answer, "allow"), "POST, OPTIONS");
    let answer = preflight(&host, "/images", PAGE, "OPTIONS");
    assert_eq!(problem_status(&answer), 405);
}

/// `OPTIONS` without a preflight's headers is answered with `Allow`, and
/// reads nothing from the store.
#[test]
fn a_plain_options_lists_the_methods_without_touching_the_store() {
    let host = FakeHost::new();
    host.kv.set_failing(true);
    let on_collection = host.send(Method::OPTIONS, "/images", &[], Vec::new());
    assert_eq!(on_collection.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&on_collection, "allow"), "POST, OPTIONS");
    let id = crate::id::JobId::random();
    let on_image = host.send(Method::OPTIONS, &format!("/images/{id}"), &[], Vec::new());
    assert_eq!(on_image.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&on_image, "allow"), "GET, HEAD, DELETE, OPTIONS");
    // A malformed id names no resource, for OPTIONS as for every method.
    let malformed = host.send(Method::OPTIONS, "/images/not-an-id", &[], Vec::new());
    assert_eq!(problem_status(&malformed), 404);
}

/// The commonest request, a status read by a program, reads no variable:
/// only a request carrying `Origin` needs the allow-list.
#[test]
fn only_a_request_with_origin_reads_the_configuration() {
    let host = allowing(PAGE);
    let accepted = host.submit(&[("prefer", "respond-async")], "");
    let operation = header(&accepted, "location").to_owned();
    let reads = Cell::new(0);
    let config = host.config.clone();
    let read = || -> Result<Config, String> {
        reads.set(reads.get() + 1);
        Ok(config.clone())
    };
    let status_read = |headers: &[(&str, &str)]| {
        let lazy = LazyConfig::new(&read);
        let ctx = crate::runtime::Ctx {
            config: crate::config::ConfigRef::OnFirstUse(&lazy),
            ..host.ctx()
        };
        let mut request = http::Request::builder().uri(operation.as_str());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        handle_resources(request.body(Vec::new()).unwrap(), &ctx).response
    };
    assert_eq!(status_read(&[]).status(), StatusCode::OK);
    assert_eq!(reads.get(), 0);
    let from_page = status_read(&[("origin", PAGE)]);
    assert_eq!(header(&from_page, "access-control-allow-origin"), PAGE);
    assert_eq!(reads.get(), 1);
}
