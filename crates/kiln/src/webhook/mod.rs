//! Webhooks: a submission's `Webhook-Url` is told when its operation
//! finishes, by a signed POST, so the client need not poll.
//!
//! - [`target`]: the URL, checked at submission against the operator's
//!   `webhook_allowed_hosts` (the same pattern Spin enforces on the wire).
//! - [`delivery`]: the delivery's state in the job record, at least once,
//!   with exponential backoff; the event's body.
//! - [`signature`]: Standard Webhooks signing.
//!
//! Sending is a follow-up (`http::FollowUp::Notify`): run by the instance
//! that recorded the finished state, and retried by later requests that
//! find the delivery due (reads of the operation, and the maintenance of
//! submissions, which the pending index points at it). No cron, no queue.

pub mod delivery;
pub mod signature;
pub mod target;

pub use delivery::{Delivery, DeliveryStatus, RetryPolicy};
pub use signature::{Secret, sign};
pub use target::{AllowedHost, WebhookUrl};
