//! The least a Spin component can do for Kiln's two hottest requests:
//! `POST` stores the body under one key with one key-value `set` and answers
//! `202`; `GET` reads that key with one `get` and answers it as JSON.
//! `POST /floor?key=NAME` stores the body under `NAME` instead: with a new
//! name each time, the store adds a value as it does for each Kiln upload,
//! rather than overwriting one. It
//! works on the raw wasi:http types, reading the body in large pieces, so
//! that nothing but the store and the runtime costs time. The benchmark
//! compares Kiln's `respond-async` acknowledgement and its status read with
//! these.

use spin_sdk::http::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use spin_sdk::wit::wasi::keyvalue::store;

const KEY: &str = "floor";
/// `blocking-write-and-flush` takes at most 4096 bytes at a time.
const WRITE_CHUNK: usize = 4096;

#[spin_sdk::http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    let Ok(bucket) = store::open("default") else {
        return respond(response_out, 503, None);
    };
    let key = request
        .path_with_query()
        .and_then(|path| Some(path.split_once("?key=")?.1.to_owned()))
        .unwrap_or_else(|| KEY.to_owned());
    match request.method() {
        Method::Post => {
            let body = read_body(request);
            match bucket.set(&key, &body) {
                Ok(()) => respond(response_out, 202, None),
                Err(_) => respond(response_out, 503, None),
            }
        }
        Method::Get => match bucket.get(KEY) {
            Ok(Some(value)) => respond(response_out, 200, Some(&value)),
            Ok(None) => respond(response_out, 404, None),
            Err(_) => respond(response_out, 503, None),
        },
        _ => respond(response_out, 405, None),
    }
}

fn read_body(request: IncomingRequest) -> Vec<u8> {
    let mut bytes = Vec::new();
    let Ok(body) = request.consume() else {
        return bytes;
    };
    if let Ok(stream) = body.stream() {
        while let Ok(chunk) = stream.blocking_read(1 << 20) {
            bytes.extend_from_slice(&chunk);
        }
    }
    bytes
}

fn respond(response_out: ResponseOutparam, status: u16, json: Option<&[u8]>) {
    let mut headers = vec![(
        "content-length".to_owned(),
        json.map_or(0, <[u8]>::len).to_string().into_bytes(),
    )];
    if json.is_some() {
        headers.push(("content-type".to_owned(), b"application/json".to_vec()));
    }
    let Ok(fields) = Fields::from_list(&headers) else {
        return;
    };
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(status);
    let Ok(body) = response.body() else {
        return;
    };
    response_out.set(response);
    if let Ok(stream) = body.write() {
        for chunk in json.unwrap_or_default().chunks(WRITE_CHUNK) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                return;
            }
        }
    }
    let _ = OutgoingBody::finish(body, None);
}
