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
//! that one. Against the other pure-Rust CMS, Mozilla's `qcms` 0.3, on
//! the 16 MP photo's pixels from Adobe RGB to sRGB (8-bit RGB, the
//! profile parsed and the transform built each time, best of three):
//! natively 27.2 against 29.7 ms, in Wasm (wasmtime 48, simd128)
//! 97.4 against 116.3 ms; the two agree within 0.07 levels on average and
//! 2 at most.
//!
//! - No profile, or one that maps every colour to itself within one level
//!   (an sRGB profile, whatever its encoding): the pixels are left as they
//!   are, at the cost of building the transform and trying it on a grid of
//!   colours.
//! - A PNG without a profile but with `gAMA` or `cHRM` chunks goes through
//!   the space they describe ([`png_chunks`]); `sRGB` means sRGB.
//! - An AVIF without a profile whose CICP code points name a wide gamut
//!   (Display P3, BT.2020) goes through the profile moxcms builds from
//!   them ([`Cicp`]); HDR (PQ, HLG) is used as it is, with a warning: it
//!   needs tone mapping, not a profile.
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

mod png_chunks;

pub(crate) use png_chunks::colour_chunks as png_colour_chunks;

use image::{DynamicImage, RgbImage};
use moxcms::{
    CicpColorPrimaries, CicpProfile, ColorProfile, DataColorSpace, Layout, MatrixCoefficients,
    RenderingIntent, TransferCharacteristics, Transform8BitExecutor, TransformOptions,
};

/// The profile CMYK JPEGs without their own are read with: libvips's
/// fallback CMYK profile, "Chemical proof" by Graeme W. Gill, released into
/// the public domain, less its measurement data (see `profiles/README.md`).
pub(crate) const DEFAULT_CMYK_PROFILE: &[u8] = include_bytes!("../../profiles/cmyk.icm");

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

/// What a file says its numbers mean.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tag {
    /// sRGB: nothing said (the web's default), or PNG's `sRGB` chunk.
    Srgb,
    /// An embedded ICC profile, as stored.
    Icc(Vec<u8>),
    /// A PNG's `gAMA` and `cHRM` chunks, in a PNG with neither `iCCP` nor
    /// `sRGB`.
    Png(png_chunks::Colorimetry),
    /// An AVIF's CICP code points (ITU-T H.273), in a file without an ICC
    /// profile.
    Cicp(Cicp),
}

/// A colour space as ITU-T H.273 code points, as AV1 and AVIF's `nclx`
/// name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cicp {
    /// Colour primaries: 1 BT.709 (sRGB's), 9 BT.2020, 12 Display P3…
    pub(crate) primaries: u8,
    /// Transfer characteristics: 13 sRGB, 1 BT.709, 16 PQ, 18 HLG…
    pub(crate) transfer: u8,
}

impl Cicp {
    /// PQ or HLG: high dynamic range, which needs tone mapping, not a
    /// profile, to become sRGB.
    pub(crate) fn is_hdr(self) -> bool {
        const PQ: u8 = 16;
        const HLG: u8 = 18;
        matches!(self.transfer, PQ | HLG)
    }

    /// The profile the code points describe (an unspecified transfer is
    /// taken as sRGB's), or why there is none.
    fn profile(self) -> Result<ColorProfile, Warning> {
        const UNSPECIFIED: u8 = 2;
        const SRGB: u8 = 13;
        let Cicp {
            primaries,
            transfer,
        } = self;
        let ignored = |why: &str| {
            Warning::ProfileIgnored(format!(
                "(CICP colour primaries {primaries}, transfer characteristics {transfer}) {why}; {AS_SRGB}"
            ))
        };
        if self.is_hdr() {
            return Err(ignored("is HDR, which is not tone-mapped"));
        }
        let transfer = if transfer == UNSPECIFIED {
            SRGB
        } else {
            transfer
        };
        let (Ok(color_primaries), Ok(transfer_characteristics)) = (
            CicpColorPrimaries::try_from(primaries),
            TransferCharacteristics::try_from(transfer),
        ) else {
            return Err(ignored("is not a known colour space"));
        };
        let profile = ColorProfile::new_from_cicp(CicpProfile {
            color_primaries,
            transfer_characteristics,
            matrix_coefficients: MatrixCoefficients::Bt709,
            full_range: true,
        });
        // moxcms leaves the basic profile as it was when the code points
        // have no chromaticities or curve (reserved, unspecified).
        match (&profile.cicp, &profile.red_trc) {
            (Some(_), Some(_)) => Ok(profile),
            _ => Err(ignored("is not a known colour space")),
        }
    }
}

impl Tag {
    /// The embedded ICC profile, if that is what the file has.
    pub(crate) fn icc(&self) -> Option<&[u8]> {
        match self {
            Tag::Icc(icc) => Some(icc),
            _ => None,
        }
    }
}

/// `pixels` in sRGB, through what `tag` says they are; see the module docs
/// for what happens when that cannot be used.
pub(crate) fn to_srgb(pixels: Pixels, tag: &Tag) -> (DynamicImage, Option<Warning>) {
    match pixels {
        Pixels::Ink(ink) => ink_to_srgb(ink, tag.icc()),
        Pixels::Device(image) => {
            let grey = !image.color().has_color();
            let profile = match tag {
                Tag::Srgb => return (image, None),
                Tag::Icc(icc) => {
                    ColorProfile::new_from_slice(icc).map_err(|err| unreadable(&err, AS_SRGB))
                }
                Tag::Png(colorimetry) => match colorimetry.profile(grey) {
                    None => return (image, None),
                    Some(profile) => profile,
                },
                Tag::Cicp(cicp) => cicp.profile(),
            };
            match profile {
                Ok(profile) => device_to_srgb(image, &profile),
                Err(warning) => (image, Some(warning)),
            }
        }
    }
}

fn device_to_srgb(
    mut image: DynamicImage,
    profile: &ColorProfile,
) -> (DynamicImage, Option<Warning>) {
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
    let transform = match transform(profile, layout, &target, layout) {
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
pub(crate) const AS_SRGB: &str = "the pixels were used as sRGB";
const AS_DEFAULT_CMYK: &str = "the default CMYK profile was used";

pub(crate) fn unreadable(err: &moxcms::CmsError, instead: &str) -> Warning {
    Warning::ProfileIgnored(format!("could not be read ({err}); {instead}"))
}

fn unusable(err: &moxcms::CmsError, instead: &str) -> Warning {
    Warning::ProfileIgnored(format!("could not be applied ({err}); {instead}"))
}

#[cfg(test)]
mod tests;
