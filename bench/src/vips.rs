//! The peer: libvips's `vips` command line, from Debian's `libvips-tools`,
//! timed as a user would run it (wall time of the commands, with the thread
//! count set by `VIPS_CONCURRENCY`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// `vips --version`, or `None` when it is not installed.
pub fn version() -> Option<String> {
    let output = Command::new("vips").arg("--version").output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Runs each command of `steps` in turn (arguments after `vips`) with
/// `threads` threads; returns the wall time of them all.
pub fn run(threads: u32, steps: &[Vec<String>]) -> Duration {
    let started = Instant::now();
    for step in steps {
        // Its warnings (e.g. "heifload: ignoring nclx profile" on every
        // AVIF) would drown the tables: shown only when a step fails.
        let run = Command::new("vips")
            .args(step)
            .env("VIPS_CONCURRENCY", threads.to_string())
            .output()
            .expect("running vips");
        assert!(
            run.status.success(),
            "vips {step:?} failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    started.elapsed()
}

/// Runs `vips` once with `args` (a conversion that makes an input, not a
/// timed step); panics with its message when it fails.
pub fn call(args: &[&str]) {
    let run = Command::new("vips")
        .args(args)
        .output()
        .expect("running vips");
    assert!(
        run.status.success(),
        "vips {args:?} failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// Kiln's pipeline P (`resize(w=1600),sharpen(sigma=1),quality(82),
/// format(jpeg)`) as `vips` does it: shrink-on-load thumbnail to 1600 wide,
/// sharpen, JPEG at quality 82 without metadata.
pub fn pipeline_p(input: &Path, scratch: &Path, output: &Path) -> Vec<Vec<String>> {
    let thumbnail = scratch.join("thumbnail.v");
    let sharpened = scratch.join("sharpened.v");
    let path = |p: &Path| p.display().to_string();
    vec![
        vec![
            "thumbnail".into(),
            path(input),
            path(&thumbnail),
            "1600".into(),
            "--height".into(),
            "100000".into(),
        ],
        vec![
            "sharpen".into(),
            path(&thumbnail),
            path(&sharpened),
            "--sigma".into(),
            "1".into(),
        ],
        vec![
            "jpegsave".into(),
            path(&sharpened),
            path(output),
            "--Q".into(),
            "82".into(),
            "--strip".into(),
        ],
    ]
}

/// A full-size re-encode: the photo mirrored and saved to `output`, whose
/// extension picks the format (`[Q=80,strip]` style options may follow).
pub fn flip(input: &Path, output: &str) -> Vec<Vec<String>> {
    vec![vec![
        "flip".into(),
        input.display().to_string(),
        output.to_owned(),
        "horizontal".into(),
    ]]
}
