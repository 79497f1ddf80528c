//! Sending a finished job's webhook: the `Notify` follow-up.
//!
//! One attempt at a time: the attempt is claimed in the job record first
//! (so concurrent instances send it once), the signed event is POSTed, and
//! the outcome is recorded, which schedules the next attempt after a
//! failure. Whoever finishes a job sends its first attempt; later ones are
//! sent by whichever request finds them due.

use super::render;
use crate::id::JobId;
use crate::job::Job;
use crate::problem::Error;
use crate::repo::{Jobs, Update};
use crate::runtime::Ctx;
use crate::webhook::delivery::{event_body, event_id, event_type};
use crate::webhook::{DeliveryStatus, RetryPolicy, sign};
use std::time::Duration;

/// How long the receiver has to answer one attempt.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends job `id`'s event if an attempt is due now. (The repository drops
/// the job from the pending index once its delivery is settled.)
pub(super) fn deliver_if_due(ctx: &Ctx<'_>, id: JobId) -> Result<(), Error> {
    let Some(webhooks) = &ctx.config.webhooks else {
        // Configured when the job was accepted, not any more: it stays
        // pending until the operator sets the secret again.
        return Ok(());
    };
    let jobs = Jobs::new(ctx.kv);
    let now = ctx.runtime.now();
    let timeout = attempt_timeout(ctx);
    let policy = RetryPolicy::default();
    let claimed = jobs.update(id, now, |job| {
        if !job.webhook_due(now) {
            return None;
        }
        let delivery = job.webhook.as_ref()?;
        let next = if delivery.attempts >= policy.max_attempts {
            // Every attempt was spent, the last one lost with its sender.
            delivery.failed(now, "the last attempt was lost".into(), &policy)
        } else {
            delivery.started(now, timeout)
        };
        Some(Job {
            webhook: Some(next),
            ..job.clone()
        })
    })?;
    let Update::Changed(job) = claimed else {
        return Ok(());
    };
    // A delivery given up on (its last attempt lost) has nothing to send.
    let Some((url, attempt)) = job
        .webhook
        .as_ref()
        .filter(|d| d.status == DeliveryStatus::Pending)
        .map(|d| (d.url.clone(), d.attempts))
    else {
        return Ok(());
    };
    let body = event(&job);
    let message_id = event_id(job.id);
    let timestamp = ctx.runtime.now().0 / 1000;
    // A declared length, not a chunked body: some receivers' frameworks
    // read a chunked request body as empty, and the signature covers it.
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("content-length", body.len().to_string()),
        ("webhook-id", message_id.clone()),
        ("webhook-timestamp", timestamp.to_string()),
        (
            "webhook-signature",
            sign(&webhooks.secret, &message_id, timestamp, &body),
        ),
    ];
    let outcome = match ctx.runtime.post(&url, &headers, &body, timeout) {
        Ok(status) if (200..300).contains(&status) => Ok(()),
        Ok(status) => Err(format!("the receiver answered {status}")),
        Err(err) => Err(format!("the request failed: {}", truncated(&err, 200))),
    };
    record(ctx, id, attempt, outcome)
}

/// Records how attempt number `attempt` went, unless another attempt
/// has been claimed since (this one was presumed lost).
fn record(
    ctx: &Ctx<'_>,
    id: JobId,
    attempt: u32,
    outcome: Result<(), String>,
) -> Result<(), Error> {
    let policy = RetryPolicy::default();
    let now = ctx.runtime.now();
    Jobs::new(ctx.kv).update(id, now, |job| {
        let delivery = job.webhook.as_ref()?;
        if delivery.attempts != attempt || delivery.status != DeliveryStatus::Pending {
            return None;
        }
        let next = match &outcome {
            Ok(()) => delivery.delivered(),
            Err(error) => delivery.failed(now, error.clone(), &policy),
        };
        Some(Job {
            webhook: Some(next),
            ..job.clone()
        })
    })?;
    Ok(())
}

/// The event: its type from the job's final status, the time it finished,
/// and the operation as a `GET` shows it, without the delivery's own state.
fn event(job: &Job) -> Vec<u8> {
    let kind = event_type(job.status).unwrap_or("operation.finished");
    let at = job
        .webhook
        .as_ref()
        .and_then(|d| d.event_at)
        .unwrap_or(job.last_updated_at);
    event_body(kind, at, render::operation_value(job))
}

/// [`ATTEMPT_TIMEOUT`], or less when the platform will stop this instance
/// sooner.
fn attempt_timeout(ctx: &Ctx<'_>) -> Duration {
    let now = ctx.runtime.now();
    match ctx.budget().work_ends_at() {
        Some(end) => now
            .until(end)
            .clamp(Duration::from_secs(1), ATTEMPT_TIMEOUT),
        None => ATTEMPT_TIMEOUT,
    }
}

/// At most `max` bytes of `text`, cut at a character boundary: a host's
/// error can be long, and it is kept in the job record.
fn truncated(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
