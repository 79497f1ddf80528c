//! Outbound HTTP/1.1 over the network, to loopback only: the one kind of connection the test
//! host opens for a guest.
//!
//! The machines the tests run on may send traffic nowhere but loopback, so an allowed request
//! to any other address is refused with `HttpRequestDenied`, and so is `https` (the host has no
//! TLS). Errors and timeouts map to the codes Spin 4.0.2 gives (`factor-outbound-http`): the
//! connect timeout to `ConnectionTimeout`, a failed connect to `ConnectionRefused`, the first
//! byte timeout (counted from the start, connecting included) to `ConnectionReadTimeout`, as
//! is the between-bytes timeout of the response body; a protocol failure to `HttpProtocolError`.

use std::future::{Future, poll_fn};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Sleep;
use url::Host;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

/// Spin's timeout for each of connect, first byte and between bytes when the guest sets none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// A response, and the future that drives its connection until the body is read (wasmtime runs
/// it beside the response and drops it with it).
pub(crate) type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
);

/// Sends `request` (absolute URI, `Host` header set) from `caller`, allowed by its
/// `allowed_outbound_hosts`, over a new HTTP/1.1 connection, if its destination is on loopback.
pub(crate) async fn send(
    caller: &str,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> wasmtime_wasi_http::Result<Sent> {
    let addresses = match loopback_addresses(request.uri()) {
        Ok(addresses) => addresses,
        Err(reason) => {
            eprintln!(
                "[kiln-test-host] `{caller}`: outbound request to {} refused: {reason}",
                request.uri()
            );
            return Err(HttpError::HttpRequestDenied);
        }
    };
    let options = options.unwrap_or_default();
    let connect_timeout = options.connect_timeout.unwrap_or(DEFAULT_TIMEOUT);
    let first_byte_timeout = options.first_byte_timeout.unwrap_or(DEFAULT_TIMEOUT);
    let between_bytes_timeout = options.between_bytes_timeout.unwrap_or(DEFAULT_TIMEOUT);
    // On the wire the target is the path; the authority travels in `Host`.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse::<Uri>()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    *request.uri_mut() = path;
    let exchange = async {
        let stream = connect(&addresses, connect_timeout).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let mut connection = Some(connection);
        let mut response = std::pin::pin!(sender.send_request(request));
        // The connection must be polled for the response to arrive.
        let response = poll_fn(|cx| {
            if let Poll::Ready(response) = response.as_mut().poll(cx) {
                return Poll::Ready(response.map_err(HttpError::from));
            }
            let Some(driving) = connection.as_mut() else {
                return Poll::Pending;
            };
            let ended = ready!(Pin::new(driving).poll(cx));
            connection = None;
            match ended {
                Ok(()) => response.as_mut().poll(cx).map_err(HttpError::from),
                Err(err) => Poll::Ready(Err(HttpError::from(err))),
            }
        })
        .await?;
        Ok::<_, HttpError>((response, connection))
    };
    let (response, connection) = tokio::time::timeout(first_byte_timeout, exchange)
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)??;
    let response = response.map(|body| {
        ResponseBody {
            incoming: body,
            waiting: None,
            between_bytes_timeout,
        }
        .boxed_unsync()
    });
    let io: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send> =
        Box::new(async move {
            match connection {
                Some(connection) => connection.await.map_err(HttpError::from),
                None => Ok(()),
            }
        });
    Ok((response, io))
}

/// Where `uri` may be connected to: its port on `127.0.0.0/8` or `::1` (`localhost` is both),
/// or why not.
fn loopback_addresses(uri: &Uri) -> Result<Vec<SocketAddr>, String> {
    const ONLY_LOOPBACK: &str = "the test host only connects to loopback (127.0.0.0/8, ::1, \
                                 localhost), even when allowed_outbound_hosts allows more";
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "the test host has no TLS, so it only sends http:// requests ({ONLY_LOOPBACK})"
        ));
    }
    let host = uri.host().map(Host::parse);
    let port = uri.port_u16().unwrap_or(80);
    let ips = match host {
        Some(Ok(Host::Ipv4(ip))) if ip.is_loopback() => vec![IpAddr::V4(ip)],
        Some(Ok(Host::Ipv6(ip))) if ip.is_loopback() => vec![IpAddr::V6(ip)],
        // Resolved here, not by the system's resolver, which could map it anywhere.
        Some(Ok(Host::Domain(name))) if name == "localhost" => {
            vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]
        }
        _ => return Err(ONLY_LOOPBACK.to_owned()),
    };
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

