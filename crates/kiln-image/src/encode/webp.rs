//! WebP output: lossy VP8 (with an ALPH chunk when the image has
//! transparency) for `quality(1..=99)` and by default, lossless VP8L for
//! `quality(100)`.
//!
//! The lossy encoder is `vaam-image-webp` 0.1, a fork of `image-webp` that
//! carries its unreleased VP8 encoder: the only pure-Rust lossy WebP
//! encoder on crates.io that builds with Rust 1.95 under a licence Kiln
//! can ship (`zenwebp` is AGPL, `webpkit` needs Rust 1.96, `image-webp`
//! 0.2.4 and `rusty_webp` only encode losslessly). The other candidate,
//! `webp-rust` 0.3.2, needed 1.26 to 1.68 times cwebp's bytes at equal
//! score on the 16 MP photo, twice vaam's time, never reached JPEG 80's
//! score (72.3 at quality 95) and wrote a corrupt file at quality 99 (its
//! method 6: 1.27 to 1.29 times, 17 to 42 s a frame).
//!
//! vaam 0.1.0 drops the last row and column of odd sizes (they decode
//! black, then green) and pads partial macroblocks with zeros. Kiln hands
//! it the frame padded to whole 16×16 macroblocks by repeating the edge
//! pixels, as libwebp does, and then writes the real size into the VP8
//! frame header (RFC 6386, 9.1): the macroblock grid is the same, so a
//! decoder shows exactly the top-left of what was coded. Transparency is
//! written by Kiln too, as the ALPH chunk of an extended (VP8X) file: the
//! alpha plane compressed losslessly (the `image` crate's VP8L encoder,
//! whose image stream ALPH carries without the VP8L header). An alpha
//! channel that is opaque everywhere is not written.
//!
//! Lossy WebP is refused (as an invalid operation, pointing to resizing or
//! to `quality(100)`) past what VP8 can hold: 16383 pixels a side, and
//! [`MAX_LOSSY_MACROBLOCKS`] (about 14 megapixels), which keeps the
//! encoder's first partition under its 512 KiB limit.
//!
//! Measured on the corpus photos (`shared/corpus`) resized by Kiln to
//! 1600 px wide, SSIMULACRA 2 against that frame (higher is better),
//! natively, single runs on the shared machine:
//!
//! | quality | 4 MP (1600×1000) | 16 MP (1600×1000) | 25 MP (1600×667) |
//! |---|---|---|---|
//! | Kiln JPEG 80 | 77.31, 354,975 B | 75.83, 230,771 B | 74.30, 175,781 B |
//! | WebP 80 | 54.75, 206,358 B | 54.51, 101,696 B | 51.57, 81,522 B |
//! | WebP 90 | 70.47, 314,414 B | 69.03, 163,210 B | 66.81, 133,414 B |
//! | WebP 94 | 76.78, 401,684 B | 74.91, 225,676 B | 73.26, 180,858 B |
//! | **WebP 95** | **77.44, 427,384 B** | **75.77, 249,028 B** | **74.05, 196,938 B** |
//! | WebP 96 | 78.94, 460,878 B | 77.16, 281,640 B | 75.55, 220,012 B |
//! | `cwebp` at WebP 95's score | 339,674 B (1.26×) | 212,378 B (1.17×) | 161,360 B (1.22×) |
//!
//! So the default is 95: the quality whose score matches JPEG 80's on all
//! three photos (within 0.25). vaam's quality scale is not libwebp's: its
//! 80 scores about 54, where `cwebp -q 80` scores 70 to 74. At equal score
//! it needs 1.08 to 1.21 times cwebp's bytes from quality 85 to 94, 1.17
//! to 1.26 at 95, and more above (1.25 to 1.44 at 97 to 99). It takes about
//! three times cwebp's time: 0.3 to 0.8 s for these frames against 0.1 to
//! 0.25 s (`cwebp -v`), where Kiln's JPEG takes 15 to 25 ms. In Wasm
//! (test host, `bench/run` section 2 with WebP output, median of 5) the
//! encode stage took 780 ms for the 16 MP photo at 1600×1000 (native 482),
//! 434 ms for the 25 MP one at 1600×667 (native 357) and 3.2 s at
//! 4096×2560 (native 2.6 s): about 4.3 s at the macroblock limit, within a
//! lease, which matters as vaam reports no progress.

use std::borrow::Cow;

use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, ExtendedColorType, GenericImageView, GrayImage, RgbImage};
use vaam_image_webp::{ColorType, EncoderParams};

