//! Running a job: claim it with compare-and-swap under a lease, run the
//! image pipeline with progress reports (which renew the lease and notice a
//! cancel), store the result, record the outcome.

use crate::blob;
use crate::id::JobId;
use crate::job::{Claim, ImageRef, Job};
use crate::keys;
use crate::problem::Error;
use crate::repo::{Jobs, Update};
use crate::runtime::Ctx;
use kiln_image::{ImageError, Step};
use std::ops::ControlFlow;

/// What a processor holds once it claimed a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The job.
    pub id: JobId,
    /// The processor's lease token.
    pub token: String,
    /// Which claim of the job this is (1 for the first); names the chunks
    /// of the result.
    pub attempt: u32,
}

/// What a processor's attempt to take a job came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The caller now holds the job and must [`run`] it.
    Started {
        /// The job as claimed.
        job: Job,
        /// What the caller holds.
        ticket: Ticket,
    },
    /// The job crashed too many processors and was failed instead.
    GaveUp(Job),
    /// The job is finished or another processor holds it.
    Refused(Job),
}

/// Tries to take job `id`.
pub fn claim(ctx: &Ctx<'_>, id: JobId) -> Result<Claimed, Error> {
    let token = JobId::random().to_string();
    let now = ctx.runtime.now();
    let mut gave_up = false;
    let update = Jobs::new(ctx.kv).update(id, now, |job| {
        match job.claim(&token, now, ctx.config.lease, ctx.config.max_attempts) {
            Claim::Claimed(next) => {
                gave_up = false;
                Some(next)
            }
            Claim::GaveUp(next) => {
                gave_up = true;
                Some(next)
            }
            Claim::Refused => None,
        }
    })?;
    match update {
        Update::Missing => Err(Error::NotFound("operation")),
        Update::Unchanged(job) => Ok(Claimed::Refused(job)),
        Update::Changed(job) if gave_up => Ok(Claimed::GaveUp(job)),
        Update::Changed(job) => {
            let ticket = Ticket {
                id,
                token,
                attempt: job.attempts,
            };
            Ok(Claimed::Started { job, ticket })
        }
    }
}

/// Runs a claimed job to its end. A store failure is returned as is: the
/// lease then expires and the job is re-dispatched.
pub fn run(ctx: &Ctx<'_>, ticket: &Ticket) -> Result<(), Error> {
    let (id, token) = (ticket.id, ticket.token.as_str());
    let jobs = Jobs::new(ctx.kv);
    let Some(job) = jobs.get(id, ctx.runtime.now())? else {
        return Ok(());
    };
    let source = match blob::read(ctx.kv, &job.source) {
        Ok(bytes) => bytes,
        Err(blob::BlobError::Store(err)) => return Err(err.into()),
        Err(err @ blob::BlobError::Incomplete(_)) => {
            return record_failure(ctx, id, token, Error::Internal(err.to_string()));
        }
    };
    let ops = match kiln_image::parse_ops(&job.ops) {
        Ok(ops) => ops,
        Err(err) => return record_failure(ctx, id, token, Error::Internal(err.to_string())),
    };
    let limits = ctx.config.image_limits();
    let mut report = |step: Step| report_progress(ctx, id, token, step);
    match kiln_image::process(&source, &ops, &limits, &mut report) {
        Ok(output) => {
            let etag = crate::etag::strong(&output.bytes);
            let blob = blob::write(ctx.kv, keys::result_blob(id, ticket.attempt), &output.bytes)?;
            let result = ImageRef {
                blob,
                media_type: output.format.media_type().to_owned(),
                etag,
                width: output.width,
                height: output.height,
            };
            let now = ctx.runtime.now();
            let update = jobs.update(id, now, |job| job.succeed(token, result.clone(), now));
            if !matches!(update, Ok(Update::Changed(_))) {
                // Canceled, deleted or taken over meanwhile: the result is nobody's.
                blob::delete(ctx.kv, &result.blob).ok();
            }
            update.map(drop)
        }
        Err(ImageError::Canceled) => Ok(()),
        Err(err) => record_failure(ctx, id, token, err.into()),
    }
}

fn record_failure(ctx: &Ctx<'_>, id: JobId, token: &str, error: Error) -> Result<(), Error> {
    if let Error::Internal(message) = &error {
        ctx.runtime.log(&format!("job {id} failed: {message}"));
    }
    let problem = error.to_problem();
    let now = ctx.runtime.now();
    Jobs::new(ctx.kv)
        .update(id, now, |job| job.fail(token, problem.clone(), now))
        .map(drop)
}

/// Records progress; stops the pipeline once the job is no longer ours
/// (canceled, deleted, or its lease was taken over).
fn report_progress(ctx: &Ctx<'_>, id: JobId, token: &str, step: Step) -> ControlFlow<()> {
    let percent = match step {
        Step::Decoded => 10,
        Step::Applied { index, of } => 10 + (80 * (index + 1) / of.max(1)) as u8,
        Step::Encoded => 95,
    };
    let now = ctx.runtime.now();
    match Jobs::new(ctx.kv).update(id, now, |job| {
        job.progress(token, percent, now, ctx.config.lease)
    }) {
        Ok(Update::Changed(_)) => ControlFlow::Continue(()),
        // A store hiccup is not a reason to throw the work away; the final
        // write decides.
        Err(_) => ControlFlow::Continue(()),
        Ok(_) => ControlFlow::Break(()),
    }
}
