//! Decoding: open the header, then decode, orient and reduce to 8 bits.
//!
//! The header is opened first so that dimensions can be checked against the
//! limits before any pixel buffer is allocated. Opening also walks the
//! file's structure ([`integrity`](crate::integrity)), so a file cut short
//! is refused before its header is trusted. JPEG is decoded strictly
//! ([`jpeg`]), or at a reduced scale when the operations allow it
//! ([`jpeg_scaled`], see [`crate::shrink`]); AVIF by [`avif`]; the other
//! formats through the `image` crate's readers.
//!
//! The decoded frame is never copied but by an EXIF quarter rotation
//! (which needs a second buffer) and by 16-bit input reduced to 8 bits.

mod avif;
mod jpeg;
pub(crate) mod jpeg_scaled;

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader};

use crate::colour::{self, Cicp, Pixels, Tag, Warning};
use crate::error::ImageError;
use crate::format::Format;
use crate::integrity;
use crate::plan::Limits;
use crate::probe::ImageInfo;
use crate::shrink;

/// A decoder positioned after the header.
pub(crate) struct Header<'a, D> {
    decoder: D,
    bytes: &'a [u8],
    orientation: Orientation,
    /// The embedded ICC profile, if any.
    pub(crate) icc: Option<Vec<u8>>,
    /// Whether the pixels are CMYK inks (a CMYK or YCCK JPEG).
    ink: bool,
    /// An AVIF's colour space as CICP code points, when they are not
    /// sRGB's (see [`colour::Cicp`]).
    cicp: Option<Cicp>,
    /// How many times an animation plays (0: forever), from the file.
    pub(crate) plays: u32,
    /// Format and displayed (oriented) dimensions.
    pub(crate) info: ImageInfo,
}

/// Sniffs the format of `bytes`, checks that the file is whole and reads
/// its header.
pub(crate) fn open(
    bytes: &[u8],
    limits: image::Limits,
) -> Result<Header<'_, impl ImageDecoder + '_>, ImageError> {
    let format = Format::sniff(bytes).ok_or(ImageError::Unsupported)?;
    let frames = integrity::check(format, bytes)?;
    // What trails a WebP's container is not the decoder's to read.
    let bytes = match format {
        Format::Webp => integrity::webp_image(bytes),
        _ => bytes,
    };
    let (mut decoder, Coding { ink, cicp }) =
        decoder(format, bytes, limits).map_err(ImageError::from_decoding)?;
    let orientation = decoder.orientation().map_err(ImageError::from_decoding)?;
    // A profile that cannot be read is left out here and the pixels taken
    // as they are; one that reads but does not parse is warned of later.
    let icc = decoder.icc_profile().ok().flatten();
    let (width, height) = decoder.dimensions();
    let (width, height) = if swaps_sides(orientation) {
        (height, width)
    } else {
        (width, height)
    };
    Ok(Header {
        decoder,
        bytes,
        orientation,
        icc,
        ink,
        cicp,
        plays: frames.plays,
        info: ImageInfo {
            format,
            width,
            height,
            frames: frames.count,
        },
    })
}

/// What a decoder knows of its pixels beyond the `ImageDecoder` trait.
#[derive(Default)]
struct Coding {
    /// CMYK inks, not RGB.
    ink: bool,
    /// See [`Header::cicp`].
    cicp: Option<Cicp>,
}

/// The decoder for `bytes`, and what it knows of its pixels.
fn decoder(
    format: Format,
    bytes: &[u8],
    limits: image::Limits,
) -> image::ImageResult<(Box<dyn ImageDecoder + '_>, Coding)> {
    if format == Format::Jpeg {
        let mut decoder = jpeg::StrictJpegDecoder::new(bytes)?;
        decoder.set_limits(limits)?;
        let ink = decoder.holds_ink();
        let coding = Coding {
            ink,
            ..Coding::default()
        };
        return Ok((Box::new(decoder), coding));
    }
    if format == Format::Avif {
        let mut decoder = avif::AvifDecoder::new(bytes)?;
        decoder.set_limits(limits)?;
        let coding = Coding {
            cicp: decoder.cicp(),
            ..Coding::default()
        };
        return Ok((Box::new(decoder), coding));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.to_image());
    reader.limits(limits);
    Ok((Box::new(reader.into_decoder()?), Coding::default()))
}

