//! Rate limits and quotas per client on `POST /images`, end to end: a
//! client over its rate or with its most unfinished jobs gets `429` with
//! `Retry-After` and the `RateLimit` fields, within one request of the
//! limit, and a refused request stores nothing. (Two replicas sharing one
//! Redis: in `redis.rs`.)

use kiln_e2e::images;
use kiln_e2e::{Env, EnvBuilder, Reply, for_each_target};

/// A burst of `burst`, then one a minute: slow enough that no token comes
/// back while a test runs.
pub(crate) fn limited(burst: u32) -> EnvBuilder {
    Env::builder()
        .variable("rate_limit_per_minute", "1")
        .variable("rate_limit_burst", &burst.to_string())
}

fn submit(env: &Env, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("prefer", "respond-async")];
    all.extend_from_slice(headers);
    env.submit("?ops=resize(w=8)", "image/png", &images::png(16, 16), &all)
}

fn jobs_stored(env: &Env) -> usize {
    env.store().keys_with_prefix("kiln:job:").len()
}

/// Three submissions fit a burst of three, each telling the client what is
/// left; the fourth is `429` with when to retry, and stores nothing. The
/// client cannot pick another address to dodge it: `spin-client-addr` is
/// the host's to set.
#[test]
fn a_client_over_its_rate_gets_429_with_retry_after_and_stores_nothing() {
    for_each_target(
        || limited(3),
        |env| {
            let mut operations = Vec::new();
            for left in (0..3).rev() {
                let accepted = submit(env, &[]);
                operations.push(accepted.location());
                assert_eq!(accepted.status, 202, "{}", env.name());
                assert_eq!(
                    accepted.header("ratelimit-policy"),
                    r#""submissions";q=3;w=180"#
                );
                let standing = accepted.header("ratelimit");
                assert!(
                    standing.starts_with(&format!("\"submissions\";r={left};t=")),
                    "{}: {standing}",
                    env.name()
                );
            }
            env.settle();
            let stored = jobs_stored(env);
            for spoofed in [&[][..], &[("spin-client-addr", "203.0.113.9:4000")][..]] {
                let refused = submit(env, spoofed);
                let problem = refused.problem(429);
                assert_eq!(problem["type"], "urn:kiln:problem:rate-limited");
                let retry_after: u64 = refused.header("retry-after").parse().unwrap();
                assert!((1..=60).contains(&retry_after), "{retry_after}");
                assert!(
                    refused
                        .header("ratelimit")
                        .starts_with("\"submissions\";r=0;t="),
                    "{}",
                    refused.header("ratelimit")
                );
            }
            assert_eq!(jobs_stored(env), stored, "{}", env.name());
            // Reads are not limited: the client follows its jobs.
            for operation in &operations {
                assert_eq!(env.get(operation, &[]).status, 200, "{}", env.name());
            }
        },
    );
}

/// A cap of two unfinished jobs: a third submission while two run is `429`;
/// once they are canceled, the next one is let in.
#[test]
fn a_client_with_its_most_unfinished_jobs_gets_429_until_one_finishes() {
    for_each_target(
        || Env::builder().variable("max_unfinished_jobs", "2"),
        |env| {
            let slow = images::noisy_png(1000, 1000);
            let running: Vec<Reply> = (0..2)
                .map(|_| env.submit_async(kiln_e2e::SLOW_OPS, &slow))
                .collect();
            assert_eq!(
                running[1].header("ratelimit"),
                r#""unfinished-jobs";r=0"#,
                "{}",
                env.name()
            );
            let refused = submit(env, &[]);
            assert_eq!(
                refused.problem(429)["type"],
                "urn:kiln:problem:too-many-unfinished-jobs",
                "{}",
                env.name()
            );
            assert!(refused.header("retry-after").parse::<u64>().unwrap() >= 1);
            for job in &running {
                let canceled = env.send("DELETE", &job.location(), &[], &[]);
                assert_eq!(canceled.status, 200, "{}", env.name());
            }
            let accepted = submit(env, &[]);
            assert_eq!(accepted.status, 202, "{}", env.name());
            assert_eq!(accepted.header("ratelimit"), r#""unfinished-jobs";r=1"#);
        },
    );
}

/// Clients racing replicas that share one store: of `attempts` submissions
/// sent at once, exactly `burst` are let in, whichever replica each
/// reaches.
pub(crate) fn a_burst_across_replicas_is_counted_exactly(
    replicas: &[Env],
    burst: usize,
    attempts: usize,
) {
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let sent: Vec<_> = (0..attempts)
            .map(|n| {
                let env = &replicas[n % replicas.len()];
                scope.spawn(move || submit(env, &[]).status)
            })
            .collect();
        sent.into_iter().map(|s| s.join().unwrap()).collect()
    });
    let accepted = statuses.iter().filter(|&&s| s == 202).count();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    let name = replicas[0].name();
    assert_eq!(
        (accepted, refused),
        (burst, attempts - burst),
        "{name}: {statuses:?}"
    );
    for env in replicas {
        env.settle();
    }
    assert_eq!(jobs_stored(&replicas[0]), burst, "{name}");
}
