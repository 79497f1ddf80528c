//! Colour management against libvips's files and readings.

use super::*;
use crate::decode::{decode, open};
use crate::test_support::{decoded_by_image, distance_from_make_sh_gradient, with_icc_profile};

fn decoded(bytes: &[u8]) -> (DynamicImage, Option<Warning>) {
    let header = open(bytes, image::Limits::default()).unwrap();
    let decoded = decode(header, None).unwrap();
    (decoded.image, decoded.warning)
}

/// Mean difference per sample between two frames.
fn difference(a: &DynamicImage, b: &DynamicImage) -> f64 {
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    assert_eq!(a.dimensions(), b.dimensions());
    let total: f64 = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| f64::from(x.abs_diff(*y)))
        .sum();
    total / a.len() as f64
}

const ADOBE_RGB_JPEG: &[u8] = include_bytes!("../../testdata/adobe-rgb.jpg");

/// The profile of the first APP2 segment of `jpeg` (one segment).
fn embedded_profile(jpeg: &[u8]) -> Vec<u8> {
    let mut header = open(jpeg, image::Limits::default()).unwrap();
    header.icc.take().expect("the file embeds a profile")
}

/// The make.sh gradient converted by libvips into Adobe RGB, ProPhoto
/// (lossless WebP) and a red/green-swapping profile (PNG), each with its
/// profile embedded, decodes back to the gradient's sRGB values; read
/// as if it were sRGB, as Kiln did before, it is far from them.
#[test]
fn embedded_rgb_profiles_are_converted_to_srgb() {
    let files: [(&str, &[u8]); 3] = [
        ("Adobe RGB JPEG", ADOBE_RGB_JPEG),
        (
            "ProPhoto WebP",
            include_bytes!("../../testdata/prophoto.webp"),
        ),
        (
            "red/green-swapped PNG",
            include_bytes!("../../testdata/swapped-red-green.png"),
        ),
    ];
    for (name, bytes) in files {
        let (image, warning) = decoded(bytes);
        assert_eq!(warning, None, "{name}");
        let managed = distance_from_make_sh_gradient(&image);
        let ignored = distance_from_make_sh_gradient(&decoded_by_image(bytes));
        assert!(managed < 2.5, "{name}: {managed:.2} levels from the source");
        assert!(
            ignored > 4.0 * managed,
            "{name}: {ignored:.2} levels with the profile ignored, {managed:.2} applied"
        );
    }
}

/// An sRGB profile changes nothing: the pixels are the untagged ones.
#[test]
fn an_srgb_profile_leaves_the_pixels_as_they_are() {
    let tagged = include_bytes!("../../testdata/srgb-tagged.jpg");
    let (image, warning) = decoded(tagged);
    assert_eq!(warning, None);
    assert_eq!(image, decoded_by_image(tagged));
}

/// A CMYK JPEG without a profile goes through the default CMYK
/// profile, as libvips reads it (libvips's relative colorimetric
/// rendering through lcms2 is the reference). They differ by more than
/// six levels on 1% of the samples, all of them reds near zero where
/// the ink's colour lies outside sRGB and is clipped: a few
/// thousandths of full intensity in linear light (tetrahedral
/// interpolation of the profile's table, lcms2's, changed nothing).
#[test]
fn an_untagged_cmyk_jpeg_reads_as_libvips_reads_it() {
    let cmyk = include_bytes!("../../testdata/libjpeg-cmyk.jpg");
    let (image, warning) = decoded(cmyk);
    assert_eq!(warning, None);
    let libvips =
        image::load_from_memory(include_bytes!("../../testdata/libjpeg-cmyk-by-libvips.png"))
            .unwrap();
    let mean = difference(&image, &libvips);
    let far = within(&image, &libvips, 6);
    assert!(
        mean < 1.0 && far < 0.02,
        "mean {mean:.2}, {far:.3} beyond 6 levels"
    );
    // The uncorrected formula Kiln used before is far off.
    let naive_mean = difference(&decoded_by_image(cmyk), &libvips);
    assert!(naive_mean > 5.0, "naive {naive_mean:.2}");
}

