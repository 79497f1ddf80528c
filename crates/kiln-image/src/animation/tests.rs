//! Animations through [`crate::process`], checked frame by frame: count,
//! size, delays, loop count and pixels, read back with the `image` and
//! `gif` crates' readers.

use std::io::Cursor;
use std::ops::ControlFlow;

use image::codecs::gif::GifDecoder;
use image::codecs::webp::WebPDecoder;
use image::{AnimationDecoder, Rgba, RgbaImage};

use crate::error::ImageError;
use crate::format::Format;
use crate::integrity::{self, Frames};
use crate::ops::parse_ops;
use crate::pipeline::{Output, process};
use crate::plan::Limits;
use crate::progress::Stage;
use crate::test_support::noise;

const RED: Rgba<u8> = Rgba([255, 0, 0, 255]);
const GREEN: Rgba<u8> = Rgba([0, 255, 0, 255]);
const BLUE: Rgba<u8> = Rgba([0, 0, 255, 255]);
const GREY: Rgba<u8> = Rgba([128, 128, 128, 255]);
const CLEAR: Rgba<u8> = Rgba([0, 0, 0, 0]);

/// A GIF of whole `frames` (delays in hundredths of a second) playing
/// `plays` times (0: forever), written with the `gif` crate.
fn gif_of(frames: &[(RgbaImage, u16)], plays: u16) -> Vec<u8> {
    let (width, height) = frames[0].0.dimensions();
    let mut bytes = Vec::new();
    let mut encoder = gif::Encoder::new(&mut bytes, width as u16, height as u16, &[]).unwrap();
    match plays {
        0 => encoder.set_repeat(gif::Repeat::Infinite).unwrap(),
        1 => {}
        plays => encoder.set_repeat(gif::Repeat::Finite(plays - 1)).unwrap(),
    }
    for (image, delay) in frames {
        let mut pixels = image.clone().into_raw();
        let mut frame = gif::Frame::from_rgba_speed(width as u16, height as u16, &mut pixels, 10);
        frame.delay = *delay;
        frame.dispose = gif::DisposalMethod::Background;
        encoder.write_frame(&frame).unwrap();
    }
    drop(encoder);
    bytes
}

/// A 64×48 frame split in a left and a right half.
fn halves(left: Rgba<u8>, right: Rgba<u8>) -> RgbaImage {
    RgbaImage::from_fn(64, 48, |x, _| if x < 32 { left } else { right })
}

/// Three frames of two flat halves, 100, 250 and 40 ms, played 3 times.
fn three_frames() -> Vec<u8> {
    gif_of(
        &[
            (halves(RED, GREEN), 10),
            (halves(GREEN, BLUE), 25),
            (halves(BLUE, RED), 4),
        ],
        3,
    )
}

fn run(bytes: &[u8], spec: &str) -> Result<Output, ImageError> {
    let ops = parse_ops(spec).unwrap();
    process(bytes, &ops, &Limits::default(), &mut |_| {
        ControlFlow::Continue(())
    })
}

/// The frames of an animated GIF or WebP as a viewer shows them, with
/// their delays in milliseconds.
fn shown(bytes: &[u8]) -> Vec<(RgbaImage, u32)> {
    let frames = match Format::sniff(bytes).unwrap() {
        Format::Gif => GifDecoder::new(Cursor::new(bytes)).unwrap().into_frames(),
        Format::Webp => {
            let mut decoder = WebPDecoder::new(Cursor::new(bytes)).unwrap();
            decoder.set_background_color(CLEAR).unwrap();
            decoder.into_frames()
        }
        other => panic!("{other} does not animate"),
    };
    frames
        .map(|frame| {
            let frame = frame.unwrap();
            let (numerator, denominator) = frame.delay().numer_denom_ms();
            (frame.into_buffer(), numerator / denominator)
        })
        .collect()
}

fn plays(bytes: &[u8]) -> Frames {
    integrity::check(Format::sniff(bytes).unwrap(), bytes).unwrap()
}

/// Within `tolerance` on every channel.
fn near(pixel: Rgba<u8>, expected: Rgba<u8>, tolerance: u8) -> bool {
    pixel
        .0
        .iter()
        .zip(expected.0)
        .all(|(a, b)| a.abs_diff(b) <= tolerance)
}

