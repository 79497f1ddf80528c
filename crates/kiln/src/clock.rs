//! Time as the domain sees it: milliseconds since the Unix epoch, passed in
//! by the caller so that leases and retention are tested without sleeping.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// An instant, in milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

/// `duration` in whole milliseconds, saturating.
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Timestamp {
    /// This instant plus `duration` (saturating).
    pub fn after(self, duration: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(millis(duration)))
    }

    /// How long from `self` until `later` (zero if `later` is not later).
    pub fn until(self, later: Timestamp) -> Duration {
        Duration::from_millis(later.0.saturating_sub(self.0))
    }

    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-26T02:18:32.000Z`.
    pub fn to_rfc3339(self) -> String {
        let millis = i64::try_from(self.0).unwrap_or(i64::MAX);
        chrono::DateTime::from_timestamp_millis(millis)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_rfc3339_utc_with_millis() {
        assert_eq!(
            Timestamp(1_764_123_512_345).to_rfc3339(),
            "2025-11-26T02:18:32.345Z"
        );
    }

    #[test]
    fn until_an_earlier_instant_is_zero() {
        assert_eq!(Timestamp(10).until(Timestamp(5)), Duration::ZERO);
    }
}
