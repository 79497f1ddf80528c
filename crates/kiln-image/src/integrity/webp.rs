//! WebP: the RIFF container holds as many bytes as its header says, and
//! its chunks (by their sizes) fill it exactly. On its way the walk counts
//! the animation frames (ANMF chunks) and reads the loop count (ANIM).
//!
//! It also checks that each picture is the size its container says, as
//! libwebp does: an extended file's (VP8X) still picture is its canvas,
//! an animation frame's the size its ANMF chunk gives. The limits are
//! checked against those sizes, while the decoder (`image-webp`) allocates
//! by the picture's own header before it compares them: a VP8 header
//! saying 16383×16383 inside a 16×16 canvas would cost 400 MB.

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
    let mut animation_frames = 0u32;
    let mut plays = 1;
    // The canvas of an extended file, which its still picture fills.
    let mut canvas = None;
    for chunk in chunks(riff, RIFF_HEADER) {
        let (fourcc, data) = chunk?;
        match &fourcc {
            b"ANMF" => {
                animation_frames = animation_frames.saturating_add(1);
                check_frame(data)?;
            }
            // Background colour, then the loop count: 0 is forever.
            b"ANIM" => match data {
                [_, _, _, _, low, high, ..] => plays = u32::from(u16::from_le_bytes([*low, *high])),
                _ => return Err(Damage::Malformed("the ANIM chunk is too short")),
            },
            // Flags, 3 reserved bytes, then the canvas's width and height
            // less one, in 24 bits each.
            b"VP8X" => {
                let size = data
                    .get(4..10)
                    .ok_or(Damage::Malformed("the VP8X chunk is too short"))?;
                canvas = Some((u24(&size[..3]) + 1, u24(&size[3..]) + 1));
            }
            b"VP8 " | b"VP8L" => {
                if let (Some(canvas), Some(size)) = (canvas, picture_size(&fourcc, data))
                    && size != canvas
                {
                    return Err(Damage::Malformed(
                        "the picture is not the size of its canvas",
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(match animation_frames {
        0 => Frames::STILL,
        count => Frames { count, plays },
    })
}

/// Where the RIFF container of `bytes` ends, if the file holds all of it.
pub(super) fn riff_end(bytes: &[u8]) -> Option<usize> {
    let size: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
    let end = (u32::from_le_bytes(size) as usize).checked_add(8)?;
    (end <= bytes.len()).then_some(end)
}

/// The chunks of `riff` from `start` on, each its FourCC and data.
fn chunks(riff: &[u8], start: usize) -> impl Iterator<Item = Result<([u8; 4], &[u8]), Damage>> {
    let mut cursor = Bytes::new(riff, start);
    std::iter::from_fn(move || {
        if cursor.at >= riff.len() {
            return None;
        }
        let mut chunk = || {
            let fourcc: [u8; 4] = cursor.array().map_err(|_| overrun())?;
            let size = u32::from_le_bytes(cursor.array().map_err(|_| overrun())?) as usize;
            let data = cursor.take(size).map_err(|_| overrun())?;
            // Odd-sized chunks are padded to even; a writer may leave out
            // the pad byte of the last chunk, which costs nothing to accept.
            if size % 2 == 1 && cursor.at < riff.len() {
                cursor.skip(1)?;
            }
            Ok((fourcc, data))
        };
        let next = chunk();
        if next.is_err() {
            // Nothing after a broken chunk can be found.
            cursor.at = riff.len();
        }
        Some(next)
    })
}

/// An ANMF chunk: the frame's position and size (24 bits each: x/2, y/2,
/// width less one, height less one), its duration and flags, then its
/// chunks, whose picture must be the frame's size.
fn check_frame(anmf: &[u8]) -> Result<(), Damage> {
    const HEADER: usize = 16;
    let header = anmf
        .get(..HEADER)
        .ok_or(Damage::Malformed("an ANMF chunk is too short"))?;
    let frame = (u24(&header[6..9]) + 1, u24(&header[9..12]) + 1);
    for chunk in chunks(anmf, HEADER) {
        let (fourcc, data) = chunk?;
        if let Some(size) = picture_size(&fourcc, data)
            && size != frame
        {
            return Err(Damage::Malformed(
                "an animation frame's picture is not the size of its frame",
            ));
        }
    }
    Ok(())
}

/// The width and height a VP8 key frame or a VP8L bitstream header gives,
/// if it is one (what is not, the decoder refuses).
fn picture_size(fourcc: &[u8; 4], data: &[u8]) -> Option<(u32, u32)> {
    match (fourcc, data) {
        // Frame tag (bit 0 clear: a key frame), start code, then 14-bit
        // width and height, each with 2 bits of scale above.
        (b"VP8 ", [tag, _, _, 0x9d, 0x01, 0x2a, w0, w1, h0, h1, ..]) if tag & 1 == 0 => Some((
            u32::from(u16::from_le_bytes([*w0, *w1]) & 0x3fff),
            u32::from(u16::from_le_bytes([*h0, *h1]) & 0x3fff),
        )),
        // Signature, then width and height less one, 14 bits each.
        (b"VP8L", [0x2f, b0, b1, b2, b3, ..]) => {
            let bits = u32::from_le_bytes([*b0, *b1, *b2, *b3]);
            Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
        }
        _ => None,
    }
}

/// A 24-bit little-endian number.
fn u24(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .rev()
        .fold(0, |value, &byte| value << 8 | u32::from(byte))
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

    /// Where the data of the first `fourcc` chunk of `webp` starts.
    fn chunk_data(webp: &[u8], fourcc: &[u8; 4]) -> usize {
        webp.windows(4).position(|w| w == fourcc).unwrap() + 8
    }

    /// A VP8 key frame header saying 16383×16383 inside a 67×45 canvas is
    /// refused before the decoder sets aside 400 MB for it (a finding of
    /// fuzz/regressions/decode_webp).
    #[test]
    fn walk_refuses_a_picture_larger_than_its_canvas() {
        let mut webp = LOSSY_ALPHA.to_vec();
        let vp8 = chunk_data(&webp, b"VP8 ");
        webp[vp8 + 6..vp8 + 10].copy_from_slice(&[0xff, 0x3f, 0xff, 0x3f]);
        assert!(matches!(walk(&webp), Err(Damage::Malformed(_))));
    }

    /// Each animation frame's picture is the size its ANMF chunk says.
    #[test]
    fn walk_refuses_an_animation_frame_larger_than_its_frame() {
        let mut webp = ANIMATED.to_vec();
        let vp8 = chunk_data(&webp, b"VP8 ");
        webp[vp8 + 6..vp8 + 10].copy_from_slice(&[0x00, 0x10, 0x00, 0x10]);
        assert!(matches!(walk(&webp), Err(Damage::Malformed(_))));
    }

    /// Bytes after the RIFF size are ignored.
    #[test]
    fn walk_accepts_trailing_garbage_after_the_container() {
        assert_eq!(walk(&with_trailing_garbage(&lossless())), Ok(Frames::STILL));
    }
}
