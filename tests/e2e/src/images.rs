//! Test images, generated in the test: gradients in each input format, and
//! broken ones.

use image::{DynamicImage, ImageFormat, RgbaImage};
use std::io::Cursor;

/// A `width`×`height` gradient with some alpha.
pub fn gradient(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgba8(RgbaImage::from_fn(width, height, |x, y| {
        image::Rgba([
            (x * 255 / width.max(1)) as u8,
            (y * 255 / height.max(1)) as u8,
            ((x ^ y) & 0xff) as u8,
            255,
        ])
    }))
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    let image = if format == ImageFormat::Jpeg {
        DynamicImage::ImageRgb8(image.to_rgb8())
    } else {
        image.clone()
    };
    image
        .write_to(&mut bytes, format)
        .expect("encoding a generated image");
    bytes.into_inner()
}

/// A PNG gradient.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    encode(&gradient(width, height), ImageFormat::Png)
}

/// A PNG of noise, which does not compress: `width * height * 4` bytes or so.
pub fn noisy_png(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x9e37_79b9_u32;
    let noise = RgbaImage::from_fn(width, height, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [a, b, c, _] = state.to_le_bytes();
        image::Rgba([a, b, c, 255])
    });
    encode(&DynamicImage::ImageRgba8(noise), ImageFormat::Png)
}

/// A JPEG gradient.
pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    encode(&gradient(width, height), ImageFormat::Jpeg)
}

/// A (lossless) WebP gradient.
pub fn webp(width: u32, height: u32) -> Vec<u8> {
    encode(&gradient(width, height), ImageFormat::WebP)
}

/// A GIF gradient.
pub fn gif(width: u32, height: u32) -> Vec<u8> {
    encode(&gradient(width, height), ImageFormat::Gif)
}

/// The format and dimensions of encoded image bytes, as a client would
/// check them.
pub fn inspect(bytes: &[u8]) -> (ImageFormat, u32, u32) {
    let format = image::guess_format(bytes).expect("a known image format");
    let image = image::load_from_memory(bytes).expect("a decodable image");
    (format, image.width(), image.height())
}

/// A PNG whose IHDR claims `width`×`height`, with an empty IDAT and an
/// IEND: a whole file by its structure (so not refused as truncated), but
/// without pixel data; decoding it would need gigabytes.
pub fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]); // 8-bit RGBA, no interlace
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", &ihdr[..]), (b"IDAT", &[]), (b"IEND", &[])] {
        bytes.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(data);
        bytes.extend_from_slice(&chunk);
        bytes.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    bytes
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The first half of a valid image.
pub fn truncated(bytes: &[u8]) -> Vec<u8> {
    bytes[..bytes.len() / 2].to_vec()
}

/// A valid image without its last byte, where every format keeps part of
/// its end marker: the cut the decoders themselves do not notice.
pub fn without_last_byte(bytes: &[u8]) -> Vec<u8> {
    bytes[..bytes.len() - 1].to_vec()
}

/// A whole PNG gradient with one bit flipped in its pixel data: the IDAT
/// chunk no longer matches its CRC.
pub fn png_with_a_flipped_bit(width: u32, height: u32) -> Vec<u8> {
    let mut png = png(width, height);
    let idat = png
        .windows(4)
        .position(|w| w == b"IDAT")
        .expect("an IDAT chunk");
    let length = u32::from_be_bytes(png[idat - 4..idat].try_into().unwrap()) as usize;
    png[idat + 4 + length / 2] ^= 0x01;
    png
}

