//! AVIF output: `ravif` over `rav1e`, pure Rust, so it runs in the component.
//!
//! - Built without `ravif`'s default features: no assembly (Wasm has none,
//!   and natively it needs `nasm`) and no threads (`rav1e` then runs on
//!   `maybe-rayon`'s serial stand-in). `rav1e` still links `rayon` through
//!   `av-scenechange`, used only for scene detection, which `ravif` turns
//!   off; checked natively, the process has one thread after encoding.
//!   One tile, so the bytes are the same natively and in Wasm (checked on
//!   the photo below).
//! - 8 bits, 4:4:4 YCbCr (BT.601, full range): `ravif` never subsamples
//!   chroma, and `rav1e` through libavif at 4:2:0 was no smaller at equal
//!   score on the photo with most fine detail (the 4 MP one).
//! - `quality(N)` is `ravif`'s quality N, which it maps to `rav1e`'s
//!   quantizer in two slopes: one quantizer step a point below 82, six or
//!   seven above, hence the jumps in size and score from 82 up. 100 is
//!   `rav1e`'s finest quantizer, near lossless but not lossless (the
//!   YCbCr conversion rounds).
//! - Transparency is kept as an alpha plane at a quality half-way between
//!   N and 100 (alpha is cheap to store and its errors show along every
//!   edge); colour under fully transparent pixels is smoothed first
//!   (`ravif`'s default), which only makes the file smaller. An image
//!   whose pixels are all opaque gets no alpha plane.
//! - The frame is encoded in one call, so there is no progress to report
//!   within it, and a stop asked meanwhile is heard when it returns.
//!
//! Measured on the 16 MP photo of the corpus resized by Kiln to 1600×1000
//! (the bench's delivery width), one thread, encoding alone; scores are
//! SSIMULACRA 2 of `avifdec`'s decoding against the resized PNG. Native is
//! the release build's CPU time, Wasm the same code as a wasm32-wasip2
//! command under wasmtime 48 (Cranelift), both single runs (ranges: two)
//! on the shared 2-core development machine:
//!
//! | speed | quality | bytes | SSIMULACRA 2 | native (s) | Wasm (s) |
//! |---|---|---|---|---|---|
//! | 10 | 82 | 171,858 | 76.0 | 1.3 | 2.2 |
//! | 10 | 83 | 181,202 | 77.6 | 1.4 | 2.4–2.7 |
//! | **9** | 50 | 68,064 | 56.2 | 1.6 | |
//! | **9** | 70 | 106,717 | 69.0 | 2.4 | |
//! | **9** | 80 | 133,760 | 74.7 | 2.1 | |
//! | **9** | 82 | 138,962 | 75.3 | 2.0 | 3.0 |
//! | **9** | **83** | **151,666** | **77.0** | **2.1** | **3.2–3.5** |
//! | **9** | 85 | 187,336 | 80.7 | 2.2 | |
//! | 8 (7 alike) | 82 | 131,752 | 75.6 | 4.3 | 7.1 |
//! | 6 (5 alike) | 82 | 126,783 | 75.4 | 5.6 | 9.5 |
//! | 4 | 82 | 122,144 | 75.8 | 13.4 | 22.0 |
//! | Kiln JPEG | 80 | 230,771 | 75.8 | | |
//! | `avifenc` (aom 3.6, SIMD), speed 6, 4:2:0, whole command | `--min 22 --max 22` | 118,382 | 75.8 | 1.0 | |
//!
//! [`SPEED`] 9: a 1600-px photo encodes in about 3 s in Wasm (the bench's
//! pipeline component, encode stage, median of 3: 2,985 ms for the 4 MP
//! photo, 3,147 ms for the 16 MP one, both at 1600×1000). Speeds 8
//! and below save 5–12% of the bytes for twice the time or more; 10 writes
//! 19–24% more bytes to save a quarter to a third of the time.
//!
//! [`DEFAULT_QUALITY`] 83 gives the score of Kiln's JPEG at 80, measured on
//! the corpus's three photos at 1600 px (AVIF at 83 and speed 9 against
//! JPEG at 80): 77.0 against 75.8 (16 MP), 75.0 against 74.3 (25 MP), 73.8
//! against 77.3 (4 MP, gravel and water: fine texture, AV1's weak spot);
//! 82 falls short on all three. At the score AVIF reaches, it takes about
//! 0.61×, 0.67× and 0.84× the bytes of Kiln's JPEG (JPEG's bytes
//! interpolated between qualities 5 apart).

use std::borrow::Cow;

use image::{DynamicImage, RgbImage, RgbaImage};
use ravif::{BitDepth, Encoder, Img};
use rgb::FromSlice;

use super::encoding_failed;
use crate::error::ImageError;
use crate::format::Format;

