//! AVIF input: the container read by `mp4parse` (Firefox's AVIF parser),
//! the AV1 pictures decoded by `rav1d` (dav1d ported to Rust, assembly off
//! so that it builds for Wasm), YUV turned into RGB here.
//!
//! What is read: the primary item (in an image sequence too: its still
//! image), 8, 10 and 12 bits, 4:2:0, 4:2:2, 4:4:4 and grey; the alpha item,
//! straight or premultiplied; the ICC profile (`colr`), applied like any
//! other format's (see [`crate::colour`]), or else the sequence header's
//! CICP code points when they name another colour space than sRGB's
//! ([`AvifDecoder::cicp`]); rotation and mirroring
//! (`irot`, `imir`), applied like EXIF orientation. A grid image (a
//! picture tiled into several AV1 items, which some cameras write) is
//! refused as unsupported, by name: neither parser on crates.io reads one.
//!
//! The dimensions come from the AV1 sequence header, read without decoding,
//! so the limits are checked before any picture is allocated; the decoder
//! is also told the exact frame size, and refuses a larger frame. The
//! decoded picture must be that size.
//!
//! [`av1`] wraps rav1d, [`yuv`] turns its pictures into RGB. Measured
//! (`bench/run` section 9): within 0.26 levels of libavif's `avifdec` on
//! average (2 at most) on a real photo; on Spin, decoding takes 0.25 s for
//! 4 MP and 0.81 s for 16 MP.

mod av1;
#[cfg(test)]
mod tests;
mod yuv;

use image::error::{
    DecodingError, ImageFormatHint, LimitError, LimitErrorKind, UnsupportedError,
    UnsupportedErrorKind,
};
use image::metadata::Orientation;
use image::{ColorType, ImageDecoder, ImageFormat, ImageResult};
use mp4parse::{AvifContext, Feature, ImageMirror, ImageRotation, ParseStrictness};

use crate::colour::Cicp;
use av1::{Av1Decoder, sequence_header};

/// An AVIF file, its container read, positioned before the pixels.
pub(crate) struct AvifDecoder {
    container: AvifContext,
    /// The coded size (before rotation), from the AV1 sequence header.
    width: u32,
    height: u32,
    orientation: Orientation,
    /// The sequence header's CICP colour primaries and transfer function.
    primaries: u32,
    transfer: u32,
}

impl AvifDecoder {
    /// Reads the container and the primary item's sequence header.
    pub(crate) fn new(bytes: &[u8]) -> ImageResult<Self> {
        // Permissive: the "should"s and "shall"s of MIAF that a decoder can
        // do without (a missing `pixi` box, say) are not reasons to refuse
        // a photo; libavif and browsers read such files. A cut or a broken
        // box is an error whatever the strictness.
        let image = crate::integrity::avif_image(bytes);
        // An image sequence's track (`moov`) is not read, only its primary
        // item: the container reader is shown it as a `free` box, so that
        // it does not set memory aside by the track's tables' sizes and
        // counts (which the integrity walk does not check) for nothing.
        let without_track;
        let image = match crate::integrity::avif_track_types(image) {
            types if types.is_empty() => image,
            types => {
                let mut copy = image.to_vec();
                for at in types {
                    copy[at..at + 4].copy_from_slice(b"free");
                }
                without_track = copy;
                &without_track
            }
        };
        let container = mp4parse::read_avif(&mut &image[..], ParseStrictness::Permissive)
            .map_err(container_error)?;
        if container.unsupported_features.contains(Feature::Grid) {
            return Err(unsupported(
                "AVIF grid images (one picture tiled into several) are not supported; send it as one tile, or as JPEG, PNG or WebP",
            ));
        }
        let colour = container
            .primary_item_coded_data()
            .ok_or_else(|| corrupt("the AVIF file has no primary image"))?;
        let sequence = sequence_header(colour)?;
        let (width, height) = (sequence.max_width, sequence.max_height);
        let (Ok(width), Ok(height)) = (u32::try_from(width), u32::try_from(height)) else {
            return Err(corrupt("the AV1 sequence header has a negative size"));
        };
        let orientation = orientation(&container)?;
        Ok(AvifDecoder {
            container,
            width,
            height,
            orientation,
            primaries: sequence.pri,
            transfer: sequence.trc,
        })
    }

    /// The colour space the AV1 sequence header names, when it is not
    /// sRGB's: BT.709 primaries, or unspecified ones, with an SDR transfer
    /// are sRGB enough (what avifenc and browsers write for sRGB photos).
    /// An ICC profile in the container, if any, comes first.
    pub(crate) fn cicp(&self) -> Option<Cicp> {
        const BT709: u32 = 1;
        const UNSPECIFIED: u32 = 2;
        let cicp = Cicp {
            primaries: u8::try_from(self.primaries).unwrap_or(u8::MAX),
            transfer: u8::try_from(self.transfer).unwrap_or(u8::MAX),
        };
        let srgb_like = matches!(self.primaries, BT709 | UNSPECIFIED) && !cicp.is_hdr();
        (!srgb_like).then_some(cicp)
    }

