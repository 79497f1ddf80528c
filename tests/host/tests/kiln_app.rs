//! The host runs the project's real components: `spin.toml` loads, public routes answer, the
//! private processor does not.
//!
//! Needs the components built for wasm32-wasip2 (`scripts/test` does it); they are looked up in
//! `$KILN_WASM_DIR`, else `$CARGO_TARGET_DIR/wasm32-wasip2/release`, else the workspace's
//! `target/wasm32-wasip2/release`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use kiln_test_host::{App, Host, LoadOptions};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn wasm_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KILN_WASM_DIR") {
        return dir.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_relative() {
                workspace_root().join(dir)
            } else {
                dir
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("wasm32-wasip2").join("release")
}

/// The app of `spin.toml`, compiled once for this test binary.
fn load() -> App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| {
        App::load(
            &workspace_root().join("spin.toml"),
            LoadOptions {
                wasm_dir: Some(wasm_dir()),
            },
        )
        .unwrap_or_else(|e| panic!("{e:#}\nbuild the components first: run `scripts/test`"))
    })
    .clone()
}

/// A plain HTTP/1.1 GET with an explicit `Host` header; returns status, content type and body.
async fn get(host: &Host, path: &str, host_header: &str) -> (u16, String, String) {
    let stream = tokio::net::TcpStream::connect(host.addr())
        .await
        .expect("connect to the host");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("HTTP handshake");
    tokio::spawn(connection);
    let request = http::Request::get(path)
        .header(http::header::HOST, host_header)
        .body(Empty::<Bytes>::new())
        .expect("valid request");
    let response = sender.send_request(request).await.expect("a response");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("the body")
        .to_bytes();
    (
        status,
        content_type,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// An unknown operation is a 404 problem document from the operations component.
#[tokio::test]
async fn unknown_operation_is_a_problem_404() {
    let host = Host::builder(load())
        .start()
        .await
        .expect("the host starts");
    let authority = host.addr().to_string();
    let (status, content_type, body) = get(
        &host,
        "/operations/6f1c1a5e-8a55-4f43-9d59-2a0a8e8f0c3b",
        &authority,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(content_type, "application/problem+json", "{body}");
    assert!(host.invocations("operations") >= 1);
    host.shutdown().await;
}

/// The private processor route is unreachable from outside, even with a spoofed `Host`.
#[tokio::test]
async fn private_processor_is_not_reachable_from_outside() {
    let host = Host::builder(load())
        .start()
        .await
        .expect("the host starts");
    let (status, _, _) = get(&host, "/", "processor.spin.internal").await;
    assert_eq!(status, 404);
    let (status, _, _) = get(&host, "/jobs", "processor.spin.internal").await;
    assert_eq!(status, 404);
    assert_eq!(host.invocations("processor"), 0);
    host.shutdown().await;
}

/// Misconfiguration is refused at start: an override of an undeclared variable.
#[tokio::test]
async fn override_of_undeclared_variable_is_refused() {
    let result = Host::builder(load())
        .variable("no_such_variable", "1")
        .start()
        .await;
    let err = result.expect_err("the override is refused");
    assert!(format!("{err:#}").contains("no_such_variable"), "{err:#}");
}