/// The share of samples of `a` more than `levels` from `b`'s.
fn within(a: &DynamicImage, b: &DynamicImage, levels: u8) -> f64 {
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    let far = a
        .iter()
        .zip(b.iter())
        .filter(|(x, y)| x.abs_diff(**y) > levels)
        .count();
    far as f64 / a.len() as f64
}

/// A profile spread over several APP2 segments (this one is 227 kB) is
/// joined in order, and a CMYK file is read through its own profile.
#[test]
fn a_profile_over_several_app2_segments_is_read_whole() {
    let profiled = include_bytes!("../../testdata/cmyk-profiled.jpg");
    let header = open(profiled, image::Limits::default()).unwrap();
    assert_eq!(header.icc.as_deref(), Some(DEFAULT_CMYK_PROFILE));
    let (image, warning) = decoded(profiled);
    assert_eq!(warning, None);
    let (plain, _) = decoded(include_bytes!("../../testdata/libjpeg-cmyk.jpg"));
    assert_eq!(image, plain);
}

/// A damaged profile: the pixels are used as sRGB, with a warning
/// that says the profile was not applied.
#[test]
fn a_damaged_profile_leaves_the_pixels_with_a_warning() {
    let mut profile = embedded_profile(ADOBE_RGB_JPEG);
    profile[36..40].copy_from_slice(b"xxxx"); // the 'acsp' signature
    let plain = include_bytes!("../../testdata/libjpeg-progressive.jpg");
    let damaged = with_icc_profile(plain, &profile);
    let (image, warning) = decoded(&damaged);
    assert_eq!(image, decoded_by_image(plain));
    let warning = warning.expect("a warning");
    assert_eq!(warning.kind(), "colour-profile-ignored");
    assert!(warning.to_string().contains("used as sRGB"), "{warning}");
}

/// An RGB profile on a grey JPEG does not fit it: ignored, said so.
#[test]
fn a_profile_for_another_colour_model_is_ignored_with_a_warning() {
    let grey = include_bytes!("../../testdata/libjpeg-gray.jpg");
    let tagged = with_icc_profile(grey, &embedded_profile(ADOBE_RGB_JPEG));
    let (image, warning) = decoded(&tagged);
    assert_eq!(image, decoded_by_image(grey));
    let warning = warning.expect("a warning").to_string();
    assert!(
        warning.contains("Rgb") && warning.contains("Gray"),
        "{warning}"
    );
}

/// Shrink-on-load reads CMYK through the same profile: each pixel of a
/// half-scale decode has the colour of the 2×2 pixels it stands for
/// (the last row and column, which stand for one, left out).
#[test]
fn a_shrunk_cmyk_decode_has_the_colours_of_the_full_one() {
    let cmyk = include_bytes!("../../testdata/libjpeg-cmyk.jpg");
    let full = decoded(cmyk).0.to_rgb8();
    let Some(Pixels::Ink(half)) = crate::decode::jpeg_scaled::decode_scaled(cmyk, 2) else {
        panic!("a half-scale CMYK decode");
    };
    let (half, warning) = to_srgb(Pixels::Ink(half), &Tag::Srgb);
    assert_eq!(warning, None);
    let half = half.to_rgb8();
    let (mut total, mut samples) = (0.0, 0.0);
    for y in 0..full.height() / 2 {
        for x in 0..full.width() / 2 {
            for c in 0..3 {
                let block: f64 = [(0, 0), (1, 0), (0, 1), (1, 1)]
                    .iter()
                    .map(|(dx, dy)| f64::from(full.get_pixel(2 * x + dx, 2 * y + dy)[c]))
                    .sum();
                total += (block / 4.0 - f64::from(half.get_pixel(x, y)[c])).abs();
                samples += 1.0;
            }
        }
    }
    let mean = total / samples;
    assert!(mean < 2.0, "{mean:.2} levels from the full decode");
}

