//! Colour: uploads tagged with a wide-gamut profile (or, AVIF, code
//! points) come out in sRGB, a
//! CMYK JPEG comes out as libvips reads it, and a profile that cannot be
//! used is a warning on the operation, not a failure.

use kiln_e2e::{Env, for_each_target};
use std::time::Duration;

/// Files written by libvips (`crates/kiln-image/testdata/make.sh`): its
/// 67×45 gradient converted into Adobe RGB and CMYK.
const ADOBE_RGB_JPEG: &[u8] =
    include_bytes!("../../../../crates/kiln-image/testdata/adobe-rgb.jpg");
const CMYK_JPEG: &[u8] = include_bytes!("../../../../crates/kiln-image/testdata/libjpeg-cmyk.jpg");
const CMYK_BY_LIBVIPS: &[u8] =
    include_bytes!("../../../../crates/kiln-image/testdata/libjpeg-cmyk-by-libvips.png");

/// Mean difference per sample between two images of the same size.
fn mean_difference(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: f64 = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| f64::from(x.abs_diff(*y)))
        .sum();
    total / a.len() as f64
}

/// The gradient make.sh draws, in sRGB.
fn make_sh_gradient() -> image::RgbImage {
    image::RgbImage::from_fn(67, 45, |x, y| {
        let level = |value: f64| value.floor() as u8;
        image::Rgb([level(f64::from(x) * 3.8), level(f64::from(y) * 5.6), 128])
    })
}

fn to_png(env: &Env, upload: &[u8]) -> image::RgbImage {
    let media_type = kiln_image::Format::sniff(upload).unwrap().media_type();
    let reply = env.submit("?ops=format(png)", media_type, upload, &[]);
    assert_eq!(
        reply.status,
        201,
        "{}: {}",
        env.name(),
        String::from_utf8_lossy(&reply.body)
    );
    image::load_from_memory(&reply.body).unwrap().to_rgb8()
}

/// An Adobe RGB photo comes back with its sRGB colours, with no profile.
#[test]
fn an_adobe_rgb_upload_comes_out_in_srgb() {
    for_each_target(Env::builder, |env| {
        let out = to_png(env, ADOBE_RGB_JPEG);
        let managed = mean_difference(&out, &make_sh_gradient());
        let as_if_srgb = mean_difference(
            &image::load_from_memory(ADOBE_RGB_JPEG).unwrap().to_rgb8(),
            &make_sh_gradient(),
        );
        assert!(
            managed < 2.5 && as_if_srgb > 4.0 * managed,
            "{}: {managed:.2} levels from the sRGB source; {as_if_srgb:.2} read as sRGB",
            env.name()
        );
    });
}

/// An AVIF tagged Display P3 by CICP code points alone (no ICC profile),
/// holding sRGB's pure red and green as P3 numbers, comes back pure red
/// and green.
#[test]
fn a_display_p3_avif_comes_out_in_srgb() {
    let avif = include_bytes!("../../../../crates/kiln-image/testdata/avif-p3-cicp.avif");
    for_each_target(Env::builder, |env| {
        let out = to_png(env, avif);
        for (x, expected) in [(10, [255, 0, 0]), (50, [0, 255, 0])] {
            let got = out.get_pixel(x, 30).0;
            let off = (0..3).map(|c| got[c].abs_diff(expected[c])).max();
            assert!(off <= Some(4), "{}: {got:?} at x={x}", env.name());
        }
    });
}

/// A CMYK JPEG without a profile reads as libvips reads it.
#[test]
fn a_cmyk_upload_comes_out_as_libvips_reads_it() {
    for_each_target(Env::builder, |env| {
        let out = to_png(env, CMYK_JPEG);
        let libvips = image::load_from_memory(CMYK_BY_LIBVIPS).unwrap().to_rgb8();
        let difference = mean_difference(&out, &libvips);
        assert!(difference < 1.0, "{}: {difference:.2} levels", env.name());
    });
}

/// A PNG whose iCCP chunk holds no profile.
fn png_with_a_broken_profile() -> Vec<u8> {
    use image::ImageEncoder;
    let image = image::RgbImage::from_pixel(16, 16, image::Rgb([200, 40, 40]));
    let mut bytes = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new(&mut bytes);
    encoder.set_icc_profile(vec![7; 300]).unwrap();
    encoder
        .write_image(&image, 16, 16, image::ExtendedColorType::Rgb8)
        .unwrap();
    bytes
}

/// A broken profile: the job succeeds with the pixels as they are, and the
/// operation carries the warning.
#[test]
fn a_broken_profile_is_a_warning_on_the_operation() {
    for_each_target(Env::builder, |env| {
        let accepted = env.submit_async("?ops=format(png)", &png_with_a_broken_profile());
        let finished =
            env.wait_until_finished(accepted.header("location"), Duration::from_secs(30));
        let operation = finished.json();
        assert_eq!(
            operation["status"],
            "succeeded",
            "{}: {operation}",
            env.name()
        );
        assert_eq!(
            operation["warnings"][0]["type"],
            "urn:kiln:warning:colour-profile-ignored",
            "{}: {operation}",
            env.name()
        );
        let image_path = operation["resourceLocation"].as_str().unwrap();
        let image = env.get(image_path, &[]);
        let pixel = *image::load_from_memory(&image.body)
            .unwrap()
            .to_rgb8()
            .get_pixel(5, 5);
        assert_eq!(pixel, image::Rgb([200, 40, 40]), "{}", env.name());
    });
}
