//! Is the file whole? A walk over each format's block structure, from the
//! signature to the end marker, that refuses a file cut short before any
//! pixel is decoded.
//!
//! Why a separate check: the decoders notice most cuts, but only while
//! decoding (after an asynchronous upload is stored), and not all of them.
//! Measured with the decoders Kiln uses: a JPEG missing only its
//! end-of-image marker, a PNG missing IEND, a GIF missing its trailer and a
//! WebP missing its last byte all decode without complaint, and so does an
//! animated GIF or WebP cut after its first frame, the only one Kiln
//! decodes. What the decoders do check (JPEG entropy data in strict mode,
//! PNG chunk CRCs) is left to them; see the crate docs, "Damaged input".
//!
//! The walk reads only the block headers, the lengths that link them: one
//! hop per block, whatever the block holds. JPEG has no lengths in
//! its entropy-coded data, so its scans are searched for the next marker
//! with `memchr`: 1.1 ms natively for a 5.5 MB, 25-megapixel photo.
//!
//! Bytes after a complete image are accepted and ignored (see the crate
//! docs for why).
//!
//! The GIF and WebP walks pass every frame on their way, so they also
//! count them and read how often the animation plays ([`Frames`]): what
//! the limits need before anything is decoded.

mod avif;
mod gif;
mod jpeg;
mod png;
mod webp;

use crate::error::ImageError;
use crate::format::Format;

/// The frames a file holds, as its structure says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Frames {
    /// How many frames (1 for a still image).
    pub(crate) count: u32,
    /// How many times the animation plays in all; 0 for forever.
    pub(crate) plays: u32,
}

impl Frames {
    /// A still image: one frame, shown once.
    pub(crate) const STILL: Frames = Frames { count: 1, plays: 1 };
}

/// Refuses `bytes` as [`ImageError::Corrupt`] when its structure shows it
/// is cut short or damaged; `format` is the sniffed one. Returns the frames
/// it found.
pub(crate) fn check(format: Format, bytes: &[u8]) -> Result<Frames, ImageError> {
    let walked = match format {
        Format::Jpeg => jpeg::walk(bytes).map(|()| Frames::STILL),
        Format::Png => png::walk(bytes).map(|()| Frames::STILL),
        Format::Gif => gif::walk(bytes),
        Format::Webp => webp::walk(bytes),
        Format::Avif => avif::walk(bytes),
    };
    walked.map_err(|damage| ImageError::Corrupt(damage.describe(format)))
}

/// The bytes of an AVIF file that hold its image, without what trails its
/// boxes (see [`avif`]), for the container reader, which would read it as
/// boxes too.
pub(crate) fn avif_image(bytes: &[u8]) -> &[u8] {
    avif::image_end(bytes).map_or(bytes, |end| &bytes[..end])
}

/// The bytes of a WebP file that its RIFF container holds, without what
/// trails it, for the decoder: image-webp 0.2.4 reads a chunk header up to
/// 30 bytes past the container's end (it counts the RIFF size from after
/// the VP8X chunk) and sets memory aside by the size it finds there.
pub(crate) fn webp_image(bytes: &[u8]) -> &[u8] {
    webp::riff_end(bytes).map_or(bytes, |end| &bytes[..end])
}

/// Where the type of each top-level `moov` box of an AVIF file is: an
/// image sequence's track, which Kiln does not read (see `decode::avif`).
pub(crate) fn avif_track_types(bytes: &[u8]) -> Vec<usize> {
    avif::track_types(bytes)
}

/// What the walk found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Damage {
    /// The data ends before the format's end marker.
    Truncated,
    /// A block is malformed; says which.
    Malformed(&'static str),
}

impl Damage {
    fn describe(&self, format: Format) -> String {
        let name = format.name().to_uppercase();
        match self {
            Damage::Truncated => {
                format!("the {name} data ends before the end of the image: the file is truncated")
            }
            Damage::Malformed(what) => format!("damaged {name} data: {what}"),
        }
    }
}

/// A cursor over the bytes being walked; running past the end is
/// [`Damage::Truncated`].
struct Bytes<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn new(bytes: &'a [u8], at: usize) -> Self {
        Bytes { bytes, at }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], Damage> {
        let end = self.at.checked_add(len).ok_or(Damage::Truncated)?;
        let taken = self.bytes.get(self.at..end).ok_or(Damage::Truncated)?;
        self.at = end;
        Ok(taken)
    }

    fn skip(&mut self, len: usize) -> Result<(), Damage> {
        self.take(len).map(drop)
    }

    fn u8(&mut self) -> Result<u8, Damage> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Damage> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{encoded, gradient};

    /// Whole files pass.
    #[test]
    fn check_accepts_whole_files_of_every_format() {
        let image = gradient(64, 48);
        for format in Format::ALL {
            assert_eq!(
                check(format, &encoded(&image, format)),
                Ok(Frames::STILL),
                "{format}"
            );
        }
    }

    /// The client is told its file is truncated, in words.
    #[test]
    fn truncation_is_described_for_the_client() {
        let bytes = encoded(&gradient(16, 16), Format::Png);
        assert_eq!(
            check(Format::Png, &bytes[..bytes.len() - 1]),
            Err(ImageError::Corrupt(
                "the PNG data ends before the end of the image: the file is truncated".into()
            ))
        );
    }
}