/// GIF in, GIF and WebP out: every frame resized, with its delay, and the
/// loop count kept.
#[test]
fn a_resized_animation_keeps_its_frames_delays_and_loop_count() {
    let source = three_frames();
    for format in ["gif", "webp"] {
        let output = run(&source, &format!("resize(w=32),format({format})")).unwrap();
        assert_eq!((output.width, output.height), (32, 24), "{format}");
        assert_eq!(
            plays(&output.bytes),
            Frames { count: 3, plays: 3 },
            "{format}"
        );
        let frames = shown(&output.bytes);
        let delays: Vec<u32> = frames.iter().map(|(_, delay)| *delay).collect();
        assert_eq!(delays, [100, 250, 40], "{format}");
        let colours = [(RED, GREEN), (GREEN, BLUE), (BLUE, RED)];
        for (index, ((frame, _), (left, right))) in frames.iter().zip(colours).enumerate() {
            assert_eq!(frame.dimensions(), (32, 24), "{format} frame {index}");
            // Lossy WebP blurs the edges of flat colour a little.
            for (x, expected) in [(4, left), (27, right)] {
                let pixel = *frame.get_pixel(x, 12);
                assert!(
                    near(pixel, expected, 12),
                    "{format} frame {index} at {x}: {pixel:?}"
                );
            }
        }
    }
}

/// An animation that loops forever (WebP's 0, GIF's Netscape 0) still
/// does in the other format.
#[test]
fn a_forever_loop_stays_forever_in_both_formats() {
    let forever = gif_of(&[(halves(RED, RED), 10), (halves(BLUE, BLUE), 10)], 0);
    let webp = run(&forever, "format(webp)").unwrap();
    assert_eq!(plays(&webp.bytes), Frames { count: 2, plays: 0 });
    let gif = run(&webp.bytes, "format(gif)").unwrap();
    assert_eq!(plays(&gif.bytes), Frames { count: 2, plays: 0 });
}

/// Every operation reaches every frame: rotate and flip move the halves
/// of each.
#[test]
fn every_operation_applies_to_every_frame() {
    let output = run(&three_frames(), "rotate(90),flip(v),grayscale").unwrap();
    assert_eq!((output.width, output.height), (48, 64));
    for (index, (frame, _)) in shown(&output.bytes).iter().enumerate() {
        // Turned a quarter clockwise and flipped upside down, the left
        // half is at the bottom; grey, it holds the same on each channel.
        let (top, bottom) = (*frame.get_pixel(24, 8), *frame.get_pixel(24, 56));
        assert_ne!(top, bottom, "frame {index}");
        for pixel in [top, bottom] {
            assert!(
                pixel[0] == pixel[1] && pixel[1] == pixel[2],
                "frame {index}: {pixel:?}"
            );
        }
    }
}

/// Written as changes: after the first, a frame where a small square
/// moves over a busy picture covers only the square's old and new place,
/// and shows the very frames the source shows (64 colours: no
/// quantization error), mirrored.
#[test]
fn gif_output_writes_only_what_changed_and_shows_the_same() {
    let picture = RgbaImage::from_fn(96, 64, |x, y| {
        let level = |n: u32| (n.wrapping_mul(2_654_435_761) >> 30) as u8 * 85;
        Rgba([
            level(x + 97 * y),
            level(x * 31 + y),
            level(x ^ (y * 7)),
            255,
        ])
    });
    let with_square = |left: u32| {
        let mut frame = picture.clone();
        for y in 20..30 {
            for x in left..left + 10 {
                frame.put_pixel(x, y, BLUE);
            }
        }
        (frame, 5)
    };
    let source = gif_of(&[with_square(10), with_square(20), with_square(30)], 0);
    let output = run(&source, "flip(h)").unwrap();

    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    let mut decoder = options.read_info(Cursor::new(&output.bytes)).unwrap();
    let mut rectangles = Vec::new();
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        rectangles.push((frame.left, frame.top, frame.width, frame.height));
    }
    // Mirrored, the square spans 76..86, then 66..76, then 56..66.
    assert_eq!(
        rectangles,
        [(0, 0, 96, 64), (66, 20, 20, 10), (56, 20, 20, 10)]
    );

    let expected = shown(&source);
    for (index, (frame, _)) in shown(&output.bytes).iter().enumerate() {
        let mirrored = image::imageops::flip_horizontal(&expected[index].0);
        assert!(*frame == mirrored, "frame {index}");
    }
}

