//! Formats: lossy and lossless WebP output, AVIF output (checked by an
//! independent decoder) and input, `format(auto)` negotiated from `Accept`
//! once, at submission, and the service's JPEG the same as the library's
//! native one.

use image::{GenericImageView, ImageFormat};
use kiln_e2e::images::{self, decode_avif, inspect, psnr, webp_chunks};
use kiln_e2e::{Env, Reply, for_each_target};
use std::time::Duration;

/// What Chrome sends for an `<img>`.
const BROWSER_ACCEPT: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";

fn convert(env: &Env, ops: &str, png: &[u8], headers: &[(&str, &str)]) -> Reply {
    let reply = env.submit(&format!("?ops={ops}"), "image/png", png, headers);
    assert_eq!(
        reply.status,
        201,
        "{ops}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    reply
}

fn is_avif(bytes: &[u8]) -> bool {
    bytes.get(4..12) == Some(b"ftypavif")
}

/// `format(webp)` is lossy (a `VP8 ` chunk), decodes in an independent
/// decoder to the requested size, and stays close to the source.
#[test]
fn webp_output_is_lossy_and_faithful() {
    for_each_target(Env::builder, |env| {
        let source = images::photo_png(320, 240);
        let reply = convert(env, "format(webp)", &source, &[]);
        assert_eq!(reply.header("content-type"), "image/webp");
        assert_eq!(webp_chunks(&reply.body), ["VP8 "], "{}", env.name());
        let decoded = image::load_from_memory(&reply.body).unwrap();
        assert_eq!(decoded.dimensions(), (320, 240));
        let quality = psnr(&image::load_from_memory(&source).unwrap(), &decoded);
        assert!(quality > 30.0, "PSNR {quality:.1} dB");
    });
}

/// `quality(100)` asks WebP for lossless compression: every pixel comes
/// back exactly.
#[test]
fn webp_at_quality_100_is_lossless() {
    for_each_target(Env::builder, |env| {
        let source = images::photo_png(200, 150);
        let reply = convert(env, "format(webp),quality(100)", &source, &[]);
        assert_eq!(webp_chunks(&reply.body), ["VP8L"]);
        let decoded = image::load_from_memory(&reply.body).unwrap().to_rgba8();
        assert_eq!(
            decoded,
            image::load_from_memory(&source).unwrap().to_rgba8()
        );
    });
}

/// Transparency survives lossy WebP and AVIF: clear pixels stay clear,
/// opaque ones opaque.
#[test]
fn lossy_outputs_keep_transparency() {
    for_each_target(Env::builder, |env| {
        let source = images::half_transparent_png(64, 48);
        let webp = convert(env, "format(webp)", &source, &[]);
        assert!(
            webp_chunks(&webp.body).contains(&"ALPH".to_owned()),
            "{:?}",
            webp_chunks(&webp.body)
        );
        let mut decoded = vec![image::load_from_memory(&webp.body).unwrap()];
        let avif = convert(env, "format(avif)", &source, &[]);
        decoded.extend(decode_avif(&avif.body));
        for image in decoded {
            let rgba = image.to_rgba8();
            assert_eq!(rgba.get_pixel(5, 20)[3], 0, "left half transparent");
            assert_eq!(rgba.get_pixel(60, 20)[3], 255, "right half opaque");
        }
    });
}

/// `format(avif)` answers an AVIF file that Debian's `avifdec` (libavif
/// and dav1d, nothing shared with Kiln's encoder) decodes to the requested
/// size, close to the source; asynchronously too, served from its image
/// resource.
#[test]
fn avif_output_decodes_in_an_independent_decoder() {
    for_each_target(Env::builder, |env| {
        let source = images::photo_png(320, 240);
        let reply = convert(env, "resize(w=160),format(avif)", &source, &[]);
        assert_eq!(reply.header("content-type"), "image/avif");
        assert!(is_avif(&reply.body), "{}", env.name());
        if let Some(decoded) = decode_avif(&reply.body) {
            assert_eq!(decoded.dimensions(), (160, 120));
            let reference = image::load_from_memory(&source).unwrap().resize_exact(
                160,
                120,
                image::imageops::FilterType::Lanczos3,
            );
            let quality = psnr(&reference, &decoded);
            assert!(quality > 28.0, "PSNR {quality:.1} dB");
        }
        let accepted = env.submit_async("?ops=format(avif)", &images::png(48, 32));
        let done = env.wait_until_finished(&accepted.location(), Duration::from_secs(60));
        let image = env.get(done.json()["resourceLocation"].as_str().unwrap(), &[]);
        assert_eq!(image.status, 200);
        assert_eq!(image.header("content-type"), "image/avif");
        assert!(is_avif(&image.body));
    });
}

/// `quality(N)` is honoured by every lossy format: lower is smaller.
#[test]
fn lower_quality_gives_smaller_files_in_every_lossy_format() {
    for_each_target(Env::builder, |env| {
        let source = images::photo_png(240, 180);
        for format in ["jpeg", "webp", "avif"] {
            let high = convert(env, &format!("format({format}),quality(90)"), &source, &[]);
            let low = convert(env, &format!("format({format}),quality(30)"), &source, &[]);
            assert!(
                low.body.len() < high.body.len(),
                "{format}: q30 {} bytes, q90 {} bytes",
                low.body.len(),
                high.body.len()
            );
        }
    });
}

/// AVIF files written by libavif's `avifenc` (crates/kiln-image/testdata/
/// make.sh: the 67×45 gradient drawn there).
fn avifenc_file(name: &str) -> Vec<u8> {
    let path = kiln_e2e::env::workspace_root()
        .join("crates/kiln-image/testdata")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// AVIF uploads are read: libavif's files (8-bit, 10-bit, alpha, turned
/// and mirrored) come out as PNG at their displayed size, as libavif's
/// own decoder sees their pixels, and Kiln's own AVIF output reads back.
#[test]
fn avif_uploads_are_read() {
    for_each_target(Env::builder, |env| {
        let files = [
            ("avif-8bit.avif", (67, 45)),
            ("avif-10bit-444.avif", (67, 45)),
            ("avif-alpha.avif", (67, 45)),
            ("avif-irot1-imir0.avif", (45, 67)),
        ];
        for (name, size) in files {
            let avif = avifenc_file(name);
            let reply = env.submit("?ops=format(png)", "image/avif", &avif, &[]);
            assert_eq!(
                reply.status,
                201,
                "{name}: {}",
                String::from_utf8_lossy(&reply.body)
            );
            let png = image::load_from_memory(&reply.body).unwrap();
            assert_eq!(png.dimensions(), size, "{name}");
            assert_eq!(png.color().has_alpha(), name.contains("alpha"), "{name}");
            // avifdec writes the pixels as coded, without irot and imir.
            if let Some(libavif) = decode_avif(&avif).filter(|_| !name.contains("irot")) {
                let quality = psnr(&libavif, &png);
                assert!(
                    quality > 45.0,
                    "{name}: PSNR {quality:.1} dB against avifdec"
                );
            }
        }
        let source = images::photo_png(320, 240);
        let avif = convert(env, "format(avif),quality(90)", &source, &[]).body;
        let reply = env.submit("?ops=resize(w=160),format(png)", "image/avif", &avif, &[]);
        assert_eq!(
            reply.status,
            201,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(inspect(&reply.body), (ImageFormat::Png, 160, 120));
    });
}

/// An AVIF accepted asynchronously is stored and processed like any
/// upload: the 202, then the image.
#[test]
fn an_avif_upload_is_processed_asynchronously() {
    for_each_target(Env::builder, |env| {
        let avif = avifenc_file("avif-8bit.avif");
        let accepted = env.submit(
            "?ops=rotate(90),format(webp)",
            "image/avif",
            &avif,
            &[("prefer", "respond-async")],
        );
        assert_eq!(
            accepted.status,
            202,
            "{}",
            String::from_utf8_lossy(&accepted.body)
        );
        let done = env.wait_until_finished(&accepted.location(), Duration::from_secs(60));
        assert_eq!(done.json()["status"], "succeeded", "{}", done.json());
        let image = env.get(done.json()["resourceLocation"].as_str().unwrap(), &[]);
        assert_eq!(inspect(&image.body), (ImageFormat::WebP, 45, 67));
    });
}

/// A cut AVIF is a 422 that says so, and nothing is stored; a grid AVIF
/// (one picture in tiles, which Kiln does not assemble) is a 415 that
/// names the grid.
#[test]
fn a_cut_avif_is_422_and_a_grid_415() {
    for_each_target(Env::builder, |env| {
        env.settle();
        let before = env.store().keys();
        let avif = avifenc_file("avif-alpha.avif");
        for cut in [avif.len() / 2, avif.len() - 1] {
            let reply = env.submit("?ops=format(png)", "image/avif", &avif[..cut], &[]);
            let problem = reply.problem(422);
            let detail = problem["detail"].as_str().unwrap();
            assert!(detail.contains("truncated"), "cut at {cut}: {detail}");
        }
        let grid = avifenc_file("avif-grid.avif");
        let problem = env.submit("", "image/avif", &grid, &[]).problem(415);
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("AVIF grid"), "{detail}");
        env.settle();
        assert_eq!(env.store().keys(), before);
        env.assert_still_serving();
    });
}

/// The start of an iPhone photo: an ISO-BMFF `ftyp` box naming HEIC.
fn heic_header() -> Vec<u8> {
    let mut heic = 24u32.to_be_bytes().to_vec();
    heic.extend_from_slice(b"ftypheic\0\0\0\0mif1heic");
    heic.extend_from_slice(&[0; 64]);
    heic
}

/// HEIC uploads get a `415` that names HEIC, whether the client says so
/// (`image/heic`, `image/heif`) or sends one under another type; nothing
/// is stored.
#[test]
fn a_heic_upload_is_415_naming_heic() {
    for_each_target(Env::builder, |env| {
        env.settle();
        let before = env.store().keys();
        for content_type in ["image/heic", "image/HEIF; q=1", "image/jpeg"] {
            let reply = env.submit("", content_type, &heic_header(), &[]);
            let problem = reply.problem(415);
            let detail = problem["detail"].as_str().unwrap();
            assert!(
                detail.contains("HEIC/HEIF input is not supported"),
                "{content_type}: {detail}"
            );
        }
        env.settle();
        assert_eq!(env.store().keys(), before);
        env.assert_still_serving();
    });
}

/// `format(auto)` picks AVIF for a client that names it, WebP for one that
/// names only WebP, and keeps the source format without `Accept` or with
/// wildcards only; `q=0` excludes. The answer says it varies with `Accept`.
#[test]
fn format_auto_follows_accept() {
    for_each_target(Env::builder, |env| {
        let source = images::jpeg(40, 30);
        let cases: [(&[(&str, &str)], &str); 6] = [
            (&[("accept", BROWSER_ACCEPT)], "image/avif"),
            (&[("accept", "image/webp,image/*;q=0.8")], "image/webp"),
            (&[("accept", "image/avif;q=0, image/webp")], "image/webp"),
            (&[("accept", "*/*")], "image/jpeg"),
            (&[("accept", "image/png")], "image/png"),
            (&[], "image/jpeg"),
        ];
        for (headers, expected) in cases {
            let reply = env.submit(
                "?ops=resize(w=20),format(auto)",
                "image/jpeg",
                &source,
                headers,
            );
            assert_eq!(reply.status, 201, "{headers:?}");
            assert_eq!(
                reply.header("content-type"),
                expected,
                "{headers:?} on {}",
                env.name()
            );
            assert_eq!(
                reply.header("vary"),
                "Prefer, Accept, Origin",
                "{headers:?}"
            );
        }
    });
}

/// The negotiated format is recorded with the job: the image under its id
/// is the same bytes whatever a later reader accepts, and its resource does
/// not vary with `Accept`.
#[test]
fn a_negotiated_format_is_fixed_at_submission() {
    for_each_target(Env::builder, |env| {
        let accepted = env.submit(
            "?ops=format(auto)",
            "image/png",
            &images::png(48, 32),
            &[("prefer", "respond-async"), ("accept", "image/webp")],
        );
        assert_eq!(accepted.status, 202);
        assert_eq!(accepted.header("vary"), "Prefer, Accept, Origin");
        let id = accepted.operation_id();
        assert!(
            env.job_record(&id)["ops"]
                .as_str()
                .unwrap()
                .contains("format(webp)"),
            "{}",
            env.job_record(&id)
        );
        let done = env.wait_until_finished(&accepted.location(), Duration::from_secs(60));
        let path = done.json()["resourceLocation"].as_str().unwrap().to_owned();
        let first = env.get(&path, &[("accept", "image/avif")]);
        let second = env.get(&path, &[("accept", "image/png")]);
        assert_eq!(first.header("content-type"), "image/webp");
        assert_eq!(first.body, second.body);
        assert!(
            !first
                .maybe_header("vary")
                .unwrap_or_default()
                .contains("Accept")
        );
        assert_eq!(inspect(&first.body), (ImageFormat::WebP, 48, 32));
    });
}

/// AVIF and lossy WebP take frames up to a size (the AVIF encoder cannot
/// stop midway; VP8 cannot hold more): past it, an explicit request is a
/// 422 from the header, nothing stored, and `format(auto)` passes over
/// AVIF for the next format the client names.
#[test]
fn outputs_too_large_for_a_format_are_refused_or_negotiated_around() {
    for_each_target(Env::builder, |env| {
        let large = images::png(2100, 2100);
        env.settle();
        let before = env.store().keys();
        let refused = env.submit("?ops=format(avif)", "image/png", &large, &[]);
        let detail = refused.problem(422)["detail"].as_str().unwrap().to_owned();
        assert!(
            detail.contains("too large for AVIF output") && detail.contains("resize it first"),
            "{detail}"
        );
        env.settle();
        assert_eq!(env.store().keys(), before);
        let negotiated = env.submit(
            "?ops=format(auto)",
            "image/png",
            &large,
            &[("accept", BROWSER_ACCEPT)],
        );
        assert_eq!(negotiated.status, 201);
        assert_eq!(negotiated.header("content-type"), "image/webp");
        let resized = convert(
            env,
            "resize(w=1000),format(auto)",
            &large,
            &[("accept", BROWSER_ACCEPT)],
        );
        assert_eq!(resized.header("content-type"), "image/avif");
    });
}

/// An explicit format ignores `Accept`, and the answer does not vary
/// with it.
#[test]
fn an_explicit_format_ignores_accept() {
    for_each_target(Env::builder, |env| {
        let reply = convert(
            env,
            "format(gif)",
            &images::png(16, 16),
            &[("accept", BROWSER_ACCEPT)],
        );
        assert_eq!(reply.header("content-type"), "image/gif");
        assert_eq!(reply.header("vary"), "Prefer, Origin");
    });
}

/// An unknown format is a 400 naming every format Kiln writes.
#[test]
fn an_unknown_format_is_400_naming_the_supported_ones() {
    for_each_target(Env::builder, |env| {
        let reply = env.submit("?ops=format(tiff)", "image/png", &images::png(8, 8), &[]);
        let detail = reply.problem(400)["detail"].as_str().unwrap().to_owned();
        assert!(
            detail.contains("jpeg, png, webp, gif, avif, auto"),
            "{detail}"
        );
    });
}

/// What the service writes in Wasm is what `kiln-image` writes natively,
/// byte for byte, through resizing, sharpening and the JPEG encoder: the
/// library's native tests and benchmarks speak for the service. (Natively
/// the resizer runs AVX2 kernels where Wasm runs simd128 ones, to the same
/// results; `jpeg-encoder`'s AVX2 DCT would break this, which is one reason
/// its `simd` feature is off.)
#[test]
fn the_service_writes_the_jpeg_the_library_writes_natively() {
    for_each_target(Env::builder, |env| {
        let source = images::photo_png(331, 217);
        let ops = "resize(w=300),sharpen(sigma=1),quality(80),format(jpeg)";
        let served = convert(env, ops, &source, &[]).body;
        let native = kiln_image::process(
            &source,
            &kiln_image::parse_ops(ops).unwrap(),
            &kiln_image::Limits::default(),
            &mut |_| std::ops::ControlFlow::Continue(()),
        )
        .unwrap()
        .bytes;
        assert_eq!(served.len(), native.len(), "served and native JPEG sizes");
        assert!(
            served == native,
            "the served JPEG differs from the native one"
        );
    });
}
