//! JPEG: marker segments by their lengths, scans searched for the marker
//! that ends them, up to the end-of-image marker (EOI).
//!
//! Segment payloads are skipped by length, never searched, so an EXIF
//! thumbnail (a whole JPEG, EOI included, inside APP1) does not pass for
//! the end of the main image. Inside a scan a `0xFF` byte is followed by
//! `0x00` (a stuffed byte), a restart marker or more `0xFF` fill; anything
//! else is the marker ending the scan. Where a marker is expected but other
//! bytes come, they are skipped up to the next `0xFF`, as libjpeg does (it
//! warns "extraneous bytes before marker"): the walk only asks whether the
//! file reaches its end, and strict decoding judges the rest.

use super::{Bytes, Damage};

const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;

/// Walks from after the SOI marker (checked by the sniff) to EOI.
pub(super) fn walk(bytes: &[u8]) -> Result<(), Damage> {
    let mut cursor = Bytes::new(bytes, 2);
    loop {
        match next_marker(&mut cursor)? {
            EOI => return Ok(()),
            // SOI, RST0..=RST7, TEM: markers without a payload.
            0xD8 | 0xD0..=0xD7 | 0x01 => {}
            SOS => {
                skip_segment(&mut cursor)?;
                skip_entropy_coded_data(&mut cursor)?;
            }
            _ => skip_segment(&mut cursor)?,
        }
    }
}

/// The code of the next marker, skipping fill bytes and anything else
/// before it.
fn next_marker(cursor: &mut Bytes<'_>) -> Result<u8, Damage> {
    loop {
        let rest = &cursor.bytes[cursor.at..];
        let ff = memchr::memchr(0xFF, rest).ok_or(Damage::Truncated)?;
        cursor.skip(ff + 1)?;
        match cursor.u8()? {
            // Fill: the marker code is further on.
            0xFF => cursor.at -= 1,
            // Not a marker code: keep looking.
            0x00 => {}
            code => return Ok(code),
        }
    }
}

/// Skips a marker segment: a big-endian length that counts itself, then
/// the payload.
fn skip_segment(cursor: &mut Bytes<'_>) -> Result<(), Damage> {
    let length = usize::from(u16::from_be_bytes(cursor.array()?));
    if length < 2 {
        return Err(Damage::Malformed(
            "a marker segment is shorter than its length field",
        ));
    }
    cursor.skip(length - 2)
}

/// Whether a marker may end a scan: tables and the like before the next
/// scan (DHT, DAC, DQT, DRI, DNL, APPn, COM), the next scan, or the end.
fn may_follow_a_scan(code: u8) -> bool {
    matches!(code, 0xC4 | 0xCC | 0xD9..=0xDD | 0xE0..=0xEF | 0xFE)
}

