//! The processor's private endpoint, `POST /jobs/{id}`: claim the job,
//! answer at once, then run it as a follow-up.

use super::render;
use super::{FollowUp, Reply};
use crate::id::JobId;
use crate::problem::Error;
use crate::processing::{self, Claimed};
use crate::runtime::Ctx;
use http::{Method, StatusCode};

/// Handles a request to the processor.
pub fn handle<B>(request: http::Request<B>, ctx: &Ctx<'_>) -> Reply {
    let Some(id) = request.uri().path().strip_prefix("/jobs/") else {
        return Error::NotFound("resource").into();
    };
    if request.method() != Method::POST {
        return Error::MethodNotAllowed { allow: "POST" }.into();
    }
    let Ok(id) = JobId::parse(id) else {
        return Error::NotFound("operation").into();
    };
    match processing::claim(ctx, id) {
        Ok(Claimed::Started { job, ticket }) => Reply::new(
            render::operation(&job, StatusCode::ACCEPTED),
            vec![FollowUp::Process(ticket)],
        ),
        // A job given up on has just finished here: its webhook goes now,
        // and the slot it did not take goes to the next waiting job.
        Ok(Claimed::GaveUp(job)) => Reply::new(
            render::operation(&job, StatusCode::OK),
            vec![FollowUp::Notify(job.id), FollowUp::StartQueued],
        ),
        // Finished or taken meanwhile: the slot this processor was sent
        // for goes to the next waiting job.
        Ok(Claimed::Refused(job)) => Reply::new(
            render::operation(&job, StatusCode::OK),
            vec![FollowUp::StartQueued],
        ),
        // Every slot is held: the job keeps its place in the queue, and
        // the processor that frees a slot starts it.
        Ok(Claimed::Waiting(job)) => render::operation(&job, StatusCode::OK).into(),
        Err(err) => super::failed(ctx, err),
    }
}