use super::encoding_failed;
use crate::error::ImageError;
use crate::format::Format;

/// The lossy quality without `quality(..)`: SSIMULACRA 2 as JPEG at 80
/// (see the module doc).
pub(super) const DEFAULT_QUALITY: u8 = 95;
/// The quality that asks for lossless WebP.
const LOSSLESS_QUALITY: u8 = 100;
/// VP8 codes the picture in macroblocks of 16×16 pixels.
const MACROBLOCK: u32 = 16;
/// VP8 stores each side in 14 bits (VP8L, lossless, stores the side minus
/// one: 16384).
const MAX_LOSSY_SIDE: u32 = (1 << 14) - 1;
/// The most macroblocks Kiln codes as lossy WebP. VP8 gives its first
/// partition (the modes of every macroblock) 19 bits of size, 512 KiB, and
/// vaam 0.1.0 panics when it writes more (a trap in Wasm: no error to
/// catch). Measured in that partition: 5.8 to 6.7 bytes a macroblock on the
/// corpus photos at quality 95 to 99, 8.7 on random noise (the most seen);
/// 55,000 macroblocks of 9.5 bytes stay below the limit. That is 14
/// megapixels (4096×3424; a 12-megapixel phone photo fits); the 16- and
/// 25-megapixel corpus photos at full size are refused (the 25 one makes
/// vaam panic at quality 95).
pub(super) const MAX_LOSSY_MACROBLOCKS: u32 = 55_000;
/// The first byte of a VP8L bitstream; a size, an alpha flag and a version
/// follow in four bytes, then the image stream.
const VP8L_SIGNATURE: u8 = 0x2f;
const VP8L_HEADER_BYTES: usize = 5;
/// The VP8 key frame start code, after the three-byte frame tag.
const VP8_START_CODE: [u8; 3] = [0x9d, 0x01, 0x2a];
/// ALPH header byte: no pre-processing, no filtering, lossless compression.
const ALPH_LOSSLESS: u8 = 1;
/// VP8X flag: the file has transparency.
pub(crate) const VP8X_ALPHA: u8 = 0x10;
/// VP8X flag: the file is an animation (ANIM and ANMF chunks).
pub(crate) const VP8X_ANIMATION: u8 = 0x02;

/// Encodes `image` as WebP into `out`: lossless at quality 100, lossy
/// otherwise (`None`: [`DEFAULT_QUALITY`]).
pub(super) fn webp(
    image: &DynamicImage,
    quality: Option<u8>,
    out: &mut Vec<u8>,
) -> Result<(), ImageError> {
    match quality.unwrap_or(DEFAULT_QUALITY) {
        LOSSLESS_QUALITY => lossless(image, out),
        quality => lossy(image, quality, out),
    }
}

/// Refuses what lossy WebP cannot hold (see [`MAX_LOSSY_SIDE`] and
/// [`MAX_LOSSY_MACROBLOCKS`]); lossless WebP takes any size up to
/// `Format::Webp.max_side()`.
pub(super) fn check_fits(quality: Option<u8>, width: u32, height: u32) -> Result<(), ImageError> {
    if quality == Some(LOSSLESS_QUALITY) {
        return Ok(());
    }
    if width.max(height) > MAX_LOSSY_SIDE {
        return Err(ImageError::InvalidOp(format!(
            "a {width}x{height} image is too large for lossy WebP output, which allows at most \
             {MAX_LOSSY_SIDE} pixels a side; resize it first, or ask for lossless WebP with quality(100)"
        )));
    }
    let macroblocks = width.div_ceil(MACROBLOCK) * height.div_ceil(MACROBLOCK);
    if macroblocks > MAX_LOSSY_MACROBLOCKS {
        let megapixels = f64::from(MAX_LOSSY_MACROBLOCKS * MACROBLOCK * MACROBLOCK) / 1e6;
        return Err(ImageError::InvalidOp(format!(
            "a {width}x{height} image is too large for lossy WebP output, which allows about \
             {megapixels:.0} megapixels; resize it first, or ask for lossless WebP with quality(100)"
        )));
    }
    Ok(())
}

fn failed(reason: &str) -> ImageError {
    encoding_failed(Format::Webp, reason)
}

fn lossless(image: &DynamicImage, out: &mut Vec<u8>) -> Result<(), ImageError> {
    let (width, height) = image.dimensions();
    WebPEncoder::new_lossless(out)
        .encode(image.as_bytes(), width, height, image.color().into())
        .map_err(|e| failed(&e.to_string()))
}

