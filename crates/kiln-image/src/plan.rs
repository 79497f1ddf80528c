//! Planning from the header: [`Limits`], the geometry each operation
//! produces, and the checks that refuse a request before anything is
//! decoded.

use crate::error::ImageError;
use crate::format::Format;
use crate::ops::{Colour, Op};
use crate::probe::ImageInfo;
use crate::resize::target_size;

/// How large an image may be read and produced.
///
/// An animation that stays one (GIF or WebP in and out) is counted over
/// all its frames: its pixels are the sum over the frames, and
/// `max_frames` bounds their number. An animation whose output is a still
/// image is counted by its first frame, the only one decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest input, in pixels, checked from the header before decoding.
    pub max_input_pixels: u64,
    /// Largest frame the operations may produce, in pixels: the output, and
    /// every intermediate step (so `resize(w=16384,h=16384),resize(w=10)` is
    /// refused too).
    pub max_output_pixels: u64,
    /// Most frames an animation kept as one may have.
    pub max_frames: u32,
}

impl Default for Limits {
    /// 50 megapixels in and out, so that a large photo passes through
    /// unresized; 1,000 frames.
    fn default() -> Self {
        Limits {
            max_input_pixels: 50_000_000,
            max_output_pixels: 50_000_000,
            max_frames: 1000,
        }
    }
}

/// The output format: the last `format(..)`, else `source`. An unresolved
/// `format(auto)` keeps `source`, as it would without `Accept`.
pub fn output_format(source: Format, ops: &[Op]) -> Format {
    ops.iter()
        .rev()
        .find_map(|op| match op {
            Op::Format(format) => Some(*format),
            Op::AutoFormat => Some(source),
            _ => None,
        })
        .unwrap_or(source)
}

/// The requested quality: the last `quality(..)`, else `None` (each
/// encoder's default).
pub fn output_quality(ops: &[Op]) -> Option<u8> {
    ops.iter().rev().find_map(|op| match op {
        Op::Quality(quality) => Some(*quality),
        _ => None,
    })
}

/// The colour of the last `background(...)` in `ops`: what `fit=pad`
/// fills with and JPEG flattens transparency onto; opaque white without
/// one.
pub fn output_background(ops: &[Op]) -> Colour {
    ops.iter()
        .rev()
        .find_map(|op| match op {
            Op::Background(colour) => Some(*colour),
            _ => None,
        })
        .unwrap_or(Colour::WHITE)
}

/// The output width and height predicted from the header and the operations
/// alone. A crop reaching outside the image is predicted at its requested
/// size; [`preflight`] refuses it.
pub fn output_dimensions(info: &ImageInfo, ops: &[Op]) -> (u32, u32) {
    ops.iter().fold((info.width, info.height), next_size)
}

/// Whether `info`'s frames all go through the operations: an animation
/// whose output format animates too (see [`Format::animates`]).
pub fn keeps_animation(info: &ImageInfo, ops: &[Op]) -> bool {
    info.is_animated() && output_format(info.format, ops).animates()
}

/// Everything that can be refused from the header alone, in the order a
/// client would fix it: too many frames, input too large, an operation out
/// of bounds or not fitting the image (a crop outside it), a frame too
/// large, an output too large for its format. Returns the predicted
/// output: one frame, unless the animation is kept (see [`Limits`]).
pub fn preflight(info: &ImageInfo, ops: &[Op], limits: &Limits) -> Result<ImageInfo, ImageError> {
    let frames = if keeps_animation(info, ops) {
        info.frames
    } else {
        1
    };
    if frames > limits.max_frames {
        return Err(ImageError::TooManyFrames {
            frames,
            max: limits.max_frames,
        });
    }
    let input_pixels = info.pixels().saturating_mul(u64::from(frames));
    if input_pixels > limits.max_input_pixels {
        return Err(ImageError::TooManyInputPixels {
            pixels: input_pixels,
            max: limits.max_input_pixels,
        });
    }
    let mut size = (info.width, info.height);
    let mut largest = 0;
    for op in ops {
        op.check().map_err(ImageError::InvalidOp)?;
        if let Op::Crop { .. } = op {
            check_crop(size, op)?;
        }
        size = next_size(size, op);
        largest = largest.max(pixels(size));
    }
    // Without geometric operations the output is the input itself.
    largest = largest.max(pixels(size)).saturating_mul(u64::from(frames));
    if largest > limits.max_output_pixels {
        return Err(ImageError::TooManyOutputPixels {
            pixels: largest,
            max: limits.max_output_pixels,
        });
    }
    let format = output_format(info.format, ops);
    let (width, height) = size;
    crate::encode::check_fits(format, output_quality(ops), width, height)?;
    Ok(ImageInfo {
        format,
        width,
        height,
        frames,
    })
}

