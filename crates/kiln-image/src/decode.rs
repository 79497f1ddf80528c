//! Decoding: open the header, then decode, orient and reduce to 8 bits.
//!
//! The header is opened first so that dimensions can be checked against the
//! limits before any pixel buffer is allocated.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader};

use crate::error::ImageError;
use crate::format::Format;
use crate::plan::Limits;
use crate::probe::ImageInfo;

/// A decoder positioned after the header.
pub(crate) struct Header<D> {
    decoder: D,
    orientation: Orientation,
    /// Format and displayed (oriented) dimensions.
    pub(crate) info: ImageInfo,
}

/// Sniffs the format of `bytes` and reads its header.
pub(crate) fn open(
    bytes: &[u8],
    limits: image::Limits,
) -> Result<Header<impl ImageDecoder + '_>, ImageError> {
    let format = Format::sniff(bytes).ok_or(ImageError::Unsupported)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.to_image());
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(ImageError::from_decoding)?;
    let orientation = decoder.orientation().map_err(ImageError::from_decoding)?;
    let (width, height) = decoder.dimensions();
    let (width, height) = if swaps_sides(orientation) {
        (height, width)
    } else {
        (width, height)
    };
    Ok(Header {
        decoder,
        orientation,
        info: ImageInfo {
            format,
            width,
            height,
        },
    })
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

/// Decodes the pixels, applies the EXIF orientation and reduces the result
/// to one of the 8-bit layouts the rest of the pipeline works on: `L8`,
/// `La8`, `Rgb8`, `Rgba8`. Metadata is not carried along.
pub(crate) fn decode(header: Header<impl ImageDecoder>) -> Result<DynamicImage, ImageError> {
    let mut image =
        DynamicImage::from_decoder(header.decoder).map_err(ImageError::from_decoding)?;
    image.apply_orientation(header.orientation);
    Ok(to_8_bit(image))
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
    use crate::test_support::{encoded, gradient, with_exif_orientation};
    use image::{GenericImageView, Rgb, Rgba};

    fn decoded(bytes: &[u8]) -> DynamicImage {
        decode(open(bytes, image::Limits::default()).unwrap()).unwrap()
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

    #[test]
    fn decode_refuses_truncated_pixel_data_as_corrupt() {
        let png = encoded(&gradient(64, 48), Format::Png);
        let header = open(&png[..png.len() / 2], image::Limits::default()).unwrap();
        assert!(matches!(decode(header), Err(ImageError::Corrupt(_))));
    }
}
