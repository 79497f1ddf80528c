//! (b) chaos: three replicas on one Redis behind HAProxy, 32 clients with
//! a mix of light and heavy, asynchronous and synchronous, replayed,
//! canceled and webhook jobs, while replicas are killed, one is stopped
//! past its lease, and Redis is killed. Every accepted job must end as it
//! should, with the bytes the same job gives when run alone, exactly once.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kiln_e2e::webhooks::{Received, SECRET, WebhookReceiver};

use super::Settings;
use crate::chaos;
use crate::cluster::Cluster;
use crate::load::{self, Ack, Client, Ending, Submission, Work};
use crate::report::{Outcome, Verdict, heading, mib, p50_p99};
use crate::rng::Rng;
use crate::store;

/// How long a client keeps retrying a submission through the chaos.
const SUBMIT_GIVE_UP: Duration = Duration::from_secs(180);
/// How long a client follows one operation.
const FOLLOW_GIVE_UP: Duration = Duration::from_secs(600);

/// What one job of the mix does.
#[derive(Clone, Copy)]
struct JobPlan {
    /// Index into the works (light, heavy).
    work: usize,
    /// The `Prefer` header.
    prefer: Option<&'static str>,
    /// Submit a second time with the same key.
    replay: bool,
    /// `DELETE` it soon after its `202`.
    cancel: bool,
    /// Name a webhook.
    webhook: bool,
}

impl JobPlan {
    /// Job `index`'s plan: 15% heavy; 60% `respond-async`, 20% no
    /// `Prefer` (inline), 20% `wait=5`; 10% replayed, 10% of the
    /// asynchronous ones canceled, 25% with a webhook.
    fn draw(seed: u64, index: usize) -> JobPlan {
        let mut rng = Rng::new(seed ^ (index as u64).wrapping_mul(0x100_0000_01b3));
        let work = usize::from(rng.chance(15));
        let prefer = match rng.below(10) {
            0..6 => Some("respond-async"),
            6..8 => None,
            _ => Some("wait=5"),
        };
        JobPlan {
            work,
            prefer,
            replay: rng.chance(10),
            cancel: prefer == Some("respond-async") && rng.chance(10),
            webhook: rng.chance(25),
        }
    }
}

/// What happened to one job.
struct Record {
    plan: JobPlan,
    key: String,
    webhook_path: Option<String>,
    ack: Result<Ack, String>,
    /// The id the second submission named, or why it failed.
    replay: Option<Result<String, String>>,
    /// What the `DELETE` answered.
    cancel: Option<Option<u16>>,
    ending: Option<Ending>,
    /// From the first submission attempt to its end being seen.
    to_end: Option<Duration>,
    /// SHA-256 of its image, or why it could not be read.
    image: Option<Result<String, String>>,
}

