//! Section 11 of the report: `kiln batch` against a hand-tuned concurrent
//! curl loop.
//!
//! The three photos × `COPIES` copies, each processed once by pipeline P
//! through one local `spin up`: by `xargs -P N curl` (plain synchronous
//! `POST /images`, the image written from the `201`: the fewest requests
//! the protocol allows) at each concurrency of `CONCURRENCY`, and by
//! `kiln batch -j N` at the same ones. Every run gets a fresh server (a
//! second run on one store would find the CLI's idempotency keys bound and
//! process nothing). Rounds take turns; files per second from the first
//! upload to the last result written, medians per configuration; the
//! target compares the best of each.
//!
//! Then the same batch interrupted: the server killed (SIGKILL to its
//! process group) and restarted on its store once a third of the files
//! are done, the CLI killed with it, then run again to the end; the jobs
//! in the server's store are counted against the files.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use kiln_e2e::Env;

use crate::corpus::Photo;
use crate::table::{Table, ratio};
use crate::{P, median};

/// Copies of each photo in the batch.
const COPIES: usize = 20;
/// Rounds of every configuration, taking turns.
const ROUNDS: usize = 2;
/// Requests (curl) or jobs (`kiln batch -j`) at once.
const CONCURRENCY: [usize; 3] = [2, 3, 4];
/// How close the CLI must come to the best curl loop.
const TARGET: f64 = 0.90;

