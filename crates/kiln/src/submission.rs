//! Accepting an upload: validate it from its headers and bytes (cheaply,
//! before any decoding), store it durably, and handle `Idempotency-Key`
//! replays.

use crate::blob;
use crate::clock::Timestamp;
use crate::id::JobId;
use crate::idempotency::{self, Binding, IdempotencyKey};
use crate::job::{Job, Status};
use crate::keys;
use crate::negotiation::{self, Accept};
use crate::problem::Error;
use crate::repo::Jobs;
use crate::runtime::Ctx;
use crate::webhook::{Delivery, WebhookUrl};
use kiln_image::{Format, Op};

/// A validated-so-far upload.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The id a new job gets: chosen before the upload is read, so that
    /// the client's quota can reserve it (see [`crate::rate_limit`]).
    pub id: JobId,
    /// The format named by `Content-Type`.
    pub declared: Format,
    /// The body.
    pub bytes: Vec<u8>,
    /// The operations to apply, `format(auto)` still unresolved.
    pub ops: Vec<Op>,
    /// The request's `Accept`, which resolves `format(auto)`.
    pub accept: Accept,
    /// The `Idempotency-Key`, if sent.
    pub idempotency_key: Option<IdempotencyKey>,
    /// Where to POST the outcome (`Webhook-Url`, checked).
    pub webhook: Option<WebhookUrl>,
    /// The name of the API key that sent it, when keys are on.
    pub owner: Option<String>,
    /// Whether reading the job will need that key.
    pub reads_need_key: bool,
}

/// The job an upload resulted in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// A job created for this upload.
    New(Job),
    /// The job of an earlier identical request with the same key.
    Replayed(Job),
}

impl Accepted {
    /// The job either way.
    pub fn job(&self) -> &Job {
        match self {
            Accepted::New(job) | Accepted::Replayed(job) => job,
        }
    }
}

/// Checks an upload and stores it as a new job (or finds the job of an
/// earlier request with the same idempotency key). When this returns `Ok`,
/// the upload is durably stored.
pub fn accept(ctx: &Ctx<'_>, upload: Upload) -> Result<Accepted, Error> {
    let ops = check_image(ctx, &upload)?;
    let canonical_ops = kiln_image::canonical(&ops);
    let Some(key) = &upload.idempotency_key else {
        return create(ctx, &upload, canonical_ops).map(Accepted::New);
    };
    // Hashing the whole upload is only worth it when there is a key to
    // compare it under.
    // The webhook is part of the request: the same key with another
    // receiver is another request.
    let fingerprinted = match &upload.webhook {
        Some(url) => format!("{canonical_ops} webhook={}", url.as_str()),
        None => canonical_ops.clone(),
    };
    let fingerprint =
        idempotency::fingerprint(&upload.bytes, upload.declared.media_type(), &fingerprinted);
    let earlier = idempotency::lookup(ctx.kv, key)?;
    if let Some((_, binding)) = &earlier
        && let Some(job) = replay(ctx, binding, &fingerprint)?
    {
        return Ok(Accepted::Replayed(job));
    }
    let job = create(ctx, &upload, canonical_ops)?;
    let binding = Binding {
        job: job.id,
        fingerprint: fingerprint.clone(),
    };
    // A binding whose job expired or was deleted no longer holds the key.
    let stale = earlier.as_ref().map(|(raw, _)| raw.as_slice());
    let wait = || ctx.runtime.sleep(std::time::Duration::from_millis(20));
    match idempotency::bind(ctx.kv, key, binding, stale, wait) {
        Ok(winner) if winner.job == job.id => Ok(Accepted::New(job)),
        Ok(winner) => {
            // A concurrent request with the same key won: ours never existed.
            discard(ctx, &job);
            replay(ctx, &winner, &fingerprint)?
                .map(Accepted::Replayed)
                .ok_or(Error::NotFound("operation"))
        }
        Err(err) => {
            discard(ctx, &job);
            Err(err)
        }
    }
}

