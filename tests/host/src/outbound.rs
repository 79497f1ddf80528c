//! Outbound HTTP: `allowed_outbound_hosts` and in-process service chaining.
//!
//! A request to `http://<component>.spin.internal/...` runs a fresh instance of that component
//! in-process, as Spin's service chaining does, provided the caller's `allowed_outbound_hosts`
//! allows that origin. Every other request is refused with `HttpRequestDenied`: the host never
//! opens network connections, even to allowed hosts.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use http::Uri;
use tokio::time::Instant;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::headers::{RouteInfo, SPIN_INTERNAL, set_spin_headers};
use crate::routes::RouteMatch;
use crate::runtime::HostShared;

/// The client address Spin reports to a component called through service chaining.
const CHAINED_CLIENT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// A component's parsed `allowed_outbound_hosts`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AllowedHosts {
    entries: Vec<AllowedHost>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    /// `None` for `*`.
    scheme: Option<String>,
    /// `*`, `*.suffix` or an exact (lowercase) host name.
    host: String,
    /// `None` for the scheme's default port, `Some(None)` for `*`.
    port: Option<Option<u16>>,
}

impl AllowedHosts {
    /// Parses entries like `http://processor.spin.internal`, `https://*.example.com:8443` or
    /// `*://*:*`.
    pub fn parse(entries: &[String]) -> Result<Self> {
        let entries = entries
            .iter()
            .map(|entry| {
                AllowedHost::parse(entry)
                    .with_context(|| format!("allowed_outbound_hosts: invalid entry {entry:?}"))
            })
            .collect::<Result<_>>()?;
        Ok(Self { entries })
    }

    /// Whether a request to `uri` is allowed.
    pub fn allows(&self, uri: &Uri) -> bool {
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return false;
        };
        let port = uri.port_u16().or_else(|| default_port(scheme));
        self.entries.iter().any(|e| e.allows(scheme, host, port))
    }

    /// The hosts of entries that ask for service chaining: `spin.internal` subdomains and
    /// subdomain wildcards (`processor.spin.internal`, `*.spin.internal`). As in SIP 017,
    /// `*://*:*` alone does not ask for it.
    pub fn chaining_hosts(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .map(|e| e.host.as_str())
            .filter(|host| host.ends_with(SPIN_INTERNAL))
    }

    /// Components named by exact `<id>.spin.internal` entries.
    pub fn named_chaining_targets(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter_map(|e| e.host.strip_suffix(SPIN_INTERNAL))
            .filter(|id| !id.starts_with('*'))
    }
}

impl AllowedHost {
    fn parse(entry: &str) -> Result<Self> {
        ensure!(
            !entry.contains("{{"),
            "templates are not supported by the test host"
        );
        let Some((scheme, rest)) = entry.split_once("://") else {
            bail!("expected scheme://host[:port]");
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        ensure!(!rest.contains('/'), "paths are not allowed");
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, "*")) => (host, Some(None)),
            Some((host, port)) => {
                let port = port
                    .parse::<u16>()
                    .with_context(|| format!("invalid port {port:?}"))?;
                (host, Some(Some(port)))
            }
            None => (rest, None),
        };
        ensure!(!host.is_empty(), "missing host");
        let scheme = match scheme {
            "*" => None,
            "http" | "https" => Some(scheme.to_owned()),
            other => bail!("unsupported scheme {other:?}"),
        };
        Ok(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s == scheme);
        let host = host.to_ascii_lowercase();
        let host_ok = match self.host.strip_prefix('*') {
            Some("") => true,
            Some(suffix) => host.ends_with(suffix) && host.len() > suffix.len(),
            None => self.host == host,
        };
        let port_ok = match self.port {
            Some(None) => true,
            Some(Some(allowed)) => port == Some(allowed),
            None => port == default_port(scheme),
        };
        scheme_ok && host_ok && port_ok
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// The `wasi:http` hooks of one guest instance: decide and dispatch its outbound requests.
pub(crate) struct OutboundHooks {
    shared: Arc<HostShared>,
    component: Arc<str>,
    /// The instance's handler deadline, which the instances it chains to inherit.
    deadline: Option<Instant>,
}

impl OutboundHooks {
    pub fn new(shared: Arc<HostShared>, component: Arc<str>, deadline: Option<Instant>) -> Self {
        Self {
            shared,
            component,
            deadline,
        }
    }
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _request_io: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let shared = self.shared.clone();
        let caller = self.component.clone();
        let deadline = self.deadline;
        Box::new(async move {
            let target = chaining_target(&shared, &caller, request.uri())?;
            let call = chain(shared.clone(), target, request, deadline);
            let timeout = options
                .and_then(|o| o.first_byte_timeout)
                .filter(|_| shared.honours_chained_first_byte_timeout());
            let response = match timeout {
                Some(limit) => tokio::time::timeout(limit, call)
                    .await
                    .map_err(|_| HttpError::ConnectionReadTimeout)?,
                None => call.await,
            };
            let io: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, io))
        })
    }
}

