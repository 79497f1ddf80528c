//! JPEG output: `jpeg-encoder`, baseline in one interleaved scan with the
//! standard (Annex K) Huffman tables, 4:2:0 chroma subsampling
//! (box-averaged rather than top-left sampled) and the requested quality:
//! what libjpeg, and so libvips, writes by default.
//!
//! - Rows are pulled one MCU row at a time and written straight out, so no
//!   coefficient store is kept (progressive or optimized-table output holds
//!   one 16-bit coefficient per sample, 48 MB for a 16-megapixel photo).
//!   Measured natively, encoding alone, on a 16-megapixel photo at quality
//!   80: 161 ms and 1,702,603 bytes (vips: 1,702,885), against 230 ms and
//!   1,645,782 bytes for the two-scan progressive file with optimized
//!   tables written before; the quantized coefficients are the same, so
//!   are the decoded pixels.
//! - Optimized tables are not worth a baseline file either: `jpeg-encoder`
//!   0.7 then writes one scan per component, which `zune-jpeg` 0.5.15 (the
//!   `image` crate's JPEG decoder, so Kiln's own input path and most Rust
//!   consumers) silently decodes to garbage when chroma is subsampled
//!   (zune-image issue 422); the interleaved scan decodes correctly
//!   everywhere (tested against `jpeg-decoder`).
//! - Transparency is composited onto the background (`background(...)`,
//!   white by default) while rows are fed to the encoder, so no extra
//!   frame is allocated (but for grey with alpha over a coloured
//!   background, which becomes RGBA first).
//! - Chroma is averaged here, as rows are fed, rather than by the encoder
//!   (see [`push_ycbcr_row`]). Measured in alternating runs: about a fifth
//!   off a 16-megapixel encode, natively and in Wasm, and a third off the
//!   1600-pixel encode of P in Wasm. Same pixels, but at the right edge of
//!   widths that are not a multiple of 16.
//! - `jpeg-encoder`'s `simd` feature (an AVX2 forward DCT, natively only)
//!   stays off, so that Kiln natively writes the same bytes as the service
//!   in Wasm (an end-to-end test checks it). Measured in alternating runs
//!   on one core, it takes the 16-megapixel encode from 155–160 ms to
//!   131–155 ms, but 0.7.1's AVX2 DCT drops the rounding term from half of
//!   its 16-bit lanes in one descaling step (`PW_DESCALE_P2X` is built with
//!   `_mm256_set_epi32` and added with `_mm256_add_epi16`): 3.6% of the
//!   16-megapixel photo's samples then decode differently, by up to 13
//!   levels. The colour conversion here is a plain loop that the compiler
//!   vectorizes for SSE2 and simd128 alike.

use std::cell::{Cell, RefCell};

use image::{DynamicImage, GrayAlphaImage, GrayImage, RgbImage, RgbaImage};
use jpeg_encoder::{
    ChromaSubsamplingMethod, Encoder, ImageBuffer, JpegColorType, SamplingFactor, rgb_to_ycbcr,
};

use super::encoding_failed;
use crate::error::ImageError;
use crate::format::Format;
use crate::ops::Colour;
use crate::progress::Reporter;

