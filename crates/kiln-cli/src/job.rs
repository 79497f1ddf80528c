//! One file through the protocol: submit it under its idempotency key
//! (inline, or `respond-async`), follow its operation's events when the
//! answer is `202`, fetch the image, write it.

use crate::bars::{Bars, JobBar};
use crate::cli::{JobOptions, ProcessArgs};
use crate::output;
use kiln_client::{Client, Error, Image, Mode, Submission, Submitted};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A file read and ready to submit.
pub fn submission(name: &str, path: &Path, options: &JobOptions) -> Result<Submission, String> {
    let bytes = std::fs::read(path).map_err(|err| format!("reading {}: {err}", path.display()))?;
    let ops = options.ops();
    let mut submission = Submission::new(name, bytes, ops.as_deref(), options.accept());
    submission.mode = if options.asynchronous {
        Mode::Async
    } else {
        Mode::Inline { wait: options.wait }
    };
    Ok(submission)
}

/// Submits and follows `submission` until its image is here.
pub fn run(client: &Client, submission: &Submission, bar: &JobBar) -> Result<Image, Error> {
    let total = submission.bytes.len() as u64;
    let submitted = client.submit(submission, |sent| {
        bar.uploading(sent, total);
        if sent == total && submission.mode != Mode::Async {
            bar.processing_inline();
        }
    })?;
    match submitted {
        Submitted::Created(image) => Ok(image),
        Submitted::Accepted(operation) => {
            bar.show(&operation);
            let operation = client.follow(&operation.id, |operation| bar.show(operation))?;
            client.outcome(operation)
        }
    }
}

/// `kiln process FILE...`.
pub fn process(client: &Client, args: &ProcessArgs, json: bool) -> Result<ExitCode, String> {
    let into_file = args
        .output
        .as_ref()
        .filter(|output| args.files.len() == 1 && !output.is_dir() && output.extension().is_some());
    let bars = Bars::new(args.files.len() as u64, !json);
    let outputs = output::Outputs::new(&args.files);
    let mut failed = 0;
    for file in &args.files {
        let name = file.display().to_string();
        // `x.png` and `x.jpg` made WebP: `x.png.webp` and `x.jpg.webp`.
        let keep_extension = args
            .files
            .iter()
            .any(|other| other != file && other.file_stem() == file.file_stem());
        let result_path = |media_type: &str| match (into_file, &args.output) {
            (Some(path), _) => path.clone(),
            (None, Some(dir)) => output::result_path(dir, file, media_type, keep_extension),
            (None, None) => next_to(file, media_type, keep_extension),
        };
        let outcome = submission(&name, file, &args.job).and_then(|submission| {
            let ops = args.job.ops();
            if let Some(media_type) =
                output::predicted_media_type(ops.as_deref(), &submission.bytes)
            {
                outputs.claim(file, &result_path(media_type))?;
            }
            let bar = bars.job(&name);
            let processed = run(client, &submission, &bar).map_err(|err| err.to_string());
            bar.clear();
            let processed = processed?;
            let path = result_path(&processed.media_type);
            outputs.write(file, &path, &processed.bytes)?;
            Ok((processed, path))
        });
        bars.file_finished();
        match outcome {
            Ok((processed, path)) if json => println!(
                "{}",
                serde_json::json!({"file": name, "status": "done", "id": processed.id, "output": path.display().to_string()})
            ),
            Ok((_, path)) => bars.println(&format!("{name} → {}", path.display())),
            Err(message) => {
                failed += 1;
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"file": name, "status": "failed", "error": message})
                    );
                } else {
                    eprintln!("kiln: {name}: {message}");
                }
            }
        }
    }
    bars.finish();
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `dir/photo.kiln.webp` for `dir/photo.jpg` made WebP
/// (`dir/photo.jpg.kiln.webp` when `keep_extension`).
fn next_to(file: &Path, media_type: &str, keep_extension: bool) -> PathBuf {
    let name = if keep_extension {
        file.file_name()
    } else {
        file.file_stem()
    };
    let mut name = name.unwrap_or_default().to_os_string();
    name.push(".kiln");
    let dir = file.parent().unwrap_or(Path::new(""));
    output::result_path(dir, Path::new(&name), media_type, true)
}