/// A frame that turns transparent where the one before was opaque shows
/// transparent there: the frame before is disposed of, not drawn over.
#[test]
fn a_pixel_turning_transparent_is_shown_transparent() {
    let hole = RgbaImage::from_fn(64, 48, |x, _| if x < 32 { CLEAR } else { GREEN });
    let source = gif_of(
        &[(halves(RED, RED), 10), (hole, 10), (halves(BLUE, BLUE), 10)],
        0,
    );
    for format in ["gif", "webp"] {
        let output = run(&source, &format!("resize(w=32),format({format})")).unwrap();
        let frames = shown(&output.bytes);
        assert_eq!(frames.len(), 3);
        assert!(near(*frames[0].0.get_pixel(4, 12), RED, 12), "{format}");
        assert_eq!(frames[1].0.get_pixel(4, 12)[3], 0, "{format}");
        assert!(near(*frames[1].0.get_pixel(27, 12), GREEN, 12), "{format}");
        assert!(near(*frames[2].0.get_pixel(4, 12), BLUE, 12), "{format}");
    }
}

/// An animated WebP written by libwebp (img2webp; its second frame is
/// the first mirrored) goes through as GIF and as WebP.
#[test]
fn an_animated_webp_from_libwebp_keeps_its_frames() {
    let source: &[u8] = include_bytes!("../../testdata/animated.webp");
    for format in ["gif", "webp"] {
        let output = run(source, &format!("format({format})")).unwrap();
        let frames = shown(&output.bytes);
        assert_eq!(frames.len(), 2, "{format}");
        assert_eq!(plays(&output.bytes).plays, 0, "{format}");
        for (frame, delay) in &frames {
            assert_eq!(*delay, 100, "{format}");
            assert_eq!(frame.dimensions(), (67, 45), "{format}");
        }
        // The gradient runs red left to right; mirrored, right to left.
        let red = |frame: &RgbaImage, x| i32::from(frame.get_pixel(x, 20)[0]);
        assert!(
            red(&frames[0].0, 60) - red(&frames[0].0, 6) > 150,
            "{format}"
        );
        assert!(
            red(&frames[1].0, 6) - red(&frames[1].0, 60) > 150,
            "{format}"
        );
    }
}

/// A WebP frame disposed "to background" leaves its rectangle transparent
/// for the next, as libwebp and browsers show it.
#[test]
fn a_webp_frame_disposed_to_background_is_cleared() {
    use crate::encode::webp::{VP8X_ALPHA, VP8X_ANIMATION, frame_chunks, vp8x_chunk, write_riff};
    let frame = |image: RgbaImage, left: u32, top: u32, flags: u8| {
        let (width, height) = image.dimensions();
        let coded = frame_chunks(&image.into(), Some(100)).unwrap();
        let mut anmf = Vec::new();
        for field in [left / 2, top / 2, width - 1, height - 1, 100] {
            anmf.extend_from_slice(&field.to_le_bytes()[..3]);
        }
        anmf.push(flags);
        for (fourcc, data) in coded.chunks {
            anmf.extend_from_slice(&fourcc);
            anmf.extend_from_slice(&(data.len() as u32).to_le_bytes());
            anmf.extend_from_slice(&data);
            if data.len() % 2 == 1 {
                anmf.push(0);
            }
        }
        anmf
    };
    // Red all over, disposed of; then blue on the top-left quarter, blended.
    let first = frame(RgbaImage::from_pixel(16, 16, RED), 0, 0, 0b01);
    let second = frame(RgbaImage::from_pixel(8, 8, BLUE), 0, 0, 0b00);
    let vp8x = vp8x_chunk(VP8X_ANIMATION | VP8X_ALPHA, 16, 16);
    // A white background colour hint, which viewers ignore.
    let anim = [255, 255, 255, 255, 0, 0];
    let mut webp = Vec::new();
    write_riff(
        &mut webp,
        &[
            (b"VP8X", &vp8x),
            (b"ANIM", &anim),
            (b"ANMF", &first),
            (b"ANMF", &second),
        ],
    )
    .unwrap();
    let output = run(&webp, "format(gif)").unwrap();
    let frames = shown(&output.bytes);
    assert!(near(*frames[0].0.get_pixel(12, 12), RED, 2));
    assert!(near(*frames[1].0.get_pixel(2, 2), BLUE, 2));
    assert_eq!(frames[1].0.get_pixel(12, 12)[3], 0);
}

/// A still output format gets the first frame.
#[test]
fn a_still_output_gets_the_first_frame() {
    let output = run(&three_frames(), "format(png)").unwrap();
    let image = image::load_from_memory(&output.bytes).unwrap().to_rgba8();
    assert_eq!(*image.get_pixel(4, 4), RED);
    assert_eq!(*image.get_pixel(60, 4), GREEN);
    assert_eq!(crate::probe(&output.bytes).unwrap().frames, 1);
}

