//! Rate limits and quotas per client, for submissions: a token bucket that
//! lets a client send `rate_limit_burst` submissions at once and refills at
//! `rate_limit_per_minute`, and a cap on the client's unfinished jobs
//! (`max_unfinished_jobs`). Both are off unless configured.
//!
//! A client is its API key when keys are on, else its address
//! ([`ClientAddress`], which the host gives; an IPv6 address counts by its
//! `/64`, the block one host is given). Each client's state is one key,
//! `kiln:client:{client}`, changed only by compare-and-swap, so instances
//! sharing a store agree to the request. The bucket is kept as the time it
//! is full again (GCRA's "theoretical arrival time"): a refused request
//! writes nothing. A new job's place among the client's unfinished jobs is
//! reserved before its upload is read (so concurrent submissions cannot
//! overshoot the cap), marked stored by a follow-up once it is, and given
//! back when the submission fails or replays an earlier job.
//!
//! - `state`: the stored state and the list of unfinished jobs;
//! - [`fields`]: the `RateLimit-Policy` and `RateLimit` fields;
//! - [`sweep`]: deleting idle clients' state (the store has no expiry). A
//!   client's state costs two keys (its value and the counter that settles
//!   its creation) until the first sweep after it is idle.

pub mod fields;
mod state;
pub mod sweep;

use crate::clock::Timestamp;
use crate::id::JobId;
use crate::idempotency::{self, IdempotencyKey};
use crate::keys;
use crate::kv::{MAX_CAS_ATTEMPTS, contention, create_once};
use crate::problem::Error;
use crate::repo::Jobs;
use crate::runtime::Ctx;
use state::{Entry, State, micros, unfinished_only};
use std::net::IpAddr;
use std::time::Duration;

pub use fields::{policy_field, standing_field};
pub use sweep::sweep;

/// The token bucket's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Submissions a client may make per minute, sustained.
    pub per_minute: u32,
    /// Submissions a client that has been idle may make at once.
    pub burst: u32,
}

impl RateLimit {
    /// The time one submission takes to come back, in microseconds.
    fn interval_us(self) -> u64 {
        (60_000_000 / u64::from(self.per_minute.max(1))).max(1)
    }

    /// The time an empty bucket takes to be full again, in microseconds.
    fn capacity_us(self) -> u64 {
        self.interval_us() * u64::from(self.burst.max(1))
    }

    /// Where a client stands whose bucket is full again `ahead_us` from
    /// now.
    fn standing(self, ahead_us: u64) -> BucketStanding {
        let (interval, capacity) = (self.interval_us(), self.capacity_us());
        let remaining = capacity.saturating_sub(ahead_us) / interval;
        let next_in_us = if remaining >= u64::from(self.burst) {
            0
        } else {
            // One more fits once at most `remaining + 1` intervals remain.
            ahead_us.saturating_sub(capacity - (remaining + 1) * interval)
        };
        BucketStanding {
            remaining,
            next_in_us,
        }
    }
}

/// The client's address, as the host saw it (`kiln-spin` reads Spin's
/// `spin-client-addr`), carried as a request extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// How long a client's state may stay closed by a sweep (about to be
/// deleted) before a submission opens it again: the sweep's instance died
/// in between.
const CLOSED_GRACE: Duration = Duration::from_secs(10);

/// When a client with the most unfinished jobs should try again: a typical
/// photo's job takes a second or two.
const UNFINISHED_RETRY_AFTER: u64 = 2;

/// Where a client stands, for the `RateLimit` field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    /// Its bucket, when there is a rate limit.
    pub bucket: Option<BucketStanding>,
    /// Its unfinished jobs, when there is a cap.
    pub unfinished: Option<UnfinishedStanding>,
}

/// A client's bucket now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketStanding {
    /// Submissions it may make at once.
    pub remaining: u64,
    /// Microseconds until one more comes back (0: the bucket is full).
    pub next_in_us: u64,
}

