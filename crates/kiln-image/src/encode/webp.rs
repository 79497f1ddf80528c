//! WebP output: lossless (VP8L), the only WebP encoder `image` 0.25 has.

use image::DynamicImage;
use image::GenericImageView;
use image::codecs::webp::WebPEncoder;

use super::encoding_failed;
use crate::error::ImageError;
use crate::format::Format;

/// The lossy quality without `quality(..)` (tuning pending).
pub(super) const DEFAULT_QUALITY: u8 = 80;

/// Encodes `image` as WebP into `out`.
pub(super) fn webp(
    image: &DynamicImage,
    _quality: Option<u8>,
    out: &mut Vec<u8>,
) -> Result<(), ImageError> {
    let (width, height) = image.dimensions();
    WebPEncoder::new_lossless(out)
        .encode(image.as_bytes(), width, height, image.color().into())
        .map_err(|e| encoding_failed(Format::Webp, &e.to_string()))
}
