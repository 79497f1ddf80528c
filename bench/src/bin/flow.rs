//! The promise of `Prefer: respond-async`: the time to the `202` does not
//! grow with the cost of the processing. Measured on the test host with the
//! release components, as a ratio in one run; the synchronous `201` times
//! show how much the processing itself costs.
//!
//! Run: `scripts/test` once (to build the components), then
//! `cargo run --release -p kiln-bench --bin flow`

use kiln_bench::{median_of, median_time, photo, png};
use kiln_e2e::Env;
use std::time::Instant;

const RUNS: usize = 9;

fn main() {
    let env = Env::start();
    let small = png(&photo(64, 64));
    let large = png(&photo(2000, 1500));
    let cheap = "?ops=grayscale";
    let costly = "?ops=blur(sigma=20),sharpen(sigma=2),resize(w=1800),format(jpeg)";

    let sync = |query: &str, body: &[u8]| {
        median_time(RUNS, || {
            let reply = env.submit(query, "image/png", body, &[]);
            assert_eq!(reply.status, 201);
        })
    };
    // Each job finishes (untimed) before the next is sent, so background
    // processing never competes with the measured request.
    let to_202 = |query: &str, body: &[u8]| {
        median_of(RUNS, || {
            let start = Instant::now();
            env.submit_async(query, body);
            let elapsed = start.elapsed();
            env.settle();
            elapsed
        })
    };

    let cheap_sync = sync(cheap, &small);
    let costly_sync = sync(costly, &large);
    let cheap_async = to_202(cheap, &large);
    let costly_async = to_202(costly, &large);

    println!("POST /images on the test host, median of {RUNS}");
    println!(
        "  201, cheap job (64x64 grayscale)          {:>9.1} ms",
        ms(cheap_sync)
    );
    println!(
        "  201, costly job (3 MP blur+sharpen+resize) {:>9.1} ms",
        ms(costly_sync)
    );
    println!(
        "  202, cheap ops on the 3 MP upload          {:>9.1} ms",
        ms(cheap_async)
    );
    println!(
        "  202, costly ops on the 3 MP upload         {:>9.1} ms",
        ms(costly_async)
    );
    println!(
        "  time to 202, costly/cheap                  {:>9.2}  (processing costs {:.0}x more)",
        ms(costly_async) / ms(cheap_async),
        ms(costly_sync) / ms(cheap_sync)
    );
}

fn ms(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
