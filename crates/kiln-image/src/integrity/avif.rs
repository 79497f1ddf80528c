//! AVIF: an ISO-BMFF file is a run of boxes, each announcing its size. The
//! image is whole once the `ftyp`, `meta` and `mdat` boxes are (the file
//! type, the items' description, their data); a box cut short before that
//! is a cut file. What follows them is ignored even if it is no box, as
//! libavif and libheif ignore it: there is no end marker.
//!
//! A cut between two boxes, or a second `mdat` cut short, passes this walk
//! and is found when the container is read (`decode::avif`): an item's
//! data then lies outside every `mdat` box.
//!
//! Inside `meta` (the items), the walk goes down every box that holds
//! boxes: each must fit in the box holding it, and each table (`iinf`,
//! `iloc`, `ipma`) must hold the entries it counts. The container reader
//! (`mp4parse`) sets memory aside by those sizes and counts before it
//! reads what they describe: a 30-byte `pixi` box claiming 2 GB, or an
//! `iinf` counting four billion entries, would cost that much, whatever
//! the pixel limits. An image sequence's track (`moov`), whose tables
//! would need the same, is not shown to it at all ([`track_types`]).

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
    let (box_type, content) = read_box(cursor)?;
    if &box_type == b"meta" {
        check_boxes(&[(box_type, content)], 0)?;
    }
    Ok(box_type)
}

/// Where the type of each top-level `moov` box of the image is.
pub(super) fn track_types(bytes: &[u8]) -> Vec<usize> {
    let mut cursor = Bytes::new(bytes, 0);
    let mut types = Vec::new();
    while cursor.at < bytes.len() {
        let type_at = cursor.at + 4;
        match read_box(&mut cursor) {
            Ok((box_type, _)) if &box_type == b"moov" => types.push(type_at),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    types
}

/// Reads one box's header and steps over its content; returns its type and
/// content.
fn read_box<'a>(cursor: &mut Bytes<'a>) -> Result<([u8; 4], &'a [u8]), Damage> {
    let start = cursor.at;
    let size = u32::from_be_bytes(cursor.array()?);
    let box_type: [u8; 4] = cursor.array()?;
    let size = match size {
        // The last box, running to the end of the file (or of the box
        // holding it).
        0 => cursor.bytes.len() - start,
        // The size follows the type, in 64 bits.
        1 => usize::try_from(u64::from_be_bytes(cursor.array()?)).unwrap_or(usize::MAX),
        size => size as usize,
    };
    let header = cursor.at - start;
    if size < header {
        return Err(Damage::Malformed("a box is smaller than its own header"));
    }
    Ok((box_type, cursor.take(size - header)?))
}

/// How deep [`check_boxes`] goes: deeper than any box Kiln reads.
const MAX_DEPTH: usize = 12;

/// Checks `boxes` (type and content each): a table holds the entries it
/// counts, and a box that holds boxes holds whole ones, each checked in
/// turn.
fn check_boxes(boxes: &[BoxOf<'_>], depth: usize) -> Result<(), Damage> {
    for (box_type, content) in boxes {
        let version = content.first().copied().unwrap_or(0);
        if let Some(table) = Table::of(box_type, version) {
            table.check(content)?;
        }
        if let Some(fields) = fields_before_boxes(box_type, version)
            && depth < MAX_DEPTH
        {
            let inner = content.get(fields..).ok_or(short())?;
            check_boxes(&children(inner)?, depth + 1)?;
        }
    }
    Ok(())
}

/// A box: its type and its content.
type BoxOf<'a> = ([u8; 4], &'a [u8]);

/// The boxes that fill `content`, each of which must fit in it.
fn children(content: &[u8]) -> Result<Vec<BoxOf<'_>>, Damage> {
    let mut cursor = Bytes::new(content, 0);
    let mut boxes = Vec::new();
    while cursor.at < content.len() {
        boxes.push(read_box(&mut cursor).map_err(|damage| match damage {
            Damage::Truncated => {
                Damage::Malformed("a box reaches past the end of the box holding it")
            }
            other => other,
        })?);
    }
    Ok(boxes)
}

