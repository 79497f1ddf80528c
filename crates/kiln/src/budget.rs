//! The time one request's instance may work, where the platform limits it
//! (Fermyon Cloud stops a request handler after 30 s): jobs run in-process
//! are started only while most of it remains, and stopped before it ends.

use crate::clock::Timestamp;
use std::time::Duration;

/// The working time of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// When the instance started.
    pub started_at: Timestamp,
    /// The platform's limit, if any.
    pub limit: Option<Duration>,
}

impl Budget {
    /// When work must have stopped: five sixths into the limit, leaving the
    /// rest for what a codec does in one uninterruptible call and for the
    /// final writes.
    pub fn work_ends_at(&self) -> Option<Timestamp> {
        self.limit.map(|limit| self.started_at.after(limit * 5 / 6))
    }

    /// Whether a job may be started at `now`: at least two thirds of the
    /// working time remain, so that a job stopped by [`Self::work_ends_at`]
    /// had most of an instance to itself and would not do better in a
    /// fresh one.
    pub fn can_start(&self, now: Timestamp) -> bool {
        match self.limit {
            None => true,
            Some(limit) => now <= self.started_at.after(limit * 5 / 18),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Budget = Budget {
        started_at: Timestamp(1_000),
        limit: Some(Duration::from_secs(30)),
    };

    #[test]
    fn without_a_limit_work_never_has_to_stop() {
        let budget = Budget {
            limit: None,
            ..LIMIT
        };
        assert_eq!(budget.work_ends_at(), None);
        assert!(budget.can_start(Timestamp(u64::MAX)));
    }

    #[test]
    fn work_ends_five_seconds_before_a_thirty_second_limit() {
        assert_eq!(LIMIT.work_ends_at(), Some(Timestamp(26_000)));
    }

    #[test]
    fn a_job_starts_only_while_two_thirds_of_the_working_time_remain() {
        assert!(LIMIT.can_start(Timestamp(9_333)));
        assert!(!LIMIT.can_start(Timestamp(9_334)));
    }
}