/// A client's unfinished jobs now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnfinishedStanding {
    /// How many more it may start.
    pub left: u32,
}

/// Why a submission was refused with `429`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The bucket is empty.
    Rate {
        /// Its settings.
        limit: RateLimit,
        /// Microseconds until one more submission fits.
        fits_in_us: u64,
    },
    /// The client has `max` unfinished jobs already.
    Unfinished {
        /// The cap.
        max: u32,
        /// Its bucket, untouched by the refused submission, when there is a
        /// rate limit too.
        bucket: Option<BucketStanding>,
    },
}

impl Refusal {
    /// The `Retry-After` of the `429`, in seconds.
    pub fn retry_after(&self) -> u64 {
        match self {
            Refusal::Rate { fits_in_us, .. } => fields::seconds(*fits_in_us).max(1),
            Refusal::Unfinished { .. } => UNFINISHED_RETRY_AFTER,
        }
    }

    /// Where the refused client stands, for the `429`'s `RateLimit`.
    pub fn standing(&self) -> Standing {
        match *self {
            Refusal::Rate { fits_in_us, .. } => Standing {
                bucket: Some(BucketStanding {
                    remaining: 0,
                    next_in_us: fits_in_us,
                }),
                unfinished: None,
            },
            Refusal::Unfinished { bucket, .. } => Standing {
                bucket,
                unfinished: Some(UnfinishedStanding { left: 0 }),
            },
        }
    }
}

