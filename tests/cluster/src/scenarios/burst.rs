//! (a) burst: one `spin up` on its default SQLite store takes B
//! `respond-async` submissions of a tiny JPEG whose job needs hundreds of
//! MB (a 27 MP output), from 16 clients at once. With jobs bounded
//! (`max_running_jobs` at a time) the server's memory must stay under
//! `max_running_jobs × one job's peak + idle`, nothing may be killed, and
//! every accepted job must succeed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Settings, huge_output, tiny};
use crate::cluster::Cluster;
use crate::load::{self, Client, Submission};
use crate::memory;
use crate::report::{Outcome, Verdict, heading, mib, p50_p99};

/// Beyond this estimated drain time, a full run reports progress instead
/// of waiting, once it has watched the drain (and the memory) for
/// [`DRAIN_WATCHED`].
const DRAIN_LIMIT: Duration = Duration::from_secs(25 * 60);

/// How many of the oldest pending jobs one round of the drain reads.
const DRAIN_WINDOW: usize = 64;

/// How long a full run watches a drain that would take too long.
const DRAIN_WATCHED: Duration = Duration::from_secs(10 * 60);

/// The peak memory over `idle` while `count` tiny jobs are submitted from
/// 16 clients and run, and the peaks of its Wasm and host parts.
fn serving_overhead(
    cluster: &Cluster,
    base: &str,
    count: usize,
    idle: u64,
) -> (u64, memory::SplitPeaks) {
    let replica = cluster.replica(0);
    replica.process.reset_peak_memory();
    let pid = replica.process.server_pid().expect("the server runs");
    let work = tiny();
    let ((), split) = memory::split_during(pid, || {
        let acks = load::send_async(base, &work, count);
        let ids: Vec<String> = acks
            .iter()
            .filter_map(|ack| ack.as_ref().ok().map(|ack| ack.id.clone()))
            .collect();
        assert_eq!(ids.len(), count, "every tiny job is accepted");
        drain(base, ids, true);
    });
    let peak = replica.process.server_memory().map_or(0, |m| m.peak);
    (peak.saturating_sub(idle), split)
}

