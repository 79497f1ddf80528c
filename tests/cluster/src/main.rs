//! `kiln-cluster`: Kiln under load and faults, on real processes — `spin
//! up` replicas sharing one `redis-server` behind HAProxy — with four
//! scenarios (see `tests/cluster/README.md`). Run it through
//! `scripts/cluster`, which builds the components first.
//!
//! # Layout
//!
//! - [`cluster`]: starting redis, the replicas and HAProxy, and ending
//!   them (Drop guards; [`cleanup`] for Ctrl-C).
//! - [`load`]: the HTTP clients and what a client does with one job.
//! - [`chaos`]: the fault injector (kills, a stop past the lease, a Redis
//!   restart).
//! - [`memory`]: sampling the servers' memory, and a guard against an
//!   unbounded burst.
//! - [`store`]: auditing what Redis holds afterwards.
//! - [`scenarios`]: burst, chaos, scale, backlog.
//! - [`report`]: the report blocks and `TARGET` lines.

mod chaos;
mod cleanup;
mod cluster;
mod load;
mod memory;
mod report;
mod rng;
mod scenarios;
mod store;

use std::path::PathBuf;
use std::time::Instant;

use report::Outcome;
use scenarios::Settings;

const USAGE: &str = "usage: kiln-cluster [--short] [--var name=value]... [--jobs N] \
[--backlog-jobs N] [--manifest FILE] [--corpus DIR] [--seed N] [burst|chaos|scale|backlog|all]...";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    Burst,
    Chaos,
    Scale,
    Backlog,
}

impl Scenario {
    const ALL: [Scenario; 4] = [
        Scenario::Burst,
        Scenario::Chaos,
        Scenario::Scale,
        Scenario::Backlog,
    ];

    fn run(self, settings: &Settings) -> Outcome {
        match self {
            Scenario::Burst => scenarios::burst::run(settings),
            Scenario::Chaos => scenarios::chaos::run(settings),
            Scenario::Scale => scenarios::scale::run(settings),
            Scenario::Backlog => scenarios::backlog::run(settings),
        }
    }
}

fn main() {
    let (settings, chosen) = match parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(why) => {
            eprintln!("{why}\n{USAGE}");
            std::process::exit(2);
        }
    };
    cleanup::install();
    println!(
        "kiln-cluster: {:?}{}, manifest {}, seed {}, variables {:?}",
        chosen,
        if settings.short { " (--short)" } else { "" },
        settings.manifest.display(),
        settings.seed,
        settings.variables
    );
    println!("logs: {}", cluster::logs_dir().display());
    let mut outcomes = Vec::new();
    for scenario in chosen {
        let started = Instant::now();
        // A panicking scenario (a process that would not start) is a
        // failure of the run, not the end of the other scenarios; its
        // Drop guards have ended its processes while unwinding.
        let outcome = std::panic::catch_unwind(|| scenario.run(&settings)).unwrap_or_else(|_| {
            let mut outcome = Outcome::default();
            outcome.check(
                false,
                format!("{scenario:?}: the scenario panicked (see above)"),
            );
            outcome
        });
        println!(
            "  ({scenario:?} took {:.1} min)",
            started.elapsed().as_secs_f64() / 60.0
        );
        outcomes.push(outcome);
    }
    println!("\n==== summary ====");
    for target in outcomes.iter().flat_map(|outcome| &outcome.targets) {
        println!("{target}");
    }
    let failures: Vec<&String> = outcomes.iter().flat_map(|o| &o.failures).collect();
    for failure in &failures {
        println!("INVARIANT FAILED: {failure}");
    }
    if !failures.is_empty() {
        std::process::exit(1);
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<(Settings, Vec<Scenario>), String> {
    let root = kiln_e2e::env::workspace_root();
    let mut settings = Settings {
        short: false,
        variables: Vec::new(),
        jobs: None,
        backlog_jobs: None,
        manifest: root.join("spin.toml"),
        corpus: std::env::var_os("KILN_CORPUS").map_or_else(|| "/tmp/corpus".into(), PathBuf::from),
        seed: rng::Rng::clock_seed() % 1_000_000,
    };
    let mut chosen = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--short" => settings.short = true,
            "--var" => {
                let pair = value("--var")?;
                let (name, value) = pair
                    .split_once('=')
                    .ok_or(format!("--var {pair}: expected name=value"))?;
                settings.variables.push((name.to_owned(), value.to_owned()));
            }
            "--jobs" => settings.jobs = Some(number(&value("--jobs")?)?),
            "--backlog-jobs" => settings.backlog_jobs = Some(number(&value("--backlog-jobs")?)?),
            "--manifest" => settings.manifest = value("--manifest")?.into(),
            "--corpus" => settings.corpus = value("--corpus")?.into(),
            "--seed" => settings.seed = number(&value("--seed")?)? as u64,
            "-h" | "--help" => return Err("kiln-cluster: Kiln under load and faults".into()),
            "all" => chosen.extend(Scenario::ALL),
            "burst" => chosen.push(Scenario::Burst),
            "chaos" => chosen.push(Scenario::Chaos),
            "scale" => chosen.push(Scenario::Scale),
            "backlog" => chosen.push(Scenario::Backlog),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if chosen.is_empty() {
        chosen.extend(Scenario::ALL);
    }
    Ok((settings, chosen))
}

fn number(text: &str) -> Result<usize, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not a number"))
}
