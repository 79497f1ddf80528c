//! Blur and sharpen, the operations whose cost grows with the frame (and
//! the sigma): on a large frame they run band by band, reporting progress
//! after each band, with the same result as one pass.
//!
//! A band is blurred together with a margin of rows above and below it as
//! deep as the kernel reaches, and only the band's own rows are kept, so
//! every kept row saw exactly the neighbours a whole-frame pass gives it
//! (the tests compare the two byte for byte).

use image::{DynamicImage, GenericImageView};

use crate::error::ImageError;
use crate::progress::Reporter;

/// Above this sigma `blur` uses a three-pass box blur, whose cost does not
/// grow with sigma; below it the exact Gaussian kernel is small enough.
const EXACT_BLUR_MAX_SIGMA: f32 = 4.0;

/// Samples per band, about two megapixels of RGBA: few enough bands that
/// the margins cost little, enough that a large frame reports often.
const BAND_SAMPLES: usize = 8 << 20;

/// A Gaussian blur: the exact kernel for small sigma, a three-pass box
/// approximation above [`EXACT_BLUR_MAX_SIGMA`]; banded on large frames.
pub(crate) fn gaussian_blur(
    image: &DynamicImage,
    sigma: f32,
    reporter: &mut Reporter<'_, '_>,
) -> Result<DynamicImage, ImageError> {
    if sigma > EXACT_BLUR_MAX_SIGMA {
        banded(image, box_blur_reach(sigma), reporter, |part| {
            part.fast_blur(sigma)
        })
    } else {
        banded(image, kernel_reach(sigma), reporter, |part| {
            part.blur(sigma)
        })
    }
}

/// Runs `blur`, whose result at a row depends on the rows up to `margin`
/// above and below it, band by band (or in one pass on a small frame).
fn banded(
    image: &DynamicImage,
    margin: u32,
    reporter: &mut Reporter<'_, '_>,
    blur: impl Fn(&DynamicImage) -> DynamicImage,
) -> Result<DynamicImage, ImageError> {
    let (width, height) = image.dimensions();
    let row_len = width as usize * usize::from(image.color().channel_count());
    let band = u32::try_from(BAND_SAMPLES / row_len.max(1))
        .unwrap_or(u32::MAX)
        .max(8 * margin);
    if height <= 2 * band {
        return Ok(blur(image));
    }
    let mut blurred = DynamicImage::new(width, height, image.color());
    let Some(out) = bytes_mut(&mut blurred) else {
        return Ok(blur(image));
    };
    let mut top = 0;
    while top < height {
        let bottom = (top + band).min(height);
        let from = top.saturating_sub(margin);
        let to = (bottom + margin).min(height);
        let part = blur(&image.crop_imm(0, from, width, to - from));
        let keep = (top - from) as usize * row_len..(bottom - from) as usize * row_len;
        out[top as usize * row_len..bottom as usize * row_len]
            .copy_from_slice(&part.as_bytes()[keep]);
        reporter.rows(bottom, height)?;
        top = bottom;
    }
    Ok(blurred)
}

/// How many rows above and below `image`'s exact Gaussian reads for
/// `sigma`: half its kernel, whose size follows `image` 0.25
/// (`GaussianBlurParameters::new_from_sigma`), plus one row of slack.
fn kernel_reach(sigma: f32) -> u32 {
    let size = ((((sigma - 0.8) / 0.3) + 1.0) * 2.0 + 1.0).max(3.0) as u32;
    (size | 1) / 2 + 1
}

/// How many rows above and below `image`'s box blur reads for `sigma`: the
/// radii of its three passes added up (their sizes follow `image` 0.25's
/// `boxes_for_gauss`), plus one row of slack. Its running sums are of
/// whole numbers in `f32`, exact, so a band's rows come out the same
/// wherever the band starts.
fn box_blur_reach(sigma: f32) -> u32 {
    const PASSES: f32 = 3.0;
    let ideal = (12.0 * sigma * sigma / PASSES + 1.0).sqrt();
    let mut lower = ideal.floor();
    if lower % 2.0 == 0.0 {
        lower -= 1.0;
    }
    // The widest box any pass can use, three times, bounds the reach.
    let widest = (lower + 2.0) as u32;
    3 * ((widest.saturating_sub(1) / 2) | 1) + 1
}

/// Unsharp mask: each colour channel moves away from its blurred value by
/// the difference, where that difference exceeds `threshold`. Unlike
/// `image`'s `unsharpen`, alpha is left alone (sharpening it would draw
/// halos around transparent edges) and large sigmas use the box blur.
pub(crate) fn unsharp_mask(
    image: DynamicImage,
    sigma: f32,
    threshold: u8,
    reporter: &mut Reporter<'_, '_>,
) -> Result<DynamicImage, ImageError> {
    let mut sharpened = gaussian_blur(&image, sigma, reporter)?;
    let Some(out) = bytes_mut(&mut sharpened) else {
        return Ok(image.unsharpen(sigma, i32::from(threshold)));
    };
    let source = image.as_bytes();
    let threshold = i16::from(threshold);
    // One flat pass over every sample, which the compiler vectorizes (SSE2,
    // simd128); walking pixel by pixel to skip alpha took twice as long as
    // the blur itself. Alpha is put back afterwards.
    for (blurred, &original) in out.iter_mut().zip(source) {
        *blurred = sharpened_sample(original, *blurred, threshold);
    }
    if image.color().has_alpha() {
        let channels = usize::from(image.color().channel_count());
        let pixels = out
            .chunks_exact_mut(channels)
            .zip(source.chunks_exact(channels));
        for (out, source) in pixels {
            out[channels - 1] = source[channels - 1];
        }
    }
    Ok(sharpened)
}

