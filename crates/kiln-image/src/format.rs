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
    /// WebP (lossy or lossless input; lossless output).
    Webp,
    /// GIF (first frame only).
    Gif,
}

impl Format {
    /// Every format, in the order used in messages.
    pub const ALL: [Format; 4] = [Format::Jpeg, Format::Png, Format::Webp, Format::Gif];

    /// The registered media type, e.g. `image/jpeg`.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
            Format::Gif => "image/gif",
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
        }
    }

    /// The format named `name` (as in `format(webp)`).
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The largest width or height this format can store.
    pub fn max_side(self) -> u32 {
        match self {
            Format::Jpeg | Format::Gif => u32::from(u16::MAX),
            // VP8L stores width-1 and height-1 in 14 bits.
            Format::Webp => 16_384,
            Format::Png => i32::MAX as u32,
        }
    }

    pub(crate) fn to_image(self) -> image::ImageFormat {
        match self {
            Format::Jpeg => image::ImageFormat::Jpeg,
            Format::Png => image::ImageFormat::Png,
            Format::Webp => image::ImageFormat::WebP,
            Format::Gif => image::ImageFormat::Gif,
        }
    }
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
