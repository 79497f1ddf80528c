//! What a call can fail with: the server's problem, or no answer at all.

use kiln::Problem;

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with a problem (RFC 9457): its `detail` says
    /// what to change. Retried first when it was a `429` or `503`.
    #[error("{}", describe(.0))]
    Problem(Problem),
    /// No answer: the server could not be reached, or the connection broke
    /// (retried first).
    #[error("{0}")]
    Transport(String),
    /// The job was canceled before it finished (its id).
    #[error("job {0} was canceled before it finished")]
    Canceled(String),
    /// An answer Kiln does not give (a status or body out of its contract).
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// A local file could not be read or written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The problem, when the server sent one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Problem(problem) => Some(problem),
            _ => None,
        }
    }
}

/// `422 unprocessable: the image is 20000×20000 …`: status, kind, detail.
fn describe(problem: &Problem) -> String {
    let kind = problem
        .type_
        .strip_prefix(kiln::problem::PROBLEM_TYPE_PREFIX)
        .unwrap_or(&problem.type_);
    match &problem.detail {
        Some(detail) => format!("{} {kind}: {detail}", problem.status),
        None => format!("{} {kind}: {}", problem.status, problem.title),
    }
}