/// Connects to the first address that accepts, as Spin does.
async fn connect(addresses: &[SocketAddr], limit: Duration) -> Result<TcpStream, HttpError> {
    match tokio::time::timeout(limit, TcpStream::connect(addresses)).await {
        Err(_) => Err(HttpError::ConnectionTimeout),
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::AddrNotAvailable => {
            Err(HttpError::DnsError {
                rcode: Some("address not available".into()),
                info_code: Some(0),
            })
        }
        Ok(Err(_)) => Err(HttpError::ConnectionRefused),
    }
}

/// A response body that fails with `ConnectionReadTimeout` when the guest has waited the
/// between-bytes timeout for a frame (counted, as in Spin, from when it started waiting).
struct ResponseBody {
    incoming: Incoming,
    waiting: Option<Pin<Box<Sleep>>>,
    between_bytes_timeout: Duration,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(frame) => {
                self.waiting = None;
                Poll::Ready(frame.map(|f| f.map_err(HttpError::from)))
            }
            Poll::Pending => {
                let limit = self.between_bytes_timeout;
                let waiting = self
                    .waiting
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                ready!(waiting.as_mut().poll(cx));
                Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    /// A loopback HTTP server of the test's own: it records each request it reads (head and
    /// body, up to the `Content-Length`), then writes `reply` and closes. Aborted on drop.
    struct Server {
        addr: SocketAddr,
        requests: Arc<Mutex<Vec<String>>>,
        task: JoinHandle<()>,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl Server {
        async fn start(reply: &'static [u8]) -> Self {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .await
                .expect("bind loopback");
            let addr = listener.local_addr().expect("address");
            let requests = Arc::new(Mutex::new(Vec::new()));
            let seen = requests.clone();
            let task = tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let request = read_request(&mut stream).await;
                    seen.lock().expect("lock").push(request);
                    let _ = stream.write_all(reply).await;
                    let _ = stream.shutdown().await;
                }
            });
            Self {
                addr,
                requests,
                task,
            }
        }

