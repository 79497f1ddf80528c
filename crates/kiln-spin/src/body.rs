//! Request and response bodies over wasi:http streams.

use kiln::Error;
use kiln::http::BodyReader;
use kiln::rate_limit::ClientAddress;
use spin_sdk::http::{IncomingRequest, Method, OutgoingBody};
use spin_sdk::wit::wasi::http0_2_0::types::IncomingBody;

/// `blocking-write-and-flush` accepts at most 4096 bytes per call.
const WRITE_CHUNK: usize = 4096;
/// Large reads: each is a call into the host and a copy out of it.
const READ_CHUNK: u64 = 1 << 20;

/// Reads a wasi:http request body on demand, so a handler can refuse a
/// large upload before it has all arrived.
pub struct IncomingBodyReader {
    body: Option<IncomingBody>,
}

impl BodyReader for IncomingBodyReader {
    fn read_to_end(&mut self, limit: u64, expected: Option<u64>) -> Result<Vec<u8>, Error> {
        let Some(body) = self.body.take() else {
            return Ok(Vec::new());
        };
        let stream = body
            .stream()
            .map_err(|()| Error::BadRequest("the request body cannot be read".into()))?;
        let expected = expected.unwrap_or(0).min(limit);
        let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() as u64 > limit {
                        return Err(Error::ContentTooLarge { max: limit });
                    }
                }
                Err(wasi::io::streams::StreamError::Closed) => break,
                Err(_) => return Err(Error::BadRequest("the request body was cut short".into())),
            }
        }
        drop(stream);
        IncomingBody::finish(body);
        Ok(bytes)
    }
}

/// The domain's view of a wasi:http request.
pub fn to_http_request(
    request: IncomingRequest,
) -> Result<http::Request<IncomingBodyReader>, Error> {
    let method = match request.method() {
        Method::Get => http::Method::GET,
        Method::Head => http::Method::HEAD,
        Method::Post => http::Method::POST,
        Method::Put => http::Method::PUT,
        Method::Delete => http::Method::DELETE,
        Method::Patch => http::Method::PATCH,
        Method::Options => http::Method::OPTIONS,
        Method::Connect => http::Method::CONNECT,
        Method::Trace => http::Method::TRACE,
        Method::Other(other) => http::Method::from_bytes(other.as_bytes())
            .map_err(|_| Error::BadRequest("unknown method".into()))?,
    };
    let path = request.path_with_query().unwrap_or_else(|| "/".into());
    let mut builder = http::Request::builder().method(method).uri(path.as_str());
    for (name, value) in request.headers().entries() {
        builder = builder.header(name, value);
    }
    if let Some(address) = client_address(&request) {
        builder = builder.extension(address);
    }
    let body = IncomingBodyReader {
        body: request.consume().ok(),
    };
    builder
        .body(body)
        .map_err(|_| Error::BadRequest("malformed request line or headers".into()))
}

/// The client's address: Spin's `spin-client-addr`, of which a request may
/// hold several values, since Spin adds its own after any the client sent
/// (Spin 4.0.2 appends its `spin-*` headers to the request's): the last
/// one is Spin's.
fn client_address(request: &IncomingRequest) -> Option<ClientAddress> {
    let values = request.headers().get("spin-client-addr");
    let text = std::str::from_utf8(values.last()?).ok()?;
    let ip = text
        .parse::<std::net::SocketAddr>()
        .map(|addr| addr.ip())
        .or_else(|_| text.parse())
        .ok()?;
    Some(ClientAddress(ip))
}

/// Writes `bytes` and finishes the body.
pub fn write_all(body: OutgoingBody, bytes: &[u8]) -> Result<(), String> {
    write_each(body, std::iter::once(bytes))
}

/// Writes each piece as it comes, flushed, and finishes the body after the
/// last.
pub fn write_each(
    body: OutgoingBody,
    pieces: impl IntoIterator<Item = impl AsRef<[u8]>>,
) -> Result<(), String> {
    let stream = body
        .write()
        .map_err(|()| "response body already taken".to_owned())?;
    for piece in pieces {
        for chunk in piece.as_ref().chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| format!("{e:?}"))?;
        }
    }
    drop(stream);
    OutgoingBody::finish(body, None).map_err(|e| format!("{e:?}"))
}