/// Runs the scenario.
pub fn run(settings: &Settings) -> Outcome {
    let min_jobs = settings.jobs(1000, 200);
    heading(&format!(
        "chaos: 3 replicas + redis (AOF) + haproxy, 32 clients, at least {min_jobs} jobs, seed {}",
        settings.seed
    ));
    let mut outcome = Outcome::default();
    let lease: u64 = settings
        .variable("lease_seconds", &[])
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let cluster = Cluster::start(&settings.topology("chaos", 3, true, true, &[]));
    let base = cluster.base_url();
    let receiver = WebhookReceiver::start();
    let works = [settings.light(), settings.heavy()];

    // The bytes each (image, ops) gives alone, before any fault.
    let client = Client::new(&base);
    let mut known_ids = HashSet::new();
    let mut references = Vec::new();
    for work in &works {
        let (id, sha) = reference(&client, work);
        println!("  reference {}: {sha}", work.name);
        known_ids.insert(id);
        references.push(sha);
    }

    let stop = AtomicBool::new(false);
    let chaos_done = AtomicBool::new(false);
    let next_job = AtomicUsize::new(0);
    let plan = chaos::Plan {
        pause: (Duration::from_secs(5), Duration::from_secs(10)),
        stop_for: Duration::from_secs(lease + 5),
        min_kills: if settings.short { 3 } else { 6 },
    };
    let started = Instant::now();
    let (records, chaos_log, peaks, load_time) = std::thread::scope(|scope| {
        let chaos = scope.spawn(|| chaos::run(&cluster, &plan, settings.seed, &stop, &chaos_done));
        let sampler = scope
            .spawn(|| crate::memory::sample_until(&cluster, Duration::from_millis(200), &stop));
        // Clients go on until both the jobs and the chaos plan are done.
        let next = || {
            let index = next_job.fetch_add(1, Ordering::SeqCst);
            let more = index < min_jobs || !chaos_done.load(Ordering::SeqCst);
            (more && index < min_jobs * 20).then_some(index)
        };
        let records = load::run_clients_while(32, &base, next, |client, index| {
            run_job(
                client,
                &works,
                &receiver,
                JobPlan::draw(settings.seed, index),
            )
        });
        let load_time = started.elapsed();
        stop.store(true, Ordering::SeqCst);
        let chaos_log = chaos.join().expect("the chaos thread");
        let peaks = sampler.join().expect("the sampler");
        (records, chaos_log, peaks, load_time)
    });
    println!(
        "  load: {} jobs in {:.1} s; chaos: {} kills, {} stops, {} redis restarts",
        records.len(),
        load_time.as_secs_f64(),
        chaos_log.kills,
        chaos_log.stops,
        chaos_log.redis_restarts
    );
    outcome.check(
        cluster.wait_all_serving(Duration::from_secs(60)),
        "a replica did not serve again after the chaos",
    );

    // Tally.
    let mut accepted = 0;
    let mut succeeded = 0;
    let mut canceled = 0;
    let mut lost = Vec::new();
    let mut wrong = Vec::new();
    let mut unaccepted: BTreeMap<String, usize> = BTreeMap::new();
    let mut replay_mismatch = Vec::new();
    let mut replay_failed = Vec::new();
    let mut acks = Vec::new();
    let mut to_success = Vec::new();
    let mut statuses_201_202 = [0usize; 2];
    let mut refusals_503 = 0;
    let mut retried_submissions = 0;
    let mut cancel_answers: BTreeMap<String, usize> = BTreeMap::new();
    for record in &records {
        let ack = match &record.ack {
            Ok(ack) => ack,
            Err(why) => {
                *unaccepted
                    .entry(why.chars().take(80).collect())
                    .or_default() += 1;
                continue;
            }
        };
        accepted += 1;
        known_ids.insert(ack.id.clone());
        if let Some(answer) = record.cancel {
            let answer = answer.map_or("no answer".to_owned(), |status| status.to_string());
            *cancel_answers.entry(answer).or_default() += 1;
        }
        acks.push(ack.elapsed);
        statuses_201_202[usize::from(ack.status == 202)] += 1;
        refusals_503 += ack.refusals_503;
        retried_submissions += usize::from(ack.attempts > 1);
        match &record.replay {
            Some(Ok(second)) if *second != ack.id => {
                replay_mismatch.push(format!("{}: first {}, then {second}", record.key, ack.id));
            }
            Some(Err(why)) => replay_failed.push(format!("{}: {why}", ack.id)),
            _ => {}
        }
        let ending = record
            .ending
            .as_ref()
            .expect("an accepted job was followed");
        let canceled_ok = record.plan.cancel && ending.status == "canceled";
        match ending.status.as_str() {
            "succeeded" => {
                succeeded += 1;
                if let Some(elapsed) = record.to_end {
                    to_success.push(elapsed);
                }
                match &record.image {
                    Some(Ok(sha)) if *sha == references[record.plan.work] => {}
                    Some(Ok(sha)) => wrong.push(format!("{}: sha256 {sha}", ack.id)),
                    Some(Err(why)) => lost.push(format!("{}: image unreadable: {why}", ack.id)),
                    None => lost.push(format!("{}: image not read", ack.id)),
                }
            }
            _ if canceled_ok => canceled += 1,
            other => lost.push(format!(
                "{} ({}): ended {other}{}",
                ack.id,
                describe(&record.plan),
                if ending.finished {
                    ""
                } else {
                    " (never finished)"
                }
            )),
        }
    }
    for (why, count) in &unaccepted {
        println!("  not accepted ({count}): {why}");
    }
    for line in lost.iter().take(10) {
        println!("  lost: {line}");
    }
    for line in wrong.iter().take(10) {
        println!("  wrong: {line}");
    }
    for line in replay_failed.iter().take(10) {
        println!("  replay not accepted: {line}");
    }
    for line in replay_mismatch.iter().take(10) {
        println!("  replay named another operation: {line}");
    }

    let webhook_failures = check_webhooks(&client, &receiver, &records);
    for line in webhook_failures.iter().take(10) {
        println!("  webhook: {line}");
    }

    let redis_url = cluster.redis_url().expect("the chaos cluster has redis");
    // A replica killed between storing a job and its follow-ups left the
    // job unlisted (its marker stays); one killed before binding the job's
    // Idempotency-Key left a job the client's retry replaced. The first
    // maintenance a lease later settles both: wait a lease, let one more
    // submission's maintenance scan, and see every marker go.
    let unlisted = store::unlisted_markers(&redis_url);
    std::thread::sleep(Duration::from_secs(lease + 1));
    known_ids.insert(reference(&client, &works[0]).0);
    let settled_by = Instant::now() + Duration::from_secs(20);
    while store::unlisted_markers(&redis_url) > 0 && Instant::now() < settled_by {
        std::thread::sleep(Duration::from_millis(200));
    }
    let left_unlisted = store::unlisted_markers(&redis_url);
    println!("  unlisted jobs: {unlisted} after the load, {left_unlisted} after the recovery scan");
    outcome.check(
        left_unlisted == 0,
        format!("chaos: {left_unlisted} jobs left unlisted after the recovery scan"),
    );
    let audit = store::audit(&redis_url, &known_ids);
    store::print(&audit);
    let duplicates = replay_mismatch.len() + audit.duplicate_jobs();

    // The report block.
    let throughput = (succeeded + canceled) as f64 / load_time.as_secs_f64();
    println!(
        "  accepted   {accepted} ({} answered 201, {} answered 202; {retried_submissions} needed retries, {refusals_503} 503s with Retry-After met)",
        statuses_201_202[0], statuses_201_202[1]
    );
    println!("  succeeded  {succeeded}");
    println!("  canceled   {canceled} (DELETE answered {cancel_answers:?})");
    println!("  lost       {}", lost.len());
    println!("  wrong      {}", wrong.len());
    println!(
        "  duplicates {duplicates} ({} replays naming another operation, {} extra job records for one key)",
        replay_mismatch.len(),
        audit.duplicate_jobs()
    );
    println!("  leftover keys {}", audit.leftovers.len());
    if !audit.kept_with_job.is_empty() {
        println!(
            "  upload chunks kept until their retention bucket is swept (a processor killed between a job's outcome and the upload's deletion): {}",
            audit.kept_with_job.len()
        );
    }
    println!("  webhook problems {}", webhook_failures.len());
    println!("  ack (to 201/202 headers)      {}", p50_p99(&acks));
    println!("  submission to succeeded       {}", p50_p99(&to_success));
    println!(
        "  throughput {throughput:.2} jobs/s over {:.1} s",
        load_time.as_secs_f64()
    );
    for (index, replica) in cluster.replicas.iter().enumerate() {
        let mut replica = replica.lock().unwrap_or_else(|p| p.into_inner());
        replica.sample();
        println!(
            "  replica {index}: peak RSS {} (max VmHWM seen over {} lives)",
            mib(replica.peak),
            replica.restarts + 1
        );
    }
    println!(
        "  highest VmRSS in one sample: {} ({} samples)",
        mib(peaks.resident),
        peaks.samples
    );
    println!(
        "  kills {}, stops {}, redis restarts {} (redis down {:?}), replica restart p50/p99 {}",
        chaos_log.kills,
        chaos_log.stops,
        chaos_log.redis_restarts,
        chaos_log.redis_down,
        p50_p99(&chaos_log.restart_times)
    );

    outcome.check(lost.is_empty(), format!("chaos: {} jobs lost", lost.len()));
    outcome.check(
        wrong.is_empty(),
        format!("chaos: {} wrong results", wrong.len()),
    );
    outcome.check(duplicates == 0, format!("chaos: {duplicates} duplicates"));
    outcome.check(
        audit.leftovers.is_empty(),
        format!("chaos: {} leftover keys", audit.leftovers.len()),
    );
    outcome.check(
        webhook_failures.is_empty(),
        format!("chaos: {} webhook problems", webhook_failures.len()),
    );
    let chaos_complete =
        chaos_log.kills >= plan.min_kills && chaos_log.stops >= 1 && chaos_log.redis_restarts >= 1;
    outcome.target(
        "chaos",
        format!(
            "{accepted} accepted, {succeeded} succeeded, {canceled} canceled, lost {}, wrong {}, duplicates {duplicates}, leftover keys {}, webhook problems {}, not accepted {}; ack {}, to succeeded {}; {throughput:.2} jobs/s; {} kills, {} stops, {} redis restarts",
            lost.len(),
            wrong.len(),
            audit.leftovers.len(),
            webhook_failures.len(),
            unaccepted.values().sum::<usize>(),
            p50_p99(&acks),
            p50_p99(&to_success),
            chaos_log.kills,
            chaos_log.stops,
            chaos_log.redis_restarts
        ),
        Verdict::from(
            lost.is_empty()
                && wrong.is_empty()
                && duplicates == 0
                && audit.leftovers.is_empty()
                && webhook_failures.is_empty()
                && unaccepted.is_empty()
                && chaos_complete,
        ),
    );
    outcome
}

