//! The request body quota: the host answers `413` itself, before the component runs.
//!
//! A body that declares its length (`Content-Length`) is judged by that length and, when it
//! fits, streams to the component as it arrives. A body without one (chunked) is read into
//! memory up to the limit first, so the component runs only once it is known to fit; its
//! trailers, if any, are dropped. An oversized body's remaining bytes are read and discarded
//! after the `413`, up to [`LINGER_BYTES`], so that a client which sends its whole body before
//! reading the answer still gets the `413` instead of a reset connection (a proxy's lingering
//! close does the same).

use bytes::{Bytes, BytesMut};
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use wasmtime_wasi_http::WasiBody;

use crate::runtime::status_response;
use crate::tasks::TaskGroup;

/// How much of an oversized body the host reads and discards after answering `413`.
const LINGER_BYTES: u64 = 64 * 1024 * 1024;

/// What to do with a request body under the body quota.
#[derive(Debug)]
pub(crate) enum Admission<B> {
    /// Its declared length fits: it streams to the component.
    Streaming(B),
    /// It had no declared length and fit: here it is, whole.
    Buffered(Bytes),
    /// It is over the limit; what is left of it (unread).
    TooLarge(B),
}

/// Decides whether `body` fits `limit` bytes, reading it only when it declares no length.
pub(crate) async fn admit<B>(mut body: B, limit: u64) -> Result<Admission<B>, B::Error>
where
    B: Body<Data = Bytes> + Unpin,
{
    if let Some(declared) = body.size_hint().exact() {
        return Ok(if declared > limit {
            Admission::TooLarge(body)
        } else {
            Admission::Streaming(body)
        });
    }
    let mut buffered = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers
        };
        if (buffered.len() + data.len()) as u64 > limit {
            return Ok(Admission::TooLarge(body));
        }
        buffered.extend_from_slice(&data);
    }
    Ok(Admission::Buffered(buffered.freeze()))
}

/// Applies the body quota to a request from a client: the request to pass to the component, or
/// the host's own answer (`413`, or `400` if the body could not be read). The rest of an
/// oversized body is drained as a task of `connections`.
pub(crate) async fn limit_request(
    request: Request<Incoming>,
    limit: u64,
    connections: &TaskGroup,
) -> Result<Request<WasiBody>, Response<WasiBody>> {
    // A client waiting for `100 Continue` sends no body after a final answer; reading it would
    // make hyper send the `100` after the `413`.
    let expects_continue = request
        .headers()
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let (parts, body) = request.into_parts();
    match admit(body, limit).await {
        Ok(Admission::Streaming(body)) => Ok(Request::from_parts(
            parts,
            body.map_err(Into::into).boxed_unsync(),
        )),
        Ok(Admission::Buffered(bytes)) => Ok(Request::from_parts(
            parts,
            Full::new(bytes)
                .map_err(|never| match never {})
                .boxed_unsync(),
        )),
        Ok(Admission::TooLarge(rest)) => {
            eprintln!(
                "[kiln-test-host] {} {}: request body over the {limit}-byte quota: 413",
                parts.method, parts.uri
            );
            if !expects_continue {
                connections.spawn(drain(rest, LINGER_BYTES));
            }
            Err(status_response(StatusCode::PAYLOAD_TOO_LARGE))
        }
        Err(err) => {
            eprintln!(
                "[kiln-test-host] {} {}: reading the request body: {err}",
                parts.method, parts.uri
            );
            Err(status_response(StatusCode::BAD_REQUEST))
        }
    }
}

/// Reads and discards `body` until it ends, fails, or `at_most` more bytes have come.
async fn drain<B>(mut body: B, at_most: u64)
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut read = 0u64;
    while read <= at_most {
        match body.frame().await {
            Some(Ok(frame)) => {
                read += frame.data_ref().map_or(0, |d| d.len() as u64);
            }
            Some(Err(_)) | None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Frame;
    use std::collections::VecDeque;
    use std::convert::Infallible;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A body without a declared length (as a chunked request is), arriving in chunks.
    struct Chunked(VecDeque<&'static [u8]>);

    impl Body for Chunked {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Ready(
                self.0
                    .pop_front()
                    .map(|chunk| Ok(Frame::data(Bytes::from_static(chunk)))),
            )
        }
    }

    fn chunked(chunks: &[&'static [u8]]) -> Chunked {
        Chunked(chunks.iter().copied().collect())
    }

    /// A declared length over the limit is refused without reading a byte.
    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_unread() {
        let body = Full::new(Bytes::from_static(b"12345"));
        let Ok(Admission::TooLarge(rest)) = admit(body, 4).await else {
            panic!("admitted");
        };
        assert_eq!(rest.collect().await.unwrap().to_bytes(), "12345");
    }

    /// A declared length within the limit streams through untouched.
    #[tokio::test]
    async fn a_declared_length_within_the_limit_streams() {
        let body = Full::new(Bytes::from_static(b"1234"));
        assert!(matches!(admit(body, 4).await, Ok(Admission::Streaming(_))));
    }

    /// A body without a length is read up to the limit, and refused at the first byte beyond.
    #[tokio::test]
    async fn a_chunked_body_over_the_limit_is_refused() {
        let body = chunked(&[b"12", b"34", b"5", b"never read"]);
        let Ok(Admission::TooLarge(rest)) = admit(body, 4).await else {
            panic!("admitted");
        };
        assert_eq!(rest.collect().await.unwrap().to_bytes(), "never read");
    }

    /// A body without a length that fits is handed over whole.
    #[tokio::test]
    async fn a_chunked_body_within_the_limit_is_buffered() {
        let body = chunked(&[b"12", b"34"]);
        let Ok(Admission::Buffered(bytes)) = admit(body, 4).await else {
            panic!("not buffered");
        };
        assert_eq!(bytes, "1234");
    }
}
