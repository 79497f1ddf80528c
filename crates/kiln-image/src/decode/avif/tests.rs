//! AVIF files written by libavif's `avifenc` (testdata/make.sh), all of
//! the 67×45 gradient that script draws, and Kiln's own.

use image::{DynamicImage, GenericImageView, ImageDecoder, Rgba};

use super::AvifDecoder;
use crate::decode::{decode, open};
use crate::error::ImageError;
use crate::format::Format;
use crate::test_support::{avifdec, distance_from_make_sh_gradient, with_trailing_garbage};

const EIGHT_BIT: &[u8] = include_bytes!("../../../testdata/avif-8bit.avif");
const ALPHA: &[u8] = include_bytes!("../../../testdata/avif-alpha.avif");
const PREMULTIPLIED: &[u8] = include_bytes!("../../../testdata/avif-premultiplied.avif");

fn decoding(bytes: &[u8]) -> Result<DynamicImage, ImageError> {
    open(bytes, image::Limits::default())
        .and_then(|header| decode(header, None))
        .map(|decoded| decoded.image)
}

/// The pixels as coded: no profile applied, no orientation.
fn raw(bytes: &[u8]) -> DynamicImage {
    DynamicImage::from_decoder(AvifDecoder::new(bytes).unwrap()).unwrap()
}

/// Mean difference per sample.
fn difference(a: &DynamicImage, b: &DynamicImage) -> f64 {
    let (a, b) = (a.to_rgba8(), b.to_rgba8());
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.len() as f64
}

