//! Part of section 8: Kiln's colour management against libvips's, on a
//! real photo. The 4 MP photo converted by `vips icc_transform` into
//! Adobe RGB, ProPhoto, Display P3 and CMYK, each with its profile
//! embedded; then `resize(w=800),format(png)` by Kiln (natively: the Wasm
//! pixels are the same) and `vips thumbnail x 800 --export-profile srgb`;
//! the mean CIEDE2000 between the two PNGs, per profile (issue 22's bound:
//! 1.5), beside the same for the photo's numbers read as sRGB (what Kiln
//! did before it managed colour).

use std::path::Path;

use image::RgbImage;

use crate::corpus::Photo;
use crate::table::Table;
use crate::vips;

const COLORD: &str = "/usr/share/color/icc/colord";
const WIDTH: u32 = 800;

/// Prints the table of mean CIEDE2000 per profile.
pub fn table(photo: &Photo, scratch: &Path) {
    let p3 = scratch.join("display-p3.icc");
    let encoded = moxcms::ColorProfile::new_display_p3()
        .encode()
        .expect("moxcms writes Display P3");
    std::fs::write(&p3, encoded).expect("writing the P3 profile");
    let profiles = [
        ("Adobe RGB", format!("{COLORD}/AdobeRGB1998.icc")),
        ("ProPhoto", format!("{COLORD}/ProPhotoRGB.icc")),
        ("Display P3 (moxcms)", p3.display().to_string()),
        ("CMYK (libvips's)", "cmyk".to_owned()),
    ];
    println!(
        "The {} photo converted by `vips icc_transform` (profile embedded, JPEG q95), then \
         `resize(w={WIDTH}),format(png)` by Kiln against `vips thumbnail x {WIDTH} \
         --export-profile srgb`: mean CIEDE2000 per pixel\n",
        photo.label
    );
    let mut table = Table::new(&[
        "profile",
        "Kiln vs vips (bound 1.5)",
        "read as sRGB vs vips",
        "met",
    ]);
    for (name, profile) in profiles {
        let tagged = scratch.join("tagged.jpg");
        vips::call(&[
            "icc_transform",
            &photo.path.display().to_string(),
            &format!("{}[Q=95]", tagged.display()),
            &profile,
        ]);
        let bytes = std::fs::read(&tagged).expect("the tagged photo");
        let reference = scratch.join("vips-srgb.png");
        vips::call(&[
            "thumbnail",
            &tagged.display().to_string(),
            &reference.display().to_string(),
            &WIDTH.to_string(),
            "--export-profile",
            "srgb",
        ]);
        let libvips = image::open(&reference).expect("vips's PNG").to_rgb8();
        let kiln = kiln_png(&bytes);
        let managed = mean_ciede2000(&kiln, &libvips);
        // CMYK numbers have no reading as sRGB.
        let ignored = match name.starts_with("CMYK") {
            true => "-".to_owned(),
            false => format!(
                "{:.2}",
                mean_ciede2000(&read_as_srgb(&tagged, scratch), &libvips)
            ),
        };
        table.row(vec![
            name.to_owned(),
            format!("{managed:.2}"),
            ignored,
            if managed <= 1.5 { "met" } else { "NOT met" }.to_owned(),
        ]);
    }
    table.print();
    println!();
}

/// `tagged`'s numbers taken as sRGB: its profile dropped (a lossless TIFF
/// without metadata), then the same `vips thumbnail`.
fn read_as_srgb(tagged: &Path, scratch: &Path) -> RgbImage {
    let stripped = scratch.join("stripped.tif");
    let as_srgb = scratch.join("as-srgb.png");
    let path = |p: &Path| p.display().to_string();
    vips::call(&["tiffsave", &path(tagged), &path(&stripped), "--strip"]);
    vips::call(&[
        "thumbnail",
        &path(&stripped),
        &path(&as_srgb),
        &WIDTH.to_string(),
        "--export-profile",
        "srgb",
    ]);
    image::open(&as_srgb).expect("vips's PNG").to_rgb8()
}

fn kiln_png(bytes: &[u8]) -> RgbImage {
    let output = kiln_image::process(
        bytes,
        &kiln_image::parse_ops(&format!("resize(w={WIDTH}),format(png)")).expect("valid ops"),
        &kiln_image::Limits::default(),
        &mut |_| std::ops::ControlFlow::Continue(()),
    )
    .expect("Kiln converts the tagged photo");
    image::load_from_memory(&output.bytes)
        .expect("Kiln's PNG")
        .to_rgb8()
}

/// Mean CIEDE2000 over the pixels the two images share (their sizes may
/// differ by a rounding pixel).
fn mean_ciede2000(a: &RgbImage, b: &RgbImage) -> f64 {
    let (width, height) = (a.width().min(b.width()), a.height().min(b.height()));
    let mut total = 0.0;
    for y in 0..height {
        for x in 0..width {
            let (p, q) = (a.get_pixel(x, y).0, b.get_pixel(x, y).0);
            let p = rgb::RGB8::new(p[0], p[1], p[2]);
            let q = rgb::RGB8::new(q[0], q[1], q[2]);
            total += f64::from(empfindung::cie00::diff(p, q));
        }
    }
    total / f64::from(width * height)
}
