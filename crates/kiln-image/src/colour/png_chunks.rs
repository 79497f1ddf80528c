//! PNG's own colour chunks, for a PNG without an ICC profile (`iCCP`):
//! `sRGB` says sRGB outright; `gAMA` (the exponent the values were encoded
//! with) and `cHRM` (the chromaticities of the white point and the three
//! primaries) describe another space. Browsers honour them; libvips, and so
//! sharp and imgproxy, ignore them. Kiln honours them, with one exception:
//! a `gAMA` of 1/2.2 with sRGB's chromaticities (or none) is what tools
//! that meant sRGB wrote for decades, and is read as sRGB, not as a pure
//! 2.2 curve that would lift the deepest shadows by a few levels.
//! (`cICP`, PNG's newest chunk, is not read.)

use std::io::Cursor;

use moxcms::{Chromaticity, ColorPrimaries, ColorProfile, ToneReprCurve};

use super::{Tag, Warning};

/// A PNG's `gAMA` and `cHRM`, as stored.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Colorimetry {
    /// `gAMA`: the exponent the values were encoded with (0.45455 for
    /// 1/2.2).
    gamma: Option<f32>,
    /// `cHRM`: CIE xy of the white point, red, green and blue.
    chromaticities: Option<[(f32, f32); 4]>,
}

/// sRGB's white point (D65) and primaries (BT.709), CIE xy.
const SRGB_CHROMATICITIES: [(f32, f32); 4] =
    [(0.3127, 0.3290), (0.64, 0.33), (0.30, 0.60), (0.15, 0.06)];

/// What a PNG without `iCCP` says of its colours: [`Tag::Srgb`] when it
/// has `sRGB`, or neither `gAMA` nor `cHRM`, or when its chunks cannot be
/// read (decoding then says what is wrong with the file).
pub(crate) fn colour_chunks(bytes: &[u8]) -> Tag {
    let Ok(reader) = png::Decoder::new(Cursor::new(bytes)).read_info() else {
        return Tag::Srgb;
    };
    let info = reader.info();
    if info.srgb.is_some() {
        return Tag::Srgb;
    }
    let colorimetry = Colorimetry {
        gamma: info.gama_chunk.map(|gamma| gamma.into_value()),
        chromaticities: info.chrm_chunk.map(|chunk| {
            [chunk.white, chunk.red, chunk.green, chunk.blue]
                .map(|(x, y)| (x.into_value(), y.into_value()))
        }),
    };
    if colorimetry == Colorimetry::default() {
        Tag::Srgb
    } else {
        Tag::Png(colorimetry)
    }
}

impl Colorimetry {
    /// The profile these chunks describe, for grey or colour pixels: `None`
    /// when that is sRGB (see the module docs), a warning when the values
    /// cannot describe a colour space (a gamma of zero, a primary with no
    /// luminance).
    pub(super) fn profile(&self, grey: bool) -> Option<Result<ColorProfile, Warning>> {
        if self.means_srgb() {
            return None;
        }
        if let Some(gamma) = self.gamma
            && !(gamma > 0.01 && gamma < 100.0)
        {
            return Some(Err(self.unusable(&format!("a gAMA of {gamma}"))));
        }
        if let Some(xy) = self.chromaticities
            && !xy
                .iter()
                .all(|&(x, y)| (0.0..=1.0).contains(&x) && y > 0.0 && y <= 1.0)
        {
            return Some(Err(self.unusable("cHRM chromaticities outside 0–1")));
        }
        // The curve from stored values to light: value^(1/gAMA).
        let curve = self
            .gamma
            .map(|gamma| ToneReprCurve::Parametric(vec![1.0 / gamma]));
        if grey {
            // Chromaticities mean nothing to grey; a grey PNG with only
            // cHRM is sRGB grey.
            let curve = curve?;
            let mut profile = ColorProfile::new_gray_with_gamma(1.0);
            profile.gray_trc = Some(curve);
            return Some(Ok(profile));
        }
        let mut profile = ColorProfile::new_srgb();
        if let Some([white, red, green, blue]) = self.chromaticities {
            let xy = |(x, y): (f32, f32)| Chromaticity::new(x, y);
            let primaries = ColorPrimaries {
                red: xy(red),
                green: xy(green),
                blue: xy(blue),
            };
            profile.update_rgb_colorimetry(xy(white).to_xyyb(), primaries);
        }
        if let Some(curve) = curve {
            // sRGB's CICP tag would otherwise still say sRGB's curve.
            profile.cicp = None;
            profile.red_trc = Some(curve.clone());
            profile.green_trc = Some(curve.clone());
            profile.blue_trc = Some(curve);
        }
        Some(Ok(profile))
    }

    /// A `gAMA` of 1/2.2 (within half a percent) with sRGB's
    /// chromaticities (within 0.001, or no `cHRM`).
    fn means_srgb(&self) -> bool {
        let srgb_gamma = self
            .gamma
            .is_none_or(|gamma| (gamma * 2.2 - 1.0).abs() < 0.005);
        let srgb_primaries = self.chromaticities.is_none_or(|xy| {
            xy.iter()
                .zip(SRGB_CHROMATICITIES)
                .all(|(&(x, y), (sx, sy))| (x - sx).abs() <= 0.001 && (y - sy).abs() <= 0.001)
        });
        srgb_gamma && srgb_primaries
    }

    fn unusable(&self, what: &str) -> Warning {
        Warning::ProfileIgnored(format!(
            "(PNG's gAMA and cHRM chunks) cannot describe colours with {what}; {}",
            super::AS_SRGB
        ))
    }
}
