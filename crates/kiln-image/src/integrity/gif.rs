//! GIF: every block of every frame, by their sizes, up to the trailer.
//!
//! Kiln keeps only the first frame, and the `gif` decoder stops there, so
//! without this walk a file cut in its second frame would pass as whole.

use super::{Bytes, Damage};

const EXTENSION: u8 = 0x21;
const IMAGE: u8 = 0x2C;
const TRAILER: u8 = 0x3B;
/// Bit 7 of a packed field: a colour table follows.
const HAS_COLOR_TABLE: u8 = 0x80;

/// Walks from the header to the trailer.
pub(super) fn walk(bytes: &[u8]) -> Result<(), Damage> {
    // Signature and version, then the logical screen: width, height,
    // packed fields, background colour, aspect ratio.
    let mut cursor = Bytes::new(bytes, 6);
    let [_, _, _, _, packed, _, _] = cursor.array()?;
    skip_color_table(&mut cursor, packed)?;
    loop {
        match cursor.u8()? {
            TRAILER => return Ok(()),
            EXTENSION => {
                cursor.skip(1)?; // label
                skip_sub_blocks(&mut cursor)?;
            }
            IMAGE => {
                // Left, top, width, height, packed fields.
                let [_, _, _, _, _, _, _, _, packed] = cursor.array()?;
                skip_color_table(&mut cursor, packed)?;
                cursor.skip(1)?; // LZW minimum code size
                skip_sub_blocks(&mut cursor)?;
            }
            _ => return Err(Damage::Malformed("an unknown block type")),
        }
    }
}

fn skip_color_table(cursor: &mut Bytes<'_>, packed: u8) -> Result<(), Damage> {
    if packed & HAS_COLOR_TABLE == 0 {
        return Ok(());
    }
    let entries = 2usize << (packed & 0x07);
    cursor.skip(3 * entries)
}

/// Data sub-blocks: a size byte and that many bytes, until a size of 0.
fn skip_sub_blocks(cursor: &mut Bytes<'_>) -> Result<(), Damage> {
    loop {
        match cursor.u8()? {
            0 => return Ok(()),
            size => cursor.skip(usize::from(size))?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Format;
    use crate::test_support::{animated_gif, cuts, encoded, gradient, with_trailing_garbage};

    fn gif() -> Vec<u8> {
        encoded(&gradient(64, 48), Format::Gif)
    }

    /// Whole GIFs pass, still or animated.
    #[test]
    fn walk_reaches_the_trailer() {
        assert_eq!(walk(&gif()), Ok(()));
        assert_eq!(walk(&animated_gif()), Ok(()));
    }

    /// A GIF cut anywhere, in any frame, is refused.
    #[test]
    fn walk_refuses_a_file_cut_anywhere() {
        for gif in [gif(), animated_gif()] {
            for cut in cuts(gif.len()) {
                assert_eq!(walk(&gif[..cut]), Err(Damage::Truncated), "cut at {cut}");
            }
        }
    }

    /// A GIF whose last byte (the trailer) is missing is a cut.
    #[test]
    fn walk_refuses_a_file_without_its_trailer() {
        let gif = gif();
        assert_eq!(walk(&gif[..gif.len() - 1]), Err(Damage::Truncated));
    }

    /// A block type GIF does not have is damage.
    #[test]
    fn walk_refuses_an_unknown_block() {
        let mut gif = gif();
        let last = gif.len() - 1;
        gif[last] = b'X';
        assert!(matches!(walk(&gif), Err(Damage::Malformed(_))));
    }

    /// Bytes after the trailer are ignored.
    #[test]
    fn walk_accepts_trailing_garbage_after_the_trailer() {
        assert_eq!(walk(&with_trailing_garbage(&gif())), Ok(()));
    }
}
