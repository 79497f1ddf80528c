//! Colour management: every frame leaves decoding in sRGB.
//!
//! An embedded ICC profile says what a file's numbers mean: the same
//! `(200, 40, 40)` is a duller red in sRGB than in Display P3 or Adobe RGB.
//! Kiln converts the pixels from the file's profile to sRGB and writes no
//! profile, as sharp and imgproxy do by default (and `vips thumbnail
//! --export-profile srgb`), so that every viewer shows the same colours.
//! The transform is moxcms's (pure Rust, already in the tree through
//! `image`), with libvips's default rendering intent, relative
//! colorimetric, falling back to the profile's other intents when it lacks
//! that one.
//!
//! - No profile, or one that maps every colour to itself within one level
//!   (an sRGB profile, whatever its encoding): the pixels are left as they
//!   are, at the cost of building the transform and trying it on a grid of
//!   colours.
//! - CMYK and YCCK JPEGs (print workflows, stock photos) go through their
//!   embedded profile, or through [`DEFAULT_CMYK_PROFILE`] when they have
//!   none, as libvips does.
//! - A profile that cannot be read or applied (damaged, or for another
//!   colour model than the pixels'): the pixels are used as sRGB (CMYK through
//!   the default profile) and the job still succeeds, with a [`Warning`].
//!
//! # Where it runs, and what it costs
//!
//! On the decoded frame, after shrink-on-load and before any operation, so
//! that every operation (`grayscale`, `brightness`, `blur`) works on sRGB
//! values and CMYK never reaches an RGB operation. Measured in Wasm on
//! Spin 4.0.2 (the benchmark's pipeline component, three alternating
//! rounds), a 16 MP (5120×3200) photo converted to Adobe RGB, with and
//! without its profile: re-encoding it at full size costs 96 ms more (the
//! decode stage 281–292 against 186–193 ms; the job 487–504 against
//! 396–410 ms, +24%); `resize(w=800)`, decoded at 1/4 scale, 5.5 ms more
//! (89–92 against 84–87 ms, +5%). Running it after a leading downscale
//! instead would save up to those 96 ms where there is no shrink-on-load
//! (PNG, WebP), at the price of resizing in the file's space: libvips's
//! Lanczos3 to 800 px in either order differs by 0.32 levels on average and
//! 14 at most, on edges. The frame is converted in place, one row at a
//! time: no second frame.

use image::{DynamicImage, RgbImage};
use moxcms::{
    ColorProfile, DataColorSpace, Layout, RenderingIntent, Transform8BitExecutor, TransformOptions,
};

/// The profile CMYK JPEGs without their own are read with: libvips's
/// fallback CMYK profile, "Chemical proof" by Graeme W. Gill, released into
/// the public domain, less its measurement data (see `profiles/README.md`).
pub(crate) const DEFAULT_CMYK_PROFILE: &[u8] = include_bytes!("../profiles/cmyk.icm");

/// Something the pipeline did differently from what the file asked for,
/// which the client should hear of: the job still succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// The embedded ICC profile could not be read or applied: the pixels
    /// were used as sRGB, or a CMYK file's through the default CMYK
    /// profile. Says why.
    ProfileIgnored(String),
}

impl Warning {
    /// A short, stable name for the kind of warning, for clients to match.
    pub fn kind(&self) -> &'static str {
        match self {
            Warning::ProfileIgnored(_) => "colour-profile-ignored",
        }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::ProfileIgnored(why) => write!(f, "the embedded colour profile {why}"),
        }
    }
}

/// A decoded frame before colour management.
pub(crate) enum Pixels {
    /// Grey or RGB values, with or without alpha, 8 bits a channel.
    Device(DynamicImage),
    /// CMYK ink amounts (0 is no ink), 4 bytes a pixel, row after row.
    Ink(InkImage),
}

/// CMYK ink amounts.
pub(crate) struct InkImage {
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// C, M, Y, K per pixel, 0 for no ink.
    pub(crate) ink: Vec<u8>,
}

/// `pixels` in sRGB, through `icc` (the file's embedded profile) when there
/// is one; see the module docs for what happens when it cannot be used.
pub(crate) fn to_srgb(pixels: Pixels, icc: Option<&[u8]>) -> (DynamicImage, Option<Warning>) {
    match pixels {
        Pixels::Device(image) => match icc {
            None => (image, None),
            Some(icc) => device_to_srgb(image, icc),
        },
        Pixels::Ink(ink) => ink_to_srgb(ink, icc),
    }
}

