//! The operation resource as clients read it: the JSON of
//! `GET /operations/{id}`, of each Server-Sent Event's `data` and of a
//! webhook event's `data`. One type, serialised here by the server and
//! deserialised by `kiln-client`, so the two cannot drift apart.

use crate::clock::Timestamp;
use crate::job::{Job, ResultWarning, Status};
use crate::problem::Problem;
use crate::webhook::DeliveryStatus;
use serde::{Deserialize, Serialize};

/// The operation resource's path.
pub fn operation_path(job: &Job) -> String {
    format!("/operations/{}", job.id)
}

/// The image resource's path.
pub fn image_path(job: &Job) -> String {
    format!("/images/{}", job.id)
}

/// A job as its operation resource shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// The job's id (also the image's).
    pub id: String,
    /// Where the job is in its life.
    pub status: Status,
    /// When it was accepted (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub last_updated_at: String,
    /// When it and its image are deleted (RFC 3339).
    pub expires_at: String,
    /// Progress while running, 100 once succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_complete: Option<u8>,
    /// While waiting for a slot: 1 starts next (an estimate with several
    /// index shards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<usize>,
    /// Once succeeded: the image's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_location: Option<String>,
    /// Once succeeded: what the client should know about how it was made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ResultWarning>,
    /// Once failed: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
    /// How the webhook's delivery is going, when the submission named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
}

/// How a webhook's delivery is going. Its URL is not shown: it may carry
/// the client's own token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Where the delivery is.
    pub status: DeliveryStatus,
    /// Attempts started so far.
    pub attempts: u32,
    /// How the last failed attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// While pending: when the next attempt is due (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
}

impl Operation {
    /// `job`'s operation; `with_webhook` false leaves out the delivery
    /// state (a webhook event's `data`, the same bytes in every attempt).
    pub fn of(job: &Job, with_webhook: bool) -> Operation {
        let succeeded = job.status == Status::Succeeded;
        Operation {
            id: job.id.to_string(),
            status: job.status,
            created_at: job.created_at.to_rfc3339(),
            last_updated_at: job.last_updated_at.to_rfc3339(),
            expires_at: job.expires_at.to_rfc3339(),
            percent_complete: job.percent_complete,
            queue_position: None,
            resource_location: succeeded.then(|| image_path(job)),
            warnings: job
                .result
                .as_ref()
                .filter(|_| succeeded)
                .map(|result| result.warnings.clone())
                .unwrap_or_default(),
            error: job.error.clone(),
            webhook: job
                .webhook
                .as_ref()
                .filter(|_| with_webhook)
                .map(|delivery| Webhook {
                    status: delivery.status,
                    attempts: delivery.attempts,
                    last_error: delivery.last_error.clone(),
                    next_attempt_at: delivery
                        .next_attempt_at
                        .filter(|_| delivery.status == DeliveryStatus::Pending)
                        .map(Timestamp::to_rfc3339),
                }),
        }
    }

    /// Whether the operation can no longer change.
    pub fn is_finished(&self) -> bool {
        self.status.is_terminal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::tests::new_job;
    use crate::webhook::Delivery;

    /// What a client parses is what the server wrote, every member
    /// included: the types are one.
    #[test]
    fn a_client_reads_back_exactly_the_operation_the_server_writes() {
        let mut failed = new_job(Timestamp(1_000));
        failed.status = Status::Failed;
        failed.error = Some(crate::Error::Unprocessable("too big".into()).to_problem());
        let mut delivery =
            Delivery::new("https://hooks.example/k".into()).scheduled(Timestamp(2_000));
        delivery.attempts = 1;
        delivery.last_error = Some("the receiver answered 500".into());
        failed.webhook = Some(delivery);

        let operation = Operation::of(&failed, true);
        let json = serde_json::to_string(&operation).unwrap();
        assert_eq!(serde_json::from_str::<Operation>(&json).unwrap(), operation);
        assert!(json.contains(r#""webhook":{"status":"pending","attempts":1,"lastError":"the receiver answered 500","nextAttemptAt":"#), "{json}");
        assert!(
            !json.contains("hooks.example"),
            "the webhook's URL is not shown: {json}"
        );
        assert!(Operation::of(&failed, false).webhook.is_none());
    }

    #[test]
    fn only_a_succeeded_operation_names_its_image() {
        let mut job = new_job(Timestamp(0));
        assert_eq!(Operation::of(&job, true).resource_location, None);
        job.status = Status::Succeeded;
        assert_eq!(
            Operation::of(&job, true).resource_location,
            Some(format!("/images/{}", job.id))
        );
    }
}
