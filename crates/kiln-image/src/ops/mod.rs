//! The operations a request can ask for: the [`Op`] type, its bounds, the
//! default list, and the [`Pipeline`] wrapper.
//!
//! [`parse_ops`] turns the `ops` text into [`Op`]s; [`canonical`]
//! writes them back in one stable form. Serde uses that same text form for
//! an [`Op`] (`"resize(w=800,fit=cover)"`), so deserialized operations are
//! validated exactly like parsed ones.

mod canonical;
mod parse;

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::format::Format;

pub use canonical::canonical;
pub use parse::{OpsError, parse_ops};

/// At most this many operations in one request.
pub const MAX_OPS: usize = 32;
/// Bounds of `resize` `w` and `h`.
pub const RESIZE_SIDE: RangeInclusive<u32> = 1..=16_384;
/// Upper bound of `blur` `sigma` (exclusive lower bound 0).
pub const MAX_BLUR_SIGMA: f32 = 50.0;
/// Upper bound of `sharpen` `sigma` (exclusive lower bound 0).
pub const MAX_SHARPEN_SIGMA: f32 = 20.0;
/// Bounds of `brightness`.
pub const BRIGHTNESS: RangeInclusive<i16> = -255..=255;
/// Bounds of `contrast`.
pub const CONTRAST: RangeInclusive<f32> = -100.0..=100.0;
/// Bounds of `quality`.
pub const QUALITY: RangeInclusive<u8> = 1..=100;

/// One image operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Op {
    /// `resize(w=N,h=N,fit=F)`: at least one of `width`, `height`.
    Resize {
        /// Target width; `None` keeps the aspect ratio.
        width: Option<u32>,
        /// Target height; `None` keeps the aspect ratio.
        height: Option<u32>,
        /// How the image meets a box given by both sides.
        fit: Fit,
        /// What `fit=cover` keeps of the overflow.
        gravity: Gravity,
    },
    /// `crop(x=N,y=N,w=N,h=N)`.
    Crop {
        /// Left edge.
        x: u32,
        /// Top edge.
        y: u32,
        /// Width, at least 1.
        width: u32,
        /// Height, at least 1.
        height: u32,
    },
    /// `rotate(90|180|270)`, clockwise.
    Rotate(Rotation),
    /// `flip(h|v)`.
    Flip(Axis),
    /// `blur(sigma=F)`.
    Blur {
        /// Standard deviation in pixels, in (0, 50].
        sigma: f32,
    },
    /// `sharpen(sigma=F,threshold=N)`: unsharp mask.
    Sharpen {
        /// Standard deviation of the blur, in (0, 20].
        sigma: f32,
        /// Smallest channel difference that is sharpened.
        threshold: u8,
    },
    /// `grayscale`.
    Grayscale,
    /// `brightness(N)`, -255..=255.
    Brightness(i16),
    /// `contrast(F)`, a percentage in -100..=100.
    Contrast(f32),
    /// `format(jpeg|png|webp|gif|avif)`: the output format.
    Format(Format),
    /// `format(auto)`: the output format negotiated from the request's
    /// `Accept` at submission, which replaces this operation by the
    /// [`Op::Format`] chosen (`kiln::negotiation`).
    /// Left unresolved, it keeps the source format, as a request without
    /// `Accept` would.
    AutoFormat,
    /// `quality(N)`, 1..=100: lossy output quality (JPEG, WebP, AVIF). For
    /// WebP, `quality(100)` selects lossless compression.
    Quality(u8),
    /// `background(RRGGBB)` or `background(RRGGBBAA)`: the colour
    /// `fit=pad` fills with and JPEG output flattens transparency onto
    /// (its alpha ignored there); the last one wins. Default: opaque white.
    Background(Colour),
}

/// An sRGB colour with alpha, 8 bits a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Colour(pub [u8; 4]);

impl Colour {
    /// Opaque white: the background when none is asked for.
    pub const WHITE: Colour = Colour([255; 4]);