fn device_to_srgb(mut image: DynamicImage, icc: &[u8]) -> (DynamicImage, Option<Warning>) {
    let profile = match ColorProfile::new_from_slice(icc) {
        Ok(profile) => profile,
        Err(err) => return (image, Some(unreadable(&err, AS_SRGB))),
    };
    let (layout, expected) = match &image {
        DynamicImage::ImageRgb8(_) => (Layout::Rgb, DataColorSpace::Rgb),
        DynamicImage::ImageRgba8(_) => (Layout::Rgba, DataColorSpace::Rgb),
        DynamicImage::ImageLuma8(_) => (Layout::Gray, DataColorSpace::Gray),
        DynamicImage::ImageLumaA8(_) => (Layout::GrayAlpha, DataColorSpace::Gray),
        _ => unreachable!("decoding reduces every frame to 8-bit grey or RGB"),
    };
    if profile.color_space != expected {
        let why = format!(
            "describes {:?} colour, not the image's {expected:?}; {AS_SRGB}",
            profile.color_space
        );
        return (image, Some(Warning::ProfileIgnored(why)));
    }
    let target = if expected == DataColorSpace::Gray {
        srgb_grey()
    } else {
        ColorProfile::new_srgb()
    };
    let transform = match transform(&profile, layout, &target, layout) {
        Ok(transform) => transform,
        Err(err) => return (image, Some(unusable(&err, AS_SRGB))),
    };
    if maps_every_colour_to_itself(transform.as_ref(), layout) {
        return (image, None);
    }
    let width = image.width() as usize;
    let row = width * layout.channels();
    let pixels: &mut [u8] = match &mut image {
        DynamicImage::ImageRgb8(frame) => frame,
        DynamicImage::ImageRgba8(frame) => frame,
        DynamicImage::ImageLuma8(frame) => frame,
        DynamicImage::ImageLumaA8(frame) => frame,
        _ => unreachable!("matched above"),
    };
    transform_rows_in_place(transform.as_ref(), pixels, row, row)
        .expect("rows fit their own layout's transform");
    (image, None)
}

fn ink_to_srgb(image: InkImage, icc: Option<&[u8]>) -> (DynamicImage, Option<Warning>) {
    let embedded = icc.map(|icc| {
        ColorProfile::new_from_slice(icc)
            .map_err(|err| unreadable(&err, AS_DEFAULT_CMYK))
            .and_then(|profile| {
                if profile.color_space == DataColorSpace::Cmyk {
                    Ok(profile)
                } else {
                    Err(Warning::ProfileIgnored(format!(
                        "describes {:?} colour, not the image's CMYK; {AS_DEFAULT_CMYK}",
                        profile.color_space
                    )))
                }
            })
    });
    let (profile, mut warning) = match embedded {
        Some(Ok(profile)) => (profile, None),
        Some(Err(warning)) => (default_cmyk_profile(), Some(warning)),
        None => (default_cmyk_profile(), None),
    };
    let built = transform(
        &profile,
        Layout::Rgba,
        &ColorProfile::new_srgb(),
        Layout::Rgb,
    )
    .or_else(|err| {
        // The embedded profile is unusable: the default one is not.
        warning = Some(unusable(&err, AS_DEFAULT_CMYK));
        transform(
            &default_cmyk_profile(),
            Layout::Rgba,
            &ColorProfile::new_srgb(),
            Layout::Rgb,
        )
    })
    .expect("the default CMYK profile converts to sRGB (tested)");
    let InkImage {
        width,
        height,
        mut ink,
    } = image;
    let row = width as usize;
    transform_rows_in_place(built.as_ref(), &mut ink, row * 4, row * 3)
        .expect("CMYK rows fit their own transform");
    ink.truncate(row * height as usize * 3);
    let rgb = RgbImage::from_raw(width, height, ink).expect("3 bytes a pixel");
    (DynamicImage::ImageRgb8(rgb), warning)
}

fn default_cmyk_profile() -> ColorProfile {
    ColorProfile::new_from_slice(DEFAULT_CMYK_PROFILE).expect("the default CMYK profile parses")
}

/// A grey profile with sRGB's tone curve: grey images stay grey, with the
/// brightness sRGB would give them.
fn srgb_grey() -> ColorProfile {
    let mut grey = ColorProfile::new_gray_with_gamma(1.0);
    grey.gray_trc = ColorProfile::new_srgb().red_trc;
    grey
}

/// The transform from `from` to `to`, in libvips's default intent when the
/// profile has it, else in the first of its other intents it has.
fn transform(
    from: &ColorProfile,
    from_layout: Layout,
    to: &ColorProfile,
    to_layout: Layout,
) -> Result<std::sync::Arc<Transform8BitExecutor>, moxcms::CmsError> {
    let intents = [
        RenderingIntent::RelativeColorimetric,
        RenderingIntent::Perceptual,
        RenderingIntent::Saturation,
        RenderingIntent::AbsoluteColorimetric,
    ];
    let mut last = None;
    for rendering_intent in intents {
        let options = TransformOptions {
            rendering_intent,
            ..TransformOptions::default()
        };
        match from.create_transform_8bit(from_layout, to, to_layout, options) {
            Ok(transform) => return Ok(transform),
            Err(err) => last = Some(err),
        }
    }
    Err(last.expect("at least one intent was tried"))
}

