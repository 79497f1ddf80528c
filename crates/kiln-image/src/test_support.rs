//! Small images made in the tests, and hand-built headers and segments.

use std::io::Cursor;

use image::{DynamicImage, RgbImage};

use crate::format::Format;

/// A progress callback that lets everything run.
pub(crate) fn ignore_progress() -> impl FnMut(crate::progress::Progress) -> std::ops::ControlFlow<()>
{
    |_| std::ops::ControlFlow::Continue(())
}

/// Kiln's own encoder, with progress reports ignored.
pub(crate) fn kiln_encoded(
    image: &image::DynamicImage,
    format: Format,
    quality: u8,
) -> Result<Vec<u8>, crate::error::ImageError> {
    let mut ignore = ignore_progress();
    let mut reporter =
        crate::progress::Reporter::start(&mut ignore, crate::progress::Stage::Encode)?;
    crate::encode::encode(
        image,
        format,
        Some(quality),
        crate::ops::Colour::WHITE,
        &mut reporter,
    )
}

/// A `width`×`height` image with a smooth two-axis gradient.
pub(crate) fn gradient(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([
            (x * 255 / (width - 1).max(1)) as u8,
            (y * 255 / (height - 1).max(1)) as u8,
            128,
        ])
    })
}

/// The small gradient frame the encoder tests start from.
pub(crate) fn small_frame() -> DynamicImage {
    DynamicImage::ImageRgb8(gradient(64, 48))
}

/// `bytes` decoded by the `image` crate, not by Kiln's own input path.
pub(crate) fn decoded_by_image(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).unwrap()
}

/// RGBA noise, every channel independent, so that any sample read from the
/// wrong place (a row's neighbourhood, a chroma block) shows.
pub(crate) fn noise(width: u32, height: u32) -> image::DynamicImage {
    let mut state = 0x2545_f491_u32;
    image::DynamicImage::ImageRgba8(image::RgbaImage::from_fn(width, height, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        image::Rgba(state.to_le_bytes())
    }))
}

/// A photo-like image: smooth gradients, a hard-edged disc and
/// deterministic noise, so that the codecs do realistic work.
pub(crate) fn photo_like(width: u32, height: u32) -> RgbImage {
    let mut state = 0x2545_f491_u32;
    RgbImage::from_fn(width, height, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let noise = (state % 24) as u8;
        let (dx, dy) = (x.abs_diff(width / 2), y.abs_diff(height / 3));
        let disc = if dx * dx + dy * dy < (height / 4).pow(2) {
            90
        } else {
            0
        };
        image::Rgb([
            ((x * 200 / width) as u8).saturating_add(noise) + disc,
            ((y * 200 / height) as u8).saturating_add(noise),
            (((x + y) * 127 / (width + height)) as u8).saturating_add(noise) + disc / 2,
        ])
    })
}

/// Peak signal-to-noise ratio of `decoded` against `source`, in dB.
pub(crate) fn psnr(source: &RgbImage, decoded: &RgbImage) -> f64 {
    let squared: u64 = source
        .as_raw()
        .iter()
        .zip(decoded.as_raw())
        .map(|(a, b)| u64::from(a.abs_diff(*b)).pow(2))
        .sum();
    let mse = squared as f64 / source.as_raw().len() as f64;
    10.0 * (255.0 * 255.0 / mse).log10()
}

/// `image` encoded as `format` by the `image` crate (not by Kiln's
/// encoder), but AVIF: the `image` crate writes it only through its `avif`
/// feature, the same rav1e and ravif as Kiln's encoder.
pub(crate) fn encoded(image: &RgbImage, format: Format) -> Vec<u8> {
    if format == Format::Avif {
        let image = DynamicImage::ImageRgb8(image.clone());
        return kiln_encoded(&image, format, 90).expect("encoding a test image");
    }
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(image.clone())
        .write_to(&mut Cursor::new(&mut bytes), format.to_image())
        .expect("encoding a test image");
    bytes
}

/// A two-frame animated GIF, 32×24, encoded by the `image` crate.
pub(crate) fn animated_gif() -> Vec<u8> {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame, RgbaImage};
    let frames = [[255, 0, 0, 255], [0, 0, 255, 255]].map(|colour| {
        Frame::from_parts(
            RgbaImage::from_pixel(32, 24, image::Rgba(colour)),
            0,
            0,
            Delay::from_numer_denom_ms(100, 1),
        )
    });
    let mut bytes = Vec::new();
    GifEncoder::new(&mut bytes)
        .encode_frames(frames)
        .expect("encoding a test animation");
    bytes
}

