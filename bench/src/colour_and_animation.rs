//! Section 8 of the report: what colour management and animation cost in
//! Wasm, each against its own baseline in the same run.
//!
//! - Colour: P on the 16 MP photo tagged with Adobe RGB (converted and
//!   saved by `vips icc_transform`, so the numbers mean Adobe RGB) against
//!   the same photo saved untagged at the same quality: the ratio is what
//!   applying the profile adds (issue 22's bound: 1.15×); then Kiln's
//!   colours against libvips's, in CIEDE2000 ([`crate::colour_accuracy`]).
//! - Animation: a 100-frame 480×270 GIF resized to 240 px wide, against
//!   `vips thumbnail x.gif[n=-1]` (1 and 2 threads), time and bytes
//!   (issue 22's bounds: 2× the time, 1.2× the bytes). Two GIFs made from
//!   the 4 MP photo: a pan, where every pixel changes each frame, and a
//!   cinemagraph, where a 160×90 window pans over a still picture.

use std::path::Path;

use image::{RgbaImage, imageops};

use crate::corpus::Photo;
use crate::references::References;
use crate::table::{Table, ms, ratio};
use crate::{P, median, median_of, vips};

const RUNS: usize = 5;
const ADOBE_RGB: &str = "/usr/share/color/icc/colord/AdobeRGB1998.icc";
const FRAMES: u32 = 100;
const FRAME: (u32, u32) = (480, 270);
const RESIZE: &str = "resize(w=240)";

/// Prints section 8 for the runtimes of `references` (name, components).
pub fn section(
    photos: &[Photo],
    references: &[(&str, &References)],
    has_vips: bool,
    scratch: &Path,
) {
    println!("## 8. Colour management and animation in Wasm\n");
    if has_vips {
        colour(&photos[1], references, scratch);
        crate::colour_accuracy::table(&photos[0], scratch);
    } else {
        println!("(no vips: the tagged photo cannot be made; colour rows skipped)\n");
    }
    animation(&photos[0], references, has_vips, scratch);
}

fn colour(photo: &Photo, references: &[(&str, &References)], scratch: &Path) {
    let untagged = scratch.join("untagged.jpg");
    let tagged = scratch.join("adobe-rgb.jpg");
    let path = |p: &Path| p.display().to_string();
    vips::call(&[
        "copy",
        &path(&photo.path),
        &format!("{}[Q=90,strip]", path(&untagged)),
    ]);
    vips::call(&[
        "icc_transform",
        &path(&photo.path),
        &format!("{}[Q=90]", path(&tagged)),
        ADOBE_RGB,
    ]);
    let untagged = std::fs::read(&untagged).expect("the untagged photo");
    let tagged = std::fs::read(&tagged).expect("the tagged photo");
    println!(
        "P on the {} photo in the bare pipeline component, saved by vips at quality 90 untagged and \
         tagged Adobe RGB; runs take turns; median of {RUNS}\n",
        photo.label
    );
    let mut table = Table::new(&[
        "runtime",
        "untagged (ms)",
        "Adobe RGB (ms)",
        "Adobe RGB ÷ untagged (bound 1.15x)",
    ]);
    for (name, references) in references {
        let (mut plain, mut profiled) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            plain.push(references.pipeline("image/jpeg", &untagged, P).total_ms);
            profiled.push(references.pipeline("image/jpeg", &tagged, P).total_ms);
        }
        let (plain, profiled) = (median(&plain), median(&profiled));
        table.row(vec![
            (*name).to_owned(),
            format!("{plain:.1}"),
            format!("{profiled:.1}"),
            ratio(profiled, plain),
        ]);
    }
    table.print();
    println!();
}

fn animation(photo: &Photo, references: &[(&str, &References)], has_vips: bool, scratch: &Path) {
    println!(
        "A {FRAMES}-frame {}×{} GIF made from the {} photo, `{RESIZE}` in the bare pipeline component \
         against `vips thumbnail x.gif[n=-1] out.gif 240`; median of {RUNS}\n",
        FRAME.0, FRAME.1, photo.label
    );
    let source = image::load_from_memory(&photo.bytes)
        .expect("the photo decodes")
        .to_rgba8();
    let mut header = vec!["GIF".to_owned(), "bytes in".to_owned()];
    for (name, _) in references {
        header.push(format!("Kiln, {name} (ms)"));
    }
    header.extend(["vips 2t (ms)", "vips 1t (ms)"].map(str::to_owned));
    for (name, _) in references {
        header.push(format!("Kiln, {name} ÷ vips 1t (bound 2x)"));
    }
    header.push("bytes Kiln / vips (bound 1.2x)".to_owned());
    header.push("mean error Kiln / vips".to_owned());
    let mut table = Table::new(&header.iter().map(String::as_str).collect::<Vec<_>>());
    for (label, frames) in [("pan", pan(&source)), ("cinemagraph", cinemagraph(&source))] {
        let gif = gif_of(frames);
        let input = scratch.join(format!("{label}.gif"));
        std::fs::write(&input, &gif).expect("writing the GIF");
        let mut row = vec![label.to_owned(), gif.len().to_string()];
        let mut kiln_times = Vec::new();
        let mut kiln_bytes = 0;
        for (_, references) in references {
            let timings: Vec<f64> = (0..RUNS)
                .map(|_| {
                    let timed = references.pipeline("image/gif", &gif, RESIZE);
                    kiln_bytes = timed.bytes;
                    timed.total_ms
                })
                .collect();
            let time = median(&timings);
            kiln_times.push(time);
            row.push(format!("{time:.1}"));
        }
        let output = scratch.join(format!("{label}-vips.gif"));
        let steps = vec![vec![
            "thumbnail".to_owned(),
            format!("{}[n=-1]", input.display()),
            output.display().to_string(),
            "240".to_owned(),
        ]];
        let one = has_vips.then(|| median_of(RUNS, || vips::run(1, &steps)));
        let two = has_vips.then(|| median_of(RUNS, || vips::run(2, &steps)));
        row.extend([two, one].map(|time| time.map_or("-".into(), ms)));
        for kiln in &kiln_times {
            row.push(one.map_or("-".into(), |one| ratio(*kiln, one.as_secs_f64() * 1000.0)));
        }
        let vips_bytes = std::fs::metadata(&output).map(|m| m.len()).ok();
        let kiln_gif = kiln_image::process(
            &gif,
            &kiln_image::parse_ops(RESIZE).expect("valid ops"),
            &kiln_image::Limits::default(),
            &mut |_| std::ops::ControlFlow::Continue(()),
        )
        .expect("Kiln resizes the GIF natively");
        let reference = expected_frames(&gif);
        row.push(match vips_bytes {
            Some(bytes) => format!(
                "{kiln_bytes} / {bytes} = {}",
                ratio(kiln_bytes as f64, bytes as f64)
            ),
            None => "-".into(),
        });
        let vips_error = std::fs::read(&output)
            .ok()
            .map(|vips_gif| mean_error(&reference, &vips_gif));
        row.push(format!(
            "{:.2} / {}",
            mean_error(&reference, &kiln_gif.bytes),
            vips_error.map_or("-".into(), |error| format!("{error:.2}"))
        ));
        table.row(row);
    }
    table.print();
    println!();
}