/// Refuses what can be refused without decoding: wrong type, a file cut
/// short (`probe` walks its structure), too many pixels in or out, a crop
/// outside the image, an output too large for its format. Returns the
/// operations to record, `format(auto)` resolved for this image.
fn check_image(ctx: &Ctx<'_>, upload: &Upload) -> Result<Vec<Op>, Error> {
    if kiln_image::format::is_heic(&upload.bytes) {
        return Err(Error::heic());
    }
    let sniffed = Format::sniff(&upload.bytes).ok_or_else(|| {
        Error::UnsupportedMediaType("the body is not a JPEG, PNG, WebP, GIF or AVIF image".into())
    })?;
    if sniffed != upload.declared {
        return Err(Error::UnsupportedMediaType(format!(
            "the body is {} but Content-Type says {}",
            sniffed.media_type(),
            upload.declared.media_type()
        )));
    }
    let info = kiln_image::probe(&upload.bytes)?;
    let limits = ctx.config.image_limits();
    // An animation is offered only formats that keep it moving.
    let ops = negotiation::resolve_auto_format(&upload.ops, &upload.accept, info.format, |ops| {
        kiln_image::preflight(&info, ops, &limits).is_ok()
            && (!info.is_animated() || kiln_image::keeps_animation(&info, ops))
    });
    kiln_image::preflight(&info, &ops, &limits)?;
    Ok(ops)
}

/// The job bound to an idempotency key, if it still exists; a different
/// request under the same key is refused.
fn replay(ctx: &Ctx<'_>, binding: &Binding, fingerprint: &str) -> Result<Option<Job>, Error> {
    let Some(job) = Jobs::new(ctx.kv).get(binding.job, ctx.runtime.now())? else {
        return Ok(None);
    };
    if binding.fingerprint != fingerprint {
        return Err(Error::IdempotencyKeyReused(binding.job));
    }
    Ok(Some(job))
}

/// Stores the upload, its job record and the job's unlisted marker in one
/// batch, the record last, so a failure part-way leaves nothing visible.
/// The indexes come after (see [`crate::listing`]): the caller lists it.
fn create(ctx: &Ctx<'_>, upload: &Upload, canonical_ops: String) -> Result<Job, Error> {
    let now = ctx.runtime.now();
    let id = upload.id;
    let chunk_size = ctx.config.blob_chunk_bytes;
    let source = blob::layout(keys::source_blob(id), upload.bytes.len(), chunk_size)?;
    let expires_at = now.after(ctx.config.retention);
    let mut job = new_job(id, now, expires_at, source, upload, canonical_ops);
    job.index_shard = id.shard(ctx.config.index_shards);
    Jobs::new(ctx.kv).insert_with_upload(&job, &upload.bytes, chunk_size)?;
    Ok(job)
}

fn new_job(
    id: JobId,
    now: Timestamp,
    expires_at: Timestamp,
    source: blob::BlobRef,
    upload: &Upload,
    canonical_ops: String,
) -> Job {
    Job {
        id,
        status: Status::NotStarted,
        created_at: now,
        last_updated_at: now,
        expires_at,
        percent_complete: None,
        ops: canonical_ops,
        source,
        source_media_type: upload.declared.media_type().to_owned(),
        result: None,
        error: None,
        lease: None,
        attempts: 0,
        dispatched_at: now,
        idempotency_entry: upload.idempotency_key.as_ref().map(|k| k.entry_key()),
        version: 1,
        webhook: upload
            .webhook
            .as_ref()
            .map(|url| Delivery::new(url.as_str().to_owned())),
        index_shard: 0,
        owner: upload.owner.clone(),
        reads_need_key: upload.reads_need_key,
    }
}

/// Removes a job that lost an idempotency race (or could not be bound),
/// leaving the key's binding alone.
fn discard(ctx: &Ctx<'_>, job: &Job) {
    // Never listed (that follows the answer): its record, marker and
    // upload are all there is.
    if Jobs::new(ctx.kv).discard(job).is_err() {
        ctx.runtime
            .log(&format!("could not discard job {}", job.id));
    }
}
