//! Encoding the final frame: only pixels are written, no metadata.
//!
//! - JPEG: `jpeg-encoder`, baseline in one interleaved scan with the
//!   standard (Annex K) Huffman tables, 4:2:0 chroma subsampling
//!   (box-averaged rather than top-left sampled) and the requested quality:
//!   what libjpeg, and so libvips, writes by default. Rows are pulled one
//!   MCU row at a time and written straight out, so no coefficient store is
//!   kept (progressive or optimized-table output holds one 16-bit
//!   coefficient per sample, 48 MB for a 16-megapixel photo). Measured
//!   natively, encoding alone, on a 16-megapixel photo at quality 80: 161 ms and
//!   1,702,603 bytes (vips: 1,702,885), against 230 ms and 1,645,782 bytes
//!   for the two-scan progressive file with optimized tables written before;
//!   the quantized coefficients are the same, so are the decoded pixels.
//!   Optimized tables are not worth a baseline file either: `jpeg-encoder`
//!   0.7 then writes one scan per component, which `zune-jpeg` 0.5.15 (the
//!   `image` crate's JPEG decoder, so Kiln's own input path and most Rust
//!   consumers) silently decodes to garbage when chroma is subsampled
//!   (zune-image issue 422); the interleaved scan decodes correctly
//!   everywhere (tested against `jpeg-decoder`). Transparency is composited
//!   onto white while rows are fed to the encoder, so no extra frame is
//!   allocated. `jpeg-encoder`'s `simd` feature (AVX2 only, natively
//!   about 5% off a whole re-encode) stays off, so native figures are
//!   those of its portable code, as in Wasm; the colour conversion here is
//!   a plain loop that the compiler vectorizes for SSE2 and simd128 alike.
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
//! - WebP and AVIF: see [`webp`] and [`avif`].
//! - GIF: the first (only) frame, quantized to 256 colours with NeuQuant at
//!   speed 10, the `gif` crate's recommended trade-off (speed 1, the
//!   `image` default, is many times slower).

mod avif;
mod webp;

use image::codecs::gif::GifEncoder;
use std::cell::{Cell, RefCell};
use std::io::Write;

use image::{DynamicImage, GenericImageView, GrayAlphaImage, GrayImage, RgbImage, RgbaImage};
use jpeg_encoder::{
    ChromaSubsamplingMethod, Encoder, ImageBuffer, JpegColorType, SamplingFactor, rgb_to_ycbcr,
};

use crate::error::ImageError;
use crate::format::Format;
use crate::progress::Reporter;

