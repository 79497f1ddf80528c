//! The image formats Kiln reads and writes: media types and magic bytes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An image format Kiln can decode and encode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JPEG (JFIF/EXIF).
    Jpeg,
    /// PNG.
    Png,
    /// WebP: lossy or lossless, still or animated, in and out.
    Webp,
    /// GIF, still or animated.
    Gif,
    /// AVIF, in and out (a still image; of an image sequence, its
    /// primary image).
    Avif,
}

impl Format {
    /// Every format Kiln reads and writes, in the order used in messages.
    pub const ALL: [Format; 5] = [
        Format::Jpeg,
        Format::Png,
        Format::Webp,
        Format::Gif,
        Format::Avif,
    ];

    /// The registered media type, e.g. `image/jpeg`.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
            Format::Gif => "image/gif",
            Format::Avif => "image/avif",
        }
    }

    /// The format of a `Content-Type` value: parameters (`; charset=x`) and
    /// case are ignored. Only registered media types are accepted, so the
    /// common misspelling `image/jpg` is not.
    pub fn from_media_type(s: &str) -> Option<Format> {
        let essence = s.split(';').next().unwrap_or_default().trim();
        Format::ALL
            .into_iter()
            .find(|f| f.media_type().eq_ignore_ascii_case(essence))
    }

    /// The format whose magic bytes start `bytes`, if any.
    pub fn sniff(bytes: &[u8]) -> Option<Format> {
        const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Format::Jpeg)
        } else if bytes.starts_with(PNG) {
            Some(Format::Png)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(Format::Gif)
        } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
            Some(Format::Webp)
        } else if is_avif(bytes) {
            Some(Format::Avif)
        } else {
            None
        }
    }

    /// The name used in the `format(..)` operation and in serde.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Gif => "gif",
            Format::Avif => "avif",
        }
    }

    /// The format named `name` (as in `format(webp)`).
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Whether Kiln writes this format as an animation when the input is
    /// one (GIF and WebP); the others get the first frame.
    pub fn animates(self) -> bool {
        matches!(self, Format::Gif | Format::Webp)
    }

    /// The largest width or height this format can store.
    pub fn max_side(self) -> u32 {
        match self {
            Format::Jpeg | Format::Gif => u32::from(u16::MAX),
            // VP8L stores width-1 and height-1 in 14 bits.
            Format::Webp => 16_384,
            Format::Png => i32::MAX as u32,
            // AV1 codes each side minus one in 16 bits, but rav1e refuses
            // sides above 65,535 (libavif's decoder, by default, above 32,768).
            Format::Avif => 65_535,
        }
    }

    pub(crate) fn to_image(self) -> image::ImageFormat {
        match self {
            Format::Jpeg => image::ImageFormat::Jpeg,
            Format::Png => image::ImageFormat::Png,
            Format::Webp => image::ImageFormat::WebP,
            Format::Gif => image::ImageFormat::Gif,
            Format::Avif => image::ImageFormat::Avif,
        }
    }
}

/// An ISO-BMFF file whose `ftyp` box names the AVIF brand, as major or
/// compatible brand (`avif` for still images, `avis` for sequences).
fn is_avif(bytes: &[u8]) -> bool {
    ftyp_brands(bytes).any(|brand| brand == b"avif" || brand == b"avis")
}

/// Whether `bytes` is HEIC (HEVC in HEIF, what iPhones save): an ISO-BMFF
/// file whose `ftyp` box names an HEVC brand and no AVIF one. Kiln reads
/// no HEVC, but says so by name (see the README, "Formats").
pub fn is_heic(bytes: &[u8]) -> bool {
    const HEVC_BRANDS: [&[u8]; 8] = [
        b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs",
    ];
    !is_avif(bytes) && ftyp_brands(bytes).any(|brand| HEVC_BRANDS.contains(&brand))
}

