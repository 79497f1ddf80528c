//! `kiln`, the command-line client, end to end: the built binary against
//! the real components, on the test host and on `spin up` where Spin is
//! here. Each test is something a user of the CLI relies on.

use kiln_e2e::{Env, SLOW_OPS, for_each_target, images, targets};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Ops slow enough on the test photos for a batch to be caught part-way.
const BATCH_OPS: &str = "blur(sigma=6),format(png)";

/// A fresh folder for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `kiln` with `args`, against `env`, output captured (no terminal: no bars).
fn command(env: &Env, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kiln"));
    command
        .args(args)
        .env("KILN_URL", env.base_url())
        .env_remove("KILN_API_KEY")
        .stdin(Stdio::null());
    command
}

fn kiln(env: &Env, args: &[&str]) -> Output {
    command(env, args).output().expect("kiln runs")
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("UTF-8 output")
}

/// `count` distinct JPEG photos stand-ins, `p00.jpg`…, in `dir`.
fn photos(dir: &Path, count: u32) -> Vec<PathBuf> {
    (0..count)
        .map(|i| {
            let path = dir.join(format!("p{i:02}.jpg"));
            std::fs::write(&path, images::jpeg(160 + i * 3, 120 + i * 2)).unwrap();
            path
        })
        .collect()
}

/// A `kiln` run that is killed if the test ends first.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The job ids in a batch's record of finished files (`KEY ID PATH`).
fn recorded(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out.join(".kiln-batch"))
        .unwrap_or_default()
        .lines()
        .map(|line| line.split(' ').nth(1).expect("an id").to_owned())
        .collect()
}

/// Every job record in the store: id → (status, claims).
fn jobs(env: &Env) -> HashMap<String, (String, u64)> {
    env.store()
        .keys_with_prefix("kiln:job:")
        .into_iter()
        .map(|key| {
            let id = key.trim_start_matches("kiln:job:").to_owned();
            let record = env.job_record(&id);
            let status = record["status"].as_str().unwrap_or("?").to_owned();
            (id, (status, record["attempts"].as_u64().unwrap_or(0)))
        })
        .collect()
}

/// `kiln process FILE` writes the result next to the file with the
/// extension of its format; `--async` (a `202`, then the operation's
/// events: a job of its own, the file named otherwise) gives the very same
/// bytes into an output folder; a result that would overwrite its input
/// is refused and the input kept.
#[test]
fn process_writes_the_result_next_to_the_file_inline_or_async() {
    for_each_target(Env::builder, |env| {
        let dir = scratch("process");
        let photo = &photos(&dir, 1)[0];
        let photo = photo.to_str().unwrap();
        let inline = kiln(
            env,
            &["process", photo, "--ops", "resize(w=64),format(png)"],
        );
        assert!(
            inline.status.success(),
            "{}: {}",
            env.name(),
            text(&inline.stderr)
        );
        let next_to = dir.join("p00.kiln.png");
        let bytes = std::fs::read(&next_to).expect("the result next to its file");
        assert_eq!(images::inspect(&bytes).1, 64);
        assert!(text(&inline.stdout).contains("p00.kiln.png"));

        // Another name is another key: a second job, followed to its end.
        let copy = dir.join("copy.jpg");
        std::fs::copy(photo, &copy).unwrap();
        let out = dir.join("out");
        let ops = "resize( w=64 ),format(png)";
        let queued = kiln(
            env,
            &[
                "process",
                copy.to_str().unwrap(),
                "--async",
                "--ops",
                ops,
                "-o",
                out.to_str().unwrap(),
            ],
        );
        assert!(
            queued.status.success(),
            "{}: {}",
            env.name(),
            text(&queued.stderr)
        );
        assert_eq!(std::fs::read(out.join("copy.png")).unwrap(), bytes);
        env.settle();
        assert_eq!(jobs(env).len(), 2, "{}: one job per file", env.name());

        let original = std::fs::read(photo).unwrap();
        let over_itself = kiln(
            env,
            &[
                "process",
                photo,
                "--ops",
                "resize(w=32)",
                "-o",
                dir.to_str().unwrap(),
            ],
        );
        assert_eq!(over_itself.status.code(), Some(1), "{}", env.name());
        assert!(
            text(&over_itself.stderr).contains("would overwrite the input"),
            "{}: {}",
            env.name(),
            text(&over_itself.stderr)
        );
        assert_eq!(std::fs::read(photo).unwrap(), original);
        // A batch into its own folder: every file refused before it is
        // sent, since the ops fix the result's name.
        let dir = dir.to_str().unwrap();
        let into_itself = kiln(env, &["batch", dir, "--out", dir, "--ops", "resize(w=32)"]);
        assert_eq!(into_itself.status.code(), Some(1), "{}", env.name());
        let summary = text(&into_itself.stdout);
        assert!(
            summary.contains("0 done, 0 skipped, 3 failed")
                && summary.contains("would overwrite the input"),
            "{}: {summary}",
            env.name()
        );
        assert_eq!(std::fs::read(photo).unwrap(), original);
        env.settle();
        assert_eq!(
            jobs(env).len(),
            2,
            "{}: no job for a refused file",
            env.name()
        );
    });
}

