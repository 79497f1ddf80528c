//! `kiln batch DIR --out DIR`: every image of a folder, `-j N` at a time.
//!
//! Resumable without duplicates, at two levels: a file whose result an
//! earlier run wrote (noted in the output folder's record under its
//! idempotency key) is skipped without a request; a file whose submission
//! was cut off (Ctrl-C, a dead server) is submitted again under the same
//! key, derived from its path, bytes and ops, so the server answers with
//! the job it already has instead of making a second one.

use crate::bars::Bars;
use crate::cli::BatchArgs;
use crate::job;
use crate::output::{self, Outputs, Record};
use kiln_client::Client;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How one file ended.
enum Outcome {
    Done { id: String, output: PathBuf },
    Skipped { id: String, output: PathBuf },
    Failed { message: String },
}

/// `kiln batch`.
pub fn run(client: &Client, args: &BatchArgs, json: bool) -> Result<ExitCode, String> {
    std::fs::create_dir_all(&args.out)
        .map_err(|err| format!("creating {}: {err}", args.out.display()))?;
    let files = images(&args.dir, &args.out, args.recursive)?;
    let shared_stems = shared_stems(&files);
    let record = Record::open(&args.out);
    let outputs = Outputs::new(&files);
    let bars = Bars::new(files.len() as u64, !json);
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<Option<Outcome>>> =
        Mutex::new(std::iter::repeat_with(|| None).take(files.len()).collect());
    let workers = usize::from(args.jobs).min(files.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = files.get(index) else { break };
                    let keep_extension = shared_stems.contains(&stem_in_dir(file));
                    let outcome = one(client, args, &record, &outputs, &bars, file, keep_extension);
                    bars.file_finished();
                    outcomes.lock().expect("no worker panics")[index] = Some(outcome);
                }
            });
        }
    });
    bars.finish();
    let outcomes = outcomes.into_inner().expect("no worker panics");
    let failed = summary(&args.dir, &files, &outcomes, json);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn one(
    client: &Client,
    args: &BatchArgs,
    record: &Record,
    outputs: &Outputs,
    bars: &Bars,
    file: &Path,
    keep_extension: bool,
) -> Outcome {
    let relative = file.strip_prefix(&args.dir).unwrap_or(file);
    let name = relative.display().to_string();
    let submission = match job::submission(&name, file, &args.job) {
        Ok(submission) => submission,
        Err(message) => return Outcome::Failed { message },
    };
    if let Some(finished) = record.finished(&args.out, &submission.idempotency_key) {
        return Outcome::Skipped {
            id: finished.id,
            output: finished.output,
        };
    }
    let dir = args.out.join(relative.parent().unwrap_or(Path::new("")));
    let result_path =
        |media_type: &str| output::result_path(&dir, file, media_type, keep_extension);
    let ops = args.job.ops();
    if let Some(media_type) = output::predicted_media_type(ops.as_deref(), &submission.bytes)
        && let Err(message) = outputs.claim(file, &result_path(media_type))
    {
        return Outcome::Failed { message };
    }
    let bar = bars.job(&name);
    let processed = job::run(client, &submission, &bar);
    bar.clear();
    let image = match processed {
        Ok(image) => image,
        Err(err) => {
            return Outcome::Failed {
                message: err.to_string(),
            };
        }
    };
    let output = result_path(&image.media_type);
    let written = outputs
        .write(file, &output, &image.bytes)
        .and_then(|()| record.add(&args.out, &submission.idempotency_key, &image.id, &output));
    match written {
        Ok(()) => Outcome::Done {
            id: image.id,
            output,
        },
        Err(message) => Outcome::Failed { message },
    }
}

/// The images in `dir` (by their name's extension), sorted; subfolders
/// too when `recursive`, but not linked folders (a link to a parent would
/// loop) nor the output folder `out` (a rerun would process the results).
/// Hidden files (the batch record among them) are left out.
fn images(dir: &Path, out: &Path, recursive: bool) -> Result<Vec<PathBuf>, String> {
    let out = out.canonicalize().ok();
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder)
            .map_err(|err| format!("reading {}: {err}", folder.display()))?;
        for entry in entries {
            let entry = entry.map_err(|err| format!("reading {}: {err}", folder.display()))?;
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let is_linked_folder = entry.file_type().is_ok_and(|kind| kind.is_symlink());
            if path.is_dir() {
                let is_out = out.is_some() && path.canonicalize().ok() == out;
                if recursive && !is_linked_folder && !is_out {
                    folders.push(path);
                }
            } else if is_image_name(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn is_image_name(path: &Path) -> bool {
    let extension = path
        .extension()
        .map(|ext| ext.to_string_lossy().to_ascii_lowercase());
    matches!(
        extension.as_deref(),
        Some("jpg" | "jpeg" | "png" | "webp" | "gif" | "avif")
    )
}

fn stem_in_dir(file: &Path) -> PathBuf {
    file.with_extension("")
}

/// Stems two or more files of one folder share (`a.png`, `a.jpg`): their
/// results keep the input's extension in their names, so neither
/// overwrites the other.
fn shared_stems(files: &[PathBuf]) -> HashSet<PathBuf> {
    let mut seen = HashSet::new();
    files
        .iter()
        .map(|file| stem_in_dir(file))
        .filter(|stem| !seen.insert(stem.clone()))
        .collect()
}

/// Prints the summary (a table, or one JSON object) and returns how many
/// files failed.
fn summary(dir: &Path, files: &[PathBuf], outcomes: &[Option<Outcome>], json: bool) -> usize {
    let mut counts = [0usize; 3];
    let mut rows = Vec::new();
    for (file, outcome) in files.iter().zip(outcomes) {
        let name = file.strip_prefix(dir).unwrap_or(file).display().to_string();
        let (state, id, detail) = match outcome {
            Some(Outcome::Done { id, output }) => {
                counts[0] += 1;
                ("done", id.as_str(), output.display().to_string())
            }
            Some(Outcome::Skipped { id, output }) => {
                counts[1] += 1;
                ("skipped", id.as_str(), output.display().to_string())
            }
            Some(Outcome::Failed { message }) => {
                counts[2] += 1;
                ("failed", "", message.clone())
            }
            None => unreachable!("every file has an outcome once the workers are done"),
        };
        rows.push((name, state, id.to_owned(), detail));
    }
    let [done, skipped, failed] = counts;
    if json {
        let files: Vec<_> = rows
            .iter()
            .map(|(file, state, id, detail)| {
                let mut row = serde_json::json!({"file": file, "status": state});
                if !id.is_empty() {
                    row["id"] = id.clone().into();
                }
                let field = if *state == "failed" {
                    "error"
                } else {
                    "output"
                };
                row[field] = detail.clone().into();
                row
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"done": done, "skipped": skipped, "failed": failed, "files": files})
        );
        return failed;
    }
    let width = rows
        .iter()
        .map(|row| row.0.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    println!("{:<width$}  {:<7}  result", "file", "status");
    for (file, state, _, detail) in &rows {
        println!("{file:<width$}  {state:<7}  {detail}");
    }
    println!("{done} done, {skipped} skipped, {failed} failed");
    failed
}