fn lossy(image: &DynamicImage, quality: u8, out: &mut Vec<u8>) -> Result<(), ImageError> {
    let (width, height) = image.dimensions();
    let (vp8, alph) = lossy_chunks(image, quality)?;
    match alph {
        None => write_riff(out, &[(b"VP8 ", &vp8)]),
        Some(alph) => write_riff(
            out,
            &[
                (b"VP8X", &vp8x_chunk(VP8X_ALPHA, width, height)),
                (b"ALPH", &alph),
                (b"VP8 ", &vp8),
            ],
        ),
    }
}

/// The VP8 bitstream of `image` at `quality`, and its ALPH chunk when the
/// image has transparency.
fn lossy_chunks(
    image: &DynamicImage,
    quality: u8,
) -> Result<(Vec<u8>, Option<Vec<u8>>), ImageError> {
    let (width, height) = image.dimensions();
    if width == 0 || height == 0 {
        return Err(failed("the image is empty"));
    }
    check_fits(Some(quality), width, height)?;
    let vp8 = vp8_frame(&macroblock_padded(image), width, height, quality)?;
    let alph = alpha_plane(image)
        .map(|alpha| alph_chunk(&alpha))
        .transpose()?;
    Ok((vp8, alph))
}

/// One image as the frame of an animation holds it.
pub(crate) struct FrameChunks {
    /// The chunks, in file order: `VP8L`, or `VP8 ` behind an `ALPH`
    /// when the image has transparency.
    pub(crate) chunks: Vec<([u8; 4], Vec<u8>)>,
    /// Whether the image has transparency.
    pub(crate) alpha: bool,
}

/// The chunks of `image` as one frame of an animation, coded as a still
/// image is (see [`webp`]): lossless at quality 100, lossy otherwise.
pub(crate) fn frame_chunks(
    image: &DynamicImage,
    quality: Option<u8>,
) -> Result<FrameChunks, ImageError> {
    match quality.unwrap_or(DEFAULT_QUALITY) {
        LOSSLESS_QUALITY => {
            let mut file = Vec::new();
            lossless(image, &mut file)?;
            let vp8l = chunk(&file, b"VP8L")
                .ok_or_else(|| failed("the lossless encoder wrote no VP8L chunk"))?;
            Ok(FrameChunks {
                chunks: vec![(*b"VP8L", vp8l.to_vec())],
                alpha: image.color().has_alpha(),
            })
        }
        quality => Ok(match lossy_chunks(image, quality)? {
            (vp8, None) => FrameChunks {
                chunks: vec![(*b"VP8 ", vp8)],
                alpha: false,
            },
            (vp8, Some(alph)) => FrameChunks {
                chunks: vec![(*b"ALPH", alph), (*b"VP8 ", vp8)],
                alpha: true,
            },
        }),
    }
}

/// The colour of `image` as RGB, its right column and bottom row repeated
/// up to whole macroblocks (see the module doc); borrowed when there is
/// nothing to do.
fn macroblock_padded(image: &DynamicImage) -> Cow<'_, RgbImage> {
    let (width, height) = image.dimensions();
    let whole = (
        width.next_multiple_of(MACROBLOCK),
        height.next_multiple_of(MACROBLOCK),
    );
    match image {
        DynamicImage::ImageRgb8(rgb) if whole == (width, height) => Cow::Borrowed(rgb),
        DynamicImage::ImageRgb8(rgb) => Cow::Owned(padded::<3>(rgb.as_raw(), width, whole)),
        DynamicImage::ImageRgba8(rgba) => Cow::Owned(padded::<4>(rgba.as_raw(), width, whole)),
        // Gray goes through RGB too: vaam codes 8-bit gray with chroma
        // 127 instead of 128, a faint green tint.
        other => Cow::Owned(padded::<3>(other.to_rgb8().as_raw(), width, whole)),
    }
}

/// The first three channels of `N`-channel `pixels`, `width` a row,
/// padded to `whole` by repeating the last pixel of each row and then the
/// last row.
fn padded<const N: usize>(pixels: &[u8], width: u32, whole: (u32, u32)) -> RgbImage {
    let (whole_width, whole_height) = whole;
    let row_bytes = width as usize * N;
    let whole_row_bytes = whole_width as usize * 3;
    let whole_bytes = whole_row_bytes * whole_height as usize;
    let mut out = Vec::with_capacity(whole_bytes);
    for row in pixels.chunks_exact(row_bytes) {
        let row = row.as_chunks::<N>().0;
        for pixel in row {
            out.extend_from_slice(&pixel[..3]);
        }
        let last = &row[row.len() - 1][..3];
        for _ in width..whole_width {
            out.extend_from_slice(last);
        }
    }
    while out.len() < whole_bytes {
        out.extend_from_within(out.len() - whole_row_bytes..);
    }
    RgbImage::from_raw(whole_width, whole_height, out).expect("whole rows of whole pixels")
}

