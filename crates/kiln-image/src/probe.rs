//! [`probe()`]: an image's format and dimensions from its header alone.

use crate::decode;
use crate::error::ImageError;
use crate::format::Format;

/// What the header says about an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// The format, from the magic bytes.
    pub format: Format,
    /// Width as displayed, i.e. after the EXIF orientation.
    pub width: u32,
    /// Height as displayed, i.e. after the EXIF orientation.
    pub height: u32,
    /// How many frames: 1 for a still image, more for an animated GIF or
    /// WebP (counted from the file's structure, not decoded).
    pub frames: u32,
}

impl ImageInfo {
    /// `width × height`, of one frame.
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// Whether there is more than one frame.
    pub fn is_animated(&self) -> bool {
        self.frames > 1
    }
}

/// The format (sniffed from the magic bytes) and displayed dimensions of
/// `bytes`, read from the header without decoding any pixel data.
///
/// Dimensions are swapped when the EXIF orientation turns the image by a
/// quarter, so they match what [`process`](crate::process) starts from.
///
/// A file cut short (no JPEG end-of-image marker, no PNG IEND chunk, no GIF
/// trailer, fewer bytes than the WebP RIFF size) is refused as
/// [`ImageError::Corrupt`]: the check walks the file's block structure,
/// which costs a fraction of decoding it (see the crate docs, "Damaged
/// input"). Damage inside the compressed pixels is found only by decoding.
pub fn probe(bytes: &[u8]) -> Result<ImageInfo, ImageError> {
    decode::open(bytes, image::Limits::default()).map(|header| header.info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{
        cuts, encoded, gradient, png_header_only, with_exif_orientation, with_trailing_garbage,
    };

    #[test]
    fn probe_reads_format_and_dimensions_of_every_format() {
        let image = gradient(64, 48);
        for format in Format::ALL {
            let info = probe(&encoded(&image, format)).unwrap();
            assert_eq!(
                info,
                ImageInfo {
                    format,
                    width: 64,
                    height: 48,
                    frames: 1,
                }
            );
        }
    }

    #[test]
    fn probe_reads_a_huge_header_without_decoding() {
        let info = probe(&png_header_only(100_000, 100_000)).unwrap();
        assert_eq!(info.pixels(), 10_000_000_000);
    }

    #[test]
    fn probe_swaps_dimensions_for_a_quarter_turn_orientation() {
        let jpeg = with_exif_orientation(&encoded(&gradient(64, 48), Format::Jpeg), 6);
        let info = probe(&jpeg).unwrap();
        assert_eq!((info.width, info.height), (48, 64));
    }

    #[test]
    fn probe_refuses_garbage_as_unsupported() {
        assert_eq!(
            probe(b"definitely not an image"),
            Err(ImageError::Unsupported)
        );
        assert_eq!(probe(b""), Err(ImageError::Unsupported));
    }

    /// A file cut anywhere, in any format, is refused at submission, before
    /// anything is decoded or stored.
    #[test]
    fn probe_refuses_files_cut_short_anywhere() {
        let image = gradient(64, 48);
        for format in Format::ALL {
            let bytes = encoded(&image, format);
            for cut in cuts(bytes.len()) {
                assert!(
                    matches!(probe(&bytes[..cut]), Err(ImageError::Corrupt(_))),
                    "{format} cut at {cut}: {:?}",
                    probe(&bytes[..cut])
                );
            }
        }
    }

    /// A whole file followed by other bytes is accepted.
    #[test]
    fn probe_accepts_trailing_garbage_after_a_whole_file() {
        let image = gradient(64, 48);
        for format in Format::ALL {
            let bytes = with_trailing_garbage(&encoded(&image, format));
            assert_eq!(probe(&bytes).map(|info| info.format), Ok(format));
        }
    }

    #[test]
    fn probe_refuses_truncated_headers_as_corrupt() {
        let image = gradient(64, 48);
        for format in Format::ALL {
            let bytes = encoded(&image, format);
            let truncated = &bytes[..12];
            assert!(
                matches!(probe(truncated), Err(ImageError::Corrupt(_))),
                "{format}: {:?}",
                probe(truncated)
            );
        }
    }
}
