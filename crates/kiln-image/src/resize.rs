//! Resizing, always through `fast_image_resize` (Lanczos3, SIMD kernels
//! including Wasm simd128), and the geometry of `resize`.

use fast_image_resize::pixels::{U8, U8x2, U8x3, U8x4};
use fast_image_resize::{
    FilterType, IntoImageView, IntoImageViewMut, PixelTrait, ResizeAlg, ResizeOptions, Resizer,
};
use image::{
    ColorType, DynamicImage, GenericImageView, GrayAlphaImage, GrayImage, Luma, LumaA, Rgb,
    RgbImage, Rgba, RgbaImage, imageops,
};

use crate::error::ImageError;
use crate::ops::{Colour, Fit, Gravity};
use crate::smartcrop;

/// The size `resize(w, h, fit)` turns a `source`-sized image into.
///
/// With one side given the other keeps the aspect ratio (rounded, at least
/// 1). With both, `contain` fits inside the box keeping the aspect ratio,
/// while `cover`, `fill` and `pad` produce exactly the box.
pub fn target_size(
    source: (u32, u32),
    width: Option<u32>,
    height: Option<u32>,
    fit: Fit,
) -> (u32, u32) {
    let (sw, sh) = (u64::from(source.0.max(1)), u64::from(source.1.max(1)));
    // `side * num / den`, rounded to nearest, at least 1.
    let scale = |side: u32, num: u64, den: u64| -> u32 {
        let scaled = (u64::from(side) * num + den / 2) / den;
        u32::try_from(scaled.max(1)).unwrap_or(u32::MAX)
    };
    match (width, height, fit) {
        (None, None, _) => source,
        (Some(w), None, _) => (w, scale(w, sh, sw)),
        (None, Some(h), _) => (scale(h, sw, sh), h),
        (Some(w), Some(h), Fit::Cover | Fit::Fill | Fit::Pad) => (w, h),
        (Some(w), Some(h), Fit::Contain) => {
            // Width-bound when the box is relatively narrower than the image.
            if u64::from(w) * sh <= u64::from(h) * sw {
                (w, scale(w, sh, sw).min(h))
            } else {
                (scale(h, sw, sh).min(w), h)
            }
        }
    }
}

/// Resizes `image` as `resize(w, h, fit, gravity)` does. `cover` crops the
/// source to the box's aspect ratio where `gravity` says, in the same pass;
/// the content-aware gravities scale the whole image to cover the box
/// first, then choose the crop on what they see (as `vips thumbnail
/// --smartcrop` does). `pad` resizes as `contain`, then places the result
/// on a box of `background` where `gravity` says.
pub(crate) fn resize(
    image: DynamicImage,
    (width, height): (Option<u32>, Option<u32>),
    fit: Fit,
    gravity: Gravity,
    background: Colour,
) -> Result<DynamicImage, ImageError> {
    let (w, h) = target_size(image.dimensions(), width, height, fit);
    if fit == Fit::Pad {
        let inner = target_size(image.dimensions(), width, height, Fit::Contain);
        return Ok(pad(scaled_to(image, inner)?, (w, h), gravity, background));
    }
    if (w, h) == image.dimensions() {
        // Same size implies same aspect ratio, so `cover` would not crop.
        return Ok(image);
    }
    if fit != Fit::Cover {
        return resized(&image, (w, h), None);
    }
    match gravity.centring() {
        Some(centring) => resized(&image, (w, h), Some(centring)),
        None => cover_by_content(image, (w, h), gravity, None).map(|(covered, _)| covered),
    }
}

/// `cover` to `size` with a content-aware `gravity`: the whole image
/// scaled to cover the box, then cut to the window the gravity chooses on
/// what it sees, or to `window` when given (where the first frame of an
/// animation chose, so that the crop does not wander from frame to frame).
/// Returns the result and the window's top-left corner.
pub(crate) fn cover_by_content(
    image: DynamicImage,
    size: (u32, u32),
    gravity: Gravity,
    window: Option<(u32, u32)>,
) -> Result<(DynamicImage, (u32, u32)), ImageError> {
    let covering = covering_size(image.dimensions(), size);
    let scaled = scaled_to(image, covering)?;
    let (left, top) = window.unwrap_or_else(|| smartcrop::window(&scaled, size, gravity));
    Ok((scaled.crop_imm(left, top, size.0, size.1), (left, top)))
}

