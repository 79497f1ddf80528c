//! Shrink-on-load: when the decoded frame goes straight into a downscaling
//! `resize`, a JPEG can be decoded at 1/2, 1/4 or 1/8 of its size (a
//! reduced inverse DCT, as libjpeg and libvips do), which skips most of the
//! decoding and resizing work.
//!
//! [`plan`] decides from the header and the operations alone how large the
//! decoded frame must stay; the decoder picks the scale (see
//! [`dct_denominator`]). The resize then goes to the exact size the
//! full-size frame would have been resized to, so the output geometry never
//! depends on whether the decoder shrank.

use crate::format::Format;
use crate::ops::{Fit, Op, Rotation};
use crate::probe::ImageInfo;
use crate::resize::target_size;

/// How the pipeline runs when the decoder may shrink the frame.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Shrink {
    /// The smallest displayed (oriented) frame the decoder may produce:
    /// every side at least this, so that the resize only ever shrinks.
    pub(crate) at_least: (u32, u32),
    /// Which operation is the resize.
    pub(crate) resize_index: usize,
    /// That resize, restated with the size it gives the full-size frame,
    /// so that a smaller frame is resized to the same size.
    pub(crate) resize: Op,
}

/// Whether the decoder may shrink the frame of a `info` image before `ops`
/// run, and to what.
///
/// Only a JPEG, and only when the first operation that touches pixels is a
/// `resize` that makes the image smaller on both sides. Before it, only
/// operations that commute with scaling may come: `format` and `quality`
/// (which do nothing to pixels), and quarter rotations and flips (which
/// only move them; a rotation swaps the sides to keep). `fit=cover` keeps a
/// centred crop of the box's aspect ratio, which is no smaller than the box
/// exactly when both sides of the frame are at least the box; `contain`
/// and `fill` need both sides at least their output. So in every case the
/// frame must be at least the resize's output on both sides.
pub(crate) fn plan(info: &ImageInfo, ops: &[Op]) -> Option<Shrink> {
    if info.format != Format::Jpeg {
        return None;
    }
    let mut swapped = false;
    for (index, op) in ops.iter().enumerate() {
        match *op {
            Op::Format(_)
            | Op::AutoFormat
            | Op::Quality(_)
            | Op::Background(_)
            | Op::Flip(_)
            | Op::Rotate(Rotation::Deg180) => {}
            Op::Rotate(Rotation::Deg90 | Rotation::Deg270) => swapped = !swapped,
            Op::Resize {
                width,
                height,
                fit,
                gravity,
            } => {
                let size = if swapped {
                    (info.height, info.width)
                } else {
                    (info.width, info.height)
                };
                // `pad` resizes as `contain`; its box is only filled in.
                let scaled_fit = if fit == Fit::Pad { Fit::Contain } else { fit };
                let target = target_size(size, width, height, scaled_fit);
                if target.0 >= size.0 || target.1 >= size.1 {
                    return None;
                }
                let at_least = if swapped {
                    (target.1, target.0)
                } else {
                    target
                };
                let resize = if fit == Fit::Pad {
                    // The box stays as asked; the image in it may come out
                    // a pixel off the full-size decode's (rounding).
                    op.clone()
                } else {
                    Op::Resize {
                        width: Some(target.0),
                        height: Some(target.1),
                        // `contain` restated as the size it makes.
                        fit: if fit == Fit::Cover { fit } else { Fit::Fill },
                        gravity,
                    }
                };
                return Some(Shrink {
                    at_least,
                    resize_index: index,
                    resize,
                });
            }
            _ => return None,
        }
    }
    None
}

/// The DCT scale denominator (1, 2, 4 or 8) to decode a `size` frame at so
/// that it stays at least `at_least` on both sides: the largest whose
/// exact (unrounded) scaled sides are still large enough.
pub(crate) fn dct_denominator(size: (u32, u32), at_least: (u32, u32)) -> u32 {
    let fits = |side: u32, least: u32, denominator: u32| {
        u64::from(side) >= u64::from(least) * u64::from(denominator)
    };
    [8, 4, 2]
        .into_iter()
        .find(|&d| fits(size.0, at_least.0, d) && fits(size.1, at_least.1, d))
        .unwrap_or(1)
}

