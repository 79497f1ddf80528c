//! The image pipeline's choices, measured against the obvious alternatives
//! in one run (ratios, not absolute times: the machines are shared):
//!
//! - resize: `fast_image_resize` (Kiln) vs `image::imageops::resize`, both
//!   Lanczos3, 12 MP down to 800 px wide;
//! - compress: Kiln's JPEG (jpeg-encoder, 4:2:0, optimized Huffman) vs the
//!   `image` crate's encoder at the same quality.
//!
//! Run: `cargo run --release -p kiln-bench --bin pipeline`

use kiln_bench::{median_of, median_time, photo, png};
use kiln_image::{Limits, Progress, Stage, parse_ops, process};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

fn main() {
    let source = photo(4000, 3000);
    let source_png = png(&source);
    let limits = Limits {
        max_input_pixels: 50_000_000,
        max_output_pixels: 50_000_000,
        max_frames: 1000,
    };
    let keep_going = &mut |_| ControlFlow::Continue(());

    // Resize alone, timed inside the pipeline from the start to the end of
    // its stage, against the `image` crate on the same pixels.
    let resize_ops = parse_ops("resize(w=800)").expect("valid ops");
    let kiln_resize = median_of(5, || {
        let mut started_at = None;
        let mut resize_time = Duration::ZERO;
        let mut timer = |progress: Progress| {
            if let Stage::Apply { index: 0, .. } = progress.stage {
                if progress.done == 0.0 {
                    started_at = Some(Instant::now());
                } else if progress.is_stage_end() {
                    resize_time = started_at.map(|t| t.elapsed()).unwrap_or_default();
                }
            }
            ControlFlow::Continue(())
        };
        process(&source_png, &resize_ops, &limits, &mut timer).expect("resize");
        resize_time
    });
    let image_resize = median_time(5, || {
        image::imageops::resize(&source, 800, 600, image::imageops::FilterType::Lanczos3);
    });
    println!("resize 4000x3000 -> 800x600, Lanczos3 (median of 5)");
    println!(
        "  image::imageops::resize      {:>8.1} ms",
        ms(image_resize)
    );
    println!("  kiln (fast_image_resize)     {:>8.1} ms", ms(kiln_resize));
    println!(
        "  speed-up                     {:>8.1}x",
        ms(image_resize) / ms(kiln_resize).max(0.001)
    );

    let medium = photo(1600, 1200);
    let medium_png = png(&medium);
    let jpeg_ops = parse_ops("format(jpeg),quality(80)").expect("valid ops");
    let kiln_jpeg = process(&medium_png, &jpeg_ops, &limits, keep_going).expect("jpeg");
    let mut image_jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut image_jpeg, 80)
        .encode_image(&medium)
        .expect("image's jpeg");
    println!("compress 1600x1200 to JPEG quality 80");
    println!(
        "  image crate encoder          {:>8} bytes",
        image_jpeg.len()
    );
    println!(
        "  kiln (4:2:0, optimized)      {:>8} bytes",
        kiln_jpeg.bytes.len()
    );
    println!(
        "  size ratio kiln/image        {:>8.2}",
        kiln_jpeg.bytes.len() as f64 / image_jpeg.len() as f64
    );
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
