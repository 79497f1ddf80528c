//! The output formats side by side: bytes, encode time and a perceptual
//! score (SSIMULACRA 2) for Kiln's JPEG, WebP and AVIF at their default
//! quality, against Debian's `cwebp` and `avifenc`, and the bytes each
//! needs to reach the same score ("smaller at the same look", measured).
//!
//! SSIMULACRA 2 (`ssimulacra2` crate, BSD-2-Clause) stands in for DSSIM:
//! the `dssim` crate is AGPL and Debian has no `dssim` binary. Higher is
//! better; about 70 is "high quality", 90 visually lossless.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use image::RgbImage;
use kiln_bench_timing::{Timed, timed_process};
use kiln_image::Format;
use ssimulacra2::{ColorPrimaries, Rgb, TransferCharacteristic, compute_frame_ssimulacra2};

use crate::corpus::Photo;
use crate::references::References;
use crate::table::{Table, ratio};

/// The width photos are delivered at on the web, and the formats table
/// measures at.
const DELIVERY_WIDTH: u32 = 1600;
/// Runs timed per encode (median).
const RUNS: usize = 3;

/// Prints the formats tables for each photo: every Kiln lossy format at
/// its default quality and the peers, then the bytes at equal score.
/// `avifenc` runs at Kiln's AVIF speed on one thread, as Kiln does.
pub fn section(photos: &[Photo], references: &References, scratch: &Path) {
    println!("## 7. Output formats: bytes, encode time and SSIMULACRA 2 at {DELIVERY_WIDTH} px\n");
    let peers = ["cwebp", "avifenc", "avifdec"].map(|p| (p, installed(p)));
    if let Some((missing, _)) = peers.iter().find(|(_, ok)| !ok) {
        println!("({missing} not installed: apt-get install webp libavif-bin; section skipped)\n");
        return;
    }
    println!(
        "(each photo resized to {DELIVERY_WIDTH} px wide by Kiln, kept as PNG: that is the reference every \
         encoder starts from and is scored against. Kiln's times are the encode stage alone, median of {RUNS}; \
         the CLI peers' are their whole command, PNG decode included, one thread)\n"
    );
    for photo in photos {
        formats_of(photo, references, scratch);
    }
}

fn formats_of(photo: &Photo, references: &References, scratch: &Path) {
    let reference_png = kiln(
        &photo.bytes,
        &format!("resize(w={DELIVERY_WIDTH}),format(png)"),
    )
    .1;
    let reference = decode(&reference_png, scratch);
    let reference_path = scratch.join("reference.png");
    std::fs::write(&reference_path, &reference_png).expect("a scratch file");
    let measure = |ops: &str| -> (Point, f64) {
        let (timed, bytes) = median_kiln(&reference_png, ops);
        let wasm = median_wasm(references, &reference_png, ops);
        let point = Point {
            bytes: bytes.len(),
            time: Duration::from_secs_f64(encode_ms(&timed) / 1000.0),
            score: score(&reference, &decode(&bytes, scratch)),
        };
        (point, encode_ms(&wasm))
    };
    let default = |format: Format| kiln_image::default_quality(format).expect("a lossy format");
    let (jpeg, jpeg_wasm) = measure("format(jpeg)");
    let (webp, webp_wasm) = measure("format(webp)");
    let (avif, avif_wasm) = measure("format(avif)");
    let cwebp_at = |quality: i32| cwebp(&reference_path, &reference, quality, scratch);
    let cwebp_same = cwebp_at(i32::from(default(Format::Webp)));
    let speed = kiln_image::AVIF_SPEED.to_string();
    let avifenc_at = |level: i32| avifenc(&reference_path, &reference, 63 - level, &speed, scratch);

    println!(
        "### {} ({}×{} → {}×{})\n",
        photo.label,
        photo.width,
        photo.height,
        reference.width(),
        reference.height()
    );
    let mut table = Table::new(&[
        "encoder",
        "setting",
        "bytes",
        "encode native (ms)",
        "encode Wasm (ms)",
        "SSIMULACRA 2",
    ]);
    let row = |table: &mut Table, name: &str, setting: String, point: Point, wasm: Option<f64>| {
        table.row(vec![
            name.to_owned(),
            setting,
            point.bytes.to_string(),
            format!("{:.1}", point.time.as_secs_f64() * 1000.0),
            wasm.map_or("-".into(), |ms| format!("{ms:.1}")),
            format!("{:.1}", point.score),
        ]);
    };
    row(
        &mut table,
        "Kiln JPEG",
        format!("default (q{})", default(Format::Jpeg)),
        jpeg,
        Some(jpeg_wasm),
    );
    row(
        &mut table,
        "Kiln WebP",
        format!("default (q{})", default(Format::Webp)),
        webp,
        Some(webp_wasm),
    );
    row(
        &mut table,
        "cwebp",
        format!("-q {}", default(Format::Webp)),
        cwebp_same,
        None,
    );
    row(
        &mut table,
        "Kiln AVIF",
        format!("default (q{}, speed {speed})", default(Format::Avif)),
        avif,
        Some(avif_wasm),
    );
    table.print();

    let mut equal = Table::new(&[
        "comparison",
        "at SSIMULACRA 2",
        "Kiln bytes",
        "other bytes",
        "Kiln ÷ other",
        "target",
    ]);
    let compare = |table: &mut Table, what: &str, kiln: Point, other: Option<f64>, target: &str| {
        table.row(vec![
            what.to_owned(),
            format!("{:.1}", kiln.score),
            kiln.bytes.to_string(),
            other.map_or("out of range".into(), |b| format!("{b:.0}")),
            other.map_or("-".into(), |b| ratio(kiln.bytes as f64, b)),
            target.to_owned(),
        ]);
    };
    compare(
        &mut equal,
        "Kiln WebP vs cwebp (-q searched)",
        webp,
        bytes_at_score(webp.score, 0..=100, cwebp_at),
        "≤ 1.25x",
    );
    let kiln_jpeg_at = |quality: i32| {
        let (timed, bytes) = kiln(&reference_png, &format!("format(jpeg),quality({quality})"));
        Point {
            bytes: bytes.len(),
            time: Duration::from_secs_f64(encode_ms(&timed) / 1000.0),
            score: score(&reference, &decode(&bytes, scratch)),
        }
    };
    compare(
        &mut equal,
        "Kiln AVIF vs Kiln JPEG (quality searched)",
        avif,
        bytes_at_score(avif.score, 1..=100, kiln_jpeg_at),
        "≤ 0.8x",
    );
    compare(
        &mut equal,
        "Kiln AVIF vs avifenc (cq-level searched)",
        avif,
        bytes_at_score(avif.score, 0..=63, avifenc_at),
        "",
    );
    compare(
        &mut equal,
        "Kiln WebP vs Kiln JPEG (quality searched)",
        webp,
        bytes_at_score(webp.score, 1..=100, kiln_jpeg_at),
        "",
    );
    equal.print();
}