/// A job that an earlier run left canceled (or failed) is redone by the
/// next run, under a key of its own; a run after that finds the redone
/// job and makes none. `status --follow` of the canceled job exits 1.
#[test]
fn a_rerun_redoes_a_canceled_job_once() {
    for_each_target(Env::builder, |env| {
        let dir = scratch("redo");
        let file = dir.join("big.png");
        let bytes = images::noisy_png(800, 800);
        std::fs::write(&file, &bytes).unwrap();
        let name = file.to_str().unwrap();
        let ops = "blur(sigma=20),format(png)";
        // The key `kiln process` sends for this file, used by an earlier
        // client whose job was canceled.
        let key = kiln_client::idempotency_key(name, &bytes, Some(ops), None);
        let earlier = env.submit(
            &format!("?ops={ops}"),
            "image/png",
            &bytes,
            &[("prefer", "respond-async"), ("idempotency-key", &key)],
        );
        assert_eq!(earlier.status, 202, "{}", env.name());
        let earlier_id = earlier.operation_id();
        let cancel = env.send("DELETE", &earlier.location(), &[], &[]);
        assert_eq!(cancel.status, 200, "{}: canceled in time", env.name());

        let follow = kiln(env, &["status", &earlier_id, "--follow"]);
        assert_eq!(follow.status.code(), Some(1), "{}", env.name());

        let out = dir.join("out");
        let args = ["process", name, "--ops", ops, "-o", out.to_str().unwrap()];
        let run = kiln(env, &args);
        assert!(
            run.status.success(),
            "{}: {}",
            env.name(),
            text(&run.stderr)
        );
        assert_eq!(
            images::inspect(&std::fs::read(out.join("big.png")).unwrap()).1,
            800
        );
        env.settle();
        let after_redo = jobs(env);
        let mut statuses: Vec<&str> = after_redo.values().map(|(s, _)| s.as_str()).collect();
        statuses.sort();
        assert_eq!(statuses, ["canceled", "succeeded"], "{}", env.name());

        let again = kiln(env, &args);
        assert!(again.status.success(), "{}", text(&again.stderr));
        env.settle();
        assert_eq!(
            jobs(env).len(),
            2,
            "{}: the redone job is found again",
            env.name()
        );
    });
}

/// A file the server refuses shows the server's problem, its detail
/// included, and makes the run fail; the other files are still done.
#[test]
fn a_refused_file_shows_the_problem_s_detail_and_fails_the_run() {
    for_each_target(Env::builder, |env| {
        let dir = scratch("refused");
        let photo = photos(&dir, 1)[0].to_str().unwrap().to_owned();
        let text_file = dir.join("notes.jpg");
        std::fs::write(&text_file, "not an image").unwrap();
        let run = kiln(env, &["process", &photo, text_file.to_str().unwrap()]);
        assert_eq!(run.status.code(), Some(1), "{}", env.name());
        let stderr = text(&run.stderr);
        assert!(
            stderr.contains("notes.jpg: 415 unsupported-media-type: the body is not a JPEG"),
            "{}: {stderr}",
            env.name()
        );
        assert!(dir.join("p00.kiln.jpg").is_file(), "the good file is done");

        let bad_ops = kiln(env, &["process", &photo, "--ops", "resize(w=0)"]);
        assert_eq!(bad_ops.status.code(), Some(1));
        assert!(
            text(&bad_ops.stderr).contains("400 bad-request: invalid ops: `w` must be between 1"),
            "{}: {}",
            env.name(),
            text(&bad_ops.stderr)
        );
    });
}

