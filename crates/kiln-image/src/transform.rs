//! Applying one operation to a decoded frame.
//!
//! Frames arrive in one of the four 8-bit layouts `decode` leaves (`L8`,
//! `La8`, `Rgb8`, `Rgba8`); operations that can work in place do, so a
//! frame is copied only where the operation needs a new buffer (rotation by
//! a quarter, crop, blur, sharpen, resize, grayscale of a colour frame).
//! Blur and sharpen live in `blur`.

use image::{DynamicImage, imageops};

use crate::blur::{gaussian_blur, unsharp_mask};
use crate::error::ImageError;
use crate::ops::{Axis, Colour, Op, Rotation};
use crate::plan::check_crop;
use crate::progress::Reporter;
use crate::resize::resize;

/// Runs `$body` on the image buffer of each 8-bit layout in place, or
/// replaces any other layout with `$fallback(&image)`.
macro_rules! in_place {
    ($image:expr, |$buffer:ident| $body:expr, $fallback:expr) => {
        match $image {
            DynamicImage::ImageLuma8($buffer) => $body,
            DynamicImage::ImageLumaA8($buffer) => $body,
            DynamicImage::ImageRgb8($buffer) => $body,
            DynamicImage::ImageRgba8($buffer) => $body,
            other => *other = $fallback(other),
        }
    };
}

