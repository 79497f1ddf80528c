//! The API's description checked by tools from PyPI, in the venv that
//! `.ci/run` makes from `tests/schema/requirements.txt`
//! (`target/schema-venv`, or `$KILN_SCHEMA_VENV`): openapi-spec-validator
//! for the document, Schemathesis for the running app against it. Each runs
//! in a process group the test ends.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::env::workspace_root;
use crate::{images, process};

/// The venv's `bin` folder, or `None` (with a note) when there is none
/// here and `KILN_SCHEMA_REQUIRED` is unset; `.ci/run` sets it.
pub fn tools(test: &str) -> Option<PathBuf> {
    let venv = std::env::var_os("KILN_SCHEMA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/schema-venv"));
    let bin = venv.join("bin");
    let missing = (!bin.join("schemathesis").exists()).then(|| {
        format!(
            "no venv at {} (python3 -m venv {0} && {0}/bin/pip install -r tests/schema/requirements.txt)",
            venv.display()
        )
    });
    (!process::skip_without_tool(missing, "KILN_SCHEMA_REQUIRED", test)).then_some(bin)
}

/// openapi-spec-validator's verdict on `document`: `Ok` with its report,
/// or `Err` with how it ended and what it found wrong.
pub fn validate(bin: &Path, document: &Path) -> Result<String, String> {
    let mut command = Command::new(bin.join("openapi-spec-validator"));
    command.arg(document);
    let log = scratch("validator").with_extension("log");
    let outcome = process::run_logged(command, &log, Duration::from_secs(60));
    std::fs::remove_file(&log).ok();
    outcome
}

/// Runs Schemathesis, every check, against the app at `base_url` (which
/// must accept `Webhook-Url: http://127.0.0.1:9/kiln`), every request
/// carrying `api_key` as a bearer token, with the settings
/// and hooks of `tests/schema`. Its report on success; panics with it on a
/// failure.
pub fn run_schemathesis(bin: &Path, base_url: &str, api_key: &str) -> String {
    let samples = scratch("samples");
    std::fs::create_dir_all(&samples).expect("the sample images folder");
    for (name, bytes) in [
        ("sample.png", images::png(64, 48)),
        ("sample.jpg", images::jpeg(64, 48)),
        ("sample.gif", images::gif(64, 48)),
        ("sample.webp", images::webp(64, 48)),
    ] {
        std::fs::write(samples.join(name), bytes).expect("a sample image");
    }
    let settings = workspace_root().join("tests/schema");
    let mut command = Command::new(bin.join("schemathesis"));
    command
        .arg("--config-file")
        .arg(settings.join("schemathesis.toml"))
        .args([
            "run",
            &format!("{base_url}/openapi.json"),
            "--url",
            base_url,
        ])
        .args(["--max-examples", "50", "--workers", "2"])
        .args(["--header", &format!("Authorization: Bearer {api_key}")])
        .env("SCHEMATHESIS_HOOKS", "kiln_hooks")
        .env("PYTHONPATH", &settings)
        .env("KILN_SCHEMA_IMAGES", &samples)
        // Its cache of past failures would make one run depend on another.
        .current_dir(&samples);
    let timeout = Duration::from_secs(600);
    let outcome = process::run_logged(command, &samples.join("run.log"), timeout);
    std::fs::remove_dir_all(&samples).ok();
    outcome.unwrap_or_else(|why| panic!("schemathesis found failures or did not finish: {why}"))
}

/// A path of this test process's own under `target/`.
fn scratch(name: &str) -> PathBuf {
    workspace_root().join(format!("target/schema-{name}-{}", std::process::id()))
}
