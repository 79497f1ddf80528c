//! Animated GIF output: one palette for the file while it fits the
//! frames, and only what changed since the frame before is written.
//!
//! The palette: the first frame's colours (exactly, when it has at most
//! 255; else NeuQuant's 255 at its best sampling), the last index left
//! for transparency. Later frames are mapped to it as long as they fit:
//! all their colours are in an exact palette, or NeuQuant's mean squared
//! error on them is at most twice its error on the first frame. A frame
//! that does not fit (a scene change) gets a palette of its own, as a
//! still GIF does. One palette saves 768 bytes a frame and keeps
//! unchanged colours identical from frame to frame, as libvips's
//! `gifsave` (which reuses its palette while the error allows) does.
//! Nothing is dithered.
//!
//! What changed: a frame is cut to the rectangle where its pixels differ
//! from what the screen shows before it, and inside that rectangle the
//! unchanged pixels are written transparent, so the frame before shows
//! through (GIF's disposal "keep"). This is what gifsicle's and libvips's
//! (cgif's) frame optimisation does, and what keeps a GIF's bytes near
//! theirs: most animations change a small part of the picture.
//!
//! A pixel that turns transparent cannot be drawn over the frame before,
//! so the frame before it is disposed of instead ("restore to
//! background": the screen turns transparent) and then written whole.
//! That choice needs the next frame, so each frame is written when the
//! next one arrives (or at the end).

use std::borrow::Cow;
use std::collections::HashMap;

use color_quant::NeuQuant;
use gif::{DisposalMethod, Encoder, Frame, Repeat};
use image::{DynamicImage, RgbaImage};

use crate::encode::{GIF_SPEED, encoding_failed};
use crate::error::ImageError;
use crate::format::Format;

/// NeuQuant's sampling for the file's palette: every pixel (1), where a
/// still GIF samples one in ten ([`GIF_SPEED`]). It is made once per file,
/// so the cost is small, and on a 100-frame 480×270 photo animation
/// resized to 240 px it cut the mean error from 2.85 to 1.88 levels
/// (libvips: 1.48, with dithering) for 11% more bytes.
const PALETTE_SPEED: i32 = 1;
/// The palette index of transparency when the file's palette is used.
const TRANSPARENT: u8 = 255;
/// How much worse than on the first frame the file's NeuQuant palette may
/// map a later one (mean squared error) and still be used.
/// Twice: frames of one scene, quantized apart by their writer, measured
/// 1.2–1.3 times; a scene change many times more.
const REUSE_ERROR_RATIO: f64 = 2.0;

/// An animated GIF being written.
pub(super) struct GifAnimation {
    size: (u16, u16),
    plays: u32,
    /// Created with the file's palette when the first frame is written.
    file: Option<(Encoder<Vec<u8>>, Palette)>,
    /// The last frame added, not written yet.
    pending: Option<Pending>,
}

/// A frame waiting for the next, which decides how it is disposed of.
struct Pending {
    frame: RgbaImage,
    /// What the screen shows before it: the frame before, or nothing
    /// (transparent) when that one was disposed of.
    under: Option<RgbaImage>,
    delay_ms: u32,
}

/// The file's palette, from the first frame.
enum Palette {
    /// Every colour of the first frame, at most 255.
    Exact(HashMap<[u8; 3], u8>),
    /// NeuQuant's 255 colours, and its mean squared error on the first
    /// frame.
    Neural(NeuQuant, f64),
}

fn failed(error: impl std::fmt::Display) -> ImageError {
    encoding_failed(Format::Gif, &error.to_string())
}

impl GifAnimation {
    /// An animation of `size` frames that plays `plays` times (0: forever).
    pub(super) fn new(size: (u32, u32), plays: u32) -> Result<Self, ImageError> {
        let side = |side: u32| u16::try_from(side).map_err(|_| failed("a side exceeds 65535"));
        Ok(GifAnimation {
            size: (side(size.0)?, side(size.1)?),
            plays,
            file: None,
            pending: None,
        })
    }

