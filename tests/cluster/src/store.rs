//! What the shared Redis holds after a run, read from outside: duplicate
//! jobs (two job records for one `Idempotency-Key`), and keys that belong
//! to nothing (chunks of a job that is gone, an upload kept after its job
//! finished, a late processor's result chunks, unknown keys).
//!
//! Key names follow `crates/kiln/src/keys.rs`: `kiln:job:{id}`,
//! `kiln:blob:{id}:src:{n}` and `kiln:blob:{id}:out:{attempt}:{n}`,
//! `kiln:idempotency:{sha256}` (and its `:claims` counter); every other key
//! without a job id in it is an index (pending, retention buckets, the
//! queue, slots, counters), which is expected to remain.

use std::collections::{BTreeMap, HashMap, HashSet};

use kiln_test_host::KeyValueStore;

/// What the audit found.
#[derive(Default)]
pub struct Audit {
    /// Keys in the store under `kiln:`.
    pub keys: usize,
    /// Job records.
    pub jobs: usize,
    /// Job records by status.
    pub statuses: BTreeMap<String, usize>,
    /// Index keys (no job id in them).
    pub index_keys: Vec<String>,
    /// Idempotency entries whose key more than one job record names, with
    /// those jobs.
    pub duplicates: Vec<(String, Vec<String>)>,
    /// Job records no client was told about.
    pub unknown_jobs: Vec<String>,
    /// Keys that should not be there, with why.
    pub leftovers: Vec<(String, &'static str)>,
    /// Upload chunks kept until their retention bucket is swept: of a
    /// finished job whose processor was killed between recording the
    /// outcome and deleting the upload, or of a submission killed before
    /// its record was written (listed in its bucket first). A known
    /// limitation, reported but not a leftover.
    pub kept_with_job: Vec<String>,
    /// Each job record's status and claims (`attempts`), by id.
    pub job_states: HashMap<String, (String, u64)>,
}

impl Audit {
    /// The number of extra jobs: for each key, its jobs beyond the first.
    pub fn duplicate_jobs(&self) -> usize {
        self.duplicates.iter().map(|(_, jobs)| jobs.len() - 1).sum()
    }
}

/// How many stored jobs are not in the indexes yet (their markers).
pub fn unlisted_markers(url: &str) -> usize {
    let kv = KeyValueStore::redis(url).unwrap_or_else(|e| panic!("reading redis {url}: {e:#}"));
    kv.keys_with_prefix("kiln:unlisted:").len()
}

/// Reads every `kiln:` key of the Redis at `url`. `known_jobs` are the ids
/// the clients were given.
pub fn audit(url: &str, known_jobs: &HashSet<String>) -> Audit {
    let kv = KeyValueStore::redis(url).unwrap_or_else(|e| panic!("reading redis {url}: {e:#}"));
    let keys = kv.keys_with_prefix("kiln:");
    let mut audit = Audit {
        keys: keys.len(),
        ..Audit::default()
    };
    // Job records first: what the other keys are checked against.
    let mut allowed_blob_prefixes: HashMap<String, Vec<String>> = HashMap::new();
    let mut by_entry: HashMap<String, Vec<String>> = HashMap::new();
    let mut live_entries = HashSet::new();
    for key in &keys {
        let Some(id) = key.strip_prefix("kiln:job:") else {
            continue;
        };
        audit.jobs += 1;
        if !known_jobs.contains(id) {
            audit.unknown_jobs.push(id.to_owned());
        }
        let record: serde_json::Value = kv
            .get(key)
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .unwrap_or_default();
        let status = record["status"].as_str().unwrap_or("unreadable").to_owned();
        *audit.statuses.entry(status.clone()).or_default() += 1;
        audit.job_states.insert(
            id.to_owned(),
            (status.clone(), record["attempts"].as_u64().unwrap_or(0)),
        );
        let mut prefixes = Vec::new();
        if let Some(prefix) = record["result"]["blob"]["prefix"].as_str() {
            prefixes.push(format!("{prefix}:"));
        }
        // The upload stays only while the job is unfinished.
        if matches!(status.as_str(), "notStarted" | "running")
            && let Some(prefix) = record["source"]["prefix"].as_str()
        {
            prefixes.push(format!("{prefix}:"));
        }
        allowed_blob_prefixes.insert(id.to_owned(), prefixes);
        if let Some(entry) = record["idempotency_entry"].as_str() {
            by_entry
                .entry(entry.to_owned())
                .or_default()
                .push(id.to_owned());
            live_entries.insert(entry.to_owned());
        }
    }
    audit.duplicates = by_entry
        .into_iter()
        .filter(|(_, jobs)| jobs.len() > 1)
        .collect();
    // Jobs listed in a retention bucket: the sweep deletes what they left
    // when the bucket is due, record or not.
    let scheduled: HashSet<String> = keys
        .iter()
        .filter(|key| key.starts_with("kiln:retention:") && !key.ends_with(":created"))
        .filter_map(|key| kv.get(key))
        .filter_map(|raw| serde_json::from_slice::<Vec<String>>(&raw).ok())
        .flatten()
        .collect();
    for key in &keys {
        if key.starts_with("kiln:job:") {
            continue;
        }
        if let Some(rest) = key.strip_prefix("kiln:blob:") {
            let id = rest.split(':').next().unwrap_or_default();
            let upload = rest.contains(":src");
            let why = match allowed_blob_prefixes.get(id) {
                // Chunks without a record listed for the sweep: not
                // lost. (A submission's chunks and record are one batch,
                // atomic on Redis; an interrupted batch on a store that is
                // not atomic leaves its marker, which the recovery scan
                // settles.)
                None if upload && scheduled.contains(id) => {
                    audit.kept_with_job.push(key.clone());
                    None
                }
                None => Some("chunk of a job that no longer exists"),
                Some(prefixes) if !prefixes.iter().any(|p| key.starts_with(p.as_str())) => {
                    if upload {
                        audit.kept_with_job.push(key.clone());
                        None
                    } else {
                        Some("result chunk the job does not use")
                    }
                }
                Some(_) => None,
            };
            if let Some(why) = why {
                audit.leftovers.push((key.clone(), why));
            }
        } else if key.starts_with("kiln:idempotency:") {
            let entry = key.strip_suffix(":claims").unwrap_or(key);
            let bound_job = kv
                .get(entry)
                .and_then(|raw| serde_json::from_slice::<serde_json::Value>(&raw).ok())
                .and_then(|binding| binding["job"].as_str().map(str::to_owned));
            let job_exists = bound_job
                .as_ref()
                .is_some_and(|id| allowed_blob_prefixes.contains_key(id));
            if !job_exists && !live_entries.contains(entry) {
                audit
                    .leftovers
                    .push((key.clone(), "idempotency key of no existing job"));
            }
        } else if let Some(id) = job_id_in(key) {
            if !allowed_blob_prefixes.contains_key(&id) {
                audit
                    .leftovers
                    .push((key.clone(), "index entry of a job that no longer exists"));
            }
        } else {
            audit.index_keys.push(key.clone());
        }
    }
    audit
}

/// The first UUID-shaped segment of `key`, if any.
fn job_id_in(key: &str) -> Option<String> {
    key.split(':')
        .find(|segment| {
            segment.len() == 36
                && segment.char_indices().all(|(at, c)| {
                    if matches!(at, 8 | 13 | 18 | 23) {
                        c == '-'
                    } else {
                        c.is_ascii_hexdigit()
                    }
                })
        })
        .map(str::to_owned)
}

/// Prints the audit.
pub fn print(audit: &Audit) {
    println!(
        "  store: {} kiln:* keys, {} job records {:?}, {} index keys",
        audit.keys,
        audit.jobs,
        audit.statuses,
        audit.index_keys.len()
    );
    let mut index_families: BTreeMap<String, usize> = BTreeMap::new();
    for key in &audit.index_keys {
        let family: String = key.split(':').take(2).collect::<Vec<_>>().join(":");
        *index_families.entry(family).or_default() += 1;
    }
    println!("  index keys by family: {index_families:?}");
    if !audit.unknown_jobs.is_empty() {
        println!(
            "  job records no client was told about: {} (e.g. {:?})",
            audit.unknown_jobs.len(),
            &audit.unknown_jobs[..audit.unknown_jobs.len().min(5)]
        );
    }
    for (entry, jobs) in audit.duplicates.iter().take(10) {
        println!("  duplicate: {entry} names jobs {jobs:?}");
    }
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, why) in &audit.leftovers {
        *reasons.entry(why).or_default() += 1;
    }
    if !reasons.is_empty() {
        println!("  leftover keys by reason: {reasons:?}");
        for (key, why) in audit.leftovers.iter().take(10) {
            let job = job_id_in(key)
                .and_then(|id| audit.job_states.get(&id))
                .map(|(status, attempts)| format!("; its job is {status}, {attempts} claims"))
                .unwrap_or_default();
            println!("    {key}  ({why}{job})");
        }
    }
}