/// Refuses a crop whose rectangle reaches outside a `size` image.
pub(crate) fn check_crop(size: (u32, u32), crop: &Op) -> Result<(), ImageError> {
    let &Op::Crop {
        x,
        y,
        width,
        height,
    } = crop
    else {
        return Ok(());
    };
    let fits =
        |start: u32, len: u32, side: u32| u64::from(start) + u64::from(len) <= u64::from(side);
    if fits(x, width, size.0) && fits(y, height, size.1) {
        Ok(())
    } else {
        Err(ImageError::InvalidOp(format!(
            "{crop} reaches outside the {}x{} image it applies to",
            size.0, size.1
        )))
    }
}

fn next_size((width, height): (u32, u32), op: &Op) -> (u32, u32) {
    match *op {
        Op::Resize {
            width: w,
            height: h,
            fit,
            ..
        } => target_size((width, height), w, h, fit),
        Op::Crop {
            width: w,
            height: h,
            ..
        } => (w, h),
        Op::Rotate(rotation) if rotation.degrees() != 180 => (height, width),
        _ => (width, height),
    }
}

fn pixels((width, height): (u32, u32)) -> u64 {
    u64::from(width) * u64::from(height)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::parse_ops;

    const PHOTO: ImageInfo = ImageInfo {
        format: Format::Jpeg,
        width: 4000,
        height: 3000,
        frames: 1,
    };

    /// 100 frames of 480×270.
    const ANIMATION: ImageInfo = ImageInfo {
        format: Format::Gif,
        width: 480,
        height: 270,
        frames: 100,
    };

    fn ops(spec: &str) -> Vec<Op> {
        parse_ops(spec).unwrap()
    }

    #[test]
    fn output_dimensions_follow_each_geometric_op() {
        let spec = "crop(x=0,y=0,w=3000,h=2000),rotate(90),resize(w=100)";
        assert_eq!(output_dimensions(&PHOTO, &ops(spec)), (100, 150));
    }

    #[test]
    fn output_dimensions_ignore_non_geometric_ops() {
        let spec = "blur(sigma=2),grayscale,flip(h),rotate(180),format(png)";
        assert_eq!(output_dimensions(&PHOTO, &ops(spec)), (4000, 3000));
    }

    #[test]
    fn output_format_is_the_last_format_op_else_the_source() {
        assert_eq!(output_format(Format::Png, &ops("grayscale")), Format::Png);
        assert_eq!(
            output_format(Format::Png, &ops("format(gif),format(webp)")),
            Format::Webp
        );
    }

    #[test]
    fn output_quality_is_the_last_quality_op_else_the_encoders_default() {
        assert_eq!(output_quality(&ops("grayscale")), None);
        assert_eq!(output_quality(&ops("quality(30),quality(60)")), Some(60));
    }

    #[test]
    fn preflight_refuses_too_many_input_pixels() {
        let limits = Limits {
            max_input_pixels: 11_999_999,
            ..Limits::default()
        };
        assert_eq!(
            preflight(&PHOTO, &[], &limits),
            Err(ImageError::TooManyInputPixels {
                pixels: 12_000_000,
                max: 11_999_999
            })
        );
    }

    #[test]
    fn preflight_refuses_too_many_output_pixels() {
        let error = preflight(&PHOTO, &ops("resize(w=10000)"), &Limits::default()).unwrap_err();
        assert_eq!(
            error,
            ImageError::TooManyOutputPixels {
                pixels: 75_000_000,
                max: 50_000_000
            }
        );
    }

    #[test]
    fn preflight_counts_an_unresized_input_as_output() {
        let limits = Limits {
            max_output_pixels: 1_000_000,
            ..Limits::default()
        };
        assert!(matches!(
            preflight(&PHOTO, &ops("grayscale"), &limits),
            Err(ImageError::TooManyOutputPixels { .. })
        ));
        assert!(preflight(&PHOTO, &ops("resize(w=1000)"), &limits).is_ok());
    }

    #[test]
    fn preflight_refuses_a_large_intermediate_frame() {
        let spec = "resize(w=16384,h=16384,fit=fill),resize(w=10)";
        assert!(matches!(
            preflight(&PHOTO, &ops(spec), &Limits::default()),
            Err(ImageError::TooManyOutputPixels { .. })
        ));
    }

    #[test]
    fn preflight_refuses_a_crop_outside_the_image() {
        let error = preflight(
            &PHOTO,
            &ops("rotate(90),crop(x=0,y=0,w=4000,h=10)"),
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(
            error,
            ImageError::InvalidOp(
                "crop(x=0,y=0,w=4000,h=10) reaches outside the 3000x4000 image it applies to"
                    .into()
            )
        );
    }

    #[test]
    fn preflight_accepts_a_crop_touching_the_edges() {
        let spec = "crop(x=3999,y=2999,w=1,h=1)";
        assert!(preflight(&PHOTO, &ops(spec), &Limits::default()).is_ok());
    }

    #[test]
    fn preflight_refuses_out_of_bounds_ops_built_in_code() {
        let ops = [Op::Blur { sigma: 500.0 }];
        assert!(matches!(
            preflight(&PHOTO, &ops, &Limits::default()),
            Err(ImageError::InvalidOp(_))
        ));
    }

    #[test]
    fn preflight_refuses_an_output_too_wide_for_webp() {
        let wide = ImageInfo {
            format: Format::Png,
            width: 20_000,
            height: 10,
            frames: 1,
        };
        let error = preflight(&wide, &ops("format(webp)"), &Limits::default()).unwrap_err();
        assert!(matches!(error, ImageError::InvalidOp(m) if m.contains("webp")));
        assert!(preflight(&wide, &[], &Limits::default()).is_ok());
    }

    /// The formats whose encoder cannot stop midway (AVIF) or cannot hold a
    /// large frame (lossy WebP) refuse a full-size 16 MP photo from its
    /// header, saying to resize; resized, or as lossless WebP, it passes.
    #[test]
    fn preflight_refuses_outputs_too_large_for_avif_or_lossy_webp() {
        let photo = ImageInfo {
            format: Format::Jpeg,
            width: 5120,
            height: 3200,
            frames: 1,
        };
        for spec in ["format(avif)", "format(webp)", "format(webp),quality(90)"] {
            let error = preflight(&photo, &ops(spec), &Limits::default()).unwrap_err();
            assert!(
                matches!(&error, ImageError::InvalidOp(m) if m.contains("resize it first")),
                "{spec}: {error:?}"
            );
        }
        for spec in [
            "resize(w=1600),format(avif)",
            "format(webp),quality(100)",
            "resize(w=4000),format(webp)",
        ] {
            assert!(
                preflight(&photo, &ops(spec), &Limits::default()).is_ok(),
                "{spec}"
            );
        }
    }

    #[test]
    fn preflight_predicts_the_output() {
        let output = preflight(
            &PHOTO,
            &ops("resize(w=400),format(png)"),
            &Limits::default(),
        );
        assert_eq!(
            output,
            Ok(ImageInfo {
                format: Format::Png,
                width: 400,
                height: 300,
                frames: 1,
            })
        );
    }

    /// An animation kept as one is counted over its frames: 100 frames of
    /// 480×270 are 12.96 MP in and, resized to 240×135, 3.24 MP out.
    #[test]
    fn preflight_counts_every_frame_of_a_kept_animation() {
        let tight = Limits {
            max_input_pixels: 12_959_999,
            ..Limits::default()
        };
        assert_eq!(
            preflight(&ANIMATION, &ops("resize(w=240)"), &tight),
            Err(ImageError::TooManyInputPixels {
                pixels: 12_960_000,
                max: 12_959_999
            })
        );
        let tight = Limits {
            max_output_pixels: 3_239_999,
            ..Limits::default()
        };
        assert_eq!(
            preflight(&ANIMATION, &ops("resize(w=240),format(webp)"), &tight),
            Err(ImageError::TooManyOutputPixels {
                pixels: 3_240_000,
                max: 3_239_999
            })
        );
        assert_eq!(
            preflight(&ANIMATION, &ops("resize(w=240)"), &Limits::default()),
            Ok(ImageInfo {
                format: Format::Gif,
                width: 240,
                height: 135,
                frames: 100,
            })
        );
    }

    /// `max_frames` bounds an animation kept as one; a still output
    /// decodes the first frame only, and is counted as one.
    #[test]
    fn preflight_bounds_the_frames_of_a_kept_animation_only() {
        let limits = Limits {
            max_frames: 99,
            max_input_pixels: 130_000,
            ..Limits::default()
        };
        assert_eq!(
            preflight(&ANIMATION, &[], &limits),
            Err(ImageError::TooManyFrames {
                frames: 100,
                max: 99
            })
        );
        let still = preflight(&ANIMATION, &ops("format(png)"), &limits).unwrap();
        assert_eq!((still.format, still.frames), (Format::Png, 1));
    }
}