    /// `RRGGBB` (opaque) or `RRGGBBAA`, hex digits in either case.
    pub(crate) fn from_hex(text: &str) -> Option<Colour> {
        if !matches!(text.len(), 6 | 8) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut channels = [255; 4];
        for (channel, pair) in channels.iter_mut().zip(text.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *channel = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Colour(channels))
    }
}

impl fmt::Display for Colour {
    /// Lowercase hex, `RRGGBB` when opaque, else `RRGGBBAA`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [r, g, b, a] = self.0;
        write!(f, "{r:02x}{g:02x}{b:02x}")?;
        if a != 255 {
            write!(f, "{a:02x}")?;
        }
        Ok(())
    }
}

/// How `resize` meets a box given by both `w` and `h`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Fit {
    /// Fit inside the box, keeping the aspect ratio.
    #[default]
    Contain,
    /// Fill the box keeping the aspect ratio, cropping the overflow around
    /// the centre.
    Cover,
    /// Stretch to exactly the box.
    Fill,
    /// Fit inside the box keeping the aspect ratio, as `contain`, then fill
    /// the rest of the box with the [`Op::Background`] colour (letterbox),
    /// the image placed where `gravity` says.
    Pad,
}

/// What part of the image `resize(fit=cover)` keeps when it crops the
/// overflow: a fixed side or corner, or the most interesting part, found
/// as libvips's `interesting` modes (and sharp's `strategy`) find it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Gravity {
    /// The middle (`centre`, or `center`).
    #[default]
    Centre,
    /// The top edge's middle.
    North,
    /// The top right corner.
    NorthEast,
    /// The right edge's middle.
    East,
    /// The bottom right corner.
    SouthEast,
    /// The bottom edge's middle.
    South,
    /// The bottom left corner.
    SouthWest,
    /// The left edge's middle.
    West,
    /// The top left corner.
    NorthWest,
    /// The busiest part: strips of least entropy (of their histogram) are
    /// trimmed from the edges until the box is left.
    Entropy,
    /// What draws the eye: edges, skin tones and saturated colour,
    /// blurred over the size of the box, and the box centred on the peak.
    Attention,
}

/// A clockwise rotation by a multiple of 90 degrees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rotation {
    /// 90 degrees clockwise.
    Deg90,
    /// 180 degrees.
    Deg180,
    /// 270 degrees clockwise (90 counter-clockwise).
    Deg270,
}

/// The axis `flip` mirrors across.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Axis {
    /// `h`: mirror left to right.
    Horizontal,
    /// `v`: turn upside down.
    Vertical,
}

impl Fit {
    pub(crate) const NAMES: &'static str = "contain, cover, fill, pad";

    /// The grammar name.
    pub fn name(self) -> &'static str {
        match self {
            Fit::Contain => "contain",
            Fit::Cover => "cover",
            Fit::Fill => "fill",
            Fit::Pad => "pad",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Fit> {
        [Fit::Contain, Fit::Cover, Fit::Fill, Fit::Pad]
            .into_iter()
            .find(|f| f.name() == name)
    }
}

impl Gravity {
    const ALL: [Gravity; 11] = [
        Gravity::Centre,
        Gravity::North,
        Gravity::NorthEast,
        Gravity::East,
        Gravity::SouthEast,
        Gravity::South,
        Gravity::SouthWest,
        Gravity::West,
        Gravity::NorthWest,
        Gravity::Entropy,
        Gravity::Attention,
    ];
    pub(crate) const NAMES: &'static str = "centre, north, northeast, east, southeast, south, southwest, west, northwest, entropy, attention";

