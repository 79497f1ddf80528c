//! The `operations` component of `spin.cloud.toml`: `/operations/{id}` and
//! `/images/{id}`, with the image pipeline. Under the local dispatch
//! (Fermyon Cloud has no service chaining) the instance that finds a job
//! stuck, often a status read, runs it itself after answering.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    kiln_spin::serve(
        request,
        response_out,
        kiln::http::handle_resources,
        Some(kiln::IMAGE_PIPELINE),
    );
}
