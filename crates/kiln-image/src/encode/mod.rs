//! Encoding the final frame: only pixels are written, no metadata.
//!
//! - PNG: zlib level 3 by `zlib-rs` (the `png` crate's `zlib-rs`
//!   feature) with adaptive filtering. Measured natively, encoding only,
//!   single runs on a shared machine (bytes, time):
//!
//!   | image | miniz_oxide 6 (before) | zlib-rs 6 | zlib-rs 3 | zlib-rs 1 | `fdeflate` (`Fast`) |
//!   |---|---|---|---|---|---|
//!   | 16 MP photo | 18.6 MB, 6.0 s | 18.4 MB, 1.3 s | 19.1 MB, 0.46 s | 28.1 MB, 0.24 s | 19.6 MB, 0.20 s |
//!   | 8 MP wallpaper (smooth art) | 7.7 MB, 3.4 s | 7.6 MB, 1.3 s | 8.1 MB, 0.20 s | 12.8 MB, 0.10 s | 8.4 MB, 0.11 s |
//!   | 2.7 MP screenshot | 298 KB, 74 ms | 309 KB, 20 ms | 316 KB, 11 ms | 414 KB, 7 ms | 447 KB, 10 ms |
//!
//!   Level 3 is the last of zlib's greedy levels: 2.8 times as fast as
//!   level 6 on the photo for 4% more bytes, and unlike `fdeflate` it still
//!   finds the long matches of flat graphics. vips 8.14 writes zlib level 6
//!   without filtering: 29.3 MB in 1.2 s for the photo (decode included),
//!   248 KB for the screenshot. `zlib-rs` has wasm simd128 kernels (match
//!   comparison, hash sliding, Adler-32), so Wasm keeps most of its speed.
//! - JPEG, WebP and AVIF: see [`jpeg`], [`webp`] and [`avif`].
//! - GIF: the first (only) frame, quantized to 256 colours with NeuQuant at
//!   speed 10, the `gif` crate's recommended trade-off (speed 1, the
//!   `image` default, is many times slower).

mod avif;
mod jpeg;
pub(crate) mod webp;

use image::codecs::gif::GifEncoder;
use std::io::Write;

use image::{DynamicImage, GenericImageView};

use crate::error::ImageError;
use crate::format::Format;
use crate::ops::Colour;
use crate::progress::Reporter;

pub(crate) const GIF_SPEED: i32 = 10;
/// zlib's fastest level that still searches for matches with hash chains
/// (see the module doc).
const PNG_ZLIB_LEVEL: u8 = 3;
/// The PNG writer's IDAT chunk size (its default is 4 KiB: many small chunks).
const PNG_IDAT_BYTES: usize = 256 * 1024;
/// Bytes of rows handed to the PNG writer between progress reports.
const PNG_BAND_BYTES: usize = 1 << 20;

/// JPEG quality when no `quality(..)` is given: libjpeg's and vips'
/// default.
pub(crate) const JPEG_DEFAULT_QUALITY: u8 = 80;

pub use avif::SPEED as AVIF_SPEED;

/// The quality a lossy format is written at without `quality(..)`; `None`
/// for the lossless formats (PNG, GIF).
pub fn default_quality(format: Format) -> Option<u8> {
    match format {
        Format::Jpeg => Some(JPEG_DEFAULT_QUALITY),
        Format::Webp => Some(webp::DEFAULT_QUALITY),
        Format::Avif => Some(avif::DEFAULT_QUALITY),
        Format::Png | Format::Gif => None,
    }
}

/// Refuses, as the request's fault, a `width`×`height` output that
/// `format` at `quality` cannot be written at: a side its header cannot
/// store, or more pixels than its encoder handles within a lease (lossy
/// WebP, AVIF). [`preflight`](crate::preflight) calls it from the header,
/// so such a request is refused before anything is stored.
pub fn check_fits(
    format: Format,
    quality: Option<u8>,
    width: u32,
    height: u32,
) -> Result<(), ImageError> {
    if width.max(height) > format.max_side() {
        return Err(ImageError::InvalidOp(format!(
            "a {width}x{height} image is too large for {format} output, which allows at most {} pixels a side; resize it first",
            format.max_side()
        )));
    }
    match format {
        Format::Webp => webp::check_fits(quality, width, height),
        Format::Avif => avif::check_fits(width, height),
        Format::Jpeg | Format::Png | Format::Gif => Ok(()),
    }
}

