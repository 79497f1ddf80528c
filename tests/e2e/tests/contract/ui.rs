//! The `ui` component: the demo page and the API's description, served
//! from what was compiled in, cacheable by ETag.

use kiln_e2e::{Env, for_each_target, images};

/// `/` is the demo page, an HTML document that needs nothing from elsewhere
/// (no CDN, no external fonts: every `src` and `href` is local).
#[test]
fn the_demo_page_is_served_and_self_contained() {
    for_each_target(Env::builder, |env| {
        let page = env.get("/", &[]);
        assert_eq!(page.status, 200, "{}", env.name());
        assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
        let html = String::from_utf8(page.body.clone()).expect("UTF-8 HTML");
        assert!(html.contains("<form id=\"form\""), "no form in the page");
        for attribute in ["src=\"http", "href=\"http", "url(http", "@import"] {
            assert!(
                !html.contains(attribute),
                "the page loads something from elsewhere: {attribute}"
            );
        }
    });
}

/// The OpenAPI description is served as YAML (the file itself) and as
/// JSON (the same document), and revalidates with `If-None-Match`.
#[test]
fn the_openapi_description_is_served_as_yaml_and_json() {
    for_each_target(Env::builder, |env| {
        let yaml = env.get("/openapi.yaml", &[]);
        assert_eq!(yaml.status, 200);
        assert_eq!(yaml.header("content-type"), "application/yaml");
        assert_eq!(yaml.body, include_bytes!("../../../../openapi.yaml"));
        let json = env.get("/openapi.json", &[]);
        assert_eq!(json.header("content-type"), "application/json");
        let document = json.json();
        assert_eq!(document["openapi"], "3.1.0");
        for path in ["/images", "/operations/{id}", "/images/{id}", "/"] {
            assert!(document["paths"][path].is_object(), "{path} not described");
        }
        let etag = json.header("etag").to_owned();
        let again = env.get("/openapi.json", &[("if-none-match", &etag)]);
        assert_eq!(again.status, 304);
        assert_eq!(
            env.send("POST", "/openapi.json", &[], b"").problem(405)["status"],
            405
        );
    });
}

/// In headless Chromium on a phone-sized screen, the page uploads an image
/// asynchronously, shows the 202 and the operation's events, and renders
/// the result at the size asked for; a bad `ops` shows its problem. On the
/// test host, and on `spin up` where there is a `spin`.
#[test]
fn the_demo_page_runs_a_job_in_chromium() {
    for_each_target(Env::builder, |env| {
        let image = images::png(640, 480);
        if let Some(report) = kiln_e2e::browser::run_demo(env.name(), env.base_url(), &image) {
            kiln_e2e::process::report(&format!("{}: {report}", env.name()));
        }
    });
}

/// With API keys on (reads too), the page shows the `401`, opens its key
/// field, and with the key runs the job, following it by long-polling
/// (`EventSource` cannot send a key).
#[test]
fn the_demo_page_asks_for_an_api_key_when_keys_are_on() {
    let key = "demo-page-key-5b2e";
    let builder = || {
        Env::builder()
            .api_keys(&[("demo", key)])
            .variable("api_keys_for_reads", "true")
    };
    for_each_target(builder, |env| {
        let image = images::png(640, 480);
        if let Some(report) =
            kiln_e2e::browser::run_demo_with_key(env.name(), env.base_url(), &image, key)
        {
            kiln_e2e::process::report(&format!("{}: {report}", env.name()));
        }
    });
}
