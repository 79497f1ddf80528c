//! Decoded AV1 pictures to 8-bit RGB(A), as libavif converts them by
//! default: the matrix from the sequence header (BT.709, BT.2020,
//! identity; BT.601 for unspecified and anything else), full or limited
//! range, chroma upsampled bilinearly.

use image::ImageResult;
use rav1d::include::dav1d::headers::{
    DAV1D_MC_BT709, DAV1D_MC_BT2020_CL, DAV1D_MC_BT2020_NCL, DAV1D_MC_IDENTITY, Dav1dSequenceHeader,
};

use super::av1::{Picture, Plane, Planes, Samples};
use super::corrupt;

/// Writes `picture`'s colours into `buf`, `channels` (3 or 4) bytes a
/// pixel; a fourth channel is set opaque.
pub(super) fn write_rgb(picture: &Picture, buf: &mut [u8], channels: usize) -> ImageResult<()> {
    check_size(picture, buf, channels)?;
    let matrix = Matrix::new(picture.sequence()?, picture.bits());
    match picture.samples()? {
        Samples::Eight(planes) => convert(&planes, &matrix, buf, channels),
        Samples::Deep(planes) => convert(&planes, &matrix, buf, channels),
    }
    Ok(())
}

/// Writes `picture`'s luma, an alpha item's, into every fourth byte of
/// `buf`.
pub(super) fn write_alpha(picture: &Picture, buf: &mut [u8]) -> ImageResult<()> {
    check_size(picture, buf, 4)?;
    let range = Range::new(picture.bits(), picture.sequence()?.color_range != 0);
    match picture.samples()? {
        Samples::Eight(planes) => alpha(&planes.luma, &range, buf),
        Samples::Deep(planes) => alpha(&planes.luma, &range, buf),
    }
    Ok(())
}

/// Divides colours by their alpha (a premultiplied AVIF's colours are
/// multiplied by it).
pub(super) fn unpremultiply(rgba: &mut [u8]) {
    for pixel in rgba.chunks_exact_mut(4) {
        let alpha = u32::from(pixel[3]);
        if alpha != 0 && alpha != 255 {
            for channel in &mut pixel[..3] {
                *channel = ((u32::from(*channel) * 255 + alpha / 2) / alpha).min(255) as u8;
            }
        }
    }
}

/// The picture must be the size the sequence header said, which `buf`
/// was allocated for.
fn check_size(picture: &Picture, buf: &[u8], channels: usize) -> ImageResult<()> {
    let (width, height) = picture.size();
    if width * height * channels != buf.len() {
        return Err(corrupt(
            "the AV1 picture is not the size its sequence header says",
        ));
    }
    Ok(())
}

fn convert<S: Copy + Into<f32>>(
    planes: &Planes<'_, S>,
    matrix: &Matrix,
    buf: &mut [u8],
    channels: usize,
) {
    let width = planes.luma.width;
    let mut chroma = planes.chroma.as_ref().map(|[u, v]| {
        [
            Upsampler::new(u, planes, width),
            Upsampler::new(v, planes, width),
        ]
    });
    for (y, out) in buf.chunks_exact_mut(width * channels).enumerate() {
        let pixels = out.chunks_exact_mut(channels).zip(planes.luma.row(y));
        match &mut chroma {
            Some([u, v]) => {
                let (u, v) = (u.row(y), v.row(y));
                for ((pixel, &luma), (&u, &v)) in pixels.zip(u.iter().zip(v)) {
                    pixel[..3].copy_from_slice(&matrix.rgb(luma.into(), u, v));
                }
            }
            None => {
                for (pixel, &luma) in pixels {
                    pixel[..3].fill(matrix.grey(luma.into()));
                }
            }
        }
        if channels == 4 {
            out.chunks_exact_mut(4).for_each(|pixel| pixel[3] = u8::MAX);
        }
    }
}

fn alpha<S: Copy + Into<f32>>(plane: &Plane<'_, S>, range: &Range, buf: &mut [u8]) {
    for (y, out) in buf.chunks_exact_mut(plane.width * 4).enumerate() {
        for (pixel, &alpha) in out.chunks_exact_mut(4).zip(plane.row(y)) {
            pixel[3] = to_byte(range.luma(alpha.into()));
        }
    }
}

/// A chroma plane at full resolution, a row at a time: each output sample
/// weighs its own chroma sample 3/4 and the next nearest 1/4, across and
/// down where the plane is halved (chroma sited between the luma samples,
/// as libavif's default upsampling takes it).
///
/// Rows are upsampled across once each and kept while the luma rows that
/// blend them go by (with 4:2:0, every chroma row serves four luma rows).
struct Upsampler<'p, 'a, S> {
    plane: &'p Plane<'a, S>,
    halved_across: bool,
    halved_down: bool,
    /// Chroma rows upsampled across, by row index; the oldest is replaced.
    across: [(usize, Vec<f32>); 3],
    /// The row handed out.
    row: Vec<f32>,
}

impl<'p, 'a, S: Copy + Into<f32>> Upsampler<'p, 'a, S> {
    fn new(plane: &'p Plane<'a, S>, planes: &Planes<'a, S>, width: usize) -> Self {
        Upsampler {
            plane,
            halved_across: planes.halved_across,
            halved_down: planes.halved_down,
            across: std::array::from_fn(|_| (usize::MAX, vec![0.0; width])),
            row: vec![0.0; width],
        }
    }