/// Runs the scenario.
pub fn run(settings: &Settings) -> Outcome {
    let jobs = settings.jobs(1500, 24);
    let max_running: u64 = settings
        .variable("max_running_jobs", &[])
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    // scripts/cluster sets it to 0; Spin's own default keeps 2 MiB a slot.
    let keep_resident = std::env::var("SPIN_WASMTIME_LINEAR_MEMORY_KEEP_RESIDENT")
        .unwrap_or_else(|_| "Spin's default".to_owned());
    heading(&format!(
        "burst: one spin up (SQLite), 16 clients, {jobs} async 27 MP jobs, max_running_jobs {max_running}, linear memory kept resident {keep_resident}"
    ));
    let mut outcome = Outcome::default();
    let cluster = Cluster::start(&settings.topology("burst", 1, false, false, &[]));
    let base = cluster.base_url();
    let client = Client::new(&base);
    let work = huge_output();

    // Idle memory, then one job alone (synchronously).
    let warm = client.send("GET", "/openapi.json", &[], &[]);
    assert!(
        warm.is_ok_and(|(answer, _)| answer.status == 200),
        "spin up serves"
    );
    std::thread::sleep(Duration::from_millis(500));
    let (server_pid, idle) = {
        let replica = cluster.replica(0);
        let memory = replica.process.server_memory().expect("the server runs");
        replica.process.reset_peak_memory();
        (
            replica.process.server_pid().expect("the server runs"),
            memory.resident,
        )
    };
    // The fixed base: idle, plus what serving this many submissions from
    // 16 clients costs (submit and processor instances, connections)
    // whatever the work, measured with jobs that need no memory.
    let (serving, serving_split) = serving_overhead(&cluster, &base, jobs, idle);
    // One job's own peak: over what the server holds just before it.
    let before_single = {
        let replica = cluster.replica(0);
        replica.process.reset_peak_memory();
        replica
            .process
            .server_memory()
            .expect("the server runs")
            .resident
    };
    let wasm_before_single = memory::split(server_pid).map_or(0, |split| split.wasm);
    let alone = Instant::now();
    let (single, single_split) = memory::split_during(server_pid, || {
        load::submit(
            &client,
            &Submission {
                work: &work,
                prefer: None,
                key: uuid::Uuid::new_v4().to_string(),
                webhook: None,
            },
            Duration::from_secs(120),
        )
    });
    let single = single.unwrap_or_else(|why| panic!("the job alone failed: {why}"));
    let alone = alone.elapsed();
    // One job's Wasm memory: its instance's linear memory, over what the
    // pool kept resident from earlier instances.
    let per_job_wasm = single_split.wasm.saturating_sub(wasm_before_single);
    let wasm_bound = max_running * per_job_wasm + serving_split.wasm;
    let peak_alone = cluster
        .replica(0)
        .process
        .server_memory()
        .expect("the server runs")
        .peak;
    let per_job = peak_alone.saturating_sub(before_single);
    let base_memory = idle + serving;
    let bound = max_running * per_job + base_memory;
    println!(
        "  idle RSS {}; serving {} tiny jobs: +{}; one job alone ({}, {} ms): peak {} (+{} over the {} before it)",
        mib(idle),
        jobs,
        mib(serving),
        single.status,
        alone.as_millis(),
        mib(peak_alone),
        mib(per_job),
        mib(before_single),
    );
    println!(
        "  bound: {max_running} x {} + base {} (idle + serving) = {}",
        mib(per_job),
        mib(base_memory),
        mib(bound)
    );
    let oom_before = oom_kills_in_dmesg();
    cluster.replica(0).process.reset_peak_memory();

    // The burst, sampled every 100 ms; the guard kills the server before
    // it takes more than 60% of the machine.
    let stop = AtomicBool::new(false);
    let limit = memory::machine_total() * 6 / 10;
    let burst_started = Instant::now();
    let host_before = memory::split(server_pid).map_or(0, |split| split.host);
    let (acks, (peaks, guard_fired), burst_split, drain) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            memory::sample_with_limit(&cluster, Duration::from_millis(100), limit, &stop)
        });
        let split_sampler = scope
            .spawn(|| memory::sample_split_until(server_pid, Duration::from_millis(250), &stop));
        let acks = load::send_async(&base, &work, jobs);
        println!(
            "  burst sent in {:.1} s",
            burst_started.elapsed().as_secs_f64()
        );
        let ids: Vec<String> = acks
            .iter()
            .filter_map(|ack| ack.as_ref().ok().map(|ack| ack.id.clone()))
            .collect();
        let drain = drain(&base, ids.clone(), settings.short);
        if drain.failed > 0 {
            print_failures(&client, &ids);
        }
        stop.store(true, Ordering::SeqCst);
        (
            acks,
            sampler.join().expect("the sampler"),
            split_sampler.join().expect("the split sampler"),
            drain,
        )
    });
    let hwm = cluster
        .replica(0)
        .process
        .server_memory()
        .map_or(0, |memory| memory.peak);
    let peak = hwm.max(peaks.resident);
    let survived = cluster.replica(0).process.server_pid() == Some(server_pid);
    let oom_kills = oom_kills_in_dmesg().map(|after| after - oom_before.unwrap_or(0));

    let accepted = acks.iter().filter(|ack| ack.is_ok()).count();
    let ack_times: Vec<Duration> = acks
        .iter()
        .filter_map(|ack| ack.as_ref().ok().map(|ack| ack.elapsed))
        .collect();
    let refused_503: u32 = acks
        .iter()
        .filter_map(|ack| ack.as_ref().ok().map(|ack| ack.refusals_503))
        .sum();
    for why in acks.iter().filter_map(|ack| ack.as_ref().err()).take(5) {
        println!("  not accepted: {why}");
    }
    println!(
        "  accepted   {accepted} of {jobs} (ack {}; {refused_503} 503s with Retry-After met on the way)",
        p50_p99(&ack_times)
    );
    println!(
        "  succeeded  {} ({} failed, {} other, {} unfinished when {})",
        drain.succeeded,
        drain.failed,
        drain.other,
        drain.unfinished,
        if drain.complete {
            "all had ended"
        } else {
            "the drain was cut short"
        }
    );
    println!(
        "  drain: {:.1} s{}",
        drain.elapsed.as_secs_f64(),
        drain
            .estimate
            .map(|eta| format!(", estimated total {:.0} min", eta.as_secs_f64() / 60.0))
            .unwrap_or_default()
    );
    println!(
        "  peak RSS   {} (VmHWM since the burst began; highest VmRSS sample {}, {} samples) vs bound {}",
        mib(peak),
        mib(peaks.resident),
        peaks.samples,
        mib(bound)
    );
    println!(
        "  its parts, each at its own peak: Wasm instances {} (bound {}: {max_running} x one job's {} + serving's {}); Spin's host {} (it held {} before the burst)",
        mib(burst_split.wasm),
        mib(wasm_bound),
        mib(per_job_wasm),
        mib(serving_split.wasm),
        mib(burst_split.host),
        mib(host_before),
    );
    println!(
        "  server {} ; OOM kills in dmesg since the burst: {}{}",
        if survived { "still running" } else { "DIED" },
        oom_kills.map_or("dmesg unreadable".to_owned(), |n| n.to_string()),
        if guard_fired {
            " ; the memory guard killed it"
        } else {
            ""
        }
    );

    let lost = if drain.complete {
        accepted - drain.succeeded
    } else {
        drain.failed + drain.other
    };
    outcome.check(
        lost == 0,
        format!("burst: {lost} accepted jobs did not succeed"),
    );
    outcome.check(survived && !guard_fired, "burst: the server died");
    if settings.short {
        outcome.check(drain.complete, "burst: the --short drain did not finish");
    }
    outcome.target(
        "burst-memory",
        format!(
            "peak RSS {} vs bound {} ({} x {} per job + base {}: idle {} + serving {}), OOM kills {}, server {}",
            mib(peak),
            mib(bound),
            max_running,
            mib(per_job),
            mib(base_memory),
            mib(idle),
            mib(serving),
            oom_kills.map_or("?".to_owned(), |n| n.to_string()),
            if survived { "alive" } else { "died" }
        ),
        Verdict::from(peak <= bound && survived && oom_kills.unwrap_or(0) == 0),
    );
    outcome.target(
        "burst-wasm-memory",
        format!(
            "Wasm instances' peak {} vs bound {} ({} x {} per job + serving {}); Spin's host peak {}, {} before the burst",
            mib(burst_split.wasm),
            mib(wasm_bound),
            max_running,
            mib(per_job_wasm),
            mib(serving_split.wasm),
            mib(burst_split.host),
            mib(host_before),
        ),
        if per_job_wasm == 0 {
            // No Wasmtime pool found in the server's mappings.
            Verdict::NotMeasured
        } else {
            Verdict::from(burst_split.wasm <= wasm_bound)
        },
    );
    outcome.target(
        "burst-complete",
        format!(
            "{accepted} accepted, {} succeeded, lost {lost}{}",
            drain.succeeded,
            if drain.complete {
                String::new()
            } else {
                format!(", {} still unfinished (drain cut short)", drain.unfinished)
            }
        ),
        if drain.complete {
            Verdict::from(accepted == jobs && lost == 0)
        } else {
            Verdict::NotMeasured
        },
    );
    outcome
}