/// Runs `work` once, synchronously, with nothing else going on: its id
/// and the SHA-256 of its image.
fn reference(client: &Client, work: &Work) -> (String, String) {
    let submission = Submission {
        work,
        prefer: None,
        key: uuid::Uuid::new_v4().to_string(),
        webhook: None,
    };
    let ack = load::submit(client, &submission, SUBMIT_GIVE_UP)
        .unwrap_or_else(|why| panic!("the reference run of {} failed: {why}", work.name));
    let image = match ack.image {
        Some(image) => image,
        None => {
            let ending = load::follow(client, &ack.id, FOLLOW_GIVE_UP);
            assert_eq!(
                ending.status, "succeeded",
                "the reference run of {}",
                work.name
            );
            load::fetch_image(client, &ack.id, SUBMIT_GIVE_UP)
                .unwrap_or_else(|why| panic!("the reference image of {}: {why}", work.name))
        }
    };
    (ack.id, load::sha256(&image))
}

/// What a client does with one job of the mix.
fn run_job(client: &Client, works: &[Work], receiver: &WebhookReceiver, plan: JobPlan) -> Record {
    let key = uuid::Uuid::new_v4().to_string();
    let webhook_path = plan.webhook.then(|| format!("/hooks/{key}"));
    let submission = Submission {
        work: &works[plan.work],
        prefer: plan.prefer,
        key: key.clone(),
        webhook: webhook_path.as_ref().map(|path| receiver.url(path)),
    };
    let started = Instant::now();
    let ack = load::submit(client, &submission, SUBMIT_GIVE_UP);
    let mut record = Record {
        plan,
        key,
        webhook_path,
        ack,
        replay: None,
        cancel: None,
        ending: None,
        to_end: None,
        image: None,
    };
    let Ok(ack) = &record.ack else {
        return record;
    };
    if plan.replay {
        record.replay =
            Some(load::submit(client, &submission, SUBMIT_GIVE_UP).map(|again| again.id));
    }
    if plan.cancel && ack.status == 202 {
        std::thread::sleep(Duration::from_millis(
            started.elapsed().as_millis() as u64 % 200,
        ));
        record.cancel = Some(load::cancel(client, &ack.id, SUBMIT_GIVE_UP));
    }
    let ending = if ack.status == 201 {
        record.image = ack.image.as_deref().map(|image| Ok(load::sha256(image)));
        Ending {
            status: "succeeded".into(),
            finished: true,
        }
    } else {
        load::follow(client, &ack.id, FOLLOW_GIVE_UP)
    };
    record.to_end = Some(started.elapsed());
    if ending.status == "succeeded" && record.image.is_none() {
        record.image = Some(
            load::fetch_image(client, &ack.id, SUBMIT_GIVE_UP).map(|image| load::sha256(&image)),
        );
    }
    record.ending = Some(ending);
    record
}

