//! Pages in a real browser (the demo page; a page on another origin):
//! Debian's Chromium (`apt-get install chromium`) driven by playwright-core
//! (`npm ci --prefix tests/browser`), through the scripts in
//! `tests/browser/`, each run in a process group of the test's own so that
//! the browser and all its children end with it.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::env::workspace_root;
use crate::process;

/// What a browser run needs, or why it cannot run here.
fn missing() -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let playwright = workspace_root().join("tests/browser/node_modules/playwright-core");
    if !PathBuf::from(&chromium).exists() {
        return Some(format!(
            "no Chromium at {chromium} (apt-get install chromium)"
        ));
    }
    if !playwright.exists() {
        return Some("no playwright-core (npm ci --prefix tests/browser)".into());
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("no node on PATH".into());
    }
    None
}

/// Runs `demo.mjs` against the app at `base_url` with `image` (a PNG);
/// its report line, or `None` when the browser is not installed and
/// `KILN_BROWSER_REQUIRED` is unset (`.ci/run` sets it). Panics with the
/// script's output when the page misbehaves. Screenshots go to
/// `target/browser-screenshots/<target>/` (`test-host`, `spin-up`).
pub fn run_demo(target: &str, base_url: &str, image: &[u8]) -> Option<String> {
    run_demo_script(target, base_url, image, None)
}

/// As [`run_demo`], on an app with API keys on (for reads too), `api_key`
/// being one of them: the page is first refused, then given the key.
pub fn run_demo_with_key(
    target: &str,
    base_url: &str,
    image: &[u8],
    api_key: &str,
) -> Option<String> {
    run_demo_script(target, base_url, image, Some(api_key))
}

fn run_demo_script(
    target: &str,
    base_url: &str,
    image: &[u8],
    api_key: Option<&str>,
) -> Option<String> {
    run_with_image("demo", target, image, |image_path, screenshots| {
        let mut args = vec![base_url.into(), image_path.into(), screenshots.into()];
        args.extend(api_key.map(str::to_owned));
        args
    })
}

/// Runs `cors.mjs`: a page at `allowed_origin` (which the app at
/// `base_url` lists in `cors_allowed_origins`) uses the API with `image`
/// (a PNG), and one at `other_origin` is blocked. As [`run_demo`].
pub fn run_cors(
    target: &str,
    base_url: &str,
    allowed_origin: &str,
    other_origin: &str,
    image: &[u8],
) -> Option<String> {
    run_with_image("cors", target, image, |image_path, _| {
        vec![
            base_url.into(),
            allowed_origin.into(),
            other_origin.into(),
            image_path.into(),
        ]
    })
}

/// Runs `tests/browser/<script>.mjs` with the arguments `args` makes of
/// the path of `image` (written to a file for it) and of the screenshot
/// folder; its log is kept beside the screenshots.
fn run_with_image(
    script: &str,
    target: &str,
    image: &[u8],
    args: impl FnOnce(&str, &str) -> Vec<String>,
) -> Option<String> {
    if process::skip_without_tool(missing(), "KILN_BROWSER_REQUIRED", "the browser test") {
        return None;
    }
    let screenshots = workspace_root()
        .join("target/browser-screenshots")
        .join(target.replace(' ', "-"));
    std::fs::create_dir_all(&screenshots).expect("the screenshot folder");
    // One name per run: tests run at once in one process, and the page
    // reads the file again for each submission.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = format!(
        "{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let image_path = screenshots.join(format!("{script}-upload-{run}.png"));
    std::fs::write(&image_path, image).expect("writing the test image");
    let mut command = Command::new("node");
    command
        .arg(workspace_root().join(format!("tests/browser/{script}.mjs")))
        .args(args(
            &image_path.display().to_string(),
            &screenshots.display().to_string(),
        ));
    let log = screenshots.join(format!("{script}-{run}.log"));
    let outcome = process::run_logged(command, &log, Duration::from_secs(120));
    std::fs::remove_file(&image_path).ok();
    match outcome {
        Ok(output) => Some(output.trim().to_owned()),
        Err(why) => panic!("{script}.mjs failed in Chromium on the {target}: {why}"),
    }
}
