//! [`process`]: header checks, decode, each operation, encode — reporting
//! progress through every stage and stopping when asked to.

use crate::animation;
use crate::colour::Warning;
use crate::decode;
use crate::encode::encode;
use crate::error::ImageError;
use crate::format::Format;
use crate::ops::Op;
use crate::plan::{Limits, output_background, output_quality, preflight};
use crate::progress::{OnProgress, Reporter, Stage};
use crate::shrink;
use crate::transform::apply;

/// The encoded result of [`process`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// The encoded image, without metadata.
    pub bytes: Vec<u8>,
    /// Its format.
    pub format: Format,
    /// Its width.
    pub width: u32,
    /// Its height.
    pub height: u32,
    /// What the client should know about how it was made: an embedded
    /// colour profile that could not be applied.
    pub warnings: Vec<Warning>,
}

/// Decodes `bytes`, applies `ops` in order and encodes the result.
///
/// Before decoding, the header is checked against `limits` and the ops (see
/// [`preflight`]), so an oversized or impossible request costs no decoding.
/// The EXIF orientation is always applied first and all metadata dropped.
/// An animated GIF or WebP whose output is GIF or WebP keeps every frame
/// (see `animation`); otherwise only its first frame is decoded.
/// A JPEG that goes straight into a downscaling `resize` is decoded at a
/// reduced scale (shrink-on-load, see the crate docs); the output has the
/// same size either way.
/// `on_progress` hears of every stage's start and end, and of progress
/// within the stages that work row by row (see [`crate::progress`]);
/// returning [`ControlFlow::Break`](std::ops::ControlFlow::Break) stops with
/// [`ImageError::Canceled`].
pub fn process(
    bytes: &[u8],
    ops: &[Op],
    limits: &Limits,
    on_progress: &mut OnProgress<'_>,
) -> Result<Output, ImageError> {
    let header = decode::open(bytes, decode::image_limits(limits))?;
    let planned = preflight(&header.info, ops, limits)?;
    if planned.is_animated() {
        return animation::process(header, ops, &planned, limits, on_progress);
    }
    let shrink = shrink::plan(&header.info, ops);

    let background = output_background(ops);

    let decoding = Reporter::start(on_progress, Stage::Decode)?;
    let decoded = decode::decode(header, shrink.as_ref().map(|shrink| shrink.at_least))?;
    let mut image = decoded.image;
    decoding.finish()?;
    for (index, op) in ops.iter().enumerate() {
        let op = match &shrink {
            Some(shrink) if shrink.resize_index == index => &shrink.resize,
            _ => op,
        };
        let of = ops.len();
        let mut applying = Reporter::start(on_progress, Stage::Apply { index, of })?;
        image = apply(image, op, background, &mut applying)?;
        applying.finish()?;
    }
    debug_assert_eq!(
        (image.width(), image.height()),
        (planned.width, planned.height),
        "preflight predicts the geometry"
    );

    let mut encoding = Reporter::start(on_progress, Stage::Encode)?;
    let bytes = encode(
        &image,
        planned.format,
        output_quality(ops),
        background,
        &mut encoding,
    )?;
    encoding.finish()?;
    Ok(Output {
        bytes,
        format: planned.format,
        width: image.width(),
        height: image.height(),
        warnings: decoded.warning.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{default_ops, parse_ops};
    use crate::probe::probe;
    use crate::test_support::{encoded, gradient, png_header_only, with_exif_orientation};
    use image::DynamicImage;
    use std::ops::ControlFlow;

    fn run(bytes: &[u8], spec: &str) -> Result<Output, ImageError> {
        let ops = parse_ops(spec).unwrap();
        process(bytes, &ops, &Limits::default(), &mut |_| {
            ControlFlow::Continue(())
        })
    }

    fn photo(format: Format) -> Vec<u8> {
        encoded(&gradient(64, 48), format)
    }

    #[test]
    fn output_is_the_requested_format() {
        for format in Format::ALL {
            let output = run(&photo(Format::Png), &format!("format({format})")).unwrap();
            assert_eq!(output.format, format);
            assert_eq!(Format::sniff(&output.bytes), Some(format));
        }
    }

    #[test]
    fn output_keeps_the_source_format_by_default() {
        for format in Format::ALL {
            let output = process(
                &photo(format),
                &default_ops(),
                &Limits::default(),
                &mut |_| ControlFlow::Continue(()),
            )
            .unwrap();
            assert_eq!(Format::sniff(&output.bytes), Some(format));
            assert_eq!((output.width, output.height), (64, 48));
        }
    }

    /// `format(auto)` left unresolved (no `Accept` was consulted) keeps the
    /// source format, whatever came before it.
    #[test]
    fn unresolved_auto_format_keeps_the_source_format() {
        for format in Format::ALL {
            let output = run(&photo(format), "format(png),format(auto)").unwrap();
            assert_eq!(output.format, format);
            assert_eq!(Format::sniff(&output.bytes), Some(format));
        }
    }

    #[test]
    fn output_reports_the_dimensions_it_encoded() {
        let output = run(
            &photo(Format::Jpeg),
            "resize(w=32,h=32,fit=cover),rotate(90)",
        )
        .unwrap();
        assert_eq!((output.width, output.height), (32, 32));
        let info = probe(&output.bytes).unwrap();
        assert_eq!((info.width, info.height), (32, 32));
    }

    #[test]
    fn resize_contain_cover_and_fill_give_the_expected_dimensions() {
        let source = photo(Format::Png);
        for (fit, size) in [
            ("contain", (20, 15)),
            ("cover", (20, 20)),
            ("fill", (20, 20)),
        ] {
            let output = run(&source, &format!("resize(w=20,h=20,fit={fit})")).unwrap();
            assert_eq!((output.width, output.height), size, "{fit}");
        }
    }

    #[test]
    fn exif_orientation_is_applied_without_any_op() {
        let jpeg = with_exif_orientation(&photo(Format::Jpeg), 6);
        let output = run(&jpeg, "quality(90)").unwrap();
        assert_eq!((output.width, output.height), (48, 64));
    }

    #[test]
    fn exif_metadata_is_stripped_from_the_output() {
        let jpeg = with_exif_orientation(&photo(Format::Jpeg), 6);
        let output = run(&jpeg, "quality(90)").unwrap();
        assert!(!output.bytes.windows(6).any(|w| w == b"Exif\0\0"));
        // Re-reading it must not rotate again.
        let info = probe(&output.bytes).unwrap();
        assert_eq!((info.width, info.height), (48, 64));
    }

    /// JPEG output flattens transparency onto `background(...)` (white
    /// without one).
    #[test]
    fn jpeg_output_flattens_onto_the_background() {
        let clear = image::RgbaImage::from_pixel(16, 16, image::Rgba([255, 0, 0, 0]));
        let mut png = Vec::new();
        DynamicImage::ImageRgba8(clear)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let middle = |spec: &str| {
            let output = run(&png, spec).unwrap();
            image::load_from_memory(&output.bytes)
                .unwrap()
                .to_rgb8()
                .get_pixel(8, 8)
                .0
        };
        let white = middle("format(jpeg)");
        assert!(white.iter().all(|&c| c >= 250), "{white:?}");
        let navy = middle("background(000080),format(jpeg)");
        assert!(
            navy[0] <= 5 && navy[1] <= 5 && navy[2].abs_diff(128) <= 5,
            "{navy:?}"
        );
    }

    #[test]
    fn lower_quality_gives_a_smaller_jpeg() {
        let source = photo(Format::Png);
        let high = run(&source, "format(jpeg),quality(95)").unwrap();
        let low = run(&source, "format(jpeg),quality(10)").unwrap();
        assert!(low.bytes.len() < high.bytes.len());
    }

    #[test]
    fn crop_outside_the_image_is_refused_as_invalid_op() {
        let error = run(&photo(Format::Png), "crop(x=0,y=40,w=10,h=10)").unwrap_err();
        assert!(matches!(error, ImageError::InvalidOp(_)), "{error:?}");
    }

    #[test]
    fn huge_header_is_refused_before_decoding() {
        // The file has no pixel data: decoding it would fail as corrupt.
        let png = png_header_only(100_000, 100_000);
        assert_eq!(
            run(&png, "grayscale"),
            Err(ImageError::TooManyInputPixels {
                pixels: 10_000_000_000,
                max: 50_000_000
            })
        );
    }

    #[test]
    fn too_large_output_is_refused_before_decoding() {
        // Same trick: a header alone, small enough to accept as input.
        let png = png_header_only(1000, 1000);
        let limits = Limits {
            max_input_pixels: 1_000_000,
            max_output_pixels: 1_000_000,
            ..Limits::default()
        };
        let ops = parse_ops("resize(w=2000)").unwrap();
        let error = process(&png, &ops, &limits, &mut |_| ControlFlow::Continue(())).unwrap_err();
        assert!(matches!(
            error,
            ImageError::TooManyOutputPixels {
                pixels: 4_000_000,
                ..
            }
        ));
    }

    #[test]
    fn garbage_is_unsupported_and_truncated_data_corrupt() {
        assert_eq!(run(b"GIF? no", "grayscale"), Err(ImageError::Unsupported));
        let png = photo(Format::Png);
        let error = run(&png[..png.len() - 40], "grayscale").unwrap_err();
        assert!(matches!(error, ImageError::Corrupt(_)), "{error:?}");
    }

    /// The stage ends a run reports, in order.
    fn stage_ends(bytes: &[u8], spec: &str) -> Vec<Stage> {
        let ops = parse_ops(spec).unwrap();
        let mut ends = Vec::new();
        process(bytes, &ops, &Limits::default(), &mut |progress| {
            if progress.is_stage_end() {
                ends.push(progress.stage);
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        ends
    }

    #[test]
    fn every_stage_is_reported_ended_in_order() {
        assert_eq!(
            stage_ends(&photo(Format::Png), "grayscale,flip(h)"),
            vec![
                Stage::Decode,
                Stage::Apply { index: 0, of: 2 },
                Stage::Apply { index: 1, of: 2 },
                Stage::Encode,
            ]
        );
    }

    #[test]
    fn every_stage_reports_its_start_before_its_end() {
        let ops = parse_ops("grayscale").unwrap();
        let mut reports = Vec::new();
        process(&photo(Format::Png), &ops, &Limits::default(), &mut |p| {
            reports.push((p.stage, p.done >= 1.0));
            ControlFlow::Continue(())
        })
        .unwrap();
        for stage in [
            Stage::Decode,
            Stage::Apply { index: 0, of: 1 },
            Stage::Encode,
        ] {
            let start = reports.iter().position(|&r| r == (stage, false));
            let end = reports.iter().position(|&r| r == (stage, true));
            assert!(start < end && start.is_some(), "{stage:?}: {reports:?}");
        }
    }

    #[test]
    fn long_stages_report_progress_within_them() {
        // A large frame (18 MB of samples): the blur runs in bands and the
        // encoders row by row.
        let image = DynamicImage::ImageRgb8(gradient(2048, 3000));
        let mut png = Vec::new();
        image
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let ops = parse_ops("sharpen(sigma=2),format(jpeg)").unwrap();
        let mut within = std::collections::HashMap::<String, usize>::new();
        process(&png, &ops, &Limits::default(), &mut |p| {
            if p.done > 0.0 && p.done < 1.0 {
                *within.entry(format!("{:?}", p.stage)).or_default() += 1;
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        for stage in ["Apply { index: 0, of: 2 }", "Encode"] {
            assert!(
                within.get(stage).copied().unwrap_or(0) > 1,
                "{stage}: {within:?}"
            );
        }
    }

    #[test]
    fn breaking_from_on_progress_cancels_at_that_stage() {
        let ops = parse_ops("grayscale,flip(h),blur(sigma=1)").unwrap();
        let mut stages = Vec::new();
        let result = process(&photo(Format::Png), &ops, &Limits::default(), &mut |p| {
            stages.push(p.stage);
            if p.stage == (Stage::Apply { index: 1, of: 3 }) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(result, Err(ImageError::Canceled));
        assert_eq!(stages.last(), Some(&Stage::Apply { index: 1, of: 3 }));
        assert!(!stages.contains(&Stage::Apply { index: 2, of: 3 }));
    }

    #[test]
    fn breaking_after_encoding_still_cancels() {
        let result = process(&photo(Format::Png), &[], &Limits::default(), &mut |p| {
            if p.stage == Stage::Encode && p.is_stage_end() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(result, Err(ImageError::Canceled));
    }

    #[test]
    fn transparent_png_becomes_a_jpeg_on_white() {
        let clear = image::RgbaImage::from_pixel(8, 8, image::Rgba([0, 0, 0, 0]));
        let mut png = Vec::new();
        image::DynamicImage::ImageRgba8(clear)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let output = run(&png, "format(jpeg)").unwrap();
        let decoded = image::load_from_memory(&output.bytes).unwrap().to_rgb8();
        assert!(decoded.pixels().all(|p| p.0.iter().all(|&c| c > 250)));
    }
}
