//! Kiln against its peers, in one run, as tables of figures and ratios:
//!
//! 1. synchronous `POST /images` of pipeline P on 4, 16 and 25 MP photos,
//!    against the `vips` CLI (1 and 2 threads) and `kiln-image` natively;
//! 2. the same pipeline in Wasm, stage by stage, against native;
//! 3. full-size JPEG and PNG re-encodes against `vips`, time and bytes;
//! 4. the `respond-async` acknowledgement of a 16 MP upload against a
//!    component doing one key-value `set`;
//! 5. status reads per second against a component doing one `get`;
//! 6. the peak memory of an instance on a 25 MP photo against its RGBA frame;
//! 7. the output formats: JPEG, WebP and AVIF at their default quality
//!    against `cwebp` and `avifenc`, and bytes at equal SSIMULACRA 2
//!    (`kiln_bench::formats`);
//! 8. what colour management adds to P in Wasm (an Adobe RGB photo against
//!    the same untagged), and an animated GIF resized in Wasm against
//!    `vips`, time and bytes (`kiln_bench::colour_and_animation`);
//! 9. AVIF uploads: P on an AVIF photo in Wasm against P on the JPEG and
//!    against `vips`, and the decode against `avifdec`
//!    (`kiln_bench::avif_input`);
//! 10. asynchronous throughput: a batch of `respond-async` uploads of the
//!     16 MP photo followed to the end, in jobs per second, against `vips`
//!     in two processes (`kiln_bench::async_throughput`);
//! 11. the CLI: `kiln batch` of the three photos × 20 against the best
//!     `xargs -P N curl` loop, on `spin up` only (`kiln_bench::cli_batch`).
//!
//! Native Kiln runs on one core, like a Wasm instance; section 2 shows it
//! on all cores too (see `kiln_bench::one_core`).
//!
//! Everything runs on the test host (wasmtime 48; Spin 4.0.2 runs 44); sections
//! 1, 2, 4, 5, 6, 8, 9 and 10 run on `spin up` too when a `spin` binary is found
//! (`SPIN_BIN` or `PATH`; `bench/run` puts ../shared/spin/bin there, the
//! real Spin 4.0.2). Ratios, not absolute times, are what carries from one
//! machine to another; and figures of the key-value paths carry from the
//! test host to real Spin only as far as their stores agree, which is not
//! far (Spin's SQLite store commits each write on its own).
//!
//! Run: `bench/run [CORPUS_DIR]` (builds the components first), where
//! CORPUS_DIR is what `../shared/corpus/make.sh CORPUS_DIR` built; without
//! it, generated images of the same sizes stand in. `BENCH_SECTIONS=4,5`
//! runs only those sections.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kiln_bench::corpus::{Photo, photos};
use kiln_bench::host_calls;
use kiln_bench::load::get_rate;
use kiln_bench::one_core::on_one_core;
use kiln_bench::references::References;
use kiln_bench::table::{Table, mb, ms, ratio, times};
use kiln_bench::{P, median, median_of, median_ratio, static_memory, vips};
use kiln_bench_timing::{Timed, timed_process};
use kiln_e2e::Env;
use kiln_e2e::client::Client;

const RUNS: usize = 5;
const ACK_RUNS: usize = 9;
/// How long the acknowledgement's idle runs wait after the previous job.
const ACK_IDLE: Duration = Duration::from_secs(1);
const CONCURRENCY: usize = 16;
const LOAD_TIME: Duration = Duration::from_secs(2);
/// Rounds of status reads, alternating Kiln and the floor.
const LOAD_ROUNDS: usize = 5;

/// Kiln and the reference components, on one runtime.
struct Target {
    name: &'static str,
    kiln: Env,
    /// Kiln counting clients: a rate limit and a cap on unfinished jobs, as
    /// the cloud profile has (never reached here), for what counting costs.
    limited: Env,
    references: References,
}