    fn has_alpha(&self) -> bool {
        self.container.alpha_item_is_present()
    }
}

impl ImageDecoder for AvifDecoder {
    fn dimensions(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn color_type(&self) -> ColorType {
        if self.has_alpha() {
            ColorType::Rgba8
        } else {
            ColorType::Rgb8
        }
    }

    fn icc_profile(&mut self) -> ImageResult<Option<Vec<u8>>> {
        match self.container.icc_colour_information() {
            Some(Ok(icc)) => Ok(Some(icc.to_vec())),
            Some(Err(error)) => Err(container_error(error)),
            None => Ok(None),
        }
    }

    fn orientation(&mut self) -> ImageResult<Orientation> {
        Ok(self.orientation)
    }

    fn read_image(self, buf: &mut [u8]) -> ImageResult<()> {
        let channels = self.color_type().channel_count() as usize;
        let colour = self
            .container
            .primary_item_coded_data()
            .ok_or_else(|| corrupt("the AVIF file has no primary image"))?;
        // One picture at a time: the colour one is gone before the alpha
        // one is decoded.
        let picture = Av1Decoder::open(self.width, self.height)?.decode(colour)?;
        yuv::write_rgb(&picture, buf, channels)?;
        drop(picture);
        if let Some(alpha) = self.container.alpha_item_coded_data() {
            let picture = Av1Decoder::open(self.width, self.height)?.decode(alpha)?;
            yuv::write_alpha(&picture, buf)?;
            if self.container.premultiplied_alpha {
                yuv::unpremultiply(buf);
            }
        }
        Ok(())
    }

    fn read_image_boxed(self: Box<Self>, buf: &mut [u8]) -> ImageResult<()> {
        (*self).read_image(buf)
    }
}

/// `irot` then `imir`, the order MIAF prescribes, as one orientation.
fn orientation(container: &AvifContext) -> ImageResult<Orientation> {
    // irot turns anticlockwise; Orientation's turns are clockwise.
    let clockwise = match container.image_rotation().map_err(container_error)? {
        ImageRotation::D0 => 0,
        ImageRotation::D90 => 3,
        ImageRotation::D180 => 2,
        ImageRotation::D270 => 1,
    };
    let mirror = container.image_mirror_ptr().map_err(container_error)?;
    // SAFETY: a non-null pointer points into `container`'s properties,
    // borrowed for this call.
    let mirror = unsafe { mirror.as_ref() };
    // A flip after a turn: top to bottom is a half turn more and a
    // left-to-right flip. (imir's bit 0 exchanges top and bottom: HEIF's
    // amended reading, libavif's and mp4parse's.)
    let (clockwise, flip) = match mirror {
        None => (clockwise, false),
        Some(ImageMirror::LeftRight) => (clockwise, true),
        Some(ImageMirror::TopBottom) => ((clockwise + 2) % 4, true),
    };
    Ok(match (clockwise, flip) {
        (0, false) => Orientation::NoTransforms,
        (1, false) => Orientation::Rotate90,
        (2, false) => Orientation::Rotate180,
        (3, false) => Orientation::Rotate270,
        (0, true) => Orientation::FlipHorizontal,
        (1, true) => Orientation::Rotate90FlipH,
        (2, true) => Orientation::FlipVertical,
        _ => Orientation::Rotate270FlipH,
    })
}

fn container_error(error: mp4parse::Error) -> image::ImageError {
    match error {
        mp4parse::Error::UnexpectedEOF => {
            corrupt("the AVIF data ends before the end of the image: the file is truncated")
        }
        mp4parse::Error::InvalidData(status) => {
            corrupt(&format!("damaged AVIF container: {}", <&str>::from(status)))
        }
        mp4parse::Error::Unsupported(what) => unsupported(&format!("AVIF: {what}")),
        mp4parse::Error::OutOfMemory => {
            image::ImageError::Limits(LimitError::from_kind(LimitErrorKind::InsufficientMemory))
        }
        other => corrupt(&format!("damaged AVIF container: {other}")),
    }
}

pub(super) fn corrupt(message: &str) -> image::ImageError {
    image::ImageError::Decoding(DecodingError::new(
        ImageFormatHint::Exact(ImageFormat::Avif),
        message.to_owned(),
    ))
}

fn unsupported(feature: &str) -> image::ImageError {
    image::ImageError::Unsupported(UnsupportedError::from_format_and_kind(
        ImageFormatHint::Exact(ImageFormat::Avif),
        UnsupportedErrorKind::GenericFeature(feature.to_owned()),
    ))
}
