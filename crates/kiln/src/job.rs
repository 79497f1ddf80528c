//! The job record and its state machine.
//!
//! ```text
//! notStarted ──claim──▶ running ──succeed──▶ succeeded
//!     │                  │  ▲ └────fail────▶ failed
//!     │                  └──┘ claim again once the lease expired
//!     └──────cancel──────┴──────────────────▶ canceled
//! ```
//! Every transition is a pure function from one record to the next; the
//! repository applies it with compare-and-swap, so two writers can never
//! both win.

use crate::blob::BlobRef;
use crate::clock::Timestamp;
use crate::id::JobId;
use crate::problem::Problem;
use crate::webhook::Delivery;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    /// Accepted and stored, waiting for a processor.
    NotStarted,
    /// A processor holds the job's lease.
    Running,
    /// The result image is stored.
    Succeeded,
    /// Processing failed; `error` says why.
    Failed,
    /// The client canceled the job before it finished.
    Canceled,
}

impl Status {
    /// Whether the job can no longer change.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Succeeded | Status::Failed | Status::Canceled)
    }
}

/// A processor's exclusive, time-limited hold on a running job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Identifies the holder; only it may report progress or an outcome.
    pub token: String,
    /// After this the holder is presumed dead and the job may be claimed again.
    pub expires_at: Timestamp,
}

/// The stored result of a succeeded job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    /// Where the bytes are.
    pub blob: BlobRef,
    /// `image/png`, ...
    pub media_type: String,
    /// Strong entity tag of the bytes, quoted.
    pub etag: String,
    /// Pixel width.
    pub width: u32,
    /// Pixel height.
    pub height: u32,
    /// What the client should know about how it was made (the image is
    /// still the job's result).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ResultWarning>,
}

/// A warning on a succeeded job's result, shown in its operation as
/// `{"type": "urn:kiln:warning:…", "detail": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultWarning {
    /// `urn:kiln:warning:` and the pipeline's name for the kind.
    #[serde(rename = "type")]
    pub type_: String,
    /// What happened, for a person.
    pub detail: String,
}

impl From<&kiln_image::Warning> for ResultWarning {
    fn from(warning: &kiln_image::Warning) -> ResultWarning {
        ResultWarning {
            type_: format!("urn:kiln:warning:{}", warning.kind()),
            detail: warning.to_string(),
        }
    }
}

/// One image-processing job: the operation resource and, once it succeeded,
/// the image resource (both share the job's id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The job's id.
    pub id: JobId,
    /// Where the job is in its life.
    pub status: Status,
    /// When it was accepted.
    pub created_at: Timestamp,
    /// When its record last changed.
    pub last_updated_at: Timestamp,
    /// When it and its images are deleted.
    pub expires_at: Timestamp,
    /// Progress while running, 100 once succeeded.
    pub percent_complete: Option<u8>,
    /// The operations, in their canonical text form.
    pub ops: String,
    /// The uploaded image.
    pub source: BlobRef,
    /// The uploaded image's media type.
    pub source_media_type: String,
    /// The result, once succeeded.
    pub result: Option<ImageRef>,
    /// Why it failed, once failed.
    pub error: Option<Problem>,
    /// The current processor's lease, while running.
    pub lease: Option<Lease>,
    /// How many times a processor claimed it.
    pub attempts: u32,
    /// When a processor was last asked to run it.
    pub dispatched_at: Timestamp,
    /// The key of its `Idempotency-Key` entry, if it was submitted with one.
    pub idempotency_entry: Option<String>,
    /// Counts the changes a client can see (1 when created): the id of the
    /// operation's Server-Sent Events, so a reconnecting client resumes
    /// after the last one it saw.
    #[serde(default)]
    pub version: u64,
    /// Where to POST the event when it finishes, and how that went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Delivery>,
    /// Which shard of the pending, queue and retention indexes lists the
    /// job, fixed when it is created (so a later change of `index_shards`
    /// still finds its entries to remove them).
    #[serde(default)]
    pub index_shard: u32,
    /// The name of the API key that created it, when keys are on: only
    /// that key may cancel or delete it (see [`crate::access`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Whether reading it needs its key (`api_keys_for_reads` was on when
    /// it was created).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reads_need_key: bool,
}

/// What a processor's claim on a job came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The job is now running under the caller's lease.
    Claimed(Job),
    /// The job crashed its processors too often and is now failed.
    GaveUp(Job),
    /// Someone else holds a live lease, or the job is finished.
    Refused,
}

impl Job {
    /// Whether the job's retention has run out.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }

    /// Whether the job needs a processor: it was never picked up within one
    /// lease of being dispatched, or its processor's lease ran out.
    pub fn needs_dispatch(&self, now: Timestamp, lease: Duration) -> bool {
        match self.status {
            Status::NotStarted => now >= self.dispatched_at.after(lease),
            Status::Running => self.lease.as_ref().is_none_or(|l| now >= l.expires_at),
            _ => false,
        }
    }