/// Limits that count every submission but refuse none of the benchmark's.
fn limited() -> kiln_e2e::EnvBuilder {
    Env::builder()
        .variable("rate_limit_per_minute", "6000")
        .variable("rate_limit_burst", "100")
        .variable("max_unfinished_jobs", "4")
}

fn main() {
    let corpus = std::env::args().nth(1).map(PathBuf::from);
    let scratch = std::env::temp_dir().join(format!("kiln-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("a scratch directory");
    let (photos, source) = photos(corpus.as_deref(), &scratch);
    let vips_version = vips::version();

    println!("# Kiln benchmark\n");
    println!("- machine: {}", machine());
    println!("- inputs: {source}");
    println!(
        "- peer: {}",
        vips_version.as_deref().unwrap_or(
            "vips not installed (apt-get install libvips-tools): its columns are skipped"
        )
    );
    println!("- P = `{P}`; medians of {RUNS} runs unless said\n");

    let mut targets = vec![Target {
        name: "test host",
        kiln: Env::start(),
        limited: limited().start(),
        references: References::on_host(),
    }];
    let spin = kiln_e2e::spin::binary();
    match &spin {
        Some(spin) => targets.push(Target {
            name: "spin up",
            kiln: Env::builder().start_spin(spin),
            limited: limited().start_spin(spin),
            references: References::on_spin(spin),
        }),
        None => {
            println!("(no `spin` binary on PATH or SPIN_BIN: the `spin up` rows are skipped)\n")
        }
    }
    let has_vips = vips_version.is_some();

    let wanted = sections();
    if wanted(1) {
        synchronous_p(&photos, &targets, has_vips, &scratch);
    }
    if wanted(2) {
        wasm_stages(&photos[1..], &targets);
    }
    if wanted(3) {
        full_size(&photos[1], &targets[0], has_vips, &scratch);
    }
    if wanted(4) {
        acknowledgement(&photos[1], &targets);
    }
    if wanted(5) {
        status_reads(&photos[0], &targets);
    }
    if wanted(6) {
        peak_memory(&photos[2]);
        if let Some(spin) = &spin {
            spin_peak_memory(&photos[2], spin);
        }
    }
    if wanted(7) {
        kiln_bench::formats::section(&photos, &targets[0].references, &scratch);
    }
    let references: Vec<(&str, &References)> = targets
        .iter()
        .map(|target| (target.name, &target.references))
        .collect();
    if wanted(8) {
        kiln_bench::colour_and_animation::section(&photos, &references, has_vips, &scratch);
    }
    if wanted(9) {
        kiln_bench::avif_input::section(&photos, &references, has_vips, &scratch);
    }
    drop(references);
    if wanted(10) {
        let kilns: Vec<(&str, &Env)> = targets
            .iter()
            .map(|target| (target.name, &target.kiln))
            .collect();
        kiln_bench::async_throughput::section(&photos[1], &kilns, has_vips, &scratch);
    }
    drop(targets);
    if wanted(11) {
        kiln_bench::cli_batch::section(&photos, spin.as_deref(), &scratch);
    }
    std::fs::remove_dir_all(&scratch).ok();
}

fn synchronous_p(photos: &[Photo], targets: &[Target], has_vips: bool, scratch: &Path) {
    println!("## 1. Synchronous P: `POST /images` answered 201 with the image\n");
    let mut header = vec!["photo".to_owned()];
    header.extend(targets.iter().map(|t| format!("Kiln, {} (ms)", t.name)));
    header.extend(
        [
            "kiln-image native, one core (ms)",
            "vips 2 threads (ms)",
            "vips 1 thread (ms)",
        ]
        .map(str::to_owned),
    );
    // Each runtime's ratios: the test host's and real Spin's differ.
    for ratio_to in ["vips 2t", "vips 1t", "native"] {
        header.extend(
            targets
                .iter()
                .map(|t| format!("Kiln, {} ÷ {ratio_to}", t.name)),
        );
    }
    header.push("bytes Kiln / vips".to_owned());
    let mut table = Table::new(&header.iter().map(String::as_str).collect::<Vec<_>>());
    for photo in photos {
        let mut row = vec![format!(
            "{} ({}×{})",
            photo.label, photo.width, photo.height
        )];
        let mut kiln_bytes = 0;
        let mut kiln_times = Vec::new();
        for target in targets {
            let time = median_of(RUNS, || {
                let started = Instant::now();
                let image = submit_synchronously(&target.kiln, photo, P);
                let elapsed = started.elapsed();
                kiln_bytes = image.len();
                elapsed
            });
            kiln_times.push(time);
            row.push(ms(time));
        }
        let native = Duration::from_secs_f64(native_p(photo, P, RUNS).total_ms / 1000.0);
        row.push(ms(native));
        let output = scratch.join("p.jpg");
        let steps = vips::pipeline_p(&photo.path, scratch, &output);
        let (two, one) = if has_vips {
            (
                Some(median_of(RUNS, || vips::run(2, &steps))),
                Some(median_of(RUNS, || vips::run(1, &steps))),
            )
        } else {
            (None, None)
        };
        row.extend([two, one].map(|time| time.map_or("-".into(), ms)));
        for anchor in [two, one, Some(native)] {
            row.extend(kiln_times.iter().map(|kiln| {
                anchor.map_or("-".into(), |anchor| {
                    ratio(kiln.as_secs_f64(), anchor.as_secs_f64())
                })
            }));
        }
        let vips_bytes = std::fs::metadata(&output).map_or("-".into(), |m| m.len().to_string());
        row.push(format!("{kiln_bytes} / {vips_bytes}"));
        table.row(row);
    }
    table.print();
    let photo = &photos[1];
    let kiln = &targets[0].kiln;
    host_calls::print(&[host_calls::of(
        kiln,
        &format!("synchronous P, {}", photo.label),
        || {
            submit_synchronously(kiln, photo, P);
        },
    )]);
}

/// `POST /images?ops={ops}` of `photo` without `Prefer`: asserts the `201`
/// and returns the image.
fn submit_synchronously(kiln: &Env, photo: &Photo, ops: &str) -> Vec<u8> {
    let reply = kiln.submit(&format!("?ops={ops}"), "image/jpeg", &photo.bytes, &[]);
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.body
}

/// P run by the bare pipeline component, `runs` times; the median run.
fn wasm_p(references: &References, photo: &Photo, ops: &str, runs: usize) -> Timed {
    let timings = (0..runs)
        .map(|_| references.pipeline("image/jpeg", &photo.bytes, ops))
        .collect();
    median_run(timings)
}

/// `ops` natively on one core, like a Wasm instance: the like-for-like
/// figure; `runs` times, the median run.
fn native_p(photo: &Photo, ops: &str, runs: usize) -> Timed {
    let ops = kiln_image::parse_ops(ops).expect("valid ops");
    median_run(
        (0..runs)
            .map(|_| native_run_on_one_core(photo, &ops))
            .collect(),
    )
}

/// `ops` natively on one core and on all (as the library runs unless held
/// back), `runs` times each, taking turns so that both see the same load;
/// the median run of each.
fn native_p_on_one_and_all(photo: &Photo, ops: &str, runs: usize) -> (Timed, Timed) {
    let ops = kiln_image::parse_ops(ops).expect("valid ops");
    let (mut one, mut all) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        one.push(native_run_on_one_core(photo, &ops));
        all.push(native_run(photo, &ops));
    }
    (median_run(one), median_run(all))
}

fn native_run_on_one_core(photo: &Photo, ops: &[kiln_image::Op]) -> Timed {
    on_one_core(|| native_run(photo, ops)).0
}

fn native_run(photo: &Photo, ops: &[kiln_image::Op]) -> Timed {
    timed_process(&photo.bytes, ops)
        .expect("the pipeline runs")
        .0
}

/// The run whose total time is the median.
fn median_run(mut timings: Vec<Timed>) -> Timed {
    timings.sort_by(|a, b| a.total_ms.total_cmp(&b.total_ms));
    let middle = timings.len() / 2;
    timings.swap_remove(middle)
}

fn wasm_stages(photos: &[Photo], targets: &[Target]) {
    println!("## 2. P in Wasm, stage by stage, against the same code natively\n");
    println!(
        "(the pipeline alone in a component of bench/spin.toml, no store, on each runtime; median run of {RUNS})\n"
    );
    let mut header = vec!["photo".to_owned(), "stage".to_owned()];
    for target in targets {
        header.push(format!("Wasm, {} (ms)", target.name));
        header.push(format!("{} ÷ native, one core", target.name));
    }
    header.extend([
        "native, one core (ms)".to_owned(),
        "native, all cores (ms)".to_owned(),
        format!("{} ÷ native, all cores", targets[0].name),
    ]);
    let mut table = Table::new(&header.iter().map(String::as_str).collect::<Vec<_>>());
    for photo in photos {
        let wasm: Vec<Timed> = targets
            .iter()
            .map(|target| wasm_p(&target.references, photo, P, RUNS))
            .collect();
        let (one, all) = native_p_on_one_and_all(photo, P, RUNS);
        let row = |stage: String, wasm_ms: Vec<f64>, one: f64, all: f64| {
            let mut row = vec![photo.label.to_owned(), stage];
            for &ms in &wasm_ms {
                row.push(format!("{ms:.1}"));
                row.push(ratio(ms, one));
            }
            row.extend([
                format!("{one:.1}"),
                format!("{all:.1}"),
                ratio(wasm_ms[0], all),
            ]);
            row
        };
        for (n, (one, all)) in one.stages.iter().zip(&all.stages).enumerate() {
            let wasm_ms = wasm.iter().map(|w| w.stages[n].ms).collect();
            table.row(row(one.stage.clone(), wasm_ms, one.ms, all.ms));
        }
        let wasm_ms = wasm.iter().map(|w| w.total_ms).collect();
        table.row(row("**total**".into(), wasm_ms, one.total_ms, all.total_ms));
    }
    table.print();
    if !on_one_core(|| ()).1 {
        println!(
            "\n(this system cannot hold a thread to one core: both native columns ran on all cores)"
        );
    }
    println!(
        "A Wasm instance runs on one thread; natively, jpeg-decoder (the shrink-on-load decoder) \
         starts a thread per colour component for its inverse DCTs, so the like-for-like \
         ratio is the one-core one.\n"
    );
}

fn full_size(photo: &Photo, target: &Target, has_vips: bool, scratch: &Path) {
    println!(
        "## 3. Full-size re-encode of the {} photo (mirrored, so every pixel is decoded and encoded); {RUNS} rounds, Kiln native and vips taking turns: medians, and medians of the rounds' time ratios\n",
        photo.label
    );
    let mut table = Table::new(&[
        "output",
        "Kiln native, one core (ms)",
        "Kiln Wasm (ms)",
        "vips 2 threads (ms)",
        "vips 1 thread (ms)",
        "native ÷ vips 2t",
        "native ÷ vips 1t",
        "Kiln (MB)",
        "vips (MB)",
        "bytes Kiln ÷ vips",
    ]);
    let cases = [
        (
            "JPEG, quality 80",
            "flip(h),quality(80)",
            "full.jpg[Q=80,strip]",
            "full.jpg",
        ),
        ("PNG", "flip(h),format(png)", "full.png", "full.png"),
    ];
    for (label, ops, vips_output, vips_file) in cases {
        let wasm = wasm_p(&target.references, photo, ops, RUNS.min(3));
        let native_ops = kiln_image::parse_ops(ops).expect("valid ops");
        let vips_steps = has_vips.then(|| {
            vips::flip(
                &photo.path,
                &scratch.join(vips_output).display().to_string(),
            )
        });
        // Kiln and vips take turns, so that all see the same drift in the
        // machine's speed, and the time ratios are taken round by round.
        let (mut native, mut two, mut one) = (Vec::new(), Vec::new(), Vec::new());
        let mut native_bytes = 0;
        for _ in 0..RUNS {
            let run = native_run_on_one_core(photo, &native_ops);
            native.push(run.total_ms);
            native_bytes = run.bytes as u64;
            if let Some(steps) = &vips_steps {
                two.push(vips::run(2, steps).as_secs_f64() * 1000.0);
                one.push(vips::run(1, steps).as_secs_f64() * 1000.0);
            }
        }
        let mut row = vec![
            label.to_owned(),
            format!("{:.1}", median(&native)),
            format!("{:.1}", wasm.total_ms),
        ];
        if has_vips {
            let vips_bytes = std::fs::metadata(scratch.join(vips_file)).map_or(0, |m| m.len());
            row.extend([
                format!("{:.1}", median(&two)),
                format!("{:.1}", median(&one)),
                times(median_ratio(&native, &two)),
                times(median_ratio(&native, &one)),
                mb(native_bytes),
                mb(vips_bytes),
                ratio(native_bytes as f64, vips_bytes as f64),
            ]);
        } else {
            row.extend(["-", "-", "-", "-"].map(str::to_owned));
            row.push(mb(native_bytes));
            row.extend(["-", "-"].map(str::to_owned));
        }
        table.row(row);
    }
    table.print();
}

fn acknowledgement(photo: &Photo, targets: &[Target]) {
    println!(
        "## 4. `Prefer: respond-async` acknowledgement of the {} upload ({:.1} MB), against one key-value `set`\n",
        photo.label,
        photo.bytes.len() as f64 / 1e6
    );
    println!(
        "({ACK_RUNS} turns, medians; each Kiln job finishes, untimed, before the next upload: \
         \"idle\" uploads {} s later, when the instances that ran it are done; \
         \"back to back\" uploads at once, while its processor still cleans up \
         (upload deleted, slot released, next job looked for) and the store commits that; \
         the floor overwrites one key, and its \"new key\" variant adds a value under a new \
         key each upload, as Kiln does)\n",
        ACK_IDLE.as_secs()
    );
    let mut table = Table::new(&[
        "runtime",
        "Kiln 202, idle (ms)",
        "Kiln 202, back to back (ms)",
        "one-`set` floor (ms)",
        "floor, a new key each upload (ms)",
        "idle ÷ floor (median of the turns)",
        "back to back ÷ floor (median of the turns)",
        "idle ÷ new-key floor (median of the turns)",
        "Kiln 202 counting clients, idle (ms)",
        "counting ÷ not (median of the turns)",
    ]);
    for target in targets {
        let submit_202 = |kiln: &Env| {
            let started = Instant::now();
            let reply = kiln.submit_async_as(&format!("?ops={P}"), "image/jpeg", &photo.bytes);
            let elapsed = started.elapsed();
            kiln.wait_until_finished(&reply.location(), Duration::from_secs(120));
            elapsed.as_secs_f64()
        };
        let kiln_202 = || submit_202(&target.kiln);
        let floor_202 = |path: &str| {
            std::thread::sleep(ACK_IDLE);
            let started = Instant::now();
            assert_eq!(
                post_floor(target.references.client(), path, &photo.bytes),
                202
            );
            started.elapsed().as_secs_f64()
        };
        // Turn by turn, each ratio against the floor of its own turn: the
        // store's commits (an fsync each) vary a lot from one second to
        // the next.
        let (mut idle, mut back_to_back) = (Vec::new(), Vec::new());
        let (mut floor, mut floor_new_key) = (Vec::new(), Vec::new());
        let mut counting = Vec::new();
        for turn in 0..ACK_RUNS {
            std::thread::sleep(ACK_IDLE);
            idle.push(kiln_202());
            std::thread::sleep(ACK_IDLE);
            counting.push(submit_202(&target.limited));
            back_to_back.push(kiln_202());
            floor.push(floor_202("/floor"));
            // Kiln stores each upload under new keys: the store adds
            // rows, where the plain floor overwrites one.
            floor_new_key.push(floor_202(&format!("/floor?key=upload-{turn}")));
        }
        let ratios = |kiln: &[f64], anchor: &[f64]| times(median_ratio(kiln, anchor));
        let ms_of = |seconds: &[f64]| ms(Duration::from_secs_f64(median(seconds)));
        table.row(vec![
            target.name.to_owned(),
            ms_of(&idle),
            ms_of(&back_to_back),
            ms_of(&floor),
            ms_of(&floor_new_key),
            ratios(&idle, &floor),
            ratios(&back_to_back, &floor),
            ratios(&idle, &floor_new_key),
            ms_of(&counting),
            ratios(&counting, &idle),
        ]);
    }
    table.print();
    let kiln = &targets[0].kiln;
    host_calls::print(&[host_calls::of(kiln, "`respond-async` submission", || {
        let reply = kiln.submit_async_as(&format!("?ops={P}"), "image/jpeg", &photo.bytes);
        kiln.wait_until_finished(&reply.location(), Duration::from_secs(120));
    })]);
}

fn post_floor(client: &Client, path: &str, body: &[u8]) -> u16 {
    client.send("POST", path, &[], body).status
}

fn status_reads(photo: &Photo, targets: &[Target]) {
    println!(
        "## 5. Status reads: `GET /operations/{{id}}` of a finished job against one key-value `get` of the same JSON, {CONCURRENCY} clients; {LOAD_ROUNDS} rounds of {} s each, the two taking turns; medians of the rounds\n",
        LOAD_TIME.as_secs()
    );
    let mut table = Table::new(&[
        "runtime",
        "Kiln (req/s)",
        "one-`get` floor (req/s)",
        "Kiln ÷ floor (median of the rounds' ratios)",
    ]);
    for target in targets {
        let accepted = target
            .kiln
            .submit_async_as("?ops=resize(w=64)", "image/jpeg", &photo.bytes);
        let operation = accepted.location();
        let finished = target
            .kiln
            .wait_until_finished(&operation, Duration::from_secs(120));
        assert_eq!(
            post_floor(target.references.client(), "/floor", &finished.body),
            202
        );
        // A shared machine's speed drifts over seconds: taking turns puts
        // both under the same drift, and the ratio is taken round by round.
        let (mut kiln, mut floor) = (Vec::new(), Vec::new());
        for _ in 0..LOAD_ROUNDS {
            kiln.push(get_rate(
                target.kiln.base_url(),
                &operation,
                CONCURRENCY,
                LOAD_TIME,
            ));
            floor.push(get_rate(
                target.references.client().base_url(),
                "/floor",
                CONCURRENCY,
                LOAD_TIME,
            ));
        }
        table.row(vec![
            target.name.to_owned(),
            format!("{:.0}", median(&kiln)),
            format!("{:.0}", median(&floor)),
            times(median_ratio(&kiln, &floor)),
        ]);
    }
    table.print();
    let kiln = &targets[0].kiln;
    let finished = kiln.submit_async_as("?ops=resize(w=64)", "image/jpeg", &photo.bytes);
    let operation = finished.location();
    kiln.wait_until_finished(&operation, Duration::from_secs(120));
    host_calls::print(&[host_calls::of(kiln, "status GET, finished job", || {
        assert_eq!(kiln.get(&operation, &[]).status, 200);
    })]);
    let wasm_dir = kiln_e2e::env::wasm_dir();
    for (label, file) in [
        ("Kiln `operations`", "kiln_operations.wasm"),
        ("the floor", "kiln_bench_floor.wasm"),
    ] {
        match static_memory::of(&wasm_dir.join(file)) {
            Ok(memory) => println!(
                "- {label} starts with {} MB of linear memory, {} MB of it static data",
                mb(memory.initial_bytes),
                mb(memory.data_bytes)
            ),
            Err(err) => println!("- {label}: {err}"),
        }
    }
    println!();
}

fn peak_memory(photo: &Photo) {
    println!(
        "## 6. Peak linear memory of one instance on the {} photo ({}×{}; its RGBA frame is {} MB)\n",
        photo.label,
        photo.width,
        photo.height,
        mb(photo.rgba_bytes())
    );
    let mut table = Table::new(&["request", "instance", "peak (MB)", "÷ RGBA frame"]);
    let frame = photo.rgba_bytes() as f64;
    for (label, ops) in PEAK_MEMORY_REQUESTS {
        // A fresh host per request, so its counters hold this request only.
        let kiln = Env::start();
        submit_synchronously(&kiln, photo, ops);
        // The peak is recorded when the instance ends, after its follow-ups.
        kiln.settle();
        let (component, peak) = ["submit", "processor"]
            .into_iter()
            .map(|id| (id, kiln.host().stats(id).peak_memory_bytes))
            .max_by_key(|&(_, peak)| peak)
            .expect("two components");
        table.row(vec![
            label.to_owned(),
            format!("Kiln `{component}` (the larger)"),
            mb(peak),
            ratio(peak as f64, frame),
        ]);
    }
    let references = References::on_host();
    wasm_p(&references, photo, P, 1);
    let peak = references
        .stats("pipeline")
        .map_or(0, |stats| stats.peak_memory_bytes);
    table.row(vec![
        "P, pipeline alone".into(),
        "bench `pipeline`".into(),
        mb(peak),
        ratio(peak as f64, frame),
    ]);
    table.print();
}

/// The requests whose peak memory section 6 measures.
const PEAK_MEMORY_REQUESTS: [(&str, &str); 2] = [
    ("synchronous P", P),
    ("synchronous flip(h), full size", "flip(h)"),
];

/// Section 6 on `spin up`: what the whole `spin trigger http` process holds
/// resident at its peak during one request on a fresh server (the peak
/// reset once it is up, so that loading the components does not count),
/// over what it held idle.
fn spin_peak_memory(photo: &Photo, spin: &Path) {
    println!(
        "On `spin up`: resident memory of the `spin trigger http` process (VmRSS, VmHWM), a fresh server per request\n"
    );
    let mut table = Table::new(&[
        "request",
        "idle (MB)",
        "peak (MB)",
        "peak − idle (MB)",
        "(peak − idle) ÷ RGBA frame",
    ]);
    let frame = photo.rgba_bytes() as f64;
    for (label, ops) in PEAK_MEMORY_REQUESTS {
        let kiln = Env::builder().start_spin(spin);
        let process = kiln.spin_process().expect("a spin up");
        process.reset_peak_memory();
        let idle = process.server_memory().expect("the server's memory");
        submit_synchronously(&kiln, photo, ops);
        kiln.settle();
        let after = process.server_memory().expect("the server's memory");
        let grown = after.peak.saturating_sub(idle.resident);
        table.row(vec![
            label.to_owned(),
            mb(idle.resident),
            mb(after.peak),
            mb(grown),
            ratio(grown as f64, frame),
        ]);
    }
    table.print();
}

/// Which sections to run: all, or those `BENCH_SECTIONS` lists (`4,5`).
fn sections() -> impl Fn(u8) -> bool {
    let only: Option<Vec<u8>> = std::env::var("BENCH_SECTIONS").ok().map(|list| {
        list.split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect()
    });
    move |section| only.as_ref().is_none_or(|only| only.contains(&section))
}

/// The CPU model and count, for the record.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{cores} × {model}")
}