/// For a box that holds boxes, the bytes of its own fields before them
/// (a full box's version and flags, an entry count).
fn fields_before_boxes(box_type: &[u8; 4], version: u8) -> Option<usize> {
    match box_type {
        b"iprp" | b"ipco" | b"dinf" | b"grpl" => Some(0),
        b"meta" | b"iref" => Some(4),
        b"iinf" if version == 0 => Some(6),
        b"iinf" | b"dref" => Some(8),
        _ => None,
    }
}

/// A table whose entry count comes before its entries.
struct Table {
    /// Where the count is, from the box's content.
    count_at: usize,
    /// The count's bytes: 2 or 4.
    count_bytes: usize,
    /// The fewest bytes an entry takes.
    entry: usize,
}

impl Table {
    fn of(box_type: &[u8; 4], version: u8) -> Option<Table> {
        let table = |count_at, count_bytes, entry| {
            Some(Table {
                count_at,
                count_bytes,
                entry,
            })
        };
        match box_type {
            // Each entry an `infe` box: a header and a full box's fields.
            b"iinf" if version == 0 => table(4, 2, 12),
            b"iinf" => table(4, 4, 12),
            // After the field sizes: an item id, a data reference and an
            // extent count at least.
            b"iloc" if version < 2 => table(6, 2, 6),
            b"iloc" => table(6, 4, 8),
            // An item id and an association count.
            b"ipma" => table(4, 4, 3),
            _ => None,
        }
    }

    fn check(&self, content: &[u8]) -> Result<(), Damage> {
        let count = content
            .get(self.count_at..self.count_at + self.count_bytes)
            .ok_or(short())?;
        let count = count
            .iter()
            .fold(0usize, |count, &byte| count << 8 | usize::from(byte));
        let room = content.len() - self.count_at - self.count_bytes;
        if count.saturating_mul(self.entry) > room {
            return Err(Damage::Malformed("a box counts more entries than it holds"));
        }
        Ok(())
    }
}

fn short() -> Damage {
    Damage::Malformed("a box is too short for its fields")
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

    /// Where the content of the first `box_type` box of `bytes` starts.
    fn content(bytes: &[u8], box_type: &[u8; 4]) -> usize {
        bytes.windows(4).position(|w| w == box_type).unwrap() + 4
    }

    /// A `pixi` box inside `ipco` claiming 2 GB is refused before the
    /// container reader sets that much aside for it (a finding of
    /// fuzz/regressions/probe).
    #[test]
    fn walk_refuses_a_box_reaching_past_the_box_holding_it() {
        let mut bytes = AVIF.to_vec();
        let pixi = content(&bytes, b"pixi");
        bytes[pixi - 8..pixi - 4].copy_from_slice(&0x8000_0010u32.to_be_bytes());
        assert_eq!(
            walk(&bytes),
            Err(Damage::Malformed(
                "a box reaches past the end of the box holding it"
            ))
        );
    }

    /// An `iinf` counting 65,535 items in 32 bytes is refused before the
    /// container reader sets aside room for them.
    #[test]
    fn walk_refuses_a_table_counting_more_entries_than_it_holds() {
        let mut bytes = AVIF.to_vec();
        let iinf = content(&bytes, b"iinf");
        // Version 0: the count is the 16 bits after version and flags.
        bytes[iinf + 4..iinf + 6].copy_from_slice(&[0xff, 0xff]);
        assert_eq!(
            walk(&bytes),
            Err(Damage::Malformed("a box counts more entries than it holds"))
        );
    }

    /// Every AVIF file of the test data passes the deeper walk.
    #[test]
    fn walk_accepts_every_test_file() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "avif") {
                let bytes = std::fs::read(&path).unwrap();
                assert_eq!(walk(&bytes), Ok(Frames::STILL), "{}", path.display());
            }
        }
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
