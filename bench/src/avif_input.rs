//! Section 9 of the report: AVIF uploads in Wasm.
//!
//! The 4 and 16 MP photos saved as AVIF by `avifenc` (libaom, 8-bit
//! 4:2:0, as browsers and phones write them), then pipeline P on each in
//! the bare pipeline component, against P on the same photo as JPEG (what
//! reading AV1 costs over reading JPEG) and against `vips` doing P on the
//! AVIF (libheif with its AV1 decoder, assembly and all). Accuracy: the
//! 4 MP AVIF decoded by Kiln natively against `avifdec`'s reading of it.

use std::path::Path;
use std::process::Command;

use crate::corpus::Photo;
use crate::references::References;
use crate::table::{Table, ms, ratio};
use crate::{P, median, median_of, vips};

const RUNS: usize = 5;

/// Prints section 9 for the runtimes of `references` (name, components).
pub fn section(
    photos: &[Photo],
    references: &[(&str, &References)],
    has_vips: bool,
    scratch: &Path,
) {
    println!("## 9. AVIF input in Wasm\n");
    let Some(avifs) = photos[..2]
        .iter()
        .map(|photo| avif_of(photo, scratch))
        .collect::<Option<Vec<_>>>()
    else {
        println!("(no avifenc: apt-get install libavif-bin; AVIF rows skipped)\n");
        return;
    };
    println!(
        "P in the bare pipeline component on each photo saved by `avifenc -s 6 --min 18 --max 28` \
         (8-bit 4:2:0) against P on the JPEG, and against `vips` doing P on the AVIF; runs take \
         turns; median of {RUNS}\n"
    );
    let mut header = vec!["photo".to_owned(), "AVIF bytes".to_owned()];
    for (name, _) in references {
        header.extend([
            format!("{name}: JPEG (ms)"),
            format!("{name}: AVIF (ms)"),
            format!("{name}: AVIF decode (ms)"),
            format!("{name}: AVIF ÷ JPEG"),
        ]);
    }
    header.push("vips 1t, AVIF (ms)".to_owned());
    for (name, _) in references {
        header.push(format!("{name}: AVIF ÷ vips 1t"));
    }
    let mut table = Table::new(&header.iter().map(String::as_str).collect::<Vec<_>>());
    for (photo, avif_path) in photos.iter().zip(&avifs) {
        let avif = std::fs::read(avif_path).expect("the AVIF");
        let mut row = vec![photo.label.to_owned(), avif.len().to_string()];
        let mut avif_times = Vec::new();
        for (_, references) in references {
            let (mut jpeg_ms, mut avif_ms, mut decode_ms) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..RUNS {
                jpeg_ms.push(references.pipeline("image/jpeg", &photo.bytes, P).total_ms);
                let timed = references.pipeline("image/avif", &avif, P);
                avif_ms.push(timed.total_ms);
                decode_ms.push(
                    timed
                        .stages
                        .iter()
                        .filter(|stage| stage.stage == "decode")
                        .map(|stage| stage.ms)
                        .sum(),
                );
            }
            let (jpeg, avif) = (median(&jpeg_ms), median(&avif_ms));
            avif_times.push(avif);
            row.extend([
                format!("{jpeg:.1}"),
                format!("{avif:.1}"),
                format!("{:.1}", median(&decode_ms)),
                ratio(avif, jpeg),
            ]);
        }
        let vips_time = has_vips.then(|| {
            let steps = vips::pipeline_p(avif_path, scratch, &scratch.join("vips-p.jpg"));
            median_of(RUNS, || vips::run(1, &steps))
        });
        row.push(vips_time.map_or("-".into(), ms));
        for kiln in avif_times {
            row.push(vips_time.map_or("-".into(), |vips| ratio(kiln, vips.as_secs_f64() * 1000.0)));
        }
        table.row(row);
    }
    table.print();
    println!();
    accuracy(&photos[0], &avifs[0], scratch);
}

/// The mean and largest difference per sample between Kiln's native
/// decode of `avif` and `avifdec`'s.
fn accuracy(photo: &Photo, avif: &Path, scratch: &Path) {
    let reference = scratch.join("avifdec.png");
    let decoded = Command::new("avifdec")
        .args(["-j", "1", "--depth", "8"])
        .arg(avif)
        .arg(&reference)
        .output()
        .is_ok_and(|run| run.status.success());
    if !decoded {
        println!("(avifdec failed: no accuracy row)\n");
        return;
    }
    let libavif = image::open(&reference).expect("avifdec's PNG").to_rgb8();
    let kiln = kiln_image::process(
        &std::fs::read(avif).expect("the AVIF"),
        &kiln_image::parse_ops("format(png)").expect("valid ops"),
        &kiln_image::Limits::default(),
        &mut |_| std::ops::ControlFlow::Continue(()),
    )
    .expect("Kiln reads the AVIF");
    let kiln = image::load_from_memory(&kiln.bytes)
        .expect("Kiln's PNG")
        .to_rgb8();
    let (sum, max) = kiln
        .iter()
        .zip(libavif.iter())
        .map(|(a, b)| a.abs_diff(*b))
        .fold((0u64, 0u8), |(sum, max), d| {
            (sum + u64::from(d), max.max(d))
        });
    println!(
        "The {} AVIF decoded by Kiln (native) against `avifdec --depth 8`: mean difference {:.3} \
         per sample, largest {max}\n",
        photo.label,
        sum as f64 / kiln.len() as f64
    );
}

/// `photo` saved as AVIF in `scratch`, or `None` without `avifenc`.
fn avif_of(photo: &Photo, scratch: &Path) -> Option<std::path::PathBuf> {
    let output = scratch.join(format!("{}.avif", photo.label.replace(' ', "")));
    let run = Command::new("avifenc")
        .args([
            "-j", "2", "-s", "6", "--min", "18", "--max", "28", "-y", "420",
        ])
        .arg(&photo.path)
        .arg(&output)
        .output()
        .ok()?;
    assert!(
        run.status.success(),
        "avifenc failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    Some(output)
}