    /// The grammar name.
    pub fn name(self) -> &'static str {
        match self {
            Gravity::Centre => "centre",
            Gravity::North => "north",
            Gravity::NorthEast => "northeast",
            Gravity::East => "east",
            Gravity::SouthEast => "southeast",
            Gravity::South => "south",
            Gravity::SouthWest => "southwest",
            Gravity::West => "west",
            Gravity::NorthWest => "northwest",
            Gravity::Entropy => "entropy",
            Gravity::Attention => "attention",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Gravity> {
        if name == "center" {
            return Some(Gravity::Centre);
        }
        Gravity::ALL.into_iter().find(|g| g.name() == name)
    }

    /// How far from the left and the top a margin of `spare` pixels puts
    /// what is kept or placed: the share of each side the gravity's
    /// [`centring`](Gravity::centring) gives, rounded; the content-aware
    /// gravities, which choose by content, count as centre here.
    pub(crate) fn offset(self, spare: (u32, u32)) -> (u32, u32) {
        let (x, y) = self.centring().unwrap_or((0.5, 0.5));
        let share = |spare: u32, fraction: f64| (f64::from(spare) * fraction).round() as u32;
        (share(spare.0, x), share(spare.1, y))
    }

    /// Whether this gravity means something for `fit` (`both`: with both
    /// sides given): any for `cover`, a compass point for `pad`, only the
    /// default otherwise (there is nothing to place).
    pub(crate) fn fits(self, fit: Fit, both: bool) -> bool {
        self == Gravity::Centre
            || (both && fit == Fit::Cover)
            || (both && fit == Fit::Pad && self.centring().is_some())
    }

    /// Where a fixed gravity keeps the crop, as fractions of the overflow
    /// cut from the left and from the top (`(0.5, 0.5)`: as much from each
    /// side); `None` for the content-aware ones.
    pub(crate) fn centring(self) -> Option<(f64, f64)> {
        let (x, y) = match self {
            Gravity::Centre => (0.5, 0.5),
            Gravity::North => (0.5, 0.0),
            Gravity::NorthEast => (1.0, 0.0),
            Gravity::East => (1.0, 0.5),
            Gravity::SouthEast => (1.0, 1.0),
            Gravity::South => (0.5, 1.0),
            Gravity::SouthWest => (0.0, 1.0),
            Gravity::West => (0.0, 0.5),
            Gravity::NorthWest => (0.0, 0.0),
            Gravity::Entropy | Gravity::Attention => return None,
        };
        Some((x, y))
    }
}

impl Rotation {
    /// The angle in degrees.
    pub fn degrees(self) -> u16 {
        match self {
            Rotation::Deg90 => 90,
            Rotation::Deg180 => 180,
            Rotation::Deg270 => 270,
        }
    }

    pub(crate) fn from_degrees(name: &str) -> Option<Rotation> {
        match name {
            "90" => Some(Rotation::Deg90),
            "180" => Some(Rotation::Deg180),
            "270" => Some(Rotation::Deg270),
            _ => None,
        }
    }
}

impl Axis {
    /// The grammar name: `h` or `v`.
    pub fn name(self) -> &'static str {
        match self {
            Axis::Horizontal => "h",
            Axis::Vertical => "v",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Axis> {
        match name {
            "h" => Some(Axis::Horizontal),
            "v" => Some(Axis::Vertical),
            _ => None,
        }
    }
}

impl Op {
    /// Checks the bounds that the grammar enforces, for operations built in
    /// code rather than parsed. The message is client-safe.
    pub fn check(&self) -> Result<(), String> {
        let in_sigma = |sigma: f32, max: f32| sigma > 0.0 && sigma <= max;
        let ok = match *self {
            Op::Resize {
                width,
                height,
                fit,
                gravity,
            } => {
                (width.is_some() || height.is_some())
                    && width.is_none_or(|w| RESIZE_SIDE.contains(&w))
                    && height.is_none_or(|h| RESIZE_SIDE.contains(&h))
                    && gravity.fits(fit, width.is_some() && height.is_some())
            }
            Op::Crop { width, height, .. } => width >= 1 && height >= 1,
            Op::Blur { sigma } => in_sigma(sigma, MAX_BLUR_SIGMA),
            Op::Sharpen { sigma, .. } => in_sigma(sigma, MAX_SHARPEN_SIGMA),
            Op::Brightness(value) => BRIGHTNESS.contains(&value),
            Op::Contrast(value) => CONTRAST.contains(&value),
            Op::Quality(value) => QUALITY.contains(&value),
            Op::Rotate(_)
            | Op::Flip(_)
            | Op::Grayscale
            | Op::Format(_)
            | Op::AutoFormat
            | Op::Background(_) => true,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("`{self}` is out of bounds"))
        }
    }
}

/// What a request gets without `ops`: the EXIF orientation (always applied
/// anyway), a mild sharpen, and re-encoding in the source format.
pub fn default_ops() -> Vec<Op> {
    vec![Op::Sharpen {
        sigma: 0.5,
        threshold: 2,
    }]
}

/// A list of operations, with the grammar as its text form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pipeline {
    /// The operations, applied in order.
    pub ops: Vec<Op>,
}

impl Default for Pipeline {
    /// [`default_ops`].
    fn default() -> Self {
        Pipeline { ops: default_ops() }
    }
}

impl FromStr for Pipeline {
    type Err = OpsError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        parse_ops(spec).map(|ops| Pipeline { ops })
    }
}