/// Kiln's pipeline natively on `bytes`: its timings and output.
fn kiln(bytes: &[u8], ops: &str) -> (Timed, Vec<u8>) {
    let ops = kiln_image::parse_ops(ops).expect("valid ops");
    let (timed, output) = timed_process(bytes, &ops).expect("the pipeline runs");
    (timed, output.bytes)
}

fn median_kiln(bytes: &[u8], ops: &str) -> (Timed, Vec<u8>) {
    let mut runs: Vec<(Timed, Vec<u8>)> = (0..RUNS).map(|_| kiln(bytes, ops)).collect();
    runs.sort_by(|a, b| encode_ms(&a.0).total_cmp(&encode_ms(&b.0)));
    runs.swap_remove(RUNS / 2)
}

/// The same pipeline in the bench's Wasm pipeline component.
fn median_wasm(references: &References, bytes: &[u8], ops: &str) -> Timed {
    let mut runs: Vec<Timed> = (0..RUNS)
        .map(|_| references.pipeline("image/png", bytes, ops))
        .collect();
    runs.sort_by(|a, b| encode_ms(a).total_cmp(&encode_ms(b)));
    runs.swap_remove(RUNS / 2)
}

fn encode_ms(timed: &Timed) -> f64 {
    timed
        .stages
        .iter()
        .filter(|stage| stage.stage == "encode")
        .map(|stage| stage.ms)
        .sum()
}

fn cwebp(input: &Path, reference: &RgbImage, quality: i32, scratch: &Path) -> Point {
    let output = scratch.join("cwebp.webp");
    let time = run(
        "cwebp",
        &[
            "-quiet",
            "-q",
            &quality.to_string(),
            &input.display().to_string(),
            "-o",
            &output.display().to_string(),
        ],
    );
    peer_point(&output, reference, time, scratch)
}

/// `avifenc` at a constant quality level (0 best, 63 worst), 8-bit 4:2:0,
/// one thread.
fn avifenc(input: &Path, reference: &RgbImage, level: i32, speed: &str, scratch: &Path) -> Point {
    let output = scratch.join("avifenc.avif");
    let level = format!("cq-level={level}");
    let time = run(
        "avifenc",
        &[
            "-j",
            "1",
            "-s",
            speed,
            "-d",
            "8",
            "-y",
            "420",
            "--min",
            "0",
            "--max",
            "63",
            "-a",
            "end-usage=q",
            "-a",
            &level,
            &input.display().to_string(),
            &output.display().to_string(),
        ],
    );
    peer_point(&output, reference, time, scratch)
}