        fn requests(&self) -> Vec<String> {
            self.requests.lock().expect("lock").clone()
        }
    }

    async fn read_request(stream: &mut TcpStream) -> String {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let text = String::from_utf8_lossy(&buffer).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_owned)
                    })
                    .and_then(|n| n.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    return text;
                }
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return text,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn post(url: &str, body: &'static str) -> http::Request<WasiBody> {
        let uri: Uri = url.parse().expect("valid uri");
        let authority = uri.authority().expect("absolute").to_string();
        http::Request::post(uri)
            .header(http::header::HOST, authority)
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(
                Full::new(Bytes::from_static(body.as_bytes()))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .expect("valid request")
    }

    fn with(set: impl FnOnce(&mut RequestOptions)) -> Option<RequestOptions> {
        let mut options = RequestOptions::default();
        set(&mut options);
        Some(options)
    }

    /// Reads the whole response body while driving the connection, as wasmtime does.
    async fn body_text(sent: Sent) -> Result<String, HttpError> {
        let (response, io) = sent;
        let io = tokio::spawn(Pin::from(io));
        let body = response.into_body().collect().await?.to_bytes();
        let _ = io.await;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    fn error(result: wasmtime_wasi_http::Result<Sent>) -> HttpError {
        match result {
            Ok(_) => panic!("the request succeeded"),
            Err(err) => err,
        }
    }

    /// An allowed request to loopback really goes out: the server sees the method, the
    /// path, the `Host` and the body, and the guest gets the status and the body back.
    #[tokio::test]
    async fn a_request_to_loopback_reaches_the_server_and_its_response_comes_back() {
        let server =
            Server::start(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\nx-seen: yes\r\n\r\ndelivery")
                .await;
        let url = format!("http://{}/hooks/a?x=1", server.addr);
        let sent = send("test", post(&url, "{\"id\":1}"), None)
            .await
            .expect("sent");
        assert_eq!(sent.0.status(), http::StatusCode::OK);
        assert_eq!(sent.0.headers()["x-seen"], "yes");
        assert_eq!(body_text(sent).await.expect("body"), "delivery");
        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        let request = &requests[0];
        assert!(
            request.starts_with("POST /hooks/a?x=1 HTTP/1.1\r\n"),
            "{request}"
        );
        let host = format!("host: {}\r\n", server.addr);
        assert!(request.to_ascii_lowercase().contains(&host), "{request}");
        assert!(request.ends_with("\r\n\r\n{\"id\":1}"), "{request}");
    }

    /// `localhost` is loopback too.
    #[tokio::test]
    async fn localhost_is_loopback() {
        let server = Server::start(b"HTTP/1.1 204 No Content\r\n\r\n").await;
        let url = format!("http://localhost:{}/", server.addr.port());
        let sent = send("test", post(&url, ""), None).await.expect("sent");
        assert_eq!(sent.0.status(), http::StatusCode::NO_CONTENT);
        assert_eq!(server.requests().len(), 1);
    }

    /// Whatever allowed_outbound_hosts says, only loopback destinations are connected to.
    /// Checked on the decision itself, so that a regression fails here without sending
    /// anything off the machine.
    #[test]
    fn only_loopback_destinations_are_connected_to() {
        for url in [
            "http://192.0.2.1/",
            "http://10.0.0.1:8080/",
            "http://example.com/",
            "http://[2001:db8::1]:80/",
            "http://localhost.example.com/",
            "http://0.0.0.0/",
        ] {
            let uri: Uri = url.parse().expect("valid uri");
            assert!(
                loopback_addresses(&uri).is_err(),
                "{url} would be connected to"
            );
        }
        let addresses = |url: &str| loopback_addresses(&url.parse().expect("valid uri"));
        assert_eq!(
            addresses("http://127.0.0.2:81/"),
            Ok(vec![SocketAddr::from(([127, 0, 0, 2], 81))])
        );
        assert_eq!(
            addresses("http://[::1]/"),
            Ok(vec![SocketAddr::from((Ipv6Addr::LOCALHOST, 80))])
        );
        assert_eq!(
            addresses("http://LocalHost:8080/"),
            Ok(vec![
                SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
                SocketAddr::from((Ipv6Addr::LOCALHOST, 8080)),
            ])
        );
    }

    /// A refused destination is `HttpRequestDenied` to the guest, and nothing is connected:
    /// `https` to a listening loopback server is refused (the host has no TLS).
    #[tokio::test]
    async fn https_is_denied_without_connecting() {
        let server = Server::start(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
        for url in [
            format!("https://{}/", server.addr),
            format!("https://localhost:{}/", server.addr.port()),
        ] {
            let err = error(send("test", post(&url, ""), None).await);
            assert!(
                matches!(err, HttpError::HttpRequestDenied),
                "{url}: {err:?}"
            );
        }
        assert!(server.requests().is_empty());
    }

    /// A loopback port nobody listens on gives `ConnectionRefused`.
    #[tokio::test]
    async fn a_closed_port_maps_to_connection_refused() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        drop(listener);
        let err = error(send("test", post(&format!("http://{addr}/"), ""), None).await);
        assert!(matches!(err, HttpError::ConnectionRefused), "{err:?}");
    }

    /// A server that accepts but never answers runs into the first-byte timeout:
    /// `ConnectionReadTimeout`.
    #[tokio::test]
    async fn a_silent_server_maps_to_connection_read_timeout() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let options = with(|o| o.first_byte_timeout = Some(Duration::from_millis(50)));
        let err = error(send("test", post(&format!("http://{addr}/"), ""), options).await);
        assert!(matches!(err, HttpError::ConnectionReadTimeout), "{err:?}");
        drop(listener);
    }

    /// A body that stops arriving runs into the between-bytes timeout.
    #[tokio::test]
    async fn a_stalled_body_maps_to_connection_read_timeout() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            read_request(&mut stream).await;
            let head = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\npart";
            stream.write_all(head).await.expect("write");
            let _ = done_rx.await;
        });
        let options = with(|o| o.between_bytes_timeout = Some(Duration::from_millis(50)));
        let sent = send("test", post(&format!("http://{addr}/"), ""), options)
            .await
            .expect("headers arrive");
        let err = body_text(sent).await.expect_err("the body stalls");
        assert!(matches!(err, HttpError::ConnectionReadTimeout), "{err:?}");
        drop(done_tx);
        server.await.expect("server ends");
    }
}