/// Encodes `image` as `format`; `quality` (1..=100, `None` for the
/// format's default) applies to the lossy formats, and JPEG composites
/// transparency onto `background`. JPEG and PNG report their progress row
/// by row through `reporter`.
pub(crate) fn encode(
    image: &DynamicImage,
    format: Format,
    quality: Option<u8>,
    background: Colour,
    reporter: &mut Reporter<'_, '_>,
) -> Result<Vec<u8>, ImageError> {
    let (width, height) = image.dimensions();
    check_fits(format, quality, width, height)?;
    let mut out = Vec::new();
    match format {
        Format::Jpeg => jpeg::jpeg(
            image,
            quality.unwrap_or(JPEG_DEFAULT_QUALITY),
            background,
            &mut out,
            reporter,
        )?,
        Format::Png => png_streamed(image, &mut out, reporter)?,
        Format::Webp => webp::webp(image, quality, &mut out)?,
        Format::Gif => gif(image, &mut out).map_err(|e| encoding_failed(format, &e.to_string()))?,
        Format::Avif => avif::avif(image, quality, &mut out)?,
    }
    Ok(out)
}

pub(super) fn encoding_failed(format: Format, reason: &str) -> ImageError {
    ImageError::Encoding(format!("cannot encode the result as {format}: {reason}"))
}

/// PNG through `png`'s streaming writer, so that rows are filtered and
/// compressed band by band and progress can be reported in between; the
/// settings are those `image`'s `PngEncoder` uses for `Level(3)` and
/// `Adaptive`.
fn png_streamed(
    image: &DynamicImage,
    out: &mut Vec<u8>,
    reporter: &mut Reporter<'_, '_>,
) -> Result<(), ImageError> {
    let failed = |e: png::EncodingError| encoding_failed(Format::Png, &e.to_string());
    let converted;
    let (color, frame) = match image {
        DynamicImage::ImageLuma8(_) => (png::ColorType::Grayscale, image),
        DynamicImage::ImageLumaA8(_) => (png::ColorType::GrayscaleAlpha, image),
        DynamicImage::ImageRgb8(_) => (png::ColorType::Rgb, image),
        DynamicImage::ImageRgba8(_) => (png::ColorType::Rgba, image),
        other => {
            converted = DynamicImage::ImageRgba8(other.to_rgba8());
            (png::ColorType::Rgba, &converted)
        }
    };
    let (width, height) = frame.dimensions();
    let mut encoder = png::Encoder::new(out, width, height);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_deflate_compression(png::DeflateCompression::Level(PNG_ZLIB_LEVEL));
    encoder.set_filter(png::Filter::Adaptive);
    let mut writer = encoder.write_header().map_err(failed)?;
    let mut stream = writer
        .stream_writer_with_size(PNG_IDAT_BYTES)
        .map_err(failed)?;
    let row_len = frame.as_bytes().len() / height.max(1) as usize;
    let band_rows = (PNG_BAND_BYTES / row_len.max(1)).max(1);
    for (n, band) in frame.as_bytes().chunks(band_rows * row_len).enumerate() {
        stream
            .write_all(band)
            .map_err(|e| encoding_failed(Format::Png, &e.to_string()))?;
        let done = ((n + 1) * band_rows).min(height as usize);
        reporter.rows(done as u32, height)?;
    }
    stream.finish().map_err(failed)
}

