//! Browser pages on other origins (CORS), with `cors_allowed_origins` set
//! as an operator sets it: through the app's variables.

use kiln_e2e::spin::free_port;
use kiln_e2e::{Env, EnvBuilder, for_each_target, images};

/// A page origin other than the app's (`http://127.0.0.1:<port>`).
const PAGE: &str = "http://localhost:9";
/// Another one, which the app does not list.
const OTHER: &str = "http://localhost:8";

fn allowing_the_page() -> EnvBuilder {
    Env::builder().variable(
        "cors_allowed_origins",
        &format!("{PAGE} https://app.example.com"),
    )
}

/// The preflight a browser sends before a page's asynchronous submission,
/// and what an unlisted origin is told; as curl would see them.
#[test]
fn a_listed_origins_preflight_is_answered_and_another_is_refused() {
    for_each_target(allowing_the_page, |env| {
        let preflight = |origin: &str| {
            env.send(
                "OPTIONS",
                "/images",
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", "content-type,prefer"),
                ],
                b"",
            )
        };
        let answer = preflight(PAGE);
        assert_eq!(answer.status, 204, "{}", env.name());
        assert_eq!(answer.header("access-control-allow-origin"), PAGE);
        assert!(
            answer
                .header("access-control-allow-methods")
                .contains("POST")
        );
        let allowed = answer.header("access-control-allow-headers");
        assert!(
            allowed.contains("Prefer") && allowed.contains("Content-Type"),
            "{allowed}"
        );
        let refused = preflight(OTHER);
        assert_eq!(
            refused.problem(403)["type"],
            "urn:kiln:problem:origin-not-allowed"
        );
        assert_eq!(refused.maybe_header("access-control-allow-origin"), None);
        let plain = env.send("OPTIONS", "/images", &[], b"");
        assert_eq!(
            (plain.status, plain.header("allow")),
            (204, "POST, OPTIONS")
        );
    });
}

/// With no variable set (the default), no page on another origin is
/// allowed.
#[test]
fn cross_origin_pages_are_refused_by_default() {
    for_each_target(Env::builder, |env| {
        let refused = env.send(
            "OPTIONS",
            "/images",
            &[("origin", PAGE), ("access-control-request-method", "POST")],
            b"",
        );
        assert_eq!(refused.problem(403)["status"], 403, "{}", env.name());
    });
}

/// In headless Chromium: a page of a listed origin submits, follows the
/// operation, reads the protocol's headers, fetches and deletes the image;
/// the browser blocks a page of another origin. The pages are served on
/// loopback ports of their own. On the test host, and on `spin up` where
/// there is a `spin`.
#[test]
fn a_page_on_a_listed_origin_uses_the_api_in_chromium() {
    let page_port = free_port();
    let other_port = std::iter::repeat_with(free_port)
        .find(|port| *port != page_port)
        .expect("a second port");
    let page = format!("http://127.0.0.1:{page_port}");
    let other = format!("http://127.0.0.1:{other_port}");
    let allowing = || Env::builder().variable("cors_allowed_origins", &page);
    for_each_target(allowing, |env| {
        let image = images::png(64, 48);
        if let Some(report) =
            kiln_e2e::browser::run_cors(env.name(), env.base_url(), &page, &other, &image)
        {
            kiln_e2e::process::report(&format!("{}: {report}", env.name()));
        }
    });
}
