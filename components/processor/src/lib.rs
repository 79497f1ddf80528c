//! The `processor` component, on a private route: `POST /jobs/{id}`,
//! reached only through `http://processor.spin.internal`.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};

#[spin_sdk::http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    kiln_spin::serve(
        request,
        response_out,
        kiln::http::handle_process,
        Some(kiln::IMAGE_PIPELINE),
    );
}
