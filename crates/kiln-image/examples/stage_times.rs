//! Prints how long `process` and each of its stages take on the files given
//! as arguments, for one `ops` list (default: issue 7's pipeline P).
//!
//! ```text
//! cargo run --release -p kiln-image --example stage_times -- photo.jpg [ops] [runs] [out]
//! ```
//!
//! With `out`, the output of the first run is written there.
//!
//! Each figure is the fastest and the median of `runs` (default 9) runs
//! after one warm-up: on a shared machine the fastest is the steadier one.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use kiln_image::{Limits, Stage, parse_ops, process};

const PIPELINE_P: &str = "resize(w=1600),sharpen(sigma=1),quality(82),format(jpeg)";

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: stage_times FILE [OPS] [RUNS]");
    let spec = args.next().unwrap_or_else(|| PIPELINE_P.to_owned());
    let runs: usize = args.next().map_or(9, |n| n.parse().expect("RUNS"));
    let out = args.next();
    let bytes = std::fs::read(&path).expect("reading the file");
    let ops = parse_ops(&spec).expect("valid ops");

    let mut totals = Vec::new();
    let mut stages: Vec<(Stage, Vec<Duration>)> = Vec::new();
    for run in 0..=runs {
        let mut started = Instant::now();
        let mut times = Vec::new();
        let start = Instant::now();
        let output = process(&bytes, &ops, &Limits::default(), &mut |progress| {
            if progress.done == 0.0 {
                started = Instant::now();
            } else if progress.is_stage_end() {
                times.push((progress.stage, started.elapsed()));
            }
            ControlFlow::Continue(())
        })
        .expect("processing");
        let total = start.elapsed();
        if run == 0 {
            if let Some(out) = &out {
                std::fs::write(out, &output.bytes).expect("writing the output");
            }
            println!(
                "{path}: {spec} -> {}x{} {}, {} bytes",
                output.width,
                output.height,
                output.format,
                output.bytes.len()
            );
            stages = times
                .iter()
                .map(|&(stage, _)| (stage, Vec::new()))
                .collect();
            continue;
        }
        totals.push(total);
        for ((_, all), (_, time)) in stages.iter_mut().zip(times) {
            all.push(time);
        }
    }
    println!("  {:<28} fastest  median", "");
    print_times("process", &mut totals);
    for (stage, mut all) in stages {
        print_times(&format!("{stage:?}"), &mut all);
    }
}

fn print_times(what: &str, times: &mut [Duration]) {
    times.sort();
    let ms = |time: Duration| time.as_secs_f64() * 1000.0;
    println!(
        "  {what:<28} {:>7.1} {:>7.1} ms",
        ms(times[0]),
        ms(times[times.len() / 2])
    );
}