/// A content-aware crop is chosen on the first frame and kept: the busy
/// part moves from left to right, the crop stays on the left.
#[test]
fn a_content_aware_crop_stays_where_the_first_frame_put_it() {
    let busy = noise(32, 48).to_rgba8();
    let busy_at = |left: u32| {
        let mut frame = RgbaImage::from_pixel(96, 48, GREY);
        image::imageops::replace(&mut frame, &busy, i64::from(left), 0);
        (frame, 10)
    };
    let source = gif_of(&[busy_at(0), busy_at(64)], 0);
    let output = run(&source, "resize(w=32,h=48,fit=cover,gravity=entropy)").unwrap();
    let frames = shown(&output.bytes);
    let spread = |frame: &RgbaImage| {
        let reds: Vec<u8> = frame.pixels().map(|p| p[0]).collect();
        reds.iter().max().unwrap() - reds.iter().min().unwrap()
    };
    assert!(
        spread(&frames[0].0) > 100,
        "the first frame keeps the busy part"
    );
    assert!(
        spread(&frames[1].0) < 20,
        "the second keeps the same (now grey) window"
    );
}

/// Each frame is a stage of its own, in order, then the file is closed.
#[test]
fn every_frame_is_reported_in_order() {
    let ops = parse_ops("resize(w=32)").unwrap();
    let mut ends = Vec::new();
    process(&three_frames(), &ops, &Limits::default(), &mut |progress| {
        if progress.is_stage_end() {
            ends.push(progress.stage);
        }
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(
        ends,
        [
            Stage::Decode,
            Stage::Frame { index: 0, of: 3 },
            Stage::Frame { index: 1, of: 3 },
            Stage::Frame { index: 2, of: 3 },
            Stage::Encode,
        ]
    );
}

/// The frame limit refuses an animation kept as one before decoding.
#[test]
fn too_many_frames_are_refused() {
    let limits = Limits {
        max_frames: 2,
        ..Limits::default()
    };
    let result = process(&three_frames(), &[], &limits, &mut |_| {
        ControlFlow::Continue(())
    });
    assert_eq!(result, Err(ImageError::TooManyFrames { frames: 3, max: 2 }));
}

/// Which frames of a GIF carry a palette of their own.
fn local_palettes(gif: &[u8]) -> Vec<bool> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    let mut decoder = options.read_info(Cursor::new(gif)).unwrap();
    let mut palettes = Vec::new();
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        palettes.push(frame.palette.is_some());
    }
    palettes
}

/// Frames whose colours the first frame's palette holds use it; a scene
/// change (here: a photo-like frame after flat ones, or flat colours the
/// palette lacks) gets a palette of its own, and looks right.
#[test]
fn gif_frames_share_the_first_palette_while_it_fits() {
    let busy = noise(64, 48).to_rgba8();
    let source = gif_of(
        &[
            (halves(RED, GREEN), 10),
            (halves(GREEN, RED), 10),
            (halves(BLUE, GREEN), 10),
            (busy.clone(), 10),
        ],
        0,
    );
    let output = run(&source, "flip(v)").unwrap();
    assert_eq!(local_palettes(&output.bytes), [false, false, true, true]);
    let frames = shown(&output.bytes);
    assert!(near(*frames[2].0.get_pixel(4, 4), BLUE, 0));
    let source_frames = shown(&source);
    let expected = image::imageops::flip_vertical(&source_frames[3].0);
    let error = frames[3]
        .0
        .pixels()
        .zip(expected.pixels())
        .map(|(a, b)| f64::from(a[0].abs_diff(b[0])))
        .sum::<f64>()
        / f64::from(64 * 48);
    assert!(error < 12.0, "mean error {error} on the busy frame");
}

/// Resized photo-like frames that change a little (each quantized by the
/// source's writer with its own palette) share one NeuQuant palette; a
/// scene change gets its own.
#[test]
fn similar_photo_frames_share_one_palette() {
    let photo = crate::test_support::photo_like(96, 64);
    let frame = |shift: u32| {
        let image = image::DynamicImage::ImageRgb8(photo.clone()).to_rgba8();
        let mut frame = image.clone();
        for y in 10..20 {
            for x in shift..shift + 10 {
                frame.put_pixel(x, y, *image.get_pixel(x + 20, y + 30));
            }
        }
        (frame, 10)
    };
    // Then a scene change: saturated colours the photo has none of.
    let change = (
        RgbaImage::from_fn(96, 64, |x, _| if x < 48 { RED } else { BLUE }),
        10,
    );
    let source = gif_of(&[frame(0), frame(10), frame(20), change], 0);
    let output = run(&source, "resize(w=48)").unwrap();
    assert_eq!(local_palettes(&output.bytes), [false, false, false, true]);
    let frames = shown(&output.bytes);
    assert!(near(*frames[3].0.get_pixel(4, 4), RED, 4));
}
