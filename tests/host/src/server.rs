//! The HTTP front end: accept loop, Spin-style routing, and hand-off to component instances.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use wasmtime_wasi_http::WasiBody;

use crate::body_limit::limit_request;
use crate::headers::{RouteInfo, is_service_chaining_host, set_spin_headers};
use crate::runtime::{HostShared, status_response};
use crate::tasks::TaskGroup;

/// Spin's built-in health check path.
const HEALTH_PATH: &str = "/.well-known/spin/health";

/// Spawns the accept loop into `connections`. It stops accepting when `stop` is cancelled, and
/// each open connection then finishes its in-flight request and closes.
pub(crate) fn spawn_accept_loop(
    listener: TcpListener,
    shared: Arc<HostShared>,
    connections: TaskGroup,
    stop: CancellationToken,
) {
    let group = connections.clone();
    connections.spawn(async move {
        let local_addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(err) => {
                eprintln!("[kiln-test-host] listener has no address: {err}");
                return;
            }
        };
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, client_addr) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    eprintln!("[kiln-test-host] accept failed: {err}");
                    continue;
                }
            };
            let shared = shared.clone();
            let stop = stop.clone();
            let tasks = group.clone();
            group.spawn(async move {
                let service = service_fn(move |request| {
                    let shared = shared.clone();
                    let tasks = tasks.clone();
                    async move {
                        let response =
                            handle(&shared, request, client_addr, local_addr, &tasks).await;
                        Ok::<_, Infallible>(response)
                    }
                });
                let connection = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::pin!(connection);
                let result = tokio::select! {
                    result = connection.as_mut() => result,
                    () = stop.cancelled() => {
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                };
                if let Err(err) = result
                    && !err.is_incomplete_message()
                {
                    eprintln!("[kiln-test-host] connection from {client_addr}: {err}");
                }
            });
        }
    });
}

/// Routes one request from outside and runs it through the matching component.
/// `connection_tasks` runs what outlives the response (draining a refused body).
async fn handle(
    shared: &Arc<HostShared>,
    mut request: Request<Incoming>,
    client_addr: SocketAddr,
    local_addr: SocketAddr,
    connection_tasks: &TaskGroup,
) -> Response<WasiBody> {
    let path = request.uri().path().to_owned();
    if path == HEALTH_PATH {
        return text_response(StatusCode::OK, "OK");
    }
    // Private routes are not in the router, so nothing from outside reaches them, whatever
    // `Host` says; like Spin, drop a spoofed service-chaining `Host` anyway.
    let spoofed = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(is_service_chaining_host);
    if spoofed {
        request.headers_mut().remove(http::header::HOST);
    }
    let Some(route) = shared.app.router().route(&path) else {
        return status_response(StatusCode::NOT_FOUND);
    };
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| local_addr.to_string(), str::to_owned);
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let full_url = format!("http://{host}{path_and_query}");
    match full_url.parse() {
        Ok(uri) => *request.uri_mut() = uri,
        Err(_) => return text_response(StatusCode::BAD_REQUEST, "invalid Host header"),
    }
    set_spin_headers(
        request.headers_mut(),
        &RouteInfo {
            full_url: &full_url,
            route: &route,
            client_addr,
        },
    );
    match shared.quotas().map(|q| q.max_request_body_bytes) {
        None => shared.invoke(&route.component, request, None).await,
        Some(limit) => match limit_request(request, limit, connection_tasks).await {
            Ok(request) => shared.invoke(&route.component, request, None).await,
            Err(refused) => refused,
        },
    }
}

fn text_response(status: StatusCode, text: &'static str) -> Response<WasiBody> {
    let body = Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}
