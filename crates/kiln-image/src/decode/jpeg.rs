//! JPEG through `zune-jpeg` in strict mode, behind `image`'s
//! [`ImageDecoder`] trait.
//!
//! `image` 0.25 runs `zune-jpeg` with strict mode off and offers no switch:
//! a Huffman code that decodes to nothing, a marker inside a scan or a scan
//! that runs out of data is then logged and the rest of the image painted
//! grey. Strict mode makes each of those an error, which is what a client
//! that uploaded a damaged photo needs to hear. Same decoder, same output
//! otherwise: the colour handling below follows `image`'s own wrapper.
//! It also borrows the input rather than copying it, and reads the headers
//! once.

use image::error::{
    DecodingError, ImageFormatHint, LimitError, LimitErrorKind, UnsupportedError,
    UnsupportedErrorKind,
};
use image::metadata::Orientation;
use image::{ColorType, ImageDecoder, ImageFormat, ImageResult, LimitSupport, Limits};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::errors::DecodeErrors;

use crate::colour::InkImage;

/// A strict JPEG decoder positioned after the headers.
pub(crate) struct StrictJpegDecoder<'a> {
    decoder: zune_jpeg::JpegDecoder<ZCursor<&'a [u8]>>,
    width: u32,
    height: u32,
    color: ColorType,
    orientation: Orientation,
    /// Whether the file holds CMYK or YCCK (read through [`decode_ink`]).
    ink: bool,
}

impl<'a> StrictJpegDecoder<'a> {
    /// Reads the headers of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> ImageResult<StrictJpegDecoder<'a>> {
        let mut decoder = strict(bytes)?;
        let (width, height) = decoder.dimensions().expect("headers are decoded");
        let input = decoder.input_colorspace().expect("headers are decoded");
        // `image` has no type for CMYK, YCCK and the like: those come out as
        // RGB, the rest as they are (YCbCr converted to RGB by zune).
        let (output, color) = match input {
            ColorSpace::Luma => (ColorSpace::Luma, ColorType::L8),
            ColorSpace::LumaA => (ColorSpace::LumaA, ColorType::La8),
            ColorSpace::RGBA => (ColorSpace::RGBA, ColorType::Rgba8),
            _ => (ColorSpace::RGB, ColorType::Rgb8),
        };
        decoder.set_options(decoder.options().jpeg_set_out_colorspace(output));
        let orientation = decoder
            .exif()
            .and_then(|exif| Orientation::from_exif_chunk(exif))
            .unwrap_or(Orientation::NoTransforms);
        Ok(StrictJpegDecoder {
            decoder,
            width: u32::try_from(width).expect("JPEG sides fit in 16 bits"),
            height: u32::try_from(height).expect("JPEG sides fit in 16 bits"),
            color,
            orientation,
            ink: matches!(input, ColorSpace::CMYK | ColorSpace::YCCK),
        })
    }

    /// Whether the file holds CMYK or YCCK, whose ink amounts
    /// [`decode_ink`] reads for colour management; through
    /// [`ImageDecoder`] they come out as uncorrected RGB, as from `image`.
    pub(crate) fn holds_ink(&self) -> bool {
        self.ink
    }
}

/// A strict decoder of `bytes` with its headers read.
fn strict(bytes: &[u8]) -> ImageResult<zune_jpeg::JpegDecoder<ZCursor<&[u8]>>> {
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        // zune's default caps sides at 16384; JPEG allows 65535, and
        // Kiln's own pixel limits apply before decoding.
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX));
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(from_zune)?;
    Ok(decoder)
}

/// The ink amounts (0 is no ink) of a CMYK or YCCK JPEG, decoded strictly.
///
/// Photoshop, which writes nearly every such file, stores CMYK inverted
/// (255 is no ink) and flags it with its APP14 marker, as zune-jpeg and
/// libjpeg assume; YCCK is that inverted CMYK with C, M, Y stored as
/// YCbCr, so its inks are the RGB that YCbCr decodes to.
pub(crate) fn decode_ink(bytes: &[u8]) -> ImageResult<InkImage> {
    let mut decoder = strict(bytes)?;
    let input = decoder.input_colorspace().expect("headers are decoded");
    let (width, height) = decoder.dimensions().expect("headers are decoded");
    // The same colour space in and out: zune hands over the components as
    // they are stored.
    decoder.set_options(decoder.options().jpeg_set_out_colorspace(input));
    let mut ink = vec![0; width * height * 4];
    decoder.decode_into(&mut ink).map_err(from_zune)?;
    match input {
        ColorSpace::YCCK => ink.chunks_exact_mut(4).for_each(ycck_to_ink),
        _ => ink.iter_mut().for_each(|stored| *stored = 255 - *stored),
    }
    Ok(InkImage {
        width: u32::try_from(width).expect("JPEG sides fit in 16 bits"),
        height: u32::try_from(height).expect("JPEG sides fit in 16 bits"),
        ink,
    })
}

/// One YCCK pixel to C, M, Y, K inks: the JFIF YCbCr to RGB conversion
/// gives the inks of C, M and Y, and K is stored inverted.
fn ycck_to_ink(pixel: &mut [u8]) {
    let y = f32::from(pixel[0]);
    let cb = f32::from(pixel[1]) - 128.0;
    let cr = f32::from(pixel[2]) - 128.0;
    let level = |value: f32| value.round().clamp(0.0, 255.0) as u8;
    pixel[0] = level(y + 1.402 * cr);
    pixel[1] = level(y - 0.344_136 * cb - 0.714_136 * cr);
    pixel[2] = level(y + 1.772 * cb);
    pixel[3] = 255 - pixel[3];
}

impl ImageDecoder for StrictJpegDecoder<'_> {
    fn dimensions(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn color_type(&self) -> ColorType {
        self.color
    }

    fn orientation(&mut self) -> ImageResult<Orientation> {
        Ok(self.orientation)
    }

    /// The profile of the APP2 segments, joined in their order; `None`
    /// when they are missing, numbered inconsistently or duplicated.
    fn icc_profile(&mut self) -> ImageResult<Option<Vec<u8>>> {
        Ok(self.decoder.icc_profile())
    }

    fn read_image(mut self, buf: &mut [u8]) -> ImageResult<()> {
        self.decoder.decode_into(buf).map_err(from_zune)
    }

    fn read_image_boxed(self: Box<Self>, buf: &mut [u8]) -> ImageResult<()> {
        (*self).read_image(buf)
    }

    /// As `image`'s JPEG decoder: dimensions only. The allocation limit is
    /// not applied to the header, so that an oversized JPEG is refused by
    /// [`preflight`](crate::preflight) with its pixel count, before any
    /// decoding, like the other formats.
    fn set_limits(&mut self, limits: Limits) -> ImageResult<()> {
        limits.check_support(&LimitSupport::default())?;
        limits.check_dimensions(self.width, self.height)
    }
}

/// The `image` error for a `zune-jpeg` one, sorted as `image` sorts them.
fn from_zune(error: DecodeErrors) -> image::ImageError {
    match error {
        DecodeErrors::Unsupported(feature) => {
            image::ImageError::Unsupported(UnsupportedError::from_format_and_kind(
                ImageFormatHint::Exact(ImageFormat::Jpeg),
                UnsupportedErrorKind::GenericFeature(format!("{feature:?}")),
            ))
        }
        DecodeErrors::LargeDimensions(_) => {
            image::ImageError::Limits(LimitError::from_kind(LimitErrorKind::DimensionError))
        }
        other => image::ImageError::Decoding(DecodingError::new(
            ImageFormatHint::Exact(ImageFormat::Jpeg),
            other,
        )),
    }
}