/// Every depth, chroma layout, range and matrix avifenc writes decodes
/// to the gradient, and to what libavif's own decoder makes of the file.
#[test]
fn avifenc_files_decode_to_their_pixels() {
    let files: [(&str, &[u8]); 5] = [
        ("8-bit 4:2:0", EIGHT_BIT),
        (
            "10-bit 4:4:4",
            include_bytes!("../../../testdata/avif-10bit-444.avif"),
        ),
        (
            "12-bit 4:2:2",
            include_bytes!("../../../testdata/avif-12bit-422.avif"),
        ),
        (
            "limited range, BT.709",
            include_bytes!("../../../testdata/avif-limited-bt709.avif"),
        ),
        ("8-bit 4:4:4, alpha", ALPHA),
    ];
    for (name, bytes) in files {
        let image = decoding(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(image.dimensions(), (67, 45), "{name}");
        let distance = distance_from_make_sh_gradient(&image);
        assert!(distance < 3.0, "{name}: {distance:.2} from the gradient");
        if let Some(libavif) = avifdec(bytes) {
            let difference = difference(&image, &libavif);
            assert!(difference < 1.0, "{name}: {difference:.2} from avifdec");
        }
    }
}

/// Grey (4:0:0) comes out grey, as libavif reads it.
#[test]
fn a_grey_avif_decodes_grey() {
    let bytes: &[u8] = include_bytes!("../../../testdata/avif-grey.avif");
    let image = decoding(bytes).unwrap().to_rgb8();
    assert!(image.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    if let Some(libavif) = avifdec(bytes) {
        let difference = difference(&DynamicImage::ImageRgb8(image), &libavif);
        assert!(difference < 0.5, "{difference:.2} from avifdec");
    }
}

/// The alpha item becomes the alpha channel; premultiplied colours are
/// divided by it.
#[test]
fn alpha_is_read_straight_and_premultiplied() {
    // make.sh's alpha.png is the gradient at alpha 200.
    for (name, bytes) in [("straight", ALPHA), ("premultiplied", PREMULTIPLIED)] {
        let image = decoding(bytes).unwrap();
        assert_eq!(image.color(), image::ColorType::Rgba8, "{name}");
        let alphas = image.to_rgba8().pixels().map(|p| p[3]).collect::<Vec<_>>();
        assert!(alphas.iter().all(|&a| a == 200), "{name}");
        let distance = distance_from_make_sh_gradient(&image);
        assert!(distance < 3.0, "{name}: {distance:.2} from the gradient");
    }
    assert!(!AvifDecoder::new(EIGHT_BIT).unwrap().has_alpha());
}

/// `irot` 1 (a quarter turn anticlockwise), then `imir` 0 (top and
/// bottom exchanged): the frame is turned and flipped as libavif shows it.
#[test]
fn rotation_and_mirroring_are_applied() {
    let bytes: &[u8] = include_bytes!("../../../testdata/avif-irot1-imir0.avif");
    let info = crate::probe(bytes).unwrap();
    assert_eq!((info.width, info.height), (45, 67));
    let image = decoding(bytes).unwrap();
    let expected = raw(bytes).rotate270().flipv();
    assert_eq!(difference(&image, &expected), 0.0);
    // The gradient's red grows left to right; after the turn it grows
    // bottom to top, and after the flip top to bottom.
    let red = |y| image.get_pixel(20, y)[0];
    assert!(red(0) + 100 < red(66), "{} {}", red(0), red(66));
}

/// The profile in `colr` is applied: Adobe RGB comes out as the sRGB
/// gradient, not as its Adobe RGB numbers.
#[test]
fn an_embedded_icc_profile_is_applied() {
    let bytes: &[u8] = include_bytes!("../../../testdata/avif-adobe-rgb.avif");
    let mut decoder = AvifDecoder::new(bytes).unwrap();
    assert!(decoder.icc_profile().unwrap().is_some());
    let header = open(bytes, image::Limits::default()).unwrap();
    let decoded = decode(header, None).unwrap();
    assert_eq!(decoded.warning, None);
    let managed = distance_from_make_sh_gradient(&decoded.image);
    let ignored = distance_from_make_sh_gradient(&raw(bytes));
    assert!(managed < 2.5, "{managed:.2} levels from the source");
    assert!(
        ignored > 4.0 * managed,
        "{ignored:.2} ignored, {managed:.2} applied"
    );
}

/// A colour space named only by CICP code points is converted like a
/// profile: sRGB's pure red and green, written as Display P3 numbers, come
/// back as pure red and green. avifenc's usual sRGB code points change
/// nothing.
#[test]
fn display_p3_by_cicp_is_converted_to_srgb() {
    let bytes: &[u8] = include_bytes!("../../../testdata/avif-p3-cicp.avif");
    let decoded = decode(open(bytes, image::Limits::default()).unwrap(), None).unwrap();
    assert_eq!(decoded.warning, None);
    let near = |x, expected: [u8; 3]| {
        let got = decoded.image.get_pixel(x, 30);
        let far = (0..3).map(|c| got[c].abs_diff(expected[c])).max().unwrap();
        assert!(far <= 4, "at x={x}: {got:?}, expected {expected:?}");
    };
    near(10, [255, 0, 0]);
    near(50, [0, 255, 0]);
    let coded = raw(bytes);
    assert!(coded.get_pixel(10, 30)[1] > 40, "the file holds P3 numbers");
    let plain = decode(open(EIGHT_BIT, image::Limits::default()).unwrap(), None).unwrap();
    assert_eq!((plain.warning, plain.image), (None, raw(EIGHT_BIT)));
}

/// HDR (a PQ transfer) is not tone-mapped: the pixels are used as they
/// are, and the operation hears of it.
#[test]
fn hdr_by_cicp_is_a_warning() {
    let bytes: &[u8] = include_bytes!("../../../testdata/avif-pq-cicp.avif");
    let decoded = decode(open(bytes, image::Limits::default()).unwrap(), None).unwrap();
    let warning = decoded.warning.expect("a warning").to_string();
    assert!(warning.contains("HDR"), "{warning}");
    assert_eq!(decoded.image, raw(bytes));
}

/// An image sequence is read by its primary item; its track is not read
/// at all, so that a table there counting four billion entries costs
/// nothing (found by fuzzing: the container reader set memory aside by
/// such counts).
#[test]
fn a_sequence_is_read_by_its_primary_item_and_its_track_ignored() {
    let bytes: &[u8] = include_bytes!("../../../testdata/avif-sequence.avif");
    assert_eq!(decoding(bytes).unwrap().dimensions(), (67, 45));
    let mut damaged = bytes.to_vec();
    let stco = damaged.windows(4).position(|w| w == b"stco").unwrap();
    // After the type: version and flags, then the entry count.
    damaged[stco + 8..stco + 12].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(decoding(&damaged).unwrap().dimensions(), (67, 45));
}

/// A grid is refused by name, as a feature Kiln lacks, not as damage.
#[test]
fn a_grid_image_is_refused_by_name() {
    let bytes: &[u8] = include_bytes!("../../../testdata/avif-grid.avif");
    match crate::probe(bytes) {
        Err(ImageError::UnsupportedFeature(what)) => assert!(what.contains("grid"), "{what}"),
        other => panic!("{other:?}"),
    }
}

/// Cut anywhere, a file is refused, at the probe or at the decode, and
/// never decodes to a partial image.
#[test]
fn a_file_cut_anywhere_is_refused() {
    for bytes in [EIGHT_BIT, ALPHA] {
        for cut in 0..bytes.len() {
            match decoding(&bytes[..cut]) {
                Err(ImageError::Corrupt(_)) => {}
                Err(ImageError::Unsupported) if cut < 12 => {}
                other => panic!("cut at {cut} of {}: {:?}", bytes.len(), other.map(|_| ())),
            }
        }
    }
}

/// Item data that the `mdat` box no longer holds is refused at the probe
/// (so at submission), though every box is whole.
#[test]
fn an_item_outside_its_mdat_is_refused_at_the_probe() {
    let cut = with_mdat_cut_short(EIGHT_BIT, 40);
    assert!(matches!(crate::probe(&cut), Err(ImageError::Corrupt(_))));
}

/// AV1 data cut anywhere yields no picture: an error, never a partial
/// image.
#[test]
fn cut_av1_data_is_refused_by_the_decoder() {
    let container =
        mp4parse::read_avif(&mut &EIGHT_BIT[..], mp4parse::ParseStrictness::Normal).unwrap();
    let obus = container.primary_item_coded_data().unwrap();
    for cut in 1..obus.len() {
        let decoded = super::av1::Av1Decoder::open(67, 45)
            .and_then(|decoder| decoder.decode(&obus[..cut]))
            .map(|_| ());
        assert!(decoded.is_err(), "cut at {cut} of {}", obus.len());
    }
}

/// `bytes` with its `mdat` box (the last) `by` bytes shorter, its size
/// fixed to match, so that the structure is whole but the data is not.
fn with_mdat_cut_short(bytes: &[u8], by: usize) -> Vec<u8> {
    let at = bytes.windows(4).position(|w| w == b"mdat").unwrap() - 4;
    let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    assert_eq!(at + size, bytes.len(), "mdat is the last box");
    let mut out = bytes[..bytes.len() - by].to_vec();
    out[at..at + 4].copy_from_slice(&((size - by) as u32).to_be_bytes());
    out
}

/// Flipped bytes in the AV1 data never panic (a panic in Wasm would end
/// the instance, not the request): each damaged file decodes to something
/// or is refused. (This is what found the abort patched in vendor/rav1d.)
#[test]
fn damaged_pixels_do_not_panic() {
    const FILES: usize = 300;
    let start = EIGHT_BIT.windows(4).position(|w| w == b"mdat").unwrap() + 4;
    let mut seed = 0x2545_f491_u32;
    let mut refused = 0;
    for _ in 0..FILES {
        let mut bytes = EIGHT_BIT.to_vec();
        for _ in 0..4 {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let at = start + seed as usize % (bytes.len() - start);
            bytes[at] ^= (seed >> 24) as u8 | 1;
        }
        refused += usize::from(decoding(&bytes).is_err());
    }
    eprintln!("{refused} of {FILES} damaged files refused, the rest decoded");
}

/// Bytes after the boxes are ignored, as libavif and libheif ignore them.
#[test]
fn trailing_bytes_are_ignored() {
    assert_eq!(
        decoding(&with_trailing_garbage(EIGHT_BIT)).unwrap(),
        decoding(EIGHT_BIT).unwrap()
    );
}

/// Kiln's own AVIF output (rav1e through ravif) reads back, with alpha.
#[test]
fn kilns_own_avif_reads_back() {
    let mut source = image::RgbaImage::new(64, 40);
    for (x, y, pixel) in source.enumerate_pixels_mut() {
        *pixel = Rgba([
            (x * 4) as u8,
            (y * 6) as u8,
            90,
            if x < 32 { 255 } else { 128 },
        ]);
    }
    let source = DynamicImage::ImageRgba8(source);
    let bytes = crate::test_support::kiln_encoded(&source, Format::Avif, 95).unwrap();
    let image = decoding(&bytes).unwrap();
    assert!(difference(&image, &source) < 2.0);
}
