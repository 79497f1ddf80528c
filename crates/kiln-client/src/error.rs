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

/// `422 unprocessable: the image is 20000×20000 … (operation /operations/…)`:
/// status, kind, detail, and the job it is about, if any (to read or
/// delete it).
fn describe(problem: &Problem) -> String {
    let kind = problem
        .type_
        .strip_prefix(kiln::problem::PROBLEM_TYPE_PREFIX)
        .unwrap_or(&problem.type_);
    let detail = problem.detail.as_deref().unwrap_or(&problem.title);
    match &problem.operation {
        Some(operation) => format!(
            "{} {kind}: {detail} (operation {operation})",
            problem.status
        ),
        None => format!("{} {kind}: {detail}", problem.status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_reads_as_status_kind_detail_and_its_operation() {
        let mut problem = Problem {
            type_: format!("{}unprocessable", kiln::problem::PROBLEM_TYPE_PREFIX),
            title: "Unprocessable".into(),
            status: 422,
            detail: Some("the image is cut short".into()),
            operation: None,
        };
        assert_eq!(
            Error::Problem(problem.clone()).to_string(),
            "422 unprocessable: the image is cut short"
        );
        problem.operation = Some("/operations/0b6f".into());
        problem.detail = None;
        assert_eq!(
            Error::Problem(problem).to_string(),
            "422 unprocessable: Unprocessable (operation /operations/0b6f)"
        );
    }
}