/// Prints section 11 (`spin`: the Spin binary, if any).
pub fn section(photos: &[Photo], spin: Option<&Path>, scratch: &Path) {
    let files = photos.len() * COPIES;
    println!(
        "## 11. The CLI: `kiln batch` of {files} photos ({COPIES} copies each of {}) by P against `xargs -P N curl` on one local `spin up`; a fresh server per run, {ROUNDS} rounds taking turns, medians\n",
        photos
            .iter()
            .map(|photo| photo.label)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let Some(spin) = spin else {
        println!("(no `spin` binary: section 11 skipped)\n");
        return;
    };
    let cli = cli_binary();
    if !cli.is_file() {
        println!(
            "({} is missing: `cargo build --release -p kiln-cli`, as bench/run does)\n",
            cli.display()
        );
        return;
    }
    let input = scratch.join("cli-batch-in");
    std::fs::create_dir_all(&input).expect("the batch's folder");
    for photo in photos {
        for copy in 0..COPIES {
            let name = format!(
                "{}-{copy:02}.jpg",
                photo.label.replace(' ', "").to_lowercase()
            );
            std::fs::copy(&photo.path, input.join(name)).expect("a copy of a photo");
        }
    }

    let mut curl_rates = vec![Vec::new(); CONCURRENCY.len()];
    let mut cli_rates = vec![Vec::new(); CONCURRENCY.len()];
    for _ in 0..ROUNDS {
        for (i, &concurrency) in CONCURRENCY.iter().enumerate() {
            let out = scratch.join("cli-batch-out");
            curl_rates[i].push(timed_run(spin, files, &out, |base| {
                curl_loop(base, &input, &out, concurrency)
            }));
            cli_rates[i].push(timed_run(spin, files, &out, |base| {
                kiln_batch(&cli, base, &input, &out, concurrency)
            }));
        }
    }

    let mut table = Table::new(&[
        "at once",
        "curl loop (files/s)",
        "kiln batch (files/s)",
        "kiln ÷ curl",
    ]);
    for (i, concurrency) in CONCURRENCY.iter().enumerate() {
        let (curl, cli) = (median(&curl_rates[i]), median(&cli_rates[i]));
        table.row(vec![
            concurrency.to_string(),
            format!("{curl:.2}"),
            format!("{cli:.2}"),
            ratio(cli, curl),
        ]);
    }
    table.print();
    let best = |rates: &[Vec<f64>]| {
        rates
            .iter()
            .map(|runs| median(runs))
            .fold(0.0_f64, f64::max)
    };
    let (curl_best, cli_best) = (best(&curl_rates), best(&cli_rates));
    println!(
        "TARGET cli-batch: best kiln batch {cli_best:.2} files/s vs best curl loop {curl_best:.2} files/s ({:.1} %) — {}\n",
        cli_best / curl_best * 100.0,
        if cli_best >= curl_best * TARGET {
            "met (within 10 %)"
        } else {
            "NOT met (within 10 %)"
        }
    );
    interrupted(spin, &cli, &input, files, scratch);
}

/// The batch interrupted part-way and run again: prints the jobs the
/// server made against the files, and the duplicates target.
fn interrupted(spin: &Path, cli: &Path, input: &Path, files: usize, scratch: &Path) {
    let out = scratch.join("cli-batch-interrupted");
    let _ = std::fs::remove_dir_all(&out);
    let mut server = Env::builder().start_spin(spin);
    let mut first = Command::new(cli)
        .args(["--server", server.base_url(), "batch"])
        .arg(input)
        .arg("--out")
        .arg(&out)
        .args(["--ops", P, "-j", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kiln runs");
    while recorded(&out).len() < files / 3 {
        assert!(
            first.try_wait().expect("kiln's status").is_none(),
            "the batch ended early"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    server.restart();
    first.kill().expect("killing kiln");
    first.wait().expect("kiln ends");
    let done_before = recorded(&out).len();
    let rerun = kiln_batch(cli, server.base_url(), input, &out, 3);
    server.settle();
    let made: std::collections::HashSet<String> = recorded(&out).into_iter().collect();
    let jobs = server.store().keys_with_prefix("kiln:job:");
    // A job that is not one of the results' and was claimed is a second
    // job for a file; one never claimed is a submission cut off before its
    // key was bound, which the server discards.
    let duplicates = jobs
        .iter()
        .map(|key| key.trim_start_matches("kiln:job:"))
        .filter(|id| !made.contains(*id) && server.claims(id) > 0)
        .count();
    println!(
        "Interrupted after {done_before} of {files} files (server killed and restarted, CLI killed), then rerun ({}): {} results from {} jobs, {} jobs in the store, {duplicates} processed twice.\n",
        if rerun { "exit 0" } else { "FAILED" },
        recorded(&out).len(),
        made.len(),
        jobs.len()
    );
    println!(
        "TARGET cli-duplicates: {duplicates} duplicate jobs after an interrupted and rerun batch — {}\n",
        if duplicates == 0 && rerun && made.len() == files {
            "met"
        } else {
            "NOT met"
        }
    );
}

/// The job ids of a batch's record of finished files (`KEY ID PATH`).
fn recorded(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out.join(".kiln-batch"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(' ').nth(1).map(str::to_owned))
        .collect()
}

/// The CLI `bench/run` built: `target/release/kiln` beside the components.
fn cli_binary() -> PathBuf {
    let wasm = kiln_e2e::env::wasm_dir();
    let target = wasm.ancestors().nth(2).unwrap_or(&wasm);
    target.join("release").join("kiln")
}

/// Runs `batch` against a fresh `spin up`: files per second, after
/// checking that all `files` results were written into `out`.
fn timed_run(spin: &Path, files: usize, out: &Path, batch: impl FnOnce(&str) -> bool) -> f64 {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).expect("the output folder");
    let server = Env::builder().start_spin(spin);
    let started = Instant::now();
    let succeeded = batch(server.base_url());
    let seconds = started.elapsed().as_secs_f64();
    drop(server);
    let written = std::fs::read_dir(out)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
                .count()
        })
        .unwrap_or(0);
    assert!(
        succeeded && written == files,
        "a batch run failed: {written} of {files} written"
    );
    files as f64 / seconds
}

/// `ls | xargs -P N curl`: each file one synchronous `POST /images`, the
/// `201`'s image written out; fails on any other status.
fn curl_loop(base: &str, input: &Path, out: &Path, concurrency: usize) -> bool {
    let script = r#"cd "$1" && ls | xargs -P "$2" -I{} curl -sSf -g -o "$3/{}.out" \
        -H 'Content-Type: image/jpeg' --data-binary @{} "$4/images?ops=$5""#;
    Command::new("bash")
        .args(["-c", script, "curl-loop"])
        .arg(input)
        .arg(concurrency.to_string())
        .arg(out)
        .arg(base)
        .arg(P)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `kiln batch -j N`.
fn kiln_batch(cli: &Path, base: &str, input: &Path, out: &Path, concurrency: usize) -> bool {
    Command::new(cli)
        .args(["--server", base, "batch"])
        .arg(input)
        .arg("--out")
        .arg(out)
        .args(["--ops", P, "-j", &concurrency.to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}