#[cfg(test)]
mod versus_full_size;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Gravity, parse_ops};

    const PHOTO: ImageInfo = ImageInfo {
        format: Format::Jpeg,
        width: 5120,
        height: 3200,
        frames: 1,
    };

    fn planned(info: &ImageInfo, spec: &str) -> Option<Shrink> {
        plan(info, &parse_ops(spec).unwrap())
    }

    /// A resize to 1600 wide keeps the frame at least 1600×1000, and is
    /// restated with both sides.
    #[test]
    fn a_downscaling_resize_first_lets_the_decoder_shrink() {
        let shrink = planned(&PHOTO, "resize(w=1600),sharpen(sigma=1)").unwrap();
        assert_eq!(shrink.at_least, (1600, 1000));
        assert_eq!(shrink.resize_index, 0);
        assert_eq!(
            shrink.resize,
            Op::Resize {
                width: Some(1600),
                height: Some(1000),
                fit: Fit::Fill,
                gravity: Gravity::Centre,
            }
        );
    }

    /// `format` and `quality` before the resize change no pixel.
    #[test]
    fn format_and_quality_before_the_resize_are_skipped() {
        let shrink = planned(&PHOTO, "quality(82),format(png),resize(w=100)").unwrap();
        assert_eq!(shrink.resize_index, 2);
    }

    /// A quarter rotation before the resize swaps the sides the frame must
    /// keep: the 1600 wide output is 1600 tall in the decoded frame.
    #[test]
    fn a_quarter_rotation_before_the_resize_swaps_the_sides_to_keep() {
        let shrink = planned(&PHOTO, "rotate(90),flip(h),resize(w=1600)").unwrap();
        // Rotated, the photo is 3200×5120; 1600 wide makes it 1600×2560.
        assert_eq!(shrink.at_least, (2560, 1600));
        assert_eq!(shrink.resize_index, 2);
    }

    /// Operations whose result depends on the scale (or on which pixels
    /// are there) must see the full-size frame.
    #[test]
    fn any_other_operation_before_the_resize_keeps_the_full_frame() {
        for spec in [
            "crop(x=0,y=0,w=4000,h=3000),resize(w=100)",
            "blur(sigma=1),resize(w=100)",
            "sharpen(sigma=1),resize(w=100)",
            "grayscale,resize(w=100)",
            "brightness(10),resize(w=100)",
            "contrast(10),resize(w=100)",
            "sharpen(sigma=1)",
            "quality(50)",
        ] {
            assert_eq!(planned(&PHOTO, spec), None, "{spec}");
        }
    }

    /// Upscaling, or keeping one side, needs every decoded pixel.
    #[test]
    fn a_resize_that_does_not_shrink_both_sides_keeps_the_full_frame() {
        for spec in [
            "resize(w=6000)",
            "resize(w=5120)",
            "resize(w=100,h=3200,fit=fill)",
            "resize(w=5120,h=10,fit=cover)",
        ] {
            assert_eq!(planned(&PHOTO, spec), None, "{spec}");
        }
    }

    /// Only JPEG has a scaled decoder.
    #[test]
    fn other_formats_keep_the_full_frame() {
        let png = ImageInfo {
            format: Format::Png,
            ..PHOTO
        };
        assert_eq!(planned(&png, "resize(w=100)"), None);
    }

    /// `cover` keeps the box, with its own fit and gravity, so the crop is
    /// the same.
    #[test]
    fn cover_keeps_the_whole_box_and_its_fit() {
        let shrink = planned(&PHOTO, "resize(w=300,h=300,fit=cover,gravity=attention)").unwrap();
        assert_eq!(shrink.at_least, (300, 300));
        assert_eq!(
            shrink.resize,
            Op::Resize {
                width: Some(300),
                height: Some(300),
                fit: Fit::Cover,
                gravity: Gravity::Attention,
            }
        );
    }

    /// The largest of 8, 4, 2 whose scaled frame is still large enough on
    /// both sides; 1 when none is.
    #[test]
    fn the_denominator_is_the_largest_that_keeps_both_sides() {
        assert_eq!(dct_denominator((5120, 3200), (1600, 1000)), 2);
        assert_eq!(dct_denominator((7680, 3200), (1600, 667)), 4);
        assert_eq!(dct_denominator((5120, 3200), (640, 400)), 8);
        assert_eq!(dct_denominator((5120, 3200), (641, 400)), 4);
        assert_eq!(dct_denominator((5120, 3200), (2561, 10)), 1);
        // 1/8 of 67 is 8.375: rounded up 9, but only 8.375 pixels of detail.
        assert_eq!(dct_denominator((67, 45), (9, 5)), 4);
    }
}
