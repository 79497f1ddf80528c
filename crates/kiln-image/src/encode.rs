//! Encoding the final frame: only pixels are written, no metadata.
//!
//! - JPEG: `jpeg-encoder` with 4:2:0 chroma subsampling (box-averaged rather
//!   than top-left sampled), optimized Huffman tables and the requested
//!   quality, written progressive in two scans per component (DC, then all
//!   AC). Why progressive: with optimized tables, `jpeg-encoder` 0.7 writes a
//!   baseline file as one scan per component, which is valid but which
//!   `zune-jpeg` 0.5.15 (the `image` crate's JPEG decoder, so Kiln's own
//!   input path and most Rust consumers) silently decodes to garbage when
//!   chroma is subsampled (zune-image issue 422). Two progressive scans
//!   decode correctly everywhere and cost under 0.1% in size against the
//!   baseline file; the standard tables would cost about 5%. Transparency is
//!   composited onto white while rows are fed to the encoder, so no extra
//!   frame is allocated.
//! - PNG: zlib's default level with adaptive filtering. Measured on a
//!   1.5-megapixel photo-like image: `Fast` (the `image` default) was 14 ms
//!   but 4.8× larger; `Best` was 13% smaller but 3.6× slower (1.1 s against
//!   0.3 s natively, more in Wasm, all of it on the request's single
//!   thread). `Default` keeps large PNGs within a request's time budget at a
//!   modest size cost.
//! - WebP: lossless (VP8L), the only WebP encoder `image` 0.25 has.
//! - GIF: the first (only) frame, quantized to 256 colours with NeuQuant at
//!   speed 10, the `gif` crate's recommended trade-off (speed 1, the
//!   `image` default, is many times slower).

use image::codecs::gif::GifEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, GenericImageView, GrayAlphaImage, ImageEncoder, RgbaImage};
use jpeg_encoder::{
    ChromaSubsamplingMethod, ColorType, Encoder, ImageBuffer, JpegColorType, SamplingFactor,
    rgb_to_ycbcr,
};

use crate::error::ImageError;
use crate::format::Format;

const GIF_SPEED: i32 = 10;
/// DC, then all 63 AC coefficients: the fewest scans a progressive JPEG
/// can have, and the smallest file.
const JPEG_PROGRESSIVE_SCANS: u8 = 2;

/// Encodes `image` as `format`; `quality` (1..=100) applies to JPEG only.
pub(crate) fn encode(
    image: &DynamicImage,
    format: Format,
    quality: u8,
) -> Result<Vec<u8>, ImageError> {
    let (width, height) = image.dimensions();
    if width.max(height) > format.max_side() {
        return Err(ImageError::InvalidOp(format!(
            "a {width}x{height} image is too large for {format} output, which allows at most {} pixels a side",
            format.max_side()
        )));
    }
    let mut out = Vec::new();
    match format {
        Format::Jpeg => {
            jpeg(image, quality, &mut out).map_err(|e| encoding_failed(format, &e.to_string()))?
        }
        Format::Png => {
            PngEncoder::new_with_quality(&mut out, CompressionType::Default, FilterType::Adaptive)
                .write_image(image.as_bytes(), width, height, image.color().into())
                .map_err(|e| encoding_failed(format, &e.to_string()))?
        }
        Format::Webp => WebPEncoder::new_lossless(&mut out)
            .encode(image.as_bytes(), width, height, image.color().into())
            .map_err(|e| encoding_failed(format, &e.to_string()))?,
        Format::Gif => gif(image, &mut out).map_err(|e| encoding_failed(format, &e.to_string()))?,
    }
    Ok(out)
}

fn encoding_failed(format: Format, reason: &str) -> ImageError {
    ImageError::Encoding(format!("cannot encode the result as {format}: {reason}"))
}

fn jpeg(
    image: &DynamicImage,
    quality: u8,
    out: &mut Vec<u8>,
) -> Result<(), jpeg_encoder::EncodingError> {
    // `encode` checked both sides against `Format::Jpeg.max_side()`.
    let width = u16::try_from(image.width()).expect("checked against the JPEG maximum");
    let height = u16::try_from(image.height()).expect("checked against the JPEG maximum");
    let mut encoder = Encoder::new(out, quality);
    encoder.set_sampling_factor(SamplingFactor::R_4_2_0);
    encoder.set_chroma_subsampling_method(ChromaSubsamplingMethod::Average);
    encoder.set_optimized_huffman_tables(true);
    encoder.set_progressive_scans(JPEG_PROGRESSIVE_SCANS);
    match image {
        DynamicImage::ImageRgb8(rgb) => encoder.encode(rgb.as_raw(), width, height, ColorType::Rgb),
        DynamicImage::ImageLuma8(gray) => {
            encoder.encode(gray.as_raw(), width, height, ColorType::Luma)
        }
        DynamicImage::ImageRgba8(rgba) => encoder.encode_image(RgbaOverWhite(rgba)),
        DynamicImage::ImageLumaA8(gray) => encoder.encode_image(GrayAlphaOverWhite(gray)),
        other => encoder.encode_image(RgbaOverWhite(&other.to_rgba8())),
    }
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

/// An RGBA frame fed to the JPEG encoder as if composited onto white.
struct RgbaOverWhite<'a>(&'a RgbaImage);

impl ImageBuffer for RgbaOverWhite<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.0.width() as u16
    }

    fn height(&self) -> u16 {
        self.0.height() as u16
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let row_len = self.0.width() as usize * 4;
        let start = usize::from(y) * row_len;
        for pixel in self.0.as_raw()[start..start + row_len].chunks_exact(4) {
            let alpha = pixel[3];
            let (luma, cb, cr) = rgb_to_ycbcr(
                over_white(pixel[0], alpha),
                over_white(pixel[1], alpha),
                over_white(pixel[2], alpha),
            );
            buffers[0].push(luma);
            buffers[1].push(cb);
            buffers[2].push(cr);
        }
    }
}

/// A gray+alpha frame fed to the JPEG encoder as if composited onto white.
struct GrayAlphaOverWhite<'a>(&'a GrayAlphaImage);

impl ImageBuffer for GrayAlphaOverWhite<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Luma
    }

    fn width(&self) -> u16 {
        self.0.width() as u16
    }

    fn height(&self) -> u16 {
        self.0.height() as u16
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let row_len = self.0.width() as usize * 2;
        let start = usize::from(y) * row_len;
        for pixel in self.0.as_raw()[start..start + row_len].chunks_exact(2) {
            buffers[0].push(over_white(pixel[0], pixel[1]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::gradient;
    use image::Rgba;

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

    #[test]
    fn every_format_encodes_and_sniffs_as_itself() {
        for format in Format::ALL {
            let bytes = encode(&photo(), format, 80).unwrap();
            assert_eq!(Format::sniff(&bytes), Some(format));
            assert_eq!(decoded(&bytes).dimensions(), (64, 48), "{format}");
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

    #[test]
    fn png_and_webp_are_lossless() {
        for format in [Format::Png, Format::Webp] {
            let bytes = encode(&photo(), format, 80).unwrap();
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