/// Applies `op` to `image`. `format` and `quality` leave it unchanged; they
/// take effect when encoding.
/// Blur and sharpen report their progress through `reporter`, row band by
/// row band; the other operations take too little time to need it.
pub(crate) fn apply(
    mut image: DynamicImage,
    op: &Op,
    background: Colour,
    reporter: &mut Reporter<'_, '_>,
) -> Result<DynamicImage, ImageError> {
    match *op {
        Op::Resize {
            width,
            height,
            fit,
            gravity,
        } => return resize(image, (width, height), fit, gravity, background),
        Op::Crop {
            x,
            y,
            width,
            height,
        } => {
            check_crop((image.width(), image.height()), op)?;
            return Ok(image.crop_imm(x, y, width, height));
        }
        Op::Rotate(Rotation::Deg90) => return Ok(image.rotate90()),
        Op::Rotate(Rotation::Deg270) => return Ok(image.rotate270()),
        Op::Rotate(Rotation::Deg180) => in_place!(
            &mut image,
            |buffer| imageops::rotate180_in_place(buffer),
            DynamicImage::rotate180
        ),
        Op::Flip(Axis::Horizontal) => in_place!(
            &mut image,
            |buffer| imageops::flip_horizontal_in_place(buffer),
            DynamicImage::fliph
        ),
        Op::Flip(Axis::Vertical) => in_place!(
            &mut image,
            |buffer| imageops::flip_vertical_in_place(buffer),
            DynamicImage::flipv
        ),
        Op::Blur { sigma } => return gaussian_blur(&image, sigma, reporter),
        Op::Sharpen { sigma, threshold } => return unsharp_mask(image, sigma, threshold, reporter),
        Op::Grayscale if !image.color().has_color() => {}
        Op::Grayscale => return Ok(image.grayscale()),
        Op::Brightness(value) => in_place!(
            &mut image,
            |buffer| imageops::colorops::brighten_in_place(buffer, i32::from(value)),
            |image: &DynamicImage| image.brighten(i32::from(value))
        ),
        Op::Contrast(value) => in_place!(
            &mut image,
            |buffer| imageops::colorops::contrast_in_place(buffer, value),
            |image: &DynamicImage| image.adjust_contrast(value)
        ),
        Op::Format(_) | Op::AutoFormat | Op::Quality(_) | Op::Background(_) => {}
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::parse_ops;
    use crate::test_support::gradient;
    use image::{GenericImageView, Rgba};

    fn applied(spec: &str, image: DynamicImage) -> Result<DynamicImage, ImageError> {
        let mut ignore = crate::test_support::ignore_progress();
        let mut reporter = Reporter::start(&mut ignore, crate::progress::Stage::Encode)?;
        let ops = parse_ops(spec).unwrap();
        let background = crate::plan::output_background(&ops);
        ops.iter().try_fold(image, |image, op| {
            apply(image, op, background, &mut reporter)
        })
    }

    fn photo() -> DynamicImage {
        DynamicImage::ImageRgb8(gradient(64, 48))
    }

    #[test]
    fn rotate_by_a_quarter_swaps_dimensions() {
        assert_eq!(
            applied("rotate(90)", photo()).unwrap().dimensions(),
            (48, 64)
        );
        assert_eq!(
            applied("rotate(270)", photo()).unwrap().dimensions(),
            (48, 64)
        );
        assert_eq!(
            applied("rotate(180)", photo()).unwrap().dimensions(),
            (64, 48)
        );
    }

    #[test]
    fn rotate_180_moves_the_top_left_pixel_to_the_bottom_right() {
        let before = photo();
        let after = applied("rotate(180)", before.clone()).unwrap();
        assert_eq!(after.get_pixel(63, 47), before.get_pixel(0, 0));
    }

    #[test]
    fn flip_h_mirrors_left_to_right() {
        let before = photo();
        let after = applied("flip(h)", before.clone()).unwrap();
        assert_eq!(after.get_pixel(63, 5), before.get_pixel(0, 5));
    }

    #[test]
    fn flip_v_turns_upside_down() {
        let before = photo();
        let after = applied("flip(v)", before.clone()).unwrap();
        assert_eq!(after.get_pixel(5, 47), before.get_pixel(5, 0));
    }

    #[test]
    fn crop_keeps_the_requested_rectangle() {
        let before = photo();
        let after = applied("crop(x=10,y=20,w=5,h=4)", before.clone()).unwrap();
        assert_eq!(after.dimensions(), (5, 4));
        assert_eq!(after.get_pixel(0, 0), before.get_pixel(10, 20));
    }

    #[test]
    fn crop_outside_the_image_is_an_invalid_op() {
        let error = applied("crop(x=60,y=0,w=5,h=4)", photo()).unwrap_err();
        assert!(matches!(error, ImageError::InvalidOp(m) if m.contains("64x48")));
    }

    #[test]
    fn grayscale_drops_colour_and_keeps_alpha() {
        assert_eq!(
            applied("grayscale", photo()).unwrap().color(),
            image::ColorType::L8
        );
        let rgba = DynamicImage::new_rgba8(4, 4);
        assert_eq!(
            applied("grayscale", rgba).unwrap().color(),
            image::ColorType::La8
        );
    }

    #[test]
    fn brightness_raises_every_channel() {
        let after = applied("brightness(10)", photo()).unwrap();
        let Rgba([r, g, b, _]) = after.get_pixel(0, 0);
        assert_eq!((r, g, b), (10, 10, 138));
    }

    #[test]
    fn contrast_spreads_channels_away_from_the_middle() {
        let after = applied("contrast(50)", photo()).unwrap();
        let Rgba([r, ..]) = after.get_pixel(0, 0);
        let Rgba([r_end, ..]) = after.get_pixel(63, 0);
        assert_eq!((r, r_end), (0, 255));
        let Rgba([r_mid, ..]) = after.get_pixel(20, 0);
        let Rgba([r_mid_before, ..]) = photo().get_pixel(20, 0);
        assert!(r_mid < r_mid_before, "{r_mid} vs {r_mid_before}");
    }

    #[test]
    fn blur_smooths_a_hard_edge_at_small_and_large_sigma() {
        let edge = DynamicImage::ImageLuma8(image::GrayImage::from_fn(64, 8, |x, _| {
            image::Luma([if x < 32 { 0 } else { 255 }])
        }));
        for spec in ["blur(sigma=1)", "blur(sigma=20)"] {
            let after = applied(spec, edge.clone()).unwrap();
            let Rgba([left, ..]) = after.get_pixel(31, 4);
            assert!(left > 0 && left < 255, "{spec}: {left}");
        }
    }

    #[test]
    fn sharpen_steepens_a_soft_edge() {
        let ramp = DynamicImage::ImageLuma8(image::GrayImage::from_fn(64, 8, |x, _| {
            image::Luma([(x.clamp(24, 40) - 24) as u8 * 15 + 8])
        }));
        let after = applied("sharpen(sigma=2)", ramp.clone()).unwrap();
        let Rgba([before, ..]) = ramp.get_pixel(25, 4);
        let Rgba([sharpened, ..]) = after.get_pixel(25, 4);
        assert!(sharpened < before, "{sharpened} vs {before}");
    }

    #[test]
    fn sharpen_leaves_alpha_alone() {
        let image = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(16, 16, |x, _| {
            Rgba([128, 128, 128, if x < 8 { 0 } else { 255 }])
        }));
        let after = applied("sharpen(sigma=1)", image.clone()).unwrap();
        assert_eq!(after.get_pixel(7, 4), image.get_pixel(7, 4));
        assert_eq!(after.get_pixel(8, 4), image.get_pixel(8, 4));
    }

    #[test]
    fn sharpen_below_the_threshold_changes_nothing() {
        let after = applied("sharpen(sigma=1,threshold=255)", photo()).unwrap();
        assert_eq!(after, photo());
    }

    #[test]
    fn sharpen_with_a_large_sigma_steepens_a_soft_edge() {
        let ramp = DynamicImage::ImageLuma8(image::GrayImage::from_fn(128, 8, |x, _| {
            image::Luma([(x.clamp(40, 88) - 40) as u8 * 5 + 8])
        }));
        let after = applied("sharpen(sigma=12)", ramp.clone()).unwrap();
        let Rgba([before, ..]) = ramp.get_pixel(42, 4);
        let Rgba([sharpened, ..]) = after.get_pixel(42, 4);
        assert!(sharpened < before, "{sharpened} vs {before}");
    }

    #[test]
    fn format_and_quality_leave_pixels_unchanged() {
        let before = photo();
        assert_eq!(
            applied("format(png),quality(5)", before.clone()).unwrap(),
            before
        );
    }
}
