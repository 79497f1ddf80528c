//! A job's webhook delivery, kept in its record: the state machine of an
//! at-least-once delivery with exponential backoff, as pure functions
//! (the repository applies them with compare-and-swap, like the job's own).
//!
//! ```text
//! waiting ──job finishes──▶ pending ──2xx──▶ delivered
//!                            │  ▲ └──error, attempts left──┐
//!                            │  └────────backoff───────────┘
//!                            └──error, no attempts left──▶ failed
//! ```
//! An attempt is claimed before it is sent (`in_flight_until`), so two
//! instances finding the same due delivery send it once; if the sender dies,
//! the claim runs out and the next request sends it again.

use crate::clock::Timestamp;
use crate::id::JobId;
use crate::job::Status;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeliveryStatus {
    /// The job has not finished: nothing to tell yet.
    Waiting,
    /// The event is to be sent (again) from `nextAttemptAt`.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed; `lastError` says how the last one did.
    Failed,
}

/// How often and how soon a failed delivery is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles after each.
    pub first_wait: Duration,
    /// The longest wait between two attempts.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    /// Twelve attempts over about 34 minutes (1 s, 2 s, 4 s … 1,024 s
    /// apart): a receiver restarting or briefly down gets its event, a quick
    /// 5xx is retried within seconds, and the last attempt still falls well
    /// inside the shortest retention a profile sets (1 h).
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 12,
            first_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempts`-th failed attempt.
    fn wait_after(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        self.first_wait
            .saturating_mul(1 << doublings)
            .min(self.max_wait)
    }
}

/// A job's webhook: where to send its event, and how that went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The receiver, as the client gave it (checked at submission).
    pub url: String,
    /// Where the delivery is.
    pub status: DeliveryStatus,
    /// Attempts started so far.
    pub attempts: u32,
    /// How the last failed attempt failed.
    pub last_error: Option<String>,
    /// When the job finished: the event's time, the same in every attempt.
    pub event_at: Option<Timestamp>,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<Timestamp>,
    /// While an attempt is being sent: when it is presumed lost.
    pub in_flight_until: Option<Timestamp>,
}

impl Delivery {
    /// A delivery to `url`, waiting for its job to finish.
    pub fn new(url: String) -> Delivery {
        Delivery {
            url,
            status: DeliveryStatus::Waiting,
            attempts: 0,
            last_error: None,
            event_at: None,
            next_attempt_at: None,
            in_flight_until: None,
        }
    }

    /// Its job finished at `now`: the event is due at once.
    pub fn scheduled(&self, now: Timestamp) -> Delivery {
        let mut next = self.clone();
        if next.status == DeliveryStatus::Waiting {
            next.status = DeliveryStatus::Pending;
            next.event_at = Some(now);
            next.next_attempt_at = Some(now);
        }
        next
    }

    /// Whether the event has yet to be delivered or given up on.
    pub fn is_open(&self) -> bool {
        matches!(
            self.status,
            DeliveryStatus::Waiting | DeliveryStatus::Pending
        )
    }

    /// Whether an attempt should be sent now: pending, its time come, and
    /// no other attempt under way.
    pub fn is_due(&self, now: Timestamp) -> bool {
        self.status == DeliveryStatus::Pending
            && self.next_attempt_at.is_some_and(|at| now >= at)
            && self.in_flight_until.is_none_or(|until| now >= until)
    }

    /// Claims an attempt that must be over by `now + timeout`.
    pub fn started(&self, now: Timestamp, timeout: Duration) -> Delivery {
        let mut next = self.clone();
        next.attempts += 1;
        next.in_flight_until = Some(now.after(timeout));
        next
    }

    /// The receiver took the event.
    pub fn delivered(&self) -> Delivery {
        let mut next = self.clone();
        next.status = DeliveryStatus::Delivered;
        next.next_attempt_at = None;
        next.in_flight_until = None;
        next.last_error = None;
        next
    }

    /// The attempt failed with `error`: try again after the policy's wait,
    /// or give up once the attempts are spent.
    pub fn failed(&self, now: Timestamp, error: String, policy: &RetryPolicy) -> Delivery {
        let mut next = self.clone();
        next.in_flight_until = None;
        next.last_error = Some(error);
        if next.attempts >= policy.max_attempts {
            next.status = DeliveryStatus::Failed;
            next.next_attempt_at = None;
        } else {
            next.next_attempt_at = Some(now.after(policy.wait_after(next.attempts)));
        }
        next
    }
}

/// The event type a finished job's status gives.
pub fn event_type(status: Status) -> Option<&'static str> {
    match status {
        Status::Succeeded => Some("operation.succeeded"),
        Status::Failed => Some("operation.failed"),
        Status::Canceled => Some("operation.canceled"),
        Status::NotStarted | Status::Running => None,
    }
}

/// The `webhook-id` of a job's event: one event per job, so the job's id
/// names it, the same in every attempt (receivers deduplicate on it).
pub fn event_id(job: JobId) -> String {
    format!("msg_{}", job.to_string().replace('-', ""))
}

/// The event's JSON: its type, when it happened, and `data`.
pub fn event_body(kind: &str, at: Timestamp, data: serde_json::Value) -> Vec<u8> {
    let event = serde_json::json!({
        "type": kind,
        "timestamp": at.to_rfc3339(),
        "data": data,
    });
    serde_json::to_vec(&event).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 4,
        first_wait: Duration::from_secs(1),
        max_wait: Duration::from_secs(3),
    };

    fn pending_at(now: Timestamp) -> Delivery {
        Delivery::new("http://127.0.0.1:9/hook".into()).scheduled(now)
    }

    #[test]
    fn nothing_is_due_until_the_job_finishes() {
        let waiting = Delivery::new("http://127.0.0.1:9/hook".into());
        assert!(!waiting.is_due(Timestamp(u64::MAX)));
        assert!(waiting.is_open());
        let pending = waiting.scheduled(Timestamp(5_000));
        assert!(pending.is_due(Timestamp(5_000)));
        assert_eq!(pending.event_at, Some(Timestamp(5_000)));
        // Finishing again (it cannot, but a retry of the same write can
        // replay) does not move the event's time.
        assert_eq!(pending.scheduled(Timestamp(9_000)), pending);
    }

    #[test]
    fn an_attempt_under_way_is_not_sent_twice_until_it_is_presumed_lost() {
        let started = pending_at(Timestamp(0)).started(Timestamp(0), Duration::from_secs(10));
        assert_eq!(started.attempts, 1);
        assert!(!started.is_due(Timestamp(9_999)));
        assert!(started.is_due(Timestamp(10_000)));
    }

    #[test]
    fn failures_back_off_exponentially_up_to_the_cap_then_give_up() {
        let mut delivery = pending_at(Timestamp(0));
        let mut now = Timestamp(0);
        let mut waits = Vec::new();
        while delivery.status == DeliveryStatus::Pending {
            assert!(delivery.is_due(now));
            delivery = delivery.started(now, Duration::from_secs(10)).failed(
                now,
                "answered 500".into(),
                &POLICY,
            );
            if let Some(at) = delivery.next_attempt_at {
                assert!(!delivery.is_due(Timestamp(at.0 - 1)));
                waits.push(now.until(at).as_secs());
                now = at;
            }
        }
        assert_eq!(waits, [1, 2, 3]);
        assert_eq!(delivery.status, DeliveryStatus::Failed);
        assert_eq!(delivery.attempts, 4);
        assert_eq!(delivery.last_error.as_deref(), Some("answered 500"));
        assert!(!delivery.is_open());
        assert!(!delivery.is_due(Timestamp(u64::MAX)));
    }

    #[test]
    fn a_delivered_event_is_closed_and_keeps_its_attempts() {
        let delivered = pending_at(Timestamp(0))
            .started(Timestamp(0), Duration::from_secs(10))
            .failed(Timestamp(0), "timeout".into(), &POLICY)
            .started(Timestamp(1_000), Duration::from_secs(10))
            .delivered();
        assert_eq!(delivered.status, DeliveryStatus::Delivered);
        assert_eq!(delivered.attempts, 2);
        assert_eq!(delivered.last_error, None);
        assert!(!delivered.is_open());
    }

    #[test]
    fn finished_statuses_name_their_event_and_the_id_is_stable() {
        assert_eq!(event_type(Status::Succeeded), Some("operation.succeeded"));
        assert_eq!(event_type(Status::Failed), Some("operation.failed"));
        assert_eq!(event_type(Status::Canceled), Some("operation.canceled"));
        assert_eq!(event_type(Status::Running), None);
        let id = JobId::random();
        assert_eq!(event_id(id), event_id(id));
        let body: serde_json::Value = serde_json::from_slice(&event_body(
            "operation.succeeded",
            Timestamp(0),
            serde_json::json!({"status": "succeeded"}),
        ))
        .unwrap();
        assert_eq!(body["type"], "operation.succeeded");
        assert_eq!(body["timestamp"], "1970-01-01T00:00:00.000Z");
        assert_eq!(body["data"]["status"], "succeeded");
    }
}