/// Cuts that every format must refuse: inside the header, at a third, at
/// two thirds, and all but the last byte.
pub(crate) fn cuts(len: usize) -> [usize; 4] {
    [len.min(20), len / 3, len * 2 / 3, len - 1]
}

/// `bytes` followed by bytes that belong to no image (including a JPEG
/// SOI marker, to tempt a search).
pub(crate) fn with_trailing_garbage(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out.extend_from_slice(b"\0\0trailing garbage \xFF\xD8\xFF, not an image");
    out
}

/// A PNG whose IHDR claims `width`×`height` but whose only IDAT is empty:
/// no pixel data at all, so only a header-only reader can make sense of it.
/// (The IDAT is there because PNG readers read chunks up to the first one.)
pub(crate) fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    for empty_chunk in [b"IDAT", b"IEND"] {
        png.extend_from_slice(&0u32.to_be_bytes());
        png.extend_from_slice(empty_chunk);
        png.extend_from_slice(&crc32(empty_chunk).to_be_bytes());
    }
    png
}

/// `jpeg` with an EXIF APP1 segment carrying `orientation` spliced in right
/// after the SOI marker.
pub(crate) fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend_from_slice(b"MM\0\x2a\0\0\0\x08"); // big-endian TIFF, IFD0 at 8
    exif.extend_from_slice(&1u16.to_be_bytes()); // one entry
    exif.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    exif.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    exif.extend_from_slice(&1u32.to_be_bytes()); // count
    exif.extend_from_slice(&orientation.to_be_bytes());
    exif.extend_from_slice(&[0, 0]); // value padding
    exif.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let length = u16::try_from(exif.len() + 2).unwrap();

    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&exif);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// `jpeg` with `profile` spliced in right after the SOI marker, in one
/// APP2 `ICC_PROFILE` segment (so at most 65,519 bytes of it).
pub(crate) fn with_icc_profile(jpeg: &[u8], profile: &[u8]) -> Vec<u8> {
    let mut segment = b"ICC_PROFILE\0\x01\x01".to_vec(); // chunk 1 of 1
    segment.extend_from_slice(profile);
    let length = u16::try_from(segment.len() + 2).expect("one APP2 segment");
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE2]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&segment);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// Where the entropy-coded data of `jpeg`'s first scan starts: after the
/// first SOS segment, found by walking the marker segments by length.
pub(crate) fn first_scan_start(jpeg: &[u8]) -> usize {
    let mut at = 2;
    loop {
        assert_eq!(jpeg[at], 0xFF, "a marker at {at}");
        let code = jpeg[at + 1];
        let length = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        at += 2 + length;
        if code == 0xDA {
            return at;
        }
    }
}

/// `avif` decoded by Debian's `avifdec` (libavif with dav1d: a decoder
/// independent of Kiln's encoder), or `None`, with a note, when `avifdec`
/// is not installed (`apt-get install libavif-bin`).
pub(crate) fn avifdec(avif: &[u8]) -> Option<DynamicImage> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let scratch = Scratch(std::env::temp_dir().join(format!(
        "kiln-image-avifdec-{}-{}",
        std::process::id(),
        CALLS.fetch_add(1, Ordering::Relaxed)
    )));
    std::fs::create_dir_all(&scratch.0).expect("a scratch directory");
    let (input, output) = (scratch.0.join("in.avif"), scratch.0.join("out.png"));
    std::fs::write(&input, avif).expect("a scratch file");
    let run = match std::process::Command::new("avifdec")
        .arg(&input)
        .arg(&output)
        .output()
    {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "note: avifdec is not installed (apt-get install libavif-bin): AVIF output not decoded"
            );
            return None;
        }
        run => run.expect("avifdec runs"),
    };
    assert!(
        run.status.success(),
        "avifdec refused the file: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    Some(image::open(&output).expect("avifdec's PNG"))
}

/// A directory removed when dropped, even when a test fails.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The CRC-32 that PNG chunks carry (bitwise; only tiny inputs here).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn crc32_matches_the_png_iend_chunk() {
    assert_eq!(crc32(b"IEND"), 0xAE42_6082);
}

/// Mean difference per channel from the gradient testdata/make.sh draws.
pub(crate) fn distance_from_make_sh_gradient(image: &DynamicImage) -> f64 {
    let rgb = image.to_rgb8();
    let total: f64 = rgb
        .enumerate_pixels()
        .map(|(x, y, pixel)| {
            let expected = [f64::from(x) * 3.8, f64::from(y) * 5.6, 128.0];
            (0..3)
                .map(|c| (f64::from(pixel[c]) - expected[c].floor()).abs())
                .sum::<f64>()
        })
        .sum();
    total / f64::from(rgb.width() * rgb.height() * 3)
}
