//! (c) scale: the same asynchronous light+heavy workload through HAProxy
//! on one replica, then on three (each on a fresh Redis), and the ratio of
//! their throughputs. On a two-core machine three replicas share the same
//! CPUs, so the honest expectation is about 1.0: the point is that adding
//! replicas costs nothing (no lock-step on the shared store).

use std::time::{Duration, Instant};

use super::Settings;
use crate::cluster::Cluster;
use crate::load::{self, Submission};
use crate::report::{Outcome, Verdict, heading, p50_p99};
use crate::rng::Rng;

/// What one run measured.
struct Run {
    replicas: usize,
    succeeded: usize,
    jobs: usize,
    elapsed: Duration,
    to_success: Vec<Duration>,
}

impl Run {
    fn throughput(&self) -> f64 {
        self.succeeded as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs the scenario.
pub fn run(settings: &Settings) -> Outcome {
    let jobs = settings.jobs(200, 60);
    heading(&format!(
        "scale: {jobs} async jobs (15% heavy) from 32 clients through haproxy, 1 replica then 3"
    ));
    let mut outcome = Outcome::default();
    let runs: Vec<Run> = [1, 3]
        .into_iter()
        .map(|replicas| measure(settings, replicas, jobs))
        .collect();
    for run in &runs {
        println!(
            "  {} replica(s): {}/{} succeeded in {:.1} s = {:.2} jobs/s; submission to succeeded {}",
            run.replicas,
            run.succeeded,
            run.jobs,
            run.elapsed.as_secs_f64(),
            run.throughput(),
            p50_p99(&run.to_success)
        );
        outcome.check(
            run.succeeded == run.jobs,
            format!(
                "scale: {} of {} jobs did not succeed on {} replica(s)",
                run.jobs - run.succeeded,
                run.jobs,
                run.replicas
            ),
        );
    }
    let ratio = runs[1].throughput() / runs[0].throughput();
    println!("  ratio 3/1: {ratio:.2}");
    outcome.target(
        "scale",
        format!(
            "1 replica {:.2} jobs/s, 3 replicas {:.2} jobs/s, ratio 3/1 {ratio:.2} (target >= 1.0 within noise, taken as >= 0.9)",
            runs[0].throughput(),
            runs[1].throughput()
        ),
        Verdict::from(ratio >= 0.9),
    );
    outcome
}

fn measure(settings: &Settings, replicas: usize, jobs: usize) -> Run {
    let cluster =
        Cluster::start(&settings.topology(&format!("scale{replicas}"), replicas, true, true, &[]));
    let base = cluster.base_url();
    let works = [settings.light(), settings.heavy()];
    let started = Instant::now();
    let results = load::run_clients(32, &base, (0..jobs).collect(), |client, index: usize| {
        let heavy = Rng::new(settings.seed ^ index as u64).chance(15);
        let submitted = Instant::now();
        let ack = load::submit(
            client,
            &Submission {
                work: &works[usize::from(heavy)],
                prefer: Some("respond-async"),
                key: uuid::Uuid::new_v4().to_string(),
                webhook: None,
            },
            Duration::from_secs(120),
        )
        .ok()?;
        let ending = load::follow(client, &ack.id, Duration::from_secs(600));
        (ending.status == "succeeded").then(|| submitted.elapsed())
    });
    let elapsed = started.elapsed();
    let to_success: Vec<Duration> = results.into_iter().flatten().collect();
    Run {
        replicas,
        succeeded: to_success.len(),
        jobs,
        elapsed,
        to_success,
    }
}
