//! Animated GIF and WebP uploads stay animated when the output is GIF or
//! WebP: every frame resized, delays kept; `format(auto)` picks a format
//! that animates; `max_frames` refuses a longer animation with a `422`
//! before anything is stored.

use std::io::Cursor;
use std::time::Duration;

use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::codecs::webp::WebPDecoder;
use image::{AnimationDecoder, Delay, Frame, Rgba, RgbaImage};
use kiln_e2e::{Env, for_each_target};

const COLOURS: [[u8; 4]; 3] = [[230, 20, 20, 255], [20, 200, 20, 255], [20, 20, 230, 255]];
const DELAYS_MS: [u32; 3] = [100, 250, 40];

/// Three 64×48 frames of flat colour, 100, 250 and 40 ms, looping forever.
fn animated_gif() -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut encoder = GifEncoder::new(&mut bytes);
    encoder.set_repeat(Repeat::Infinite).unwrap();
    encoder
        .encode_frames(COLOURS.iter().zip(DELAYS_MS).map(|(colour, delay)| {
            Frame::from_parts(
                RgbaImage::from_pixel(64, 48, Rgba(*colour)),
                0,
                0,
                Delay::from_numer_denom_ms(delay, 1),
            )
        }))
        .unwrap();
    drop(encoder);
    bytes
}

/// The frames of an animated GIF or WebP, with their delays in ms.
fn frames(bytes: &[u8]) -> Vec<(RgbaImage, u32)> {
    let frames = if bytes.starts_with(b"GIF") {
        GifDecoder::new(Cursor::new(bytes)).unwrap().into_frames()
    } else {
        WebPDecoder::new(Cursor::new(bytes)).unwrap().into_frames()
    };
    frames
        .map(|frame| {
            let frame = frame.unwrap();
            let (numerator, denominator) = frame.delay().numer_denom_ms();
            (frame.into_buffer(), numerator / denominator)
        })
        .collect()
}

fn assert_resized_animation(env: &Env, body: &[u8], what: &str) {
    let frames = frames(body);
    assert_eq!(frames.len(), 3, "{}: {what}", env.name());
    for ((frame, delay), (colour, expected_delay)) in
        frames.iter().zip(COLOURS.iter().zip(DELAYS_MS))
    {
        assert_eq!(frame.dimensions(), (32, 24), "{}: {what}", env.name());
        assert_eq!(*delay, expected_delay, "{}: {what}", env.name());
        let pixel = frame.get_pixel(16, 12).0;
        let close = pixel.iter().zip(colour).all(|(a, b)| a.abs_diff(*b) <= 12);
        assert!(close, "{}: {what}: {pixel:?} for {colour:?}", env.name());
    }
}

#[test]
fn an_animated_gif_stays_animated_as_gif_and_webp() {
    for_each_target(Env::builder, |env| {
        let gif = animated_gif();
        for (format, media_type) in [("gif", "image/gif"), ("webp", "image/webp")] {
            let reply = env.submit(
                &format!("?ops=resize(w=32),format({format})"),
                "image/gif",
                &gif,
                &[],
            );
            assert_eq!(
                reply.status,
                201,
                "{}: {}",
                env.name(),
                String::from_utf8_lossy(&reply.body)
            );
            assert_eq!(reply.header("content-type"), media_type);
            assert_resized_animation(env, &reply.body, format);
        }
        // A still format gets the first frame.
        let reply = env.submit("?ops=resize(w=32),format(png)", "image/gif", &gif, &[]);
        assert_eq!(reply.status, 201);
        let first = image::load_from_memory(&reply.body).unwrap().to_rgba8();
        assert!(
            first
                .get_pixel(16, 12)
                .0
                .iter()
                .zip(COLOURS[0])
                .all(|(a, b)| a.abs_diff(b) <= 12)
        );
    });
}

/// Asynchronously, the processor runs the frames (each a progress step)
/// and the stored result is the animation.
#[test]
fn an_asynchronous_job_stores_the_animation() {
    for_each_target(Env::builder, |env| {
        let accepted = env.submit(
            "?ops=resize(w=32),format(webp)",
            "image/gif",
            &animated_gif(),
            &[("prefer", "respond-async")],
        );
        assert_eq!(
            accepted.status,
            202,
            "{}: {}",
            env.name(),
            String::from_utf8_lossy(&accepted.body)
        );
        let finished =
            env.wait_until_finished(accepted.header("location"), Duration::from_secs(60));
        let operation = finished.json();
        assert_eq!(
            operation["status"],
            "succeeded",
            "{}: {operation}",
            env.name()
        );
        let image = env.get(operation["resourceLocation"].as_str().unwrap(), &[]);
        assert_eq!(image.header("content-type"), "image/webp");
        assert_resized_animation(env, &image.body, "async webp");
    });
}

/// A browser that takes AVIF and WebP gets an animation as WebP: AVIF
/// would keep one frame.
#[test]
fn format_auto_keeps_an_animation_moving() {
    for_each_target(Env::builder, |env| {
        let reply = env.submit(
            "?ops=resize(w=32),format(auto)",
            "image/gif",
            &animated_gif(),
            &[("accept", "image/avif,image/webp,image/*,*/*;q=0.8")],
        );
        assert_eq!(
            reply.status,
            201,
            "{}: {}",
            env.name(),
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.header("content-type"), "image/webp");
        assert_resized_animation(env, &reply.body, "auto");
    });
}

/// More frames than `max_frames` is a `422` naming the count, for a
/// synchronous and an asynchronous submission alike; the first frame
/// alone (a still output) is not refused.
#[test]
fn more_frames_than_max_frames_are_refused() {
    for_each_target(
        || Env::builder().variable("max_frames", "2"),
        |env| {
            for prefer in [&[][..], &[("prefer", "respond-async")][..]] {
                let reply = env.submit("?ops=resize(w=32)", "image/gif", &animated_gif(), prefer);
                let problem = reply.problem(422);
                assert_eq!(problem["type"], "urn:kiln:problem:unprocessable-image");
                let detail = problem["detail"].as_str().unwrap();
                assert!(
                    detail.contains("3 frames") && detail.contains("2 allowed"),
                    "{detail}"
                );
            }
            let reply = env.submit("?ops=format(png)", "image/gif", &animated_gif(), &[]);
            assert_eq!(
                reply.status,
                201,
                "{}",
                String::from_utf8_lossy(&reply.body)
            );
            env.assert_still_serving();
        },
    );
}
