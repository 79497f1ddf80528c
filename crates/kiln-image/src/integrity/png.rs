//! PNG: chunk by chunk, by their lengths, up to an intact IEND chunk.
//!
//! CRCs are not computed here: the `png` decoder verifies those of the
//! chunks it reads (the critical ones: IHDR, PLTE, every IDAT) while it
//! decodes, so a flipped bit in the pixel data fails the job without a
//! second pass over the file. The one chunk it never reads is IEND, whose
//! content is fixed (empty, CRC `AE426082`), so it is compared whole.

use super::{Bytes, Damage};

/// Chunk lengths are at most 2³¹ − 1 (PNG specification, 5.3).
const MAX_CHUNK_LENGTH: u32 = (1 << 31) - 1;
/// The only valid IEND chunk: length 0, type, CRC of the type.
const IEND: [u8; 12] = *b"\0\0\0\0IEND\xAE\x42\x60\x82";

/// Walks from after the signature (checked by the sniff) to IEND.
pub(super) fn walk(bytes: &[u8]) -> Result<(), Damage> {
    let mut cursor = Bytes::new(bytes, 8);
    loop {
        let start = cursor.at;
        let length = u32::from_be_bytes(cursor.array()?);
        let kind: [u8; 4] = cursor.array()?;
        if length > MAX_CHUNK_LENGTH {
            return Err(Damage::Malformed("a chunk length is out of range"));
        }
        if !kind.iter().all(u8::is_ascii_alphabetic) {
            return Err(Damage::Malformed("a chunk type is not four letters"));
        }
        // 1 to 256 entries of 3 bytes (PNG specification, 11.2.3): the
        // `png` crate (0.18.1, the latest) panics on a length that is not
        // a multiple of 3 (image-rs/image-png#694), found by fuzzing.
        if &kind == b"PLTE" && (length % 3 != 0 || !(3..=768).contains(&length)) {
            return Err(Damage::Malformed("the PLTE chunk is not a whole palette"));
        }
        // Data and CRC.
        cursor.skip(length as usize)?;
        cursor.skip(4)?;
        if &kind == b"IEND" {
            return if bytes[start..cursor.at] == IEND {
                Ok(())
            } else {
                Err(Damage::Malformed("the IEND chunk is damaged"))
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A palette of 1⅓ entries is refused before the decoder, which would
    /// panic on it (fuzz/regressions/decode_png has the file fuzzing
    /// found); whole ones pass.
    #[test]
    fn walk_refuses_a_palette_of_a_partial_entry() {
        let with_palette = |length: usize| {
            let mut bytes = png();
            // After the signature and IHDR (8 + 25 bytes); the CRC is not
            // checked here.
            let mut chunk = (length as u32).to_be_bytes().to_vec();
            chunk.extend_from_slice(b"PLTE");
            chunk.extend(std::iter::repeat_n(7, length + 4));
            bytes.splice(33..33, chunk);
            bytes
        };
        assert_eq!(walk(&with_palette(6)), Ok(()));
        assert_eq!(
            walk(&with_palette(4)),
            Err(Damage::Malformed("the PLTE chunk is not a whole palette"))
        );
        assert!(walk(&with_palette(771)).is_err());
    }
    use crate::format::Format;
    use crate::test_support::{cuts, encoded, gradient, png_header_only, with_trailing_garbage};

    fn png() -> Vec<u8> {
        encoded(&gradient(64, 48), Format::Png)
    }

    /// Whole PNGs pass, interlaced or made of a header and an empty IDAT.
    #[test]
    fn walk_reaches_iend() {
        assert_eq!(walk(&png()), Ok(()));
        assert_eq!(walk(&png_header_only(10, 10)), Ok(()));
        assert_eq!(
            walk(include_bytes!("../../testdata/interlaced.png")),
            Ok(())
        );
    }

    /// A PNG cut in its header, its IDAT or just before IEND ends is refused.
    #[test]
    fn walk_refuses_a_file_cut_anywhere() {
        let png = png();
        for cut in cuts(png.len()) {
            assert_eq!(walk(&png[..cut]), Err(Damage::Truncated), "cut at {cut}");
        }
    }

    /// A PNG with all its pixel data but no IEND is a cut.
    #[test]
    fn walk_refuses_a_file_without_iend() {
        let png = png();
        assert_eq!(walk(&png[..png.len() - IEND.len()]), Err(Damage::Truncated));
    }

    /// IEND, which no decoder reads, is checked whole.
    #[test]
    fn walk_refuses_a_damaged_iend() {
        let mut png = png();
        let last = png.len() - 1;
        png[last] ^= 0x01;
        assert!(matches!(walk(&png), Err(Damage::Malformed(_))));
    }

    /// A chunk whose type is not letters means the lengths are lost.
    #[test]
    fn walk_refuses_garbage_where_a_chunk_should_start() {
        let mut png = png();
        // The first chunk's type (IHDR) turned into non-letters.
        png[12..16].copy_from_slice(&[0, 1, 2, 3]);
        assert!(matches!(walk(&png), Err(Damage::Malformed(_))));
    }

    /// Bytes after IEND are ignored.
    #[test]
    fn walk_accepts_trailing_garbage_after_iend() {
        assert_eq!(walk(&with_trailing_garbage(&png())), Ok(()));
    }
}
