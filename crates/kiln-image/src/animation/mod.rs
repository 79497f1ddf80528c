//! Animations kept as animations: an animated GIF or WebP whose output is
//! GIF or WebP goes through the operations frame by frame.
//!
//! The frames stream: each is decoded (composited as the viewer sees it,
//! see [`decode_frames`]), transformed by every operation, and encoded
//! before the next is read, so memory holds a few frames, never the
//! whole animation. Each frame is a [`Stage::Frame`] of the progress
//! reports, which renews the caller's lease between frames.
//!
//! Kept from the input: every frame's delay and the loop count. A
//! content-aware `cover` crop (`gravity=entropy|attention`) is chosen on
//! the first frame and kept for the others, so the crop does not wander.
//! The encoders are in [`gif`] and [`webp`].

mod gif;
mod webp;

use image::{DynamicImage, GenericImageView, ImageDecoder};

use crate::decode::{self, Header, decode_frames};
use crate::error::ImageError;
use crate::format::Format;
use crate::ops::{Colour, Fit, Op};
use crate::pipeline::Output;
use crate::plan::{Limits, output_background, output_quality};
use crate::probe::ImageInfo;
use crate::progress::{OnProgress, Reporter, Stage};
use crate::resize::{cover_by_content, target_size};
use crate::transform::apply;

/// Runs `ops` over every frame of `header`'s animation and encodes the
/// result as the `planned` animation (see [`preflight`](crate::preflight)).
pub(crate) fn process(
    header: Header<'_, impl ImageDecoder>,
    ops: &[Op],
    planned: &ImageInfo,
    limits: &Limits,
    on_progress: &mut OnProgress<'_>,
) -> Result<Output, ImageError> {
    let background = output_background(ops);
    let size = (planned.width, planned.height);
    let mut encoder = match planned.format {
        Format::Gif => Encoder::Gif(Box::new(gif::GifAnimation::new(size, header.plays)?)),
        Format::Webp => Encoder::Webp(webp::WebpAnimation::new(
            size,
            output_quality(ops),
            header.plays,
        )),
        other => unreachable!("{other} does not animate"),
    };
    let of = planned.frames as usize;

    let decoding = Reporter::start(on_progress, Stage::Decode)?;
    let frames = decode_frames(header, decode::image_limits(limits))?;
    decoding.finish()?;

    let mut warnings = Vec::new();
    // Where each content-aware crop cut the first frame.
    let mut windows = vec![None; ops.len()];
    let mut count = 0;
    for (index, frame) in frames.enumerate() {
        if index == of {
            // The decoder reads the blocks otherwise than the integrity
            // walk, which counted the frames the limits were checked for:
            // not one more is decoded (found by fuzzing).
            return Err(ImageError::Corrupt(format!(
                "the animation's structure announces {of} frames, but more decode"
            )));
        }
        let mut reporter = Reporter::start(on_progress, Stage::Frame { index, of })?;
        let frame = frame?;
        if index == 0 {
            warnings.extend(frame.warning);
        }
        let mut image = frame.image;
        for (op, window) in ops.iter().zip(&mut windows) {
            image = apply_to_frame(image, op, background, window, &mut reporter)?;
        }
        debug_assert_eq!(image.dimensions(), size, "preflight predicts the geometry");
        encoder.add(image, frame.delay_ms)?;
        reporter.finish()?;
        count += 1;
    }
    if count != of {
        return Err(ImageError::Corrupt(format!(
            "the animation's structure announces {of} frames, but {count} decode"
        )));
    }

    let encoding = Reporter::start(on_progress, Stage::Encode)?;
    let bytes = encoder.finish()?;
    encoding.finish()?;
    Ok(Output {
        bytes,
        format: planned.format,
        width: planned.width,
        height: planned.height,
        warnings,
    })
}

/// [`apply`], but a content-aware `cover` cuts where it cut the first
/// frame (`window`, set by the first).
fn apply_to_frame(
    image: DynamicImage,
    op: &Op,
    background: Colour,
    window: &mut Option<(u32, u32)>,
    reporter: &mut Reporter<'_, '_>,
) -> Result<DynamicImage, ImageError> {
    if let Op::Resize {
        width,
        height,
        fit: Fit::Cover,
        gravity,
    } = *op
        && gravity.centring().is_none()
    {
        let size = target_size(image.dimensions(), width, height, Fit::Cover);
        if size != image.dimensions() {
            let (covered, chosen) = cover_by_content(image, size, gravity, *window)?;
            *window = Some(chosen);
            return Ok(covered);
        }
    }
    apply(image, op, background, reporter)
}

/// The output file, built a frame at a time.
enum Encoder {
    Gif(Box<gif::GifAnimation>),
    Webp(webp::WebpAnimation),
}

impl Encoder {
    fn add(&mut self, frame: DynamicImage, delay_ms: u32) -> Result<(), ImageError> {
        match self {
            Encoder::Gif(gif) => gif.add(frame, delay_ms),
            Encoder::Webp(webp) => webp.add(&frame, delay_ms),
        }
    }

    fn finish(self) -> Result<Vec<u8>, ImageError> {
        match self {
            Encoder::Gif(gif) => gif.finish(),
            Encoder::Webp(webp) => webp.finish(),
        }
    }
}

#[cfg(test)]
mod tests;
