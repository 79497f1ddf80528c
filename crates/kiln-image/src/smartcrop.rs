//! Content-aware crops for `resize(fit=cover,gravity=entropy|attention)`:
//! where to cut a `size` window out of a frame that covers it. The two
//! strategies are libvips's `interesting` modes (which came from sharp),
//! re-implemented from their description:
//!
//! - **entropy** trims the edges in up to eight rounds per axis, each
//!   time dropping the strip (left or right, top or bottom) whose
//!   channels' histograms have the lower mean entropy: what is left is
//!   the busiest part.
//! - **attention** shrinks the frame to 32×32 and scores every cell for
//!   what draws the eye (luminance edges, skin tones, saturated reds and
//!   greens, dark cells ignored), blurs the scores over the size of the
//!   window, and centres the window on the highest.
//!
//! Checked against `vips thumbnail --crop` (8.14) on the three corpus
//! photos at 400×400 and 300×600: entropy chose libvips's window in all
//! six (mean difference of the outputs 0.6–2.6 levels, which the two
//! resizers account for; 14–83 from any other window); attention in
//! three of six, and in the other three a window nearer libvips's than
//! the centre's (mean difference 22.5, 34.7 and 35.0 against 28.5, 36.9
//! and 88.1: libvips scores at full size, then shrinks the scores; Kiln
//! shrinks first).

use image::{DynamicImage, GenericImageView, RgbImage};

use crate::ops::Gravity;
use crate::resize::resized;

/// The top-left corner of the `size` window `gravity` keeps of `frame`,
/// which is at least `size` on both sides.
pub(crate) fn window(frame: &DynamicImage, size: (u32, u32), gravity: Gravity) -> (u32, u32) {
    let (width, height) = frame.dimensions();
    debug_assert!(width >= size.0 && height >= size.1);
    match gravity {
        Gravity::Entropy => entropy_window(&frame.to_rgb8(), size),
        Gravity::Attention => attention_window(frame, size),
        // Fixed gravities are cropped by the resizer itself (this is
        // where its crop falls).
        fixed => fixed.offset((width - size.0, height - size.1)),
    }
}

/// See the module docs.
fn entropy_window(frame: &RgbImage, size: (u32, u32)) -> (u32, u32) {
    let (mut left, mut top) = (0, 0);
    let (mut width, mut height) = frame.dimensions();
    let slice = (width - size.0)
        .div_ceil(8)
        .max((height - size.1).div_ceil(8));
    while width > size.0 || height > size.1 {
        let strip = (width - size.0).min(slice);
        if strip > 0 {
            let left_score = entropy(frame, (left, top), (strip, height));
            let right_score = entropy(frame, (left + width - strip, top), (strip, height));
            width -= strip;
            if left_score < right_score {
                left += strip;
            }
        }
        let strip = (height - size.1).min(slice);
        if strip > 0 {
            let top_score = entropy(frame, (left, top), (width, strip));
            let bottom_score = entropy(frame, (left, top + height - strip), (width, strip));
            height -= strip;
            if top_score < bottom_score {
                top += strip;
            }
        }
    }
    (left, top)
}

/// The entropy, in bits, of a rectangle of `frame`: the mean over the
/// three channels of the entropy of each one's histogram, as libvips's
/// `hist_find` and `hist_entropy` score a strip.
fn entropy(frame: &RgbImage, (left, top): (u32, u32), (width, height): (u32, u32)) -> f64 {
    let mut histograms = [[0u64; 256]; 3];
    for y in top..top + height {
        for x in left..left + width {
            for (histogram, &sample) in histograms.iter_mut().zip(&frame.get_pixel(x, y).0) {
                histogram[usize::from(sample)] += 1;
            }
        }
    }
    let total = f64::from(width) * f64::from(height);
    let bits: f64 = histograms
        .iter()
        .flatten()
        .filter(|&&count| count > 0)
        .map(|&count| {
            let p = count as f64 / total;
            -p * p.log2()
        })
        .sum();
    bits / 3.0
}

/// The side of the grid attention scores on: the precision with which it
/// places the window.
const GRID: u32 = 32;

/// See the module docs.
fn attention_window(frame: &DynamicImage, size: (u32, u32)) -> (u32, u32) {
    let (width, height) = frame.dimensions();
    let grid = match resized(frame, (GRID, GRID), None) {
        Ok(grid) => grid.to_rgb8(),
        Err(_) => return entropy_window(&frame.to_rgb8(), size),
    };
    let scores = scores(&grid);
    let (hscale, vscale) = (
        f64::from(GRID) / f64::from(width),
        f64::from(GRID) / f64::from(height),
    );
    // Blur over the window's size on the grid: how large an area counts.
    let sigma = (f64::from(size.0) * hscale).hypot(f64::from(size.1) * vscale) / 10.0;
    let blurred = gaussian_blur(&scores, sigma.max(1.0));
    let peak = (0..blurred.len())
        .max_by(|&a, &b| blurred[a].total_cmp(&blurred[b]))
        .unwrap_or(0);
    let (gx, gy) = (peak as u32 % GRID, peak as u32 / GRID);
    // The centre of the peak's cell, back in frame coordinates.
    let centre_x = ((f64::from(gx) + 0.5) / hscale) as u32;
    let centre_y = ((f64::from(gy) + 0.5) / vscale) as u32;
    (
        centre_x.saturating_sub(size.0 / 2).min(width - size.0),
        centre_y.saturating_sub(size.1 / 2).min(height - size.1),
    )
}

