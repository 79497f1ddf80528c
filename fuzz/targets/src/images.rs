//! What a client uploads: every format's integrity walk and header
//! ([`probe`]), decoding under limits (`decode_*`), and the whole
//! pipeline with arbitrary operations ([`pipeline`]).
//!
//! Whatever the bytes, [`kiln_image::process`] returns `Ok` or an error
//! that is the client's (a `4xx` problem), never `Encoding` (a `500`) and
//! never a panic; what it returns is within the limits, the size planned
//! from the header, and an image Kiln reads back as what it says it is.

use kiln_image::{Format, ImageError, Limits, Op, Progress, Stage};
use std::ops::ControlFlow;

/// The decoders' limits: 256×256 (all frames of an animation together),
/// so that every input decodes in a millisecond or two under
/// AddressSanitizer, and an allocation past what that needs (8 bytes a
/// pixel, and the 16 MiB `kiln-image` allows the codecs beyond it) is a
/// finding (see [`Kind::max_alloc_mb`](crate::Kind::max_alloc_mb)).
pub const DECODE_LIMITS: Limits = Limits {
    max_input_pixels: 1 << 16,
    max_output_pixels: 1 << 16,
    max_frames: 32,
};

/// The pipeline's limits: 64×64 in and out, every step, all frames of an
/// animation together, so that even a blur and an AVIF encoding of the
/// largest output stay a few milliseconds.
pub const PIPELINE_LIMITS: Limits = Limits {
    max_input_pixels: 1 << 12,
    max_output_pixels: 1 << 12,
    max_frames: 8,
};

/// [`kiln_image::probe`]: any format, sniffed. What it accepts has a
/// format its magic bytes name, and at least one pixel and one frame.
pub fn probe(data: &[u8]) {
    if let Ok(info) = kiln_image::probe(data) {
        assert_eq!(Format::sniff(data), Some(info.format));
        assert!(
            info.width >= 1 && info.height >= 1 && info.frames >= 1,
            "{info:?}"
        );
    }
}

/// A JPEG decoded (other formats are passed over; see [`decode`]).
pub fn decode_jpeg(data: &[u8]) {
    decode(data, Format::Jpeg);
}

/// A PNG decoded (see [`decode`]).
pub fn decode_png(data: &[u8]) {
    decode(data, Format::Png);
}

/// A WebP decoded, every frame of an animation (see [`decode`]).
pub fn decode_webp(data: &[u8]) {
    decode(data, Format::Webp);
}

/// A GIF decoded, every frame of an animation (see [`decode`]).
pub fn decode_gif(data: &[u8]) {
    decode(data, Format::Gif);
}

/// An AVIF decoded (see [`decode`]).
pub fn decode_avif(data: &[u8]) {
    decode(data, Format::Avif);
}

/// Decodes `data` if it is a `format` file, through the whole pipeline at
/// the least cost beyond decoding: cropped to its top-left pixel and
/// encoded as a PNG, or, for an animated format, kept (every frame is
/// decoded) and encoded in its own format.
fn decode(data: &[u8], format: Format) {
    if Format::sniff(data) != Some(format) {
        return;
    }
    let output = if format.animates() {
        format
    } else {
        Format::Png
    };
    let ops = [
        Op::Crop {
            x: 0,
            y: 0,
            width: 1,
            height: 1,
        },
        Op::Format(output),
    ];
    process(data, &ops, &DECODE_LIMITS);
}

/// The whole pipeline: `ops` on the first line (empty: the default ops),
/// the image after it, under [`PIPELINE_LIMITS`].
pub fn pipeline(data: &[u8]) {
    let Some(newline) = data.iter().position(|&b| b == b'\n') else {
        return;
    };
    let (spec, image) = (&data[..newline], &data[newline + 1..]);
    let ops = if spec.is_empty() {
        kiln_image::default_ops()
    } else {
        match kiln_image::parse_ops(&String::from_utf8_lossy(spec)) {
            Ok(ops) => ops,
            Err(_) => return,
        }
    };
    process(image, &ops, &PIPELINE_LIMITS);
}

/// Runs [`kiln_image::process`] and checks what it returns.
fn process(data: &[u8], ops: &[Op], limits: &Limits) {
    let mut on_progress = |progress: Progress| {
        assert!((0.0..=1.0).contains(&progress.done), "{progress:?}");
        if let Stage::Apply { index, of } | Stage::Frame { index, of } = progress.stage {
            assert!(index < of, "{progress:?}");
        }
        ControlFlow::Continue(())
    };
    let output = match kiln_image::process(data, ops, limits, &mut on_progress) {
        Ok(output) => output,
        Err(ImageError::Encoding(message)) => {
            panic!("encoding failed, a 500 for the client's image: {message}")
        }
        Err(ImageError::Canceled) => panic!("canceled, though nobody asked"),
        Err(_) => return,
    };
    let pixels = u64::from(output.width) * u64::from(output.height);
    assert!(
        pixels >= 1 && pixels <= limits.max_output_pixels,
        "{pixels}"
    );
    let source = kiln_image::probe(data).expect("what processes, probes");
    assert_eq!(
        (output.width, output.height),
        kiln_image::output_dimensions(&source, ops),
        "the size planned from the header"
    );
    let written = kiln_image::probe(&output.bytes).expect("Kiln reads back what it writes");
    assert_eq!(
        (written.format, written.width, written.height),
        (output.format, output.width, output.height)
    );
}
