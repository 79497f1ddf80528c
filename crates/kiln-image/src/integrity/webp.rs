//! WebP: the RIFF container holds as many bytes as its header says, and
//! its chunks (by their sizes) fill it exactly. On its way the walk counts
//! the animation frames (ANMF chunks) and reads the loop count (ANIM).

use super::{Bytes, Damage, Frames};

/// `RIFF`, size, `WEBP`.
const RIFF_HEADER: usize = 12;

/// Walks the chunks from after the RIFF header (whose magic the sniff
/// checked) to the end the header announces.
pub(super) fn walk(bytes: &[u8]) -> Result<Frames, Damage> {
    let mut cursor = Bytes::new(bytes, 4);
    // The size counts from after itself, `WEBP` included.
    let riff_size = u32::from_le_bytes(cursor.array()?) as usize;
    if riff_size < 4 {
        return Err(Damage::Malformed("the RIFF size is too small"));
    }
    let end = riff_size.checked_add(8).ok_or(Damage::Truncated)?;
    let riff = bytes.get(..end).ok_or(Damage::Truncated)?;
    let mut cursor = Bytes::new(riff, RIFF_HEADER);
    let mut animation_frames = 0u32;
    let mut plays = 1;
    while cursor.at < riff.len() {
        let fourcc: [u8; 4] = cursor.array().map_err(|_| overrun())?;
        let size = u32::from_le_bytes(cursor.array().map_err(|_| overrun())?) as usize;
        let data = cursor.take(size).map_err(|_| overrun())?;
        match &fourcc {
            b"ANMF" => animation_frames = animation_frames.saturating_add(1),
            // Background colour, then the loop count: 0 is forever.
            b"ANIM" => match data {
                [_, _, _, _, low, high, ..] => plays = u32::from(u16::from_le_bytes([*low, *high])),
                _ => return Err(Damage::Malformed("the ANIM chunk is too short")),
            },
            _ => {}
        }
        // Odd-sized chunks are padded to even; a writer may leave out the
        // pad byte of the last chunk, which costs nothing to accept.
        if size % 2 == 1 && cursor.at < riff.len() {
            cursor.skip(1)?;
        }
    }
    Ok(match animation_frames {
        0 => Frames::STILL,
        count => Frames { count, plays },
    })
}

/// A chunk reaching past the RIFF size: the file is all there (the size
/// was checked), but its two lengths disagree.
fn overrun() -> Damage {
    Damage::Malformed("a chunk reaches past the end of the RIFF container")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Format;
    use crate::test_support::{cuts, encoded, gradient, with_trailing_garbage};

    fn lossless() -> Vec<u8> {
        encoded(&gradient(64, 48), Format::Webp)
    }

    const LOSSY: &[u8] = include_bytes!("../../testdata/lossy.webp");
    const LOSSY_ALPHA: &[u8] = include_bytes!("../../testdata/lossy-alpha.webp");
    const ANIMATED: &[u8] = include_bytes!("../../testdata/animated.webp");

    /// Lossless, lossy, lossy with alpha and animated WebP pass, their
    /// frames counted (img2webp loops forever by default).
    #[test]
    fn walk_reaches_the_end_of_every_kind_of_webp() {
        for webp in [&lossless()[..], LOSSY, LOSSY_ALPHA] {
            assert_eq!(walk(webp), Ok(Frames::STILL));
        }
        assert_eq!(walk(ANIMATED), Ok(Frames { count: 2, plays: 0 }));
    }

    /// A WebP of any kind cut anywhere is refused.
    #[test]
    fn walk_refuses_a_file_cut_anywhere() {
        for webp in [&lossless()[..], LOSSY, LOSSY_ALPHA, ANIMATED] {
            for cut in cuts(webp.len()) {
                assert_eq!(walk(&webp[..cut]), Err(Damage::Truncated), "cut at {cut}");
            }
        }
    }

    /// A RIFF size larger than the data is a cut.
    #[test]
    fn walk_refuses_a_riff_size_larger_than_the_data() {
        let mut webp = lossless();
        let size = u32::from_le_bytes(webp[4..8].try_into().unwrap());
        webp[4..8].copy_from_slice(&(size + 2).to_le_bytes());
        assert_eq!(walk(&webp), Err(Damage::Truncated));
    }

    /// A chunk larger than its container is damage.
    #[test]
    fn walk_refuses_a_chunk_larger_than_the_container() {
        let mut webp = lossless();
        // The first chunk's size, just after its FourCC.
        let size = u32::from_le_bytes(webp[16..20].try_into().unwrap());
        webp[16..20].copy_from_slice(&(size + 64).to_le_bytes());
        assert!(matches!(walk(&webp), Err(Damage::Malformed(_))));
    }

    /// Bytes after the RIFF size are ignored.
    #[test]
    fn walk_accepts_trailing_garbage_after_the_container() {
        assert_eq!(walk(&with_trailing_garbage(&lossless())), Ok(Frames::STILL));
    }
}
