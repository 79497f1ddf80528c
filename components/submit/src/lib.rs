//! The `submit` component: `POST /images`. It runs synchronous requests'
//! jobs itself, so it carries the image pipeline.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    kiln_spin::serve(
        request,
        response_out,
        kiln::http::handle_submit,
        Some(kiln::IMAGE_PIPELINE),
    );
}
