//! Any bytes through probe and process: every answer is a result, never a
//! panic (a panic in Wasm ends the instance, not the request), whatever
//! the format the bytes claim.
#![no_main]

use std::ops::ControlFlow;

use kiln_image::{Limits, parse_ops, probe, process};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    // Small limits keep each run quick; the decoders' paths are the same.
    let limits = Limits {
        max_input_pixels: 1 << 20,
        max_output_pixels: 1 << 20,
        max_frames: 16,
    };
    if probe(bytes).is_err() {
        return;
    }
    let ops = parse_ops("resize(w=32),format(png)").expect("valid ops");
    let _ = process(bytes, &ops, &limits, &mut |_| ControlFlow::Continue(()));
});