/// A submission let in: where its client stands, and the entry it reserved
/// among the client's unfinished jobs (given back with [`release`] when no
/// job comes of it, marked stored with [`mark_stored`] when one does).
#[derive(Debug, Clone, Default)]
pub struct Admission {
    /// For the response's `RateLimit`.
    pub standing: Standing,
    reserved: Option<Reservation>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Reservation {
    client: String,
    entry: Entry,
}

impl Admission {
    /// What [`mark_stored`] needs once the submission's job is stored.
    pub fn reserved(&self) -> Option<(String, JobId)> {
        let reserved = self.reserved.as_ref()?;
        Some((reserved.client.clone(), reserved.entry.id()))
    }
}

/// The client a submission counts against: its API key's name, or else
/// its address.
pub fn client(address: Option<&ClientAddress>, owner: Option<&str>) -> String {
    if let Some(name) = owner {
        return format!("key:{name}");
    }
    match address.map(|address| address.0.to_canonical()) {
        Some(IpAddr::V4(ip)) => format!("ip:{ip}"),
        Some(IpAddr::V6(ip)) => {
            let [a, b, c, d, ..] = ip.segments();
            format!("ip:{a:x}:{b:x}:{c:x}:{d:x}::/64")
        }
        // Spin always gives one; a host that does not puts every client in
        // one bucket (the submission handler logs it).
        None => "ip:unknown".to_owned(),
    }
}

/// Lets submission `job` by `client` in, counting it against the bucket
/// and reserving its place among the client's unfinished jobs, or refuses
/// it with `429`. Costs nothing when both limits are off; otherwise one
/// read, the reads of the client's listed jobs when there is a cap, and
/// one write when it is let in.
///
/// A client at its cap may still retry a submission whose job exists
/// (`retry`, its `Idempotency-Key`): the retry gets that job, and takes no
/// further place.
pub fn admit(
    ctx: &Ctx<'_>,
    client: &str,
    job: JobId,
    retry: Option<&IdempotencyKey>,
) -> Result<Admission, Error> {
    if !ctx.config.limits_clients() {
        return Ok(Admission::default());
    }
    let (rate, cap) = (ctx.config.rate_limit, ctx.config.max_unfinished_jobs);
    let key = keys::client(client);
    for _ in 0..MAX_CAS_ATTEMPTS {
        let now = ctx.runtime.now();
        let raw = ctx.kv.get(&key)?;
        let mut state = raw.as_deref().map(State::decode).unwrap_or_default();
        if let Some(closed_at) = state.closed_at {
            if now < Timestamp(closed_at).after(CLOSED_GRACE) {
                // A sweep is deleting it: wait, then create it afresh.
                ctx.runtime.sleep(Duration::from_millis(20));
                continue;
            }
            // Its sweep died: open it again, by the same swap as any write.
            state = State::default();
        }
        if state.admitted(job) {
            return Ok(landed(ctx, client, &state, job, now));
        }
        let mut admission = Admission::default();
        // Where the bucket stood before this submission: what a refusal by
        // the cap, which spends no token, reports.
        let mut untouched_bucket = None;
        if let Some(limit) = rate {
            let now_us = micros(now);
            let ahead_us = state.full_at_us.saturating_sub(now_us);
            if ahead_us + limit.interval_us() > limit.capacity_us() {
                // Refused: nothing is written, the bucket stays as it is.
                let fits_in_us = ahead_us - (limit.capacity_us() - limit.interval_us());
                return Err(Error::RateLimited(Refusal::Rate { limit, fits_in_us }));
            }
            untouched_bucket = Some(limit.standing(ahead_us));
            state.full_at_us = now_us + ahead_us + limit.interval_us();
            admission.standing.bucket = Some(limit.standing(ahead_us + limit.interval_us()));
        }
        if let Some(max) = cap {
            unfinished_only(ctx, &mut state.jobs, now)?;
            if state.jobs.len() < max as usize {
                let entry = Entry::Reserved(job, now);
                state.jobs.push(entry.to_string());
                admission.reserved = Some(Reservation {
                    client: client.to_owned(),
                    entry,
                });
            } else if !retries_a_stored_job(ctx, retry, now)? {
                return Err(Error::RateLimited(Refusal::Unfinished {
                    max,
                    bucket: untouched_bucket,
                }));
            }
            admission.standing.unfinished = Some(unfinished_standing(max, &state));
        }
        state.remember(job);
        let encoded = state.encode()?;
        let stored = match &raw {
            Some(raw) => ctx.kv.compare_and_swap(&key, raw, &encoded)?,
            None => create_once(ctx.kv, &key, &encoded)?,
        };
        if stored {
            return Ok(admission);
        }
    }
    Err(contention(&key).into())
}

fn unfinished_standing(max: u32, state: &State) -> UnfinishedStanding {
    let left = (max as usize).saturating_sub(state.jobs.len());
    UnfinishedStanding {
        left: u32::try_from(left).unwrap_or(0),
    }
}

/// The admission of a submission whose write landed though the store said
/// otherwise, from the state as it is now.
fn landed(ctx: &Ctx<'_>, client: &str, state: &State, job: JobId, now: Timestamp) -> Admission {
    let entry = state
        .jobs
        .iter()
        .filter_map(|text| Entry::parse(text))
        .find(|entry| entry.id() == job);
    Admission {
        standing: Standing {
            bucket: ctx
                .config
                .rate_limit
                .map(|limit| limit.standing(state.full_at_us.saturating_sub(micros(now)))),
            unfinished: ctx
                .config
                .max_unfinished_jobs
                .map(|max| unfinished_standing(max, state)),
        },
        reserved: entry.map(|entry| Reservation {
            client: client.to_owned(),
            entry,
        }),
    }
}

/// Whether `retry` names a job that exists: the submission is then a
/// replay (or a `422` for another request under the key), not a new job.
fn retries_a_stored_job(
    ctx: &Ctx<'_>,
    retry: Option<&IdempotencyKey>,
    now: Timestamp,
) -> Result<bool, Error> {
    let Some(key) = retry else {
        return Ok(false);
    };
    let Some((_, binding)) = idempotency::lookup(ctx.kv, key)? else {
        return Ok(false);
    };
    Ok(Jobs::new(ctx.kv).get(binding.job, now)?.is_some())
}

/// Gives back the entry an admission reserved, when no new job came of
/// the submission (refused, or replayed an earlier job), and counts it in
/// the admission's standing. Best effort: an entry left behind is dropped
/// after a grace period.
pub fn release(ctx: &Ctx<'_>, admission: &mut Admission) {
    let Some(reserved) = admission.reserved.take() else {
        return;
    };
    let entry = reserved.entry.to_string();
    let released = change_jobs(ctx, &reserved.client, |jobs| {
        jobs.retain(|text| *text != entry);
    });
    match released {
        Ok(()) => {
            if let Some(unfinished) = &mut admission.standing.unfinished {
                unfinished.left += 1;
            }
        }
        Err(err) => ctx.runtime.log(&format!(
            "giving back the place of {} failed: {err}",
            reserved.entry
        )),
    }
}

/// Marks `job`'s entry among `client`'s unfinished jobs as stored (a
/// follow-up of its submission), so that once its record is gone
/// (deleted, expired) the entry goes at once rather than after the grace
/// that covers uploads still being read.
pub fn mark_stored(ctx: &Ctx<'_>, client: &str, job: JobId) -> Result<(), Error> {
    let stored = Entry::Stored(job).to_string();
    change_jobs(ctx, client, |jobs| {
        for text in jobs.iter_mut() {
            if Entry::parse(text).is_some_and(|entry| entry.id() == job) {
                text.clone_from(&stored);
            }
        }
    })
}

/// Applies `change` to `client`'s list of unfinished jobs until the swap
/// holds, unless the state is gone, closed, or left unchanged.
fn change_jobs(
    ctx: &Ctx<'_>,
    client: &str,
    change: impl Fn(&mut Vec<String>),
) -> Result<(), Error> {
    let key = keys::client(client);
    for _ in 0..MAX_CAS_ATTEMPTS {
        let Some(raw) = ctx.kv.get(&key)? else {
            return Ok(());
        };
        let mut state = State::decode(&raw);
        let before = state.jobs.clone();
        change(&mut state.jobs);
        if state.closed_at.is_some() || state.jobs == before {
            return Ok(());
        }
        if ctx.kv.compare_and_swap(&key, &raw, &state.encode()?)? {
            return Ok(());
        }
    }
    Err(contention(&key).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::kv::{KvError, KvStore, MemoryKv};
    use crate::runtime::tests::FixedClock;
    use std::cell::Cell;

    fn from(address: &str) -> String {
        let ip = address
            .parse::<std::net::SocketAddr>()
            .map(|a| a.ip())
            .or_else(|_| address.parse())
            .unwrap();
        client(Some(&ClientAddress(ip)), None)
    }

    #[test]
    fn a_client_is_its_key_or_else_its_address_by_64_for_ipv6() {
        let address = ClientAddress("192.0.2.1".parse().unwrap());
        assert_eq!(client(Some(&address), Some("ci")), "key:ci");
        assert_eq!(from("192.0.2.1:80"), "ip:192.0.2.1");
        assert_eq!(from("[::ffff:192.0.2.1]:80"), "ip:192.0.2.1");
        assert_eq!(from("[2001:db8:a:b:c:d:e:f]:80"), "ip:2001:db8:a:b::/64");
        assert_eq!(from("[::1]:80"), "ip:0:0:0:0::/64");
        assert_eq!(client(None, None), "ip:unknown");
    }

    /// `t` is when the next submission comes back: 0 with a full bucket;
    /// `r` what fits now.
    #[test]
    fn a_standing_counts_what_fits_and_when_the_next_comes_back() {
        let limit = RateLimit {
            per_minute: 6,
            burst: 3,
        };
        let standing = |ahead_s: f64| {
            let s = limit.standing((ahead_s * 1e6) as u64);
            (s.remaining, s.next_in_us as f64 / 1e6)
        };
        assert_eq!(standing(0.0), (3, 0.0));
        assert_eq!(standing(10.0), (2, 10.0));
        assert_eq!(standing(12.5), (1, 2.5));
        assert_eq!(standing(30.0), (0, 10.0));
    }

    #[test]
    fn the_fields_follow_the_drafts_syntax() {
        let limit = RateLimit {
            per_minute: 7,
            burst: 10,
        };
        assert_eq!(
            policy_field(Some(limit), Some(3)).unwrap(),
            r#""submissions";q=10;w=86, "unfinished-jobs";q=3;qu="concurrent-requests""#
        );
        assert_eq!(policy_field(None, None), None);
        let standing = Standing {
            bucket: Some(BucketStanding {
                remaining: 4,
                next_in_us: 50_000_001,
            }),
            unfinished: Some(UnfinishedStanding { left: 1 }),
        };
        assert_eq!(
            standing_field(&standing).unwrap(),
            r#""submissions";r=4;t=51, "unfinished-jobs";r=1"#
        );
    }

    /// A store that writes every swap but reports the first `lies` of them
    /// as failed, as Spin's Redis store does (and a swap overtaken at once
    /// by another writer reads as failed through the Spin adapter).
    struct Misreporting {
        kv: MemoryKv,
        lies: Cell<usize>,
    }

    impl KvStore for Misreporting {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
            self.kv.get(key)
        }
        fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
            self.kv.set(key, value)
        }
        fn delete(&self, key: &str) -> Result<(), KvError> {
            self.kv.delete(key)
        }
        fn compare_and_swap(
            &self,
            key: &str,
            expected: &[u8],
            new: &[u8],
        ) -> Result<bool, KvError> {
            let swapped = self.kv.compare_and_swap(key, expected, new)?;
            if swapped && self.lies.get() > 0 {
                self.lies.set(self.lies.get() - 1);
                return Ok(false);
            }
            Ok(swapped)
        }
        fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
            self.kv.increment(key, delta)
        }
        fn keys_starting_with(&self, prefix: &str) -> Result<Vec<String>, KvError> {
            self.kv.keys_starting_with(prefix)
        }
    }

    /// A submission whose swap landed though reported as failed counts once:
    /// a burst of 3 lets 3 in, each reserving one place.
    #[test]
    fn a_swap_that_landed_though_reported_failed_counts_once() {
        let kv = Misreporting {
            kv: MemoryKv::new(),
            lies: Cell::new(0),
        };
        let clock = FixedClock::at(1_000_000);
        let config = Config {
            rate_limit: Some(RateLimit {
                per_minute: 1,
                burst: 3,
            }),
            max_unfinished_jobs: Some(5),
            ..Config::default()
        };
        let ctx = Ctx {
            kv: &kv,
            runtime: &clock,
            config: (&config).into(),
            pipeline: None,
        };
        let mut admitted = Vec::new();
        for _ in 0..4 {
            // The first write creates the state; every later swap lies.
            kv.lies.set(1);
            admitted.push(admit(&ctx, "ip:192.0.2.1", JobId::random(), None));
        }
        let standings: Vec<_> = admitted
            .iter()
            .map(|a| a.as_ref().map(|a| a.standing.bucket.unwrap().remaining))
            .collect();
        assert_eq!(standings[..3], [Ok(2), Ok(1), Ok(0)], "{admitted:?}");
        assert!(
            matches!(admitted[3], Err(Error::RateLimited(Refusal::Rate { .. }))),
            "{:?}",
            admitted[3]
        );
        let state = State::decode(&kv.get("kiln:client:ip:192.0.2.1").unwrap().unwrap());
        assert_eq!(state.jobs.len(), 3, "{state:?}");
        assert!(
            admitted[..3]
                .iter()
                .all(|a| a.as_ref().unwrap().reserved.is_some())
        );
    }
}