    /// Luma row `y`'s chroma.
    fn row(&mut self, y: usize) -> &[f32] {
        let (own, other) = neighbours(y, self.halved_down, self.plane.height - 1);
        let (near, far) = weights(self.halved_down);
        let own = self.across(own);
        let other = self.across(other);
        for (x, out) in self.row.iter_mut().enumerate() {
            *out = self.across[own].1[x] * near + self.across[other].1[x] * far;
        }
        &self.row
    }

    /// The slot of chroma row `y` upsampled across, made if not kept.
    fn across(&mut self, y: usize) -> usize {
        if let Some(slot) = self.across.iter().position(|(row, _)| *row == y) {
            return slot;
        }
        // Rows come in order, so the lowest is the oldest; an empty slot
        // (usize::MAX, wrapping to 0) goes first.
        let slot = (0..self.across.len())
            .min_by_key(|&slot| self.across[slot].0.wrapping_add(1))
            .expect("three slots");
        let (own, other) = weights(self.halved_across);
        let source = self.plane.row(y);
        let last = self.plane.width - 1;
        let (row, out) = &mut self.across[slot];
        *row = y;
        for (x, out) in out.iter_mut().enumerate() {
            let (x0, x1) = neighbours(x, self.halved_across, last);
            *out = source[x0].into() * own + source[x1].into() * other;
        }
        slot
    }
}

/// The weights of a sample's own chroma sample and of its other
/// neighbour.
fn weights(halved: bool) -> (f32, f32) {
    if halved { (0.75, 0.25) } else { (1.0, 0.0) }
}

/// The chroma sample for full-resolution position `at`, and its nearest
/// other neighbour, clamped to `0..=last`.
fn neighbours(at: usize, halved: bool, last: usize) -> (usize, usize) {
    if !halved {
        return (at, at);
    }
    let own = at / 2;
    let other = if at.is_multiple_of(2) {
        own.saturating_sub(1)
    } else {
        (own + 1).min(last)
    };
    (own, other)
}

/// Full or limited ("video") range at a depth.
struct Range {
    luma_offset: f32,
    luma_scale: f32,
    chroma_offset: f32,
    chroma_scale: f32,
}

impl Range {
    fn new(bits: u32, full: bool) -> Self {
        let max = ((1u32 << bits) - 1) as f32;
        let step = (1u32 << (bits - 8)) as f32;
        let chroma_offset = (1u32 << (bits - 1)) as f32;
        if full {
            Range {
                luma_offset: 0.0,
                luma_scale: 1.0 / max,
                chroma_offset,
                chroma_scale: 1.0 / max,
            }
        } else {
            Range {
                luma_offset: 16.0 * step,
                luma_scale: 1.0 / (219.0 * step),
                chroma_offset,
                chroma_scale: 1.0 / (224.0 * step),
            }
        }
    }

    /// A luma (or alpha, or identity-matrix) sample as 0..1.
    fn luma(&self, sample: f32) -> f32 {
        (sample - self.luma_offset) * self.luma_scale
    }

    /// A chroma sample as -0.5..0.5.
    fn chroma(&self, sample: f32) -> f32 {
        (sample - self.chroma_offset) * self.chroma_scale
    }
}

/// The sequence header's YUV to RGB conversion.
struct Matrix {
    range: Range,
    /// `None`: identity (the planes are G, B, R).
    coefficients: Option<Coefficients>,
}

/// R = Y + r_v·V, G = Y − g_u·U − g_v·V, B = Y + b_u·U.
struct Coefficients {
    r_v: f32,
    g_u: f32,
    g_v: f32,
    b_u: f32,
}

impl Matrix {
    fn new(sequence: &Dav1dSequenceHeader, bits: u32) -> Self {
        let range = Range::new(bits, sequence.color_range != 0);
        let (kr, kb) = match sequence.mtrx {
            DAV1D_MC_IDENTITY => {
                return Matrix {
                    range,
                    coefficients: None,
                };
            }
            DAV1D_MC_BT709 => (0.2126, 0.0722),
            DAV1D_MC_BT2020_NCL | DAV1D_MC_BT2020_CL => (0.2627, 0.0593),
            // Unspecified, BT.601 and the rest: BT.601, as libavif does.
            _ => (0.299, 0.114),
        };
        let kg = 1.0 - kr - kb;
        Matrix {
            range,
            coefficients: Some(Coefficients {
                r_v: 2.0 * (1.0 - kr),
                g_u: 2.0 * kb * (1.0 - kb) / kg,
                g_v: 2.0 * kr * (1.0 - kr) / kg,
                b_u: 2.0 * (1.0 - kb),
            }),
        }
    }

    fn rgb(&self, y: f32, u: f32, v: f32) -> [u8; 3] {
        let range = &self.range;
        match &self.coefficients {
            None => [range.luma(v), range.luma(y), range.luma(u)].map(to_byte),
            Some(c) => {
                let (y, u, v) = (range.luma(y), range.chroma(u), range.chroma(v));
                [y + c.r_v * v, y - c.g_u * u - c.g_v * v, y + c.b_u * u].map(to_byte)
            }
        }
    }

    fn grey(&self, y: f32) -> u8 {
        to_byte(self.range.luma(y))
    }
}

/// 0..1 to 0..255, rounded and clamped.
fn to_byte(value: f32) -> u8 {
    (value * 255.0 + 0.5).clamp(0.0, 255.0) as u8
}