/// `image` at `size`: itself when it already is, else [`resized`].
fn scaled_to(image: DynamicImage, size: (u32, u32)) -> Result<DynamicImage, ImageError> {
    if size == image.dimensions() {
        Ok(image)
    } else {
        resized(&image, size, None)
    }
}

/// `inner` on a `size` box of `background`, placed where `gravity` says
/// (see [`Gravity::offset`]). The result is grey when both are, and has
/// alpha when either does.
fn pad(
    inner: DynamicImage,
    size: (u32, u32),
    gravity: Gravity,
    background: Colour,
) -> DynamicImage {
    let [r, g, b, a] = background.0;
    let grey = !inner.color().has_color() && r == g && g == b;
    let alpha = inner.color().has_alpha() || a != 255;
    let (x, y) = gravity.offset((size.0 - inner.width(), size.1 - inner.height()));
    let (x, y) = (i64::from(x), i64::from(y));
    match (grey, alpha) {
        (true, false) => {
            let mut canvas = GrayImage::from_pixel(size.0, size.1, Luma([r]));
            imageops::replace(&mut canvas, &inner.into_luma8(), x, y);
            canvas.into()
        }
        (true, true) => {
            let mut canvas = GrayAlphaImage::from_pixel(size.0, size.1, LumaA([r, a]));
            imageops::replace(&mut canvas, &inner.into_luma_alpha8(), x, y);
            canvas.into()
        }
        (false, false) => {
            let mut canvas = RgbImage::from_pixel(size.0, size.1, Rgb([r, g, b]));
            imageops::replace(&mut canvas, &inner.into_rgb8(), x, y);
            canvas.into()
        }
        (false, true) => {
            let mut canvas = RgbaImage::from_pixel(size.0, size.1, Rgba(background.0));
            imageops::replace(&mut canvas, &inner.into_rgba8(), x, y);
            canvas.into()
        }
    }
}

/// The smallest size with `source`'s aspect ratio that covers `target` on
/// both sides.
fn covering_size(source: (u32, u32), target: (u32, u32)) -> (u32, u32) {
    let (sw, sh) = (u64::from(source.0.max(1)), u64::from(source.1.max(1)));
    let (tw, th) = (u64::from(target.0), u64::from(target.1));
    let side = |value: u64| u32::try_from(value).unwrap_or(u32::MAX);
    if tw * sh >= th * sw {
        // The box is relatively wider: its width binds.
        (target.0, side((tw * sh).div_ceil(sw)).max(target.1))
    } else {
        (side((th * sw).div_ceil(sh)).max(target.0), target.1)
    }
}

/// `image` resized to exactly `size`, its source first cropped to that
/// aspect ratio around `centring` (see [`Gravity::centring`]) when given.
pub(crate) fn resized(
    image: &DynamicImage,
    size: (u32, u32),
    centring: Option<(f64, f64)>,
) -> Result<DynamicImage, ImageError> {
    let mut options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    if centring.is_some() {
        options = options.fit_into_destination(centring);
    }
    let mut resized = DynamicImage::new(size.0, size.1, image.color());
    // Decoding leaves only 8-bit layouts. Naming them here, instead of
    // letting `Resizer::resize` dispatch on any pixel type at run time,
    // keeps the 16-bit and float kernels out of the binary, and with them a
    // 512 KiB division table that would otherwise sit in every component's
    // initial memory, which Spin restores for each request (`bench/run`
    // section 5).
    let resized_ok = match image.color() {
        ColorType::L8 => resize_as::<U8>(image, &mut resized, &options),
        ColorType::La8 => resize_as::<U8x2>(image, &mut resized, &options),
        ColorType::Rgb8 => resize_as::<U8x3>(image, &mut resized, &options),
        ColorType::Rgba8 => resize_as::<U8x4>(image, &mut resized, &options),
        _ => false,
    };
    if resized_ok {
        Ok(resized)
    } else {
        Err(ImageError::Unsupported)
    }
}