fn gif(image: &DynamicImage, out: &mut Vec<u8>) -> image::ImageResult<()> {
    let (width, height) = image.dimensions();
    // Dropping the encoder writes the GIF trailer.
    let mut encoder = GifEncoder::new_with_speed(out, GIF_SPEED);
    match image {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => {
            encoder.encode(image.as_bytes(), width, height, image.color().into())
        }
        _ if image.color().has_alpha() => encoder.encode(
            image.to_rgba8().as_raw(),
            width,
            height,
            image::ExtendedColorType::Rgba8,
        ),
        _ => encoder.encode(
            image.to_rgb8().as_raw(),
            width,
            height,
            image::ExtendedColorType::Rgb8,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::{Progress, Stage};
    use std::ops::ControlFlow;

    use crate::test_support::kiln_encoded as encode;
    use crate::test_support::{avifdec, gradient, photo_like};
    use crate::test_support::{decoded_by_image as decoded, small_frame as photo};

    /// Encodes, counting the reports within the stage; `stop_at` breaks
    /// at that many.
    fn encode_counting(
        image: &DynamicImage,
        format: Format,
        stop_at: Option<usize>,
    ) -> (Result<Vec<u8>, ImageError>, usize) {
        let mut within = 0;
        let mut count = |p: Progress| {
            if p.done > 0.0 {
                within += 1;
            }
            match stop_at {
                Some(n) if within >= n => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        };
        let mut reporter = Reporter::start(&mut count, Stage::Encode).unwrap();
        let result = super::encode(image, format, Some(80), Colour::WHITE, &mut reporter);
        (result, within)
    }

    fn large_photo() -> DynamicImage {
        DynamicImage::ImageRgb8(gradient(1500, 1200))
    }

    #[test]
    fn jpeg_and_png_report_progress_row_by_row() {
        for format in [Format::Jpeg, Format::Png] {
            let (result, within) = encode_counting(&large_photo(), format, None);
            assert!(result.is_ok(), "{format}");
            assert!(within > 4, "{format}: {within} reports");
        }
    }

    #[test]
    fn a_stop_asked_mid_encoding_cancels_it() {
        for format in [Format::Jpeg, Format::Png] {
            let (result, _) = encode_counting(&large_photo(), format, Some(3));
            assert_eq!(result, Err(ImageError::Canceled), "{format}");
        }
    }

    /// Streaming (to report progress) costs no compression: the PNG is as
    /// small as the `image` crate's one-shot encoder makes it at the same
    /// settings.
    #[test]
    fn streamed_png_is_as_small_as_the_image_crates_at_the_same_settings() {
        use image::ImageEncoder;
        use image::codecs::png::{CompressionType, FilterType, PngEncoder};
        let photo = DynamicImage::ImageRgb8(photo_like(1500, 1200));
        let mut reference = Vec::new();
        PngEncoder::new_with_quality(
            &mut reference,
            CompressionType::Level(PNG_ZLIB_LEVEL),
            FilterType::Adaptive,
        )
        .write_image(photo.as_bytes(), 1500, 1200, image::ExtendedColorType::Rgb8)
        .unwrap();
        let streamed = encode(&photo, Format::Png, 80).unwrap();
        // The same deflate stream, cut into more IDAT chunks (12 bytes each).
        let difference = streamed.len().abs_diff(reference.len());
        assert!(
            difference * 200 < reference.len(),
            "{} vs {}",
            streamed.len(),
            reference.len()
        );
    }
    /// The `image` crate reads every format but AVIF, which `avifdec`
    /// decodes when installed.
    #[test]
    fn every_format_encodes_and_sniffs_as_itself() {
        for format in Format::ALL {
            let bytes = encode(&photo(), format, 80).unwrap();
            assert_eq!(Format::sniff(&bytes), Some(format));
            let decoded = match format {
                Format::Avif => match avifdec(&bytes) {
                    Some(decoded) => decoded,
                    None => continue,
                },
                _ => decoded(&bytes),
            };
            assert_eq!(decoded.dimensions(), (64, 48), "{format}");
        }
    }

    /// PNG is always lossless (its quality is ignored); WebP is lossy but
    /// for `quality(100)`, which asks for lossless WebP.
    #[test]
    fn png_and_webp_at_quality_100_are_lossless() {
        for (format, quality) in [(Format::Png, 80), (Format::Webp, 100)] {
            let bytes = encode(&photo(), format, quality).unwrap();
            assert_eq!(decoded(&bytes).to_rgb8(), photo().to_rgb8(), "{format}");
        }
    }

    #[test]
    fn gif_encodes_gray_and_transparent_frames() {
        for image in [
            DynamicImage::ImageLuma8(photo().to_luma8()),
            DynamicImage::ImageLumaA8(photo().to_luma_alpha8()),
            DynamicImage::ImageRgba8(photo().to_rgba8()),
        ] {
            let gif = encode(&image, Format::Gif, 80).unwrap();
            assert_eq!(decoded(&gif).dimensions(), (64, 48));
        }
    }

    #[test]
    fn an_image_wider_than_webp_allows_is_refused() {
        let wide = DynamicImage::new_luma8(16_385, 1);
        assert!(matches!(
            encode(&wide, Format::Webp, 80),
            Err(ImageError::InvalidOp(_))
        ));
    }
}