const GIF_SPEED: i32 = 10;
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
/// format's default) applies to the lossy formats. JPEG and PNG report
/// their progress row by row through `reporter`.
pub(crate) fn encode(
    image: &DynamicImage,
    format: Format,
    quality: Option<u8>,
    reporter: &mut Reporter<'_, '_>,
) -> Result<Vec<u8>, ImageError> {
    let (width, height) = image.dimensions();
    check_fits(format, quality, width, height)?;
    let mut out = Vec::new();
    match format {
        Format::Jpeg => jpeg(
            image,
            quality.unwrap_or(JPEG_DEFAULT_QUALITY),
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

fn jpeg(
    image: &DynamicImage,
    quality: u8,
    out: &mut Vec<u8>,
    reporter: &mut Reporter<'_, '_>,
) -> Result<(), ImageError> {
    // `encode` checked both sides against `Format::Jpeg.max_side()`.
    let width = u16::try_from(image.width()).expect("checked against the JPEG maximum");
    let height = u16::try_from(image.height()).expect("checked against the JPEG maximum");
    let encoder = jpeg_encoder(out, quality);
    let rgba;
    let frame = match image {
        DynamicImage::ImageRgb8(rgb) => Frame::Rgb(rgb),
        DynamicImage::ImageLuma8(gray) => Frame::Gray(gray),
        DynamicImage::ImageRgba8(rgba) => Frame::RgbaOverWhite(rgba),
        DynamicImage::ImageLumaA8(gray) => Frame::GrayAlphaOverWhite(gray),
        other => {
            rgba = other.to_rgba8();
            Frame::RgbaOverWhite(&rgba)
        }
    };
    let rows = Rows {
        frame,
        width,
        height,
        reporter: RefCell::new(reporter),
        stopped: Cell::new(None),
    };
    let encoded = encoder.encode_image(&rows);
    if let Some(stop) = rows.stopped.take() {
        return Err(stop);
    }
    encoded.map_err(|e| encoding_failed(Format::Jpeg, &e.to_string()))
}

/// Kiln's JPEG settings (see the module doc). `jpeg-encoder` writes a
/// baseline file in one interleaved scan unless asked for optimized
/// tables or progressive scans, which Kiln leaves off.
fn jpeg_encoder(out: &mut Vec<u8>, quality: u8) -> Encoder<&mut Vec<u8>> {
    let mut encoder = Encoder::new(out, quality);
    encoder.set_sampling_factor(SamplingFactor::R_4_2_0);
    encoder.set_chroma_subsampling_method(ChromaSubsamplingMethod::Average);
    encoder
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

/// `channel` seen through `alpha` over white.
fn over_white(channel: u8, alpha: u8) -> u8 {
    let (c, a) = (u16::from(channel), u16::from(alpha));
    ((c * a + 255 * (255 - a) + 127) / 255) as u8
}

/// The 8-bit layouts the JPEG encoder is fed, transparent ones as if
/// composited onto white (so no extra frame is allocated for that).
enum Frame<'a> {
    Rgb(&'a RgbImage),
    Gray(&'a GrayImage),
    RgbaOverWhite(&'a RgbaImage),
    GrayAlphaOverWhite(&'a GrayAlphaImage),
}

/// The rows of a frame as the JPEG encoder pulls them, one at a time,
/// reporting progress as they go. Once the caller asked to stop, the
/// remaining rows are fed as zeros, which costs the encoder least; the
/// stop is returned when it is done.
struct Rows<'f, 'r, 'a, 'b> {
    frame: Frame<'f>,
    width: u16,
    height: u16,
    reporter: RefCell<&'r mut Reporter<'a, 'b>>,
    stopped: Cell<Option<ImageError>>,
}

impl ImageBuffer for &Rows<'_, '_, '_, '_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        match self.frame {
            Frame::Rgb(_) | Frame::RgbaOverWhite(_) => JpegColorType::Ycbcr,
            Frame::Gray(_) | Frame::GrayAlphaOverWhite(_) => JpegColorType::Luma,
        }
    }

    fn width(&self) -> u16 {
        self.width
    }

    fn height(&self) -> u16 {
        self.height
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let width = usize::from(self.width);
        let components = match self.get_jpeg_color_type() {
            JpegColorType::Luma => 1,
            _ => 3,
        };
        let stopped = self.stopped.take();
        if stopped.is_some() {
            self.stopped.set(stopped);
            buffers[..components]
                .iter_mut()
                .for_each(|b| b.resize(b.len() + width, 0));
            return;
        }
        let row = usize::from(y);
        match self.frame {
            Frame::Rgb(rgb) => {
                let pixels = &rgb.as_raw()[row * width * 3..][..width * 3];
                push_ycbcr_row(buffers, pixels.as_chunks::<3>().0, |&rgb| rgb);
            }
            Frame::Gray(gray) => {
                buffers[0].extend_from_slice(&gray.as_raw()[row * width..][..width])
            }
            Frame::RgbaOverWhite(rgba) => {
                let pixels = &rgba.as_raw()[row * width * 4..][..width * 4];
                push_ycbcr_row(buffers, pixels.as_chunks::<4>().0, |&[r, g, b, alpha]| {
                    [
                        over_white(r, alpha),
                        over_white(g, alpha),
                        over_white(b, alpha),
                    ]
                });
            }
            Frame::GrayAlphaOverWhite(gray) => {
                let pixels = &gray.as_raw()[row * width * 2..][..width * 2];
                buffers[0].extend(
                    pixels
                        .as_chunks::<2>()
                        .0
                        .iter()
                        .map(|&[luma, alpha]| over_white(luma, alpha)),
                );
            }
        }
        let reported = self
            .reporter
            .borrow_mut()
            .rows(u32::from(y) + 1, u32::from(self.height));
        self.stopped.set(reported.err());
    }
}

/// Appends one row of `pixels`, made RGB by `to_rgb`, to the Y, Cb and Cr
/// buffers. The buffers are grown once and written by index, a loop the
/// compiler vectorizes (pushing three bytes a pixel took a seventh of a
/// 16-megapixel re-encode).
fn push_ycbcr_row<const N: usize>(
    buffers: &mut [Vec<u8>; 4],
    pixels: &[[u8; N]],
    to_rgb: impl Fn(&[u8; N]) -> [u8; 3],
) {
    let [luma, cb, cr, _] = buffers;
    let start = luma.len();
    let end = start + pixels.len();
    for plane in [&mut *luma, &mut *cb, &mut *cr] {
        plane.resize(end, 0);
    }
    let planes = luma[start..]
        .iter_mut()
        .zip(&mut cb[start..])
        .zip(&mut cr[start..]);
    for (pixel, ((luma, cb), cr)) in pixels.iter().zip(planes) {
        let [r, g, b] = to_rgb(pixel);
        (*luma, *cb, *cr) = rgb_to_ycbcr(r, g, b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::{Progress, Stage};
    use std::ops::ControlFlow;

    use crate::test_support::kiln_encoded as encode;

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
        let result = super::encode(image, format, Some(80), &mut reporter);
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

    #[test]
    fn feeding_jpeg_rows_one_by_one_changes_no_byte() {
        let photo = large_photo();
        let mut direct = Vec::new();
        jpeg_encoder(&mut direct, 80)
            .encode(photo.as_bytes(), 1500, 1200, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        assert!(encode(&photo, Format::Jpeg, 80).unwrap() == direct);
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
    use crate::test_support::{avifdec, gradient, photo_like, psnr};
    use image::Rgba;

    /// Kiln's own JPEG input path: strict `zune-jpeg`, oriented, 8-bit.
    fn kiln_decoded(bytes: &[u8]) -> RgbImage {
        let header = crate::decode::open(bytes, image::Limits::default()).unwrap();
        crate::decode::decode(header, None).unwrap().to_rgb8()
    }

    /// The encoder Kiln used before: two progressive scans (DC, then all
    /// AC) with optimized Huffman tables, same quality and subsampling.
    fn previous_kiln_jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = jpeg_encoder(&mut out, quality);
        encoder.set_optimized_huffman_tables(true);
        encoder.set_progressive_scans(2);
        let (width, height) = (image.width() as u16, image.height() as u16);
        encoder
            .encode(image.as_raw(), width, height, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    /// Output must not get worse: Kiln's JPEG now differs from the previous
    /// encoder's only in its entropy coding, so it decodes to the very same
    /// pixels, as faithful to the source as before.
    #[test]
    fn jpeg_pixels_are_those_of_the_previous_encoder() {
        // Odd sizes exercise partial MCUs in every subsampled component.
        let source = photo_like(333, 211);
        for quality in [50, 80, 82, 95] {
            let now = encode(
                &DynamicImage::ImageRgb8(source.clone()),
                Format::Jpeg,
                quality,
            )
            .unwrap();
            let before = previous_kiln_jpeg(&source, quality);
            let (now, before) = (kiln_decoded(&now), kiln_decoded(&before));
            assert!(now == before, "quality {quality}: the pixels changed");
        }
    }

    /// The zune-image 422 trap (a valid JPEG that `zune-jpeg` silently
    /// decodes to garbage): Kiln's own decoder and the `image` crate decode
    /// Kiln's JPEG to the same pixels, an independent decoder
    /// (`jpeg-decoder`) agrees with them up to IDCT rounding, and all are
    /// faithful to the source (measured: 33.0 dB at quality 80 on this image,
    /// and a largest difference of 3 from `jpeg-decoder`; the non-interleaved
    /// file of issue 422 decoded to 7.4 dB in Kiln).
    #[test]
    fn kiln_jpegs_decode_alike_in_every_decoder() {
        let source = photo_like(333, 211);
        let jpeg = encode(&DynamicImage::ImageRgb8(source.clone()), Format::Jpeg, 80).unwrap();
        let kiln = kiln_decoded(&jpeg);
        assert!(kiln == decoded(&jpeg).to_rgb8(), "Kiln and image disagree");
        let mut independent = jpeg_decoder::Decoder::new(jpeg.as_slice());
        let pixels = independent.decode().unwrap();
        let independent = RgbImage::from_raw(333, 211, pixels).unwrap();
        let largest_difference = kiln
            .as_raw()
            .iter()
            .zip(independent.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max();
        assert!(largest_difference <= Some(4), "{largest_difference:?}");
        let fidelity = psnr(&source, &kiln);
        assert!(fidelity > 32.0, "{fidelity} dB");
    }

    fn photo() -> DynamicImage {
        DynamicImage::ImageRgb8(gradient(64, 48))
    }

    fn decoded(bytes: &[u8]) -> DynamicImage {
        image::load_from_memory(bytes).unwrap()
    }

    /// The sampling factors byte of each component in the JPEG's SOF frame.
    fn sof_sampling_factors(jpeg: &[u8]) -> Vec<u8> {
        let mut at = 2;
        while at + 4 <= jpeg.len() {
            assert_eq!(jpeg[at], 0xFF, "marker expected at {at}");
            let marker = jpeg[at + 1];
            let length = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
            if matches!(marker, 0xC0..=0xC2) {
                let components = usize::from(jpeg[at + 9]);
                return (0..components).map(|i| jpeg[at + 10 + i * 3 + 1]).collect();
            }
            at += 2 + length;
        }
        panic!("no SOF marker");
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

    #[test]
    fn jpeg_uses_four_two_zero_subsampling() {
        let jpeg = encode(&photo(), Format::Jpeg, 95).unwrap();
        // Y sampled 2x2, Cb and Cr 1x1.
        assert_eq!(sof_sampling_factors(&jpeg), vec![0x22, 0x11, 0x11]);
    }

    #[test]
    fn jpeg_decodes_faithfully_with_the_image_crate() {
        // Odd sizes exercise partial MCUs in every subsampled component.
        let source = DynamicImage::ImageRgb8(gradient(67, 45));
        let jpeg = encode(&source, Format::Jpeg, 90).unwrap();
        let decoded = decoded(&jpeg).to_rgb8();
        let source = source.to_rgb8();
        let total: u64 = decoded
            .as_raw()
            .iter()
            .zip(source.as_raw())
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        let mean = total as f64 / source.as_raw().len() as f64;
        assert!(mean < 3.0, "mean channel error {mean}");
    }

    #[test]
    fn lower_jpeg_quality_gives_a_smaller_file() {
        let high = encode(&photo(), Format::Jpeg, 95).unwrap();
        let low = encode(&photo(), Format::Jpeg, 20).unwrap();
        assert!(low.len() < high.len(), "{} vs {}", low.len(), high.len());
    }

    #[test]
    fn jpeg_composites_transparency_onto_white() {
        let clear = DynamicImage::ImageRgba8(RgbaImage::from_pixel(16, 16, Rgba([0, 0, 0, 0])));
        let jpeg = encode(&clear, Format::Jpeg, 90).unwrap();
        let Rgba([r, g, b, _]) = decoded(&jpeg).get_pixel(8, 8);
        assert!(r > 250 && g > 250 && b > 250, "{r},{g},{b}");
    }

    #[test]
    fn jpeg_encodes_gray_frames_as_one_component() {
        let gray = DynamicImage::ImageLuma8(photo().to_luma8());
        let jpeg = encode(&gray, Format::Jpeg, 80).unwrap();
        assert_eq!(sof_sampling_factors(&jpeg).len(), 1);
        let gray_alpha = DynamicImage::ImageLumaA8(photo().to_luma_alpha8());
        let jpeg = encode(&gray_alpha, Format::Jpeg, 80).unwrap();
        assert_eq!(sof_sampling_factors(&jpeg).len(), 1);
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
    fn over_white_keeps_opaque_and_whitens_clear_pixels() {
        assert_eq!(over_white(10, 255), 10);
        assert_eq!(over_white(10, 0), 255);
        assert_eq!(over_white(0, 128), 127);
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