/// Resizes `source` into `target` as pixels of type `P`; false when either
/// is not of that type.
fn resize_as<P: PixelTrait>(
    source: &DynamicImage,
    target: &mut DynamicImage,
    options: &ResizeOptions,
) -> bool {
    match (source.image_view::<P>(), target.image_view_mut::<P>()) {
        (Some(source), Some(mut target)) => Resizer::new()
            .resize_typed(&source, &mut target, options)
            .is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::gradient;
    use image::Rgba;

    #[test]
    fn width_only_keeps_the_aspect_ratio() {
        assert_eq!(
            target_size((64, 48), Some(32), None, Fit::Contain),
            (32, 24)
        );
    }

    #[test]
    fn height_only_keeps_the_aspect_ratio() {
        assert_eq!(target_size((64, 48), None, Some(12), Fit::Fill), (16, 12));
    }

    #[test]
    fn contain_fits_inside_the_box() {
        assert_eq!(
            target_size((64, 48), Some(32), Some(32), Fit::Contain),
            (32, 24)
        );
        assert_eq!(
            target_size((48, 64), Some(32), Some(32), Fit::Contain),
            (24, 32)
        );
        assert_eq!(
            target_size((64, 48), Some(1000), Some(30), Fit::Contain),
            (40, 30)
        );
    }

    #[test]
    fn cover_and_fill_produce_exactly_the_box() {
        assert_eq!(
            target_size((64, 48), Some(32), Some(32), Fit::Cover),
            (32, 32)
        );
        assert_eq!(
            target_size((64, 48), Some(10), Some(40), Fit::Fill),
            (10, 40)
        );
    }

    #[test]
    fn a_thin_image_keeps_at_least_one_pixel() {
        assert_eq!(
            target_size((1000, 1), Some(10), None, Fit::Contain),
            (10, 1)
        );
    }

    #[test]
    fn resize_produces_the_target_size_for_every_fit() {
        let image = DynamicImage::ImageRgb8(gradient(64, 48));
        for (fit, size) in [
            (Fit::Contain, (32, 24)),
            (Fit::Cover, (32, 32)),
            (Fit::Fill, (32, 32)),
        ] {
            let resized = resize(
                image.clone(),
                (Some(32), Some(32)),
                fit,
                Gravity::Centre,
                Colour::WHITE,
            )
            .unwrap();
            assert_eq!(resized.dimensions(), size, "{fit:?}");
        }
    }

    /// `pad` letterboxes: the image as `contain` sizes it, on a box of the
    /// background, placed where `gravity` says; a translucent background
    /// gives the result alpha, a grey one keeps a grey image grey.
    #[test]
    fn pad_letterboxes_onto_the_background() {
        let red =
            DynamicImage::ImageRgb8(image::RgbImage::from_pixel(60, 30, image::Rgb([255, 0, 0])));
        let blue = Colour([0, 0, 255, 255]);
        let pad = |image: &DynamicImage, gravity, background| {
            resize(
                image.clone(),
                (Some(40), Some(40)),
                Fit::Pad,
                gravity,
                background,
            )
            .unwrap()
        };
        let centred = pad(&red, Gravity::Centre, blue).to_rgba8();
        assert_eq!(centred.dimensions(), (40, 40));
        // 40×20 of red, 10 rows of blue above and below.
        assert_eq!(centred.get_pixel(20, 5).0, [0, 0, 255, 255]);
        assert_eq!(centred.get_pixel(20, 20).0, [255, 0, 0, 255]);
        assert_eq!(centred.get_pixel(20, 35).0, [0, 0, 255, 255]);
        let north = pad(&red, Gravity::North, blue).to_rgba8();
        assert_eq!(north.get_pixel(20, 5).0, [255, 0, 0, 255]);
        assert_eq!(north.get_pixel(20, 35).0, [0, 0, 255, 255]);

        let clear = pad(&red, Gravity::Centre, Colour([0, 0, 0, 0]));
        assert_eq!(clear.color(), ColorType::Rgba8);
        assert_eq!(clear.to_rgba8().get_pixel(20, 5).0[3], 0);

        let grey = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(60, 30, Luma([90])));
        let padded = pad(&grey, Gravity::Centre, Colour([20, 20, 20, 255]));
        assert_eq!(padded.color(), ColorType::L8);
        assert_eq!(padded.to_luma8().get_pixel(20, 5).0, [20]);
        assert_eq!(padded.to_luma8().get_pixel(20, 20).0, [90]);
    }

    /// `gravity` names the part `cover` keeps: a frame red on its left
    /// third and blue on its right third keeps red with `west`, blue with
    /// `east`, and the grey middle with `centre`; content-aware gravities
    /// give exactly the box too.
    #[test]
    fn cover_keeps_the_part_its_gravity_names() {
        let image = DynamicImage::ImageRgb8(image::RgbImage::from_fn(90, 30, |x, _| match x {
            0..30 => image::Rgb([255, 0, 0]),
            30..60 => image::Rgb([128, 128, 128]),
            _ => image::Rgb([0, 0, 255]),
        }));
        for (gravity, expected) in [
            (Gravity::West, [255, 0, 0]),
            (Gravity::East, [0, 0, 255]),
            (Gravity::Centre, [128, 128, 128]),
        ] {
            let kept = resize(
                image.clone(),
                (Some(10), Some(10)),
                Fit::Cover,
                gravity,
                Colour::WHITE,
            )
            .unwrap();
            assert_eq!(kept.to_rgb8().get_pixel(5, 5).0, expected, "{gravity:?}");
        }
        for gravity in [Gravity::Entropy, Gravity::Attention] {
            let kept = resize(
                image.clone(),
                (Some(10), Some(7)),
                Fit::Cover,
                gravity,
                Colour::WHITE,
            )
            .unwrap();
            assert_eq!(kept.dimensions(), (10, 7), "{gravity:?}");
        }
    }

    #[test]
    fn cover_crops_around_the_centre_while_fill_stretches() {
        // Red in the left quarter, green in the right quarter, blue middle.
        let image = DynamicImage::ImageRgb8(image::RgbImage::from_fn(64, 16, |x, _| match x {
            0..16 => image::Rgb([255, 0, 0]),
            48..64 => image::Rgb([0, 255, 0]),
            _ => image::Rgb([0, 0, 255]),
        }));
        let cover = resize(
            image.clone(),
            (Some(16), Some(16)),
            Fit::Cover,
            Gravity::Centre,
            Colour::WHITE,
        )
        .unwrap();
        let fill = resize(
            image,
            (Some(16), Some(16)),
            Fit::Fill,
            Gravity::Centre,
            Colour::WHITE,
        )
        .unwrap();
        assert_eq!(cover.get_pixel(0, 8), Rgba([0, 0, 255, 255]));
        assert_eq!(fill.get_pixel(0, 8), Rgba([255, 0, 0, 255]));
    }

    #[test]
    fn resize_keeps_every_8_bit_layout() {
        for image in [
            DynamicImage::new_luma8(20, 20),
            DynamicImage::new_luma_a8(20, 20),
            DynamicImage::new_rgb8(20, 20),
            DynamicImage::new_rgba8(20, 20),
        ] {
            let color = image.color();
            let resized = resize(
                image,
                (Some(5), None),
                Fit::Contain,
                Gravity::Centre,
                Colour::WHITE,
            )
            .unwrap();
            assert_eq!((resized.color(), resized.dimensions()), (color, (5, 5)));
        }
    }

    #[test]
    fn a_16_bit_layout_is_refused_not_resized() {
        let image = DynamicImage::new_rgb16(20, 20);
        assert!(matches!(
            resize(
                image,
                (Some(5), None),
                Fit::Contain,
                Gravity::Centre,
                Colour::WHITE
            ),
            Err(ImageError::Unsupported)
        ));
    }
}
