//! A blocking HTTP/1.1 client for the app under test, and the response type
//! the tests assert on.

use std::time::Duration;

use crate::events::EventStream;

/// A complete response.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The header's value; panics (failing the test) if it is absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no `{name}` header in {} {:?}", self.status, self.headers))
            .to_str()
            .expect("ASCII header")
    }

    /// The header's value, if present.
    pub fn maybe_header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts this is an RFC 9457 problem with `status`, and returns it.
    pub fn problem(&self, status: u16) -> serde_json::Value {
        assert_eq!(
            self.status,
            status,
            "expected a {status} problem, got {}: {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.header("content-type"), "application/problem+json");
        let problem = self.json();
        assert_eq!(problem["status"], status, "{problem}");
        assert!(
            problem["type"].is_string() && problem["title"].is_string(),
            "{problem}"
        );
        let text = problem.to_string();
        assert!(
            !text.contains("panicked") && !text.contains(".rs:"),
            "internal text leaked: {text}"
        );
        problem
    }

    /// The path part of the `Location` header.
    pub fn location(&self) -> String {
        self.header("location").to_owned()
    }

    /// The `id` of the operation JSON in the body.
    pub fn operation_id(&self) -> String {
        self.json()["id"]
            .as_str()
            .expect("an operation id")
            .to_owned()
    }
}

/// Sends requests to one base URL.
#[derive(Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

/// The HTTP agent every client here uses: statuses are answers, not
/// errors; redirects are not followed; two minutes at most per request.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

impl Client {
    /// A client for `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: String) -> Self {
        Client {
            base,
            agent: agent(),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends a request and reads the whole response.
    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body.to_vec()).expect("a valid request");
        let mut response = self
            .agent
            .run(request)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = if method == "HEAD" {
            Vec::new()
        } else {
            response
                .body_mut()
                .with_config()
                .limit(200 * 1024 * 1024)
                .read_to_vec()
                .unwrap_or_else(|e| panic!("{method} {path}: reading the body: {e}"))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// `GET path` as a Server-Sent Events stream (`Accept:
    /// text/event-stream` plus `headers`), read as it arrives.
    pub fn events(&self, path: &str, headers: &[(&str, &str)]) -> EventStream {
        let mut request = http::Request::builder()
            .uri(format!("{}{path}", self.base))
            .header("accept", "text/event-stream");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(()).expect("a valid request");
        let response = self
            .agent
            .run(request)
            .unwrap_or_else(|e| panic!("GET {path} (events): {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().into_reader();
        EventStream::new(status, headers, Box::new(body))
    }
}