/// `original` moved away from `blurred` by their difference, if that
/// exceeds `threshold`.
fn sharpened_sample(original: u8, blurred: u8, threshold: i16) -> u8 {
    let original = i16::from(original);
    let difference = original - i16::from(blurred);
    if difference.abs() > threshold {
        (original + difference).clamp(0, 255) as u8
    } else {
        original as u8
    }
}

/// The samples of an 8-bit frame.
fn bytes_mut(image: &mut DynamicImage) -> Option<&mut [u8]> {
    match image {
        DynamicImage::ImageLuma8(buffer) => Some(buffer),
        DynamicImage::ImageLumaA8(buffer) => Some(buffer),
        DynamicImage::ImageRgb8(buffer) => Some(buffer),
        DynamicImage::ImageRgba8(buffer) => Some(buffer),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::{Progress, Stage};
    use crate::test_support::noise;
    use std::ops::ControlFlow;

    /// Blurs with progress reports counted.
    fn blurred(image: &DynamicImage, sigma: f32) -> (DynamicImage, usize) {
        let mut reports = 0;
        let mut count = |_: Progress| {
            reports += 1;
            ControlFlow::Continue(())
        };
        let mut reporter = Reporter::start(&mut count, Stage::Apply { index: 0, of: 1 }).unwrap();
        let result = gaussian_blur(image, sigma, &mut reporter).unwrap();
        (result, reports)
    }

    #[test]
    fn a_banded_blur_equals_a_whole_frame_blur_byte_for_byte() {
        // 2048 wide RGBA: bands of 1024 rows (1184 at sigma 50), so 2500
        // rows make three bands.
        let image = noise(2048, 2500);
        for sigma in [0.5, 1.0, 2.3, 4.0] {
            let (banded, reports) = blurred(&image, sigma);
            assert!(reports > 2, "sigma {sigma}: {reports} reports, not banded");
            assert!(banded == image.blur(sigma), "sigma {sigma}: bands differ");
        }
        for sigma in [4.5, 10.0, 27.5, 50.0] {
            let (banded, reports) = blurred(&image, sigma);
            assert!(reports > 2, "sigma {sigma}: {reports} reports, not banded");
            assert!(
                banded == image.fast_blur(sigma),
                "sigma {sigma}: bands differ"
            );
        }
    }

    /// The unsharp mask pixel by pixel, as Kiln computed it before its
    /// flat pass: each colour moves away from the blurred one by their
    /// difference when that exceeds the threshold; alpha stays.
    fn unsharp_pixel_by_pixel(image: &DynamicImage, sigma: f32, threshold: i16) -> Vec<u8> {
        let blurred = image.blur(sigma);
        let channels = usize::from(image.color().channel_count());
        let colors = channels - usize::from(image.color().has_alpha());
        let mut out = Vec::new();
        let pixels = image
            .as_bytes()
            .chunks_exact(channels)
            .zip(blurred.as_bytes().chunks_exact(channels));
        for (source, blurred) in pixels {
            for (channel, (&original, &blurred)) in source.iter().zip(blurred).enumerate() {
                let difference = i16::from(original) - i16::from(blurred);
                out.push(if channel < colors && difference.abs() > threshold {
                    (i16::from(original) + difference).clamp(0, 255) as u8
                } else {
                    original
                });
            }
        }
        out
    }

    #[test]
    fn sharpening_every_layout_matches_the_pixel_by_pixel_rule() {
        let rgba = noise(300, 200);
        let layouts = [
            DynamicImage::ImageLuma8(rgba.to_luma8()),
            DynamicImage::ImageLumaA8(rgba.to_luma_alpha8()),
            DynamicImage::ImageRgb8(rgba.to_rgb8()),
            rgba,
        ];
        let mut ignore = crate::test_support::ignore_progress();
        let mut reporter = Reporter::start(&mut ignore, Stage::Apply { index: 0, of: 1 }).unwrap();
        for image in layouts {
            for threshold in [0, 12] {
                let ours = unsharp_mask(image.clone(), 1.5, threshold, &mut reporter).unwrap();
                assert_eq!(ours.color(), image.color());
                assert!(
                    ours.as_bytes() == unsharp_pixel_by_pixel(&image, 1.5, i16::from(threshold)),
                    "{:?}, threshold {threshold}",
                    image.color()
                );
            }
        }
    }

    #[test]
    fn a_small_frame_is_blurred_in_one_pass() {
        let image = noise(64, 48);
        let (result, reports) = blurred(&image, 2.0);
        assert_eq!(reports, 1, "only the stage start");
        assert_eq!(result, image.blur(2.0));
    }
}