    /// Whether a processor may take the job: it never started, or its
    /// processor's lease ran out.
    pub fn is_claimable(&self, now: Timestamp) -> bool {
        match self.status {
            Status::NotStarted => true,
            Status::Running => self.lease.as_ref().is_none_or(|l| now >= l.expires_at),
            _ => false,
        }
    }

    /// Takes the job for a processor identified by `token`.
    pub fn claim(&self, token: &str, now: Timestamp, lease: Duration, max_attempts: u32) -> Claim {
        if !self.is_claimable(now) {
            return Claim::Refused;
        }
        if self.attempts >= max_attempts {
            let mut next = self.ended(Status::Failed, now);
            next.percent_complete = None;
            next.error = Some(crate::problem::Problem {
                type_: format!("{}processing-crashed", crate::problem::PROBLEM_TYPE_PREFIX),
                title: "Processing failed".into(),
                status: 500,
                detail: Some(format!(
                    "processing stopped unexpectedly {} times; giving up",
                    self.attempts
                )),
                operation: None,
            });
            return Claim::GaveUp(next);
        }
        let mut next = self.touched(now);
        next.status = Status::Running;
        next.attempts += 1;
        next.percent_complete = Some(0);
        next.lease = Some(Lease {
            token: token.to_owned(),
            expires_at: now.after(lease),
        });
        Claim::Claimed(next)
    }

    /// Records progress and renews the lease, if `token` still holds it
    /// and it has not run out: a processor that was silent past its lease
    /// may have lost its slot to another job, so it must stop (the job is
    /// queued again and rerun) rather than run beside the bound.
    pub fn progress(
        &self,
        token: &str,
        percent: u8,
        now: Timestamp,
        lease: Duration,
    ) -> Option<Job> {
        let live = self.lease.as_ref().is_some_and(|l| now < l.expires_at);
        (self.is_held_by(token) && live).then(|| {
            let mut next = self.touched(now);
            next.percent_complete = Some(percent.min(99));
            next.lease = Some(Lease {
                token: token.to_owned(),
                expires_at: now.after(lease),
            });
            next
        })
    }

    /// Gives the job back, if `token` still holds the lease: its lease ends
    /// now, so that the next dispatch claims it afresh, and this claim does
    /// not count as a crash towards `max_attempts`.
    pub fn release(&self, token: &str, now: Timestamp) -> Option<Job> {
        self.is_held_by(token).then(|| {
            let mut next = self.touched(now);
            next.attempts = next.attempts.saturating_sub(1);
            next.lease = Some(Lease {
                token: token.to_owned(),
                expires_at: now,
            });
            next
        })
    }

    /// Records the result, if `token` still holds the lease.
    pub fn succeed(&self, token: &str, result: ImageRef, now: Timestamp) -> Option<Job> {
        self.is_held_by(token).then(|| {
            let mut next = self.ended(Status::Succeeded, now);
            next.percent_complete = Some(100);
            next.result = Some(result);
            next
        })
    }

    /// Records why processing failed, if `token` still holds the lease.
    pub fn fail(&self, token: &str, error: Problem, now: Timestamp) -> Option<Job> {
        self.is_held_by(token).then(|| {
            let mut next = self.ended(Status::Failed, now);
            next.error = Some(error);
            next
        })
    }

    /// Cancels an unfinished job; `None` if it already finished.
    pub fn cancel(&self, now: Timestamp) -> Option<Job> {
        (!self.status.is_terminal()).then(|| self.ended(Status::Canceled, now))
    }

    /// Whether the job runs under the lease of `token`.
    pub fn is_held_by(&self, token: &str) -> bool {
        self.status == Status::Running && self.lease.as_ref().is_some_and(|l| l.token == token)
    }

    /// The job finished at `now` in `status`: no lease any more, and its
    /// webhook's event due.
    fn ended(&self, status: Status, now: Timestamp) -> Job {
        let mut next = self.touched(now);
        next.status = status;
        next.lease = None;
        next.webhook = next.webhook.map(|webhook| webhook.scheduled(now));
        next
    }

    /// Whether an attempt at the job's webhook is due at `now` (which
    /// implies the job finished: a delivery is pending only from then).
    pub fn webhook_due(&self, now: Timestamp) -> bool {
        self.webhook.as_ref().is_some_and(|w| w.is_due(now))
    }

    /// Whether the job still needs someone's attention: it is unfinished,
    /// or its webhook is not delivered (nor given up on) yet.
    pub fn is_open(&self) -> bool {
        !self.status.is_terminal() || self.webhook.as_ref().is_some_and(Delivery::is_open)
    }

