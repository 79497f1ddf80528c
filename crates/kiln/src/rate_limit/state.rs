//! One client's state as stored, and its list of unfinished jobs.

use crate::clock::Timestamp;
use crate::id::JobId;
use crate::kv::KvError;
use crate::problem::Error;
use crate::repo::Jobs;
use crate::runtime::Ctx;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long an entry reserved for a job not yet known to be stored counts
/// while the job's record is missing: the submission may still be reading
/// its upload. Past it, the entry of an instance that died mid-request is
/// dropped (a slower upload may then overshoot the cap by one).
const RESERVATION_GRACE: Duration = Duration::from_secs(2 * 60);

/// How many of the last submissions let in a client's state remembers:
/// more than one submission of one client plausibly arrives at the same
/// instant.
const RECENT: usize = 16;

/// One client's state, as stored under `kiln:client:{client}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct State {
    /// When the bucket is full again, in microseconds since the epoch (0:
    /// full): the rate's "theoretical arrival time" (GCRA).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(super) full_at_us: u64,
    /// The client's unfinished jobs (see [`Entry`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) jobs: Vec<String>,
    /// The ids of the last submissions let in, newest last: one that finds
    /// its own id here was let in already, by a swap the store reported as
    /// failed though it wrote (Spin's Redis store does).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) recent: Vec<String>,
    /// Set by a sweep about to delete this state (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) closed_at: Option<u64>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl State {
    pub(super) fn decode(raw: &[u8]) -> State {
        // Unreadable state (a store shared with an older Kiln) starts over.
        serde_json::from_slice(raw).unwrap_or_default()
    }

    pub(super) fn encode(&self) -> Result<Vec<u8>, KvError> {
        serde_json::to_vec(self).map_err(|e| KvError(e.to_string()))
    }

    /// Whether submission `id` was let in already.
    pub(super) fn admitted(&self, id: JobId) -> bool {
        self.recent.iter().any(|recent| *recent == id.to_string())
    }

    /// Remembers that submission `id` is let in.
    pub(super) fn remember(&mut self, id: JobId) {
        self.recent.push(id.to_string());
        let excess = self.recent.len().saturating_sub(RECENT);
        self.recent.drain(..excess);
    }

    /// Whether the client has nothing left to count: its bucket is full and
    /// it has no unfinished job.
    pub(super) fn is_idle(&self, now: Timestamp) -> bool {
        self.full_at_us <= micros(now) && self.jobs.is_empty()
    }
}

/// A job in a client's list: reserved for a submission that has not been
/// stored yet (`id@reserved_ms`), or stored (`id`), as the follow-up after
/// its answer marks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Entry {
    Reserved(JobId, Timestamp),
    Stored(JobId),
}

impl Entry {
    pub(super) fn parse(text: &str) -> Option<Entry> {
        match text.split_once('@') {
            Some((id, at)) => Some(Entry::Reserved(
                JobId::parse(id).ok()?,
                Timestamp(at.parse().ok()?),
            )),
            None => JobId::parse(text).ok().map(Entry::Stored),
        }
    }

    pub(super) fn id(self) -> JobId {
        match self {
            Entry::Reserved(id, _) | Entry::Stored(id) => id,
        }
    }
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::Reserved(id, at) => write!(f, "{id}@{}", at.0),
            Entry::Stored(id) => write!(f, "{id}"),
        }
    }
}

/// Drops the entries of jobs that have finished, and of jobs whose record
/// is gone (deleted or expired) once stored, or that were reserved more
/// than [`RESERVATION_GRACE`] ago and never stored. One read per entry.
pub(super) fn unfinished_only(
    ctx: &Ctx<'_>,
    jobs: &mut Vec<String>,
    now: Timestamp,
) -> Result<(), Error> {
    let records = Jobs::new(ctx.kv);
    let mut kept = Vec::with_capacity(jobs.len());
    for text in jobs.drain(..) {
        let Some(entry) = Entry::parse(&text) else {
            continue;
        };
        let unfinished = match (records.get(entry.id(), now)?, entry) {
            (Some(job), _) => !job.status.is_terminal(),
            (None, Entry::Reserved(_, at)) => now < at.after(RESERVATION_GRACE),
            (None, Entry::Stored(_)) => false,
        };
        if unfinished {
            kept.push(text);
        }
    }
    *jobs = kept;
    Ok(())
}

/// `now` in microseconds, the bucket's unit: whole milliseconds would
/// round a high rate's interval by up to half of it.
pub(super) fn micros(now: Timestamp) -> u64 {
    now.0.saturating_mul(1000)
}
