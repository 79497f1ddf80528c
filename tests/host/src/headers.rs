//! The `spin-*` request headers Spin's HTTP trigger adds for the guest.

use std::net::SocketAddr;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::routes::RouteMatch;

/// The suffix of the host names Spin reserves for service chaining.
pub(crate) const SPIN_INTERNAL: &str = ".spin.internal";

/// What the guest is told about how its request was routed.
pub(crate) struct RouteInfo<'a> {
    /// `http://host/path?query` as received.
    pub full_url: &'a str,
    pub route: &'a RouteMatch,
    pub client_addr: SocketAddr,
}

/// Sets `spin-full-url`, `spin-path-info`, `spin-matched-route`, `spin-base-path`,
/// `spin-raw-component-route`, `spin-component-route`, `spin-client-addr` and one
/// `spin-path-match-<name>` per `:name` capture, after any value the client sent, as
/// Spin 4.0.2 does (its `prepare_request_headers` appends them to the request's): a
/// guest that reads the first value of one reads what the client chose.
pub(crate) fn set_spin_headers(headers: &mut HeaderMap, info: &RouteInfo<'_>) {
    let mut set = |name: &str, value: &str| {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    };
    set("spin-full-url", info.full_url);
    set("spin-path-info", &info.route.path_info);
    set("spin-matched-route", &info.route.raw_route);
    set("spin-base-path", "/");
    set("spin-raw-component-route", &info.route.raw_route);
    set("spin-component-route", &info.route.component_route);
    set("spin-client-addr", &info.client_addr.to_string());
    for (name, value) in &info.route.params {
        set(
            &format!("spin-path-match-{}", name.to_ascii_lowercase()),
            value,
        );
    }
}

/// Whether `host` (a `Host` header value, possibly with a port) names a service-chaining
/// target; Spin strips such `Host` headers from requests arriving from outside.
pub(crate) fn is_service_chaining_host(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            host
        }
    });
    name.to_ascii_lowercase().ends_with(SPIN_INTERNAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoofed_chaining_host_is_recognised_with_or_without_port() {
        assert!(is_service_chaining_host("processor.spin.internal"));
        assert!(is_service_chaining_host("Processor.SPIN.internal:80"));
        assert!(!is_service_chaining_host("127.0.0.1:3000"));
        assert!(!is_service_chaining_host("spin.internal.example.com"));
    }

    #[test]
    fn spin_headers_describe_the_route_after_the_clients_own() {
        let route = RouteMatch {
            component: "operations".into(),
            raw_route: "/operations/...".into(),
            component_route: "/operations".into(),
            path_info: "/42".into(),
            params: vec![],
        };
        let mut headers = HeaderMap::new();
        headers.insert("spin-path-info", HeaderValue::from_static("spoofed"));
        set_spin_headers(
            &mut headers,
            &RouteInfo {
                full_url: "http://127.0.0.1:1/operations/42?x=1",
                route: &route,
                client_addr: "127.0.0.1:9".parse().expect("valid address"),
            },
        );
        let path_info: Vec<_> = headers.get_all("spin-path-info").iter().collect();
        assert_eq!(path_info, ["spoofed", "/42"]);
        assert_eq!(headers["spin-component-route"], "/operations");
        assert_eq!(headers["spin-matched-route"], "/operations/...");
        assert_eq!(
            headers["spin-full-url"],
            "http://127.0.0.1:1/operations/42?x=1"
        );
        assert_eq!(headers["spin-client-addr"], "127.0.0.1:9");
    }
}
