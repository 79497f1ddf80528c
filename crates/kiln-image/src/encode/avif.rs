//! AVIF output (being built: the encoder lands with its measurements).

use image::DynamicImage;

use super::encoding_failed;
use crate::error::ImageError;
use crate::format::Format;

/// The quality without `quality(..)` (tuning pending).
pub(super) const DEFAULT_QUALITY: u8 = 80;
/// The encoder's speed setting (tuning pending).
pub const SPEED: u8 = 6;

/// Encodes `image` as AVIF into `out`.
pub(super) fn avif(
    _image: &DynamicImage,
    _quality: Option<u8>,
    _out: &mut Vec<u8>,
) -> Result<(), ImageError> {
    Err(encoding_failed(Format::Avif, "no AVIF encoder yet"))
}