/// The VP8 bitstream of `rgb` (padded to whole macroblocks) at `quality`,
/// its header giving the real `width` and `height`.
fn vp8_frame(rgb: &RgbImage, width: u32, height: u32, quality: u8) -> Result<Vec<u8>, ImageError> {
    let mut file = Vec::new();
    let mut encoder = vaam_image_webp::WebPEncoder::new(&mut file);
    let mut params = EncoderParams::default();
    params.use_lossy = true;
    params.lossy_quality = quality;
    encoder.set_params(params);
    encoder
        .encode(rgb.as_raw(), rgb.width(), rgb.height(), ColorType::Rgb8)
        .map_err(|e| failed(&e.to_string()))?;
    let mut frame = chunk(&file, b"VP8 ")
        .ok_or_else(|| failed("the VP8 encoder wrote no VP8 chunk"))?
        .to_vec();
    if frame.get(3..6) != Some(&VP8_START_CODE) || frame.len() < 10 {
        return Err(failed("the VP8 encoder wrote no key frame header"));
    }
    // 14 bits of size, 2 of upscaling (kept).
    for (at, size) in [(6, width), (8, height)] {
        let field = u16::from_le_bytes([frame[at], frame[at + 1]]);
        let size = u16::try_from(size).expect("checked against the WebP maximum");
        frame[at..at + 2].copy_from_slice(&(field & 0xC000 | size).to_le_bytes());
    }
    Ok(frame)
}

/// The alpha channel of `image`, if it has one that is not opaque
/// everywhere.
fn alpha_plane(image: &DynamicImage) -> Option<GrayImage> {
    if !image.color().has_alpha() {
        return None;
    }
    let (width, height) = image.dimensions();
    let alpha: Vec<u8> = match image {
        DynamicImage::ImageRgba8(rgba) => rgba.pixels().map(|p| p[3]).collect(),
        DynamicImage::ImageLumaA8(gray) => gray.pixels().map(|p| p[1]).collect(),
        other => other.to_rgba8().pixels().map(|p| p[3]).collect(),
    };
    if alpha.iter().all(|&a| a == u8::MAX) {
        return None;
    }
    GrayImage::from_raw(width, height, alpha)
}

/// The ALPH chunk of `alpha`: its lossless image stream, whose size the
/// decoder takes from the canvas.
fn alph_chunk(alpha: &GrayImage) -> Result<Vec<u8>, ImageError> {
    let mut file = Vec::new();
    WebPEncoder::new_lossless(&mut file)
        .encode(
            alpha.as_raw(),
            alpha.width(),
            alpha.height(),
            ExtendedColorType::L8,
        )
        .map_err(|e| failed(&e.to_string()))?;
    let vp8l = chunk(&file, b"VP8L")
        .filter(|vp8l| vp8l.first() == Some(&VP8L_SIGNATURE) && vp8l.len() > VP8L_HEADER_BYTES)
        .ok_or_else(|| failed("the alpha encoder wrote no VP8L bitstream"))?;
    let mut alph = vec![ALPH_LOSSLESS];
    alph.extend_from_slice(&vp8l[VP8L_HEADER_BYTES..]);
    Ok(alph)
}

/// The VP8X chunk of a `width`×`height` canvas with `flags`.
pub(crate) fn vp8x_chunk(flags: u8, width: u32, height: u32) -> Vec<u8> {
    let mut vp8x = vec![flags, 0, 0, 0];
    for size in [width, height] {
        vp8x.extend_from_slice(&(size - 1).to_le_bytes()[..3]);
    }
    vp8x
}

/// The data of the first `fourcc` chunk of a WebP `file`.
fn chunk<'a>(file: &'a [u8], fourcc: &[u8; 4]) -> Option<&'a [u8]> {
    if file.get(..4) != Some(b"RIFF") || file.get(8..12) != Some(b"WEBP") {
        return None;
    }
    let mut rest = &file[12..];
    while let Some((header, body)) = rest.split_first_chunk::<8>() {
        let size = u32::from_le_bytes(header[4..].try_into().expect("four bytes")) as usize;
        let data = body.get(..size)?;
        if &header[..4] == fourcc {
            return Some(data);
        }
        rest = body.get(size + size % 2..)?;
    }
    None
}

