//! `resize(fit=cover,gravity=…)`: the crop keeps the side a compass
//! gravity names, and the part `attention` and `entropy` find, through
//! JPEG shrink-on-load as through a full decode; a gravity without a crop
//! is a `400` naming the argument.

use image::{DynamicImage, Rgb, RgbImage};
use kiln_e2e::{Env, for_each_target};

/// A JPEG, 1200×400: red on its left third, grey in the middle, blue on
/// its right third.
fn thirds() -> Vec<u8> {
    let image = RgbImage::from_fn(1200, 400, |x, _| match x {
        0..400 => Rgb([230, 20, 20]),
        400..800 => Rgb([128, 128, 128]),
        _ => Rgb([20, 20, 230]),
    });
    jpeg(image)
}

fn jpeg(image: RgbImage) -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(image)
        .write_to(&mut bytes, image::ImageFormat::Jpeg)
        .unwrap();
    bytes.into_inner()
}

/// The middle pixel of what `ops` makes of `upload`, as a PNG.
fn middle(env: &Env, upload: &[u8], ops: &str) -> [u8; 3] {
    let reply = env.submit(
        &format!("?ops={ops},format(png)"),
        "image/jpeg",
        upload,
        &[],
    );
    assert_eq!(
        reply.status,
        201,
        "{}: {ops}: {}",
        env.name(),
        String::from_utf8_lossy(&reply.body)
    );
    let image = image::load_from_memory(&reply.body).unwrap().to_rgb8();
    image.get_pixel(image.width() / 2, image.height() / 2).0
}

fn close(pixel: [u8; 3], expected: [u8; 3]) -> bool {
    pixel.iter().zip(expected).all(|(a, b)| a.abs_diff(b) <= 12)
}

#[test]
fn compass_gravities_keep_the_side_they_name() {
    for_each_target(Env::builder, |env| {
        let upload = thirds();
        // 100×100 from 1200×400 shrinks on load (1/2); 390×390 does not.
        for size in [100, 390] {
            for (gravity, expected) in [
                ("west", [230, 20, 20]),
                ("centre", [128, 128, 128]),
                ("east", [20, 20, 230]),
            ] {
                let ops = format!("resize(w={size},h={size},fit=cover,gravity={gravity})");
                let pixel = middle(env, &upload, &ops);
                assert!(close(pixel, expected), "{}: {ops}: {pixel:?}", env.name());
            }
        }
    });
}

/// A skin-toned patch on the right of a grey frame: `attention` keeps
/// it, where the centre crop would not.
#[test]
fn attention_keeps_the_skin_toned_part() {
    for_each_target(Env::builder, |env| {
        let skin = [224, 172, 140];
        let upload = jpeg(RgbImage::from_fn(1200, 400, |x, y| {
            if (950..1150).contains(&x) && (100..300).contains(&y) {
                Rgb(skin)
            } else {
                Rgb([128, 128, 128])
            }
        }));
        let pixel = middle(
            env,
            &upload,
            "resize(w=200,h=200,fit=cover,gravity=attention)",
        );
        assert!(close(pixel, skin), "{}: {pixel:?}", env.name());
        let centred = middle(env, &upload, "resize(w=200,h=200,fit=cover)");
        assert!(
            close(centred, [128, 128, 128]),
            "{}: {centred:?}",
            env.name()
        );
    });
}

#[test]
fn a_gravity_without_a_cover_crop_is_400() {
    for_each_target(Env::builder, |env| {
        let reply = env.submit(
            "?ops=resize(w=100,gravity=north)",
            "image/jpeg",
            &thirds(),
            &[],
        );
        let problem = reply.problem(400);
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("needs fit=cover"),
            "{}: {detail}",
            env.name()
        );
    });
}

/// `fit=pad` letterboxes to exactly the box with `background(...)`, and
/// a clear background stays clear in PNG.
#[test]
fn pad_letterboxes_with_the_background() {
    for_each_target(Env::builder, |env| {
        let upload = thirds();
        let reply = env.submit(
            "?ops=background(102030),resize(w=300,h=300,fit=pad,gravity=north),format(png)",
            "image/jpeg",
            &upload,
            &[],
        );
        assert_eq!(
            reply.status,
            201,
            "{}: {}",
            env.name(),
            String::from_utf8_lossy(&reply.body)
        );
        let image = image::load_from_memory(&reply.body).unwrap().to_rgba8();
        assert_eq!(image.dimensions(), (300, 300), "{}", env.name());
        // 300×100 of the photo at the top, the background below.
        assert!(
            close3(image.get_pixel(20, 50).0, [230, 20, 20]),
            "{}",
            env.name()
        );
        assert_eq!(
            image.get_pixel(150, 250).0,
            [16, 32, 48, 255],
            "{}",
            env.name()
        );

        let clear = env.submit(
            "?ops=background(00000000),resize(w=300,h=300,fit=pad),format(png)",
            "image/jpeg",
            &upload,
            &[],
        );
        let image = image::load_from_memory(&clear.body).unwrap().to_rgba8();
        assert_eq!(image.get_pixel(150, 10).0[3], 0, "{}", env.name());
        assert_eq!(image.get_pixel(150, 150).0[3], 255, "{}", env.name());
    });
}

fn close3(pixel: [u8; 4], expected: [u8; 3]) -> bool {
    close([pixel[0], pixel[1], pixel[2]], expected)
}
