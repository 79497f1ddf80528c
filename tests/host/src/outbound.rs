//! Outbound HTTP: where a guest's request goes, and in-process service chaining.
//!
//! A request the caller's `allowed_outbound_hosts` does not allow is refused with
//! `HttpRequestDenied`. An allowed request to `http://<component>.spin.internal/...` runs a
//! fresh instance of that component in-process, as Spin's service chaining does; any other
//! allowed request goes out over the network, to loopback only (`loopback`).

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use http::Uri;
use tokio::time::Instant;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::calls::CallCounter;
use crate::headers::{RouteInfo, SPIN_INTERNAL, set_spin_headers};
use crate::loopback;
use crate::routes::RouteMatch;
use crate::runtime::HostShared;

/// The client address Spin reports to a component called through service chaining.
const CHAINED_CLIENT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// The `wasi:http` hooks of one guest instance: decide and dispatch its outbound requests.
pub(crate) struct OutboundHooks {
    shared: Arc<HostShared>,
    component: Arc<str>,
    /// The instance's handler deadline, which the instances it chains to inherit.
    deadline: Option<Instant>,
    calls: Arc<CallCounter>,
}

impl OutboundHooks {
    pub fn new(
        shared: Arc<HostShared>,
        component: Arc<str>,
        deadline: Option<Instant>,
        calls: Arc<CallCounter>,
    ) -> Self {
        Self {
            shared,
            component,
            deadline,
            calls,
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
        self.calls.count("outbound request");
        let shared = self.shared.clone();
        let caller = self.component.clone();
        let deadline = self.deadline;
        Box::new(async move {
            let target = match destination(&shared, &caller, request.uri())? {
                Destination::Component(target) => target,
                Destination::Network => return loopback::send(&caller, request, options).await,
            };
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

/// Where an allowed outbound request goes.
enum Destination {
    /// Service chaining: a fresh instance of this component.
    Component(String),
    /// The network (loopback only).
    Network,
}

/// Decides where an outbound request from `caller` goes, or refuses it with
/// `HttpRequestDenied` (or `DestinationNotFound` for a chaining target without an HTTP trigger).
fn destination(
    shared: &HostShared,
    caller: &str,
    uri: &Uri,
) -> wasmtime_wasi_http::Result<Destination> {
    let allowed = shared
        .allowed_hosts(caller)
        .is_some_and(|hosts| hosts.allows(uri));
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
        // Only a wildcard like `*://*:*` or a templated entry gets here: a literal entry
        // naming a `spin.internal` host is refused at start when the quotas offer no chaining.
        Some(_) if !shared.chaining_available() => {
            eprintln!(
                "[kiln-test-host] `{caller}`: outbound request to {uri} refused: the quotas offer no service chaining"
            );
            Err(HttpError::HttpRequestDenied)
        }
        Some(target) if shared.app.manifest().has_http_trigger(&target) => {
            Ok(Destination::Component(target))
        }
        Some(target) => {
            eprintln!("[kiln-test-host] `{caller}`: no component `{target}` to chain to");
            Err(HttpError::DestinationNotFound)
        }
        None => Ok(Destination::Network),
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