/// A whole JPEG gradient whose scan holds 64 one bits in its middle: no
/// Huffman table has an all-ones code, so it cannot be decoded, while
/// every marker and length is intact.
pub fn jpeg_with_an_undecodable_scan(width: u32, height: u32) -> Vec<u8> {
    let jpeg = jpeg(width, height);
    let mut at = 2;
    loop {
        let code = jpeg[at + 1];
        at += 2 + usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        if code == 0xDA {
            break; // SOS: the scan starts here
        }
    }
    let mut middle = at + (jpeg.len() - at) / 2;
    while jpeg[middle - 1] == 0xFF {
        middle += 1; // not between a 0xFF and its stuffed 0x00
    }
    let mut out = jpeg[..middle].to_vec();
    out.extend_from_slice(&[0xFF, 0x00].repeat(8)); // 0xFF, stuffed
    out.extend_from_slice(&jpeg[middle + 16..]);
    out
}

/// A valid image's header followed by garbage.
pub fn corrupt(bytes: &[u8]) -> Vec<u8> {
    let keep = bytes.len().min(64);
    let mut out = bytes[..keep].to_vec();
    out.extend((0..bytes.len() - keep).map(|i| (i * 7 + 13) as u8));
    out
}

/// A PNG gradient whose left half is fully transparent.
pub fn half_transparent_png(width: u32, height: u32) -> Vec<u8> {
    let mut image = gradient(width, height).to_rgba8();
    for (x, _, pixel) in image.enumerate_pixels_mut() {
        if x < width / 2 {
            pixel[3] = 0;
        }
    }
    encode(&DynamicImage::ImageRgba8(image), ImageFormat::Png)
}

/// A photo-like PNG: smooth shading with fine texture, where lossy codecs
/// behave as on photos (a plain gradient flatters them).
pub fn photo_png(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    let photo = RgbaImage::from_fn(width, height, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let grain = (state % 24) as f32 - 12.0;
        let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
        let wave = ((fx * 9.0).sin() * (fy * 7.0).cos() * 60.0) + grain;
        let channel = |base: f32| (base + wave).clamp(0.0, 255.0) as u8;
        image::Rgba([
            channel(90.0 + 100.0 * fx),
            channel(120.0),
            channel(200.0 - 120.0 * fy),
            255,
        ])
    });
    encode(&DynamicImage::ImageRgba8(photo), ImageFormat::Png)
}

/// The four-character codes of a WebP file's chunks, in order (`VP8 ` is
/// lossy, `VP8L` lossless, `ALPH` the alpha of a lossy image).
pub fn webp_chunks(bytes: &[u8]) -> Vec<String> {
    assert!(
        bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP"),
        "not a WebP file"
    );
    let mut chunks = Vec::new();
    let mut at = 12;
    while at + 8 <= bytes.len() {
        chunks.push(String::from_utf8_lossy(&bytes[at..at + 4]).into_owned());
        let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        at += 8 + size + size % 2;
    }
    chunks
}

/// `bytes` decoded by Debian's `avifdec` (libavif with dav1d, independent
/// of Kiln's encoder), or `None` when `avifdec` is not installed. Panics if
/// `avifdec` refuses the file.
pub fn decode_avif(bytes: &[u8]) -> Option<DynamicImage> {
    let scratch = std::env::temp_dir().join(format!(
        "kiln-e2e-avif-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&scratch).unwrap();
    let (input, output) = (scratch.join("in.avif"), scratch.join("out.png"));
    std::fs::write(&input, bytes).unwrap();
    let run = std::process::Command::new("avifdec")
        .arg(&input)
        .arg(&output)
        .output();
    let decoded = match run {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "avifdec not installed (Debian package libavif-bin): AVIF decode check skipped"
            );
            None
        }
        Err(err) => panic!("running avifdec: {err}"),
        Ok(out) => {
            assert!(
                out.status.success(),
                "avifdec refused Kiln's AVIF: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(image::open(&output).expect("avifdec wrote a PNG"))
        }
    };
    std::fs::remove_dir_all(&scratch).ok();
    decoded
}

/// Peak signal-to-noise ratio of `b` against `a` over RGB, in dB.
pub fn psnr(a: &DynamicImage, b: &DynamicImage) -> f64 {
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    assert_eq!(a.dimensions(), b.dimensions());
    let squared: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    let mse = squared / a.as_raw().len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    }
}