impl fmt::Display for Pipeline {
    /// [`canonical`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&canonical(&self.ops))
    }
}

impl From<Op> for String {
    fn from(op: Op) -> String {
        op.to_string()
    }
}

impl TryFrom<String> for Op {
    type Error = OpsError;

    fn try_from(text: String) -> Result<Op, OpsError> {
        text.parse()
    }
}

impl FromStr for Op {
    type Err = OpsError;

    /// Exactly one operation in the grammar.
    fn from_str(text: &str) -> Result<Op, OpsError> {
        let mut ops = parse_ops(text)?;
        if ops.len() != 1 {
            let at = text.find(',').unwrap_or(0);
            return Err(OpsError::new(at, "expected a single operation"));
        }
        Ok(ops.remove(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ops_sharpen_mildly_and_keep_the_format() {
        let ops = default_ops();
        assert!(matches!(ops.as_slice(), [Op::Sharpen { sigma, .. }] if *sigma <= 1.0));
    }

    #[test]
    fn op_serializes_as_its_canonical_text() {
        let op = Op::Resize {
            width: Some(800),
            height: None,
            fit: Fit::Cover,
            gravity: Gravity::Centre,
        };
        assert_eq!(
            serde_json::to_string(&op).unwrap(),
            "\"resize(w=800,fit=cover)\""
        );
    }

    #[test]
    fn op_deserializes_through_the_grammar() {
        let op: Op = serde_json::from_str("\"rotate(90)\"").unwrap();
        assert_eq!(op, Op::Rotate(Rotation::Deg90));
    }

    #[test]
    fn op_deserialization_refuses_out_of_range_values() {
        let error = serde_json::from_str::<Op>("\"blur(sigma=99)\"").unwrap_err();
        assert!(error.to_string().contains("sigma"), "{error}");
    }

    #[test]
    fn pipeline_serializes_as_a_list_of_ops() {
        let pipeline: Pipeline = "grayscale, format(png)".parse().unwrap();
        let json = serde_json::to_string(&pipeline).unwrap();
        assert_eq!(json, r#"["grayscale","format(png)"]"#);
        assert_eq!(serde_json::from_str::<Pipeline>(&json).unwrap(), pipeline);
    }

    #[test]
    fn check_refuses_out_of_bounds_ops_built_in_code() {
        assert!(Op::Blur { sigma: 0.0 }.check().is_err());
        assert!(Op::Quality(0).check().is_err());
        assert!(
            Op::Resize {
                width: None,
                height: None,
                fit: Fit::Fill,
                gravity: Gravity::Centre,
            }
            .check()
            .is_err()
        );
        assert!(
            Op::Resize {
                width: Some(8),
                height: Some(8),
                fit: Fit::Contain,
                gravity: Gravity::Attention,
            }
            .check()
            .is_err()
        );
        assert!(Op::Contrast(f32::NAN).check().is_err());
        assert!(Op::Brightness(-255).check().is_ok());
    }
}
