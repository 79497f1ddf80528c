//! Shared helpers for Kiln's benchmarks: inputs, the `vips` peer, load,
//! components' static memory, tables, test images, timing and native runs
//! held to one core.

pub mod async_throughput;
pub mod avif_input;
pub mod cli_batch;
pub mod colour_accuracy;
pub mod colour_and_animation;
pub mod corpus;
pub mod formats;
pub mod host_calls;
pub mod load;
pub mod one_core;
pub mod references;
pub mod static_memory;
pub mod table;
pub mod vips;

use std::time::{Duration, Instant};

/// The pipeline of issue 7 that the report measures throughout: a photo
/// made into a sharpened 1600 px JPEG.
pub const P: &str = "resize(w=1600),sharpen(sigma=1),quality(82),format(jpeg)";

/// A photo-like RGB test image: smooth gradients plus deterministic noise,
/// so codecs and resamplers do realistic work.
pub fn photo(width: u32, height: u32) -> image::RgbImage {
    let mut state = 0x2545_f491_u32;
    image::RgbImage::from_fn(width, height, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let noise = (state % 24) as u8;
        image::Rgb([
            ((x * 255 / width) as u8).saturating_add(noise),
            ((y * 255 / height) as u8).saturating_add(noise),
            (((x + y) * 127 / (width + height)) as u8).saturating_add(noise),
        ])
    })
}

/// The image encoded as PNG.
pub fn png(image: &image::RgbImage) -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, image::ImageFormat::Png)
        .expect("encoding a generated image");
    bytes.into_inner()
}

/// The median of `runs` timings of `work`.
pub fn median_time(runs: usize, mut work: impl FnMut()) -> Duration {
    median_of(runs, || {
        let start = Instant::now();
        work();
        start.elapsed()
    })
}

/// The median of `runs` durations that `measure` reports itself.
pub fn median_of(runs: usize, mut measure: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..runs).map(|_| measure()).collect();
    times.sort();
    times[times.len() / 2]
}

/// The median of figures measured already (rates, ratios), by the same
/// rule as [`median_of`]: the middle one, the upper middle of an even count.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// The median of the ratios `a[i] / b[i]` of figures measured in turns,
/// round by round: a shared machine's speed drifts over seconds, and the
/// two sides of one round saw the same drift.
pub fn median_ratio(a: &[f64], b: &[f64]) -> f64 {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b).collect();
    median(&ratios)
}
