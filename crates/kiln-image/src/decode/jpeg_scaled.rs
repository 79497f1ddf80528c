//! JPEG decoded at 1/2, 1/4 or 1/8 scale through `jpeg-decoder`, whose
//! reduced inverse DCT turns each 8×8 block into 4×4, 2×2 or 1×1 pixels
//! (`zune-jpeg`, the full-size decoder, has none).
//!
//! This decoder is the fast path only: whenever it cannot give the scale
//! asked for, or finds fault with the file, the caller decodes at full size
//! with the strict decoder, which has the last word on what is refused. A
//! damaged file therefore costs a second decode before it is refused, and
//! a file only this decoder dislikes is still decoded.

use image::{DynamicImage, GrayImage, RgbImage};
use jpeg_decoder::{CodingProcess, Decoder, PixelFormat};

/// `bytes` decoded at 1/`denominator` of its stored size (sides rounded
/// up, before any EXIF orientation), in `L8` or `Rgb8`; `None` when this
/// decoder cannot do that (see the module docs).
pub(crate) fn decode_scaled(bytes: &[u8], denominator: u32) -> Option<DynamicImage> {
    let mut decoder = Decoder::new(bytes);
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    // Lossless JPEG has no DCT to reduce (and zune-jpeg refuses it).
    if info.coding_process == CodingProcess::Lossless {
        return None;
    }
    let scaled = |side: u16| u16::try_from(u32::from(side).div_ceil(denominator)).ok();
    let wanted = (scaled(info.width)?, scaled(info.height)?);
    // `scale` takes the smallest scale that reaches the request on either
    // side; asking for both exact sides gives `wanted` except on frames a
    // few pixels across, which are then decoded at full size.
    if decoder.scale(wanted.0, wanted.1).ok()? != wanted {
        return None;
    }
    let pixels = decoder.decode().ok()?;
    let (width, height) = (u32::from(wanted.0), u32::from(wanted.1));
    match decoder.info()?.pixel_format {
        PixelFormat::L8 => GrayImage::from_raw(width, height, pixels).map(DynamicImage::from),
        PixelFormat::RGB24 => RgbImage::from_raw(width, height, pixels).map(DynamicImage::from),
        PixelFormat::CMYK32 => Some(DynamicImage::from(rgb_from_cmyk(width, height, &pixels)?)),
        PixelFormat::L16 => None,
    }
}

/// RGB from `jpeg-decoder`'s CMYK (ink amounts, YCCK already converted),
/// as `zune-jpeg` converts the same file: each colour is its ink's
/// complement darkened by the black ink's complement.
fn rgb_from_cmyk(width: u32, height: u32, cmyk: &[u8]) -> Option<RgbImage> {
    let rgb = cmyk
        .chunks_exact(4)
        .flat_map(|ink| {
            let key = 255 - ink[3];
            [0, 1, 2].map(|channel| darken(255 - ink[channel], key))
        })
        .collect();
    RgbImage::from_raw(width, height, rgb)
}

/// `value × key / 255`, rounded as `zune-jpeg` rounds it.
fn darken(value: u8, key: u8) -> u8 {
    let product = u32::from(value) * u32::from(key) + 128;
    u8::try_from((product + (product >> 8)) >> 8).expect("a product of two bytes over 255")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The formula's ends: no black ink leaves the colour, full black ink
    /// makes black, and half of white is mid grey.
    #[test]
    fn darken_scales_by_the_key() {
        assert_eq!(darken(200, 255), 200);
        assert_eq!(darken(200, 0), 0);
        assert_eq!(darken(255, 128), 128);
    }
}
