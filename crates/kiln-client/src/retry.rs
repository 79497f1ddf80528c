//! When to try a call again: after no answer, or an answer that says
//! "later" (`429`, `503`), waiting what `Retry-After` asks or backing off.

use std::time::Duration;

/// How a client retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Tries of one call in all (the first included).
    pub attempts: u32,
    /// The wait after the first failed try without a `Retry-After`;
    /// doubled after each, up to `max_wait`.
    pub first_wait: Duration,
    /// The longest wait between tries, `Retry-After` included.
    pub max_wait: Duration,
}

impl Default for Retry {
    /// Ten tries over about a minute and a half: a server restarting, or a
    /// queue draining, is waited out; a server that is gone is reported.
    fn default() -> Retry {
        Retry {
            attempts: 10,
            first_wait: Duration::from_millis(250),
            max_wait: Duration::from_secs(30),
        }
    }
}

impl Retry {
    /// No retries: every failure is reported at once.
    pub fn never() -> Retry {
        Retry {
            attempts: 1,
            ..Retry::default()
        }
    }

    /// The wait after the `failed`-th failed try (1 for the first), or
    /// `None` when no try is left. `retry_after` is what the server asked.
    pub fn wait_after(&self, failed: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if failed >= self.attempts {
            return None;
        }
        let backoff = self
            .first_wait
            .saturating_mul(1 << failed.saturating_sub(1).min(16));
        Some(retry_after.unwrap_or(backoff).min(self.max_wait))
    }
}

/// `Retry-After` as Kiln sends it: delay-seconds (RFC 9110, 10.2.3). An
/// HTTP date, which Kiln never sends, counts as absent.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Whether a status asks to come back later.
pub fn is_retryable(status: u16) -> bool {
    matches!(status, 429 | 503)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let retry = Retry {
            attempts: 20,
            first_wait: Duration::from_millis(100),
            max_wait: Duration::from_secs(1),
        };
        let waits: Vec<_> = (1..=6)
            .map(|n| retry.wait_after(n, None).unwrap().as_millis())
            .collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn the_server_s_retry_after_wins_within_the_cap() {
        let retry = Retry::default();
        assert_eq!(
            retry.wait_after(1, Some(Duration::from_secs(3))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry.wait_after(1, Some(Duration::from_secs(3600))),
            Some(retry.max_wait)
        );
    }

    #[test]
    fn no_wait_once_the_tries_are_spent() {
        let retry = Retry {
            attempts: 3,
            ..Retry::default()
        };
        assert!(retry.wait_after(2, None).is_some());
        assert_eq!(retry.wait_after(3, None), None);
        assert_eq!(Retry::never().wait_after(1, None), None);
    }

    #[test]
    fn retry_after_is_read_as_seconds_only() {
        assert_eq!(parse_retry_after(" 7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }
}