/// Decides where an outbound request from `caller` may go: the id of the component to run, or
/// `HttpRequestDenied`.
fn chaining_target(
    shared: &HostShared,
    caller: &str,
    uri: &Uri,
) -> wasmtime_wasi_http::Result<String> {
    let allowed = shared
        .app
        .component(caller)
        .is_some_and(|c| c.manifest.allowed_outbound_hosts.allows(uri));
    if !allowed {
        eprintln!(
            "[kiln-test-host] `{caller}`: outbound request to {uri} denied (not in allowed_outbound_hosts)"
        );
        return Err(HttpError::HttpRequestDenied);
    }
    let target = uri
        .host()
        .map(str::to_ascii_lowercase)
        .and_then(|host| host.strip_suffix(SPIN_INTERNAL).map(str::to_owned));
    match target {
        // Only an app allowing every host (`*://*:*`) gets here: one that names
        // `*.spin.internal` is refused at start when the quotas offer no chaining.
        Some(_) if !shared.chaining_available() => {
            eprintln!(
                "[kiln-test-host] `{caller}`: outbound request to {uri} refused: the quotas offer no service chaining"
            );
            Err(HttpError::HttpRequestDenied)
        }
        Some(target) if shared.app.manifest().has_http_trigger(&target) => Ok(target),
        Some(target) => {
            eprintln!("[kiln-test-host] `{caller}`: no component `{target}` to chain to");
            Err(HttpError::DestinationNotFound)
        }
        None => {
            eprintln!(
                "[kiln-test-host] `{caller}`: outbound request to {uri} refused: the test host only serves *.spin.internal"
            );
            Err(HttpError::HttpRequestDenied)
        }
    }
}

/// Runs `request` through a fresh instance of `target`, with the headers Spin gives a chained
/// request (the whole path is the path info of a synthetic `/...` route). The callee ends at
/// its caller's handler deadline, if there is one.
async fn chain(
    shared: Arc<HostShared>,
    target: String,
    mut request: http::Request<WasiBody>,
    deadline: Option<Instant>,
) -> http::Response<WasiBody> {
    let path = request.uri().path().to_owned();
    let full_url = request.uri().to_string();
    let route = RouteMatch {
        component: target.clone(),
        raw_route: "/...".into(),
        component_route: String::new(),
        path_info: path,
        params: Vec::new(),
    };
    let headers = request.headers_mut();
    headers.remove(http::header::HOST);
    set_spin_headers(
        headers,
        &RouteInfo {
            full_url: &full_url,
            route: &route,
            client_addr: CHAINED_CLIENT_ADDR,
        },
    );
    shared.invoke::<WasiBody>(&target, request, deadline).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entries: &[&str]) -> AllowedHosts {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        AllowedHosts::parse(&entries).expect("valid entries")
    }

    fn uri(text: &str) -> Uri {
        text.parse().expect("valid uri")
    }

    #[test]
    fn listed_chaining_origin_is_allowed() {
        let hosts = allowed(&["http://processor.spin.internal"]);
        assert!(hosts.allows(&uri("http://processor.spin.internal/jobs/1")));
        assert!(hosts.allows(&uri("http://processor.spin.internal:80/")));
    }

    #[test]
    fn other_origins_are_not_allowed() {
        let hosts = allowed(&["http://processor.spin.internal"]);
        assert!(!hosts.allows(&uri("https://processor.spin.internal/")));
        assert!(!hosts.allows(&uri("http://submit.spin.internal/")));
        assert!(!hosts.allows(&uri("http://processor.spin.internal:8080/")));
        assert!(!hosts.allows(&uri("http://example.com/")));
        assert!(!AllowedHosts::default().allows(&uri("http://processor.spin.internal/")));
    }

    #[test]
    fn wildcards_match_hosts_schemes_and_ports() {
        let hosts = allowed(&["*://*.spin.internal:*"]);
        assert!(hosts.allows(&uri("https://a.spin.internal:9/")));
        assert!(!hosts.allows(&uri("http://spin.internal/")));
        assert!(allowed(&["https://*"]).allows(&uri("https://example.com/")));
    }

    #[test]
    fn malformed_entries_are_refused() {
        for bad in [
            "processor.spin.internal",
            "ftp://x",
            "http://x:port",
            "http://{{ h }}",
            "http://x/path",
        ] {
            assert!(
                AllowedHosts::parse(&[bad.to_string()]).is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn named_chaining_targets_lists_exact_component_hosts() {
        let hosts = allowed(&[
            "http://processor.spin.internal",
            "http://*.spin.internal",
            "https://example.com",
        ]);
        assert_eq!(
            hosts.named_chaining_targets().collect::<Vec<_>>(),
            ["processor"]
        );
    }

    /// SIP 017: `spin.internal` subdomains and subdomain wildcards ask for chaining, the
    /// allow-all wildcard and other hosts do not.
    #[test]
    fn chaining_hosts_are_spin_internal_subdomains_and_wildcards() {
        let hosts = allowed(&[
            "http://processor.spin.internal",
            "http://*.spin.internal",
            "*://*:*",
            "https://example.com",
        ]);
        assert_eq!(
            hosts.chaining_hosts().collect::<Vec<_>>(),
            ["processor.spin.internal", "*.spin.internal"]
        );
    }
}