/// Runs `transform` over `pixels` one row at a time, writing each result
/// row (`out_row` bytes, no longer than `in_row`) where the rows of the
/// result belong: in place when both are the same length, packed towards
/// the start when the result is narrower (CMYK to RGB). No second frame.
fn transform_rows_in_place(
    transform: &Transform8BitExecutor,
    pixels: &mut [u8],
    in_row: usize,
    out_row: usize,
) -> Result<(), moxcms::CmsError> {
    debug_assert!(out_row <= in_row);
    if in_row == 0 {
        return Ok(());
    }
    let rows = pixels.len() / in_row;
    let mut converted = vec![0; out_row];
    for index in 0..rows {
        let source = index * in_row;
        transform.transform(&pixels[source..source + in_row], &mut converted)?;
        // Row `index` of the result ends at or before row `index + 1` of
        // the source starts, so no row is overwritten before it is read.
        let target = index * out_row;
        pixels[target..target + out_row].copy_from_slice(&converted);
    }
    Ok(())
}

/// Whether `transform` changes no colour of a 16-level grid (per channel)
/// by more than one level: then applying it would change nothing a viewer
/// could see, and costs a pass over the frame.
fn maps_every_colour_to_itself(transform: &Transform8BitExecutor, layout: Layout) -> bool {
    let levels: Vec<u8> = (0..16u8).map(|step| step * 17).collect();
    let grid: Vec<u8> = match layout {
        Layout::Gray => levels.clone(),
        Layout::GrayAlpha => levels.iter().flat_map(|&v| [v, 255]).collect(),
        Layout::Rgb | Layout::Rgba => {
            let alpha = layout == Layout::Rgba;
            let mut grid = Vec::new();
            for &r in &levels {
                for &g in &levels {
                    for &b in &levels {
                        grid.extend_from_slice(&[r, g, b]);
                        if alpha {
                            grid.push(255);
                        }
                    }
                }
            }
            grid
        }
        _ => return false,
    };
    let mut out = vec![0; grid.len()];
    transform.transform(&grid, &mut out).is_ok()
        && grid.iter().zip(&out).all(|(a, b)| a.abs_diff(*b) <= 1)
}

/// What was done instead of applying a profile: RGB and grey pixels are
/// taken as sRGB, CMYK goes through the default CMYK profile.
const AS_SRGB: &str = "the pixels were used as sRGB";
const AS_DEFAULT_CMYK: &str = "the default CMYK profile was used";

fn unreadable(err: &moxcms::CmsError, instead: &str) -> Warning {
    Warning::ProfileIgnored(format!("could not be read ({err}); {instead}"))
}

fn unusable(err: &moxcms::CmsError, instead: &str) -> Warning {
    Warning::ProfileIgnored(format!("could not be applied ({err}); {instead}"))
}

#[cfg(test)]
mod tests {
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

    const ADOBE_RGB_JPEG: &[u8] = include_bytes!("../testdata/adobe-rgb.jpg");

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
            ("ProPhoto WebP", include_bytes!("../testdata/prophoto.webp")),
            (
                "red/green-swapped PNG",
                include_bytes!("../testdata/swapped-red-green.png"),
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
        let tagged = include_bytes!("../testdata/srgb-tagged.jpg");
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
        let cmyk = include_bytes!("../testdata/libjpeg-cmyk.jpg");
        let (image, warning) = decoded(cmyk);
        assert_eq!(warning, None);
        let libvips =
            image::load_from_memory(include_bytes!("../testdata/libjpeg-cmyk-by-libvips.png"))
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
        let profiled = include_bytes!("../testdata/cmyk-profiled.jpg");
        let header = open(profiled, image::Limits::default()).unwrap();
        assert_eq!(header.icc.as_deref(), Some(DEFAULT_CMYK_PROFILE));
        let (image, warning) = decoded(profiled);
        assert_eq!(warning, None);
        let (plain, _) = decoded(include_bytes!("../testdata/libjpeg-cmyk.jpg"));
        assert_eq!(image, plain);
    }

    /// A damaged profile: the pixels are used as sRGB, with a warning
    /// that says the profile was not applied.
    #[test]
    fn a_damaged_profile_leaves_the_pixels_with_a_warning() {
        let mut profile = embedded_profile(ADOBE_RGB_JPEG);
        profile[36..40].copy_from_slice(b"xxxx"); // the 'acsp' signature
        let plain = include_bytes!("../testdata/libjpeg-progressive.jpg");
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
        let grey = include_bytes!("../testdata/libjpeg-gray.jpg");
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
        let cmyk = include_bytes!("../testdata/libjpeg-cmyk.jpg");
        let full = decoded(cmyk).0.to_rgb8();
        let Some(Pixels::Ink(half)) = crate::decode::jpeg_scaled::decode_scaled(cmyk, 2) else {
            panic!("a half-scale CMYK decode");
        };
        let (half, warning) = to_srgb(Pixels::Ink(half), None);
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
}