    /// Adds the next frame, shown for `delay_ms` (GIF counts in
    /// hundredths of a second).
    pub(super) fn add(&mut self, frame: DynamicImage, delay_ms: u32) -> Result<(), ImageError> {
        let frame = frame.into_rgba8();
        let under = match self.pending.take() {
            None => None,
            Some(pending) => {
                let clear = reveals(&pending.frame, &frame);
                self.write(&pending, clear)?;
                (!clear).then_some(pending.frame)
            }
        };
        self.pending = Some(Pending {
            frame,
            under,
            delay_ms,
        });
        Ok(())
    }

    /// Writes the last frame and the trailer.
    pub(super) fn finish(mut self) -> Result<Vec<u8>, ImageError> {
        if let Some(pending) = self.pending.take() {
            self.write(&pending, false)?;
        }
        let (encoder, _) = self
            .file
            .ok_or_else(|| failed("the animation has no frame"))?;
        encoder.into_inner().map_err(failed)
    }

    /// Writes `pending`, disposed of to transparent after it shows when
    /// `clear`.
    fn write(&mut self, pending: &Pending, clear: bool) -> Result<(), ImageError> {
        let whole = (0, 0, pending.frame.width(), pending.frame.height());
        // Disposal clears the frame's rectangle only: it must be whole.
        let (left, top, width, height) = match &pending.under {
            Some(under) if !clear => {
                changed_rectangle(under, &pending.frame).unwrap_or((0, 0, 1, 1))
            }
            _ => whole,
        };
        // The rectangle's pixels, those the frame before shows already
        // made transparent.
        let mut pixels = Vec::with_capacity(width as usize * height as usize * 4);
        for y in top..top + height {
            for x in left..left + width {
                let pixel = pending.frame.get_pixel(x, y);
                let unchanged = pending
                    .under
                    .as_ref()
                    .is_some_and(|under| under.get_pixel(x, y) == pixel);
                pixels.extend_from_slice(if unchanged { &[0; 4] } else { &pixel.0 });
            }
        }
        let side = |side: u32| u16::try_from(side).expect("checked in new()");
        let (width, height) = (side(width), side(height));
        if self.file.is_none() {
            self.file = Some(self.start(&pixels)?);
        }
        let (encoder, palette) = self.file.as_mut().expect("started");
        let mut frame = match palette.indices(&pixels) {
            Some(indices) => Frame {
                width,
                height,
                transparent: Some(TRANSPARENT),
                buffer: Cow::Owned(indices),
                ..Frame::default()
            },
            None => Frame::from_rgba_speed(width, height, &mut pixels, GIF_SPEED),
        };
        frame.left = side(left);
        frame.top = side(top);
        frame.delay = u16::try_from(pending.delay_ms.div_ceil(10)).unwrap_or(u16::MAX);
        frame.dispose = if clear {
            DisposalMethod::Background
        } else {
            DisposalMethod::Keep
        };
        encoder.write_frame(&frame).map_err(failed)
    }

    /// The file's header, with the palette of the first frame's `pixels`.
    fn start(&self, pixels: &[u8]) -> Result<(Encoder<Vec<u8>>, Palette), ImageError> {
        let (palette, colours) = Palette::of(pixels);
        let mut global = colours;
        global.resize(3 * 256, 0);
        let (width, height) = self.size;
        let mut encoder = Encoder::new(Vec::new(), width, height, &global).map_err(failed)?;
        // The Netscape loop count is of repetitions after the first play;
        // without one, viewers play the frames once.
        match self.plays {
            0 => encoder.set_repeat(Repeat::Infinite).map_err(failed)?,
            1 => {}
            plays => {
                let repetitions = u16::try_from(plays - 1).unwrap_or(u16::MAX);
                encoder
                    .set_repeat(Repeat::Finite(repetitions))
                    .map_err(failed)?;
            }
        }
        Ok((encoder, palette))
    }
}