/// How the accepted jobs ended.
struct Drain {
    succeeded: usize,
    failed: usize,
    /// Canceled or gone.
    other: usize,
    unfinished: usize,
    /// Whether every job had ended.
    complete: bool,
    elapsed: Duration,
    /// The estimated time for all to end, when it was cut short.
    estimate: Option<Duration>,
}

/// Reads every unfinished job's status every few seconds until all have
/// ended; a full run stops once the rate seen over [`DRAIN_WATCHED`] says
/// it would take longer than [`DRAIN_LIMIT`].
fn drain(base: &str, ids: Vec<String>, must_finish: bool) -> Drain {
    let started = Instant::now();
    let total = ids.len();
    let mut pending = ids;
    let mut ended: Vec<String> = Vec::new();
    let mut last_report = Instant::now();
    loop {
        // Jobs start in submission order, so only the oldest pending ones
        // can have ended: reading those (not all, every round) keeps the
        // reads from taking the CPU the jobs need, as a client honouring
        // `Retry-After` would.
        let (window, rest) = pending.split_at(pending.len().min(DRAIN_WINDOW));
        let rest = rest.to_vec();
        let statuses = load::run_clients(8, base, window.to_vec(), |client, id| {
            let status = load::status_now(client, &id);
            (id, status)
        });
        pending.clear();
        for (id, status) in statuses {
            match status.as_deref() {
                Some("succeeded" | "failed" | "canceled" | "gone") => ended.push(status.unwrap()),
                _ => pending.push(id),
            }
        }
        pending.extend(rest);
        let elapsed = started.elapsed();
        if pending.is_empty() || crate::cleanup::interrupted() {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(30) {
            println!(
                "  drain: {} of {total} ended after {:.0} s",
                ended.len(),
                elapsed.as_secs_f64()
            );
            last_report = Instant::now();
        }
        if !must_finish && elapsed > DRAIN_WATCHED {
            let rate = ended.len() as f64 / elapsed.as_secs_f64();
            let estimate = Duration::from_secs_f64(total as f64 / rate.max(1e-3));
            if estimate > DRAIN_LIMIT {
                return tally(&ended, pending.len(), false, elapsed, Some(estimate));
            }
        }
        std::thread::sleep(Duration::from_secs(3));
    }
    tally(
        &ended,
        pending.len(),
        pending.is_empty(),
        started.elapsed(),
        None,
    )
}

fn tally(
    ended: &[String],
    unfinished: usize,
    complete: bool,
    elapsed: Duration,
    estimate: Option<Duration>,
) -> Drain {
    let count = |status: &str| ended.iter().filter(|s| *s == status).count();
    Drain {
        succeeded: count("succeeded"),
        failed: count("failed"),
        other: count("canceled") + count("gone"),
        unfinished,
        complete,
        elapsed,
        estimate,
    }
}

/// Prints why the first failed jobs failed (their `error` problem).
fn print_failures(client: &Client, ids: &[String]) {
    let mut shown = 0;
    for id in ids {
        let Ok((answer, _)) = client.send("GET", &format!("/operations/{id}"), &[], &[]) else {
            continue;
        };
        let operation: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        if operation["status"] == "failed" {
            println!("  failed {id}: {}", operation["error"]);
            shown += 1;
            if shown == 3 {
                return;
            }
        }
    }
}

/// How many OOM kills the kernel log holds, if it can be read.
fn oom_kills_in_dmesg() -> Option<usize> {
    let output = std::process::Command::new("dmesg").output().ok()?;
    if !output.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|line| line.contains("Out of memory") || line.contains("oom-kill"))
            .count(),
    )
}