/// The frames of `gif` as shown, each resized to 240 px wide by the
/// `image` crate's Lanczos3: the yardstick neither Kiln nor vips made.
fn expected_frames(gif: &[u8]) -> Vec<RgbaImage> {
    shown(gif)
        .iter()
        .map(|frame| {
            let height = (frame.height() * 240).div_ceil(frame.width());
            imageops::resize(frame, 240, height, imageops::FilterType::Lanczos3)
        })
        .collect()
}

/// The frames of an animated GIF as a viewer shows them.
fn shown(gif: &[u8]) -> Vec<RgbaImage> {
    use image::AnimationDecoder;
    image::codecs::gif::GifDecoder::new(std::io::Cursor::new(gif))
        .expect("a GIF")
        .into_frames()
        .map(|frame| frame.expect("a frame").into_buffer())
        .collect()
}

/// The mean absolute difference per channel (RGB, 0–255) between the
/// frames `gif` shows and `expected`, over all frames; infinite when the
/// frame count or a size differs.
fn mean_error(expected: &[RgbaImage], gif: &[u8]) -> f64 {
    let frames = shown(gif);
    if frames.len() != expected.len()
        || frames
            .iter()
            .zip(expected)
            .any(|(a, b)| a.dimensions() != b.dimensions())
    {
        return f64::INFINITY;
    }
    let (mut sum, mut count) = (0u64, 0u64);
    for (frame, expected) in frames.iter().zip(expected) {
        for (a, b) in frame.pixels().zip(expected.pixels()) {
            sum += (0..3).map(|c| u64::from(a[c].abs_diff(b[c]))).sum::<u64>();
            count += 3;
        }
    }
    sum as f64 / count.max(1) as f64
}

/// `FRAMES` windows of the photo, each a little further right and down.
fn pan(photo: &RgbaImage) -> Vec<RgbaImage> {
    let scene = imageops::resize(
        photo,
        FRAME.0 * 2,
        FRAME.1 * 2,
        imageops::FilterType::Triangle,
    );
    (0..FRAMES)
        .map(|n| {
            let (x, y) = (n * FRAME.0 / FRAMES, n * FRAME.1 / FRAMES);
            imageops::crop_imm(&scene, x, y, FRAME.0, FRAME.1).to_image()
        })
        .collect()
}

/// The photo at the frame's size, still, but for a 160×90 window in its
/// middle that shows the corner of [`pan`]'s frames.
fn cinemagraph(photo: &RgbaImage) -> Vec<RgbaImage> {
    let still = imageops::resize(photo, FRAME.0, FRAME.1, imageops::FilterType::Triangle);
    pan(photo)
        .iter()
        .map(|panned| {
            let mut frame = still.clone();
            let window = imageops::crop_imm(panned, 0, 0, 160, 90).to_image();
            imageops::replace(&mut frame, &window, 160, 90);
            frame
        })
        .collect()
}

/// The frames as a GIF looping forever, 40 ms each, with one global
/// palette (NeuQuant, trained on the first frame), as ffmpeg's palettegen
/// or a GIF editor writes them: a pixel that does not change keeps its
/// index from frame to frame.
fn gif_of(frames: Vec<RgbaImage>) -> Vec<u8> {
    let (width, height) = frames[0].dimensions();
    let quantizer = color_quant::NeuQuant::new(10, 256, frames[0].as_raw());
    let mut bytes = Vec::new();
    let side = |side: u32| u16::try_from(side).expect("a GIF side");
    let mut encoder = gif::Encoder::new(
        &mut bytes,
        side(width),
        side(height),
        &quantizer.color_map_rgb(),
    )
    .expect("a GIF header");
    encoder
        .set_repeat(gif::Repeat::Infinite)
        .expect("a loop count");
    for frame in &frames {
        let indices: Vec<u8> = frame
            .as_raw()
            .chunks_exact(4)
            .map(|pixel| quantizer.index_of(pixel) as u8)
            .collect();
        let mut frame = gif::Frame::from_indexed_pixels(side(width), side(height), indices, None);
        frame.delay = 4;
        encoder.write_frame(&frame).expect("a GIF frame");
    }
    drop(encoder);
    bytes
}