impl Palette {
    /// The palette of the opaque pixels of RGBA `pixels`, and its colours
    /// as a GIF colour table (RGB).
    fn of(pixels: &[u8]) -> (Palette, Vec<u8>) {
        let opaque = || pixels.chunks_exact(4).filter(|pixel| pixel[3] != 0);
        let mut exact = HashMap::new();
        let mut table = Vec::new();
        for pixel in opaque() {
            let colour = [pixel[0], pixel[1], pixel[2]];
            if exact.contains_key(&colour) {
                continue;
            }
            if exact.len() == usize::from(TRANSPARENT) {
                let samples: Vec<u8> = opaque().flatten().copied().collect();
                let quantizer = NeuQuant::new(PALETTE_SPEED, usize::from(TRANSPARENT), &samples);
                let error = mean_squared_error(&quantizer, pixels);
                let table = quantizer.color_map_rgb();
                return (Palette::Neural(quantizer, error), table);
            }
            exact.insert(colour, exact.len() as u8);
            table.extend_from_slice(&colour);
        }
        (Palette::Exact(exact), table)
    }

    /// The indices of RGBA `pixels` in this palette (transparent ones at
    /// [`TRANSPARENT`]), or `None` when they do not fit it.
    fn indices(&self, pixels: &[u8]) -> Option<Vec<u8>> {
        let index = |pixel: &[u8]| -> Option<u8> {
            if pixel[3] == 0 {
                return Some(TRANSPARENT);
            }
            match self {
                Palette::Exact(colours) => colours.get(&[pixel[0], pixel[1], pixel[2]]).copied(),
                Palette::Neural(quantizer, _) => Some(quantizer.index_of(pixel) as u8),
            }
        };
        if let Palette::Neural(quantizer, first) = self
            && mean_squared_error(quantizer, pixels) > first * REUSE_ERROR_RATIO
        {
            return None;
        }
        pixels.chunks_exact(4).map(index).collect()
    }
}

/// The mean squared error per channel of `quantizer` on the opaque pixels
/// of RGBA `pixels`.
fn mean_squared_error(quantizer: &NeuQuant, pixels: &[u8]) -> f64 {
    let (mut sum, mut count) = (0u64, 0u64);
    for pixel in pixels.chunks_exact(4).filter(|pixel| pixel[3] != 0) {
        let mapped = quantizer
            .lookup(quantizer.index_of(pixel))
            .expect("an index of the map");
        for channel in 0..3 {
            sum += u64::from(pixel[channel].abs_diff(mapped[channel])).pow(2);
        }
        count += 3;
    }
    sum as f64 / count.max(1) as f64
}

/// Whether `next` is transparent anywhere `shown` is not: drawing `next`
/// over `shown` could not show that.
fn reveals(shown: &RgbaImage, next: &RgbaImage) -> bool {
    shown
        .pixels()
        .zip(next.pixels())
        .any(|(shown, next)| shown[3] != 0 && next[3] == 0)
}

/// The smallest rectangle (left, top, width, height) holding every pixel
/// where `frame` differs from `under`; `None` when none does.
fn changed_rectangle(under: &RgbaImage, frame: &RgbaImage) -> Option<(u32, u32, u32, u32)> {
    let differs = |x: u32, y: u32| -> bool { under.get_pixel(x, y) != frame.get_pixel(x, y) };
    let (width, height) = frame.dimensions();
    let rows_differ = |y: u32| (0..width).any(|x| differs(x, y));
    let top = (0..height).find(|&y| rows_differ(y))?;
    let bottom = (top..height).rev().find(|&y| rows_differ(y))?;
    let columns_differ = |x: u32| (top..=bottom).any(|y| differs(x, y));
    let left = (0..width).find(|&x| columns_differ(x))?;
    let right = (left..width).rev().find(|&x| columns_differ(x))?;
    Some((left, top, right - left + 1, bottom - top + 1))
}
