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

use crate::colour::{InkImage, Pixels};

/// `bytes` decoded at 1/`denominator` of its stored size (sides rounded
/// up, before any EXIF orientation): `L8` or `Rgb8` values, or CMYK ink
/// amounts; `None` when this decoder cannot do that (see the module docs).
pub(crate) fn decode_scaled(bytes: &[u8], denominator: u32) -> Option<Pixels> {
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
    let device = |image: DynamicImage| Some(Pixels::Device(image));
    match decoder.info()?.pixel_format {
        PixelFormat::L8 => device(GrayImage::from_raw(width, height, pixels)?.into()),
        PixelFormat::RGB24 => device(RgbImage::from_raw(width, height, pixels)?.into()),
        // Ink amounts already (Adobe's inversion undone, YCCK converted),
        // as `decode_ink` gives them at full size.
        PixelFormat::CMYK32 => (pixels.len() == width as usize * height as usize * 4).then_some(
            Pixels::Ink(InkImage {
                width,
                height,
                ink: pixels,
            }),
        ),
        PixelFormat::L16 => None,
    }
}