/// A batch cut off part-way — the server killed and restarted, the client
/// interrupted — and then run again finishes every file, making exactly
/// one job per file (counted in the store), and writes the same bytes as
/// processing the files one by one.
#[test]
fn an_interrupted_batch_rerun_makes_one_job_per_file_and_the_same_bytes() {
    for mut env in targets(Env::builder) {
        let dir = scratch("batch");
        let input = dir.join("in");
        std::fs::create_dir_all(&input).unwrap();
        let files = photos(&input, 50);
        let out = dir.join("out");
        let batch = |env: &Env| {
            command(
                env,
                &[
                    "batch",
                    input.to_str().unwrap(),
                    "--out",
                    out.to_str().unwrap(),
                    "--ops",
                    BATCH_OPS,
                    "-j",
                    "4",
                ],
            )
        };

        let mut first = Running(batch(&env).stdout(Stdio::null()).spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(120);
        while recorded(&out).len() < 10 {
            assert!(
                Instant::now() < deadline,
                "{}: the batch made no progress",
                env.name()
            );
            assert!(
                first.0.try_wait().unwrap().is_none(),
                "the batch ended early"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        env.restart();
        first.0.kill().unwrap();
        first.0.wait().unwrap();
        let done_before = recorded(&out).len();
        assert!(
            done_before < files.len(),
            "{}: the batch finished before it could be interrupted",
            env.name()
        );

        let rerun = batch(&env).output().unwrap();
        let summary = text(&rerun.stdout);
        assert!(
            rerun.status.success(),
            "{}: {summary}\n{}",
            env.name(),
            text(&rerun.stderr)
        );
        let last_line = summary.lines().last().unwrap();
        let done: usize = last_line.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(
            last_line,
            format!("{done} done, {} skipped, 0 failed", files.len() - done),
            "{}",
            env.name()
        );
        assert!(
            files.len() - done >= done_before,
            "{}: {last_line}",
            env.name()
        );

        // One job per file made every result; any other job in the store
        // is a submission killed with the server before its
        // Idempotency-Key was bound, never started (the maintenance scan
        // discards those). A second job for a file would be claimed.
        env.settle();
        let made: HashSet<String> = recorded(&out).into_iter().collect();
        assert_eq!(
            made.len(),
            files.len(),
            "{}: one job per result",
            env.name()
        );
        let jobs = jobs(&env);
        for (id, (status, claims)) in &jobs {
            if made.contains(id) {
                assert_eq!(status, "succeeded", "{}: job {id}", env.name());
            } else {
                assert_eq!(
                    (status.as_str(), *claims),
                    ("notStarted", 0),
                    "{}: job {id} is a second job for a file",
                    env.name()
                );
            }
        }
        println!(
            "{}: {} jobs for {} files ({} never started)",
            env.name(),
            jobs.len(),
            files.len(),
            jobs.len() - made.len()
        );

        let one_by_one = dir.join("one-by-one");
        let mut args = vec![
            "process",
            "--ops",
            BATCH_OPS,
            "-o",
            one_by_one.to_str().unwrap(),
        ];
        args.extend(files.iter().map(|file| file.to_str().unwrap()));
        let single = kiln(&env, &args);
        assert!(single.status.success(), "{}", text(&single.stderr));
        for file in &files {
            let name = file.with_extension("png");
            let name = name.file_name().unwrap();
            assert_eq!(
                std::fs::read(out.join(name)).unwrap(),
                std::fs::read(one_by_one.join(name)).unwrap(),
                "{}: {name:?}",
                env.name()
            );
        }
    }
}

/// Over its rate, a client is told `429` with `Retry-After`: the CLI
/// waits it out and every file is done; with `--retries 0` it reports the
/// problem instead.
#[test]
fn a_429_is_waited_out_and_reported_without_retries() {
    for_each_target(
        || {
            Env::builder()
                .variable("rate_limit_per_minute", "60")
                .variable("rate_limit_burst", "1")
        },
        |env| {
            let dir = scratch("rate");
            let files = photos(&dir, 3);
            let names: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
            let ops = ["--ops", "resize(w=32)"];

            let eager = kiln(
                env,
                &[&["--retries", "0", "process"][..], &names[..2], &ops].concat(),
            );
            assert_eq!(eager.status.code(), Some(1), "{}", env.name());
            assert!(
                text(&eager.stderr).contains("429 rate-limited"),
                "{}: {}",
                env.name(),
                text(&eager.stderr)
            );

            let patient = kiln(env, &[&["process"][..], &names, &ops].concat());
            assert!(
                patient.status.success(),
                "{}: {}",
                env.name(),
                text(&patient.stderr)
            );
            for name in ["p00", "p01", "p02"] {
                assert!(dir.join(format!("{name}.kiln.jpg")).is_file(), "{name}");
            }
        },
    );
}

/// `status`, `status --follow`, `get`, `cancel` and `delete` act on a job
/// by its id.
#[test]
fn status_get_cancel_and_delete_act_on_a_job_by_its_id() {
    for_each_target(Env::builder, |env| {
        let dir = scratch("verbs");
        let accepted = env.submit_async("?ops=resize(w=24),format(png)", &images::png(48, 48));
        let id = accepted.operation_id();

        let follow = kiln(env, &["--json", "status", &id, "--follow"]);
        assert!(follow.status.success(), "{}", text(&follow.stderr));
        let last = text(&follow.stdout).lines().last().unwrap().to_owned();
        let last: serde_json::Value = serde_json::from_str(&last).unwrap();
        assert_eq!(last["status"], "succeeded", "{}", env.name());

        let status = kiln(env, &["--json", "status", &id]);
        let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(status["resourceLocation"], format!("/images/{id}"));

        let path = dir.join("got.png");
        let get = kiln(env, &["get", &id, "-o", path.to_str().unwrap()]);
        assert!(get.status.success(), "{}", text(&get.stderr));
        let image = env.get(&format!("/images/{id}"), &[]);
        assert_eq!(std::fs::read(&path).unwrap(), image.body);

        let delete = kiln(env, &["delete", &id]);
        assert!(delete.status.success(), "{}", text(&delete.stderr));
        let gone = kiln(env, &["status", &id]);
        assert_eq!(gone.status.code(), Some(1));
        assert!(text(&gone.stderr).contains("404"), "{}", text(&gone.stderr));

        let slow = env.submit_async(SLOW_OPS, &images::noisy_png(1000, 1000));
        let slow_id = slow.operation_id();
        let cancel = kiln(env, &["--json", "cancel", &slow_id]);
        assert!(cancel.status.success(), "{}", text(&cancel.stderr));
        let canceled: serde_json::Value = serde_json::from_slice(&cancel.stdout).unwrap();
        assert_eq!(canceled["status"], "canceled", "{}", env.name());
        env.settle();
    });
}

/// With API keys on, `KILN_API_KEY` is sent as a Bearer token; without it
/// the run fails with the server's `401` and its detail, and never shows
/// a key.
#[test]
fn the_api_key_comes_from_kiln_api_key_and_a_missing_one_is_a_401() {
    const KEY: &str = "kiln-cli-test-key-0123456789abcdef";
    for_each_target(
        || Env::builder().api_keys(&[("cli", KEY)]),
        |env| {
            let dir = scratch("keys");
            let photo = photos(&dir, 1)[0].to_str().unwrap().to_owned();
            let refused = kiln(env, &["process", &photo, "--ops", "resize(w=32)"]);
            assert_eq!(refused.status.code(), Some(1), "{}", env.name());
            assert!(
                text(&refused.stderr).contains("401 unauthorized"),
                "{}: {}",
                env.name(),
                text(&refused.stderr)
            );

            let keyed = command(env, &["process", &photo, "--ops", "resize(w=32)"])
                .env("KILN_API_KEY", KEY)
                .output()
                .unwrap();
            assert!(
                keyed.status.success(),
                "{}: {}",
                env.name(),
                text(&keyed.stderr)
            );
            assert!(!text(&keyed.stdout).contains(KEY) && !text(&keyed.stderr).contains(KEY));
            assert!(dir.join("p00.kiln.jpg").is_file());
        },
    );
}