/// A 4×4 PNG of `pixel` (grey when it has one sample) with the given
/// colour chunks.
fn png_with_chunks(
    pixel: &[u8],
    gamma: Option<f32>,
    chromaticities: Option<png::SourceChromaticities>,
    srgb: bool,
) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, 4, 4);
    encoder.set_color(if pixel.len() == 1 {
        png::ColorType::Grayscale
    } else {
        png::ColorType::Rgb
    });
    if let Some(gamma) = gamma {
        encoder.set_source_gamma(png::ScaledFloat::new(gamma));
    }
    if let Some(chromaticities) = chromaticities {
        encoder.set_source_chromaticities(chromaticities);
    }
    if srgb {
        encoder.set_source_srgb(png::SrgbRenderingIntent::Perceptual);
    }
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&pixel.repeat(16)).unwrap();
    writer.finish().unwrap();
    bytes
}

fn first_pixel(bytes: &[u8]) -> Vec<u8> {
    let (image, warning) = decoded(bytes);
    assert_eq!(warning, None);
    match image {
        DynamicImage::ImageLuma8(grey) => grey.get_pixel(0, 0).0.to_vec(),
        other => other.to_rgb8().get_pixel(0, 0).0.to_vec(),
    }
}

/// `gAMA` 1.0 says the values are linear light: half of it is sRGB 188,
/// in colour and in grey.
#[test]
fn a_png_gama_chunk_is_applied() {
    assert_eq!(
        first_pixel(&png_with_chunks(&[128, 128, 128], Some(1.0), None, false)),
        [188; 3]
    );
    assert_eq!(
        first_pixel(&png_with_chunks(&[128], Some(1.0), None, false)),
        [188]
    );
}

/// `cHRM` with red's and green's primaries swapped: full red is sRGB's
/// full green.
#[test]
fn a_png_chrm_chunk_is_applied() {
    let swapped =
        png::SourceChromaticities::new((0.3127, 0.3290), (0.30, 0.60), (0.64, 0.33), (0.15, 0.06));
    let pixel = first_pixel(&png_with_chunks(
        &[255, 0, 0],
        Some(1.0 / 2.2),
        Some(swapped),
        false,
    ));
    assert!(
        pixel[0] <= 2 && pixel[1] >= 253 && pixel[2] <= 2,
        "{pixel:?}"
    );
}

/// What tools that meant sRGB write (`gAMA` 1/2.2, sRGB's or no `cHRM`),
/// and an `sRGB` chunk whatever else is there, leave the pixels alone.
#[test]
fn png_chunks_that_mean_srgb_change_nothing() {
    let srgb =
        png::SourceChromaticities::new((0.3127, 0.3290), (0.64, 0.33), (0.30, 0.60), (0.15, 0.06));
    for png in [
        png_with_chunks(&[10, 128, 250], Some(0.45455), None, false),
        png_with_chunks(&[10, 128, 250], Some(0.45455), Some(srgb), false),
        png_with_chunks(&[10, 128, 250], None, Some(srgb), false),
        png_with_chunks(&[10, 128, 250], Some(1.0), None, true),
    ] {
        assert_eq!(first_pixel(&png), [10, 128, 250]);
    }
}

/// Chunk values that cannot describe colours: the pixels are used as
/// sRGB, with a warning.
#[test]
fn png_chunks_that_describe_no_colour_space_are_a_warning() {
    let flat =
        png::SourceChromaticities::new((0.3127, 0.3290), (0.64, 0.0), (0.30, 0.60), (0.15, 0.06));
    let bytes = png_with_chunks(&[10, 128, 250], Some(1.0), Some(flat), false);
    let (image, warning) = decoded(&bytes);
    assert_eq!(image.to_rgb8().get_pixel(0, 0).0, [10, 128, 250]);
    let warning = warning.expect("a warning").to_string();
    assert!(warning.contains("cHRM"), "{warning}");
}
