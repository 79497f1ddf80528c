//! The `ui` component: the demo page at `/` and the API's description at
//! `/openapi.yaml` and `/openapi.json`, all compiled in (no store, no
//! variables, nothing fetched at run time).

use http::header::{ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG};
use http::{Method, StatusCode};
use kiln::Error;
use kiln::http::{Reply, Response};
use spin_sdk::http::Request;

/// A page or document, with its media type.
struct Asset {
    media_type: &'static str,
    bytes: &'static [u8],
}

fn asset(path: &str) -> Option<Asset> {
    let (media_type, bytes): (&str, &[u8]) = match path {
        "/" => (
            "text/html; charset=utf-8",
            include_bytes!("../static/index.html"),
        ),
        "/openapi.yaml" => ("application/yaml", include_bytes!("../../../openapi.yaml")),
        "/openapi.json" => (
            "application/json",
            include_bytes!(concat!(env!("OUT_DIR"), "/openapi.json")),
        ),
        _ => return None,
    };
    Some(Asset { media_type, bytes })
}

#[spin_sdk::http_component]
fn handle(request: Request) -> Response {
    let method = match request.method() {
        spin_sdk::http::Method::Get => Method::GET,
        spin_sdk::http::Method::Head => Method::HEAD,
        _ => Method::POST,
    };
    let mut headers = http::HeaderMap::new();
    if let Some(value) = request
        .header("if-none-match")
        .and_then(|v| http::HeaderValue::from_bytes(v.as_bytes()).ok())
    {
        headers.insert(http::header::IF_NONE_MATCH, value);
    }
    respond(&method, request.path(), &headers)
}

/// The answer to `method path`: the asset (revalidated by its ETag, which
/// changes with every build that changes it), or a problem.
fn respond(method: &Method, path: &str, request: &http::HeaderMap) -> Response {
    let Some(asset) = asset(path) else {
        return Reply::from(Error::NotFound("page")).response;
    };
    if method != Method::GET && method != Method::HEAD {
        let mut response = Reply::from(Error::MethodNotAllowed { allow: "GET, HEAD" }).response;
        response
            .headers_mut()
            .insert(ALLOW, http::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let etag = kiln::etag::strong(asset.bytes);
    let mut response = Response::new(Vec::new());
    let headers = response.headers_mut();
    for (name, value) in [(CACHE_CONTROL, "no-cache".to_owned()), (ETAG, etag.clone())] {
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    if kiln::http::if_none_match(request, &etag) {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return response;
    }
    headers.insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static(asset.media_type),
    );
    if method == Method::GET {
        headers.insert(CONTENT_LENGTH, asset.bytes.len().into());
        *response.body_mut() = asset.bytes.to_vec();
    }
    response
}
