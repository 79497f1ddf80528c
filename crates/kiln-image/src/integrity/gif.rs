//! GIF: every block of every frame, by their sizes, up to the trailer.
//!
//! A still output keeps only the first frame, and the `gif` decoder stops
//! there, so without this walk a file cut in its second frame would pass
//! as whole. On its way the walk counts the image blocks and reads the
//! loop count of the Netscape application extension.

use super::{Bytes, Damage, Frames};

const EXTENSION: u8 = 0x21;
/// The extension label of an application extension.
const APPLICATION: u8 = 0xFF;
/// The application extensions that carry a loop count (their first
/// sub-block), in a second sub-block of `1` and a little-endian `u16`.
const LOOPING_APPLICATIONS: [&[u8]; 2] = [b"NETSCAPE2.0", b"ANIMEXTS1.0"];
const IMAGE: u8 = 0x2C;
const TRAILER: u8 = 0x3B;
/// Bit 7 of a packed field: a colour table follows.
const HAS_COLOR_TABLE: u8 = 0x80;

/// Walks from the header to the trailer.
///
/// How often the frames play: once without a loop count (as browsers
/// play it), forever for a count of 0, else the count plus the first play
/// (the count is of repetitions, as browsers and libvips read it).
pub(super) fn walk(bytes: &[u8]) -> Result<Frames, Damage> {
    // Signature and version, then the logical screen: width, height,
    // packed fields, background colour, aspect ratio.
    let mut cursor = Bytes::new(bytes, 6);
    let [_, _, _, _, packed, _, _] = cursor.array()?;
    skip_color_table(&mut cursor, packed)?;
    let mut frames = Frames { count: 0, plays: 1 };
    loop {
        match cursor.u8()? {
            // A GIF of no image is refused at once, not later by the
            // decoder (found by fuzzing: probe took it for 0 frames).
            TRAILER if frames.count == 0 => {
                return Err(Damage::Malformed("the GIF holds no image"));
            }
            TRAILER => return Ok(frames),
            EXTENSION if cursor.u8()? == APPLICATION => {
                if let Some(repetitions) = loop_count(&mut cursor)? {
                    frames.plays = match repetitions {
                        0 => 0,
                        n => u32::from(n) + 1,
                    };
                }
            }
            EXTENSION => skip_sub_blocks(&mut cursor)?,
            IMAGE => {
                // Left, top, width, height, packed fields.
                let [_, _, _, _, _, _, _, _, packed] = cursor.array()?;
                skip_color_table(&mut cursor, packed)?;
                cursor.skip(1)?; // LZW minimum code size
                skip_sub_blocks(&mut cursor)?;
                frames.count = frames.count.saturating_add(1);
            }
            _ => return Err(Damage::Malformed("an unknown block type")),
        }
    }
}

/// The sub-blocks of an application extension, and its loop count if it
/// is one of [`LOOPING_APPLICATIONS`].
fn loop_count(cursor: &mut Bytes<'_>) -> Result<Option<u16>, Damage> {
    let mut count = None;
    let mut first = None;
    loop {
        let size = usize::from(cursor.u8()?);
        if size == 0 {
            return Ok(count);
        }
        let block = cursor.take(size)?;
        match (first, block) {
            (None, _) => first = Some(block),
            (Some(id), [1, low, high]) if LOOPING_APPLICATIONS.contains(&id) => {
                count = Some(u16::from_le_bytes([*low, *high]));
            }
            _ => {}
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

    /// Whole GIFs pass, still or animated, their frames counted.
    #[test]
    fn walk_reaches_the_trailer() {
        assert_eq!(walk(&gif()), Ok(Frames::STILL));
        // The `gif` crate writes no loop count unless asked: shown once.
        assert_eq!(walk(&animated_gif()), Ok(Frames { count: 2, plays: 1 }));
    }

    /// The Netscape loop count is of repetitions: 0 is forever, 2 is
    /// three plays in all.
    #[test]
    fn walk_reads_the_loop_count() {
        for (repeat, plays) in [(gif::Repeat::Infinite, 0), (gif::Repeat::Finite(2), 3)] {
            let mut bytes = Vec::new();
            let mut encoder = gif::Encoder::new(&mut bytes, 2, 2, &[0; 6]).unwrap();
            encoder.set_repeat(repeat).unwrap();
            for _ in 0..3 {
                let frame = gif::Frame::from_indexed_pixels(2, 2, vec![0; 4], None);
                encoder.write_frame(&frame).unwrap();
            }
            drop(encoder);
            assert_eq!(walk(&bytes), Ok(Frames { count: 3, plays }), "{repeat:?}");
        }
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

    /// A GIF whose trailer comes before any image is refused.
    #[test]
    fn walk_refuses_a_gif_of_no_image() {
        let bytes = gif();
        // Signature, screen descriptor and global colour table, then the
        // trailer.
        let table = 3 << ((bytes[10] & 7) + 1);
        let mut empty = bytes[..13 + table].to_vec();
        empty.push(TRAILER);
        assert_eq!(
            walk(&empty),
            Err(Damage::Malformed("the GIF holds no image"))
        );
    }

    /// Bytes after the trailer are ignored.
    #[test]
    fn walk_accepts_trailing_garbage_after_the_trailer() {
        assert_eq!(walk(&with_trailing_garbage(&gif())), Ok(Frames::STILL));
    }
}
