//! `kiln_image::process` inside Wasm and nothing else: `POST /pipeline?ops=`
//! with an image runs the pipeline on it and answers, as JSON, how long each
//! stage took (decode, each operation, encode; timed in the guest with the
//! monotonic clock Spin gives it) and the output's size and dimensions.
//! No key-value store and no HTTP contract, so the benchmark can set the
//! codecs' cost in Wasm beside the same code natively.

use kiln_bench_timing::timed_process;
use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(request: Request) -> Response {
    let spec = request
        .query()
        .split('&')
        .find_map(|pair| pair.strip_prefix("ops="))
        .unwrap_or_default()
        .to_owned();
    let ops = match kiln_image::parse_ops(&spec) {
        Ok(ops) => ops,
        Err(err) => return text(400, &format!("invalid ops: {err}")),
    };
    match timed_process(request.body(), &ops) {
        Ok((timed, _)) => Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&timed).unwrap_or_default())
            .build(),
        Err(err) => text(422, &err.to_string()),
    }
}

fn text(status: u16, message: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(message.to_owned())
        .build()
}