fn describe(plan: &JobPlan) -> String {
    format!(
        "{}{}{}{}{}",
        if plan.work == 1 { "heavy" } else { "light" },
        plan.prefer
            .map(|p| format!(", Prefer: {p}"))
            .unwrap_or_default(),
        if plan.replay { ", replayed" } else { "" },
        if plan.cancel { ", canceled" } else { "" },
        if plan.webhook { ", webhook" } else { "" },
    )
}

/// Every accepted job with a webhook got at least one delivery, every
/// delivery of one job carries the same `webhook-id`, names the job and
/// verifies. Waits up to 90 s for late deliveries, reading the missing
/// jobs' operations meanwhile (a read is what sends a due retry).
fn check_webhooks(client: &Client, receiver: &WebhookReceiver, records: &[Record]) -> Vec<String> {
    let expected: Vec<(&str, &str)> = records
        .iter()
        .filter_map(|record| {
            let path = record.webhook_path.as_deref()?;
            let ack = record.ack.as_ref().ok()?;
            Some((path, ack.id.as_str()))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    let by_path = loop {
        let mut by_path: BTreeMap<String, Vec<Received>> = BTreeMap::new();
        for received in receiver.received() {
            by_path
                .entry(received.path.clone())
                .or_default()
                .push(received);
        }
        let missing: Vec<&str> = expected
            .iter()
            .filter(|(path, _)| !by_path.contains_key(*path))
            .map(|(_, id)| *id)
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break by_path;
        }
        for id in missing {
            load::status_now(client, id);
        }
        std::thread::sleep(Duration::from_secs(3));
    };
    let mut failures = Vec::new();
    let deliveries: usize = by_path.values().map(Vec::len).sum();
    println!(
        "  webhooks: {} jobs with a webhook, {deliveries} deliveries received",
        expected.len()
    );
    for (path, id) in &expected {
        let Some(received) = by_path.get(*path) else {
            failures.push(format!("{id}: no delivery"));
            continue;
        };
        let ids: HashSet<&str> = received.iter().map(|r| r.header("webhook-id")).collect();
        if ids.len() != 1 {
            failures.push(format!("{id}: {} different webhook-ids {ids:?}", ids.len()));
        }
        let names: HashSet<String> = received
            .iter()
            .map(|r| {
                r.json()["data"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        if names.len() != 1 || !names.contains(*id) {
            failures.push(format!("{id}: deliveries name {names:?}"));
        }
        if !received.iter().all(|r| r.signature_is_valid(SECRET)) {
            failures.push(format!("{id}: a delivery's signature does not verify"));
        }
    }
    failures
}