/// The `image` crate limits for decoding within `limits`.
pub(crate) fn image_limits(limits: &Limits) -> image::Limits {
    // 8 bytes a pixel holds the widest frame the four decoders produce
    // (16-bit RGBA PNG); the constant is room for codec tables and rows.
    const SLACK: u64 = 16 << 20;
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(
        limits
            .max_input_pixels
            .saturating_mul(8)
            .saturating_add(SLACK),
    );
    image_limits
}

/// A decoded frame, in sRGB and oriented.
pub(crate) struct Decoded {
    /// `L8`, `La8`, `Rgb8` or `Rgba8`.
    pub(crate) image: DynamicImage,
    /// Why the embedded colour profile was not applied, if it was not.
    pub(crate) warning: Option<Warning>,
}

/// Decodes the pixels, reduces them to one of the 8-bit layouts the rest of
/// the pipeline works on (`L8`, `La8`, `Rgb8`, `Rgba8`), converts them to
/// sRGB through the embedded profile ([`colour`]) and applies the EXIF
/// orientation. Metadata is not carried along.
///
/// With `at_least`, a JPEG may be decoded at 1/2, 1/4 or 1/8 scale, the
/// smallest that keeps the displayed frame at least that large on both
/// sides (see [`crate::shrink`]); other formats, and JPEGs the scaled
/// decoder cannot read, are decoded at full size.
pub(crate) fn decode(
    mut header: Header<'_, impl ImageDecoder>,
    at_least: Option<(u32, u32)>,
) -> Result<Decoded, ImageError> {
    let tag = colour_tag(&mut header);
    let scaled = at_least.and_then(|at_least| decode_shrunk(&header, at_least));
    let pixels = match scaled {
        Some(pixels) => pixels,
        None if header.ink => {
            Pixels::Ink(jpeg::decode_ink(header.bytes).map_err(ImageError::from_decoding)?)
        }
        None => Pixels::Device(to_8_bit(
            DynamicImage::from_decoder(header.decoder).map_err(ImageError::from_decoding)?,
        )),
    };
    let (mut image, warning) = colour::to_srgb(pixels, &tag);
    image.apply_orientation(header.orientation);
    Ok(Decoded { image, warning })
}

/// What the file says its colours mean: its ICC profile, else (PNG) its
/// colour chunks, else (AVIF) its CICP code points, else sRGB.
fn colour_tag(header: &mut Header<'_, impl ImageDecoder>) -> Tag {
    match header.icc.take() {
        Some(icc) => Tag::Icc(icc),
        None if header.info.format == Format::Png => colour::png_colour_chunks(header.bytes),
        None => header.cicp.take().map_or(Tag::Srgb, Tag::Cicp),
    }
}

/// One frame of an animation, as the viewer sees it: composited onto the
/// frames before it as the file says, in sRGB and oriented.
pub(crate) struct AnimationFrame {
    /// `Rgba8`, the size of the animation's canvas.
    pub(crate) image: DynamicImage,
    /// How long it shows, in milliseconds.
    pub(crate) delay_ms: u32,
    /// Why the embedded colour profile was not applied, if it was not.
    pub(crate) warning: Option<Warning>,
}

