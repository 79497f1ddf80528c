//! Many jobs at once: each runs exactly once and ends right.

use kiln_e2e::images::{self, inspect};
use kiln_e2e::{Env, for_each_target};
use std::time::Duration;

/// 64 parallel async submissions of different images all succeed with the
/// right output, and the processor claimed each job exactly once. A
/// submission answered `503 store-unavailable` (Spin's SQLite store can be
/// busy past its timeout when the machine is loaded) is retried after its
/// `Retry-After`, as a client would: it was not accepted, so it cannot
/// have made a job.
#[test]
fn sixty_four_parallel_submissions_each_run_once() {
    for_each_target(Env::builder, sixty_four_parallel_jobs_each_run_once);
}

fn sixty_four_parallel_jobs_each_run_once(env: &Env) {
    let operations: Vec<(String, u32)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..64u32)
            .map(|i| {
                scope.spawn(move || {
                    let width = 20 + i;
                    let body = images::png(width, width * 2);
                    let query = "?ops=resize(w=10),format(webp)";
                    let headers = [("prefer", "respond-async")];
                    let mut reply = env.submit(query, "image/png", &body, &headers);
                    for _ in 0..5 {
                        if reply.status != 503 {
                            break;
                        }
                        let wait: u64 = reply.header("retry-after").parse().unwrap();
                        std::thread::sleep(Duration::from_secs(wait));
                        reply = env.submit(query, "image/png", &body, &headers);
                    }
                    assert_eq!(
                        reply.status,
                        202,
                        "{}: {}",
                        env.name(),
                        String::from_utf8_lossy(&reply.body)
                    );
                    (reply.location(), width)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (location, _) in &operations {
        let done = env.wait_until_finished(location, Duration::from_secs(180));
        let operation = done.json();
        assert_eq!(operation["status"], "succeeded", "{operation}");
        let image = env.get(operation["resourceLocation"].as_str().unwrap(), &[]);
        assert_eq!(inspect(&image.body), (image::ImageFormat::WebP, 10, 20));
    }
    env.settle();
    let store = env.store();
    let jobs = store.keys_with_prefix("kiln:job:");
    assert_eq!(jobs.len(), 64, "{}", env.name());
    for key in jobs {
        let job: serde_json::Value = serde_json::from_slice(&store.get(&key).unwrap()).unwrap();
        assert_eq!(
            job["attempts"],
            1,
            "{}: {key} was claimed {} times",
            env.name(),
            job["attempts"]
        );
    }
    let ids: std::collections::HashSet<_> = operations.iter().map(|(l, _)| l).collect();
    assert_eq!(ids.len(), 64, "ids collided");
}