/// Encodes `image` as a JPEG of `quality` into `out`, transparency
/// composited onto `background` (its alpha ignored), reporting progress
/// row by row.
pub(super) fn jpeg(
    image: &DynamicImage,
    quality: u8,
    background: Colour,
    out: &mut Vec<u8>,
    reporter: &mut Reporter<'_, '_>,
) -> Result<(), ImageError> {
    // `encode` checked both sides against `Format::Jpeg.max_side()`.
    let width = u16::try_from(image.width()).expect("checked against the JPEG maximum");
    let height = u16::try_from(image.height()).expect("checked against the JPEG maximum");
    let encoder = jpeg_encoder(out, quality);
    let [r, g, b, _] = background.0;
    let rgba;
    let frame = match image {
        DynamicImage::ImageRgb8(rgb) => Frame::Rgb(rgb),
        DynamicImage::ImageLuma8(gray) => Frame::Gray(gray),
        DynamicImage::ImageRgba8(rgba) => Frame::RgbaOver(rgba, [r, g, b]),
        // Grey over a grey background stays one component.
        DynamicImage::ImageLumaA8(gray) if r == g && g == b => Frame::GrayAlphaOver(gray, r),
        other => {
            rgba = other.to_rgba8();
            Frame::RgbaOver(&rgba, [r, g, b])
        }
    };
    let rows = Rows {
        frame,
        width,
        height,
        reporter: RefCell::new(reporter),
        stopped: Cell::new(None),
        row_below: RefCell::default(),
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
    // Chroma arrives averaged (see `push_ycbcr_row`): the encoder samples it.
    encoder.set_chroma_subsampling_method(ChromaSubsamplingMethod::Nearest);
    encoder
}

/// `channel` seen through `alpha` over `under`.
fn over(channel: u8, alpha: u8, under: u8) -> u8 {
    let (c, a, u) = (u16::from(channel), u16::from(alpha), u16::from(under));
    ((c * a + u * (255 - a) + 127) / 255) as u8
}

/// The 8-bit layouts the JPEG encoder is fed, transparent ones as if
/// composited onto the background (so no extra frame is allocated for
/// that).
enum Frame<'a> {
    Rgb(&'a RgbImage),
    Gray(&'a GrayImage),
    RgbaOver(&'a RgbaImage, [u8; 3]),
    GrayAlphaOver(&'a GrayAlphaImage, u8),
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
    /// Y, Cb and Cr of the row below, for averaging chroma (see
    /// [`push_ycbcr_row`]); its Y is not used.
    row_below: RefCell<[Vec<u8>; 3]>,
}

impl ImageBuffer for &Rows<'_, '_, '_, '_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        match self.frame {
            Frame::Rgb(_) | Frame::RgbaOver(..) => JpegColorType::Ycbcr,
            Frame::Gray(_) | Frame::GrayAlphaOver(..) => JpegColorType::Luma,
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
        let rows = ChromaRows::of(row, usize::from(self.height));
        let scratch = &mut self.row_below.borrow_mut();
        match self.frame {
            Frame::Rgb(rgb) => {
                let pixels = rgb.as_raw().as_chunks::<3>().0;
                push_ycbcr_row(buffers, scratch, pixels, width, rows, |&rgb| rgb);
            }
            Frame::Gray(gray) => {
                buffers[0].extend_from_slice(&gray.as_raw()[row * width..][..width])
            }
            Frame::RgbaOver(rgba, [br, bg, bb]) => {
                let pixels = rgba.as_raw().as_chunks::<4>().0;
                push_ycbcr_row(
                    buffers,
                    scratch,
                    pixels,
                    width,
                    rows,
                    |&[r, g, b, alpha]| {
                        [over(r, alpha, br), over(g, alpha, bg), over(b, alpha, bb)]
                    },
                );
            }
            Frame::GrayAlphaOver(gray, under) => {
                let pixels = &gray.as_raw()[row * width * 2..][..width * 2];
                buffers[0].extend(
                    pixels
                        .as_chunks::<2>()
                        .0
                        .iter()
                        .map(|&[luma, alpha]| over(luma, alpha, under)),
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

/// Which rows a row's chroma is made of. With 4:2:0 subsampling the
/// encoder reads chroma only from even rows, and from the last row, which
/// it repeats to fill the bottom MCU row.
#[derive(Clone, Copy)]
struct ChromaRows {
    /// The row whose luma is appended.
    row: usize,
    /// The row below it in the same 2×2 blocks (itself at the bottom
    /// edge), or `None` for an odd row whose chroma is never read.
    below: Option<usize>,
}

impl ChromaRows {
    fn of(row: usize, height: usize) -> ChromaRows {
        let last = height - 1;
        let below = if row.is_multiple_of(2) {
            Some((row + 1).min(last))
        } else if row == last {
            Some(row)
        } else {
            None
        };
        ChromaRows { row, below }
    }
}

/// Appends row `rows.row` of `pixels` (rows of `width`), made RGB by
/// `to_rgb`, to the Y, Cb and Cr buffers; `scratch` holds the row below
/// while its chroma is averaged in.
///
/// Chroma is box-averaged here over each 2×2 block and written to both
/// columns of the block's top row, where an encoder set to
/// `ChromaSubsamplingMethod::Nearest` samples it. The rounding is
/// libjpeg's `h2v2_downsample` (a bias of 1 and 2 on alternate columns),
/// as in `jpeg-encoder`'s own `Average` method, which gives the same
/// bytes but divides every block's sum by a count known only at run time.
/// The one difference is the padding past the right edge of a width that
/// is not a multiple of 16: the encoder repeats the last value given into
/// every padding column, where `Average` alternates the bias from column
/// to column, so half of them can be one level apart.
fn push_ycbcr_row<const N: usize>(
    buffers: &mut [Vec<u8>; 4],
    scratch: &mut [Vec<u8>; 3],
    pixels: &[[u8; N]],
    width: usize,
    rows: ChromaRows,
    to_rgb: impl Fn(&[u8; N]) -> [u8; 3] + Copy,
) {
    let [luma, cb, cr, _] = buffers;
    let start = luma.len();
    let end = start + width;
    for plane in [&mut *luma, &mut *cb, &mut *cr] {
        plane.resize(end, 0);
    }
    let (luma, cb, cr) = (&mut luma[start..], &mut cb[start..], &mut cr[start..]);
    let row = &pixels[rows.row * width..][..width];
    let Some(below_row) = rows.below else {
        for (pixel, luma) in row.iter().zip(luma) {
            let [r, g, b] = to_rgb(pixel);
            *luma = rgb_to_ycbcr(r, g, b).0;
        }
        return;
    };
    to_ycbcr(row, luma, cb, cr, to_rgb);
    let [below_luma, below_cb, below_cr] = scratch;
    for plane in [&mut *below_luma, &mut *below_cb, &mut *below_cr] {
        plane.resize(width, 0);
    }
    if below_row == rows.row {
        below_cb.copy_from_slice(cb);
        below_cr.copy_from_slice(cr);
    } else {
        let row_below = &pixels[below_row * width..][..width];
        to_ycbcr(row_below, below_luma, below_cb, below_cr, to_rgb);
    }
    average_blocks(cb, below_cb);
    average_blocks(cr, below_cr);
}

/// Converts `pixels` into the `luma`, `cb` and `cr` rows, written by index
/// (pushing three bytes a pixel took a seventh of a 16-megapixel
/// re-encode).
fn to_ycbcr<const N: usize>(
    pixels: &[[u8; N]],
    luma: &mut [u8],
    cb: &mut [u8],
    cr: &mut [u8],
    to_rgb: impl Fn(&[u8; N]) -> [u8; 3],
) {
    let planes = luma.iter_mut().zip(cb.iter_mut()).zip(cr.iter_mut());
    for (pixel, ((luma, cb), cr)) in pixels.iter().zip(planes) {
        let [r, g, b] = to_rgb(pixel);
        (*luma, *cb, *cr) = rgb_to_ycbcr(r, g, b);
    }
}

/// Replaces each pair of columns of `top` by the rounded average of the
/// 2×2 block it makes with `bottom`; a last odd column counts twice.
///
/// The last column of an even width is never sampled, only repeated into
/// the padding, so it gets what the encoder's own averaging puts there: the
/// column averaged with itself, rounded with the bias of the first padding
/// block.
fn average_blocks(top: &mut [u8], bottom: &[u8]) {
    let width = top.len();
    let padding =
        (width > 0 && width.is_multiple_of(2)).then(|| (top[width - 1], bottom[width - 1]));
    let sum =
        |a: u8, b: u8, c: u8, d: u8| u16::from(a) + u16::from(b) + u16::from(c) + u16::from(d);
    let (quads, rest) = top.as_chunks_mut::<4>();
    let (bottom_quads, bottom_rest) = bottom.as_chunks::<4>();
    for (top, bottom) in quads.iter_mut().zip(bottom_quads) {
        let even = ((sum(top[0], top[1], bottom[0], bottom[1]) + 1) >> 2) as u8;
        let odd = ((sum(top[2], top[3], bottom[2], bottom[3]) + 2) >> 2) as u8;
        *top = [even, even, odd, odd];
    }
    for (block, (top, bottom)) in rest.chunks_mut(2).zip(bottom_rest.chunks(2)).enumerate() {
        let (left, right) = (0, top.len() - 1);
        let total = sum(top[left], top[right], bottom[left], bottom[right]);
        top.fill(((total + 1 + block as u16) >> 2) as u8);
    }
    if let Some((last_top, last_bottom)) = padding {
        let bias = 1 + (width / 2) as u16 % 2;
        top[width - 1] = ((sum(last_top, last_top, last_bottom, last_bottom) + bias) >> 2) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Format;
    use crate::test_support::kiln_encoded as encode;
    use crate::test_support::{decoded_by_image as decoded, small_frame as photo};
    use crate::test_support::{gradient, noise, photo_like, psnr};
    use image::{GenericImageView, Rgba};

    /// `jpeg-encoder` fed the whole frame at once, averaging chroma itself
    /// (`ChromaSubsamplingMethod::Average`): what Kiln wrote before it
    /// averaged chroma while feeding rows. `progressive`: what it wrote
    /// before issue 7, two progressive scans (DC, then all AC) with
    /// optimized Huffman tables.
    fn encoder_averaged_jpeg(image: &RgbImage, quality: u8, progressive: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = jpeg_encoder(&mut out, quality);
        encoder.set_chroma_subsampling_method(ChromaSubsamplingMethod::Average);
        if progressive {
            encoder.set_optimized_huffman_tables(true);
            encoder.set_progressive_scans(2);
        }
        let (width, height) = (image.width() as u16, image.height() as u16);
        encoder
            .encode(image.as_raw(), width, height, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    /// Feeding rows one by one and averaging chroma on the way changes no
    /// byte wherever the encoder pads no chroma on the right: widths that
    /// are a multiple of 16, any height (odd ones repeat the last row, even
    /// ones not a multiple of 16 repeat an odd one).
    #[test]
    fn rows_fed_with_averaged_chroma_give_the_encoders_own_bytes() {
        for (width, height) in [(1504, 1200), (320, 211), (64, 30), (16, 1), (32, 17)] {
            for source in [photo_like(width, height), noise(width, height).to_rgb8()] {
                for quality in [50, 80] {
                    let ours = encode(
                        &DynamicImage::ImageRgb8(source.clone()),
                        Format::Jpeg,
                        quality,
                    );
                    assert!(
                        ours.unwrap() == encoder_averaged_jpeg(&source, quality, false),
                        "{width}x{height} at quality {quality}"
                    );
                }
            }
        }
    }

    /// Each chroma sample the encoder reads (the left column of each 2×2
    /// block) is the block's average with libjpeg's rounding, a block cut
    /// by the right edge counting its last column twice; the last column of
    /// an even width, which the encoder repeats into its padding, is that
    /// column averaged with itself with the next block's bias.
    #[test]
    fn blocks_average_with_alternating_bias_at_every_width() {
        let noise = noise(9, 64).to_luma8();
        for (top, bottom) in noise
            .as_raw()
            .as_chunks::<18>()
            .0
            .iter()
            .map(|pair| pair.split_at(9))
        {
            for width in 1..=9 {
                let (top, bottom) = (&top[..width], &bottom[..width]);
                let mut averaged = top.to_vec();
                average_blocks(&mut averaged, bottom);
                let average = |block: usize, columns: [usize; 2]| {
                    let total: u16 = columns
                        .iter()
                        .map(|&x| u16::from(top[x]) + u16::from(bottom[x]))
                        .sum();
                    ((total + 1 + block as u16 % 2) / 4) as u8
                };
                for block in 0..width.div_ceil(2) {
                    let columns = [2 * block, (2 * block + 1).min(width - 1)];
                    assert_eq!(
                        averaged[2 * block],
                        average(block, columns),
                        "width {width}, block {block}"
                    );
                }
                if width % 2 == 0 {
                    let last = width - 1;
                    assert_eq!(
                        averaged[last],
                        average(width / 2, [last, last]),
                        "width {width}, padding"
                    );
                }
            }
        }
    }

    /// Past the right edge of other widths, the encoder repeats the last
    /// chroma value given into every padding column, where its own
    /// averaging alternates the rounding bias, so half of those columns can
    /// be a level apart. The padding reaches the visible pixels through the
    /// last blocks' DCT: only the rightmost MCU column (and the column
    /// before it, which decoders upsample chroma from) may differ, and the
    /// picture is as faithful to the source as before.
    #[test]
    fn other_widths_differ_from_the_encoders_averaging_only_at_the_right_edge() {
        for (width, height) in [(333, 211), (334, 40), (1500, 1200), (50, 40)] {
            // Noise is all high frequencies, which quantization amplifies
            // (measured: up to 30 levels at quality 50); photos stay within
            // a few (6 at most here).
            let sources = [
                (photo_like(width, height), 8),
                (noise(width, height).to_rgb8(), 40),
            ];
            for (source, most) in sources {
                for quality in [50, 80, 95] {
                    let ours = encode(
                        &DynamicImage::ImageRgb8(source.clone()),
                        Format::Jpeg,
                        quality,
                    );
                    let ours = kiln_decoded(&ours.unwrap());
                    let theirs = kiln_decoded(&encoder_averaged_jpeg(&source, quality, false));
                    let edge = (width / 16 * 16).saturating_sub(1);
                    let mut worst = 0;
                    for (x, y, pixel) in ours.enumerate_pixels() {
                        let other = theirs.get_pixel(x, y);
                        let largest = pixel
                            .0
                            .iter()
                            .zip(other.0)
                            .map(|(a, b)| a.abs_diff(b))
                            .max();
                        assert!(
                            x >= edge || largest == Some(0),
                            "{width}x{height} q{quality} at ({x}, {y}): {pixel:?} vs {other:?}"
                        );
                        worst = worst.max(largest.unwrap_or(0));
                    }
                    assert!(worst <= most, "{width}x{height} q{quality}: {worst} levels");
                    let (now, before) = (psnr(&source, &ours), psnr(&source, &theirs));
                    assert!(
                        (now - before).abs() < 0.05,
                        "{width}x{height} q{quality}: {now:.2} dB vs {before:.2} dB"
                    );
                }
            }
        }
    }

    /// Kiln's own JPEG input path: strict `zune-jpeg`, oriented, 8-bit.
    fn kiln_decoded(bytes: &[u8]) -> RgbImage {
        let header = crate::decode::open(bytes, image::Limits::default()).unwrap();
        crate::decode::decode(header, None).unwrap().image.to_rgb8()
    }

    /// Output must not get worse: Kiln's baseline file differs from the
    /// progressive one Kiln wrote before issue 7 only in its entropy
    /// coding, so it decodes to the very same pixels, as faithful to the
    /// source as before. The width is a multiple of 16 (other widths differ
    /// at the right edge, see above); the odd height leaves a partial MCU
    /// row in every component.
    #[test]
    fn jpeg_pixels_are_those_of_the_previous_encoder() {
        let source = photo_like(336, 211);
        for quality in [50, 80, 82, 95] {
            let now = encode(
                &DynamicImage::ImageRgb8(source.clone()),
                Format::Jpeg,
                quality,
            );
            let before = encoder_averaged_jpeg(&source, quality, true);
            let (now, before) = (kiln_decoded(&now.unwrap()), kiln_decoded(&before));
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
    fn over_white_keeps_opaque_and_whitens_clear_pixels() {
        assert_eq!(over(10, 255, 255), 10);
        assert_eq!(over(10, 0, 255), 255);
        assert_eq!(over(0, 128, 255), 127);
    }
}
