//! Requests per second from a fixed number of clients, each with its own
//! keep-alive connection, over loopback.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kiln_e2e::client::Client;

/// `GET base + path` from `concurrency` clients for `duration`; every
/// answer must be `200`. Returns completed requests per second.
pub fn get_rate(base: &str, path: &str, concurrency: usize, duration: Duration) -> f64 {
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..concurrency {
            scope.spawn(|| {
                let client = Client::new(base.to_owned());
                while !stop.load(Ordering::Relaxed) {
                    let reply = client.send("GET", path, &[], &[]);
                    assert_eq!(reply.status, 200, "GET {path}");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
    });
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}