    fn touched(&self, now: Timestamp) -> Job {
        let mut next = self.clone();
        next.last_updated_at = now;
        next.version += 1;
        next
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(60);

    pub(crate) fn new_job(now: Timestamp) -> Job {
        let id = JobId::random();
        Job {
            id,
            status: Status::NotStarted,
            created_at: now,
            last_updated_at: now,
            expires_at: now.after(Duration::from_secs(3600)),
            percent_complete: None,
            ops: String::new(),
            source: BlobRef {
                prefix: format!("kiln:blob:{id}:src"),
                len: 0,
                chunks: 0,
            },
            source_media_type: "image/png".into(),
            result: None,
            error: None,
            lease: None,
            attempts: 0,
            dispatched_at: now,
            version: 1,
            idempotency_entry: None,
            webhook: None,
            index_shard: 0,
            owner: None,
            reads_need_key: false,
        }
    }

    fn claimed(job: &Job, token: &str, now: Timestamp) -> Job {
        match job.claim(token, now, LEASE, 3) {
            Claim::Claimed(job) => job,
            other => panic!("expected a claim, got {other:?}"),
        }
    }

    #[test]
    fn claiming_a_new_job_starts_it_under_a_lease() {
        let job = claimed(&new_job(Timestamp(0)), "a", Timestamp(5));
        assert_eq!(job.status, Status::Running);
        assert_eq!(job.attempts, 1);
        assert_eq!(job.lease.unwrap().expires_at, Timestamp(60_005));
    }

    #[test]
    fn a_running_job_with_a_live_lease_cannot_be_claimed() {
        let job = claimed(&new_job(Timestamp(0)), "a", Timestamp(0));
        assert_eq!(job.claim("b", Timestamp(59_999), LEASE, 3), Claim::Refused);
    }

    #[test]
    fn a_running_job_whose_lease_expired_can_be_claimed_again() {
        let job = claimed(&new_job(Timestamp(0)), "a", Timestamp(0));
        let again = claimed(&job, "b", Timestamp(60_000));
        assert_eq!(again.attempts, 2);
        assert_eq!(again.lease.unwrap().token, "b");
    }

    #[test]
    fn a_job_that_keeps_crashing_is_failed_after_max_attempts() {
        let mut job = new_job(Timestamp(0));
        for attempt in 0..3 {
            job = claimed(&job, "t", Timestamp(attempt * 60_000));
        }
        match job.claim("t", Timestamp(180_000), LEASE, 3) {
            Claim::GaveUp(failed) => {
                assert_eq!(failed.status, Status::Failed);
                assert_eq!(failed.error.unwrap().status, 500);
            }
            other => panic!("expected GaveUp, got {other:?}"),
        }
    }

    #[test]
    fn finished_jobs_cannot_be_claimed_or_canceled() {
        let job = claimed(&new_job(Timestamp(0)), "a", Timestamp(0));
        let done = job
            .fail("a", Error::Internal("x".into()).to_problem(), Timestamp(1))
            .unwrap();
        assert_eq!(
            done.claim("b", Timestamp(1_000_000), LEASE, 3),
            Claim::Refused
        );
        assert_eq!(done.cancel(Timestamp(2)), None);
    }

    use crate::problem::Error;

    #[test]
    fn only_the_lease_holder_may_report_an_outcome() {
        let job = claimed(&new_job(Timestamp(0)), "a", Timestamp(0));
        let problem = Error::Internal("x".into()).to_problem();
        assert_eq!(job.fail("b", problem.clone(), Timestamp(1)), None);
        assert_eq!(job.progress("b", 50, Timestamp(1), LEASE), None);
        assert!(job.fail("a", problem, Timestamp(1)).is_some());
    }

    #[test]
    fn a_lease_that_ran_out_is_not_renewed() {
        let job = claimed(&new_job(Timestamp(0)), "a", Timestamp(0));
        assert_eq!(job.progress("a", 50, Timestamp(60_000), LEASE), None);
    }

    #[test]
    fn progress_renews_the_lease() {
        let job = claimed(&new_job(Timestamp(0)), "a", Timestamp(0));
        let later = job.progress("a", 40, Timestamp(50_000), LEASE).unwrap();
        assert_eq!(later.percent_complete, Some(40));
        assert_eq!(later.lease.unwrap().expires_at, Timestamp(110_000));
    }

    #[test]
    fn a_released_job_can_be_claimed_at_once_without_counting_a_crash() {
        let job = claimed(&new_job(Timestamp(0)), "a", Timestamp(0));
        let released = job.release("a", Timestamp(10)).unwrap();
        assert!(released.needs_dispatch(Timestamp(10), LEASE));
        let again = claimed(&released, "b", Timestamp(10));
        assert_eq!(again.attempts, 1);
        assert_eq!(job.release("b", Timestamp(10)), None);
    }

    #[test]
    fn a_canceled_job_rejects_its_processors_result() {
        let job = claimed(&new_job(Timestamp(0)), "a", Timestamp(0));
        let canceled = job.cancel(Timestamp(1)).unwrap();
        assert_eq!(canceled.status, Status::Canceled);
        assert_eq!(canceled.progress("a", 50, Timestamp(2), LEASE), None);
    }

    #[test]
    fn a_new_job_needs_dispatch_only_after_one_lease_without_pickup() {
        let job = new_job(Timestamp(0));
        assert!(!job.needs_dispatch(Timestamp(59_999), LEASE));
        assert!(job.needs_dispatch(Timestamp(60_000), LEASE));
    }

    #[test]
    fn status_serializes_in_camel_case() {
        assert_eq!(
            serde_json::to_string(&Status::NotStarted).unwrap(),
            "\"notStarted\""
        );
    }
}