/// Each cell's interest: its luminance edge strength, how close its
/// colour is to skin, and its CIELAB a* (red is interesting); cells darker
/// than 5% luminance score nothing but their edges.
fn scores(grid: &RgbImage) -> Vec<f64> {
    let xyz: Vec<[f64; 3]> = grid.pixels().map(|p| srgb_to_xyz(p.0)).collect();
    let side = GRID as usize;
    let luminance = |x: isize, y: isize| {
        let clamp = |v: isize| v.clamp(0, side as isize - 1) as usize;
        xyz[clamp(y) * side + clamp(x)][1]
    };
    // smartcrop.js's skin colour, as a direction in XYZ.
    const SKIN: [f64; 3] = [0.78, 0.57, 0.44];
    (0..side * side)
        .map(|index| {
            let (x, y) = ((index % side) as isize, (index / side) as isize);
            let laplacian = 4.0 * luminance(x, y)
                - luminance(x - 1, y)
                - luminance(x + 1, y)
                - luminance(x, y - 1)
                - luminance(x, y + 1);
            let edges = (5.0 * laplacian).abs();
            let [cx, cy, cz] = xyz[index];
            if cy <= 5.0 {
                return edges;
            }
            let magnitude = (cx * cx + cy * cy + cz * cz).sqrt();
            let distance = [cx, cy, cz]
                .iter()
                .zip(SKIN)
                .map(|(v, skin)| (v / magnitude - skin).powi(2))
                .sum::<f64>()
                .sqrt();
            let skin = 100.0 - 100.0 * distance;
            edges + skin + lab_a(xyz[index])
        })
        .collect()
}

/// CIE XYZ (Y from 0 to 100, D65) of an sRGB pixel.
fn srgb_to_xyz(rgb: [u8; 3]) -> [f64; 3] {
    let [r, g, b] = rgb.map(|v| {
        let v = f64::from(v) / 255.0;
        100.0
            * if v <= 0.04045 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
    });
    [
        0.4124 * r + 0.3576 * g + 0.1805 * b,
        0.2126 * r + 0.7152 * g + 0.0722 * b,
        0.0193 * r + 0.1192 * g + 0.9505 * b,
    ]
}

/// CIELAB's a* (green to red) of an XYZ colour, against D65 white.
fn lab_a([x, y, _]: [f64; 3]) -> f64 {
    let f = |t: f64| {
        if t > 216.0 / 24_389.0 {
            t.cbrt()
        } else {
            (24_389.0 / 27.0 * t + 16.0) / 116.0
        }
    };
    500.0 * (f(x / 95.047) - f(y / 100.0))
}

/// A separable Gaussian blur of the `GRID`×`GRID` `values`, edges
/// extended.
fn gaussian_blur(values: &[f64], sigma: f64) -> Vec<f64> {
    let radius = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f64> = (-radius..=radius)
        .map(|i| (-((i * i) as f64) / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f64 = kernel.iter().sum();
    let side = GRID as isize;
    let pass = |input: &[f64], horizontal: bool| -> Vec<f64> {
        (0..side * side)
            .map(|index| {
                let (x, y) = (index % side, index / side);
                kernel
                    .iter()
                    .zip(-radius..=radius)
                    .map(|(weight, offset)| {
                        let (sx, sy) = if horizontal {
                            ((x + offset).clamp(0, side - 1), y)
                        } else {
                            (x, (y + offset).clamp(0, side - 1))
                        };
                        weight * input[(sy * side + sx) as usize]
                    })
                    .sum::<f64>()
                    / total
            })
            .collect()
    };
    pass(&pass(values, true), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::noise;
    use image::{Rgb, RgbImage};

    /// A flat grey frame with `patch` drawn over the given rectangle.
    fn grey_with(
        size: (u32, u32),
        rect: (u32, u32, u32, u32),
        patch: impl Fn(u32, u32) -> Rgb<u8>,
    ) -> DynamicImage {
        let (rx, ry, rw, rh) = rect;
        DynamicImage::ImageRgb8(RgbImage::from_fn(size.0, size.1, |x, y| {
            if (rx..rx + rw).contains(&x) && (ry..ry + rh).contains(&y) {
                patch(x, y)
            } else {
                Rgb([128, 128, 128])
            }
        }))
    }

    /// Detail in the right quarter of a flat frame: entropy keeps it.
    #[test]
    fn entropy_keeps_the_busy_part() {
        let detail = noise(400, 100).to_rgb8();
        let frame = grey_with((400, 100), (300, 0, 100, 100), |x, y| {
            *detail.get_pixel(x, y)
        });
        let (left, top) = window(&frame, (100, 100), Gravity::Entropy);
        assert_eq!((left, top), (300, 0));
    }

    /// A skin-toned face-sized patch low on the left of a flat frame: the
    /// window takes it in, whichever way the frame overflows.
    #[test]
    fn attention_finds_a_skin_toned_patch() {
        let skin = |_, _| Rgb([224, 172, 140]);
        let wide = grey_with((600, 200), (40, 60, 80, 80), skin);
        let (left, _) = window(&wide, (200, 200), Gravity::Attention);
        assert!(left <= 40, "{left}");
        let tall = grey_with((200, 600), (60, 480, 80, 80), skin);
        let (_, top) = window(&tall, (200, 200), Gravity::Attention);
        assert!(top + 200 >= 560 && top <= 480, "{top}");
    }

    /// Fixed gravities name the side or corner kept.
    #[test]
    fn fixed_gravities_keep_their_side() {
        let frame = DynamicImage::new_rgb8(300, 200);
        assert_eq!(window(&frame, (100, 100), Gravity::NorthWest), (0, 0));
        assert_eq!(window(&frame, (100, 100), Gravity::SouthEast), (200, 100));
        assert_eq!(window(&frame, (100, 100), Gravity::Centre), (100, 50));
    }
}