/// A WebP file of `chunks`, in order, into `out`.
pub(crate) fn write_riff(
    out: &mut Vec<u8>,
    chunks: &[(&[u8; 4], &[u8])],
) -> Result<(), ImageError> {
    let padded_len = |data: &[u8]| data.len() + data.len() % 2;
    let riff_size = 4 + chunks
        .iter()
        .map(|(_, data)| 8 + padded_len(data))
        .sum::<usize>();
    let size_field = |size: usize| {
        u32::try_from(size)
            .map(u32::to_le_bytes)
            .map_err(|_| failed("the file would exceed 4 GiB"))
    };
    out.reserve(8 + riff_size);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&size_field(riff_size)?);
    out.extend_from_slice(b"WEBP");
    for (fourcc, data) in chunks {
        out.extend_from_slice(*fourcc);
        out.extend_from_slice(&size_field(data.len())?);
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(0);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{photo_like, psnr};
    use image::imageops::crop_imm;
    use image::{Rgba, RgbaImage};

    /// Odd sizes: neither side a whole number of macroblocks.
    const WIDTH: u32 = 333;
    const HEIGHT: u32 = 211;

    fn encoded(image: &DynamicImage, quality: Option<u8>) -> Vec<u8> {
        let mut out = Vec::new();
        webp(image, quality, &mut out).unwrap();
        out
    }

    /// Decoded by the `image` crate's WebP decoder (`image-webp`, not the
    /// encoder's crate).
    fn decoded(webp: &[u8]) -> DynamicImage {
        image::load_from_memory_with_format(webp, image::ImageFormat::WebP).unwrap()
    }

    /// The chunk names of a WebP file, checking that the RIFF size and the
    /// chunk sizes account for every byte.
    fn chunk_names(webp: &[u8]) -> Vec<String> {
        assert_eq!(&webp[..4], b"RIFF");
        let riff_size = u32::from_le_bytes(webp[4..8].try_into().unwrap()) as usize;
        assert_eq!(riff_size + 8, webp.len(), "RIFF size");
        let mut names = Vec::new();
        let mut at = 12;
        while at < webp.len() {
            names.push(String::from_utf8_lossy(&webp[at..at + 4]).into_owned());
            let size = u32::from_le_bytes(webp[at + 4..at + 8].try_into().unwrap()) as usize;
            at += 8 + size + size % 2;
        }
        assert_eq!(at, webp.len(), "chunks end with the file");
        names
    }

    fn photo() -> RgbImage {
        photo_like(WIDTH, HEIGHT)
    }

    /// The default is lossy, decodes to the source's size and stays close
    /// to it (measured: 36.7 dB here).
    #[test]
    fn lossy_webp_decodes_faithfully_in_the_image_crate() {
        let webp = encoded(&DynamicImage::ImageRgb8(photo()), None);
        assert_eq!(chunk_names(&webp), ["VP8 "]);
        let decoded = decoded(&webp).to_rgb8();
        assert_eq!(decoded.dimensions(), (WIDTH, HEIGHT));
        let fidelity = psnr(&photo(), &decoded);
        assert!(fidelity > 34.0, "{fidelity:.1} dB");
    }

    /// The last row and column of an odd-sized image are coded like the
    /// rest (vaam 0.1.0 alone leaves them black, see the module doc).
    #[test]
    fn the_edges_of_odd_sizes_are_kept() {
        let source = photo();
        let decoded = decoded(&encoded(&DynamicImage::ImageRgb8(source.clone()), None)).to_rgb8();
        let last_column = |image: &RgbImage| crop_imm(image, WIDTH - 1, 0, 1, HEIGHT).to_image();
        let last_row = |image: &RgbImage| crop_imm(image, 0, HEIGHT - 1, WIDTH, 1).to_image();
        let column = psnr(&last_column(&source), &last_column(&decoded));
        let row = psnr(&last_row(&source), &last_row(&decoded));
        assert!(
            column > 35.0 && row > 35.0,
            "column {column:.1} dB, row {row:.1} dB"
        );
    }

    #[test]
    fn lower_webp_quality_gives_a_smaller_file() {
        let photo = DynamicImage::ImageRgb8(photo());
        let sizes: Vec<usize> = [30, 60, DEFAULT_QUALITY, 99]
            .map(|quality| encoded(&photo, Some(quality)).len())
            .into();
        assert!(sizes.is_sorted_by(|a, b| a < b), "{sizes:?}");
    }

    /// Transparency survives lossy WebP: clear pixels stay clear, opaque
    /// ones opaque, and the colour stays close where it is seen.
    #[test]
    fn lossy_webp_keeps_transparency() {
        let source = DynamicImage::ImageRgb8(photo()).to_rgba8();
        let half_clear = RgbaImage::from_fn(WIDTH, HEIGHT, |x, y| {
            let Rgba([r, g, b, _]) = *source.get_pixel(x, y);
            Rgba([r, g, b, if x < WIDTH / 2 { 0 } else { 255 }])
        });
        let webp = encoded(&DynamicImage::ImageRgba8(half_clear), None);
        assert_eq!(chunk_names(&webp), ["VP8X", "ALPH", "VP8 "]);
        let decoded = decoded(&webp).to_rgba8();
        assert_eq!(decoded.dimensions(), (WIDTH, HEIGHT));
        for (x, y) in [(0, 0), (WIDTH / 2 - 1, HEIGHT - 1)] {
            assert_eq!(decoded.get_pixel(x, y)[3], 0, "({x}, {y}) clear");
        }
        for (x, y) in [(WIDTH / 2, 0), (WIDTH - 1, HEIGHT - 1)] {
            assert_eq!(decoded.get_pixel(x, y)[3], 255, "({x}, {y}) opaque");
        }
        let seen = |image: &RgbaImage| {
            DynamicImage::ImageRgba8(
                crop_imm(image, WIDTH / 2, 0, WIDTH - WIDTH / 2, HEIGHT).to_image(),
            )
            .to_rgb8()
        };
        let fidelity = psnr(&seen(&source), &seen(&decoded));
        assert!(fidelity > 34.0, "{fidelity:.1} dB");
    }

    /// An alpha channel that hides nothing costs no ALPH chunk.
    #[test]
    fn an_opaque_alpha_channel_is_not_written() {
        let opaque = DynamicImage::ImageRgb8(photo()).to_rgba8();
        let webp = encoded(&DynamicImage::ImageRgba8(opaque), None);
        assert_eq!(chunk_names(&webp), ["VP8 "]);
    }

    /// Gray stays gray: no tint from the chroma planes (the decoder's
    /// fixed-point colour conversion may round one channel apart).
    #[test]
    fn gray_images_decode_gray() {
        let gray = DynamicImage::ImageRgb8(photo()).to_luma8();
        let decoded = decoded(&encoded(&DynamicImage::ImageLuma8(gray), None)).to_rgb8();
        let spread = decoded
            .pixels()
            .map(|p| p.0.iter().max().unwrap() - p.0.iter().min().unwrap())
            .max();
        assert!(spread <= Some(1), "{spread:?}");
    }

    /// Past its limits lossy WebP is refused as the request's fault, naming
    /// the way out, rather than written wrong or crashing the encoder.
    #[test]
    fn lossy_webp_refuses_what_vp8_cannot_hold() {
        let too_many_macroblocks = DynamicImage::new_rgb8(4096, 3440);
        let too_wide = DynamicImage::new_rgb8(MAX_LOSSY_SIDE + 1, 1);
        for image in [&too_many_macroblocks, &too_wide] {
            let mut out = Vec::new();
            let refused = webp(image, None, &mut out);
            assert!(
                matches!(&refused, Err(ImageError::InvalidOp(m)) if m.contains("quality(100)")),
                "{refused:?}"
            );
        }
        // (`image` 0.25 cannot decode a 16384-pixel side; libwebp's
        // `dwebp` decodes this file.)
        let lossless = encoded(&too_wide, Some(LOSSLESS_QUALITY));
        assert_eq!(chunk_names(&lossless), ["VP8L"]);
    }

    /// `quality(100)` is lossless: every pixel, transparency included,
    /// comes back exactly.
    #[test]
    fn quality_100_is_lossless() {
        let photo = photo();
        let source = RgbaImage::from_fn(WIDTH, HEIGHT, |x, y| {
            let image::Rgb([r, g, b]) = *photo.get_pixel(x, y);
            Rgba([r, g, b, (x + y) as u8])
        });
        let webp = encoded(&DynamicImage::ImageRgba8(source.clone()), Some(100));
        assert_eq!(chunk_names(&webp), ["VP8L"]);
        assert!(decoded(&webp).to_rgba8() == source, "the pixels changed");
    }
}
