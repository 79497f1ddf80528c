//! AVIF: an ISO-BMFF file is a run of boxes, each announcing its size. The
//! image is whole once the `ftyp`, `meta` and `mdat` boxes are (the file
//! type, the items' description, their data); a box cut short before that
//! is a cut file. What follows them is ignored even if it is no box, as
//! libavif and libheif ignore it: there is no end marker.
//!
//! A cut between two boxes, or a second `mdat` cut short, passes this walk
//! and is found when the container is read (`decode::avif`): an item's
//! data then lies outside every `mdat` box.

use super::{Bytes, Damage, Frames};

/// Walks the top-level boxes to the end of the image.
pub(super) fn walk(bytes: &[u8]) -> Result<Frames, Damage> {
    // The primary item is the still image Kiln reads, also in an image
    // sequence (`avis`), whose other frames it does not read.
    image_end(bytes).map(|_| Frames::STILL)
}

/// Where the image's boxes end in `bytes`: at the end of the file, or at
/// the first box after `ftyp`, `meta` and `mdat` that is cut or no box.
pub(crate) fn image_end(bytes: &[u8]) -> Result<usize, Damage> {
    let mut seen = [false; 3];
    let mut cursor = Bytes::new(bytes, 0);
    while cursor.at < bytes.len() {
        let start = cursor.at;
        match next_box(&mut cursor) {
            Ok(box_type) => {
                let needed = [b"ftyp", b"meta", b"mdat"];
                if let Some(index) = needed.iter().position(|name| **name == box_type) {
                    seen[index] = true;
                }
            }
            Err(_) if seen == [true; 3] => return Ok(start),
            Err(damage) => return Err(damage),
        }
    }
    Ok(bytes.len())
}

/// Steps over one box; returns its type.
fn next_box(cursor: &mut Bytes<'_>) -> Result<[u8; 4], Damage> {
    let start = cursor.at;
    let size = u32::from_be_bytes(cursor.array()?);
    let box_type: [u8; 4] = cursor.array()?;
    let size = match size {
        // The last box, running to the end of the file.
        0 => cursor.bytes.len() - start,
        // The size follows the type, in 64 bits.
        1 => usize::try_from(u64::from_be_bytes(cursor.array()?)).unwrap_or(usize::MAX),
        size => size as usize,
    };
    let header = cursor.at - start;
    if size < header {
        return Err(Damage::Malformed("a box is smaller than its own header"));
    }
    cursor.skip(size - header)?;
    Ok(box_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AVIF: &[u8] = include_bytes!("../../testdata/avif-8bit.avif");

    #[test]
    fn walk_accepts_a_whole_file() {
        assert_eq!(walk(AVIF), Ok(Frames::STILL));
        assert_eq!(image_end(AVIF), Ok(AVIF.len()));
    }

    /// Every cut inside a box is refused; a cut between boxes is left to
    /// the container reader (see `decode::avif`'s tests).
    #[test]
    fn walk_refuses_a_file_cut_inside_a_box() {
        let boundaries = box_ends(AVIF);
        for cut in (0..AVIF.len()).filter(|cut| !boundaries.contains(cut)) {
            assert_eq!(walk(&AVIF[..cut]), Err(Damage::Truncated), "cut at {cut}");
        }
    }

    #[test]
    fn the_image_ends_before_trailing_bytes() {
        let mut bytes = AVIF.to_vec();
        bytes.extend_from_slice(b"\0\0trailing garbage");
        assert_eq!(image_end(&bytes), Ok(AVIF.len()));
    }

    #[test]
    fn walk_refuses_a_box_smaller_than_its_header() {
        let mut bytes = AVIF.to_vec();
        bytes.splice(0..0, [0, 0, 0, 4, b'f', b'r', b'e', b'e']);
        assert!(matches!(walk(&bytes), Err(Damage::Malformed(_))));
    }

    #[test]
    fn walk_reads_a_64_bit_box_size() {
        let mut free = vec![0, 0, 0, 1, b'f', b'r', b'e', b'e'];
        free.extend_from_slice(&17u64.to_be_bytes());
        free.push(0);
        let mut bytes = AVIF.to_vec();
        bytes.splice(0..0, free);
        assert_eq!(image_end(&bytes), Ok(bytes.len()));
        bytes.truncate(20);
        assert_eq!(walk(&bytes), Err(Damage::Truncated));
    }

    /// Where each top-level box of `bytes` ends.
    fn box_ends(bytes: &[u8]) -> Vec<usize> {
        let mut ends = vec![0];
        let mut at = 0;
        while at < bytes.len() {
            at += u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            ends.push(at);
        }
        ends
    }
}