fn peer_point(output: &Path, reference: &RgbImage, time: Duration, scratch: &Path) -> Point {
    let bytes = std::fs::read(output).expect("the peer's output");
    Point {
        bytes: bytes.len(),
        time,
        score: score(reference, &decode(&bytes, scratch)),
    }
}

/// SSIMULACRA 2 of `distorted` against `reference` (same size).
pub fn score(reference: &RgbImage, distorted: &RgbImage) -> f64 {
    let frame = |image: &RgbImage| {
        let pixels = image
            .pixels()
            .map(|p| p.0.map(|c| f32::from(c) / 255.0))
            .collect();
        Rgb::new(
            pixels,
            image.width() as usize,
            image.height() as usize,
            TransferCharacteristic::SRGB,
            ColorPrimaries::BT709,
        )
        .expect("a frame of the image's size")
    };
    compute_frame_ssimulacra2(frame(reference), frame(distorted)).expect("same-sized frames")
}

/// An encoded image decoded back to RGB: AVIF by Debian's `avifdec`, the
/// rest by the `image` crate.
pub fn decode(bytes: &[u8], scratch: &Path) -> RgbImage {
    if bytes.get(4..8) == Some(b"ftyp") {
        let (input, output) = (scratch.join("decode.avif"), scratch.join("decoded.png"));
        std::fs::write(&input, bytes).expect("a scratch file");
        run(
            "avifdec",
            &[&input.display().to_string(), &output.display().to_string()],
        );
        return image::open(&output).expect("avifdec's PNG").to_rgb8();
    }
    image::load_from_memory(bytes)
        .expect("a decodable output")
        .to_rgb8()
}

/// Whether `program` runs (`--version` or `-version` answers).
pub fn installed(program: &str) -> bool {
    ["--version", "-version"].iter().any(|flag| {
        Command::new(program)
            .arg(flag)
            .output()
            .is_ok_and(|out| out.status.success())
    })
}

/// Runs a command to its end, panicking with its stderr on failure; its
/// wall time.
pub fn run(program: &str, args: &[&str]) -> Duration {
    let started = Instant::now();
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("running {program}: {err}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    started.elapsed()
}

/// One encode: its bytes, the time it took and its score.
#[derive(Clone, Copy, Debug)]
pub struct Point {
    /// Encoded size.
    pub bytes: usize,
    /// Encode time (a command's wall time for the CLI peers).
    pub time: Duration,
    /// SSIMULACRA 2 against the reference.
    pub score: f64,
}

/// The bytes an encoder needs to reach `target` score, interpolated
/// between the two settings of `knob` that bracket it. `encode` must give
/// higher scores for higher knob values (roughly: codecs are not exactly
/// monotonic, so the bracket is searched by bisection, then interpolated
/// linearly). `None` when even the ends of the range do not bracket it.
pub fn bytes_at_score(
    target: f64,
    knob: std::ops::RangeInclusive<i32>,
    mut encode: impl FnMut(i32) -> Point,
) -> Option<f64> {
    let (mut low, mut high) = (*knob.start(), *knob.end());
    let (mut at_low, mut at_high) = (encode(low), encode(high));
    if at_low.score > target || at_high.score < target {
        return None;
    }
    while high - low > 1 {
        let middle = (low + high) / 2;
        let at_middle = encode(middle);
        if at_middle.score < target {
            (low, at_low) = (middle, at_middle);
        } else {
            (high, at_high) = (middle, at_middle);
        }
    }
    let span = at_high.score - at_low.score;
    let share = if span > 0.0 {
        (target - at_low.score) / span
    } else {
        0.0
    };
    Some(at_low.bytes as f64 + share * (at_high.bytes as f64 - at_low.bytes as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(bytes: usize, score: f64) -> Point {
        Point {
            bytes,
            time: Duration::ZERO,
            score,
        }
    }

    /// A linear encoder is inverted exactly; a target out of reach is
    /// `None`, not a made-up figure.
    #[test]
    fn bytes_at_score_interpolates_between_the_bracketing_settings() {
        let encoder = |q: i32| point(1000 + 100 * q as usize, f64::from(q));
        let bytes = bytes_at_score(42.5, 0..=100, encoder).unwrap();
        assert!((bytes - 5250.0).abs() < 1e-9, "{bytes}");
        assert_eq!(bytes_at_score(101.0, 0..=100, encoder), None);
        assert_eq!(bytes_at_score(-1.0, 0..=100, encoder), None);
    }

    #[test]
    fn identical_images_score_100_and_noise_scores_lower() {
        let image = crate::photo(64, 64);
        assert!(score(&image, &image) > 99.9);
        let mut noisy = image.clone();
        noisy.pixels_mut().enumerate().for_each(|(i, p)| {
            p.0[0] = p.0[0].wrapping_add((i % 7) as u8 * 9);
        });
        assert!(score(&image, &noisy) < 90.0);
    }
}
