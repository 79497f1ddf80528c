//! The `operations` component of `spin.toml`: `/operations/{id}` and
//! `/images/{id}`. It runs no job (the processor runs them all, through
//! service chaining), so it has no image pipeline, and its Wasm no codecs:
//! a status read's instance is a fraction of the size (see
//! `kiln::Pipeline`). `operations-local` is the same with the pipeline,
//! for the local dispatch of `spin.cloud.toml`.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    kiln_spin::serve(request, response_out, kiln::http::handle_resources, None);
}
