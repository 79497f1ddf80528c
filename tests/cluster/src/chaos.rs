//! The fault injector of the chaos scenario: while the clients run, it
//! SIGKILLs a random replica's process group every 5–10 s and restarts it
//! on the same port; once, it SIGSTOPs one replica's `spin trigger http`
//! for longer than a lease (so another replica takes its jobs over while
//! it still holds them) and then SIGCONTs it; and once it kills
//! `redis-server` and restarts it on the same port and files.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::rng::Rng;

/// The faults to inject.
pub struct Plan {
    /// Pause between two faults, drawn uniformly from this range.
    pub pause: (Duration, Duration),
    /// How long the stopped replica stays stopped: longer than
    /// `lease_seconds`, so its leases run out while it lives.
    pub stop_for: Duration,
    /// Kills to do at least before the plan counts as done.
    pub min_kills: u32,
}

/// What was done, for the report.
#[derive(Default)]
pub struct Log {
    /// Replicas killed (and restarted).
    pub kills: u32,
    /// Replica servers stopped (and continued).
    pub stops: u32,
    /// Redis kills (and restarts).
    pub redis_restarts: u32,
    /// How long Redis did not answer, per restart.
    pub redis_down: Vec<Duration>,
    /// How long each replica restart took until it served again.
    pub restart_times: Vec<Duration>,
    /// `+12.3 s  killed replica 1` lines.
    pub events: Vec<String>,
}

/// A server stopped with SIGSTOP, to be continued at `until`.
struct Stopped {
    replica: usize,
    pid: libc::pid_t,
    until: Instant,
}

/// Injects faults until `stop` is set; sets `done` once the plan has been
/// carried out in full (a stop and its continue, a Redis restart,
/// `min_kills` kills). Leaves every replica and Redis running.
pub fn run(cluster: &Cluster, plan: &Plan, seed: u64, stop: &AtomicBool, done: &AtomicBool) -> Log {
    let mut rng = Rng::new(seed);
    let mut log = Log::default();
    let started = Instant::now();
    let note = |log: &mut Log, text: String| {
        let line = format!("+{:6.1} s  {text}", started.elapsed().as_secs_f64());
        println!("  chaos {line}");
        log.events.push(line);
    };
    let mut stopped: Option<Stopped> = None;
    let replicas = cluster.replicas.len();
    let mut fault = 0u32;
    let mut next_fault = Instant::now() + pause(&mut rng, plan);
    while !stop.load(Ordering::SeqCst) && !crate::cleanup::interrupted() {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(s) = &stopped
            && Instant::now() >= s.until
        {
            signal(s.pid, libc::SIGCONT);
            note(
                &mut log,
                format!("SIGCONT replica {} (pid {})", s.replica, s.pid),
            );
            stopped = None;
        }
        if Instant::now() < next_fault {
            continue;
        }
        // The second fault is the stop, the fourth the Redis restart; the
        // rest are kills, never of the stopped replica.
        match fault {
            1 if log.stops == 0 => {
                let replica = rng.below(replicas as u64) as usize;
                if let Some(pid) = cluster.replica(replica).process.server_pid() {
                    signal(pid, libc::SIGSTOP);
                    log.stops += 1;
                    note(
                        &mut log,
                        format!(
                            "SIGSTOP replica {replica} (pid {pid}) for {:?}",
                            plan.stop_for
                        ),
                    );
                    stopped = Some(Stopped {
                        replica,
                        pid,
                        until: Instant::now() + plan.stop_for,
                    });
                }
            }
            3 if log.redis_restarts == 0 => {
                if let Some(redis) = &cluster.redis {
                    let mut redis = redis.lock().unwrap_or_else(|p| p.into_inner());
                    let down = redis.kill_and_restart();
                    log.redis_restarts += 1;
                    log.redis_down.push(down);
                    note(
                        &mut log,
                        format!(
                            "killed and restarted redis-server (down {} ms)",
                            down.as_millis()
                        ),
                    );
                }
            }
            _ => {
                let candidates: Vec<usize> = (0..replicas)
                    .filter(|&r| stopped.as_ref().is_none_or(|s| s.replica != r))
                    .collect();
                let replica = candidates[rng.below(candidates.len() as u64) as usize];
                let restart = Instant::now();
                let mut locked = cluster.replica(replica);
                locked.sample();
                locked.process.kill();
                locked.process.restart();
                locked.restarts += 1;
                drop(locked);
                log.kills += 1;
                log.restart_times.push(restart.elapsed());
                note(
                    &mut log,
                    format!(
                        "SIGKILLed replica {replica}'s process group, serving again after {} ms",
                        restart.elapsed().as_millis()
                    ),
                );
            }
        }
        fault += 1;
        next_fault = Instant::now() + pause(&mut rng, plan);
        let has_redis = cluster.redis.is_some();
        if log.stops > 0
            && stopped.is_none()
            && (log.redis_restarts > 0 || !has_redis)
            && log.kills >= plan.min_kills
        {
            done.store(true, Ordering::SeqCst);
        }
    }
    if let Some(s) = stopped {
        signal(s.pid, libc::SIGCONT);
        note(
            &mut log,
            format!("SIGCONT replica {} (pid {}) at the end", s.replica, s.pid),
        );
    }
    log
}

fn pause(rng: &mut Rng, plan: &Plan) -> Duration {
    let (low, high) = plan.pause;
    let spread = (high - low).as_millis() as u64;
    low + Duration::from_millis(rng.below(spread.max(1)))
}

fn signal(pid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill(2) takes no pointers.
    unsafe {
        libc::kill(pid, signal);
    }
}
