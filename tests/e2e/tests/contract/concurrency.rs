//! Many jobs at once: each runs exactly once and ends right.

use kiln_e2e::images::{self, inspect};
use kiln_e2e::{Env, for_each_target};
use std::time::Duration;

/// 64 parallel async submissions of different images all succeed with the
/// right output, and the processor claimed each job exactly once.
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
                    let reply = env.submit_async(
                        "?ops=resize(w=10),format(webp)",
                        &images::png(width, width * 2),
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