/// The frames of `header`'s animated GIF or WebP, decoded one at a time,
/// as [`decode`] decodes a still image but at full size always.
///
/// Disposal and blending are resolved by the `image` crate's readers
/// (GIF: a frame disposed "to background" leaves its rectangle
/// transparent, as browsers show it). For WebP, a transparent background
/// colour is set first: `image-webp` disposes of a frame only when one is
/// set, and libwebp's own reader, like browsers, clears to transparent
/// whatever the file's background colour hint says.
pub(crate) fn decode_frames<'a>(
    mut header: Header<'a, impl ImageDecoder>,
    limits: image::Limits,
) -> Result<impl Iterator<Item = Result<AnimationFrame, ImageError>> + 'a, ImageError> {
    use image::codecs::{gif::GifDecoder, webp::WebPDecoder};
    use image::{AnimationDecoder, Rgba};

    let tag = colour_tag(&mut header);
    let orientation = header.orientation;
    let reader = Cursor::new(header.bytes);
    let frames = match header.info.format {
        Format::Gif => {
            let mut decoder = GifDecoder::new(reader).map_err(ImageError::from_decoding)?;
            decoder
                .set_limits(limits)
                .map_err(ImageError::from_decoding)?;
            decoder.into_frames()
        }
        Format::Webp => {
            let mut decoder = WebPDecoder::new(reader).map_err(ImageError::from_decoding)?;
            decoder
                .set_limits(limits)
                .map_err(ImageError::from_decoding)?;
            decoder
                .set_background_color(Rgba([0, 0, 0, 0]))
                .map_err(ImageError::from_decoding)?;
            decoder.into_frames()
        }
        _ => return Err(ImageError::Unsupported),
    };
    Ok(frames.map(move |frame| {
        let frame = frame.map_err(ImageError::from_decoding)?;
        let (numerator, denominator) = frame.delay().numer_denom_ms();
        let delay_ms = numerator.div_ceil(denominator.max(1));
        let rgba = DynamicImage::ImageRgba8(frame.into_buffer());
        let (mut image, warning) = colour::to_srgb(Pixels::Device(rgba), &tag);
        image.apply_orientation(orientation);
        Ok(AnimationFrame {
            image,
            delay_ms,
            warning,
        })
    }))
}

/// The frame of `header`'s JPEG decoded at the smallest scale that keeps
/// it at least `at_least` once oriented, when that is smaller than full size
/// and the scaled decoder can read it.
fn decode_shrunk(header: &Header<'_, impl ImageDecoder>, at_least: (u32, u32)) -> Option<Pixels> {
    if header.info.format != Format::Jpeg {
        return None;
    }
    let denominator = shrink::dct_denominator((header.info.width, header.info.height), at_least);
    if denominator == 1 {
        return None;
    }
    jpeg_scaled::decode_scaled(header.bytes, denominator)
}