/// The major and compatible brands of an ISO-BMFF file's `ftyp` box;
/// none when `bytes` does not start with one.
fn ftyp_brands(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    // From the major brand on, so that a file cut inside its `ftyp` box is
    // still known (and refused as cut, not as another format).
    let brands: &[u8] = if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        let box_size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        &bytes[8..box_size.clamp(12, bytes.len())]
    } else {
        &[]
    };
    // The major brand, the minor version (not a brand), the compatible ones.
    brands
        .chunks_exact(4)
        .enumerate()
        .filter(|(index, _)| *index != 1)
        .map(|(_, brand)| brand)
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{encoded, gradient};

    #[test]
    fn media_type_round_trips_for_every_format() {
        for format in Format::ALL {
            assert_eq!(Format::from_media_type(format.media_type()), Some(format));
        }
    }

    #[test]
    fn media_type_ignores_parameters_and_case() {
        assert_eq!(
            Format::from_media_type("Image/JPEG; charset=x"),
            Some(Format::Jpeg)
        );
    }

    #[test]
    fn media_type_refuses_unregistered_jpg_alias() {
        assert_eq!(Format::from_media_type("image/jpg"), None);
    }

    #[test]
    fn media_type_refuses_other_types() {
        assert_eq!(Format::from_media_type("text/plain"), None);
        assert_eq!(Format::from_media_type(""), None);
    }

    #[test]
    fn sniff_recognises_every_encoded_format() {
        let image = gradient(16, 8);
        for format in Format::ALL {
            assert_eq!(Format::sniff(&encoded(&image, format)), Some(format));
        }
    }

    /// An ISO-BMFF file's start: an `ftyp` box with these brands, then an
    /// empty `meta` box.
    fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let size = 16 + 4 * compatible.len();
        let mut bytes = (size as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(b"ftyp");
        bytes.extend_from_slice(major);
        bytes.extend_from_slice(&[0; 4]);
        compatible
            .iter()
            .for_each(|brand| bytes.extend_from_slice(*brand));
        bytes.extend_from_slice(b"\0\0\0\x08meta");
        bytes
    }

    /// AVIF uploads are recognised, so that they are refused as AVIF (not
    /// as "not an image"), whichever brand list their `ftyp` box carries.
    #[test]
    fn sniff_recognises_avif_by_its_ftyp_brands() {
        assert_eq!(
            Format::sniff(&ftyp(b"avif", &[b"mif1"])),
            Some(Format::Avif)
        );
        assert_eq!(
            Format::sniff(&ftyp(b"mif1", &[b"miaf", b"avif"])),
            Some(Format::Avif)
        );
        assert_eq!(Format::sniff(&ftyp(b"avis", &[])), Some(Format::Avif));
        assert_eq!(Format::sniff(&ftyp(b"heic", &[b"mif1", b"heic"])), None);
        assert_eq!(Format::sniff(&ftyp(b"isom", &[b"mp41"])), None);
    }

    /// HEIC is told apart from AVIF, whose files name `mif1` too.
    #[test]
    fn heic_is_recognised_by_its_ftyp_brands() {
        assert!(is_heic(&ftyp(b"heic", &[b"mif1", b"heic"])));
        assert!(is_heic(&ftyp(b"mif1", &[b"heic"])));
        assert!(!is_heic(&ftyp(b"mif1", &[b"miaf", b"avif"])));
        assert!(!is_heic(&ftyp(b"avif", &[b"mif1", b"heic"])));
        assert!(!is_heic(b"\x89PNG\r\n\x1a\n0000000000"));
        assert_eq!(Format::sniff(&ftyp(b"heic", &[b"mif1"])), None);
    }

    #[test]
    fn sniff_refuses_garbage_and_truncated_magic() {
        assert_eq!(Format::sniff(b"hello world, not an image"), None);
        assert_eq!(Format::sniff(b""), None);
        assert_eq!(Format::sniff(b"\x89PNG"), None);
        assert_eq!(Format::sniff(b"RIFF\0\0\0\0WAVE"), None);
    }

    #[test]
    fn serde_uses_lowercase_names() {
        assert_eq!(
            serde_json::to_string(&Format::Webp).unwrap(),
            "\"webp\"".to_string()
        );
        assert_eq!(
            serde_json::from_str::<Format>("\"gif\"").unwrap(),
            Format::Gif
        );
    }
}
