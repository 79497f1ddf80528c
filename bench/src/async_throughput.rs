//! Section 10 of the report: asynchronous throughput.
//!
//! A batch of `JOBS` uploads of the 16 MP photo, each submitted with
//! `Prefer: respond-async` for pipeline P, one after another as soon as
//! the previous `202` arrives, then followed to the end: jobs per second
//! from the first upload to the last job finished, as a client with a
//! folder of photos sees it. Against `vips` doing P on the same photo
//! `JOBS` times in two processes at once, one thread each (the machine's
//! cores, as Kiln's `max_running_jobs = 2`). Rounds take turns and the
//! ratio is taken round by round.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kiln_e2e::Env;

use crate::corpus::Photo;
use crate::table::{Table, times};
use crate::{P, median, median_ratio, vips};

/// Jobs per batch.
const JOBS: usize = 20;
/// Rounds of a Kiln batch then a `vips` batch.
const ROUNDS: usize = 3;
/// `vips` processes at once.
const VIPS_PROCESSES: usize = 2;

/// Prints section 10 for each runtime of `targets` (name, a running Kiln).
pub fn section(photo: &Photo, targets: &[(&str, &Env)], has_vips: bool, scratch: &Path) {
    println!(
        "## 10. Asynchronous throughput: {JOBS} × P on the {} photo, submitted with `respond-async` one after another, then followed to the end, against `vips` running P {JOBS} times in {VIPS_PROCESSES} processes of one thread; {ROUNDS} rounds taking turns, medians\n",
        photo.label
    );
    if !has_vips {
        println!("(vips not installed: section 10 skipped)\n");
        return;
    }
    let mut table = Table::new(&[
        "runtime",
        "Kiln (jobs/s)",
        "vips, 2 processes (jobs/s)",
        "Kiln ÷ vips (median of the rounds' ratios)",
    ]);
    for (name, kiln) in targets {
        let (mut kiln_rates, mut vips_rates) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            kiln_rates.push(kiln_batch(kiln, photo));
            vips_rates.push(vips_batch(photo, scratch));
        }
        table.row(vec![
            (*name).to_owned(),
            format!("{:.2}", median(&kiln_rates)),
            format!("{:.2}", median(&vips_rates)),
            times(median_ratio(&kiln_rates, &vips_rates)),
        ]);
    }
    table.print();
}

/// One batch through Kiln: every job must succeed. Jobs per second.
fn kiln_batch(kiln: &Env, photo: &Photo) -> f64 {
    let started = Instant::now();
    let operations: Vec<String> = (0..JOBS)
        .map(|_| {
            kiln.submit_async_as(&format!("?ops={P}"), "image/jpeg", &photo.bytes)
                .location()
        })
        .collect();
    let images: Vec<String> = operations
        .iter()
        .map(|operation| {
            let finished = kiln.wait_until_finished(operation, Duration::from_secs(600));
            let operation = finished.json();
            assert_eq!(operation["status"], "succeeded", "{operation}");
            operation["resourceLocation"]
                .as_str()
                .expect("a succeeded operation's image")
                .to_owned()
        })
        .collect();
    let rate = JOBS as f64 / started.elapsed().as_secs_f64();
    for image in &images {
        // Leaves the store as it was: the next round starts on equal terms.
        let deleted = kiln.send("DELETE", image, &[], &[]);
        assert_eq!(deleted.status, 204, "DELETE {image}");
    }
    rate
}

/// One batch through `vips`: `VIPS_PROCESSES` workers, each running P to
/// completion on its own files, take jobs until `JOBS` are done. Jobs
/// per second.
fn vips_batch(photo: &Photo, scratch: &Path) -> f64 {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for worker in 0..VIPS_PROCESSES {
            let next = &next;
            scope.spawn(move || {
                let dir = scratch.join(format!("async-vips-{worker}"));
                std::fs::create_dir_all(&dir).expect("a worker's scratch directory");
                let steps = vips::pipeline_p(&photo.path, &dir, &dir.join("p.jpg"));
                while next.fetch_add(1, Ordering::Relaxed) < JOBS {
                    vips::run(1, &steps);
                }
            });
        }
    });
    JOBS as f64 / started.elapsed().as_secs_f64()
}