fn swaps_sides(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

fn to_8_bit(image: DynamicImage) -> DynamicImage {
    use image::ColorType;
    match image.color() {
        ColorType::L8 | ColorType::La8 | ColorType::Rgb8 | ColorType::Rgba8 => image,
        ColorType::L16 => image.into_luma8().into(),
        ColorType::La16 => image.into_luma_alpha8().into(),
        _ if image.color().has_alpha() => image.into_rgba8().into(),
        _ => image.into_rgb8().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{
        animated_gif, distance_from_make_sh_gradient, encoded, first_scan_start, gradient,
        with_exif_orientation, with_trailing_garbage,
    };
    use image::{GenericImageView, Rgb, Rgba};

    fn decoded(bytes: &[u8]) -> DynamicImage {
        decode(open(bytes, image::Limits::default()).unwrap(), None)
            .unwrap()
            .image
    }

    #[test]
    fn decode_applies_exif_orientation() {
        // A red top-left corner ends up top-right after orientation 6
        // (rotate 90 clockwise).
        let mut source = gradient(64, 48);
        for y in 0..8 {
            for x in 0..8 {
                source.put_pixel(x, y, Rgb([255, 0, 0]));
            }
        }
        let jpeg = with_exif_orientation(&encoded(&source, Format::Jpeg), 6);
        let image = decoded(&jpeg);
        assert_eq!(image.dimensions(), (48, 64));
        let Rgba([r, g, _, _]) = image.get_pixel(44, 3);
        assert!(r > 200 && g < 60, "expected red, got {r},{g}");
    }

    #[test]
    fn decode_reduces_sixteen_bit_input_to_eight() {
        let wide = image::ImageBuffer::<Rgb<u16>, _>::from_pixel(4, 4, Rgb([65535, 0, 0]));
        let mut png = Vec::new();
        DynamicImage::from(wide)
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(decoded(&png).color(), image::ColorType::Rgb8);
    }

    fn decoding(bytes: &[u8]) -> Result<DynamicImage, ImageError> {
        open(bytes, image::Limits::default())
            .and_then(|header| decode(header, None))
            .map(|decoded| decoded.image)
    }

    /// Files from libjpeg-turbo, libpng and libwebp (see testdata/make.sh),
    /// all of the 67×45 gradient that script draws.
    const FOREIGN: [(&str, &[u8]); 6] = [
        (
            "libjpeg progressive",
            include_bytes!("../testdata/libjpeg-progressive.jpg"),
        ),
        (
            "libjpeg restart markers",
            include_bytes!("../testdata/libjpeg-restart.jpg"),
        ),
        (
            "interlaced png",
            include_bytes!("../testdata/interlaced.png"),
        ),
        ("lossy webp", include_bytes!("../testdata/lossy.webp")),
        (
            "lossy webp, alpha",
            include_bytes!("../testdata/lossy-alpha.webp"),
        ),
        ("animated webp", include_bytes!("../testdata/animated.webp")),
    ];

    /// `jpeg` with 64 one bits written over the middle of its first scan:
    /// no Huffman table has an all-ones code (JPEG, annex C), so every
    /// decoder that checks its codes must stop there.
    fn with_undecodable_scan(jpeg: &[u8]) -> Vec<u8> {
        let scan = first_scan_start(jpeg);
        let mut at = scan + (jpeg.len() - scan) / 2;
        while jpeg[at - 1] == 0xFF {
            at += 1; // not between a 0xFF and its stuffed 0x00
        }
        let mut out = jpeg[..at].to_vec();
        out.extend_from_slice(&[0xFF, 0x00].repeat(8)); // 0xFF, stuffed
        out.extend_from_slice(&jpeg[at + 16..]);
        out
    }

    /// Files from the encoders most clients use (libjpeg progressive and with
    /// restart markers, Adam7 PNG, lossy, alpha and animated WebP) decode to
    /// their pixels: strictness refuses no valid file.
    #[test]
    fn decode_reads_files_written_by_the_c_libraries() {
        for (name, bytes) in FOREIGN {
            let image = decoding(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(image.dimensions(), (67, 45), "{name}");
            let distance = distance_from_make_sh_gradient(&image);
            assert!(distance < 4.0, "{name}: {distance}");
        }
    }

    /// Kiln's own output can be fed back to Kiln.
    #[test]
    fn decode_reads_kilns_own_output_in_every_format() {
        let source = DynamicImage::ImageRgb8(gradient(67, 45));
        for format in Format::ALL {
            let bytes = crate::test_support::kiln_encoded(&source, format, 80).unwrap();
            assert_eq!(decoding(&bytes).unwrap().dimensions(), (67, 45), "{format}");
        }
    }

    /// Strict JPEG decoding changes what is refused, not the pixels: every
    /// valid JPEG (baseline, progressive, restart markers, grey) decodes
    /// exactly as through `image`'s own wrapper. (CMYK is colour-managed,
    /// which `image` does not do: see `colour`.)
    #[test]
    fn strict_jpeg_decoding_gives_the_image_crates_pixels() {
        let kiln = crate::test_support::kiln_encoded(
            &DynamicImage::ImageRgb8(gradient(67, 45)),
            Format::Jpeg,
            80,
        );
        let jpegs: [&[u8]; 5] = [
            &encoded(&gradient(67, 45), Format::Jpeg),
            &kiln.unwrap(),
            include_bytes!("../testdata/libjpeg-progressive.jpg"),
            include_bytes!("../testdata/libjpeg-restart.jpg"),
            include_bytes!("../testdata/libjpeg-gray.jpg"),
        ];
        for (index, jpeg) in jpegs.into_iter().enumerate() {
            let lenient = image::load_from_memory(jpeg).unwrap();
            assert_eq!(decoding(jpeg).unwrap(), lenient, "JPEG {index}");
        }
    }

    /// Animations are whole files too, and a still decode keeps their first
    /// frame.
    #[test]
    fn decode_keeps_the_first_frame_of_an_animation() {
        let gif = decoding(&animated_gif()).unwrap();
        assert_eq!(gif.get_pixel(5, 5), Rgba([255, 0, 0, 255]));
        // The second frame of animated.webp is the first one mirrored.
        let (_, webp) = FOREIGN[5];
        assert!(distance_from_make_sh_gradient(&decoding(webp).unwrap()) < 4.0);
    }

    /// Bytes after a complete image change nothing.
    #[test]
    fn decode_ignores_trailing_garbage_after_a_whole_image() {
        let source = gradient(64, 48);
        for format in Format::ALL {
            let bytes = encoded(&source, format);
            assert_eq!(
                decoding(&with_trailing_garbage(&bytes)).unwrap(),
                decoding(&bytes).unwrap(),
                "{format}"
            );
        }
    }

    /// What trails a WebP's container is not read, not even a chunk just
    /// after it, where image-webp looks: fuzzing found one announcing a
    /// 1 GB ICC profile, which it set aside (fuzz/regressions/decode_webp).
    #[test]
    fn decode_does_not_read_a_chunk_after_a_webps_container() {
        let webp = include_bytes!("../testdata/lossy-alpha.webp");
        let mut bytes = webp.to_vec();
        bytes.extend_from_slice(b"ICCP");
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(b"not a profile...");
        let header = open(&bytes, image::Limits::default()).unwrap();
        assert_eq!(header.icc, None);
        assert_eq!(
            decoding(&bytes).unwrap(),
            decoding(webp).unwrap(),
            "the same picture"
        );
    }

    /// Corrupt JPEG data is refused, not painted grey, whether the file is
    /// baseline, progressive or has restart markers.
    #[test]
    fn decode_refuses_a_jpeg_whose_scan_no_huffman_table_can_decode() {
        let kiln = crate::test_support::kiln_encoded(
            &DynamicImage::ImageRgb8(gradient(256, 192)),
            Format::Jpeg,
            80,
        );
        let jpegs: [(&str, &[u8]); 4] = [
            (
                "image crate baseline",
                &encoded(&gradient(256, 192), Format::Jpeg),
            ),
            ("kiln progressive", &kiln.unwrap()),
            (
                "libjpeg progressive",
                include_bytes!("../testdata/libjpeg-progressive.jpg"),
            ),
            (
                "libjpeg restart markers",
                include_bytes!("../testdata/libjpeg-restart.jpg"),
            ),
        ];
        for (name, jpeg) in jpegs {
            let damaged = with_undecodable_scan(jpeg);
            assert!(
                matches!(decoding(&damaged), Err(ImageError::Corrupt(_))),
                "{name}: {:?}",
                decoding(&damaged).map(|_| ())
            );
        }
    }

    /// A flipped bit in PNG pixel data is caught by the chunk CRC.
    #[test]
    fn decode_refuses_a_png_whose_pixel_data_fails_its_crc() {
        let mut png = encoded(&gradient(64, 48), Format::Png);
        let idat = png.windows(4).position(|w| w == b"IDAT").unwrap();
        let length = u32::from_be_bytes(png[idat - 4..idat].try_into().unwrap()) as usize;
        png[idat + 4 + length / 2] ^= 0x01;
        assert!(matches!(decoding(&png), Err(ImageError::Corrupt(_))));
    }

    /// A damaged CRC is refused as well.
    #[test]
    fn decode_refuses_a_png_whose_crc_is_damaged() {
        let mut png = encoded(&gradient(64, 48), Format::Png);
        let idat = png.windows(4).position(|w| w == b"IDAT").unwrap();
        let length = u32::from_be_bytes(png[idat - 4..idat].try_into().unwrap()) as usize;
        png[idat + 4 + length] ^= 0x80;
        assert!(matches!(decoding(&png), Err(ImageError::Corrupt(_))));
    }
}
