//! The Spin adapter shared by Kiln's three components: it turns a wasi:http
//! request into an `http::Request`, gives the domain a [`Ctx`] backed by
//! Spin's key-value store and variables, sends the domain's response, and
//! then runs the follow-ups while Spin keeps the instance alive.
//!
//! Everything here is blocking: a component instance serves one request on
//! one thread, so there is nothing else to run meanwhile.

#![deny(missing_docs)]

mod body;
mod kv;
mod runtime;

use kiln::http::{EventStream, FollowUp, Reply, Response, follow_up};
use kiln::{Config, ConfigRef, Ctx, Error, LazyConfig, Pipeline};
use spin_sdk::http::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};
use std::time::Duration;

pub use body::IncomingBodyReader;
pub use kv::SpinKv;
pub use runtime::SpinRuntime;

/// A domain handler, as the components pass it in.
pub type Handler = fn(http::Request<IncomingBodyReader>, &Ctx<'_>) -> Reply;

/// Serves one request with `handler`: respond first, then follow up. Jobs
/// run here (synchronous requests, the local dispatch) with `pipeline`; a
/// component that runs none passes `None` and carries no codecs.
pub fn serve(
    request: IncomingRequest,
    response_out: ResponseOutparam,
    handler: Handler,
    pipeline: Option<Pipeline>,
) {
    let runtime = SpinRuntime::new();
    let read = || {
        read_config()
            .inspect_err(|err| kiln::Runtime::log(&runtime, &format!("misconfigured: {err}")))
    };
    let config = LazyConfig::new(&read);
    let kv = match SpinKv::open_default() {
        Ok(kv) => kv,
        Err(err) => {
            return send(
                &Reply::from(Error::Store(err)).response,
                response_out,
                false,
            );
        }
    };
    let ctx = Ctx {
        kv: &kv,
        runtime: &runtime,
        config: ConfigRef::OnFirstUse(&config),
        pipeline,
    };
    let is_head = matches!(request.method(), spin_sdk::http::Method::Head);
    let reply = match body::to_http_request(request) {
        Ok(request) => handler(request, &ctx),
        Err(err) => Reply::from(err),
    };
    match reply.stream {
        Some(stream) => send_stream(&ctx, &reply.response, stream, response_out),
        None => send(&reply.response, response_out, is_head),
    }
    run_follow_ups(&ctx, reply.follow_ups);
}

/// The component's variables in one host call (`wasi:config/store`
/// `get-all`) rather than one per variable, for a request that needs the
/// configuration (see `LazyConfig`): on Spin each variable read is a walk
/// through its providers.
fn read_config() -> Result<Config, String> {
    let variables: std::collections::HashMap<String, String> =
        spin_sdk::wit::wasi::config::store::get_all()
            .map_err(|err| format!("the variables could not be read: {err:?}"))?
            .into_iter()
            .collect();
    Config::from_lookup(|name| variables.get(name).cloned()).map_err(|err| err.to_string())
}

/// How long an instance gives the host to put its response on the wire
/// before starting the follow-ups.
const LET_THE_RESPONSE_OUT: Duration = Duration::from_millis(1);

fn run_follow_ups(ctx: &Ctx<'_>, follow_ups: Vec<FollowUp>) {
    if follow_ups.is_empty() {
        return;
    }
    // Setting the response does not send it: the host's connection task
    // must run for that. A follow-up that starts work at once (this
    // instance's, or a processor's it dispatches) takes the runtime's
    // threads first, and on a small machine the client then waits for its
    // `202` behind that work (measured on 2 cores: 20 ms instead of 9 for a
    // 3.6 MB upload, `bench/run` section 4). Blocking on a clock for a
    // moment hands the thread back to the host, which sends the response.
    std::thread::sleep(LET_THE_RESPONSE_OUT);
    for f in follow_ups {
        follow_up(ctx, f);
    }
}

/// Sends a fully buffered response. `Content-Length` is set from the body
/// unless the domain set it (it does for `HEAD`, where the body is empty).
fn send(response: &Response, response_out: ResponseOutparam, is_head: bool) {
    let status = response.status();
    let has_body = !(status.is_informational()
        || status == http::StatusCode::NO_CONTENT
        || status == http::StatusCode::NOT_MODIFIED);
    let length = (has_body
        && !response
            .headers()
            .contains_key(http::header::CONTENT_LENGTH))
    .then(|| response.body().len());
    let Some(body) = start(response, length, response_out) else {
        return;
    };
    if let Err(err) = body::write_all(body, response.body()) {
        // The `HEAD` body is deliberately shorter than its Content-Length.
        if !is_head {
            eprintln!("kiln: writing the response failed: {err}");
        }
    }
}

/// Sends an event stream: the response's body (its first events) at once,
/// then each event as the domain produces it, flushed so the client sees
/// it immediately; the body ends with the stream.
fn send_stream(
    ctx: &Ctx<'_>,
    response: &Response,
    mut stream: EventStream,
    response_out: ResponseOutparam,
) {
    let Some(body) = start(response, None, response_out) else {
        return;
    };
    let events = std::iter::once(response.body().clone())
        .chain(std::iter::from_fn(|| stream.next_event(ctx)));
    if let Err(err) = body::write_each(body, events) {
        // Most often the client went away; it reconnects if it wants more.
        eprintln!("kiln: writing the event stream stopped: {err}");
    }
}

/// Sets the response's status and headers (with `Content-Length` when
/// given) and returns its body, open for writing.
fn start(
    response: &Response,
    content_length: Option<usize>,
    response_out: ResponseOutparam,
) -> Option<OutgoingBody> {
    let mut headers: Vec<(String, Vec<u8>)> = response
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    if let Some(length) = content_length {
        headers.push(("content-length".into(), length.to_string().into_bytes()));
    }
    let Ok(fields) = Fields::from_list(&headers) else {
        fail(response_out);
        return None;
    };
    let outgoing = OutgoingResponse::new(fields);
    if outgoing
        .set_status_code(response.status().as_u16())
        .is_err()
    {
        fail(response_out);
        return None;
    }
    let Ok(body) = outgoing.body() else {
        fail(response_out);
        return None;
    };
    response_out.set(outgoing);
    Some(body)
}

/// Answers a bare 500 when even building the response failed.
fn fail(response_out: ResponseOutparam) {
    let outgoing = OutgoingResponse::new(Fields::new());
    outgoing.set_status_code(500).ok();
    if let Ok(body) = outgoing.body() {
        response_out.set(outgoing);
        OutgoingBody::finish(body, None).ok();
    }
}