/// Leaves `cursor` on the `0xFF` of the marker that ends the scan.
fn skip_entropy_coded_data(cursor: &mut Bytes<'_>) -> Result<(), Damage> {
    loop {
        let rest = &cursor.bytes[cursor.at..];
        let ff = memchr::memchr(0xFF, rest).ok_or(Damage::Truncated)?;
        cursor.skip(ff)?;
        let [_, code] = *cursor.bytes[cursor.at..]
            .first_chunk::<2>()
            .ok_or(Damage::Truncated)?;
        match code {
            // A stuffed data byte or a restart marker: the scan goes on.
            0x00 | 0xD0..=0xD7 => cursor.skip(2)?,
            // Fill before a marker.
            0xFF => cursor.skip(1)?,
            code if may_follow_a_scan(code) => return Ok(()),
            _ => return Err(Damage::Malformed("a marker that has no place in a scan")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Format;
    use crate::test_support::{
        cuts, encoded, first_scan_start, gradient, with_exif_orientation, with_trailing_garbage,
    };

    fn jpeg() -> Vec<u8> {
        encoded(&gradient(64, 48), Format::Jpeg)
    }

    /// `jpeg` with a whole other JPEG inside an APP1 segment, as cameras
    /// store their EXIF thumbnail.
    fn with_thumbnail(jpeg: &[u8]) -> Vec<u8> {
        let thumbnail = encoded(&gradient(8, 8), Format::Jpeg);
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend_from_slice(&thumbnail);
        let length = u16::try_from(payload.len() + 2).unwrap();
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&payload);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    /// A whole JPEG, EXIF or not, passes.
    #[test]
    fn walk_reaches_the_end_of_image_marker() {
        assert_eq!(walk(&jpeg()), Ok(()));
        assert_eq!(walk(&with_exif_orientation(&jpeg(), 6)), Ok(()));
    }

    /// A JPEG cut in its header, its scan or just before EOI is refused.
    #[test]
    fn walk_refuses_a_file_cut_anywhere() {
        let jpeg = jpeg();
        for cut in cuts(jpeg.len()) {
            assert_eq!(walk(&jpeg[..cut]), Err(Damage::Truncated), "cut at {cut}");
        }
    }

    /// Even the two bytes of the EOI marker are missed.
    #[test]
    fn walk_refuses_a_file_missing_only_its_end_marker() {
        let jpeg = jpeg();
        assert_eq!(walk(&jpeg[..jpeg.len() - 2]), Err(Damage::Truncated));
    }

    /// An EXIF thumbnail's own EOI marker does not make a cut photo whole.
    #[test]
    fn walk_does_not_take_a_thumbnails_end_for_the_images() {
        let jpeg = with_thumbnail(&jpeg());
        assert_eq!(walk(&jpeg), Ok(()));
        let main_image_cut = jpeg.len() - 100;
        assert_eq!(walk(&jpeg[..main_image_cut]), Err(Damage::Truncated));
    }

    /// A marker segment longer than the rest of the file is a cut.
    #[test]
    fn walk_refuses_a_segment_reaching_past_the_end() {
        let mut jpeg = jpeg()[..2].to_vec();
        jpeg.extend_from_slice(&[0xFF, 0xE0, 0x40, 0x00, b'J', b'F', b'I', b'F']);
        assert_eq!(walk(&jpeg), Err(Damage::Truncated));
    }

    /// A length that cannot count itself is damage.
    #[test]
    fn walk_refuses_a_segment_length_below_two() {
        let mut jpeg = jpeg()[..2].to_vec();
        jpeg.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x01, 0xFF, 0xD9]);
        assert!(matches!(walk(&jpeg), Err(Damage::Malformed(_))));
    }

    /// A marker that cannot end a scan is damage inside it.
    #[test]
    fn walk_refuses_a_stray_marker_inside_a_scan() {
        let mut jpeg = jpeg();
        let scan = first_scan_start(&jpeg);
        let middle = scan + (jpeg.len() - scan) / 2;
        // Never a valid code after a scan (0x02..=0xBF are reserved).
        jpeg[middle..middle + 2].copy_from_slice(&[0xFF, 0x12]);
        assert!(matches!(walk(&jpeg), Err(Damage::Malformed(_))));
    }

    /// Bytes after EOI are ignored.
    #[test]
    fn walk_accepts_trailing_garbage_after_the_end_marker() {
        assert_eq!(walk(&with_trailing_garbage(&jpeg())), Ok(()));
    }

    /// libjpeg-turbo's multi-scan, restart-marker and CMYK files pass whole and
    /// are refused cut.
    #[test]
    fn walk_accepts_libjpeg_progressive_and_restart_files() {
        for jpeg in [
            &include_bytes!("../../testdata/libjpeg-progressive.jpg")[..],
            &include_bytes!("../../testdata/libjpeg-restart.jpg")[..],
            &include_bytes!("../../testdata/libjpeg-cmyk.jpg")[..],
        ] {
            assert_eq!(walk(jpeg), Ok(()));
            for cut in cuts(jpeg.len()) {
                assert_eq!(walk(&jpeg[..cut]), Err(Damage::Truncated), "cut at {cut}");
            }
        }
    }
}