/// The quality without `quality(..)`: the score of JPEG at 80 (see the
/// module doc).
pub(super) const DEFAULT_QUALITY: u8 = 83;
/// `rav1e`'s speed preset (1 slowest to 10 fastest), chosen so that a
/// 1600-px photo encodes within about 3 s in Wasm (see the module doc).
pub const SPEED: u8 = 9;

/// The most pixels Kiln writes as AVIF: 4.2 megapixels (2048×2048, or
/// 2560×1638). `rav1e` codes the frame in one call that neither reports
/// progress nor stops, at about 2 s a megapixel in Wasm at [`SPEED`]
/// (3.1 s for 1600×1000, 26 s for a 16-megapixel photo): past this, one
/// job would outlast the 15 s lease the processor renews between stages,
/// and a second processor would claim it. Delivery sizes fit; a full-size
/// photo is resized first.
pub(super) const MAX_PIXELS: u64 = 2048 * 2048;

/// Refuses an AVIF output larger than [`MAX_PIXELS`].
pub(super) fn check_fits(width: u32, height: u32) -> Result<(), ImageError> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_PIXELS {
        return Err(ImageError::InvalidOp(format!(
            "a {width}x{height} image is too large for AVIF output, which allows at most {:.1} \
             megapixels (its encoder runs in one uninterruptible step); resize it first",
            MAX_PIXELS as f64 / 1e6
        )));
    }
    Ok(())
}

/// Encodes `image` as AVIF into `out`.
pub(super) fn avif(
    image: &DynamicImage,
    quality: Option<u8>,
    out: &mut Vec<u8>,
) -> Result<(), ImageError> {
    // `ravif` panics outside 1..=100; the ops grammar never gets there.
    let quality = quality.unwrap_or(DEFAULT_QUALITY).clamp(1, 100);
    let encoder = Encoder::new()
        .with_quality(f32::from(quality))
        .with_alpha_quality((f32::from(quality) + 100.0) / 2.0)
        .with_speed(SPEED)
        .with_bit_depth(BitDepth::Eight)
        // One tile and no thread pool, natively as in Wasm.
        .with_num_threads(Some(1));
    let (width, height) = (image.width() as usize, image.height() as usize);
    let encoded = if image.color().has_alpha() {
        let rgba = rgba8(image);
        encoder.encode_rgba(Img::new(rgba.as_raw().as_rgba(), width, height))
    } else {
        let rgb = rgb8(image);
        encoder.encode_rgb(Img::new(rgb.as_raw().as_rgb(), width, height))
    };
    let encoded = encoded.map_err(|e| encoding_failed(Format::Avif, &e.to_string()))?;
    *out = encoded.avif_file;
    Ok(())
}

/// The frame as 8-bit RGB, borrowed when it already is.
fn rgb8(image: &DynamicImage) -> Cow<'_, RgbImage> {
    match image {
        DynamicImage::ImageRgb8(rgb) => Cow::Borrowed(rgb),
        other => Cow::Owned(other.to_rgb8()),
    }
}

/// The frame as 8-bit RGBA, borrowed when it already is.
fn rgba8(image: &DynamicImage) -> Cow<'_, RgbaImage> {
    match image {
        DynamicImage::ImageRgba8(rgba) => Cow::Borrowed(rgba),
        other => Cow::Owned(other.to_rgba8()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{avifdec, kiln_encoded, photo_like, psnr};
    use image::{GenericImageView, GrayAlphaImage, LumaA};

    fn encoded(image: &DynamicImage, quality: Option<u8>) -> Vec<u8> {
        let mut out = Vec::new();
        avif(image, quality, &mut out).unwrap();
        out
    }

    /// An independent decoder (libavif with dav1d) reads Kiln's AVIF back
    /// at its size and close to the source (measured: 36.6 dB at the
    /// default quality on this image).
    #[test]
    fn avif_output_decodes_elsewhere_at_its_size_and_close_to_the_source() {
        // Odd sizes: AV1 codes in 8×8 blocks at least.
        let source = photo_like(333, 211);
        let avif = encoded(&DynamicImage::ImageRgb8(source.clone()), None);
        assert_eq!(Format::sniff(&avif), Some(Format::Avif));
        let Some(decoded) = avifdec(&avif) else {
            return;
        };
        assert_eq!(decoded.dimensions(), (333, 211));
        let fidelity = psnr(&source, &decoded.to_rgb8());
        assert!(fidelity > 34.0, "{fidelity} dB");
    }

    /// `quality(N)` is honoured: asking for less gives fewer bytes.
    #[test]
    fn lower_avif_quality_gives_a_smaller_file() {
        let photo = DynamicImage::ImageRgb8(photo_like(160, 120));
        let sizes = [40, DEFAULT_QUALITY, 95].map(|q| encoded(&photo, Some(q)).len());
        assert!(sizes[0] < sizes[1] && sizes[1] < sizes[2], "{sizes:?}");
    }

    /// Transparency survives: clear stays clear, opaque stays opaque and
    /// the ramp in between keeps its levels.
    #[test]
    fn avif_keeps_transparency() {
        let (width, height) = (96, 64);
        let rgb = photo_like(width, height);
        let source = RgbaImage::from_fn(width, height, |x, y| {
            let [r, g, b] = rgb.get_pixel(x, y).0;
            // Left third clear, right third opaque, a ramp between.
            let alpha = (x.saturating_sub(width / 3) * 255 / (width / 3)).min(255) as u8;
            image::Rgba([r, g, b, alpha])
        });
        let avif = encoded(&DynamicImage::ImageRgba8(source.clone()), None);
        let Some(decoded) = avifdec(&avif) else {
            return;
        };
        assert!(decoded.color().has_alpha(), "{:?}", decoded.color());
        let decoded = decoded.to_rgba8();
        let largest_alpha_error = source
            .pixels()
            .zip(decoded.pixels())
            .map(|(a, b)| a.0[3].abs_diff(b.0[3]))
            .max();
        // Measured: 1.
        assert!(largest_alpha_error <= Some(4), "{largest_alpha_error:?}");
    }

    /// An RGBA frame whose pixels are all opaque costs no alpha plane: it
    /// is the very file its RGB pixels make.
    #[test]
    fn opaque_rgba_is_written_without_alpha() {
        let rgb = photo_like(64, 48);
        let rgba = DynamicImage::ImageRgb8(rgb.clone()).to_rgba8();
        assert!(
            encoded(&DynamicImage::ImageRgba8(rgba), None)
                == encoded(&DynamicImage::ImageRgb8(rgb), None)
        );
    }

    /// Gray frames (with or without alpha) are written, gray and with
    /// their transparency.
    #[test]
    fn gray_frames_stay_gray_and_keep_their_alpha() {
        let gray = DynamicImage::ImageRgb8(photo_like(64, 48)).to_luma8();
        let gray_alpha = GrayAlphaImage::from_fn(64, 48, |x, y| {
            LumaA([gray.get_pixel(x, y).0[0], if x < 32 { 0 } else { 255 }])
        });
        let Some(decoded) = avifdec(&encoded(&DynamicImage::ImageLumaA8(gray_alpha), None)) else {
            return;
        };
        let decoded = decoded.to_rgba8();
        for (x, y, pixel) in decoded.enumerate_pixels() {
            let [r, g, b, alpha] = pixel.0;
            assert!(
                r.abs_diff(g) <= 2 && g.abs_diff(b) <= 2,
                "{x},{y}: {r},{g},{b}"
            );
            let expected = if x < 32 { 0 } else { 255 };
            assert!(alpha.abs_diff(expected) <= 2, "{x},{y}: alpha {alpha}");
        }
    }

    /// `Format::Avif.max_side()` is the encoder's own limit: `rav1e` takes
    /// a still picture that wide and that tall, not one pixel more.
    #[test]
    fn the_avif_max_side_is_the_largest_rav1e_accepts() {
        let accepts = |width: u32, height: u32| {
            let config = rav1e::config::EncoderConfig {
                width: width as usize,
                height: height as usize,
                still_picture: true,
                ..Default::default()
            };
            rav1e::Config::new()
                .with_encoder_config(config)
                .validate()
                .is_ok()
        };
        let max = Format::Avif.max_side();
        assert!(accepts(max, 1) && accepts(1, max) && accepts(max, max));
        assert!(!accepts(max + 1, 1) && !accepts(1, max + 1));
    }

    /// Too wide for AVIF is the client's request, refused before encoding,
    /// not an encoder failure.
    #[test]
    fn a_frame_wider_than_avif_allows_is_refused_before_encoding() {
        let wider = DynamicImage::new_luma8(Format::Avif.max_side() + 1, 1);
        assert!(matches!(
            kiln_encoded(&wider, Format::Avif, 50),
            Err(ImageError::InvalidOp(_))
        ));
    }

    /// More pixels than one uninterruptible encode may take are refused
    /// with a message saying to resize; the largest allowed frame passes
    /// the check.
    #[test]
    fn more_pixels_than_avif_allows_are_refused() {
        assert!(check_fits(2048, 2048).is_ok());
        let refused = check_fits(2049, 2048);
        assert!(
            matches!(&refused, Err(ImageError::InvalidOp(m)) if m.contains("resize it first")),
            "{refused:?}"
        );
        let large = DynamicImage::new_rgb8(4096, 1025);
        assert!(matches!(
            kiln_encoded(&large, Format::Avif, 50),
            Err(ImageError::InvalidOp(_))
        ));
    }
}
